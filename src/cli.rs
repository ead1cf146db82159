//! The command line: clap definitions and thin command implementations.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::policy::{Award, Decision, Evaluator, Outcome, PayeeKind, Registry, Status, Student};

#[derive(Debug, Parser)]
#[command(
    name = "eligo",
    version,
    about = "Eligibility rules engine for scholarships and tuition waivers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve(Box<crate::config::Settings>),
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
        database_url: String,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Manage access keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Evaluate one student record (a JSON file, or - for stdin) against the policies, or a
    /// whole cohort (--students, NDJSON) with one result line per student.
    Check {
        #[arg(
            long,
            required_unless_present = "students",
            conflicts_with = "students"
        )]
        student: Option<PathBuf>,
        /// A cohort file, one record per line (NDJSON): one result line per student, a progress
        /// bar on stderr when it is a terminal.
        #[arg(long)]
        students: Option<PathBuf>,
        /// With --students: CSV (student id, then each policy's outcome) instead of NDJSON.
        #[arg(long, requires = "students")]
        csv: bool,
        /// Only these policies (repeatable); default: every policy in effect.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Evaluation date, YYYY-MM-DD; default: today (UTC).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        #[arg(long, env = "ELIGO_RULES_DIR", default_value = "rules")]
        rules: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run every policy's test cases; exits non-zero when one fails.
    Test {
        #[arg(env = "ELIGO_RULES_DIR", default_value = "rules")]
        dir: PathBuf,
    },
    /// What-if offline: a candidate policy against another version on a cohort file (NDJSON).
    Simulate(SimulateArgs),
    /// Published policies in the database.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Write a synthetic cohort of student records as NDJSON to stdout.
    GenStudents {
        #[arg(long, default_value_t = 100)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Write every stored version's source (`<id>.v<N>.rhai`) and each policy's cases
    /// (`<id>.tests.json`, as last published) to DIR: a rules folder to keep in git.
    Export {
        dir: PathBuf,
        #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
        database_url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown only now).
    Create {
        #[arg(long, value_enum)]
        role: crate::service::access::Role,
        /// Required for awarders: the sponsor whose policies the key may act on.
        #[arg(long)]
        sponsor: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
        database_url: String,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
        database_url: String,
    },
    /// Revoke a key by id.
    Revoke {
        id: String,
        #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
        database_url: String,
    },
}

pub fn keys(cmd: KeysCommand) -> anyhow::Result<bool> {
    use crate::store::Store;
    match cmd {
        KeysCommand::Create {
            role,
            sponsor,
            name,
            database_url,
        } => {
            let store = Store::open(&database_url, 1)?;
            let key = crate::service::access::create_key(&store, role, sponsor, name)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "created {} key {} ({}); the secret is shown only now:",
                key.role.as_str(),
                key.key_id,
                key.name
            );
            println!("{}", key.secret);
        }
        KeysCommand::List { database_url } => {
            let store = Store::open(&database_url, 1)?;
            for k in store.keys()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.key_id,
                    k.role,
                    k.sponsor.as_deref().unwrap_or("-"),
                    k.revoked_at
                        .as_deref()
                        .map_or("active".to_string(), |t| format!("revoked {t}")),
                    k.name
                );
            }
        }
        KeysCommand::Revoke { id, database_url } => {
            let store = Store::open(&database_url, 1)?;
            if !store.revoke_key(&id)? {
                anyhow::bail!("no active key {id:?}");
            }
            println!("revoked {id}");
        }
    }
    Ok(true)
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The rules folder, refusing `--policy` ids it does not hold.
fn load_rules(rules: &PathBuf, policies: &[String]) -> anyhow::Result<Registry> {
    let registry = Registry::load_dir(rules)?;
    for id in policies {
        if !registry.contains(id) {
            bail!("no policy {id:?} in {}", rules.display());
        }
    }
    Ok(registry)
}

