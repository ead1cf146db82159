//! Published policies: versions, effective dates, hashes and sources.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::registry::CriterionText;
use crate::policy::Award;
use crate::service::awards::{BudgetLimits, BudgetView};
use crate::service::policies::PublishedVersion;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersionView {
    pub version: u32,
    /// SHA-256 of the source, hex.
    pub hash: String,
    pub title: String,
    pub sponsor: String,
    pub award: Award,
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
