//! Reports for program officers: award decisions by group, how far students get along the
//! pathway, and whether each program's budget will last. Counts about groups of students
//! (school, endorsement area, gender, race/ethnicity) follow the what-if's suppression rules:
//! a group smaller than the threshold shows nothing, a count from 1 to the threshold less one
//! is `suppressed`, and a column with one hidden cell hides a second.
//!
//! Program-level figures (by policy or by month, budgets) are not about a group of students
//! and are shown whole: awarders already see each decision in the ledger.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use super::access::{Caller, Role};
use super::simulate::cohort_threads;
use super::{blocking, with_evaluator, Service, ServiceError};
use crate::policy::student::{EndorsementArea, EndorsementStatus, PostsecondaryStatus};
use crate::policy::whatif::{secondary, Cell};
use crate::policy::{Award, Outcome, PolicyVersion, Prepared, Registry, Status, Student};

/// Shown when a group's record lacks the value.
const NOT_RECORDED: &str = "(not recorded)";

/// Defines a sum shown as a number, or `suppressed` when the counts it is made of are.
macro_rules! amount {
    ($name:ident, $t:ty, $kind:expr, $what:literal) => {
        #[doc = concat!($what, ", or `suppressed` when the counts it is made of are.")]
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum $name {
            Value($t),
            Suppressed,
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::Value(v) => v.serialize(s),
                    Self::Suppressed => s.serialize_str("suppressed"),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Self::Value(v) => write!(f, "{v}"),
                    Self::Suppressed => f.write_str("suppressed"),
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
                OneOfBuilder::new()
                    .item(ObjectBuilder::new().schema_type($kind))
                    .item(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["suppressed"])),
                    )
                    .description(Some(concat!(
                        $what,
                        ", or `suppressed` when the counts it is made of are"
                    )))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}
amount!(
    Cents,
    i64,
    utoipa::openapi::schema::Type::Integer,
    "Net money in cents"
);
amount!(
    Hours,
    f64,
    utoipa::openapi::schema::Type::Number,
    "Net credit hours"
);

/// How to group the awards report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AwardsGroupBy {
    #[default]
    Policy,
    School,
    Area,
    Gender,
    RaceEthnicity,
    Month,
}

impl AwardsGroupBy {
    /// Whether the groups are groups of students (and so suppressed when small).
    fn is_about_students(self) -> bool {
        !matches!(self, Self::Policy | Self::Month)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::School => "school",
            Self::Area => "area",
            Self::Gender => "gender",
            Self::RaceEthnicity => "race_ethnicity",
            Self::Month => "month",
        }
    }
}

/// How to group the progression report (besides the whole cohort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StudentGroupBy {
    School,
    Gender,
    RaceEthnicity,
}

/// The part of a stored record the groupings read (everything else is skipped unparsed).
#[derive(Debug, Clone, Default, Deserialize)]
struct GroupFields {
    #[serde(default)]
    school_id: Option<String>,
    #[serde(default)]
    endorsements: Option<Vec<AreaOnly>>,
    #[serde(default)]
    demographics: Option<DemographicsOnly>,
}

#[derive(Debug, Clone, Deserialize)]
struct AreaOnly {
    area: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct DemographicsOnly {
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    race_ethnicity: Option<Vec<String>>,
}

impl GroupFields {
    /// The fields of a parsed record.
    fn of(s: &Student) -> Self {
        Self {
            school_id: s.school_id.clone(),
            endorsements: s.endorsements.as_ref().map(|list| {
                list.iter()
                    .map(|e| AreaOnly {
                        area: e.area.as_str().to_string(),
                    })
                    .collect()
            }),
            demographics: s.demographics.as_ref().map(|d| DemographicsOnly {
                gender: d.gender.clone(),
                race_ethnicity: d.race_ethnicity.clone(),
            }),
        }
    }
}

impl From<StudentGroupBy> for AwardsGroupBy {
    fn from(by: StudentGroupBy) -> Self {
        match by {
            StudentGroupBy::School => Self::School,
            StudentGroupBy::Gender => Self::Gender,
            StudentGroupBy::RaceEthnicity => Self::RaceEthnicity,
        }
    }
}

/// The groups a record counts in, for one dimension (several for areas and race/ethnicity).
fn groups_of(by: AwardsGroupBy, g: &GroupFields) -> Vec<String> {
    let one = |v: Option<&String>| vec![v.cloned().unwrap_or_else(|| NOT_RECORDED.into())];
    let many = |values: Vec<String>| {
        let mut values = values;
        values.sort();
        values.dedup();
        if values.is_empty() {
            vec![NOT_RECORDED.to_string()]
        } else {
            values
        }
    };
    match by {
        AwardsGroupBy::School => one(g.school_id.as_ref()),
        AwardsGroupBy::Gender => one(g.demographics.as_ref().and_then(|d| d.gender.as_ref())),
        AwardsGroupBy::Area => match &g.endorsements {
            Some(list) if list.is_empty() => vec!["(none)".into()],
            Some(list) => many(list.iter().map(|e| e.area.clone()).collect()),
            None => vec![NOT_RECORDED.into()],
        },
        AwardsGroupBy::RaceEthnicity => many(
            g.demographics
                .as_ref()
                .and_then(|d| d.race_ethnicity.clone())
                .unwrap_or_default(),
        ),
        AwardsGroupBy::Policy | AwardsGroupBy::Month => Vec::new(),
    }
}

/// A period: dates (UTC, both inclusive), as `YYYY-MM-DD` text.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Period {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Period {
    /// The RFC 3339 bounds `[from, to + 1 day)` on the ledger's times. A `to` before `from` is
    /// an empty period, not an error.
    fn bounds(&self) -> Result<(Option<String>, Option<String>), ServiceError> {
        let bound = |field: &str, v: &Option<String>, end: bool| -> Result<_, ServiceError> {
            let Some(v) = v else { return Ok(None) };
            let d = v.parse::<NaiveDate>().map_err(|_| {
                ServiceError::invalid(field, format!("{field}: {v:?} is not a date (YYYY-MM-DD)"))
            })?;
            let d = if end { d.succ_opt().unwrap_or(d) } else { d };
            let t = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            Ok(Some(crate::store::timestamp_text(t)))
        };
        Ok((
            bound("from", &self.from, false)?,
            bound("to", &self.to, true)?,
        ))
    }
}

