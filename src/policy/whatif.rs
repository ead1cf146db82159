//! What-if: a candidate policy version against another on a whole cohort: who gains, who
//! loses, at what cost, which criteria move them, and for which groups, with small groups
//! suppressed (the records are minors').
//!
//! Records arrive as JSON text and are parsed on the worker threads: parsing costs as much as
//! evaluating, so it is spread over the cores too. Each thread has its own evaluator (sharing
//! one measured slower than one thread).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::decision::{Award, Decision, Outcome, Status};
use super::evaluate::{Evaluator, Prepared};
use super::registry::PolicyVersion;
use super::student::Student;

/// A version compared, by number and source hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionRef {
    pub version: u32,
    pub hash: String,
}

/// What eligible students would be granted, at most (before budgets). Suppressed with the
/// eligible count it is worked out from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cost {
    pub awards: Cell,
    /// Scholarships: awards × amount, in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cents: Option<i64>,
    /// Tuition waivers: awards × credit hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_hours: Option<f64>,
}

/// The outcomes under one version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Side {
    pub eligible: Cell,
    pub ineligible: Cell,
    pub errors: Cell,
    pub cost: Cost,
}

/// How many students one criterion moves. Only criteria a version declares in its metadata are
/// listed (a code made up at run time could carry a student's data out).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CriterionShift {
    pub code: String,
    /// Failed or unknown under the candidate, passed under the version compared against (or,
    /// for a criterion that version did not have, the student was eligible under it).
    pub newly_failing: Cell,
    /// Passed under the candidate, failed or unknown before (or, for a criterion the version
    /// compared against did not have, the student gains). Criteria the candidate dropped are
    /// not listed.
    pub newly_passing: Cell,
}

/// A count shown only when it is zero or at least the suppression threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    Suppressed,
}

impl Cell {
    pub(crate) fn new(n: u64, below: u64) -> Self {
        if n == 0 || n >= below {
            Self::Count(n)
        } else {
            Self::Suppressed
        }
    }

    /// A count out of `of` students: suppressed also when the rest (`of - n`) is small, since
    /// both are shown or derivable.
    pub(crate) fn out_of(n: u64, of: u64, below: u64) -> Self {
        match (Self::new(n, below), Self::new(of.saturating_sub(n), below)) {
            (Self::Count(_), Self::Count(_)) => Self::Count(n),
            _ => Self::Suppressed,
        }
    }

    pub(crate) fn is_suppressed(self) -> bool {
        self == Self::Suppressed
    }

    pub fn count(self) -> Option<u64> {
        match self {
            Self::Count(n) => Some(n),
            Self::Suppressed => None,
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Suppressed => f.write_str("suppressed"),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u64(*n),
            Self::Suppressed => s.serialize_str("suppressed"),
        }
    }
}

impl utoipa::PartialSchema for Cell {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["suppressed"])),
            )
            .description(Some(
                "A count of students, or `suppressed` when it is between 1 and the suppression \
                 threshold less one (or its group is that small)",
            ))
            .into()
    }
}

impl ToSchema for Cell {}

/// One group's counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupRow {
    pub group: String,
    pub students: Cell,
    pub eligible_before: Cell,
    pub eligible_after: Cell,
    pub gained: Cell,
    pub lost: Cell,
}

/// The counts broken down by group. A student with several endorsement areas or
/// race/ethnicity values counts in each.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Breakdowns {
    pub school: Vec<GroupRow>,
    pub area: Vec<GroupRow>,
    pub gender: Vec<GroupRow>,
    pub race_ethnicity: Vec<GroupRow>,
}

/// A what-if's summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhatIf {
    pub policy_id: String,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    pub candidate: VersionRef,
    pub against: VersionRef,
    pub students: Cell,
    pub before: Side,
    pub after: Side,
    pub gained: Cell,
    pub lost: Cell,
    pub criteria: Vec<CriterionShift>,
    pub groups: Breakdowns,
    /// Cells under this many students are suppressed.
    pub suppress_below: u64,
}