pub fn check(
    student: &PathBuf,
    policies: &[String],
    as_of: Option<NaiveDate>,
    rules: &PathBuf,
    json: bool,
) -> anyhow::Result<()> {
    let text = if student.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(student)
            .with_context(|| format!("cannot read {}", student.display()))?
    };
    let record = Student::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid student record: {e}", student.display()))?;
    let registry = load_rules(rules, policies)?;
    let as_of = as_of.unwrap_or_else(today);
    let mut evaluator = Evaluator::default();
    let prepared = crate::policy::Prepared::new(record.clone());
    let (decisions, requirements): (Vec<Decision>, Vec<Decision>) = registry
        .all_in_effect(as_of)
        .filter(|v| {
            if policies.is_empty() {
                v.meta.concerns(&record)
            } else {
                policies.contains(&v.meta.id)
            }
        })
        .map(|v| evaluator.evaluate(v, &prepared, as_of))
        .partition(|d| d.kind.is_incentive());
    let steps = crate::policy::next_steps::next_steps(&decisions);
    let mut out = std::io::stdout().lock();
    if json {
        // The shape of `POST /v1/evaluations`' answer.
        let answer = serde_json::json!({
            "student_id": record.student_id,
            "as_of": as_of.to_string(),
            "decisions": decisions,
            "requirements": requirements,
            "next_steps": steps,
        });
        serde_json::to_writer_pretty(&mut out, &answer)?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}{}",
            render_table(&record.student_id, as_of, &decisions),
            render_progress(&steps, &requirements)
        )?;
    }
    Ok(())
}

/// `eligo check --students FILE`: every record of a cohort file, one result line each (NDJSON:
/// the student's decisions and next steps; CSV: the student id and each policy's outcome). A bad
/// line is reported on stderr with its number and the run goes on; the exit code says so.
pub fn check_cohort(
    students: &PathBuf,
    policies: &[String],
    as_of: Option<NaiveDate>,
    rules: &PathBuf,
    csv: bool,
) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal};
    let registry = load_rules(rules, policies)?;
    let as_of = as_of.unwrap_or_else(today);
    let versions: Vec<_> = registry
        .all_in_effect(as_of)
        .filter(|v| policies.is_empty() || policies.contains(&v.meta.id))
        .cloned()
        .collect();
    let file = std::fs::File::open(students)
        .with_context(|| format!("cannot read {}", students.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let ids: Vec<&str> = versions.iter().map(|v| v.meta.id.as_str()).collect();
    if csv {
        let mut header = vec!["student_id"];
        header.extend(&ids);
        writeln!(out, "{}", header.join(","))?;
    }
    let mut evaluator = Evaluator::default();
    let mut bad = 0usize;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", students.display()))?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let record = match Student::from_json(&line) {
            Ok(r) => r,
            Err(e) => {
                bad += 1;
                bar.suspend(|| eprintln!("{}: line {}: {e}", students.display(), n + 1));
                continue;
            }
        };
        let prepared = crate::policy::Prepared::new(record);
        let student = prepared.student();
        let decisions: Vec<Decision> = versions
            .iter()
            .filter(|v| !policies.is_empty() || v.meta.concerns(student))
            .map(|v| evaluator.evaluate(v, &prepared, as_of))
            .collect();
        if csv {
            let cells: Vec<String> =
                std::iter::once(crate::service::ledger::csv_cell(&student.student_id))
                    .chain(ids.iter().map(|id| {
                        decisions
                            .iter()
                            .find(|d| d.policy_id == *id)
                            .map_or(String::new(), |d| d.outcome.as_str().to_string())
                    }))
                    .collect();
            writeln!(out, "{}", cells.join(","))?;
        } else {
            let (incentives, requirements): (Vec<Decision>, Vec<Decision>) =
                decisions.into_iter().partition(|d| d.kind.is_incentive());
            let line = serde_json::json!({
                "student_id": student.student_id,
                "as_of": as_of.to_string(),
                "decisions": incentives,
                "requirements": requirements,
                "next_steps": crate::policy::next_steps::next_steps(&incentives),
            });
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        }
    }
    bar.finish_and_clear();
    out.flush()?;
    if bad > 0 {
        eprintln!(
            "{bad} records in {} are invalid (see above)",
            students.display()
        );
    }
    Ok(bad == 0)
}

