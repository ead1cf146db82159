//! Authentication (bearer keys) and authorization by the route table (`routes::ROUTES`).
//! Health, metrics, the spec and the docs are open; every `/v1` route needs a key.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};

use super::error::ApiError;
use super::routes::{self, Access, Kind, Route};
use super::AppState;
use crate::service::access::{Caller, Role};

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

/// What the route table says of a request.
enum Declared {
    /// A row of the table.
    Row(&'static Route),
    /// The spec and its docs, served without a key.
    Documentation,
    /// A path the table declares, with a method it does not serve (the resource answers 405),
    /// or no route at all (404).
    NotServed,
    /// A route that matched but is not in the table: served to no one.
    Undeclared(String),
}

fn declared(req: &ServiceRequest) -> Declared {
    // The pattern the observe middleware matched, or matched here when it did not run.
    let pattern = match req.extensions().get::<super::observe::RoutePattern>() {
        Some(p) => p.0.clone(),
        None => req.match_pattern(),
    };
    let Some(pattern) = pattern else {
        return Declared::NotServed;
    };
    if let Some(row) = routes::find(req.method(), &pattern) {
        Declared::Row(row)
    } else if routes::declares_path(&pattern) {
        Declared::NotServed
    } else if routes::DOCUMENTATION.contains(&pattern.as_str()) {
        Declared::Documentation
    } else {
        Declared::Undeclared(pattern)
    }
}

/// Authenticates and authorizes every request from the route table: open rows pass, other
/// rows need a key whose role the row lists; a matched route missing from the table is refused
/// to every caller.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let row = match declared(&req) {
        Declared::Row(row) if row.kind == Kind::Page => {
            authorize_page(&req, row).await?;
            return next.call(req).await;
        }
        Declared::Row(row) if row.access == Access::Open => return next.call(req).await,
        Declared::Documentation => return next.call(req).await,
        Declared::NotServed if !req.path().starts_with("/v1") => return next.call(req).await,
        Declared::Undeclared(pattern) => {
            return Err(forbidden(format!(
                "{} {pattern} is not declared in the route table, so it is served to no one",
                req.method()
            ))
            .into())
        }
        Declared::Row(row) => Some(row),
        Declared::NotServed => None,
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal("the application state is missing").into());
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
    if let Some(row) = row {
        if !row.allows(caller.role) {
            return Err(forbidden(format!(
                "a {} key may not {} {}",
                caller.role.as_str(),
                row.method,
                row.path
            ))
            .into());
        }
    }
    req.extensions_mut().insert(caller);
    next.call(req).await
}

/// A page row: the session cookie says who is asking; a refusal is a page. An open page still
/// learns who is signed in, if anyone.
async fn authorize_page(req: &ServiceRequest, row: &Route) -> Result<(), Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal("the application state is missing").into());
    };
    let session = match crate::pages::session_token(req) {
        Some(token) => state
            .service
            .session(&token)
            .await
            .map_err(crate::pages::PageError::from)?,
        None => None,
    };
    match (row.access, session) {
        (Access::Roles(_), None) => Err(crate::pages::PageError::unauthorized(
            "You are not signed in, or your session has ended. Sign in with your access key.",
        )
        .into()),
        (Access::Roles(_), Some(s)) if !row.allows(s.caller.role) => {
            Err(crate::pages::PageError::forbidden(format!(
                "A {} key may not open this page ({} {}).",
                s.caller.role.as_str(),
                row.method,
                row.path
            ))
            .into())
        }
        (_, Some(s)) => {
            req.extensions_mut().insert(s);
            Ok(())
        }
        (Access::Open, None) => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use actix_web::{middleware, test, web, App, HttpResponse};

    /// A route registered outside the table is refused to every caller, whatever the key (the
    /// refusal comes before authentication, so no key can open it).
    #[actix_web::test]
    async fn a_route_missing_from_the_table_is_served_to_no_one() {
        let app = test::init_service(
            App::new()
                .wrap(middleware::from_fn(super::authenticate))
                .route("/v1/undeclared", web::get().to(HttpResponse::Ok))
                .route("/internal/debug", web::post().to(HttpResponse::Ok)),
        )
        .await;
        for req in [
            test::TestRequest::get().uri("/v1/undeclared"),
            test::TestRequest::get()
                .uri("/v1/undeclared")
                .insert_header(("authorization", "Bearer eligo_anything")),
            test::TestRequest::post().uri("/internal/debug"),
        ] {
            let res = test::try_call_service(&app, req.to_request()).await;
            let err = match res {
                Ok(res) => panic!("served: {}", res.status()),
                Err(e) => e,
            };
            let res = err.error_response();
            assert_eq!(res.status().as_u16(), 403);
            assert!(
                err.to_string().contains("not declared in the route table"),
                "{err}"
            );
        }
    }
}