/// One group's award decisions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardsRow {
    pub group: String,
    /// Students with a decision in the group.
    pub students: Cell,
    pub granted: Cell,
    pub denied: Cell,
    /// Denials by reason code (`ineligible`, `already_awarded`, `budget_exhausted`,
    /// `policy_error`).
    pub denied_by_reason: BTreeMap<String, Cell>,
    pub revoked: Cell,
    /// Money granted less money revoked, in cents.
    pub net_cents: Cents,
    /// Waiver credit hours granted less those revoked.
    pub net_credit_hours: Hours,
}

/// `GET /v1/reports/awards`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AwardsReport {
    pub group_by: AwardsGroupBy,
    /// Only the decisions about this school's students.
    pub school_id: Option<String>,
    /// Only the decisions about students with this endorsement area on record.
    pub area: Option<String>,
    /// The period, as asked (absent: from the first entry, to now).
    pub from: Option<String>,
    pub to: Option<String>,
    /// The programs counted.
    pub policy_ids: Vec<String>,
    /// Groups of students smaller than this, and counts under it, are suppressed.
    pub suppress_below: u64,
    pub rows: Vec<AwardsRow>,
    /// Every decision of the period, whatever its group.
    pub total: AwardsRow,
}

#[derive(Debug, Default, Clone)]
struct AwardTally {
    students: HashSet<String>,
    granted: u64,
    denied: BTreeMap<String, u64>,
    revoked: u64,
    cents: i64,
    hours: f64,
}

impl AwardTally {
    fn add(&mut self, e: &crate::store::reports::ReportEntry, hours: f64) {
        self.students.insert(e.student_id.clone());
        match e.outcome.as_str() {
            "granted" => {
                self.granted += 1;
                self.hours += hours;
            }
            "denied" => {
                *self
                    .denied
                    .entry(e.reason_code.clone().unwrap_or_else(|| "denied".into()))
                    .or_default() += 1
            }
            "revoked" => {
                self.revoked += 1;
                self.hours -= hours;
            }
            _ => {}
        }
        self.cents += e.amount_cents;
    }

    /// The row's cells in column order: students, granted, denied, revoked, then one per reason
    /// of `reasons`.
    fn cells(&self, reasons: &[String], below: u64) -> Vec<Cell> {
        let denied: u64 = self.denied.values().sum();
        let mut cells = vec![
            Cell::new(self.students.len() as u64, below),
            Cell::new(self.granted, below),
            Cell::new(denied, below),
            Cell::new(self.revoked, below),
        ];
        cells.extend(
            reasons
                .iter()
                .map(|r| Cell::new(self.denied.get(r).copied().unwrap_or(0), below)),
        );
        // A group too small to show shows nothing (its zeros would tell too); no students at
        // all is no one's secret.
        let n = self.students.len() as u64;
        if n > 0 && n < below {
            cells.iter_mut().for_each(|c| *c = Cell::Suppressed);
        }
        link_denials(&mut cells);
        cells
    }

    fn row(&self, group: String, cells: &[Cell], reasons: &[String]) -> AwardsRow {
        let money_shown = !cells[1].is_suppressed() && !cells[3].is_suppressed();
        AwardsRow {
            group,
            students: cells[0],
            granted: cells[1],
            denied: cells[2],
            denied_by_reason: reasons
                .iter()
                .zip(&cells[4..])
                .filter(|(r, c)| self.denied.contains_key(*r) || c.is_suppressed())
                .map(|(r, c)| (r.clone(), *c))
                .collect(),
            revoked: cells[3],
            net_cents: if money_shown {
                Cents::Value(self.cents)
            } else {
                Cents::Suppressed
            },
            net_credit_hours: if money_shown {
                Hours::Value(self.hours)
            } else {
                Hours::Suppressed
            },
        }
    }
}

