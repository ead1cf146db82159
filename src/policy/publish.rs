//! Checking a candidate policy version before it counts: it compiles within the engine's
//! limits, its metadata is valid, it fits the published versions (same rules as `rules/`
//! loading), its cases pass, and its cases exercise every criterion (coverage).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::decision::{Decision, Outcome, Status};
use super::engine::{build_engine, Limits};
use super::evaluate::Evaluator;
use super::registry::{conflict, load_version, Conflict, PolicyVersion, Registry};
use super::tests::{run_case_deciding, CaseResult, TestSuite};
use super::PolicyError;

/// How the cases came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TestSummary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
}

/// What the cases made of one criterion of the candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CriterionCoverage {
    pub code: String,
    /// Every status the criterion reached in the candidate's cases, in the order passed,
    /// failed, unknown.
    pub statuses: Vec<Status>,
    /// Whether some case saw it not passing (failed or unknown).
    pub exercised: bool,
}

/// Whether the cases test the candidate enough to publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Coverage {
    /// Cases decided by the candidate (their `as_of` falls in its effective period).
    pub cases: usize,
    pub eligible: usize,
    pub ineligible: usize,
    /// Every criterion the candidate declares or reports, by code.
    pub criteria: Vec<CriterionCoverage>,
    /// Criteria no case saw failed or unknown.
    pub unexercised: Vec<String>,
    /// Whether the gate is met: an eligible case, an ineligible case, every criterion exercised.
    pub met: bool,
    /// What keeps the gate shut, in words (empty when met).
    pub problems: Vec<String>,
}

impl Coverage {
    /// Reads coverage from the decisions the candidate made for its cases.
    pub fn of(candidate: &PolicyVersion, decisions: &[&Decision]) -> Self {
        let mut seen: BTreeMap<String, BTreeSet<Status>> = candidate
            .meta
            .criteria
            .keys()
            .map(|code| (code.clone(), BTreeSet::new()))
            .collect();
        let (mut eligible, mut ineligible) = (0, 0);
        for d in decisions {
            match d.outcome {
                Outcome::Eligible => eligible += 1,
                Outcome::Ineligible => ineligible += 1,
                Outcome::Error => {}
            }
            for r in &d.reasons {
                seen.entry(r.code.clone()).or_default().insert(r.status);
            }
        }
        let criteria: Vec<CriterionCoverage> = seen
            .into_iter()
            .map(|(code, statuses)| {
                let statuses: Vec<Status> = statuses.into_iter().collect();
                let exercised = statuses.iter().any(|s| *s != Status::Passed);
                CriterionCoverage {
                    code,
                    statuses,
                    exercised,
                }
            })
            .collect();
        let unexercised: Vec<String> = criteria
            .iter()
            .filter(|c| !c.exercised)
            .map(|c| c.code.clone())
            .collect();
        let mut problems = Vec::new();
        if eligible == 0 {
            problems.push("no case of this version is eligible".to_string());
        }
        if ineligible == 0 {
            problems.push("no case of this version is ineligible".to_string());
        }
        if !unexercised.is_empty() {
            problems.push(format!(
                "no case sees these criteria failed or unknown: {}",
                unexercised.join(", ")
            ));
        }
        Self {
            cases: decisions.len(),
            eligible,
            ineligible,
            criteria,
            unexercised,
            met: problems.is_empty(),
            problems,
        }
    }
}

/// A candidate that passed every check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub version: PolicyVersion,
    pub suite: TestSuite,
    /// Whether exactly this version (same number, same source) is already published.
    pub already_published: bool,
    pub summary: TestSummary,
    pub results: Vec<CaseResult>,
    pub coverage: Coverage,
}

/// Why a candidate is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// It does not compile, or its metadata is bad.
    #[error(transparent)]
    Policy(PolicyError),
    /// The script is longer than [`MAX_SOURCE_CHARS`].
    #[error("source: {0} characters, more than the {MAX_SOURCE_CHARS} a policy script may have")]
    TooLong(usize),
    /// The cases document is malformed or names another policy.
    #[error("tests: {0}")]
    Tests(String),
    /// The same id and version are published with another source.
    #[error("{0}")]
    Changed(String),
    /// Its effective period overlaps a published version's.
    #[error("{0}")]
    Period(String),
    /// It would move the policy to another sponsor.
    #[error("{0}")]
    Sponsor(String),
    /// Some cases fail.
    #[error("{} of {} test cases fail", .summary.failed, .summary.total)]
    CasesFail {
        summary: TestSummary,
        failures: Vec<CaseResult>,
        coverage: Box<Coverage>,
    },
    /// The cases pass but do not exercise it enough.
    #[error("the test cases do not cover the policy: {}", .coverage.problems.join("; "))]
    Coverage {
        summary: TestSummary,
        coverage: Box<Coverage>,
    },
}

