//! Published policies: versions, effective dates, hashes and sources.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::publish::{Coverage, TestSummary};
use crate::policy::registry::{CriterionText, PolicyKind};
use crate::policy::tests::TestSuite;
use crate::policy::whatif::Change;
use crate::policy::Award;
use crate::service::awards::{BudgetLimits, BudgetView};
use crate::service::ledger::csv_cell;
use crate::service::policies::{Publication, PublishedVersion};
use crate::service::simulate::{Simulation, SimulationRequest};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersionView {
    pub version: u32,
    /// SHA-256 of the source, hex.
    pub hash: String,
    pub title: String,
    pub sponsor: String,
    /// `incentive` or `requirement`.
    pub kind: PolicyKind,
    /// What an incentive grants (absent for a requirement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub award: Option<Award>,
    #[schema(value_type = String, format = Date)]
    pub effective_from: NaiveDate,
    /// Exclusive end of the effective period.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<NaiveDate>,
    pub once_per_student: bool,
    /// The criteria the version declares, by code: what each checks and what to do when it is
    /// not met (empty when the script words its criteria inline).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub criteria: BTreeMap<String, CriterionText>,
    /// Whether this version is in effect today (UTC).
    pub in_effect: bool,
    /// When this version was first recorded (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// The script, on the single-policy view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub versions: Vec<PolicyVersionView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyList {
    pub policies: Vec<PolicyView>,
}

fn view(id: String, versions: Vec<PublishedVersion>, with_source: bool) -> PolicyView {
    let today = chrono::Utc::now().date_naive();
    PolicyView {
        id,
        versions: versions
            .into_iter()
            .map(|p| {
                let m = &p.version.meta;
                PolicyVersionView {
                    version: m.version,
                    hash: p.version.hash.clone(),
                    title: m.title.clone(),
                    sponsor: m.sponsor.clone(),
                    kind: m.kind,
                    award: m.award.clone(),
                    effective_from: m.effective_from,
                    effective_to: m.effective_to,
                    once_per_student: m.once_per_student,
                    criteria: m.criteria.clone(),
                    in_effect: m.in_effect(today),
                    published_at: p.published_at,
                    source: with_source.then(|| p.version.source.to_string()),
                }
            })
            .collect(),
    }
}

/// Every policy and its versions.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", responses((status = 200, body = PolicyList)))]
#[tracing::instrument(skip(state))]
pub async fn list_policies(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.service.policies().await?;
    Ok(HttpResponse::Ok().json(PolicyList {
        policies: all.into_iter().map(|(id, v)| view(id, v, false)).collect(),
    }))
}