/// Describes an award for people: "$500.00 scholarship", "3 credit hours waived at ivcc".
pub fn describe_award(award: &Award) -> String {
    match award {
        Award::Scholarship { amount_cents } => format!(
            "${}.{:02} scholarship",
            amount_cents / 100,
            amount_cents % 100
        ),
        Award::TuitionWaiver {
            credit_hours,
            institution_id,
        } => format!("{credit_hours} credit hours waived at {institution_id}"),
    }
}

/// Next steps and endorsement progress, for people.
pub fn render_progress(
    steps: &[crate::policy::next_steps::NextStep],
    requirements: &[Decision],
) -> String {
    let mut s = String::new();
    if !steps.is_empty() {
        s.push_str("\nNext steps (most valuable first)\n");
        for (i, step) in steps.iter().enumerate() {
            let mut worth = Vec::new();
            if step.completes_cents > 0 {
                worth.push(format!(
                    "${}.{:02}",
                    step.completes_cents / 100,
                    step.completes_cents % 100
                ));
            }
            if step.completes_credit_hours > 0.0 {
                worth.push(format!("{} credit hours", step.completes_credit_hours));
            }
            s.push_str(&format!("  {}. {}\n", i + 1, step.message));
            if !step.completes.is_empty() {
                s.push_str(&format!(
                    "     completes {} ({})\n",
                    step.completes.join(", "),
                    worth.join(" and ")
                ));
            }
            s.push_str(&format!(
                "     brings closer {}\n",
                step.brings_closer.join(", ")
            ));
        }
    }
    for d in requirements {
        let met = d
            .reasons
            .iter()
            .filter(|r| r.status == Status::Passed)
            .count();
        s.push_str(&format!(
            "\nProgress: {} v{}: {met} of {} requirements met\n",
            d.policy_id,
            d.version,
            d.reasons.len()
        ));
        for r in &d.reasons {
            let mark = match r.status {
                Status::Passed => "[done]",
                Status::Failed => "[left]",
                Status::Unknown => "[ ?? ]",
            };
            let left = d
                .missing
                .iter()
                .find(|m| m.code == r.code)
                .map_or(String::new(), |m| format!(" -> {}", m.message));
            s.push_str(&format!("  {mark} {}{left}\n", r.message));
        }
    }
    s
}

