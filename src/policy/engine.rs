//! Builds the rhai engine policies run in: resource limits, and the native helpers scripts call.
//!
//! The record is handed to scripts as a registered native type (`Student`) with getters and
//! helper methods, not converted into rhai maps: a decision then costs a few native calls instead
//! of a tree of allocations. Helpers answer with a `Check`, a three-valued result (passed, failed,
//! unknown) that remembers which record fields would settle an unknown.

use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;

use chrono::NaiveDate;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext, Position};

use super::decision::{Missing, Payee, PayeeKind, Reason, Status, Step};
use super::registry::PolicyMeta;
use super::student::{EndorsementArea, EndorsementStatus, PostsecondaryStatus, Student};

/// Resource limits applied to every engine. Always on: a script can never hurt the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Operations one evaluation may perform (a seed policy uses a few hundred).
    pub max_operations: u64,
    /// Nesting of function calls.
    pub max_call_levels: usize,
    /// Nesting of expressions, at top level and inside functions.
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    /// Bytes in one string, items in one array or map built by a script.
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Variables alive at once, and functions one script may define.
    pub max_variables: usize,
    pub max_functions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 100_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 16 * 1024,
            max_array_size: 1_000,
            max_map_size: 500,
            max_variables: 200,
            max_functions: 64,
        }
    }
}

/// The record as scripts see it (shared, never copied per policy), with the date it is
/// evaluated on, so `student.graduated` needs no date argument.
#[derive(Debug, Clone)]
pub struct StudentRef(pub Rc<Student>, pub NaiveDate, pub Rc<Requirements>);

/// The decisions of the requirement policies the policy being run refers to with
/// `student.meets(id)`, made for this record and date before it runs.
#[derive(Debug, Default)]
pub struct Requirements(
    pub  Vec<(
        String,
        Rc<super::decision::Decision>,
        Option<EndorsementArea>,
    )>,
);

/// The evaluation context: `ctx.as_of` (`"YYYY-MM-DD"`) and `ctx.policy` (the metadata map).
#[derive(Debug, Clone)]
pub struct Context {
    pub as_of: ImmutableString,
    pub meta: Rc<PolicyMeta>,
}

/// A three-valued criterion result, with a detail for the reason message and, when unknown,
/// the record fields that would settle it. Shared (`Rc`) so rhai's by-value argument passing
/// clones a pointer, not strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Check(Rc<CheckData>);

#[derive(Debug, Clone, PartialEq)]
pub struct CheckData {
    pub status: Status,
    pub detail: String,
    pub fields: Vec<String>,
    /// What to do, in numbers ("3 more early-college credit hours (3 of 6)"); `require` uses it
    /// instead of the criterion's declared missing text.
    pub need: Option<String>,
    /// A requirement's own missing items, carried by a criterion it explains.
    pub steps: Vec<Step>,
}

impl std::ops::Deref for Check {
    type Target = CheckData;
    fn deref(&self) -> &CheckData {
        &self.0
    }
}

impl Check {
    fn new(status: Status, detail: String, fields: Vec<String>) -> Self {
        Self(Rc::new(CheckData {
            status,
            detail,
            fields,
            need: None,
            steps: Vec::new(),
        }))
    }

    fn with_need(mut self, need: String) -> Self {
        Rc::make_mut(&mut self.0).need = Some(need);
        self
    }
    fn passed(detail: impl Into<String>) -> Self {
        Self::new(Status::Passed, detail.into(), Vec::new())
    }
    fn failed(detail: impl Into<String>) -> Self {
        Self::new(Status::Failed, detail.into(), Vec::new())
    }
    fn unknown_no_field(detail: impl Into<String>) -> Self {
        Self::new(Status::Unknown, detail.into(), Vec::new())
    }
    fn unknown(detail: impl Into<String>, field: &str) -> Self {
        Self::new(Status::Unknown, detail.into(), vec![field.to_string()])
    }
}

/// The decision a script builds with `checks()` and returns from `evaluate`. Shared and
/// interior-mutable: returning it from a script clones a pointer, not the reasons.
#[derive(Debug, Clone, Default)]
pub struct Checks(Rc<RefCell<ChecksData>>);

#[derive(Debug, Clone, Default)]
pub struct ChecksData {
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
    pub payee: Option<Payee>,
    /// The policy being evaluated, for `require(code, check)`'s declared words.
    pub policy: Option<Rc<PolicyMeta>>,
}

impl Checks {
    /// The decision of one run of `policy`'s `evaluate`.
    pub fn for_policy(policy: Rc<PolicyMeta>) -> Self {
        Self(Rc::new(RefCell::new(ChecksData {
            policy: Some(policy),
            ..ChecksData::default()
        })))
    }

    /// `require(code, check)`: the label and missing text declared in `policy().criteria`.
    pub(super) fn require_declared(
        &mut self,
        code: &str,
        check: Check,
    ) -> Result<(), Box<EvalAltResult>> {
        let policy = self.0.borrow().policy.clone();
        let text = policy
            .as_ref()
            .and_then(|p| p.criteria.get(code))
            .ok_or_else(|| {
                script_error(format!(
                "criterion {code:?} is not declared in policy().criteria: declare its label and \
                 missing text there, or pass them to require(code, check, message, missing)"
            ))
            })?;
        self.require(code, check, &text.label, &text.missing);
        Ok(())
    }

    /// The decision built so far, without copying when this is the last handle.
    pub fn into_data(self) -> ChecksData {
        match Rc::try_unwrap(self.0) {
            Ok(cell) => cell.into_inner(),
            Err(shared) => shared.borrow().clone(),
        }
    }