/// A row's counts add up to one another (students, granted and denied; the denials and their
/// reasons; money and the counts it comes from): when one is hidden, all are.
fn link_denials(cells: &mut [Cell]) {
    if cells.iter().any(|c| c.is_suppressed()) {
        cells.iter_mut().for_each(|c| *c = Cell::Suppressed);
    }
}

/// The credit hours of an award (JSON as the ledger holds it).
fn credit_hours(award: &str) -> f64 {
    match serde_json::from_str::<Option<Award>>(award) {
        Ok(Some(Award::TuitionWaiver { credit_hours, .. })) => credit_hours,
        _ => 0.0,
    }
}

/// Sums ledger entries (and the records they were decided on) by group.
///
/// With `school` or `area`, only the decisions about students of that school or with that
/// endorsement area on record (as the record said); then every grouping, and the total, is
/// about a group of students and suppressed like one.
pub fn awards_report(
    entries: &[(crate::store::reports::ReportEntry, Option<String>)],
    group_by: AwardsGroupBy,
    below: u64,
    school: Option<&str>,
    area: Option<&str>,
) -> (Vec<AwardsRow>, AwardsRow) {
    let narrowed = school.is_some() || area.is_some();
    let below = if group_by.is_about_students() || narrowed {
        below
    } else {
        1
    };
    let mut hours_of: HashMap<&str, f64> = HashMap::new();
    let mut groups: BTreeMap<String, AwardTally> = BTreeMap::new();
    let mut total = AwardTally::default();
    for (e, record) in entries {
        let fields: Option<GroupFields> =
            record.as_deref().and_then(|r| serde_json::from_str(r).ok());
        if let Some(school) = school {
            if fields.as_ref().and_then(|f| f.school_id.as_deref()) != Some(school) {
                continue;
            }
        }
        if let Some(area) = area {
            let listed = fields
                .as_ref()
                .and_then(|f| f.endorsements.as_ref())
                .is_some_and(|list| list.iter().any(|e| e.area == area));
            if !listed {
                continue;
            }
        }
        let hours = *hours_of
            .entry(e.award.as_str())
            .or_insert_with(|| credit_hours(&e.award));
        total.add(e, hours);
        let keys = match group_by {
            AwardsGroupBy::Policy => vec![e.policy_id.clone()],
            AwardsGroupBy::Month => vec![e.recorded_at.chars().take(7).collect()],
            by => groups_of(by, fields.as_ref().unwrap_or(&GroupFields::default())),
        };
        for k in keys {
            groups.entry(k).or_default().add(e, hours);
        }
    }
    let reasons: Vec<String> = total.denied.keys().cloned().collect();
    let mut cells: Vec<Vec<Cell>> = groups.values().map(|t| t.cells(&reasons, below)).collect();
    if below > 1 {
        secondary(&mut cells, |row, _| link_denials(row));
    }
    let rows = groups
        .iter()
        .zip(&cells)
        .map(|((g, t), c)| t.row(g.clone(), c, &reasons))
        .collect();
    let total_cells = total.cells(&reasons, if narrowed { below } else { 1 });
    let total = total.row("all".into(), &total_cells, &reasons);
    (rows, total)
}

/// What one student's record and decisions say, for the progression and budget reports.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// What the record says about the student's groups (as the awards report reads them).
    groups: GroupFields,
    student_id: String,
    /// Areas the record lists (earned or in progress), and whether each is earned.
    areas: Vec<(EndorsementArea, bool)>,
    /// Per requirement policy (by index): the declared criteria passed (a bit per criterion,
    /// in the order of the policy's `criteria`), or None when the policy does not concern the
    /// student.
    requirements: Vec<Option<u64>>,
    /// Per incentive (by index): eligible on the date.
    eligible: Vec<bool>,
    enrolled_or_employed: bool,
}