/// A student whose outcome changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Change {
    pub student_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub school_id: Option<String>,
    /// `gained` or `lost`.
    pub change: &'static str,
    pub before: Outcome,
    pub after: Outcome,
}

/// A record that could not be read (from a file; stored records are valid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// 0-based position in the input.
    pub index: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    students: u64,
    eligible_before: u64,
    eligible_after: u64,
    gained: u64,
    lost: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.students += o.students;
        self.eligible_before += o.eligible_before;
        self.eligible_after += o.eligible_after;
        self.gained += o.gained;
        self.lost += o.lost;
    }
}

const DIMENSIONS: usize = 4;

/// One thread's running totals.
#[derive(Default)]
struct Tally {
    students: u64,
    before: [u64; 3],
    after: [u64; 3],
    gained: u64,
    lost: u64,
    criteria: BTreeMap<String, (u64, u64)>,
    groups: [HashMap<String, Counts>; DIMENSIONS],
    changes: Vec<Change>,
    bad: Vec<BadRecord>,
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Eligible => 0,
        Outcome::Ineligible => 1,
        Outcome::Error => 2,
    }
}

fn bump(map: &mut HashMap<String, Counts>, key: &str, c: &Counts) {
    match map.get_mut(key) {
        Some(counts) => counts.add(c),
        None => {
            map.insert(key.to_string(), *c);
        }
    }
}

const NOT_RECORDED: &str = "(not recorded)";

impl Tally {
    fn record(
        &mut self,
        student: &Student,
        before: &Decision,
        after: &Decision,
        declared: &BTreeSet<&str>,
    ) {
        self.students += 1;
        self.before[outcome_index(before.outcome)] += 1;
        self.after[outcome_index(after.outcome)] += 1;
        let (was, is) = (
            before.outcome == Outcome::Eligible,
            after.outcome == Outcome::Eligible,
        );
        let counts = Counts {
            students: 1,
            eligible_before: u64::from(was),
            eligible_after: u64::from(is),
            gained: u64::from(!was && is),
            lost: u64::from(was && !is),
        };
        self.gained += counts.gained;
        self.lost += counts.lost;
        if was != is {
            self.changes.push(Change {
                student_id: student.student_id.clone(),
                school_id: student.school_id.clone(),
                change: if is { "gained" } else { "lost" },
                before: before.outcome,
                after: after.outcome,
            });
        }
        let mut counted: Vec<&str> = Vec::with_capacity(after.reasons.len());
        for r in &after.reasons {
            // Declared criteria only, each once per decision.
            if !declared.contains(r.code.as_str()) || counted.contains(&r.code.as_str()) {
                continue;
            }
            counted.push(&r.code);
            let earlier = before
                .reasons
                .iter()
                .find(|b| b.code == r.code)
                .map(|b| b.status);
            // A criterion the version compared against did not have is counted only where it
            // decides the change: it newly fails a student who was eligible, and newly passes
            // one who gained (a renamed criterion would otherwise count everyone it fails).
            let failing = r.status != Status::Passed
                && match earlier {
                    Some(s) => s == Status::Passed,
                    None => was,
                };
            let passing = r.status == Status::Passed
                && match earlier {
                    Some(s) => s != Status::Passed,
                    None => !was && is,
                };
            if failing || passing {
                let entry = self.criteria.entry(r.code.clone()).or_default();
                entry.0 += u64::from(failing);
                entry.1 += u64::from(passing);
            }
        }
        let [school, area, gender, race] = &mut self.groups;
        bump(
            school,
            student.school_id.as_deref().unwrap_or(NOT_RECORDED),
            &counts,
        );
        match &student.endorsements {
            None => bump(area, NOT_RECORDED, &counts),
            Some(list) if list.is_empty() => bump(area, "(none)", &counts),
            Some(list) => {
                let mut seen = Vec::with_capacity(list.len());
                for e in list {
                    if !seen.contains(&e.area) {
                        seen.push(e.area);
                        bump(area, e.area.as_str(), &counts);
                    }
                }
            }
        }
        let demographics = student.demographics.as_ref();
        bump(
            gender,
            demographics
                .and_then(|d| d.gender.as_deref())
                .unwrap_or(NOT_RECORDED),
            &counts,
        );
        match demographics.and_then(|d| d.race_ethnicity.as_ref()) {
            Some(values) if !values.is_empty() => {
                let mut seen: Vec<&str> = Vec::with_capacity(values.len());
                for v in values {
                    if !seen.contains(&v.as_str()) {
                        seen.push(v);
                        bump(race, v, &counts);
                    }
                }
            }
            _ => bump(race, NOT_RECORDED, &counts),
        }
    }