    pub(super) fn require(&mut self, code: &str, check: Check, message: &str, missing: &str) {
        let message = if check.detail.is_empty() {
            message.to_string()
        } else {
            cat(&[message, ": ", &check.detail])
        };
        let mut d = self.0.borrow_mut();
        if check.status != Status::Passed {
            d.missing.push(Missing {
                code: code.to_string(),
                message: check.need.clone().unwrap_or_else(|| missing.to_string()),
                fields: check.fields.clone(),
                steps: check.steps.clone(),
            });
        }
        d.reasons.push(Reason {
            code: code.to_string(),
            status: check.status,
            message,
            fields: check.fields.clone(),
        });
    }

    fn all_passed(&self) -> bool {
        self.0
            .borrow()
            .reasons
            .iter()
            .all(|r| r.status == Status::Passed)
    }

    fn set_payee(&mut self, payee: Payee) {
        self.0.borrow_mut().payee = Some(payee);
    }

    pub(super) fn pay_to_student(&mut self) {
        self.set_payee(Payee {
            kind: PayeeKind::Student,
            institution_id: None,
        });
    }

    pub(super) fn pay_to_institution(&mut self, id: &str) {
        self.set_payee(Payee {
            kind: PayeeKind::Institution,
            institution_id: Some(id.to_string()),
        });
    }

    /// Pays the student's college when the student asked for it, the criteria so far passed,
    /// and the record names a college that admitted the student or where the student enrolled
    /// (a college the student only applied to is never paid).
    pub(super) fn pay_to_college_if_requested(&mut self, s: &StudentRef) {
        let asked = s.0.payee_preference == Some(super::student::PayeePreference::Institution);
        let college = s.0.postsecondary.as_ref().and_then(|p| match p.status {
            Some(PostsecondaryStatus::Admitted | PostsecondaryStatus::Enrolled) => {
                p.institution_id.as_ref()
            }
            _ => None,
        });
        if let (true, Some(id)) = (asked && self.all_passed(), college) {
            self.pay_to_institution(id);
        }
    }
}

/// The decision of the `evaluate` now running, which the evaluator puts in the run's tag.
fn running(ctx: &NativeCallContext) -> Result<Checks, Box<EvalAltResult>> {
    ctx.tag()
        .and_then(|t| t.read_lock::<Checks>().map(|c| c.clone()))
        .ok_or_else(|| script_error("require and pay_to_... work only while evaluate runs"))
}

pub(super) fn bool_check(v: bool) -> Check {
    if v {
        Check::passed("")
    } else {
        Check::failed("")
    }
}

pub(super) fn absent_check() -> Check {
    Check::unknown_no_field("not on record")
}

/// `items` separated by `sep` (for messages built only when a criterion fails).
fn joined<'a>(items: impl Iterator<Item = &'a str>, sep: &str) -> String {
    items.collect::<Vec<_>>().join(sep)
}

/// Joins string pieces with one allocation (the hot path builds many small messages).
fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `YYYY-MM-DD`, without going through the formatting machinery.
pub fn date_text(d: NaiveDate) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, d);
    s
}

/// A date as serde writes `NaiveDate` (`YYYY-MM-DD`), without the formatting machinery: every
/// decision in a response carries one.
pub fn serialize_date<S: serde::Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&date_text(*d))
}

/// Appends `YYYY-MM-DD` to `out` (the hot path writes dates into messages).
fn push_date(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        out.push_str(&d.to_string());
        return;
    }
    let y = y as u32;
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let buf = [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(day / 10),
        digit(day),
    ];
    // Only ASCII digits and dashes were written.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

fn script_error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    ))
}

fn parse_date(text: &str) -> Result<NaiveDate, Box<EvalAltResult>> {
    super::student::fast_date(text)
        .or_else(|| NaiveDate::from_str(text).ok())
        .ok_or_else(|| script_error(format!("{text:?} is not a YYYY-MM-DD date")))
}

/// The strings of a script's list (shared, not copied; up to three kept inline).
fn strings(
    list: &Array,
    what: &str,
) -> Result<rhai::StaticVec<ImmutableString>, Box<EvalAltResult>> {
    list.iter()
        .map(|d| {
            d.clone()
                .into_immutable_string()
                .map_err(|t| script_error(format!("{what} must be strings, found {t}")))
        })
        .collect()
}

fn opt_str(value: Option<&str>) -> Dynamic {
    value.map_or(Dynamic::UNIT, |v| Dynamic::from(v.to_string()))
}

// ---- helpers on the record -------------------------------------------------------------------

pub(super) fn endorsement_earned_any(
    s: &StudentRef,
    areas: &[ImmutableString],
) -> Result<Check, Box<EvalAltResult>> {
    let mut wanted = rhai::StaticVec::<EndorsementArea>::new();
    for a in areas {
        wanted.push(
            EndorsementArea::parse(a)
                .ok_or_else(|| script_error(format!("{a:?} is not an endorsement area")))?,
        );
    }
    let names = || joined(wanted.iter().map(|a| a.as_str()), " or ");
    let Some(list) = &s.0.endorsements else {
        return Ok(Check::unknown("no endorsements on record", "endorsements"));
    };
    let mut in_progress = None;
    for e in list.iter().filter(|e| wanted.contains(&e.area)) {
        match e.status {
            EndorsementStatus::Earned => {
                let mut detail = String::with_capacity(64);
                detail.push_str("earned ");
                detail.push_str(e.area.as_str());
                if let Some(on) = e.earned_on {
                    detail.push_str(" on ");
                    push_date(&mut detail, on);
                }
                return Ok(Check::passed(detail));
            }
            EndorsementStatus::InProgress => in_progress = Some(e.area),
        }
    }
    Ok(match in_progress {
        Some(area) => Check::failed(format!("{} is still in progress", area.as_str())),
        None => Check::failed(format!("no {} endorsement", names())),
    })
}

pub(super) fn graduated_by(s: &StudentRef, date: &str) -> Result<Check, Box<EvalAltResult>> {
    Ok(graduated_on(s, parse_date(date)?))
}