/// The longest script accepted over the API and the pages, in characters (the seed policies are
/// about 2,000). Even written as JSON escapes (up to 12 bytes a character) it fits the request
/// body limit, so an over-long script is refused by name, not by size.
pub const MAX_SOURCE_CHARS: usize = 16_384;

/// Compiles and reads a candidate (engine limits on); `origin` labels it in messages.
pub fn load_candidate(source: &str, origin: &str) -> Result<PolicyVersion, Refusal> {
    let chars = source.chars().count();
    if chars > MAX_SOURCE_CHARS {
        return Err(Refusal::TooLong(chars));
    }
    load_version(&build_engine(&Limits::default()), source, origin).map_err(Refusal::Policy)
}

/// Parses a cases document sent as JSON.
pub fn parse_suite(tests: serde_json::Value, origin: &str) -> Result<TestSuite, Refusal> {
    let mut suite: TestSuite = serde_path_to_error::deserialize(tests)
        .map_err(|e| Refusal::Tests(format!("{}: {}", e.path(), e.inner())))?;
    suite.origin = origin.to_string();
    Ok(suite)
}

/// Whether `candidate` fits beside the published versions of its policy: same sponsor, no
/// other source under its number, no overlapping period. `Ok(true)` when exactly this version
/// is published already.
pub fn fits<'a>(
    published: impl Iterator<Item = &'a PolicyVersion>,
    candidate: &PolicyVersion,
) -> Result<bool, Refusal> {
    let mut already_published = false;
    for v in published.filter(|v| v.meta.id == candidate.meta.id) {
        if v.meta.kind != candidate.meta.kind {
            return Err(Refusal::Sponsor(format!(
                "kind: {} is a {} policy; a new version cannot make it a {}",
                v.meta.id,
                v.meta.kind.as_str(),
                candidate.meta.kind.as_str()
            )));
        }
        if v.meta.sponsor != candidate.meta.sponsor {
            return Err(Refusal::Sponsor(format!(
                "sponsor: {} belongs to {}; a new version cannot move it to {}",
                v.meta.id, v.meta.sponsor, candidate.meta.sponsor
            )));
        }
        match conflict(v, candidate) {
            Some(Conflict::Duplicate(_)) => already_published = true,
            Some(Conflict::Changed(m)) => return Err(Refusal::Changed(m)),
            Some(Conflict::Overlap(m)) => return Err(Refusal::Period(m)),
            None => {}
        }
    }
    Ok(already_published)
}

/// The published versions with `candidate` in place of any of the same id and number, linked:
/// the candidate may refer to requirements (`student.meets`), and its links are checked here
/// (known, requirements, no circle).
pub fn with_candidate(
    published: &Registry,
    candidate: &PolicyVersion,
) -> Result<Registry, Refusal> {
    let id = &candidate.meta.id;
    let same = |v: &PolicyVersion| v.meta.id == *id && v.meta.version == candidate.meta.version;
    linked_with(published, candidate, same)
}

/// `candidate` linked to the requirements it refers to, whatever its period: a what-if
/// compares it with another version, so it stands alone (its own policy's other versions are
/// left out).
pub fn linked(published: &Registry, candidate: &PolicyVersion) -> Result<PolicyVersion, Refusal> {
    let id = &candidate.meta.id;
    let registry = linked_with(published, candidate, |v| v.meta.id == *id)?;
    Ok(registry
        .version(id, candidate.meta.version)
        .map(|v| (**v).clone())
        .unwrap_or_else(|| candidate.clone()))
}

fn linked_with(
    published: &Registry,
    candidate: &PolicyVersion,
    leave_out: impl Fn(&PolicyVersion) -> bool,
) -> Result<Registry, Refusal> {
    let mut versions: Vec<PolicyVersion> = published
        .versions()
        .iter()
        .filter(|v| !leave_out(v))
        .map(|v| {
            PolicyVersion::new(
                v.meta.clone(),
                v.source.clone(),
                v.hash.clone(),
                v.origin.clone(),
            )
        })
        .collect();
    versions.push(PolicyVersion::new(
        candidate.meta.clone(),
        candidate.source.clone(),
        candidate.hash.clone(),
        candidate.origin.clone(),
    ));
    Registry::new(versions, vec![]).map_err(Refusal::Policy)
}