    fn merge(&mut self, o: Tally) {
        self.students += o.students;
        for i in 0..3 {
            self.before[i] += o.before[i];
            self.after[i] += o.after[i];
        }
        self.gained += o.gained;
        self.lost += o.lost;
        for (code, (f, p)) in o.criteria {
            let e = self.criteria.entry(code).or_default();
            e.0 += f;
            e.1 += p;
        }
        for (mine, theirs) in self.groups.iter_mut().zip(o.groups) {
            for (k, c) in theirs {
                mine.entry(k).or_default().add(&c);
            }
        }
        self.changes.extend(o.changes);
        self.bad.extend(o.bad);
    }
}

fn cost(award: &Option<Award>, awards: Cell) -> Cost {
    let Cell::Count(n) = awards else {
        return Cost {
            awards,
            cents: None,
            credit_hours: None,
        };
    };
    match award {
        None => Cost {
            awards,
            cents: None,
            credit_hours: None,
        },
        Some(Award::Scholarship { amount_cents }) => Cost {
            awards,
            cents: Some(amount_cents.saturating_mul(n as i64)),
            credit_hours: None,
        },
        Some(Award::TuitionWaiver { credit_hours, .. }) => Cost {
            awards,
            cents: None,
            credit_hours: Some(credit_hours * n as f64),
        },
    }
}

/// The cells of one group of `c.students` students (or of the whole cohort).
///
/// - a group smaller than the threshold shows nothing (its zeros would tell too);
/// - a count from 1 to the threshold less one is suppressed, and so is an eligible count whose
///   complement (the ineligible) is that small;
/// - `gained - lost = eligible after - eligible before`, so one hidden cell of these four could
///   be worked out from the other three: when one is suppressed, all four are.
fn cells(c: &Counts, below: u64) -> [Cell; 5] {
    if c.students < below {
        return [Cell::Suppressed; 5];
    }
    let mut cells = [
        Cell::Count(c.students),
        Cell::out_of(c.eligible_before, c.students, below),
        Cell::out_of(c.eligible_after, c.students, below),
        Cell::new(c.gained, below),
        Cell::new(c.lost, below),
    ];
    link(&mut cells);
    cells
}

/// When one of the four linked cells is suppressed, suppresses the other three.
fn link(cells: &mut [Cell; 5]) {
    if cells[1..].iter().any(|c| c.is_suppressed()) {
        for cell in &mut cells[1..] {
            *cell = Cell::Suppressed;
        }
    }
}