/// Whether the student graduated on or before `by`.
pub(super) fn graduated_on(s: &StudentRef, by: NaiveDate) -> Check {
    match s.0.graduation_date {
        None => Check::unknown("graduation date not on record", "graduation_date"),
        Some(g) if g <= by => {
            let mut detail = String::with_capacity(20);
            detail.push_str("graduated ");
            push_date(&mut detail, g);
            Check::passed(detail)
        }
        Some(g) => Check::failed(cat(&[
            "graduates ",
            &date_text(g),
            ", after ",
            &date_text(by),
        ])),
    }
}

pub(super) fn college_status(
    s: &StudentRef,
    institution: Option<&str>,
    statuses: &Array,
) -> Result<Check, Box<EvalAltResult>> {
    let wanted = strings(statuses, "college statuses")?;
    for w in &wanted {
        if !["applied", "admitted", "enrolled"].contains(&w.as_str()) {
            return Err(script_error(format!("{w:?} is not a postsecondary status")));
        }
    }
    let listed = || joined(wanted.iter().map(|w| w.as_str()), " or ");
    let Some(p) = &s.0.postsecondary else {
        return Ok(Check::unknown(
            "no college plans on record",
            "postsecondary",
        ));
    };
    let Some(status) = p.status else {
        return Ok(Check::unknown(
            "college status not on record",
            "postsecondary.status",
        ));
    };
    let at = p
        .institution_id
        .as_deref()
        .map(|i| cat(&[" at ", i]))
        .unwrap_or_default();
    let status_ok = wanted.iter().any(|w| w.as_str() == status.as_str());
    if !status_ok {
        return Ok(Check::failed(format!(
            "{}{at}, not {}",
            status.as_str(),
            listed()
        )));
    }
    match (institution, p.institution_id.as_deref()) {
        (None, _) => Ok(Check::passed(cat(&[status.as_str(), &at]))),
        (Some(_), None) => Ok(Check::unknown(
            format!("{} at an institution not on record", status.as_str()),
            "postsecondary.institution_id",
        )),
        (Some(want), Some(have)) if want == have => {
            Ok(Check::passed(cat(&[status.as_str(), " at ", have])))
        }
        (Some(want), Some(have)) => Ok(Check::failed(format!(
            "{} at {have}, not {want}",
            status.as_str()
        ))),
    }
}

pub(super) fn local_job_offer(
    s: &StudentRef,
    prefixes: &Array,
) -> Result<Check, Box<EvalAltResult>> {
    let prefixes = strings(prefixes, "NAICS prefixes")?;
    let sector = || joined(prefixes.iter().map(|p| p.as_str()), "/");
    let Some(offers) = &s.0.job_offers else {
        return Ok(Check::unknown("no job offers on record", "job_offers"));
    };
    let mut unknown_field = None;
    let mut seen = Vec::new();
    for (i, o) in offers.iter().enumerate() {
        let in_sector = o
            .naics
            .as_deref()
            .map(|code| prefixes.iter().any(|p| code.starts_with(p.as_str())));
        let who = o.employer.as_deref().unwrap_or("an employer");
        match (in_sector, o.local) {
            (Some(true), Some(true)) => {
                let code = o.naics.as_deref().unwrap_or_default();
                return Ok(Check::passed(format!(
                    "local offer from {who} (NAICS {code})"
                )));
            }
            (Some(false), _) | (_, Some(false)) => seen.push(who.to_string()),
            (None, _) => unknown_field = Some(format!("job_offers[{i}].naics")),
            (Some(true), None) => unknown_field = Some(format!("job_offers[{i}].local")),
        }
    }
    if let Some(field) = unknown_field {
        return Ok(Check::unknown(
            format!("an offer lacks its NAICS code or locality ({field})"),
            &field,
        ));
    }
    Ok(if seen.is_empty() {
        Check::failed("no job offers")
    } else {
        Check::failed(format!(
            "no local offer in NAICS {} (offers from {})",
            sector(),
            seen.join(", ")
        ))
    })
}

pub(super) fn early_college_hours(s: &StudentRef, subject: Option<&str>) -> Dynamic {
    match &s.0.early_college_credits {
        None => Dynamic::UNIT,
        Some(list) => Dynamic::from_float(
            list.iter()
                .filter(|c| subject.is_none_or(|w| c.subject.as_deref() == Some(w)))
                .map(|c| c.credit_hours)
                .sum(),
        ),
    }
}

pub(super) fn work_based_hours(s: &StudentRef, kind: Option<&str>) -> Dynamic {
    match &s.0.work_based_learning {
        None => Dynamic::UNIT,
        Some(list) => Dynamic::from_float(
            list.iter()
                .filter(|w| kind.is_none_or(|k| w.kind.as_str() == k))
                .filter_map(|w| w.hours)
                .sum(),
        ),
    }
}

pub(super) fn at_least(value: Dynamic, min: f64, field: &str) -> Result<Check, Box<EvalAltResult>> {
    if value.is_unit() {
        return Ok(Check::unknown(format!("{field} not on record"), field));
    }
    let v = value
        .as_float()
        .or_else(|_| value.as_int().map(|i| i as f64))
        .map_err(|t| script_error(format!("at_least needs a number, found {t}")))?;
    Ok(if v >= min {
        Check::passed(format!("{v} (at least {min})"))
    } else {
        Check::failed(format!("{v}, needs at least {min}"))
    })
}

pub(super) fn combine(a: Check, b: Check, any: bool) -> Check {
    let (win, lose) = if any {
        (Status::Passed, Status::Failed)
    } else {
        (Status::Failed, Status::Passed)
    };
    let status = if a.status == win || b.status == win {
        win
    } else if a.status == lose && b.status == lose {
        lose
    } else {
        Status::Unknown
    };
    let fields = if status == Status::Unknown {
        a.fields.iter().chain(&b.fields).cloned().collect()
    } else {
        Vec::new()
    };
    Check::new(status, cat(&[&a.detail, "; ", &b.detail]), fields)
}

