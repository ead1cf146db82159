//! What-if: a candidate policy version against another on a whole cohort: who gains, who
//! loses, at what cost, which criteria move them, and for which groups, with small groups
//! suppressed (the records are minors').
//!
//! Records arrive as JSON text and are parsed on the worker threads: parsing costs as much as
//! evaluating, so it is spread over the cores too. Each thread has its own evaluator (sharing
//! one measured slower than one thread).

use std::collections::{BTreeMap, HashMap};

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

/// What eligible students would be granted, at most (before budgets).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Cost {
    pub awards: u64,
    /// Scholarships: awards × amount, in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cents: Option<i64>,
    /// Tuition waivers: awards × credit hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_hours: Option<f64>,
}

/// The outcomes under one version.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Side {
    pub eligible: u64,
    pub ineligible: u64,
    pub errors: u64,
    pub cost: Cost,
}

/// How many students one criterion moves.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CriterionShift {
    pub code: String,
    /// Failed or unknown under the candidate, passed under the version compared against (or,
    /// for a criterion that version did not have, the student was eligible under it).
    pub newly_failing: u64,
    /// Passed under the candidate, failed or unknown before (or, for a criterion the version
    /// compared against did not have, the student gains). Criteria the candidate dropped are
    /// not listed.
    pub newly_passing: u64,
}

/// A count shown only when it is zero or at least the suppression threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    Suppressed,
}

impl Cell {
    fn new(n: u64, below: u64) -> Self {
        if n == 0 || n >= below {
            Self::Count(n)
        } else {
            Self::Suppressed
        }
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
    pub students: u64,
    pub before: Side,
    pub after: Side,
    pub gained: u64,
    pub lost: u64,
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
    fn record(&mut self, student: &Student, before: &Decision, after: &Decision) {
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
        for r in &after.reasons {
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

fn cost(award: &Award, awards: u64) -> Cost {
    match award {
        Award::Scholarship { amount_cents } => Cost {
            awards,
            cents: Some(amount_cents.saturating_mul(awards as i64)),
            credit_hours: None,
        },
        Award::TuitionWaiver { credit_hours, .. } => Cost {
            awards,
            cents: None,
            credit_hours: Some(credit_hours * awards as f64),
        },
    }
}

fn rows(map: HashMap<String, Counts>, below: u64) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = map
        .into_iter()
        .map(|(group, c)| {
            // A group smaller than the threshold shows nothing at all: its zeros would tell too.
            let small = c.students < below;
            let cell = |n: u64| {
                if small {
                    Cell::Suppressed
                } else {
                    Cell::new(n, below)
                }
            };
            GroupRow {
                group,
                students: cell(c.students),
                eligible_before: cell(c.eligible_before),
                eligible_after: cell(c.eligible_after),
                gained: cell(c.gained),
                lost: cell(c.lost),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    rows
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
}

/// Evaluates both versions on every record (JSON text) and sums up. Returns the summary, the
/// students who gain or lose (in input order) and the records that could not be read.
pub fn compare(c: &Comparison, records: &[String]) -> (WhatIf, Vec<Change>, Vec<BadRecord>) {
    let threads = c.threads.clamp(1, 64);
    let chunk = records.len().div_ceil(threads).max(1);
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
                                let before = evaluator.evaluate(c.against, &prepared, c.as_of);
                                let after = evaluator.evaluate(c.candidate, &prepared, c.as_of);
                                tally.record(prepared.student(), &before, &after);
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
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut total = Tally::default();
    for t in tallies {
        total.merge(t);
    }
    let below = c.suppress_below.max(1);
    let [school, area, gender, race] = total.groups;
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
        students: total.students,
        before: Side {
            eligible: total.before[0],
            ineligible: total.before[1],
            errors: total.before[2],
            cost: cost(&c.against.meta.award, total.before[0]),
        },
        after: Side {
            eligible: total.after[0],
            ineligible: total.after[1],
            errors: total.after[2],
            cost: cost(&c.candidate.meta.award, total.after[0]),
        },
        gained: total.gained,
        lost: total.lost,
        criteria: total
            .criteria
            .into_iter()
            .map(|(code, (newly_failing, newly_passing))| CriterionShift {
                code,
                newly_failing,
                newly_passing,
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
    (summary, total.changes, total.bad)
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

    fn compare_ima(records: &[String], threads: usize) -> (WhatIf, Vec<Change>, Vec<BadRecord>) {
        let r = seeds();
        let v1 = r.version("ima-mett-scholarship", 1).unwrap();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        compare(
            &Comparison {
                candidate: v2,
                against: v1,
                as_of: "2024-06-01".parse().unwrap(),
                suppress_below: 10,
                threads,
            },
            records,
        )
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
        assert_eq!(w.students, 25);
        assert_eq!(w.before.eligible, 10);
        assert_eq!(w.after.eligible, 25);
        assert_eq!((w.gained, w.lost), (15, 0));
        assert_eq!(w.before.cost.cents, Some(10 * 50_000));
        assert_eq!(w.after.cost.cents, Some(25 * 50_000));
        assert_eq!(changes.len(), 15);
        assert!(changes.iter().all(|c| c.change == "gained"));
        // v1's college criterion and v2's combined one have different codes: the new one is
        // counted where it decides the change, for the 15 who gain.
        assert!(w.criteria.iter().all(|c| c.newly_failing == 0));
        let new = w
            .criteria
            .iter()
            .find(|c| c.code == "college_or_local_job")
            .unwrap();
        assert_eq!(new.newly_passing, 15);
        let school = |g: &str| w.groups.school.iter().find(|r| r.group == g).unwrap();
        assert_eq!(school("big").students, Cell::Count(22));
        assert_eq!(school("big").gained, Cell::Count(12));
        assert_eq!(school("big").lost, Cell::Count(0));
        // A group of 3 shows no number at all.
        let small = school("small");
        assert_eq!(small.students, Cell::Suppressed);
        assert_eq!(small.gained, Cell::Suppressed);
        assert_eq!(small.lost, Cell::Suppressed);
        let gender = |g: &str| w.groups.gender.iter().find(|r| r.group == g).unwrap();
        assert_eq!(gender("female").gained, Cell::Count(12));
        assert_eq!(gender(NOT_RECORDED).students, Cell::Count(10));
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["groups"]["school"][1]["gained"], "suppressed");
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
        assert_eq!(one.students, 39);
    }

    #[test]
    fn a_stricter_candidate_loses_students_and_names_the_criterion() {
        let r = seeds();
        let v2 = r.version("ima-mett-scholarship", 2).unwrap();
        let stricter = crate::policy::publish::load_candidate(
            &v2.source.replace("version: 2,", "version: 3,").replace(
                "student.local_job_offer([\"31\", \"32\", \"33\"])",
                "student.local_job_offer([\"336\"])",
            ),
            "c",
        )
        .unwrap();
        let records: Vec<String> = (0..10)
            .map(|i| job_path(&format!("J-{i}"), "a", "x"))
            .collect();
        let (w, changes, _) = compare(
            &Comparison {
                candidate: &stricter,
                against: v2,
                as_of: "2024-06-01".parse().unwrap(),
                suppress_below: 10,
                threads: 2,
            },
            &records,
        );
        assert_eq!((w.gained, w.lost), (0, 10));
        assert_eq!(changes[0].change, "lost");
        let shift = w
            .criteria
            .iter()
            .find(|c| c.code == "college_or_local_job")
            .unwrap();
        assert_eq!((shift.newly_failing, shift.newly_passing), (10, 0));
    }
}
