//! The program officer's dashboard: the pathway funnel, awards by group beside the cohort's
//! make-up, budget burn and projection; and cohort batches started from a page, with their
//! progress. Every chart is SVG drawn here, with its numbers in a table below it, and every
//! table downloads as CSV. The numbers come from the same report and batch functions as the API.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::students::dollars;
use super::{html, Chrome, PageError};
use crate::api::AppState;
use crate::policy::student::EndorsementArea;
use crate::policy::whatif::Cell;
use crate::service::access::Caller;
use crate::service::batches::{BatchMode, BatchRequest, BatchView, StudentSelection};
use crate::service::reports::{
    AwardsGroupBy, AwardsReport, BudgetReport, Period, ProgressionQuery, ProgressionReport,
    StudentGroupBy,
};
use crate::service::ServiceError;

/// The dashboard's filters, from its query string (every one optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    school_id: Option<String>,
    #[serde(default)]
    area: Option<String>,
    /// Awards recorded from this date (YYYY-MM-DD).
    #[serde(default)]
    from: Option<String>,
    /// ... to this date.
    #[serde(default)]
    to: Option<String>,
    /// `gender` (default) or `race_ethnicity`.
    #[serde(default)]
    group: Option<String>,
}

impl Filters {
    fn non_empty(v: &Option<String>) -> Option<String> {
        v.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn group_by(&self) -> (StudentGroupBy, AwardsGroupBy) {
        match self.group.as_deref() {
            Some("race_ethnicity") => (StudentGroupBy::RaceEthnicity, AwardsGroupBy::RaceEthnicity),
            _ => (StudentGroupBy::Gender, AwardsGroupBy::Gender),
        }
    }

    /// The same filters as a query string (for the CSV links).
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("school_id", &self.school_id),
            ("area", &self.area),
            ("from", &self.from),
            ("to", &self.to),
            ("group", &self.group),
        ] {
            if let Some(v) = Self::non_empty(v) {
                parts.push(format!("{k}={}", encode(&v)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Everything the dashboard shows, from the three reports.
struct Reports {
    progression: ProgressionReport,
    awards: AwardsReport,
    burn: AwardsReport,
    budget: BudgetReport,
}

/// Reads the reports for the filters; a bad filter is a message for its field.
/// Each report the dashboard shows, for the filters (the same service calls as the API's).
impl Filters {
    async fn progression(
        &self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<ProgressionReport, ServiceError> {
        let query = ProgressionQuery {
            school_id: Self::non_empty(&self.school_id),
            area: Self::non_empty(&self.area),
            as_of: None,
            group_by: Some(self.group_by().0),
        };
        state.service.progression_report(caller, query).await
    }

    fn period(&self) -> Period {
        Period {
            from: Self::non_empty(&self.from),
            to: Self::non_empty(&self.to),
        }
    }

    /// Awards by group, of the students on the same pathway (and school) as the cohort beside
    /// them.
    async fn awards(
        &self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<AwardsReport, ServiceError> {
        let area = Self::non_empty(&self.area).unwrap_or_else(|| {
            EndorsementArea::ManufacturingEngineeringTechnologyTrades
                .as_str()
                .into()
        });
        let school = Self::non_empty(&self.school_id);
        let group = self.group_by().1;
        let period = self.period();
        state
            .service
            .awards_report(caller, group, period, school, Some(area))
            .await
    }

    /// Money committed by month.
    async fn burn(&self, state: &AppState, caller: &Caller) -> Result<AwardsReport, ServiceError> {
        let school = Self::non_empty(&self.school_id);
        let period = self.period();
        state
            .service
            .awards_report(caller, AwardsGroupBy::Month, period, school, None)
            .await
    }
}

/// A filter's problem as (field, message) for the form; any other failure is the page's.
fn filter_problem(e: ServiceError) -> Result<(&'static str, String), PageError> {
    match e {
        ServiceError::Invalid { field, message } => Ok((
            match field.as_str() {
                "area" => "area",
                "to" => "to",
                _ => "from",
            },
            message,
        )),
        other => Err(other.into()),
    }
}

/// Reads the reports for the filters; a bad filter is a message for its field.
async fn reports(
    state: &AppState,
    caller: &Caller,
    f: &Filters,
) -> Result<Result<Reports, (&'static str, String)>, PageError> {
    let found = async {
        Ok::<_, ServiceError>(Reports {
            progression: f.progression(state, caller).await?,
            awards: f.awards(state, caller).await?,
            burn: f.burn(state, caller).await?,
            budget: state.service.budget_report(caller, None).await?,
        })
    };
    Ok(match found.await {
        Ok(r) => Ok(r),
        Err(e) => Err(filter_problem(e)?),
    })
}

/// A horizontal bar and its label.
pub struct HBar {
    pub label: String,
    pub value: String,
    pub y: u32,
    pub text_y: u32,
    pub width: u32,
}

const LABEL_W: u32 = 300;
const BAR_W: u32 = 320;
const ROW_H: u32 = 26;

fn cut(label: &str) -> String {
    if label.chars().count() > 40 {
        format!("{}…", label.chars().take(39).collect::<String>())
    } else {
        label.to_string()
    }
}

fn bars(items: &[(String, Option<u64>, String)], most: u64) -> Vec<HBar> {
    let most = most.max(1);
    items
        .iter()
        .enumerate()
        .map(|(i, (label, n, value))| {
            let y = 6 + i as u32 * ROW_H;
            HBar {
                label: cut(label),
                value: value.clone(),
                y,
                text_y: y + 14,
                width: n.map_or(0, |n| ((n.min(most) * u64::from(BAR_W)) / most) as u32),
            }
        })
        .collect()
}

/// The funnel: one bar per step (students who reached it and every step before).
pub struct Funnel {
    pub height: u32,
    pub bars: Vec<HBar>,
    /// label, reached, through
    pub rows: Vec<(String, String, String)>,
    pub students: String,
}

/// Awards against the cohort, per group.
pub struct ReachRow {
    pub group: String,
    pub students: String,
    pub cohort_share: String,
    pub granted: String,
    pub award_share: String,
}

pub struct Reach {
    pub height: u32,
    /// Two bars per group: share of the cohort, share of the awards.
    pub bars: Vec<(HBar, HBar)>,
    pub rows: Vec<ReachRow>,
    pub group_label: &'static str,
}

/// One program's budget: committed, what the eligible would add, what remains.
pub struct BudgetLine {
    pub title: String,
    pub total: String,
    pub committed: String,
    pub remaining: String,
    pub waiting: String,
    pub waiting_cost: String,
    pub projection: String,
    /// Bar widths out of `BAR_W`: committed, then the eligible's cost (capped at the total).
    pub committed_w: u32,
    pub waiting_w: u32,
    pub waiting_x: u32,
    pub limited: bool,
}

pub struct BurnRow {
    pub month: String,
    pub net: String,
    pub cumulative: String,
}

pub struct Burn {
    pub height: u32,
    pub bars: Vec<HBar>,
    pub rows: Vec<BurnRow>,
}

fn share(n: Cell, of: u64) -> String {
    match n {
        Cell::Count(n) if of > 0 => format!("{:.0}%", n as f64 * 100.0 / of as f64),
        Cell::Count(_) => "–".into(),
        Cell::Suppressed => "suppressed".into(),
    }
}

fn funnel(p: &ProgressionReport) -> Funnel {
    let students = p.total.students;
    let items: Vec<(String, Option<u64>, String)> = p
        .steps
        .iter()
        .zip(&p.total.steps)
        .map(|(s, c)| (s.label.clone(), c.reached.count(), c.reached.to_string()))
        .collect();
    let bars = bars(&items, students.count().unwrap_or(0));
    Funnel {
        height: 12 + bars.len() as u32 * ROW_H,
        rows: p
            .steps
            .iter()
            .zip(&p.total.steps)
            .map(|(s, c)| {
                (
                    s.label.clone(),
                    c.reached.to_string(),
                    c.through.to_string(),
                )
            })
            .collect(),
        bars,
        students: students.to_string(),
    }
}

fn reach(p: &ProgressionReport, a: &AwardsReport, group: StudentGroupBy) -> Reach {
    let cohort: u64 = p.total.students.count().unwrap_or(0);
    let granted_total = a.total.granted.count().unwrap_or(0);
    let mut groups: Vec<String> = p.groups.iter().map(|g| g.group.clone()).collect();
    for r in &a.rows {
        if !groups.contains(&r.group) {
            groups.push(r.group.clone());
        }
    }
    groups.sort();
    let mut rows = Vec::new();
    let mut bar_pairs = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let students = p
            .groups
            .iter()
            .find(|x| &x.group == g)
            .map_or(Cell::Count(0), |x| x.students);
        let granted = a
            .rows
            .iter()
            .find(|x| &x.group == g)
            .map_or(Cell::Count(0), |x| x.granted);
        let pct = |n: Cell, of: u64| match n {
            Cell::Count(n) if of > 0 => Some(n * 100 / of),
            _ => None,
        };
        let y = 6 + i as u32 * (2 * ROW_H - 6);
        let bar = |p: Option<u64>, y: u32, text: String| HBar {
            label: String::new(),
            value: text,
            y,
            text_y: y + 14,
            width: p.map_or(0, |p| (p.min(100) * u64::from(BAR_W) / 100) as u32),
        };
        let mut first = bar(
            pct(students, cohort),
            y,
            format!("cohort {}", share(students, cohort)),
        );
        first.label = cut(g);
        bar_pairs.push((
            first,
            bar(
                pct(granted, granted_total),
                y + ROW_H - 6,
                format!("awards {}", share(granted, granted_total)),
            ),
        ));
        rows.push(ReachRow {
            group: g.clone(),
            students: students.to_string(),
            cohort_share: share(students, cohort),
            granted: granted.to_string(),
            award_share: share(granted, granted_total),
        });
    }
    Reach {
        height: 12 + groups.len() as u32 * (2 * ROW_H - 6),
        bars: bar_pairs,
        rows,
        group_label: match group {
            StudentGroupBy::RaceEthnicity => "Race/ethnicity",
            _ => "Gender",
        },
    }
}

fn budget_lines(b: &BudgetReport) -> Vec<BudgetLine> {
    b.programs
        .iter()
        .map(|p| {
            let money = p.award_kind == "scholarship";
            let fmt = |cents: i64, awards: i64| {
                if money {
                    dollars(cents)
                } else {
                    format!("{awards} awards")
                }
            };
            let (total, committed, waiting) = if money {
                (
                    p.budget.total_cents,
                    p.budget.committed_cents,
                    p.eligible_unawarded_cents,
                )
            } else {
                (
                    p.budget.max_awards,
                    p.budget.committed_awards,
                    p.eligible_unawarded as i64,
                )
            };
            let width = |v: i64| match total {
                Some(t) if t > 0 => ((v.clamp(0, t) as u64 * u64::from(BAR_W)) / t as u64) as u32,
                _ => 0,
            };
            let committed_w = width(committed);
            let waiting_w = width(waiting).min(BAR_W - committed_w);
            BudgetLine {
                title: p.title.clone(),
                total: total.map_or_else(|| "no limit set".into(), |t| fmt(t, t)),
                committed: fmt(p.budget.committed_cents, p.budget.committed_awards),
                remaining: match (p.budget.remaining_cents, p.budget.remaining_awards) {
                    (Some(c), _) if money => dollars(c),
                    (_, Some(a)) => format!("{a} awards"),
                    _ => "no limit".into(),
                },
                waiting: p.eligible_unawarded.to_string(),
                waiting_cost: if money {
                    dollars(p.eligible_unawarded_cents)
                } else {
                    format!("{} credit hours", p.eligible_unawarded_credit_hours)
                },
                projection: match p.projection.as_str() {
                    "runs_out" => "will run out".into(),
                    "unused" => "money or awards would be left".into(),
                    "fits" => "exactly enough".into(),
                    _ => "no budget set".into(),
                },
                committed_w,
                waiting_w,
                waiting_x: LABEL_W + committed_w,
                limited: total.is_some(),
            }
        })
        .collect()
}

fn burn(a: &AwardsReport) -> Burn {
    // A suppressed month (a school's few awards) leaves the running total unknown from then on.
    let mut cumulative = Some(0i64);
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for r in &a.rows {
        let net = match r.net_cents {
            crate::service::reports::Cents::Value(c) => Some(c),
            crate::service::reports::Cents::Suppressed => None,
        };
        cumulative = cumulative.zip(net).map(|(c, n)| c + n);
        let shown = |v: Option<i64>| v.map_or_else(|| "suppressed".to_string(), dollars);
        rows.push(BurnRow {
            month: r.group.clone(),
            net: shown(net),
            cumulative: shown(cumulative),
        });
        items.push((r.group.clone(), cumulative, shown(cumulative)));
    }
    let most = items
        .iter()
        .filter_map(|(_, c, _)| *c)
        .max()
        .unwrap_or(0)
        .max(0) as u64;
    let bars = bars(
        &items
            .into_iter()
            .map(|(m, c, text)| (m, c.map(|c| c.max(0) as u64), text))
            .collect::<Vec<_>>(),
        most,
    );
    Burn {
        height: 12 + bars.len() as u32 * ROW_H,
        bars,
        rows,
    }
}

/// A policy the batch form offers.
pub struct PolicyOption {
    pub id: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    school_id: String,
    area: String,
    from: String,
    to: String,
    group: String,
    areas: Vec<&'static str>,
    /// A filter's problem: (field, message).
    problem: Option<(&'static str, String)>,
    funnel: Option<Funnel>,
    reach: Option<Reach>,
    budget: Vec<BudgetLine>,
    burn: Option<Burn>,
    area_label: String,
    suppress_below: u64,
    query: String,
    may_award: bool,
    may_batch: bool,
    policies: Vec<PolicyOption>,
    label_w: u32,
    bar_w: u32,
}

fn may_batch(caller: &Caller) -> bool {
    crate::api::routes::find(&actix_web::http::Method::POST, "/v1/batches")
        .is_some_and(|r| r.allows(caller.role))
}

/// `GET /dashboard`.
pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    filters: web::Query<Filters>,
) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let f = filters.into_inner();
    let found = reports(&state, &caller, &f).await?;
    let (student_group, _) = f.group_by();
    let registry = state.service.registry();
    let today = chrono::Utc::now().date_naive();
    let policies = registry
        .all_in_effect(today)
        .filter(|v| v.meta.kind.is_incentive() && caller.may_act_for(&v.meta.sponsor))
        .map(|v| PolicyOption {
            id: v.meta.id.clone(),
            title: v.meta.title.clone(),
        })
        .collect();
    let mut page = DashboardPage {
        chrome: Chrome::of(&req),
        school_id: f.school_id.clone().unwrap_or_default(),
        area: f.area.clone().unwrap_or_default(),
        from: f.from.clone().unwrap_or_default(),
        to: f.to.clone().unwrap_or_default(),
        group: f.group.clone().unwrap_or_else(|| "gender".into()),
        areas: EndorsementArea::ALL.iter().map(|a| a.as_str()).collect(),
        problem: None,
        funnel: None,
        reach: None,
        budget: Vec::new(),
        burn: None,
        area_label: String::new(),
        suppress_below: 0,
        query: f.query(),
        may_award: matches!(
            caller.role,
            crate::service::access::Role::Admin | crate::service::access::Role::Awarder
        ),
        may_batch: may_batch(&caller),
        policies,
        label_w: LABEL_W,
        bar_w: BAR_W,
    };
    match found {
        Ok(r) => {
            page.area_label = r.progression.area.as_str().replace('_', " ");
            page.suppress_below = r.progression.suppress_below;
            page.funnel = Some(funnel(&r.progression));
            page.reach = Some(reach(&r.progression, &r.awards, student_group));
            page.budget = budget_lines(&r.budget);
            page.burn = Some(burn(&r.burn));
        }
        Err(problem) => page.problem = Some(problem),
    }
    html(page)
}

/// `GET /dashboard/{table}`: a table of the dashboard as CSV, for the same filters.
pub async fn dashboard_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    table: web::Path<String>,
    filters: web::Query<Filters>,
) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let f = filters.into_inner();
    // Only the report the table comes from; a filter that does not read is a bad request.
    let bad = |e: ServiceError| -> PageError {
        match filter_problem(e) {
            Ok((_, message)) => PageError::bad_request(message),
            Err(page) => page,
        }
    };
    let (state, caller) = (&state, &caller);
    let body = match table.as_str() {
        "progression.csv" => f.progression(state, caller).await.map_err(bad)?.to_csv()?,
        "budget.csv" => state
            .service
            .budget_report(caller, None)
            .await
            .map_err(bad)?
            .to_csv()?,
        "burn.csv" => f.burn(state, caller).await.map_err(bad)?.to_csv()?,
        "awards.csv" => f.awards(state, caller).await.map_err(bad)?.to_csv()?,
        "reach.csv" => {
            let progression = f.progression(state, caller).await.map_err(bad)?;
            let awards = f.awards(state, caller).await.map_err(bad)?;
            let reach = reach(&progression, &awards, f.group_by().0);
            let header = [
                "group",
                "students",
                "cohort_share",
                "granted",
                "award_share",
            ];
            crate::service::reports::csv_table(
                header.map(String::from).to_vec(),
                reach
                    .rows
                    .into_iter()
                    .map(|row| {
                        vec![
                            row.group,
                            row.students,
                            row.cohort_share,
                            row.granted,
                            row.award_share,
                        ]
                    })
                    .collect(),
            )?
        }
        other => return Err(PageError::not_found(format!("no table {other:?}"))),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", table.as_str()),
        ))
        .body(body))
}

/// The batch form.
#[derive(Debug, Deserialize)]
pub struct BatchForm {
    csrf: String,
    mode: String,
    policy_id: String,
    #[serde(default)]
    school_id: String,
    #[serde(default)]
    as_of: String,
}

/// `POST /batches`: starts a batch from the dashboard and shows its progress page.
pub async fn start_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<BatchForm>,
) -> Result<HttpResponse, PageError> {
    super::verify_csrf(&req, &form.csrf)?;
    let caller = super::caller(&req)?;
    let mode = match form.mode.as_str() {
        "preview" => BatchMode::Preview,
        "award" => BatchMode::Award,
        other => return Err(PageError::bad_request(format!("no batch mode {other:?}"))),
    };
    let as_of = match form.as_of.trim() {
        "" => None,
        d => Some(d.parse::<NaiveDate>().map_err(|_| {
            PageError::bad_request(format!("The date {d:?} is not a date (YYYY-MM-DD)."))
        })?),
    };
    let school = form.school_id.trim();
    let request = BatchRequest {
        mode,
        policy_ids: (!form.policy_id.is_empty()).then(|| vec![form.policy_id.clone()]),
        as_of,
        students: if school.is_empty() {
            StudentSelection::All(crate::service::batches::AllStudents::All)
        } else {
            StudentSelection::School {
                school_id: school.to_string(),
            }
        },
    };
    let view = state.service.create_batch(&caller, request).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/batches/{}", view.batch_id)))
        .finish())
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    chrome: Chrome,
    /// The policies by title (absent: every policy that concerns each student).
    policies: Option<String>,
    /// When it was asked for, to the minute (UTC).
    started: String,
    batch: BatchView,
    percent: u64,
    counts: Vec<(String, i64)>,
    refreshing: bool,
}

