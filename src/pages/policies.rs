//! The policy author's pages: policies and their versions, one version's source (with line
//! numbers), criteria, cases and coverage, and a form that checks a candidate (compile errors
//! at their line, failing cases, coverage, the what-if with its charts) and publishes it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::students::dollars;
use super::{html, html_with, verify_csrf, Chrome, PageError};
use crate::api::AppState;
use crate::policy::publish::{Coverage, Refusal};
use crate::policy::tests::{CaseResult, TestSuite};
use crate::policy::whatif::{Cell, Cost, GroupRow};
use crate::policy::{Award, PolicyError};
use crate::service::simulate::{Simulation, SimulationRequest};
use crate::service::ServiceError;

fn award_text(a: &Option<Award>) -> String {
    match a {
        Some(Award::Scholarship { amount_cents }) => {
            format!("{} scholarship", dollars(*amount_cents))
        }
        Some(Award::TuitionWaiver {
            credit_hours,
            institution_id,
        }) => format!("{credit_hours} credit hours waived at {institution_id}"),
        None => "a requirement (never awarded)".to_string(),
    }
}

fn period(from: NaiveDate, to: Option<NaiveDate>) -> String {
    match to {
        Some(to) => format!("from {from} until {to}"),
        None => format!("from {from}, open-ended"),
    }
}

// ---- the list ---------------------------------------------------------------------------------

pub struct VersionRow {
    pub version: u32,
    pub href: String,
    pub period: String,
    pub in_effect: bool,
    pub hash: String,
    pub published: String,
}

pub struct PolicyRow {
    pub id: String,
    pub title: String,
    pub sponsor: String,
    pub award: String,
    pub versions: Vec<VersionRow>,
    /// Whether the signed-in key may publish versions of it.
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    policies: Vec<PolicyRow>,
}

/// Every policy and its versions.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let today = chrono::Utc::now().date_naive();
    let policies = state
        .service
        .policies()
        .await?
        .into_iter()
        .filter_map(|(id, versions)| {
            let last = versions.last()?.version.clone();
            Some(PolicyRow {
                title: last.meta.title.clone(),
                sponsor: last.meta.sponsor.clone(),
                award: award_text(&last.meta.award),
                mine: caller.may_act_for(&last.meta.sponsor),
                versions: versions
                    .iter()
                    .map(|p| {
                        let m = &p.version.meta;
                        VersionRow {
                            version: m.version,
                            href: format!("/policies/{id}/versions/{}", m.version),
                            period: period(m.effective_from, m.effective_to),
                            in_effect: m.in_effect(today),
                            hash: p.version.hash.chars().take(12).collect(),
                            // To the minute, UTC: the seconds' fractions only crowd the table.
                            published: p
                                .published_at
                                .as_deref()
                                .map(super::to_the_minute)
                                .unwrap_or_default(),
                        }
                    })
                    .collect(),
                id,
            })
        })
        .collect();
    html(PoliciesPage {
        chrome: Chrome::of(&req),
        policies,
    })
}

// ---- one version ------------------------------------------------------------------------------

pub struct SourceLine {
    pub number: usize,
    pub text: String,
    /// The line a compile error points at.
    pub error: bool,
}

fn source_lines(source: &str, error_line: Option<usize>) -> Vec<SourceLine> {
    source
        .lines()
        .enumerate()
        .map(|(i, text)| SourceLine {
            number: i + 1,
            text: text.to_string(),
            error: error_line == Some(i + 1),
        })
        .collect()
}

pub struct CriterionRow {
    pub code: String,
    pub label: String,
    pub missing: String,
}

pub struct CaseRow {
    pub name: String,
    pub as_of: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
    pub problems: String,
}

fn case_rows(suite: &TestSuite, results: &[CaseResult]) -> Vec<CaseRow> {
    suite
        .cases
        .iter()
        .zip(results)
        .map(|(c, r)| CaseRow {
            name: c.name.clone(),
            as_of: c.as_of.to_string(),
            expected: c.expect.outcome.clone(),
            actual: r.actual.clone(),
            passed: r.passed,
            problems: r.problems.join("; "),
        })
        .collect()
}

pub struct CoverageRow {
    pub code: String,
    pub statuses: String,
    pub exercised: bool,
}

/// Coverage as a page shows it.
pub struct CoverageView {
    pub cases: usize,
    pub eligible: usize,
    pub ineligible: usize,
    pub rows: Vec<CoverageRow>,
    pub met: bool,
    pub problems: Vec<String>,
}

