//! Reports over HTTP: awards by group, progression along the pathway, budgets. JSON, or CSV
//! with `Accept: text/csv`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::student::EndorsementArea;
use crate::service::reports::{
    AwardsGroupBy, AwardsReport, BudgetReport, Period, ProgressionQuery, ProgressionReport,
    StudentGroupBy,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AwardsParams {
    /// `policy` (default), `school`, `area`, `gender`, `race_ethnicity` or `month`.
    pub group_by: Option<AwardsGroupBy>,
    /// Only the decisions about students of this school (as the record said then).
    pub school_id: Option<String>,
    /// Only the decisions about students with this endorsement area on record (then).
    pub area: Option<EndorsementArea>,
    /// Decisions recorded on or after this date (UTC), YYYY-MM-DD.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    /// Decisions recorded on or before this date (UTC), YYYY-MM-DD; before `from`: an empty
    /// period.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProgressionParams {
    /// Only the students of this school.
    pub school_id: Option<String>,
    /// The endorsement area (default `manufacturing_engineering_technology_trades`).
    pub area: Option<EndorsementArea>,
    /// Evaluation date (default: today, UTC).
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    /// Break the counts down by `school`, `gender` or `race_ethnicity`.
    pub group_by: Option<StudentGroupBy>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BudgetParams {
    /// Evaluation date for who is eligible (default: today, UTC).
    #[param(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
}

fn csv(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(body)
}

/// Award decisions by group: granted, denied (by reason), revoked, net money and credit hours.
/// Groups of students (school, area, gender, race/ethnicity) are those of the record as it was
/// decided on; a group smaller than the suppression threshold, and any count under it, is
/// `suppressed`. Admins and auditors see every program; an awarder its own sponsor's.
#[utoipa::path(
    get, path = "/v1/reports/awards", tag = "reports",
    params(AwardsParams),
    responses(
        (status = 200, description = "The report (JSON), or its table as CSV with `Accept: text/csv`",
            content((AwardsReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn awards_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<AwardsParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let p = params.into_inner();
    let report = state
        .service
        .awards_report(
            &caller,
            p.group_by.unwrap_or_default(),
            Period {
                from: p.from,
                to: p.to,
            },
            p.school_id,
            p.area.map(|a| a.as_str().to_string()),
        )
        .await?;
    if super::body::accepts(&req, "text/csv") {
        return Ok(csv(report.to_csv()?));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// How many students on an endorsement pathway reach each step, in order: each criterion of the
/// area's requirement policy (early-college credit, the work-based-learning requirements, ...),
/// the endorsement earned, eligible for an incentive, awarded, enrolled in college or offered a
/// job. `reached` counts each step alone, `through` with every step before it. Small groups are
/// suppressed. For awarders, "eligible" and "awarded" count their own sponsor's programs.
#[utoipa::path(
    get, path = "/v1/reports/progression", tag = "reports",
    params(ProgressionParams),
    responses(
        (status = 200, description = "The report (JSON), or its table as CSV with `Accept: text/csv`",
            content((ProgressionReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn progression_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ProgressionParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let p = params.into_inner();
    let report = state
        .service
        .progression_report(
            &caller,
            ProgressionQuery {
                school_id: p.school_id,
                area: p.area.map(|a| a.as_str().to_string()),
                as_of: p.as_of,
                group_by: p.group_by,
            },
        )
        .await?;
    if super::body::accepts(&req, "text/csv") {
        return Ok(csv(report.to_csv()?));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// Per program: the budget, committed and remaining, and what awarding every student eligible
/// today who has no award yet would cost: `runs_out` when it is more than remains, `unused`
/// when money or awards would be left.
#[utoipa::path(
    get, path = "/v1/reports/budget", tag = "reports",
    params(BudgetParams),
    responses(
        (status = 200, description = "The report (JSON), or its table as CSV with `Accept: text/csv`",
            content((BudgetReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn budget_report(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<BudgetParams>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let report = state
        .service
        .budget_report(&caller, params.into_inner().as_of)
        .await?;
    if super::body::accepts(&req, "text/csv") {
        return Ok(csv(report.to_csv()?));
    }
    Ok(HttpResponse::Ok().json(report))
}