/// `progress(value, target, unit, field)`: passed at `target` or more; otherwise failed, saying
/// how much is left in numbers ("3 more early-college credit hours (3 of 6)"); unknown when the
/// value is not on record.
pub(super) fn progress(
    value: Dynamic,
    target: f64,
    unit: &str,
    field: &str,
) -> Result<Check, Box<EvalAltResult>> {
    if value.is_unit() {
        return Ok(Check::unknown(format!("{field} not on record"), field));
    }
    let v = value
        .as_float()
        .or_else(|_| value.as_int().map(|i| i as f64))
        .map_err(|t| script_error(format!("progress needs a number, found {t}")))?;
    // Whole numbers through the integer formatter: the same text as `{:.0}`, without the
    // exact float formatting (measured as 7 % of a cohort batch's processor time).
    let n = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            (x as i64).to_string()
        } else {
            format!("{x}")
        }
    };
    if v >= target {
        return Ok(Check::passed(format!("{} of {} {unit}", n(v), n(target))));
    }
    let left = target - v;
    // "1 more team-based challenge", "1 more year of coursework": the units here are plain
    // English plurals, the noun last or before " of ".
    let unit_left = if left == 1.0 {
        match unit.split_once(" of ") {
            Some((noun, rest)) => format!("{} of {rest}", noun.strip_suffix('s').unwrap_or(noun)),
            None => unit.strip_suffix('s').unwrap_or(unit).to_string(),
        }
    } else {
        unit.to_string()
    };
    Ok(
        Check::failed(format!("{} of {} {unit}", n(v), n(target))).with_need(format!(
            "{} more {unit_left} ({} of {})",
            n(left),
            n(v),
            n(target)
        )),
    )
}

/// A `pathway` flag as a check: unknown when the record has no such entry.
fn pathway_flag(
    s: &StudentRef,
    get: fn(&super::student::Pathway) -> Option<bool>,
    field: &str,
) -> Check {
    match s.0.pathway.as_ref().and_then(get) {
        Some(v) => bool_check(v),
        None => Check::unknown("not on record", field),
    }
}

/// `student.learning_plan`.
pub(super) fn learning_plan(s: &StudentRef) -> Check {
    pathway_flag(
        s,
        |p| p.individualized_learning_plan,
        "pathway.individualized_learning_plan",
    )
}

/// `student.skills_assessment`.
pub(super) fn skills_assessment(s: &StudentRef) -> Check {
    pathway_flag(
        s,
        |p| p.professional_skills_assessment,
        "pathway.professional_skills_assessment",
    )
}

/// `student.coursework_years()`.
pub(super) fn coursework_years(s: &StudentRef) -> Dynamic {
    match s.0.pathway.as_ref().and_then(|p| p.career_coursework_years) {
        Some(y) => Dynamic::from_float(y),
        None => Dynamic::UNIT,
    }
}

/// Ready for non-remedial reading and math: both flags; says which one is missing.
pub(super) fn academic_readiness(s: &StudentRef) -> Check {
    let p = s.0.pathway.as_ref();
    let reading = p.and_then(|p| p.reading_ready);
    let math = p.and_then(|p| p.math_ready);
    match (reading, math) {
        (Some(true), Some(true)) => Check::passed("reading and math"),
        (Some(false), Some(false)) => Check::failed("neither reading nor math")
            .with_need("Show readiness for non-remedial coursework in reading and math".into()),
        (Some(false), _) => Check::failed("not yet in reading")
            .with_need("Show readiness for non-remedial coursework in reading".into()),
        (_, Some(false)) => Check::failed("not yet in math")
            .with_need("Show readiness for non-remedial coursework in math".into()),
        (None, _) => Check::unknown("reading readiness not on record", "pathway.reading_ready"),
        (_, None) => Check::unknown("math readiness not on record", "pathway.math_ready"),
    }
}

/// Work-based learning items of one kind (unknown when the record has no list).
pub(super) fn work_based_count(s: &StudentRef, kind: &str) -> Dynamic {
    match &s.0.work_based_learning {
        None => Dynamic::UNIT,
        Some(list) => {
            Dynamic::from_int(list.iter().filter(|w| w.kind.as_str() == kind).count() as i64)
        }
    }
}

/// `student.supervised_experience(target)`: at least `target` hours of supervised career
/// development experience (career development experiences, micro-internships, internships,
/// apprenticeships). Passed once the known hours reach it; below it, unknown when an
/// experience lacks its hours (they could make up the difference), failed otherwise, saying
/// how many are left.
pub(super) fn supervised_experience(s: &StudentRef, target: f64) -> Check {
    use super::student::WorkBasedLearningKind as K;
    let Some(list) = &s.0.work_based_learning else {
        return Check::unknown("work_based_learning not on record", "work_based_learning");
    };
    let mut total = 0.0;
    let mut lacking = None;
    for (i, w) in list.iter().enumerate() {
        if matches!(
            w.kind,
            K::CareerDevelopmentExperience | K::MicroInternship | K::Internship | K::Apprenticeship
        ) {
            match w.hours {
                Some(h) => total += h,
                None => lacking = lacking.or(Some(i)),
            }
        }
    }
    match (total >= target, lacking) {
        (true, _) => progress(Dynamic::from_float(total), target, "supervised hours", ""),
        (false, Some(i)) => Ok(Check::unknown(
            format!("{total} hours known; an experience lacks its hours"),
            &format!("work_based_learning[{i}].hours"),
        )),
        (false, None) => progress(Dynamic::from_float(total), target, "supervised hours", ""),
    }
    .unwrap_or_else(|_| Check::unknown_no_field("cannot count the hours"))
}