/// One policy: every version with its source and hash.
#[utoipa::path(
    get, path = "/v1/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    responses(
        (status = 200, body = PolicyView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_policy(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let versions = state.service.policy(&id).await?;
    Ok(HttpResponse::Ok().json(view(id, versions, true)))
}

/// Set a program's budget: `total_cents` for scholarships, `max_awards` for waivers.
///
/// A rule that depends on the stored policy: a tuition waiver has no money amount, so
/// `total_cents` is refused for one (`422`; use `max_awards`).
#[utoipa::path(
    put, path = "/v1/policies/{id}/budget", tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    request_body = BudgetLimits,
    responses(
        (status = 200, body = BudgetView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn put_budget(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let caller = super::access::caller(&req)?;
    super::access::require_sponsor(&caller, &id, state.service.sponsor_of(&id))?;
    let limits: BudgetLimits =
        super::body::read_json(&req, payload, state.settings.max_body_bytes).await?;
    Ok(HttpResponse::Ok().json(state.service.set_budget(id, limits).await?))
}

/// A program's budget: total, committed and remaining.
#[utoipa::path(
    get, path = "/v1/policies/{id}/budget", tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    responses(
        (status = 200, body = BudgetView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn get_budget(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let caller = super::access::caller(&req)?;
    super::access::require_sponsor(&caller, &id, state.service.sponsor_of(&id))?;
    Ok(HttpResponse::Ok().json(state.service.budget(id).await?))
}

/// A version to publish: its source and its cases (the `rules/<id>.tests.json` document).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct PublishRequest {
    /// The rhai script.
    #[schema(max_length = 16384)]
    pub source: String,
    pub tests: TestSuite,
}
crate::objects_only!(PublishRequest);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishQuery {
    /// Run every check and store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What publishing found.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedView {
    pub id: String,
    pub version: u32,
    /// SHA-256 of the source, hex.
    pub hash: String,
    pub title: String,
    pub sponsor: String,
    #[schema(value_type = String, format = Date)]
    pub effective_from: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub effective_to: Option<NaiveDate>,
    pub tests: TestSummary,
    pub coverage: Coverage,
    /// True on `?dry_run=true`: nothing was stored.
    pub dry_run: bool,
    /// Whether this request recorded the version (false on a dry run, and when exactly this
    /// version was published already).
    pub recorded: bool,
}

impl From<Publication> for PublishedView {
    fn from(p: Publication) -> Self {
        let m = p.version.meta;
        Self {
            id: m.id,
            version: m.version,
            hash: p.version.hash,
            title: m.title,
            sponsor: m.sponsor,
            effective_from: m.effective_from,
            effective_to: m.effective_to,
            tests: p.summary,
            coverage: p.coverage,
            dry_run: p.dry_run,
            recorded: p.recorded,
        }
    }
}

/// Publish a policy version: compile it (engine limits on), validate its metadata, check it
/// against the published versions, run its cases and the coverage gate, then record it.
///
/// Every instance serves it within a second. An author may publish only its own sponsor's
/// policies. `201` when recorded; `200` on a dry run or when exactly this version is already
/// published.
#[utoipa::path(
    post, path = "/v1/policies", tag = "policies",
    params(PublishQuery),
    request_body = PublishRequest,
    responses(
        (status = 201, body = PublishedView, description = "Recorded"),
        (status = 200, body = PublishedView, description = "Dry run, or already published"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "This id and version are published with another source"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "Compile error (with line and column), bad metadata (naming the key), an overlapping period, failing cases (each with expected and actual) or cases that do not cover every criterion"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn publish_policy(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    query: web::Query<PublishQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let body: PublishRequest =
        super::body::read_json(&req, payload, state.settings.max_body_bytes).await?;
    let publication = state
        .service
        .publish(&caller, body.source, body.tests, query.dry_run)
        .await?;
    let mut res = if publication.recorded {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(PublishedView::from(publication)))
}

/// What-if: a candidate (a `source` not yet published, or a published `version`) against the
/// version in effect (or `against`) on every stored student, optionally of one school.
///
/// Totals before and after, gained, lost, errors, cost beside the remaining budget, per
/// criterion how many it newly fails or passes, and the same counts by school, endorsement
/// area, gender and race/ethnicity, with cells under the suppression threshold (10 by default)
/// reported as `suppressed`. With `Accept: application/x-ndjson` or `text/csv` the answer is
/// instead the list of students who gain or lose, for keys that may read students (admins; not
/// authors: 403). Writes nothing.
#[utoipa::path(
    post, path = "/v1/policies/{id}/simulate", tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    request_body = SimulationRequest,
    responses(
        (status = 200, description = "The summary (JSON), or the students who gain or lose (NDJSON or CSV)",
            content((Simulation = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn simulate_policy(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let list = super::body::accepts(&req, "text/csv") || super::body::accepts(&req, "ndjson");
    // The list names students: only for keys that may read students (an author may not).
    let reads_students = super::routes::find(&actix_web::http::Method::GET, "/v1/students")
        .is_some_and(|r| r.allows(caller.role));
    if list && !reads_students {
        return Err(super::access::forbidden(format!(
            "the list of students who gain or lose names students, and a {} key may not read \
             students; ask for the summary (application/json)",
            caller.role.as_str()
        )));
    }
    let request: SimulationRequest =
        super::body::read_json(&req, payload, state.settings.max_body_bytes).await?;
    let (simulation, changes) = state
        .service
        .simulate(&caller, id.into_inner(), request)
        .await?;
    if super::body::accepts(&req, "text/csv") {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(changes_csv(&changes)?));
    }
    if super::body::accepts(&req, "ndjson") {
        let mut body = Vec::with_capacity(changes.len() * 96);
        for c in &changes {
            serde_json::to_writer(&mut body, c)
                .map_err(|e| ApiError::internal(&format!("encoding changes: {e}")))?;
            body.push(b'\n');
        }
        return Ok(HttpResponse::Ok()
            .content_type("application/x-ndjson")
            .body(body));
    }
    Ok(HttpResponse::Ok().json(simulation))
}

fn changes_csv(changes: &[Change]) -> Result<Vec<u8>, ApiError> {
    let fail = |e: csv::Error| ApiError::internal(&format!("encoding changes: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["student_id", "school_id", "change", "before", "after"])
        .map_err(fail)?;
    for c in changes {
        w.write_record([
            csv_cell(&c.student_id),
            csv_cell(c.school_id.as_deref().unwrap_or("")),
            c.change.to_string(),
            c.before.as_str().to_string(),
            c.after.as_str().to_string(),
        ])
        .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::internal(&format!("encoding changes: {e}")))
}