impl From<&Coverage> for CoverageView {
    fn from(c: &Coverage) -> Self {
        Self {
            cases: c.cases,
            eligible: c.eligible,
            ineligible: c.ineligible,
            rows: c
                .criteria
                .iter()
                .map(|r| CoverageRow {
                    code: r.code.clone(),
                    statuses: r
                        .statuses
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    exercised: r.exercised,
                })
                .collect(),
            met: c.met,
            problems: c.problems.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "policy_version.html")]
struct VersionPage {
    chrome: Chrome,
    id: String,
    version: u32,
    title: String,
    sponsor: String,
    award: String,
    period: String,
    hash: String,
    published: String,
    lines: Vec<SourceLine>,
    criteria: Vec<CriterionRow>,
    cases: Vec<CaseRow>,
    coverage: Option<CoverageView>,
    mine: bool,
}

/// One version: its source, criteria, cases and what they cover.
pub async fn version(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, u32)>,
) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let (id, number) = path.into_inner();
    let versions = state.service.policy(&id).await?;
    let p = versions
        .into_iter()
        .find(|p| p.version.meta.version == number)
        .ok_or_else(|| PageError::not_found(format!("{id} has no version {number}")))?;
    let m = &p.version.meta;
    let (cases, coverage) = match &p.tests {
        Some(suite) => {
            let checked = state
                .service
                .run_cases(p.version.clone(), suite.clone())
                .await?;
            (
                case_rows(suite, &checked.0),
                Some(CoverageView::from(&checked.1)),
            )
        }
        None => (Vec::new(), None),
    };
    html(VersionPage {
        chrome: Chrome::of(&req),
        id: id.clone(),
        version: number,
        title: m.title.clone(),
        sponsor: m.sponsor.clone(),
        award: award_text(&m.award),
        period: period(m.effective_from, m.effective_to),
        hash: p.version.hash.clone(),
        published: match (&p.published_at, &p.published_by) {
            (Some(at), Some(by)) => format!("{at} by key {by}"),
            (Some(at), None) => format!("{at} from the rules folder"),
            _ => String::new(),
        },
        lines: source_lines(&p.version.source, None),
        criteria: m
            .criteria
            .iter()
            .map(|(code, t)| CriterionRow {
                code: code.clone(),
                label: t.label.clone(),
                missing: t.missing.clone(),
            })
            .collect(),
        cases,
        coverage,
        mine: caller.may_act_for(&m.sponsor),
    })
}

// ---- a candidate: check, what-if, publish ------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct CandidateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    tests: String,
    #[serde(default)]
    as_of: String,
    #[serde(default)]
    school_id: String,
}

#[derive(Deserialize)]
pub struct NewQuery {
    /// Start from the latest version of this policy.
    policy: Option<String>,
}

/// One bar of a chart, and its numbers.
pub struct Bar {
    pub label: String,
    pub y: u32,
    pub text_y: u32,
    pub gained: String,
    pub gained_width: u32,
    pub lost: String,
    pub lost_width: u32,
    pub lost_x: u32,
}

/// One chart: gained and lost students by group, with the same numbers in a table.
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub width: u32,
    pub height: u32,
    /// Where the gained bars and the lost bars start.
    pub gained_x: u32,
    pub lost_x: u32,
    pub bars: Vec<Bar>,
    /// The numbers, for the table below the chart.
    pub rows: Vec<GroupRow>,
}

const BAR_AREA: u32 = 300;
const LABEL_WIDTH: u32 = 340;
/// Labels longer than this are cut in the chart (the table below it has them whole).
const LABEL_CHARS: usize = 44;
const ROW: u32 = 28;

fn chart(id: &'static str, title: &'static str, rows: Vec<GroupRow>) -> Chart {
    let most = rows
        .iter()
        .flat_map(|r| [r.gained.count(), r.lost.count()])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let width = |c: Cell| match c {
        Cell::Count(n) => ((n * u64::from(BAR_AREA / 2 - 10)) / most) as u32,
        Cell::Suppressed => 0,
    };
    let bars = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let y = 10 + i as u32 * ROW;
            let label = if r.group.chars().count() > LABEL_CHARS {
                let cut: String = r.group.chars().take(LABEL_CHARS - 1).collect();
                format!("{cut}…")
            } else {
                r.group.clone()
            };
            Bar {
                label,
                y,
                text_y: y + 16,
                gained: r.gained.to_string(),
                gained_width: width(r.gained),
                lost: r.lost.to_string(),
                lost_width: width(r.lost),
                lost_x: LABEL_WIDTH + BAR_AREA / 2,
            }
        })
        .collect::<Vec<_>>();
    Chart {
        id,
        title,
        width: LABEL_WIDTH + BAR_AREA + 40,
        height: 20 + bars.len() as u32 * ROW,
        gained_x: LABEL_WIDTH,
        lost_x: LABEL_WIDTH + BAR_AREA / 2,
        bars,
        rows,
    }
}