/// Two career exploration activities, or one intensive career exploration experience.
pub(super) fn career_exploration(s: &StudentRef) -> Check {
    use super::student::WorkBasedLearningKind as K;
    let Some(list) = &s.0.work_based_learning else {
        return Check::unknown("work-based learning not on record", "work_based_learning");
    };
    let explorations: Vec<_> = list
        .iter()
        .filter(|w| w.kind == K::CareerExploration)
        .collect();
    if explorations.iter().any(|w| w.intensive == Some(true)) {
        return Check::passed("an intensive experience");
    }
    match explorations.len() {
        n if n >= 2 => Check::passed(format!("{n} activities")),
        n => Check::failed(format!("{n} of 2 activities")).with_need(format!(
            "{} more career exploration {} ({n} of 2), or one intensive career exploration experience",
            2 - n,
            if n == 1 { "activity" } else { "activities" }
        )),
    }
}

/// `student.meets(id)`: whether the record meets a requirement policy on the date, as a check
/// whose steps are the requirement's own missing items (when the student is working toward
/// that requirement's endorsement, or the requirement names none).
pub(super) fn meets(s: &StudentRef, id: &str) -> Result<Check, Box<EvalAltResult>> {
    use super::decision::Outcome;
    let Some((_, d, area)) = s.2 .0.iter().find(|(rid, _, _)| rid == id) else {
        return Err(script_error(format!(
            "meets({id:?}): not a requirement this policy refers to with a quoted id"
        )));
    };
    let check = match d.outcome {
        Outcome::Eligible => return Ok(Check::passed(format!("meets {id}"))),
        // A requirement that could not be decided is unknown here, never an error of the
        // incentive that refers to it (a student who earned the endorsement still passes).
        Outcome::Error => {
            return Ok(Check::unknown_no_field(format!(
                "requirement {id} could not be decided"
            )))
        }
        Outcome::Ineligible => {
            let left = d.missing.len();
            let status = if d.reasons.iter().any(|r| r.status == Status::Failed) {
                Status::Failed
            } else {
                Status::Unknown
            };
            let fields = d.reasons.iter().flat_map(|r| r.fields.clone()).collect();
            Check::new(
                status,
                format!("{left} of {} requirements left", d.reasons.len()),
                fields,
            )
        }
    };
    let working_toward = area.is_none_or(|a| {
        s.0.endorsements.as_ref().is_some_and(|list| {
            list.iter()
                .any(|e| e.area == a && e.status == super::student::EndorsementStatus::InProgress)
        })
    });
    let mut check = check;
    if working_toward {
        Rc::make_mut(&mut check.0).steps = d
            .missing
            .iter()
            .map(|m| Step {
                requirement: id.to_string(),
                code: m.code.clone(),
                message: m.message.clone(),
                fields: m.fields.clone(),
            })
            .collect();
    }
    Ok(check)
}

/// `with_steps(check, requirement)`: `check` as it is, carrying the steps of `requirement` (a
/// check or a list of checks from `student.meets`) when it has not passed.
pub(super) fn with_steps(check: Check, from: &[Check]) -> Check {
    if check.status == Status::Passed {
        return check;
    }
    let mut check = check;
    let steps: Vec<Step> = from.iter().flat_map(|c| c.steps.iter().cloned()).collect();
    if !steps.is_empty() {
        Rc::make_mut(&mut check.0).steps.extend(steps);
    }
    check
}