/// Every stored record's facts on `as_of`, for the policies in effect then, on every core.
/// Records that do not read are skipped (and counted).
///
/// `stop` is asked now and then; when it says so, the evaluation is abandoned (None).
pub fn cohort_facts(
    records: &[String],
    requirements: &[Arc<PolicyVersion>],
    incentives: &[Arc<PolicyVersion>],
    as_of: NaiveDate,
    threads: usize,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<(Vec<Facts>, usize)> {
    let criteria: Vec<Vec<&String>> = requirements
        .iter()
        .map(|r| r.meta.criteria.keys().collect())
        .collect();
    let one = |text: &String| -> Option<Facts> {
        let student = Student::from_json(text).ok()?;
        let mut facts = Facts {
            groups: GroupFields::of(&student),
            student_id: student.student_id.clone(),
            areas: student
                .endorsements
                .iter()
                .flatten()
                .map(|e| (e.area, e.status == EndorsementStatus::Earned))
                .collect(),
            enrolled_or_employed: student
                .postsecondary
                .as_ref()
                .is_some_and(|p| p.status == Some(PostsecondaryStatus::Enrolled))
                || student.job_offers.as_ref().is_some_and(|j| !j.is_empty()),
            ..Facts::default()
        };
        let prepared = Prepared::new(student);
        with_evaluator(|ev| {
            for (r, codes) in requirements.iter().zip(&criteria) {
                if !r.meta.concerns(prepared.student()) {
                    facts.requirements.push(None);
                    continue;
                }
                let d = ev.evaluate(r, &prepared, as_of);
                let mut passed = 0u64;
                for reason in d.reasons.iter().filter(|x| x.status == Status::Passed) {
                    if let Some(i) = codes.iter().position(|c| **c == reason.code) {
                        passed |= 1 << i.min(63);
                    }
                }
                facts.requirements.push(Some(passed));
            }
            for v in incentives {
                let d = ev.evaluate(v, &prepared, as_of);
                facts.eligible.push(d.outcome == Outcome::Eligible);
            }
        });
        Some(facts)
    };
    let threads = threads.clamp(1, 64);
    let per = records.len().div_ceil(threads).max(1);
    let mut out = Vec::with_capacity(records.len());
    let mut bad = 0;
    let mut stopped = false;
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(per)
            .map(|part| {
                s.spawn(|| {
                    let mut done = Vec::with_capacity(part.len());
                    for (i, r) in part.iter().enumerate() {
                        if i % 512 == 0 && stop() {
                            return None;
                        }
                        done.push(one(r));
                    }
                    Some(done)
                })
            })
            .collect();
        for h in handles {
            // A worker that panicked counts its records as unread rather than taking the
            // report down.
            match h.join() {
                Ok(Some(part)) => {
                    for f in part {
                        match f {
                            Some(f) => out.push(f),
                            None => bad += 1,
                        }
                    }
                }
                Ok(None) => stopped = true,
                Err(_) => bad += 1,
            }
        }
    });
    (!stopped).then_some((out, bad))
}

/// What a cohort evaluation was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsKey {
    generation: i64,
    /// The registry it used (kept alive by the evaluation, so the address is not reused).
    registry: usize,
    as_of: NaiveDate,
}

/// The stored cohort evaluated on one date with every policy in effect then.
pub struct CohortFacts {
    key: FactsKey,
    _registry: Arc<Registry>,
    requirements: Vec<Arc<PolicyVersion>>,
    incentives: Vec<Arc<PolicyVersion>>,
    facts: Vec<Facts>,
}

impl CohortFacts {
    /// The incentives (by index) a caller's reports cover: every one for admins and auditors,
    /// an awarder's own sponsor's.
    fn mine(&self, caller: &Caller) -> Vec<usize> {
        (0..self.incentives.len())
            .filter(|&i| {
                caller.role != Role::Awarder || caller.may_act_for(&self.incentives[i].meta.sponsor)
            })
            .collect()
    }
}

/// How often the cohort's evaluation is checked for staleness.
const WARM_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Per step: students who reached it, and who reached it and every step before.
type StepCounts = Vec<(u64, u64)>;

/// One step of the pathway.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PathwayStep {
    pub code: String,
    pub label: String,
}

/// How many students of one group reached a step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepCount {
    pub code: String,
    /// Students who reached this step.
    pub reached: Cell,
    /// Students who reached this step and every step before it.
    pub through: Cell,
}

/// One group's way along the pathway.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgressionRow {
    pub group: String,
    /// Students on the pathway (their record lists the endorsement, earned or in progress).
    pub students: Cell,
    pub steps: Vec<StepCount>,
}

/// `GET /v1/reports/progression`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgressionReport {
    #[schema(value_type = String)]
    pub area: EndorsementArea,
    pub school_id: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// The requirement policy whose criteria are the endorsement's steps.
    pub requirement: Option<String>,
    pub group_by: Option<StudentGroupBy>,
    pub suppress_below: u64,
    /// The steps in pathway order: each criterion of the requirement policy, then
    /// `endorsement_earned`, `eligible_for_incentive`, `awarded`, `enrolled_or_employed`.
    pub steps: Vec<PathwayStep>,
    pub total: ProgressionRow,
    pub groups: Vec<ProgressionRow>,
}

/// One program's budget and what the students eligible today would cost.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetRow {
    /// The program's budget as `GET /v1/policies/{id}/budget` shows it.
    #[serde(flatten)]
    pub budget: super::awards::BudgetView,
    pub title: String,
    pub sponsor: String,
    /// `scholarship` or `tuition_waiver`.
    pub award_kind: String,
    /// Students eligible on `as_of` with no award of this program yet.
    pub eligible_unawarded: u64,
    /// What awarding them all would cost: cents (scholarships) ...
    pub eligible_unawarded_cents: i64,
    /// ... or credit hours (waivers).
    pub eligible_unawarded_credit_hours: f64,
    /// `runs_out` (the eligible would cost more than what remains), `unused` (money or awards
    /// would be left after awarding them all), `fits` (exactly), or `unlimited` (no budget).
    pub projection: String,
    /// What would remain after awarding every eligible student (negative: the shortfall).
    pub projected_remaining_cents: Option<i64>,
    pub projected_remaining_awards: Option<i64>,
}

/// `GET /v1/reports/budget`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetReport {
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    pub programs: Vec<BudgetRow>,
}