/// The what-if as a page shows it.
pub struct WhatIfView {
    pub against: u32,
    pub candidate: u32,
    pub as_of: String,
    pub students: String,
    pub before: (String, String, String, String),
    pub after: (String, String, String, String),
    pub gained: String,
    pub lost: String,
    pub budget: String,
    pub criteria: Vec<(String, String, String)>,
    pub charts: Vec<Chart>,
    pub suppress_below: u64,
}

fn cost_text(c: &Cost) -> String {
    if c.awards == Cell::Suppressed {
        return "suppressed".to_string();
    }
    match (c.cents, c.credit_hours) {
        (Some(cents), _) => format!("{} ({} awards)", dollars(cents), c.awards),
        (None, Some(h)) => format!("{h} credit hours ({} awards)", c.awards),
        _ => format!("{} awards", c.awards),
    }
}

impl From<Simulation> for WhatIfView {
    fn from(s: Simulation) -> Self {
        let w = s.summary;
        let b = &s.budget;
        let budget = match (b.remaining_cents, b.remaining_awards) {
            (Some(c), _) => format!(
                "{} remaining of {}",
                dollars(c),
                dollars(b.total_cents.unwrap_or(0))
            ),
            (None, Some(n)) => format!("{n} awards remaining of {}", b.max_awards.unwrap_or(0)),
            _ => "no budget set (unlimited)".to_string(),
        };
        let g = w.groups;
        Self {
            against: w.against.version,
            candidate: w.candidate.version,
            as_of: w.as_of.to_string(),
            students: w.students.to_string(),
            before: (
                w.before.eligible.to_string(),
                w.before.ineligible.to_string(),
                w.before.errors.to_string(),
                cost_text(&w.before.cost),
            ),
            after: (
                w.after.eligible.to_string(),
                w.after.ineligible.to_string(),
                w.after.errors.to_string(),
                cost_text(&w.after.cost),
            ),
            gained: w.gained.to_string(),
            lost: w.lost.to_string(),
            budget,
            criteria: w
                .criteria
                .into_iter()
                .map(|c| {
                    (
                        c.code,
                        c.newly_failing.to_string(),
                        c.newly_passing.to_string(),
                    )
                })
                .collect(),
            charts: vec![
                chart("chart-school", "By school", g.school),
                chart("chart-area", "By endorsement area", g.area),
                chart("chart-gender", "By gender", g.gender),
                chart("chart-race", "By race/ethnicity", g.race_ethnicity),
            ],
            suppress_below: w.suppress_below,
        }
    }
}

#[derive(Template)]
#[template(path = "policy_candidate.html")]
struct CandidatePage {
    chrome: Chrome,
    form: CandidateForm,
    checked: bool,
    /// Next to the source: a compile or metadata error (with the line when known).
    source_error: Option<String>,
    tests_error: Option<String>,
    /// Other refusals (a changed version, an overlap, another sponsor's policy).
    refusal: Option<String>,
    lines: Vec<SourceLine>,
    summary: Option<(usize, usize, usize)>,
    cases: Vec<CaseRow>,
    coverage: Option<CoverageView>,
    whatif: Option<WhatIfView>,
    whatif_note: Option<String>,
    publishable: Option<(String, u32)>,
}

impl CandidatePage {
    fn new(req: &HttpRequest, form: CandidateForm) -> Self {
        Self {
            chrome: Chrome::of(req),
            form,
            checked: false,
            source_error: None,
            tests_error: None,
            refusal: None,
            lines: Vec::new(),
            summary: None,
            cases: Vec::new(),
            coverage: None,
            whatif: None,
            whatif_note: None,
            publishable: None,
        }
    }
}

/// The form, empty or started from a policy's latest version.
pub async fn new_candidate(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NewQuery>,
) -> Result<HttpResponse, PageError> {
    let mut form = CandidateForm::default();
    if let Some(id) = &query.policy {
        let versions = state.service.policy(id).await?;
        if let Some(p) = versions.last() {
            form.source = p.version.source.to_string();
            form.tests = p
                .tests
                .as_ref()
                .map(serde_json::to_string_pretty)
                .transpose()
                .map_err(ServiceError::from)?
                .unwrap_or_default();
        }
    }
    html(CandidatePage::new(&req, form))
}

fn parse_tests(text: &str) -> Result<TestSuite, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "The cases are not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    crate::policy::publish::parse_suite(value, "form").map_err(|e| format!("The cases: {e}"))
}