#[derive(Debug, Deserialize)]
pub struct BatchQuery {
    /// `off` stops the page refreshing itself.
    #[serde(default)]
    refresh: Option<String>,
}

/// How often a batch's page reloads itself while the batch runs.
const REFRESH_SECONDS: u32 = 2;

/// `GET /batches/{id}`: a batch's progress, reloading itself (a `Refresh` header, no script)
/// until it ends, unless the reader stops it.
pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<BatchQuery>,
) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let batch = state.service.batch(&caller, id.into_inner()).await?;
    let refreshing = !batch.is_finished() && query.refresh.as_deref() != Some("off");
    let percent = if batch.total > 0 {
        (batch.done.max(0) as u64 * 100) / batch.total as u64
    } else {
        100
    };
    let registry = state.service.registry();
    let policies = batch.policy_ids.as_ref().map(|ids| {
        ids.iter()
            .map(|id| {
                registry
                    .in_effect(id, batch.as_of)
                    .map_or_else(|| id.clone(), |v| v.meta.title.clone())
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    let started = super::to_the_minute(&batch.created_at);
    let page = BatchPage {
        chrome: Chrome::of(&req),
        policies,
        started,
        counts: batch.counts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        percent,
        refreshing,
        batch,
    };
    let mut res = html(page)?;
    if refreshing {
        res.headers_mut().insert(
            actix_web::http::header::REFRESH,
            actix_web::http::header::HeaderValue::from(REFRESH_SECONDS),
        );
    }
    Ok(res)
}

/// `GET /batches/{id}/results.csv`.
pub async fn batch_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let caller = super::caller(&req)?;
    let id = id.into_inner();
    state.service.batch(&caller, id.clone()).await?;
    let mut res = crate::api::batches::results_response(state.service.clone(), id, true);
    res.headers_mut().insert(
        actix_web::http::header::CONTENT_DISPOSITION,
        actix_web::http::header::HeaderValue::from_static(
            "attachment; filename=\"batch-results.csv\"",
        ),
    );
    Ok(res)
}
