//! Pages for people who are not API clients: server-rendered HTML (askama templates checked at
//! compile time), no JavaScript. Handlers call the same service functions as the API; their
//! routes are rows of the route table (`api::routes`), which also says who may open each.

pub mod dashboard;
pub mod policies;
pub mod session;
pub mod students;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::service::access::Caller;
use crate::service::sessions::Session;
use crate::service::ServiceError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "eligo_session";

/// The stylesheet, built into the binary.
const STYLESHEET: &str = include_str!("../../assets/eligo.css");

/// What every page shows around its content: who is signed in, and the CSRF token its forms
/// carry.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub signed_in: Option<SignedIn>,
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub role: &'static str,
    pub csrf: String,
    /// Whether the counselor pages are the caller's (the nav links them).
    pub students: bool,
    /// Whether the policy pages are the caller's.
    pub policies: bool,
    /// Whether the dashboard is the caller's.
    pub dashboard: bool,
}

impl Chrome {
    /// The chrome for the request's session (none when signed out).
    pub fn of(req: &HttpRequest) -> Self {
        let signed_in = req.extensions().get::<Session>().map(|s| SignedIn {
            role: s.caller.role.as_str(),
            csrf: s.csrf_token.clone(),
            students: crate::api::routes::find(&actix_web::http::Method::GET, "/students")
                .is_some_and(|r| r.allows(s.caller.role)),
            policies: crate::api::routes::find(&actix_web::http::Method::GET, "/policies")
                .is_some_and(|r| r.allows(s.caller.role)),
            dashboard: crate::api::routes::find(&actix_web::http::Method::GET, "/dashboard")
                .is_some_and(|r| r.allows(s.caller.role)),
        });
        Self { signed_in }
    }

    /// The CSRF token the page's forms carry (empty when signed out).
    pub fn csrf(&self) -> &str {
        self.signed_in.as_ref().map_or("", |s| s.csrf.as_str())
    }
}

/// A page that could not be served: a status and a sentence that says why, as a page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
    sign_in: bool,
}

impl PageError {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            title: "Please sign in",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            title: "Not for this key",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "Something in the form is not right",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.title,
            self.message
        )
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => Self::not_found(e.to_string()),
            ServiceError::InvalidRecord(_) | ServiceError::Invalid { .. } => {
                Self::bad_request(e.to_string())
            }
            // The same mapping (and logging) as the API's, worded for a person.
            other => {
                let api = crate::api::error::ApiError::from(other);
                Self {
                    status: api.status,
                    title: "Something went wrong",
                    message: api.detail,
                }
            }
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::from(ServiceError::internal("rendering a page", e))
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let page = ErrorPage {
            chrome: Chrome::default(),
            title: self.title,
            message: &self.message,
            sign_in: self.status == StatusCode::UNAUTHORIZED,
        };
        let mut res = match page.render() {
            Ok(body) => HttpResponse::build(self.status)
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(self.status)
                .content_type("text/plain; charset=utf-8")
                .body(self.message.clone()),
        };
        add_security_headers(res.headers_mut());
        res
    }
}

/// A stored time (RFC 3339, UTC) as pages show it: to the minute, `2026-12-07 12:56 UTC` (the
/// seconds' fractions only crowd a page).
pub fn to_the_minute(t: &str) -> String {
    format!("{} UTC", t.get(..16).unwrap_or(t).replace('T', " "))
}

/// A rendered page with status 200.
pub fn html(page: impl Template) -> Result<HttpResponse, PageError> {
    html_with(StatusCode::OK, page)
}

pub fn html_with(status: StatusCode, page: impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// The signed-in caller (set by the access check for every page that needs a session).
pub fn caller(req: &HttpRequest) -> Result<Caller, PageError> {
    req.extensions()
        .get::<Session>()
        .map(|s| s.caller.clone())
        .ok_or_else(|| PageError::unauthorized("You are not signed in."))
}

/// Refuses a form whose CSRF token is not the session's. Compared in constant time.
pub fn verify_csrf(req: &HttpRequest, sent: &str) -> Result<(), PageError> {
    let ext = req.extensions();
    let expected = ext
        .get::<Session>()
        .map(|s| s.csrf_token.as_bytes())
        .ok_or_else(|| PageError::unauthorized("You are not signed in."))?;
    let same = expected.len() == sent.len()
        && expected
            .iter()
            .zip(sent.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(PageError::forbidden(
            "This form has expired or did not come from this site; reload the page and try again.",
        ))
    }
}

/// The session token the request carries, if any.
pub fn session_token(req: &ServiceRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string())
}

/// Headers every page carries: no inline script or style, no framing, no cross-site referrer.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Adds the pages' security headers to the responses of page routes (the route table says
/// which); page errors add them themselves.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The pattern the observe middleware matched (matching again costs a regex per request).
    let pattern = match req.extensions().get::<crate::api::observe::RoutePattern>() {
        Some(p) => p.0.clone(),
        None => req.match_pattern(),
    };
    let page = pattern.is_some_and(|p| {
        crate::api::routes::ROUTES
            .iter()
            .any(|r| r.path == p && r.kind == crate::api::routes::Kind::Page)
    });
    // The request must not be cloned before the router is done with it; a refusal raised
    // before the handler is a `PageError`, whose own response carries the headers.
    let mut res = next.call(req).await?;
    if page {
        add_security_headers(res.headers_mut());
    }
    Ok(res)
}

fn add_security_headers(h: &mut header::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Static files of the pages (the stylesheet), built into the binary.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, PageError> {
    match file.as_str() {
        "eligo.css" => Ok(HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(STYLESHEET)),
        other => Err(PageError::not_found(format!("no asset {other:?}"))),
    }
}
