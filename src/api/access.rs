//! Authentication (bearer keys) and the route × role table. Health, metrics, the spec and the
//! docs are open; every `/v1` route needs a key.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};

use super::error::ApiError;
use super::AppState;
use crate::service::access::{Caller, Role};

use Role::{Admin, Auditor, Awarder, Counselor};

const ALL: &[Role] = &[Admin, Awarder, Counselor, Auditor];

/// Which roles may call a route (method and path pattern). Awarders are further limited to
/// their own sponsor's policies by the handlers. `None`: not a route of the API.
pub fn allowed_roles(method: &Method, pattern: &str) -> Option<&'static [Role]> {
    let m = method.as_str();
    Some(match (m, pattern) {
        ("GET", "/v1/students") | ("POST", "/v1/students/import") => &[Admin, Counselor],
        ("GET" | "PUT" | "DELETE", "/v1/students/{id}") => &[Admin, Counselor],
        ("POST", "/v1/evaluations") => &[Admin, Counselor],
        ("GET", "/v1/policies") | ("GET", "/v1/policies/{id}") => ALL,
        ("GET" | "PUT", "/v1/policies/{id}/budget") => &[Admin, Awarder],
        ("POST", "/v1/awards") | ("POST", "/v1/awards/{id}/revoke") => &[Admin, Awarder],
        ("GET", "/v1/ledger") | ("POST", "/v1/ledger/{seq}/replay") => &[Admin, Auditor, Awarder],
        ("GET", "/v1/ledger/verify") => &[Admin, Auditor],
        ("GET" | "POST", "/v1/keys") | ("POST", "/v1/keys/{id}/revoke") => &[Admin],
        _ => return None,
    })
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
}

pub fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

fn bearer(req: &ServiceRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// Refuses a caller whose role may not call this route.
fn check_role(
    req: &ServiceRequest,
    caller: &Caller,
    pattern: Option<&str>,
) -> Result<(), ApiError> {
    let Some(pattern) = pattern else {
        return Ok(());
    };
    match allowed_roles(req.method(), pattern) {
        Some(roles) if !roles.contains(&caller.role) => Err(forbidden(format!(
            "a {} key may not {} {pattern}",
            caller.role.as_str(),
            req.method()
        ))),
        _ => Ok(()),
    }
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !req.path().starts_with("/v1/") && req.path() != "/v1" {
        return next.call(req).await;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::from(crate::service::ServiceError::Internal(
            "no app state".into(),
        ))
        .into());
    };
    let Some(secret) = bearer(&req) else {
        let e = unauthorized("an Authorization: Bearer <key> header is required");
        return Err(e.into());
    };
    let caller = state
        .service
        .authenticate(secret)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| unauthorized("the key is unknown or revoked"))?;
    // The pattern the observe middleware matched, or matched here when it did not run.
    let checked = match req.extensions().get::<super::observe::RoutePattern>() {
        Some(p) => check_role(&req, &caller, p.0.as_deref()),
        None => check_role(&req, &caller, req.match_pattern().as_deref()),
    };
    checked?;
    req.extensions_mut().insert(caller);
    next.call(req).await
}

/// The caller of a `/v1` request (set by `authenticate`).
pub fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    req.extensions()
        .get::<std::sync::Arc<Caller>>()
        .map(|c| Caller::clone(c))
        .ok_or_else(|| unauthorized("no authenticated key"))
}

/// Refuses an awarder acting on another sponsor's policy.
pub fn require_sponsor(
    caller: &Caller,
    policy_id: &str,
    sponsor: Option<String>,
) -> Result<(), ApiError> {
    let Some(sponsor) = sponsor else {
        return Ok(()); // unknown policy: the handler answers 404
    };
    if caller.may_act_for(&sponsor) || caller.role == Role::Auditor {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this key may not act on {policy_id}: its sponsor is {sponsor}, the key's is {}",
            caller.sponsor.as_deref().unwrap_or("none")
        )))
    }
}