/// The rows of one breakdown, sorted by group. Besides each row's own rules, a column with
/// exactly one suppressed row gets a second one (the smallest shown), since the total minus the
/// shown rows would give it away; repeated until nothing changes.
fn rows(map: HashMap<String, Counts>, below: u64) -> Vec<GroupRow> {
    let mut rows: Vec<(String, [Cell; 5])> = map
        .into_iter()
        .map(|(group, c)| {
            let cells = cells(&c, below);
            (group, cells)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut cells: Vec<[Cell; 5]> = rows.iter().map(|r| r.1).collect();
    secondary(&mut cells, |row, column| {
        if column > 0 {
            link(row);
        }
    });
    for (row, c) in rows.iter_mut().zip(cells) {
        row.1 = c;
    }
    rows.into_iter()
        .map(
            |(group, [students, eligible_before, eligible_after, gained, lost])| GroupRow {
                group,
                students,
                eligible_before,
                eligible_after,
                gained,
                lost,
            },
        )
        .collect()
}

/// Secondary suppression over a table's rows: a column with exactly one suppressed row gets a
/// second (its smallest shown count), since a total less the shown rows would give the hidden
/// one away; `linked` then suppresses what else that row's change reveals. Repeated until
/// nothing changes.
pub(crate) fn secondary<R: AsRef<[Cell]> + AsMut<[Cell]>>(
    rows: &mut [R],
    linked: impl Fn(&mut R, usize),
) {
    let columns = rows.first().map_or(0, |r| r.as_ref().len());
    loop {
        let mut changed = false;
        for column in 0..columns {
            let hidden = rows
                .iter()
                .filter(|r| r.as_ref()[column].is_suppressed())
                .count();
            if hidden != 1 {
                continue;
            }
            let smallest = rows
                .iter_mut()
                .filter_map(|r| r.as_ref()[column].count().map(|n| (n, r)))
                .min_by_key(|(n, _)| *n)
                .map(|(_, r)| r);
            if let Some(row) = smallest {
                row.as_mut()[column] = Cell::Suppressed;
                linked(row, column);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The inputs of a what-if.
pub struct Comparison<'a> {
    pub candidate: &'a PolicyVersion,
    pub against: &'a PolicyVersion,
    pub as_of: NaiveDate,
    /// Cells under this many students are suppressed (at least 1).
    pub suppress_below: u64,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Operations one decision may use here (at most the engine's limit): a candidate is not
    /// yet tested, and runs on every student.
    pub budget: u64,
    /// Decisions ending in `error` after which the what-if stops (a broken or hostile
    /// candidate costs at most this many exhausted budgets).
    pub max_errors: u64,
}

/// Operations a decision may use in a what-if: ten times what the heaviest seed policy needs.
pub const DECISION_BUDGET: u64 = 10_000;
/// Error decisions after which a what-if stops.
pub const MAX_ERRORS: u64 = 1_000;

/// A what-if stopped because too many decisions ended in `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the what-if stopped after {errors} decisions ended in error (the first: {first}); fix the policy, then try again")]
pub struct Stopped {
    pub errors: u64,
    pub first: String,
}

/// What a what-if returns: the summary, the students who gain or lose (in input order) and the
/// records that could not be read.
pub type Compared = (WhatIf, Vec<Change>, Vec<BadRecord>);

/// Evaluates both versions on every record (JSON text) and sums up.
pub fn compare(c: &Comparison, records: &[String]) -> Result<Compared, Stopped> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let threads = c.threads.clamp(1, 64);
    let chunk = records.len().div_ceil(threads).max(1);
    let errors = AtomicU64::new(0);
    let first_error: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let errors = &errors;
    let first_error = &first_error;
    let declared: BTreeSet<&str> = c
        .candidate
        .meta
        .criteria
        .keys()
        .chain(c.against.meta.criteria.keys())
        .map(String::as_str)
        .collect();
    let declared = &declared;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = records
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    let mut evaluator = Evaluator::default();
                    let mut tally = Tally::default();
                    for (i, text) in part.iter().enumerate() {
                        match Student::from_json(text) {
                            Ok(student) => {
                                let prepared = Prepared::new(student);
                                let mut decide = |v: &PolicyVersion| {
                                    let d = evaluator
                                        .evaluate_within(v, &prepared, c.as_of, c.budget)
                                        .unwrap_or_else(|| {
                                            Decision::failed(
                                                v,
                                                c.as_of,
                                                &format!(
                                                    "more than the what-if's {} operations per decision",
                                                    c.budget
                                                ),
                                            )
                                        });
                                    if d.outcome == Outcome::Error {
                                        errors.fetch_add(1, Ordering::Relaxed);
                                        if let Ok(mut first) = first_error.lock() {
                                            first.get_or_insert_with(|| {
                                                d.error.clone().unwrap_or_default()
                                            });
                                        }
                                    }
                                    d
                                };
                                let before = decide(c.against);
                                let after = decide(c.candidate);
                                tally.record(prepared.student(), &before, &after, declared);
                                if errors.load(Ordering::Relaxed) >= c.max_errors {
                                    break;
                                }
                            }
                            Err(e) => tally.bad.push(BadRecord {
                                index: n * chunk + i,
                                message: e.to_string(),
                            }),
                        }
                    }
                    tally
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let errors = errors.load(Ordering::Relaxed);
    if errors >= c.max_errors {
        return Err(Stopped {
            errors,
            first: first_error
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default(),
        });
    }
    let mut total = Tally::default();
    for t in tallies {
        total.merge(t);
    }
    let below = c.suppress_below.max(1);
    let [school, area, gender, race] = total.groups;
    // The whole cohort (or the one school asked for) follows the rules of a group.
    let whole = Counts {
        students: total.students,
        eligible_before: total.before[0],
        eligible_after: total.after[0],
        gained: total.gained,
        lost: total.lost,
    };
    let [students, eligible_before, eligible_after, gained, lost] = cells(&whole, below);
    let small_cohort = students.is_suppressed();
    let count = |n: u64| {
        if small_cohort {
            Cell::Suppressed
        } else {
            Cell::new(n, below)
        }
    };
    // Eligible, ineligible and errors add up to the students: one hidden, all hidden.
    let side = |award: &Option<Award>, outcomes: [u64; 3], eligible: Cell| {
        let mut three = [eligible, count(outcomes[1]), count(outcomes[2])];
        if three.iter().any(|c| c.is_suppressed()) {
            three = [Cell::Suppressed; 3];
        }
        Side {
            eligible: three[0],
            ineligible: three[1],
            errors: three[2],
            cost: cost(award, three[0]),
        }
    };
    let summary = WhatIf {
        policy_id: c.candidate.meta.id.clone(),
        as_of: c.as_of,
        candidate: VersionRef {
            version: c.candidate.meta.version,
            hash: c.candidate.hash.clone(),
        },
        against: VersionRef {
            version: c.against.meta.version,
            hash: c.against.hash.clone(),
        },
        students,
        before: side(&c.against.meta.award, total.before, eligible_before),
        after: side(&c.candidate.meta.award, total.after, eligible_after),
        gained,
        lost,
        criteria: total
            .criteria
            .into_iter()
            .map(|(code, (newly_failing, newly_passing))| CriterionShift {
                code,
                newly_failing: count(newly_failing),
                newly_passing: count(newly_passing),
            })
            .collect(),
        groups: Breakdowns {
            school: rows(school, below),
            area: rows(area, below),
            gender: rows(gender, below),
            race_ethnicity: rows(race, below),
        },
        suppress_below: below,
    };
    Ok((summary, total.changes, total.bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Registry;

    fn seeds() -> Registry {
        Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap()
    }

    /// A graduate with the METT endorsement and a local manufacturing job offer, no college:
    /// eligible under IMA v2 only.
    fn job_path(id: &str, school: &str, gender: &str) -> String {
        serde_json::json!({
            "student_id": id, "school_id": school, "graduation_date": "2024-05-30",
            "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned"}],
            "job_offers": [{"employer": "Acme", "naics": "332710", "local": true}],
            "postsecondary": {"institution_id": "ivcc", "status": "applied"},
            "demographics": {"gender": gender, "race_ethnicity": ["hispanic_latino"]}
        })
        .to_string()
    }

    fn enrolled(id: &str, school: &str) -> String {
        serde_json::json!({
            "student_id": id, "school_id": school, "graduation_date": "2024-05-30",
            "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned"}],
            "postsecondary": {"institution_id": "ivcc", "status": "enrolled"}
        })
        .to_string()
    }

    fn comparison<'a>(
        candidate: &'a PolicyVersion,
        against: &'a PolicyVersion,
        threads: usize,
    ) -> Comparison<'a> {
        Comparison {
            candidate,
            against,
            as_of: "2024-06-01".parse().unwrap(),
            suppress_below: 10,
            threads,
            budget: DECISION_BUDGET,
            max_errors: MAX_ERRORS,
        }
    }

    fn compare_ima(records: &[String], threads: usize) -> Compared {
        let r = seeds();
        let v1 = r.version("ima-mett-scholarship", 1).unwrap();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        compare(&comparison(v2, v1, threads), records).unwrap()
    }

    #[test]
    fn the_job_offer_path_gains_students_and_costs_their_awards() {
        let mut records: Vec<String> = (0..12)
            .map(|i| job_path(&format!("J-{i}"), "big", "female"))
            .collect();
        records.extend((0..3).map(|i| job_path(&format!("S-{i}"), "small", "male")));
        records.extend((0..10).map(|i| enrolled(&format!("E-{i}"), "big")));
        let (w, changes, bad) = compare_ima(&records, 2);
        assert!(bad.is_empty());
        assert_eq!(w.students, Cell::Count(25));
        assert_eq!(w.before.eligible, Cell::Count(10));
        assert_eq!(w.after.eligible, Cell::Count(25));
        assert_eq!((w.gained, w.lost), (Cell::Count(15), Cell::Count(0)));
        assert_eq!(w.before.cost.cents, Some(10 * 50_000));
        assert_eq!(w.after.cost.cents, Some(25 * 50_000));
        assert_eq!(changes.len(), 15);
        assert!(changes.iter().all(|c| c.change == "gained"));
        // v1's college criterion and v2's combined one have different codes: the new one is
        // counted where it decides the change, for the 15 who gain.
        assert!(w.criteria.iter().all(|c| c.newly_failing == Cell::Count(0)));
        let new = w
            .criteria
            .iter()
            .find(|c| c.code == "college_or_local_job")
            .unwrap();
        assert_eq!(new.newly_passing, Cell::Count(15));
        // A school of 3 shows no number at all; with only two schools, the other one's numbers
        // would give it away (the totals minus them), so they are hidden too.
        let school = |g: &str| w.groups.school.iter().find(|r| r.group == g).unwrap();
        for row in [school("small"), school("big")] {
            assert_eq!(row.students, Cell::Suppressed);
            assert_eq!(row.gained, Cell::Suppressed);
        }
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["groups"]["school"][1]["gained"], "suppressed");
        assert_eq!(json["gained"], 15);
    }

    fn counts(students: u64, eb: u64, ea: u64, gained: u64, lost: u64) -> Counts {
        Counts {
            students,
            eligible_before: eb,
            eligible_after: ea,
            gained,
            lost,
        }
    }

    #[test]
    fn suppression_hides_small_cells_their_complements_and_what_the_rest_would_reveal() {
        use Cell::{Count, Suppressed};
        let map: HashMap<String, Counts> = [
            ("a", counts(100, 40, 60, 20, 0)),
            ("b", counts(50, 20, 30, 10, 0)),
            ("c", counts(5, 1, 2, 1, 0)),
            // 3 gained: hidden, and with it the other three linked cells (gained - lost =
            // after - before would give it back).
            ("d", counts(100, 50, 53, 3, 0)),
            // 95 of 100 eligible: the 5 ineligible would show, so hidden.
            ("e", counts(100, 95, 95, 0, 0)),
        ]
        .into_iter()
        .map(|(k, c)| (k.to_string(), c))
        .collect();
        let rows = rows(map, 10);
        let row = |g: &str| rows.iter().find(|r| r.group == g).unwrap();
        let all = |r: &GroupRow| {
            [
                r.students,
                r.eligible_before,
                r.eligible_after,
                r.gained,
                r.lost,
            ]
        };
        assert_eq!(
            all(row("a")),
            [Count(100), Count(40), Count(60), Count(20), Count(0)]
        );
        assert_eq!(all(row("c")), [Suppressed; 5]);
        assert_eq!(
            all(row("d")),
            [Count(100), Suppressed, Suppressed, Suppressed, Suppressed]
        );
        assert_eq!(
            all(row("e")),
            [Count(100), Suppressed, Suppressed, Suppressed, Suppressed]
        );
        // `c` alone hides its student count: the smallest other (b, 50) is hidden with it.
        assert_eq!(row("b").students, Suppressed);
        // No column is left with exactly one hidden cell.
        for column in 0..5 {
            let hidden = rows.iter().filter(|r| all(r)[column] == Suppressed).count();
            assert_ne!(hidden, 1, "column {column}");
        }
        // A whole cohort under the threshold shows nothing.
        assert_eq!(cells(&counts(9, 5, 5, 0, 0), 10), [Suppressed; 5]);
    }

    #[test]
    fn one_thread_and_many_agree_and_bad_records_are_reported_by_position() {
        let mut records: Vec<String> = (0..40)
            .map(|i| {
                if i % 3 == 0 {
                    enrolled(&format!("E-{i}"), "a")
                } else {
                    job_path(&format!("J-{i}"), "b", "x")
                }
            })
            .collect();
        records[7] = "{\"student_id\": 5}".into();
        let (one, mut c1, b1) = compare_ima(&records, 1);
        let (four, mut c4, b4) = compare_ima(&records, 4);
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            serde_json::to_value(&four).unwrap()
        );
        c1.sort_by(|a, b| a.student_id.cmp(&b.student_id));
        c4.sort_by(|a, b| a.student_id.cmp(&b.student_id));
        assert_eq!(c1, c4);
        assert_eq!(b1, b4);
        assert_eq!(b1.len(), 1);
        assert_eq!(b1[0].index, 7);
        assert_eq!(one.students, Cell::Count(39));
    }

    fn candidate(from_v2: impl Fn(&str) -> String) -> PolicyVersion {
        let r = seeds();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        crate::policy::publish::load_candidate(
            &from_v2(&v2.source.replace("version: 2,", "version: 3,")),
            "c",
        )
        .unwrap()
    }

    #[test]
    fn a_stricter_candidate_loses_students_and_names_the_criterion() {
        let r = seeds();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        let stricter = candidate(|s| {
            s.replace(
                "student.local_job_offer([\"31\", \"32\", \"33\"])",
                "student.local_job_offer([\"336\"])",
            )
        });
        let records: Vec<String> = (0..10)
            .map(|i| job_path(&format!("J-{i}"), "a", "x"))
            .collect();
        let (w, changes, _) = compare(&comparison(&stricter, v2, 2), &records).unwrap();
        assert_eq!((w.gained, w.lost), (Cell::Count(0), Cell::Count(10)));
        assert_eq!(changes[0].change, "lost");
        let shift = w
            .criteria
            .iter()
            .find(|c| c.code == "college_or_local_job")
            .unwrap();
        assert_eq!(
            (shift.newly_failing, shift.newly_passing),
            (Cell::Count(10), Cell::Count(0))
        );
    }

    #[test]
    fn codes_a_version_does_not_declare_are_not_counted() {
        let r = seeds();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        // A code built from the record would carry it out in the criteria list.
        let leaky = candidate(|s| {
            s.replace(
                "pay_to_college_if_requested(student);",
                "require(\"id_\" + student.student_id, false, \"m\", \"m\");",
            )
        });
        let records: Vec<String> = (0..12)
            .map(|i| job_path(&format!("J-{i}"), "a", "x"))
            .collect();
        let (w, _, _) = compare(&comparison(&leaky, v2, 2), &records).unwrap();
        assert!(
            w.criteria.iter().all(|c| !c.code.starts_with("id_")),
            "{:?}",
            w.criteria
        );
    }

    #[test]
    fn a_candidate_that_errs_stops_the_what_if_early() {
        let r = seeds();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        let endless = candidate(|s| s.replace("pay_to_college_if_requested(student);", "loop { }"));
        let records: Vec<String> = (0..50)
            .map(|i| job_path(&format!("J-{i}"), "a", "x"))
            .collect();
        let mut c = comparison(&endless, v2, 2);
        c.max_errors = 5;
        let stopped = compare(&c, &records).unwrap_err();
        assert!(stopped.errors >= 5 && stopped.errors < 50, "{stopped}");
        assert!(stopped.first.contains("operations"), "{stopped}");
    }
}
