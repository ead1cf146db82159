//! Award and revocation handlers.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::read_json;
use super::error::{ApiError, Problem};
use super::observe::RequestId;
use super::AppState;
use crate::service::awards::{Actor, AwardRequest, AwardResponse, Revocation};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Who is acting: the caller's key id and the request id, for the ledger.
pub fn actor(req: &HttpRequest) -> Actor {
    Actor {
        key_id: req
            .extensions()
            .get::<std::sync::Arc<crate::service::access::Caller>>()
            .map_or_else(|| "anonymous".to_string(), |k| k.key_id.clone()),
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map_or_else(String::new, |r| r.0.clone()),
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::bad_request("an Idempotency-Key header is required").with_field("Idempotency-Key")
    })?;
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1-255 visible ASCII characters")
                .with_field("Idempotency-Key")
        })?;
    Ok(key.to_string())
}

/// Decide and record an award: evaluates the stored student, then, in one transaction, checks
/// once-per-student and the budget and appends the decision to the ledger. `201` for a new
/// decision (granted or denied); the same `Idempotency-Key` with the same body returns the
/// original response; with a different body, `422`.
///
/// Rules that depend on stored data: the student and the policy must exist (`404`), and a
/// version of the policy must be in effect on `as_of` (`422` otherwise). An awarder key acts
/// only on its own sponsor's policies (`403`).
#[utoipa::path(
    post, path = "/v1/awards", tag = "awards",
    params(("Idempotency-Key" = String, Header, description = "Unique per request (1-255 visible ASCII); kept 7 days",
        min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7E]{1,255}$")),
    request_body = AwardRequest,
    responses(
        (status = 201, description = "A new decision, granted or denied", body = AwardResponse),
        (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown student or policy", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, no version in effect, or the key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn create_award(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body: AwardRequest = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let caller = super::access::caller(&req)?;
    super::access::require_sponsor(
        &caller,
        &body.policy_id,
        state.service.sponsor_of(&body.policy_id),
    )?;
    let receipt = state.service.award(body, key, actor(&req)).await?;
    let r = &receipt.response;
    // A replay repeats a decision already counted.
    if !receipt.replayed {
        state.metrics.observe_award(&r.policy_id, &r.decision);
    }
    Ok(HttpResponse::Created().json(r))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why the award is revoked (recorded in the ledger): 1-1000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "[^\\x09-\\x0D\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub reason: String,
}
crate::objects_only!(RevokeRequest, Serialize);

/// Revoke an award: appends a revocation entry, frees the budget, and lets the student be
/// awarded again. Nothing is updated in place.
#[utoipa::path(
    post, path = "/v1/awards/{id}/revoke", tag = "awards",
    params(("id" = String, Path, description = "Award id")),
    request_body = RevokeRequest,
    responses(
        (status = 201, body = Revocation),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn revoke_award(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: RevokeRequest = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let award_id = id.into_inner();
    let caller = super::access::caller(&req)?;
    if let Some(policy) = state.service.award_policy(award_id.clone()).await? {
        super::access::require_sponsor(&caller, &policy, state.service.sponsor_of(&policy))?;
    }
    let revocation = state
        .service
        .revoke(award_id, body.reason, actor(&req))
        .await?;
    Ok(HttpResponse::Created().json(revocation))
}
