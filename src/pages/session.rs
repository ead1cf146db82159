//! Signing in and out, and the home page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{html, html_with, verify_csrf, Chrome, PageError, SESSION_COOKIE};
use crate::api::AppState;

/// The cookie that carries the sign-in form's CSRF token (double submit: no session yet).
const SIGN_IN_COOKIE: &str = "eligo_sign_in";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    role: &'static str,
}

/// A cookie the pages set: HttpOnly, SameSite=Strict, whole site; `Secure` over TLS.
fn cookie<'c>(req: &HttpRequest, state: &AppState, name: &'c str, value: String) -> Cookie<'c> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(state.settings.secure_cookies || req.connection_info().scheme() == "https");
    c
}

fn sign_in_page(
    req: &HttpRequest,
    state: &AppState,
    status: actix_web::http::StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let mut res = html_with(
        status,
        SignInPage {
            chrome: Chrome::default(),
            csrf: csrf.clone(),
            error,
        },
    )?;
    res.add_cookie(&cookie(req, state, SIGN_IN_COOKIE, csrf))
        .map_err(|e| PageError::from(crate::service::ServiceError::internal("cookie", e)))?;
    Ok(res)
}

/// `/`: the sign-in form, or for a signed-in person the pages their key may open.
pub async fn home(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::of(&req);
    match &chrome.signed_in {
        None => sign_in_page(&req, &state, actix_web::http::StatusCode::OK, None),
        Some(s) if s.students => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/students"))
            .finish()),
        Some(s) if s.policies => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/policies"))
            .finish()),
        Some(s) => {
            let role = s.role;
            html(HomePage { chrome, role })
        }
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
    csrf: String,
}

/// Opens a session for a valid key and sends the person on.
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_string());
    if expected.as_deref() != Some(form.csrf.as_str()) || form.csrf.is_empty() {
        return sign_in_page(
            &req,
            &state,
            actix_web::http::StatusCode::FORBIDDEN,
            Some("The form expired; please sign in again.".into()),
        );
    }
    let key = form.key.trim();
    let opened = if key.is_empty() {
        None
    } else {
        state.service.sign_in(key).await?
    };
    let Some(opened) = opened else {
        return sign_in_page(
            &req,
            &state,
            actix_web::http::StatusCode::UNAUTHORIZED,
            Some("This key is unknown or revoked. Check it and try again.".into()),
        );
    };
    let mut res = HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .finish();
    let internal = |e| PageError::from(crate::service::ServiceError::internal("cookie", e));
    res.add_cookie(&cookie(&req, &state, SESSION_COOKIE, opened.token))
        .map_err(internal)?;
    res.add_removal_cookie(&cookie(&req, &state, SIGN_IN_COOKIE, String::new()))
        .map_err(internal)?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Ends the session (in the database) and clears the cookie.
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    verify_csrf(&req, &form.csrf)?;
    if let Some(token) = req.cookie(SESSION_COOKIE) {
        state.service.sign_out(token.value()).await?;
    }
    let mut res = HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .finish();
    res.add_removal_cookie(&cookie(&req, &state, SESSION_COOKIE, String::new()))
        .map_err(|e| PageError::from(crate::service::ServiceError::internal("cookie", e)))?;
    Ok(res)
}