/// How direct plans (`plan.rs`) treat a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanForm {
    /// Plans call the same native function. `example` is an `evaluate` body using the helper
    /// that must become a plan (a test holds every example to it and to rhai's decisions).
    Planned { example: &'static str },
    /// Only rhai runs it; a policy that calls it is interpreted. Says why.
    RhaiOnly(&'static str),
}

/// A helper policies call: its name, every rhai overload registered under it, and its plan
/// form. Adding a helper is adding a row to [`HELPERS`]; a test fails when the engine has a
/// function no row declares.
pub struct Helper {
    /// The name scripts call (for a property, its name without `get$`).
    pub name: &'static str,
    pub plan: PlanForm,
    register: fn(&mut Engine),
}

impl Helper {
    pub fn planned(&self) -> bool {
        matches!(self.plan, PlanForm::Planned { .. })
    }
}

const VALUE_ONLY: PlanForm =
    PlanForm::RhaiOnly("a plain record value: plans pass only literals and checks on");
const CHECK_PARTS: PlanForm =
    PlanForm::RhaiOnly("reads a check's parts, which is logic: plans only pass checks on");

/// Every helper, once.
pub const HELPERS: &[Helper] = &[
    Helper {
        name: "progress",
        plan: PlanForm::Planned {
            example: r#"require("p", progress(student.early_college_hours(), 6, "early-college credit hours", "early_college_credits"), "P", "p");
                        require("q", progress(student.work_based_hours(), 1.5, "hours", "work_based_learning"), "Q", "q");"#,
        },
        register: |e| {
            e.register_fn(
                "progress",
                |v: Dynamic, target: i64, unit: &str, field: &str| {
                    progress(v, target as f64, unit, field)
                },
            )
            .register_fn(
                "progress",
                |v: Dynamic, target: f64, unit: &str, field: &str| progress(v, target, unit, field),
            );
        },
    },
    Helper {
        name: "learning_plan",
        plan: PlanForm::Planned {
            example: r#"require("l", student.learning_plan, "L", "l");"#,
        },
        register: |e| {
            e.register_get("learning_plan", |s: &mut StudentRef| learning_plan(s));
        },
    },
    Helper {
        name: "skills_assessment",
        plan: PlanForm::Planned {
            example: r#"require("a", student.skills_assessment, "A", "a");"#,
        },
        register: |e| {
            e.register_get("skills_assessment", |s: &mut StudentRef| {
                skills_assessment(s)
            });
        },
    },
    Helper {
        name: "academic_readiness",
        plan: PlanForm::Planned {
            example: r#"require("r", student.academic_readiness, "R", "r");"#,
        },
        register: |e| {
            e.register_get("academic_readiness", |s: &mut StudentRef| {
                academic_readiness(s)
            });
        },
    },
    Helper {
        name: "coursework_years",
        plan: PlanForm::Planned {
            example: r#"require("c", progress(student.coursework_years(), 2, "years of coursework", "pathway.career_coursework_years"), "C", "c");"#,
        },
        register: |e| {
            e.register_fn("coursework_years", |s: &mut StudentRef| coursework_years(s));
        },
    },
    Helper {
        name: "work_based_count",
        plan: PlanForm::Planned {
            example: r#"require("t", progress(student.work_based_count("team_based_challenge"), 2, "team-based challenges", "work_based_learning"), "T", "t");"#,
        },
        register: |e| {
            e.register_fn("work_based_count", |s: &mut StudentRef, kind: &str| {
                work_based_count(s, kind)
            });
        },
    },
    Helper {
        name: "supervised_experience",
        plan: PlanForm::Planned {
            example: r#"require("s", student.supervised_experience(60), "S", "s");
                        require("t", student.supervised_experience(12.5), "T", "t");"#,
        },
        register: |e| {
            e.register_fn(
                "supervised_experience",
                |s: &mut StudentRef, target: i64| supervised_experience(s, target as f64),
            )
            .register_fn(
                "supervised_experience",
                |s: &mut StudentRef, target: f64| supervised_experience(s, target),
            );
        },
    },
    Helper {
        name: "career_exploration",
        plan: PlanForm::Planned {
            example: r#"require("e", student.career_exploration(), "E", "e");"#,
        },
        register: |e| {
            e.register_fn("career_exploration", |s: &mut StudentRef| {
                career_exploration(s)
            });
        },
    },
    Helper {
        name: "meets",
        plan: PlanForm::Planned {
            example: r#"require("e", with_steps(student.endorsement_earned("health_sciences_technology"), student.meets("r")), "E", "e");"#,
        },
        register: |e| {
            e.register_fn("meets", |s: &mut StudentRef, id: &str| meets(s, id));
        },
    },
    Helper {
        name: "with_steps",
        plan: PlanForm::Planned {
            example: r#"require("e", with_steps(student.endorsement_earned("health_sciences_technology"), [student.meets("r"), student.meets("q")]), "E", "e");"#,
        },
        register: |e| {
            e.register_fn("with_steps", |c: Check, from: Check| with_steps(c, &[from]))
                .register_fn("with_steps", |c: Check, from: Array| {
                    let checks: Vec<Check> = from
                        .into_iter()
                        .filter_map(|d| d.try_cast::<Check>())
                        .collect();
                    with_steps(c, &checks)
                });
        },
    },
    Helper {
        name: "student_id",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("student_id", |s: &mut StudentRef| s.0.student_id.clone());
        },
    },
    Helper {
        name: "school_id",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("school_id", |s: &mut StudentRef| {
                opt_str(s.0.school_id.as_deref())
            });
        },
    },
    Helper {
        name: "graduation_date",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("graduation_date", |s: &mut StudentRef| {
                s.0.graduation_date
                    .map_or(Dynamic::UNIT, |d| Dynamic::from(date_text(d)))
            });
        },
    },
    Helper {
        name: "payee_preference",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("payee_preference", |s: &mut StudentRef| {
                s.0.payee_preference.map_or(Dynamic::UNIT, |p| {
                    Dynamic::from(match p {
                        super::student::PayeePreference::Student => "student",
                        super::student::PayeePreference::Institution => "institution",
                    })
                })
            });
        },
    },
    Helper {
        name: "college",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("college", |s: &mut StudentRef| {
                opt_str(
                    s.0.postsecondary
                        .as_ref()
                        .and_then(|p| p.institution_id.as_deref()),
                )
            });
        },
    },
    Helper {
        name: "college_status",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_get("college_status", |s: &mut StudentRef| {
                opt_str(
                    s.0.postsecondary
                        .as_ref()
                        .and_then(|p| p.status)
                        .map(PostsecondaryStatus::as_str),
                )
            });
        },
    },
    Helper {
        name: "attribute",
        plan: VALUE_ONLY,
        register: |e| {
            e.register_fn("attribute", |s: &mut StudentRef, key: &str| {
                s.0.attributes
                    .get(key)
                    .and_then(|v| rhai::serde::to_dynamic(v).ok())
                    .unwrap_or(Dynamic::UNIT)
            });
        },
    },
    Helper {
        name: "endorsement_earned",
        plan: PlanForm::Planned {
            example: r#"require("e", student.endorsement_earned("manufacturing_engineering_technology_trades"), "E", "e");
                        require("f", student.endorsement_earned(["health_sciences_technology", "information_technology"]), "F", "f");"#,
        },
        register: |e| {
            e.register_fn(
                "endorsement_earned",
                |s: &mut StudentRef, area: ImmutableString| endorsement_earned_any(s, &[area]),
            )
            .register_fn("endorsement_earned", |s: &mut StudentRef, areas: Array| {
                endorsement_earned_any(s, &strings(&areas, "endorsement areas")?)
            });
        },
    },
    Helper {
        name: "graduated_by",
        plan: PlanForm::Planned {
            example: r#"require("g", student.graduated_by("2024-12-31"), "G", "g");"#,
        },
        register: |e| {
            e.register_fn("graduated_by", |s: &mut StudentRef, date: &str| {
                graduated_by(s, date)
            });
        },
    },
    Helper {
        name: "graduated",
        plan: PlanForm::Planned {
            example: r#"require("g", student.graduated, "G", "g");"#,
        },
        register: |e| {
            e.register_get("graduated", |s: &mut StudentRef| graduated_on(s, s.1));
        },
    },
    Helper {
        name: "college_status_in",
        plan: PlanForm::Planned {
            example: r#"require("c", student.college_status_in(["admitted", "enrolled"]), "C", "c");"#,
        },
        register: |e| {
            e.register_fn(
                "college_status_in",
                |s: &mut StudentRef, statuses: Array| college_status(s, None, &statuses),
            );
        },
    },
    Helper {
        name: "attending",
        plan: PlanForm::Planned {
            example: r#"require("a", student.attending("jjc", ["enrolled"]), "A", "a");"#,
        },
        register: |e| {
            e.register_fn(
                "attending",
                |s: &mut StudentRef, inst: &str, statuses: Array| {
                    college_status(s, Some(inst), &statuses)
                },
            );
        },
    },
    Helper {
        name: "local_job_offer",
        plan: PlanForm::Planned {
            example: r#"require("j", student.local_job_offer(["31", "32", "33"]), "J", "j");"#,
        },
        register: |e| {
            e.register_fn("local_job_offer", |s: &mut StudentRef, prefixes: Array| {
                local_job_offer(s, &prefixes)
            });
        },
    },
    Helper {
        name: "early_college_hours",
        plan: PlanForm::Planned {
            example: r#"require("h", at_least(student.early_college_hours(), 3, "early_college_credits"), "H", "h");
                        require("w", at_least(student.early_college_hours("welding"), 3.0, "early_college_credits"), "W", "w");"#,
        },
        register: |e| {
            e.register_fn("early_college_hours", |s: &mut StudentRef| {
                early_college_hours(s, None)
            })
            .register_fn(
                "early_college_hours",
                |s: &mut StudentRef, subject: &str| early_college_hours(s, Some(subject)),
            );
        },
    },
    Helper {
        name: "work_based_hours",
        plan: PlanForm::Planned {
            example: r#"require("w", at_least(student.work_based_hours(), 1, "work_based_learning"), "W", "w");
                        require("i", at_least(student.work_based_hours("internship"), 60.5, "work_based_learning"), "I", "i");"#,
        },
        register: |e| {
            e.register_fn("work_based_hours", |s: &mut StudentRef| {
                work_based_hours(s, None)
            })
            .register_fn("work_based_hours", |s: &mut StudentRef, kind: &str| {
                work_based_hours(s, Some(kind))
            });
        },
    },
    Helper {
        name: "at_least",
        plan: PlanForm::Planned {
            example: r#"require("h", at_least(student.early_college_hours(), 6, "early_college_credits"), "H", "h");"#,
        },
        register: |e| {
            e.register_fn("at_least", |v: Dynamic, min: f64, field: &str| {
                at_least(v, min, field)
            })
            .register_fn("at_least", |v: Dynamic, min: i64, field: &str| {
                at_least(v, min as f64, field)
            });
        },
    },
    Helper {
        name: "as_of",
        plan: PlanForm::Planned {
            example: r#"require("g", student.graduated_by(ctx.as_of), "G", "g");"#,
        },
        register: |e| {
            e.register_get("as_of", |c: &mut Context| c.as_of.clone());
        },
    },
    Helper {
        name: "policy",
        plan: PlanForm::RhaiOnly("the metadata as a map, for scripts that word their own text"),
        register: |e| {
            e.register_get("policy", |c: &mut Context| {
                rhai::serde::to_dynamic(&*c.meta).unwrap_or(Dynamic::UNIT)
            });
        },
    },
    Helper {
        name: "passed",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_get("passed", |c: &mut Check| c.status == Status::Passed);
        },
    },
    Helper {
        name: "failed",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_get("failed", |c: &mut Check| c.status == Status::Failed);
        },
    },
    Helper {
        name: "unknown",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_get("unknown", |c: &mut Check| c.status == Status::Unknown);
        },
    },
    Helper {
        name: "status",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_get("status", |c: &mut Check| c.status.as_str());
        },
    },
    Helper {
        name: "detail",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_get("detail", |c: &mut Check| c.detail.clone());
        },
    },
    Helper {
        name: "to_string",
        plan: CHECK_PARTS,
        register: |e| {
            e.register_fn("to_string", |c: &mut Check| {
                format!("{}: {}", c.status.as_str(), c.detail)
            });
        },
    },
    Helper {
        name: "either",
        plan: PlanForm::Planned {
            example: r#"require("c", either(student.college_status_in(["admitted", "enrolled"]), student.local_job_offer(["31", "32", "33"])), "C", "c");"#,
        },
        register: |e| {
            e.register_fn("either", |a: Check, b: Check| combine(a, b, true));
        },
    },
    Helper {
        name: "both",
        plan: PlanForm::Planned {
            example: r#"require("b", both(student.attending("jjc", ["enrolled"]), student.graduated), "B", "b");"#,
        },
        register: |e| {
            e.register_fn("both", |a: Check, b: Check| combine(a, b, false));
        },
    },
    Helper {
        name: "days_between",
        plan: PlanForm::RhaiOnly("a number for script logic, not a check"),
        register: |e| {
            e.register_fn(
                "days_between",
                |a: &str, b: &str| -> Result<i64, Box<EvalAltResult>> {
                    Ok((parse_date(b)? - parse_date(a)?).num_days())
                },
            );
        },
    },
    Helper {
        name: "checks",
        plan: PlanForm::RhaiOnly(
            "the older style that threads a decision value through the script",
        ),
        register: |e| {
            e.register_fn("checks", Checks::default);
        },
    },
    Helper {
        name: "eligible",
        plan: PlanForm::RhaiOnly("the older style's decision value"),
        register: |e| {
            e.register_get("eligible", |c: &mut Checks| c.all_passed());
        },
    },
    Helper {
        name: "require",
        plan: PlanForm::Planned {
            example: r#"require("t", true, "T", "t"); require("f", false, "F", "f"); require("u", (), "U", "u");
                        require("e", student.endorsement_earned("manufacturing_engineering_technology_trades"));"#,
        },
        register: |e| {
            // One overload per argument type: a `Dynamic` parameter makes rhai search every
            // combination of parameter types on each new call site, which measured as the
            // single largest cost of a decision. The method forms are the older style; the
            // statement forms record into the decision of the running `evaluate` (the run's
            // tag), one call fewer per criterion.
            e.register_fn(
                "require",
                |c: &mut Checks, code: &str, v: Check, message: &str, missing: &str| {
                    c.require(code, v, message, missing);
                },
            )
            .register_fn(
                "require",
                |c: &mut Checks, code: &str, v: bool, message: &str, missing: &str| {
                    c.require(code, bool_check(v), message, missing);
                },
            )
            .register_fn(
                "require",
                |c: &mut Checks, code: &str, _v: (), message: &str, missing: &str| {
                    c.require(code, absent_check(), message, missing);
                },
            )
            .register_fn(
                "require",
                |ctx: NativeCallContext, code: &str, v: Check, message: &str, missing: &str| {
                    running(&ctx).map(|mut c| c.require(code, v, message, missing))
                },
            )
            .register_fn(
                "require",
                |ctx: NativeCallContext, code: &str, v: bool, message: &str, missing: &str| {
                    running(&ctx).map(|mut c| c.require(code, bool_check(v), message, missing))
                },
            )
            .register_fn(
                "require",
                |ctx: NativeCallContext, code: &str, _v: (), message: &str, missing: &str| {
                    running(&ctx).map(|mut c| c.require(code, absent_check(), message, missing))
                },
            )
            .register_fn("require", |ctx: NativeCallContext, code: &str, v: Check| {
                running(&ctx)?.require_declared(code, v)
            })
            .register_fn("require", |ctx: NativeCallContext, code: &str, v: bool| {
                running(&ctx)?.require_declared(code, bool_check(v))
            })
            .register_fn("require", |ctx: NativeCallContext, code: &str, _v: ()| {
                running(&ctx)?.require_declared(code, absent_check())
            });
        },
    },
    Helper {
        name: "pay_to_student",
        plan: PlanForm::Planned {
            example: r#"require("t", true, "T", "t"); pay_to_student();"#,
        },
        register: |e| {
            e.register_fn("pay_to_student", |c: &mut Checks| c.pay_to_student())
                .register_fn("pay_to_student", |ctx: NativeCallContext| {
                    running(&ctx).map(|mut c| c.pay_to_student())
                });
        },
    },
    Helper {
        name: "pay_to_college_if_requested",
        plan: PlanForm::Planned {
            example: r#"require("g", student.graduated, "G", "g"); pay_to_college_if_requested(student);"#,
        },
        register: |e| {
            e.register_fn(
                "pay_to_college_if_requested",
                |c: &mut Checks, s: StudentRef| c.pay_to_college_if_requested(&s),
            )
            .register_fn(
                "pay_to_college_if_requested",
                |ctx: NativeCallContext, s: &mut StudentRef| {
                    running(&ctx).map(|mut c| c.pay_to_college_if_requested(s))
                },
            );
        },
    },
    Helper {
        name: "pay_to_institution",
        plan: PlanForm::Planned {
            example: r#"require("t", true, "T", "t"); pay_to_institution("jjc");"#,
        },
        register: |e| {
            e.register_fn("pay_to_institution", |c: &mut Checks, id: &str| {
                c.pay_to_institution(id)
            })
            .register_fn("pay_to_institution", |ctx: NativeCallContext, id: &str| {
                running(&ctx).map(|mut c| c.pay_to_institution(id))
            });
        },
    },
    Helper {
        name: "eligible_so_far",
        plan: PlanForm::RhaiOnly("reads the decision being built, which is logic"),
        register: |e| {
            e.register_fn("eligible_so_far", |ctx: NativeCallContext| {
                running(&ctx).map(|c| c.all_passed())
            });
        },
    },
];