/// A counselor-readable table of decisions.
pub fn render_table(student_id: &str, as_of: NaiveDate, decisions: &[Decision]) -> String {
    let mut s = format!("Student {student_id}, as of {as_of}\n");
    if decisions.is_empty() {
        s.push_str("No policy is in effect on that date.\n");
    }
    for d in decisions {
        let payee = match &d.payee {
            Some(p) if p.kind == PayeeKind::Institution => format!(
                ", paid to {}",
                p.institution_id.as_deref().unwrap_or("the institution")
            ),
            Some(_) => ", paid to the student".to_string(),
            None => String::new(),
        };
        s.push_str(&format!(
            "\n{:<11} {} v{} ({}){}\n",
            d.outcome.as_str().to_uppercase(),
            d.policy_id,
            d.version,
            d.award
                .as_ref()
                .map_or("a requirement".to_string(), describe_award),
            payee
        ));
        for r in &d.reasons {
            let mark = match r.status {
                Status::Passed => "[pass]",
                Status::Failed => "[fail]",
                Status::Unknown => "[ ?? ]",
            };
            s.push_str(&format!("  {mark} {:<24} {}\n", r.code, r.message));
        }
        for m in &d.missing {
            let fields = if m.fields.is_empty() {
                String::new()
            } else {
                format!(" (record lacks: {})", m.fields.join(", "))
            };
            s.push_str(&format!("  missing: {}{fields}\n", m.message));
        }
        if d.outcome == Outcome::Error {
            s.push_str(&format!(
                "  error: {}\n",
                d.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    s
}

pub fn test(dir: &PathBuf) -> anyhow::Result<bool> {
    let registry = Registry::load_dir(dir)?;
    let mut evaluator = Evaluator::default();
    let results = crate::policy::tests::run_all(&registry, &mut evaluator);
    let mut out = std::io::stdout().lock();
    for r in &results {
        writeln!(out, "{r}")?;
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    writeln!(
        out,
        "policy tests: {} passed, {} failed",
        results.len() - failed,
        failed
    )?;
    Ok(failed == 0)
}

/// The options of `eligo simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The candidate policy script.
    #[arg(long)]
    pub policy: PathBuf,
    /// Student records, one JSON object per line.
    #[arg(long)]
    pub students: PathBuf,
    /// Compare against this script ...
    #[arg(long, conflicts_with = "against_version")]
    pub against: Option<PathBuf>,
    /// ... or against this version of the same policy in the rules folder (default: the
    /// version in effect there on --as-of).
    #[arg(long)]
    pub against_version: Option<u32>,
    /// Evaluation date, YYYY-MM-DD; default: today (UTC).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    #[arg(long, env = "ELIGO_RULES_DIR", default_value = "rules")]
    pub rules: PathBuf,
    /// Groups of fewer students are suppressed.
    #[arg(long, env = "ELIGO_SUPPRESS_BELOW", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub suppress_below: u64,
    /// Print the summary as JSON (as the API answers).
    #[arg(long)]
    pub json: bool,
}

fn read_policy(path: &PathBuf) -> anyhow::Result<crate::policy::PolicyVersion> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::policy::publish::load_candidate(&source, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn simulate(a: SimulateArgs) -> anyhow::Result<bool> {
    use crate::policy::whatif::{compare, Comparison};
    let candidate = read_policy(&a.policy)?;
    let as_of = a.as_of.unwrap_or_else(today);
    // Linked to the requirements in the rules folder it refers to (`student.meets`).
    let rules = Registry::load_dir(&a.rules)?;
    let candidate =
        crate::policy::publish::linked(&rules, &candidate).map_err(|e| anyhow::anyhow!("{e}"))?;
    let against = match (&a.against, a.against_version) {
        (Some(path), _) => {
            crate::policy::publish::linked(&Registry::load_dir(&a.rules)?, &read_policy(path)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
        (None, version) => {
            let registry = Registry::load_dir(&a.rules)?;
            let id = &candidate.meta.id;
            let found = match version {
                Some(n) => registry.version(id, n),
                None => registry.in_effect(id, as_of),
            };
            match (found, version) {
                (Some(v), _) => (**v).clone(),
                (None, Some(n)) => bail!("no version {n} of {id} in {}", a.rules.display()),
                (None, None) => bail!(
                    "no version of {id} in {} is in effect on {as_of}; give --against or --against-version",
                    a.rules.display()
                ),
            }
        }
    };
    if against.meta.id != candidate.meta.id {
        bail!(
            "the candidate is {} but --against is {}",
            candidate.meta.id,
            against.meta.id
        );
    }
    let text = std::fs::read_to_string(&a.students)
        .with_context(|| format!("cannot read {}", a.students.display()))?;
    let mut lines = Vec::new();
    let mut numbers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            lines.push(line.to_string());
            numbers.push(i + 1);
        }
    }
    let (summary, _, bad) = compare(
        &Comparison {
            candidate: &candidate,
            against: &against,
            as_of,
            suppress_below: a.suppress_below,
            threads: crate::service::simulate::cohort_threads(),
            budget: crate::policy::whatif::DECISION_BUDGET,
            max_errors: crate::policy::whatif::MAX_ERRORS,
        },
        &lines,
    )?;
    if !bad.is_empty() {
        let mut message = format!(
            "{} records in {} are invalid:",
            bad.len(),
            a.students.display()
        );
        for b in bad.iter().take(10) {
            message.push_str(&format!("\n  line {}: {}", numbers[b.index], b.message));
        }
        bail!(message);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render_whatif(&summary))?;
    }
    Ok(true)
}

fn describe_cost(c: &crate::policy::whatif::Cost) -> String {
    match (c.cents, c.credit_hours) {
        (Some(cents), _) => format!("{} awards, ${}.{:02}", c.awards, cents / 100, cents % 100),
        (None, Some(hours)) => format!("{} awards, {hours} credit hours", c.awards),
        (None, None) => format!("{} awards", c.awards),
    }
}

/// A what-if summary for people.
pub fn render_whatif(w: &crate::policy::whatif::WhatIf) -> String {
    let mut s = format!(
        "{} v{} against v{}, as of {}, {} students\n\n",
        w.policy_id, w.candidate.version, w.against.version, w.as_of, w.students
    );
    s.push_str(&format!(
        "            eligible  ineligible      errors  cost\n  before  {:>10}  {:>10}  {:>10}  {}\n  after   {:>10}  {:>10}  {:>10}  {}\n\n",
        w.before.eligible.to_string(),
        w.before.ineligible.to_string(),
        w.before.errors.to_string(),
        describe_cost(&w.before.cost),
        w.after.eligible.to_string(),
        w.after.ineligible.to_string(),
        w.after.errors.to_string(),
        describe_cost(&w.after.cost)
    ));
    s.push_str(&format!("  gained {}, lost {}\n", w.gained, w.lost));
    if !w.criteria.is_empty() {
        s.push_str("\nCriteria (students newly failing / newly passing)\n");
        for c in &w.criteria {
            s.push_str(&format!(
                "  {:<28} {:>10} {:>10}\n",
                c.code,
                c.newly_failing.to_string(),
                c.newly_passing.to_string()
            ));
        }
    }
    for (name, rows) in [
        ("School", &w.groups.school),
        ("Endorsement area", &w.groups.area),
        ("Gender", &w.groups.gender),
        ("Race/ethnicity", &w.groups.race_ethnicity),
    ] {
        s.push_str(&format!(
            "\n{name} (groups under {} suppressed)\n  {:<44} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            w.suppress_below, "group", "students", "before", "after", "gained", "lost"
        ));
        for r in rows {
            s.push_str(&format!(
                "  {:<44} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                r.group,
                r.students.to_string(),
                r.eligible_before.to_string(),
                r.eligible_after.to_string(),
                r.gained.to_string(),
                r.lost.to_string()
            ));
        }
    }
    s
}

pub fn export_policies(dir: &PathBuf, database_url: &str) -> anyhow::Result<bool> {
    let store = crate::store::Store::open(database_url, 1)?;
    let versions = store.policy_versions()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Each policy's cases as last published (by time, whatever the version numbers).
    let mut cases: std::collections::BTreeMap<String, (&str, &str)> = Default::default();
    for s in &versions {
        let m = &s.version.meta;
        let path = dir.join(format!("{}.v{}.rhai", m.id, m.version));
        std::fs::write(&path, &*s.version.source)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(tests) = &s.tests {
            let entry = cases
                .entry(m.id.clone())
                .or_insert((s.published_at.as_str(), tests.as_str()));
            if s.published_at.as_str() >= entry.0 {
                *entry = (s.published_at.as_str(), tests.as_str());
            }
        }
    }
    for (id, (_, tests)) in &cases {
        let value: serde_json::Value = serde_json::from_str(tests)?;
        let path = dir.join(format!("{id}.tests.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote {} versions and {} case files to {}",
        versions.len(),
        cases.len(),
        dir.display()
    );
    Ok(true)
}

pub fn gen_students(count: u64, seed: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for record in crate::cohort::generate(count, seed) {
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

pub fn migrate(database_url: &str) -> anyhow::Result<()> {
    let store = crate::store::Store::open(database_url, 1)?;
    // `open` migrates; a second call reports nothing pending, proving the schema is current.
    let pending = store.migrate()?;
    println!(
        "database at {database_url} is migrated ({} pending applied now)",
        pending.len()
    );
    Ok(())
}

/// Sets up logging: text by default, JSON lines with `--log-json`; RUST_LOG filters.
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

pub async fn serve(settings: crate::config::Settings) -> anyhow::Result<()> {
    let bind = settings.bind.clone();
    let app = crate::api::Application::build(settings).await?;
    tracing::info!(
        "eligo listening on {bind} (port {}); docs at /docs/",
        app.port()
    );
    app.run_until_signalled().await?;
    tracing::info!("eligo stopped");
    Ok(())
}