/// Runs every check of publishing (a dry run) and the what-if; shows what each found.
async fn check_candidate(
    state: &AppState,
    req: &HttpRequest,
    form: CandidateForm,
    publish: bool,
) -> Result<HttpResponse, PageError> {
    verify_csrf(req, &form.csrf)?;
    let caller = super::caller(req)?;
    // Browsers send a textarea's line breaks as CRLF; the script and its hash are the LF text
    // an author keeps in git.
    let mut form = form;
    form.source = form.source.replace("\r\n", "\n");
    form.tests = form.tests.replace("\r\n", "\n");
    let mut page = CandidatePage::new(req, form.clone());
    page.checked = true;
    page.lines = source_lines(&form.source, None);
    let as_of = match form.as_of.trim() {
        "" => None,
        v => match v.parse::<NaiveDate>() {
            Ok(d) => Some(d),
            Err(_) => {
                page.whatif_note = Some(format!("{v:?} is not a date (YYYY-MM-DD)."));
                None
            }
        },
    };
    let suite = match parse_tests(&form.tests) {
        Ok(s) => Some(s),
        Err(e) => {
            page.tests_error = Some(e);
            None
        }
    };
    // Compile first on its own, so a source error shows even when the cases are bad too.
    let candidate = match crate::policy::publish::load_candidate(&form.source, "candidate") {
        Ok(v) => Some(v),
        Err(Refusal::Policy(PolicyError::Compile {
            line,
            column,
            message,
            ..
        })) => {
            page.source_error = Some(match (line, column) {
                (Some(l), Some(c)) => format!("Line {l}, column {c}: {message}"),
                (Some(l), None) => format!("Line {l}: {message}"),
                _ => message,
            });
            page.lines = source_lines(&form.source, line);
            None
        }
        Err(e) => {
            page.source_error = Some(e.to_string());
            None
        }
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let (Some(candidate), Some(suite)) = (candidate, suite) else {
        return html_with(status, page);
    };
    let id = candidate.meta.id.clone();
    // Whether every check passed (the candidate is publishable, or is published already).
    let mut passed = false;
    match state
        .service
        .publish(&caller, form.source.clone(), suite.clone(), !publish)
        .await
    {
        Ok(p) if publish => {
            return Ok(HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!("/policies/{id}/versions/{}", p.version.meta.version),
                ))
                .finish())
        }
        Ok(p) => {
            passed = true;
            let results = p.results;
            page.summary = Some((p.summary.total, p.summary.passed, p.summary.failed));
            page.cases = case_rows(&suite, &results);
            page.coverage = Some(CoverageView::from(&p.coverage));
            page.publishable = (!p.already_published).then(|| (id.clone(), p.version.meta.version));
            if p.already_published {
                page.refusal = Some(format!(
                    "{id} version {} is already published with exactly this source.",
                    p.version.meta.version
                ));
            }
        }
        Err(ServiceError::Refused(r)) => match *r {
            Refusal::CasesFail {
                summary,
                failures,
                coverage,
            } => {
                page.summary = Some((summary.total, summary.passed, summary.failed));
                page.cases = failures
                    .iter()
                    .map(|f| CaseRow {
                        name: f.name.clone(),
                        as_of: String::new(),
                        expected: f.expected.outcome.clone(),
                        actual: f.actual.clone(),
                        passed: false,
                        problems: f.problems.join("; "),
                    })
                    .collect();
                page.coverage = Some(CoverageView::from(&*coverage));
            }
            Refusal::Coverage { summary, coverage } => {
                page.summary = Some((summary.total, summary.passed, summary.failed));
                page.coverage = Some(CoverageView::from(&*coverage));
            }
            Refusal::Policy(e) => page.source_error = Some(e.to_string()),
            Refusal::Tests(m) => page.tests_error = Some(m),
            other => page.refusal = Some(other.to_string()),
        },
        Err(ServiceError::Forbidden(m)) => {
            return Err(PageError::forbidden(m));
        }
        Err(e) => return Err(e.into()),
    }
    // The what-if, for a policy that has versions to compare against.
    if page.whatif_note.is_none() {
        if state.service.sponsor_of(&id).is_none() {
            page.whatif_note = Some(format!(
                "{id} is a new policy: there is no version to compare against."
            ));
        } else {
            let request = SimulationRequest {
                source: Some(form.source.clone()),
                as_of,
                school_id: Some(form.school_id.trim().to_string()).filter(|s| !s.is_empty()),
                ..Default::default()
            };
            match state.service.simulate(&caller, id.clone(), request).await {
                Ok((simulation, _)) => page.whatif = Some(WhatIfView::from(simulation)),
                Err(ServiceError::Invalid { message, .. }) => page.whatif_note = Some(message),
                Err(e) => return Err(e.into()),
            }
        }
    }
    html_with(if passed { StatusCode::OK } else { status }, page)
}

/// Checks a candidate (a dry run of publishing) and shows the what-if.
pub async fn check(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CandidateForm>,
) -> Result<HttpResponse, PageError> {
    check_candidate(&state, &req, form.into_inner(), false).await
}

/// Publishes a candidate (every check again), then shows the new version.
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CandidateForm>,
) -> Result<HttpResponse, PageError> {
    check_candidate(&state, &req, form.into_inner(), true).await
}