/// Whether direct plans may call the helper `name` (declared in [`HELPERS`] as planned).
pub fn planned(name: &str) -> bool {
    HELPERS.iter().any(|h| h.name == name && h.planned())
}

/// Builds an engine with the limits on and the helpers registered. Costly (~250 µs): build one
/// per thread and reuse it.
pub fn build_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_variables(limits.max_variables)
        .set_max_functions(limits.max_functions)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    engine.disable_symbol("eval");
    engine
        .register_type_with_name::<StudentRef>("Student")
        .register_type_with_name::<Context>("Context")
        .register_type_with_name::<Check>("Check")
        .register_type_with_name::<Checks>("Checks");
    for helper in HELPERS {
        (helper.register)(&mut engine);
    }
    engine
}

#[cfg(test)]
mod helper_tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The names of the functions an engine has registered beyond rhai's own (a property's
    /// getter under the property's name).
    fn registered(engine: &Engine) -> BTreeSet<String> {
        engine
            .collect_fn_metadata(
                None,
                |f| Some(f.metadata.name.trim_start_matches("get$").to_string()),
                false,
            )
            .into_iter()
            .collect()
    }

    #[test]
    fn every_registered_function_is_declared_once_with_its_plan_form() {
        let engine = build_engine(&Limits::default());
        let declared: BTreeSet<String> = HELPERS.iter().map(|h| h.name.to_string()).collect();
        assert_eq!(declared.len(), HELPERS.len(), "a helper is declared twice");
        assert_eq!(
            registered(&engine),
            declared,
            "every function the engine registers needs a row in HELPERS (planned, or rhai-only \
             with the reason)"
        );
        // Each row registers under its own name only.
        for h in HELPERS {
            let mut alone = Engine::new_raw();
            (h.register)(&mut alone);
            assert_eq!(
                registered(&alone),
                BTreeSet::from([h.name.to_string()]),
                "{}",
                h.name
            );
        }
    }
}

#[cfg(test)]
mod date_tests {
    use chrono::NaiveDate;

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "super::serialize_date")] NaiveDate);

    /// Responses and ledger entries keep chrono's exact text for every date.
    #[test]
    fn dates_serialize_as_chrono_does() {
        for (y, m, d) in [
            (2024, 6, 1),
            (1, 1, 1),
            (0, 2, 29),
            (-5, 12, 31),
            (9999, 12, 31),
            (12_345, 2, 3),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
            assert_eq!(
                serde_json::to_string(&Ours(date)).unwrap_or_default(),
                serde_json::to_string(&date).unwrap_or_default(),
                "{date:?}"
            );
        }
    }
}