/// Runs `suite` with `candidate` in place of any published version of the same number (with a
/// fresh evaluator, so candidates never stay in a shared cache), and reads its coverage from
/// the cases that the candidate decided.
pub fn run_cases(
    published: &Registry,
    candidate: &PolicyVersion,
    suite: &TestSuite,
) -> Result<(Vec<CaseResult>, Coverage), Refusal> {
    let id = &candidate.meta.id;
    let registry = with_candidate(published, candidate)?;
    let mut evaluator = Evaluator::default();
    let mut results = Vec::with_capacity(suite.cases.len());
    let mut decisions = Vec::new();
    for case in &suite.cases {
        let (result, decision) = run_case_deciding(&registry, &mut evaluator, id, case);
        results.push(result);
        decisions.push(decision);
    }
    let mine: Vec<&Decision> = decisions
        .iter()
        .flatten()
        .filter(|d| d.version == candidate.meta.version)
        .collect();
    Ok((results, Coverage::of(candidate, &mine)))
}

/// Runs every check on a compiled candidate against the published versions in `published`.
/// Evaluates the cases with a fresh evaluator, so candidates never stay in a shared cache.
pub fn check(
    published: &Registry,
    candidate: PolicyVersion,
    suite: TestSuite,
) -> Result<Checked, Refusal> {
    let id = candidate.meta.id.clone();
    if suite.policy != id {
        return Err(Refusal::Tests(format!(
            "the cases are for policy {:?}, the source is {id:?}",
            suite.policy
        )));
    }
    let already_published = fits(published.versions_of(&id).map(|v| &**v), &candidate)?;
    let (results, coverage) = run_cases(published, &candidate, &suite)?;
    let failed = results.iter().filter(|r| !r.passed).count();
    let summary = TestSummary {
        total: results.len(),
        passed: results.len() - failed,
        failed,
    };
    if failed > 0 {
        return Err(Refusal::CasesFail {
            summary,
            failures: results.into_iter().filter(|r| !r.passed).collect(),
            coverage: Box::new(coverage),
        });
    }
    if !coverage.met {
        return Err(Refusal::Coverage {
            summary,
            coverage: Box::new(coverage),
        });
    }
    Ok(Checked {
        version: candidate,
        suite,
        already_published,
        summary,
        results,
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"fn policy() { #{ id: "p", version: 1, title: "T", sponsor: "s",
        award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2024-01-01",
        criteria: #{ grad: #{ label: "Graduated", missing: "Graduate" },
                     offer: #{ label: "Job offer", missing: "Get an offer" } } } }
        fn evaluate(student, ctx) {
            require("grad", student.graduated);
            require("offer", student.local_job_offer(["31"]));
        }"#;

    fn case(name: &str, student: serde_json::Value, outcome: &str) -> serde_json::Value {
        serde_json::json!({"name": name, "as_of": "2024-06-01", "student": student,
            "expect": {"outcome": outcome}})
    }

    fn grad() -> serde_json::Value {
        serde_json::json!({"student_id": "A", "graduation_date": "2024-05-30",
            "job_offers": [{"employer": "Acme", "naics": "311", "local": true}]})
    }

    fn suite(cases: Vec<serde_json::Value>) -> TestSuite {
        parse_suite(serde_json::json!({"policy": "p", "cases": cases}), "test").unwrap()
    }

    fn run(source: &str, cases: Vec<serde_json::Value>) -> Result<Checked, Refusal> {
        check(
            &Registry::default(),
            load_candidate(source, "candidate").unwrap(),
            suite(cases),
        )
    }

    #[test]
    fn a_covered_candidate_passes_and_reports_statuses_per_criterion() {
        let mut no_offer = grad();
        no_offer["job_offers"] = serde_json::json!([]);
        let mut no_grad = grad();
        no_grad["graduation_date"] = serde_json::Value::Null;
        let checked = run(
            SOURCE,
            vec![
                case("ok", grad(), "eligible"),
                case("no offer", no_offer, "ineligible"),
                case("graduation unknown", no_grad, "ineligible"),
            ],
        )
        .unwrap();
        assert_eq!(checked.summary.passed, 3);
        assert!(checked.coverage.met, "{:?}", checked.coverage);
        let grad = &checked.coverage.criteria[0];
        assert_eq!(grad.code, "grad");
        assert_eq!(grad.statuses, vec![Status::Passed, Status::Unknown]);
        assert_eq!(
            checked.coverage.criteria[1].statuses,
            vec![Status::Passed, Status::Failed]
        );
    }

    #[test]
    fn coverage_names_the_criteria_never_exercised_and_needs_both_outcomes() {
        let mut no_offer = grad();
        no_offer["job_offers"] = serde_json::json!([]);
        match run(
            SOURCE,
            vec![
                case("ok", grad(), "eligible"),
                case("no", no_offer, "ineligible"),
            ],
        ) {
            Err(Refusal::Coverage { coverage, .. }) => {
                assert_eq!(coverage.unexercised, vec!["grad"]);
                assert!(!coverage.met);
            }
            other => panic!("expected a coverage refusal, got {other:?}"),
        }
        match run(SOURCE, vec![case("ok", grad(), "eligible")]) {
            Err(Refusal::Coverage { coverage, .. }) => {
                assert!(coverage.problems[0].contains("ineligible"), "{coverage:?}");
                assert_eq!(coverage.unexercised, vec!["grad", "offer"]);
            }
            other => panic!("expected a coverage refusal, got {other:?}"),
        }
    }

    #[test]
    fn failing_cases_are_listed_with_expected_and_actual() {
        match run(SOURCE, vec![case("wrong", grad(), "ineligible")]) {
            Err(Refusal::CasesFail { failures, .. }) => {
                assert_eq!(failures.len(), 1);
                assert_eq!(failures[0].expected.outcome, "ineligible");
                assert_eq!(failures[0].actual, "eligible");
            }
            other => panic!("expected failing cases, got {other:?}"),
        }
    }

    #[test]
    fn published_versions_decide_changed_sources_overlaps_and_sponsors() {
        let v1 = load_candidate(SOURCE, "v1").unwrap();
        let published = Registry::new(vec![v1], vec![]).unwrap();
        let changed = SOURCE.replace("amount_cents: 100", "amount_cents: 200");
        let try_ = |source: &str| {
            check(
                &published,
                load_candidate(source, "candidate").unwrap(),
                suite(vec![]),
            )
        };
        assert!(matches!(try_(&changed), Err(Refusal::Changed(_))));
        let overlapping = changed.replace("version: 1", "version: 2");
        assert!(matches!(try_(&overlapping), Err(Refusal::Period(m)) if m.contains("overlapping")));
        let moved = SOURCE
            .replace("version: 1", "version: 2")
            .replace("sponsor: \"s\"", "sponsor: \"t\"")
            .replace("\"2024-01-01\"", "\"2030-01-01\"");
        assert!(matches!(try_(&moved), Err(Refusal::Sponsor(_))));
        // Nor can a version turn an incentive into a requirement.
        let kind = SOURCE
            .replace("version: 1", "version: 2")
            .replace(
                "award: #{ kind: \"scholarship\", amount_cents: 100 },",
                "kind: \"requirement\",",
            )
            .replace("\"2024-01-01\"", "\"2030-01-01\"");
        assert!(matches!(try_(&kind), Err(Refusal::Sponsor(m)) if m.starts_with("kind")));
        // The same version again is not a conflict: it is already published.
        match try_(SOURCE) {
            Err(Refusal::Coverage { .. }) => {}
            other => panic!("the same version should reach the cases, got {other:?}"),
        }
    }

    #[test]
    fn cases_for_another_policy_are_refused() {
        let other = parse_suite(serde_json::json!({"policy": "q", "cases": []}), "test").unwrap();
        let err = check(
            &Registry::default(),
            load_candidate(SOURCE, "c").unwrap(),
            other,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"q\""), "{err}");
    }

    #[test]
    fn a_hostile_script_is_refused_by_its_cases_within_the_limits() {
        for (body, extra) in [
            ("loop { }", ""),
            ("deep(0);", "fn deep(n) { deep(n + 1) }"),
            ("let s = \"x\"; loop { s += s; }", ""),
            ("let a = []; loop { a.push(a.len()); }", ""),
        ] {
            let source = SOURCE.replace(
                "require(\"grad\", student.graduated);",
                &format!("{body} require(\"grad\", student.graduated);"),
            ) + extra;
            let result = load_candidate(&source, "c").map(|v| {
                check(
                    &Registry::default(),
                    v,
                    suite(vec![case("ok", grad(), "eligible")]),
                )
            });
            match result {
                Ok(Err(Refusal::CasesFail { failures, .. })) => {
                    assert_eq!(failures[0].actual, "error", "{body}")
                }
                Err(Refusal::Policy(_)) => {} // refused at compile time
                other => panic!("{body}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_seed_version_meets_the_gate() {
        let seeds = Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
        for v in seeds.versions() {
            let suite = seeds
                .suites()
                .iter()
                .find(|s| s.policy == v.meta.id)
                .unwrap()
                .clone();
            let checked = check(&seeds, (**v).clone(), suite)
                .unwrap_or_else(|e| panic!("{} v{}: {e}", v.meta.id, v.meta.version));
            assert!(checked.already_published);
            assert!(checked.coverage.met);
            assert!(checked.coverage.cases > 0);
        }
    }
}