/// Parameters of the progression report.
#[derive(Debug, Clone, Default)]
pub struct ProgressionQuery {
    pub school_id: Option<String>,
    pub area: Option<String>,
    pub as_of: Option<NaiveDate>,
    pub group_by: Option<StudentGroupBy>,
}

fn bad_area(a: &str) -> ServiceError {
    ServiceError::invalid(
        "area",
        format!(
            "{a:?} is not an endorsement area; use one of {}",
            EndorsementArea::ALL.map(|a| a.as_str()).join(", ")
        ),
    )
}

/// The policy ids a caller's awards report covers (every version, in effect or not).
fn program_ids(registry: &Registry, caller: &Caller) -> Vec<String> {
    let mut ids: Vec<String> = registry
        .versions()
        .iter()
        .filter(|v| v.meta.kind.is_incentive())
        .filter(|v| caller.role != Role::Awarder || caller.may_act_for(&v.meta.sponsor))
        .map(|v| v.meta.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

impl Service {
    /// Award decisions of the period by group.
    pub async fn awards_report(
        &self,
        caller: &Caller,
        group_by: AwardsGroupBy,
        period: Period,
        school_id: Option<String>,
        area: Option<String>,
    ) -> Result<AwardsReport, ServiceError> {
        if let Some(a) = &area {
            if EndorsementArea::parse(a).is_none() {
                return Err(bad_area(a));
            }
        }
        let (from, to) = period.bounds()?;
        let ids = program_ids(&self.registry(), caller);
        let store = self.store().clone();
        let below = self.suppress_below;
        blocking(move || {
            let entries = store.report_entries(
                &ids,
                from.as_deref(),
                to.as_deref(),
                group_by.is_about_students() || school_id.is_some() || area.is_some(),
            )?;
            let (rows, total) = awards_report(
                &entries,
                group_by,
                below,
                school_id.as_deref(),
                area.as_deref(),
            );
            Ok(AwardsReport {
                group_by,
                school_id,
                area,
                from: period.from,
                to: period.to,
                policy_ids: ids,
                suppress_below: below,
                rows,
                total,
            })
        })
        .await
    }

    /// The stored cohort evaluated on `as_of` with every policy in effect then: kept, and
    /// used again until a stored record changes (whichever process changes it) or the policies
    /// in force do. One evaluation at a time: a request that finds one under way waits for it.
    pub async fn cohort(&self, as_of: NaiveDate) -> Result<Arc<CohortFacts>, ServiceError> {
        self.cohort_unless_batches(as_of, false)
            .await?
            .ok_or_else(|| ServiceError::invariant("the cohort's evaluation was abandoned"))
    }

    /// [`Self::cohort`]; with `yield_to_batches`, abandoned (None) as soon as a batch of this
    /// process starts: the background's evaluation never slows a batch down.
    async fn cohort_unless_batches(
        &self,
        as_of: NaiveDate,
        yield_to_batches: bool,
    ) -> Result<Option<Arc<CohortFacts>>, ServiceError> {
        let registry = self.registry();
        // Read before the records: a write after this is seen as a newer generation next time.
        let store = self.store().clone();
        let generation = blocking(move || Ok(store.students_generation()?)).await?;
        let key = FactsKey {
            generation,
            registry: Arc::as_ptr(&registry) as usize,
            as_of,
        };
        let mut slot = self.cohort.lock().await;
        if let Some(kept) = slot.as_ref().filter(|c| c.key == key) {
            return Ok(Some(kept.clone()));
        }
        let store = self.store().clone();
        let running = self.batches_running.clone();
        let computed = blocking(move || {
            let requirements: Vec<Arc<PolicyVersion>> = registry
                .all_in_effect(as_of)
                .filter(|v| !v.meta.kind.is_incentive())
                .cloned()
                .collect();
            let incentives: Vec<Arc<PolicyVersion>> = registry
                .all_in_effect(as_of)
                .filter(|v| v.meta.kind.is_incentive())
                .cloned()
                .collect();
            let started = std::time::Instant::now();
            let records = store.student_records(None)?;
            let loaded = started.elapsed();
            let stop =
                || yield_to_batches && running.load(std::sync::atomic::Ordering::Relaxed) > 0;
            let Some((facts, bad)) = cohort_facts(
                &records,
                &requirements,
                &incentives,
                as_of,
                cohort_threads(),
                &stop,
            ) else {
                tracing::info!("cohort evaluation left for a batch");
                return Ok(None);
            };
            tracing::info!(
                students = records.len(),
                load_ms = loaded.as_millis() as u64,
                evaluate_ms = (started.elapsed() - loaded).as_millis() as u64,
                "cohort evaluated"
            );
            // Never expected (records are validated when stored); one that does not read is
            // left out of the reports, and said so, rather than taking every report down.
            if bad > 0 {
                tracing::error!(
                    records = bad,
                    "stored records do not read; the reports leave them out"
                );
            }
            Ok(Some(Arc::new(CohortFacts {
                key,
                _registry: registry,
                requirements,
                incentives,
                facts,
            })))
        })
        .await?;
        if let Some(c) = &computed {
            *slot = Some(c.clone());
        }
        Ok(computed)
    }

    /// Keeps the cohort's evaluation current in the background, so a report after a change of
    /// the records does not wait for it: once a second, when the records or the policies have
    /// changed and then stayed unchanged for a second, and no batch of this process is running,
    /// evaluates again for the date last asked for (at first, today); a batch that starts
    /// meanwhile makes it give up (batches come first).
    pub async fn keep_cohort_warm(self) {
        let mut last_seen: Option<i64> = None;
        loop {
            tokio::time::sleep(WARM_POLL).await;
            if self
                .batches_running
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
            {
                continue;
            }
            let store = self.store().clone();
            let Ok(generation) = blocking(move || Ok(store.students_generation()?)).await else {
                continue;
            };
            let settled = last_seen == Some(generation);
            last_seen = Some(generation);
            let (current, as_of) = match self.cohort.try_lock() {
                Ok(slot) => match slot.as_ref() {
                    Some(c) => (
                        c.key.generation == generation
                            && c.key.registry == Arc::as_ptr(&self.registry()) as usize,
                        c.key.as_of,
                    ),
                    None => (false, chrono::Utc::now().date_naive()),
                },
                // Being evaluated right now.
                Err(_) => continue,
            };
            if current || !settled {
                continue;
            }
            if let Err(e) = self.cohort_unless_batches(as_of, true).await {
                tracing::warn!(error = %e.chain(), "cannot evaluate the cohort for the reports");
            }
        }
    }

    /// How many students of the pathway reach each step, in order.
    pub async fn progression_report(
        &self,
        caller: &Caller,
        q: ProgressionQuery,
    ) -> Result<ProgressionReport, ServiceError> {
        let as_of = q.as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let area = match &q.area {
            None => EndorsementArea::ManufacturingEngineeringTechnologyTrades,
            Some(a) => EndorsementArea::parse(a).ok_or_else(|| bad_area(a))?,
        };
        let cohort = self.cohort(as_of).await?;
        let requirement_index = cohort
            .requirements
            .iter()
            .position(|v| v.meta.endorsement_area == Some(area));
        let requirement = requirement_index.map(|i| cohort.requirements[i].clone());
        let mine = cohort.mine(caller);
        let ids: Vec<String> = mine
            .iter()
            .map(|&i| cohort.incentives[i].meta.id.clone())
            .collect();
        let store = self.store().clone();
        let awarded: HashSet<String> = blocking(move || Ok(store.active_awards(&ids)?))
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        // The steps: the requirement's criteria in the order its script checks them (the
        // order of any decision's reasons), then what follows the endorsement.
        let mut steps: Vec<PathwayStep> = Vec::new();
        let criteria: Vec<String> = requirement
            .as_ref()
            .map(|r| r.meta.criteria.keys().cloned().collect())
            .unwrap_or_default();
        let mut order: Vec<usize> = (0..criteria.len()).collect();
        if let Some(r) = &requirement {
            if let Some(sample) = self.sample_reasons(r, as_of) {
                order.sort_by_key(|&i| {
                    sample
                        .iter()
                        .position(|c| *c == criteria[i])
                        .unwrap_or(usize::MAX)
                });
            }
            for &i in &order {
                let code = &criteria[i];
                steps.push(PathwayStep {
                    code: code.clone(),
                    label: r.meta.criteria[code].label.clone(),
                });
            }
        }
        for (code, label) in [
            ("endorsement_earned", "Endorsement earned"),
            ("eligible_for_incentive", "Eligible for an incentive"),
            ("awarded", "Awarded"),
            (
                "enrolled_or_employed",
                "Enrolled in college or offered a job",
            ),
        ] {
            steps.push(PathwayStep {
                code: code.into(),
                label: label.into(),
            });
        }
        let below = self.suppress_below;
        let school = q.school_id.as_deref();
        let on_pathway: Vec<(&Facts, Vec<bool>)> = cohort
            .facts
            .iter()
            .filter(|f| school.is_none() || f.groups.school_id.as_deref() == school)
            .filter(|f| f.areas.iter().any(|(a, _)| *a == area))
            .map(|f| {
                let passed = requirement_index.and_then(|i| f.requirements[i]);
                let mut reached: Vec<bool> = match passed {
                    Some(mask) => order
                        .iter()
                        .map(|&i| mask & (1 << i.min(63)) != 0)
                        .collect(),
                    None => vec![false; order.len()],
                };
                reached.push(f.areas.iter().any(|(a, earned)| *a == area && *earned));
                reached.push(mine.iter().any(|&i| f.eligible[i]));
                reached.push(awarded.contains(&f.student_id));
                reached.push(f.enrolled_or_employed);
                (f, reached)
            })
            .collect();
        let tally = |members: &[&Vec<bool>]| -> (u64, Vec<(u64, u64)>) {
            let mut counts = vec![(0u64, 0u64); steps.len()];
            for reached in members {
                let mut through = true;
                for (i, r) in reached.iter().enumerate() {
                    through &= *r;
                    counts[i].0 += u64::from(*r);
                    counts[i].1 += u64::from(through);
                }
            }
            (members.len() as u64, counts)
        };
        let row = |group: String, cells: &[Cell]| ProgressionRow {
            group,
            students: cells[0],
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepCount {
                    code: s.code.clone(),
                    reached: cells[1 + 2 * i],
                    through: cells[2 + 2 * i],
                })
                .collect(),
        };
        let cells_of = |n: u64, counts: &[(u64, u64)]| -> Vec<Cell> {
            let mut cells = vec![Cell::new(n, below)];
            // Out of the group's students: a count whose complement is small is hidden too.
            for (reached, through) in counts {
                cells.push(Cell::out_of(*reached, n, below));
                cells.push(Cell::out_of(*through, n, below));
            }
            if n > 0 && n < below {
                cells.iter_mut().for_each(|c| *c = Cell::Suppressed);
            }
            cells
        };
        let everyone: Vec<&Vec<bool>> = on_pathway.iter().map(|(_, r)| r).collect();
        let (n, counts) = tally(&everyone);
        let total = row("all".into(), &cells_of(n, &counts));
        let mut groups = Vec::new();
        if let Some(by) = q.group_by {
            let mut members: BTreeMap<String, Vec<&Vec<bool>>> = BTreeMap::new();
            for (f, reached) in &on_pathway {
                let keys = groups_of(by.into(), &f.groups);
                for k in keys {
                    members.entry(k).or_default().push(reached);
                }
            }
            let tallied: Vec<(String, u64, StepCounts)> = members
                .into_iter()
                .map(|(g, m)| {
                    let (n, c) = tally(&m);
                    (g, n, c)
                })
                .collect();
            let mut cells: Vec<Vec<Cell>> =
                tallied.iter().map(|(_, n, c)| cells_of(*n, c)).collect();
            secondary(&mut cells, |_, _| {});
            groups = tallied
                .iter()
                .zip(&cells)
                .map(|((g, _, _), cells)| row(g.clone(), cells))
                .collect();
        }
        Ok(ProgressionReport {
            area,
            school_id: q.school_id,
            as_of,
            requirement: requirement.map(|r| r.meta.id.clone()),
            group_by: q.group_by,
            suppress_below: below,
            steps,
            total,
            groups,
        })
    }

    /// The reason codes of `policy` in the order its script checks them, from one evaluation of
    /// an empty record.
    fn sample_reasons(&self, policy: &PolicyVersion, as_of: NaiveDate) -> Option<Vec<String>> {
        let mut student = Student::from_json(r#"{"student_id": "sample"}"#).ok()?;
        if let Some(area) = policy.meta.endorsement_area {
            student.endorsements = Some(vec![crate::policy::student::Endorsement {
                area,
                status: EndorsementStatus::InProgress,
                earned_on: None,
            }]);
        }
        let d = with_evaluator(|ev| ev.evaluate(policy, &Prepared::new(student), as_of));
        (!d.reasons.is_empty()).then(|| d.reasons.into_iter().map(|r| r.code).collect())
    }

    /// Every program's budget beside what the students eligible today, not yet awarded, would
    /// cost.
    pub async fn budget_report(
        &self,
        caller: &Caller,
        as_of: Option<NaiveDate>,
    ) -> Result<BudgetReport, ServiceError> {
        let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let cohort = self.cohort(as_of).await?;
        let mine = cohort.mine(caller);
        let incentives: Vec<Arc<PolicyVersion>> =
            mine.iter().map(|&i| cohort.incentives[i].clone()).collect();
        let ids: Vec<String> = incentives.iter().map(|v| v.meta.id.clone()).collect();
        let store = self.store().clone();
        let (awarded, programs) = blocking(move || {
            let awarded = store.active_awards(&ids)?;
            let programs = ids
                .iter()
                .map(|id| store.program(id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((awarded, programs))
        })
        .await?;
        let awarded: HashSet<(String, String)> = awarded.into_iter().collect();
        let mut rows = Vec::with_capacity(incentives.len());
        for ((v, program), &i) in incentives.iter().zip(programs).zip(&mine) {
            let waiting = cohort
                .facts
                .iter()
                .filter(|f| {
                    f.eligible[i] && !awarded.contains(&(v.meta.id.clone(), f.student_id.clone()))
                })
                .count() as u64;
            let view = super::awards::BudgetView::new(&v.meta.id, program);
            let (kind, cents, hours) = match &v.meta.award {
                Some(Award::Scholarship { amount_cents }) => {
                    ("scholarship", amount_cents * waiting as i64, 0.0)
                }
                Some(Award::TuitionWaiver { credit_hours, .. }) => {
                    ("tuition_waiver", 0, credit_hours * waiting as f64)
                }
                None => ("none", 0, 0.0),
            };
            let after_cents = view.remaining_cents.map(|r| r - cents);
            let after_awards = view.remaining_awards.map(|r| r - waiting as i64);
            let after = after_cents.or(after_awards);
            let projection = match after {
                None => "unlimited",
                Some(a) if a < 0 => "runs_out",
                Some(0) => "fits",
                Some(_) => "unused",
            };
            rows.push(BudgetRow {
                budget: view,
                title: v.meta.title.clone(),
                sponsor: v.meta.sponsor.clone(),
                award_kind: kind.into(),
                eligible_unawarded: waiting,
                eligible_unawarded_cents: cents,
                eligible_unawarded_credit_hours: hours,
                projection: projection.into(),
                projected_remaining_cents: after_cents,
                projected_remaining_awards: after_awards,
            });
        }
        Ok(BudgetReport {
            as_of,
            programs: rows,
        })
    }
}

/// CSV of a report table: text cells that a spreadsheet would run as formulas are neutralised.
pub fn csv_table(header: Vec<String>, rows: Vec<Vec<String>>) -> Result<Vec<u8>, ServiceError> {
    let fail = |e: csv::Error| ServiceError::internal("encoding a report as CSV", e);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(fail)?;
    for r in rows {
        w.write_record(r.iter().map(|c| super::ledger::csv_cell(c)))
            .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|e| ServiceError::internal("encoding a report as CSV", e.into_error()))
}

impl AwardsReport {
    /// Reasons found in any row, in order (the CSV's denial columns).
    pub fn reasons(&self) -> Vec<String> {
        let mut r: Vec<String> = self.total.denied_by_reason.keys().cloned().collect();
        r.sort();
        r
    }

    pub fn to_csv(&self) -> Result<Vec<u8>, ServiceError> {
        let reasons = self.reasons();
        let mut header: Vec<String> = ["group", "students", "granted", "denied"]
            .map(String::from)
            .to_vec();
        header.extend(reasons.iter().map(|r| format!("denied_{r}")));
        header.extend(["revoked", "net_cents", "net_credit_hours"].map(String::from));
        let line = |r: &AwardsRow| {
            let mut cells = vec![
                r.group.clone(),
                r.students.to_string(),
                r.granted.to_string(),
                r.denied.to_string(),
            ];
            cells.extend(reasons.iter().map(|x| {
                r.denied_by_reason
                    .get(x)
                    .map_or_else(|| "0".to_string(), |c| c.to_string())
            }));
            cells.extend([
                r.revoked.to_string(),
                r.net_cents.to_string(),
                r.net_credit_hours.to_string(),
            ]);
            cells
        };
        let mut rows: Vec<Vec<String>> = self.rows.iter().map(line).collect();
        rows.push(line(&self.total));
        csv_table(header, rows)
    }
}

impl ProgressionReport {
    /// One line per group and step.
    pub fn to_csv(&self) -> Result<Vec<u8>, ServiceError> {
        let header = ["group", "students", "step", "label", "reached", "through"]
            .map(String::from)
            .to_vec();
        let mut rows = Vec::new();
        for g in std::iter::once(&self.total).chain(&self.groups) {
            for (s, c) in self.steps.iter().zip(&g.steps) {
                rows.push(vec![
                    g.group.clone(),
                    g.students.to_string(),
                    s.code.clone(),
                    s.label.clone(),
                    c.reached.to_string(),
                    c.through.to_string(),
                ]);
            }
        }
        csv_table(header, rows)
    }
}

impl BudgetReport {
    pub fn to_csv(&self) -> Result<Vec<u8>, ServiceError> {
        let header = [
            "policy_id",
            "title",
            "sponsor",
            "award_kind",
            "total_cents",
            "max_awards",
            "committed_cents",
            "committed_awards",
            "remaining_cents",
            "remaining_awards",
            "eligible_unawarded",
            "eligible_unawarded_cents",
            "eligible_unawarded_credit_hours",
            "projection",
            "projected_remaining_cents",
            "projected_remaining_awards",
        ]
        .map(String::from)
        .to_vec();
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let rows = self
            .programs
            .iter()
            .map(|p| {
                let b = &p.budget;
                vec![
                    b.policy_id.clone(),
                    p.title.clone(),
                    p.sponsor.clone(),
                    p.award_kind.clone(),
                    opt(b.total_cents),
                    opt(b.max_awards),
                    b.committed_cents.to_string(),
                    b.committed_awards.to_string(),
                    opt(b.remaining_cents),
                    opt(b.remaining_awards),
                    p.eligible_unawarded.to_string(),
                    p.eligible_unawarded_cents.to_string(),
                    p.eligible_unawarded_credit_hours.to_string(),
                    p.projection.clone(),
                    opt(p.projected_remaining_cents),
                    opt(p.projected_remaining_awards),
                ]
            })
            .collect();
        csv_table(header, rows)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cohort_evaluation_gives_way_when_asked_to_stop_and_skips_unreadable_records() {
        let registry = Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
        let as_of = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let incentives: Vec<_> = registry
            .all_in_effect(as_of)
            .filter(|v| v.meta.kind.is_incentive())
            .cloned()
            .collect();
        let mut records: Vec<String> = (0..2000)
            .map(|i| format!(r#"{{"student_id": "S-{i}"}}"#))
            .collect();
        records.push("not a record".into());
        assert!(cohort_facts(&records, &[], &incentives, as_of, 2, &|| true).is_none());
        let (facts, bad) = cohort_facts(&records, &[], &incentives, as_of, 2, &|| false).unwrap();
        assert_eq!((facts.len(), bad), (2000, 1));
        assert!(facts.iter().all(|f| f.eligible.len() == incentives.len()));
    }
}
