//! Access keys over HTTP (admins only).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::read_json;
use super::error::{ApiError, Problem};
use super::AppState;
use crate::service::access::{KeyRecord, NewKey, Role};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub role: Role,
    /// Required for awarders, refused for the other roles: the sponsor whose policies the key
    /// may act on (1-128 characters).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "[^\\x09-\\x0D\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub sponsor: Option<String>,
    /// 1-128 printable characters, not all blank (default: "<role> key").
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub name: Option<String>,
}
crate::objects_only!(CreateKeyRequest, Serialize);

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyRecord>,
}

/// Create a key. The secret is in this response only; only its hash is stored.
#[utoipa::path(
    post, path = "/v1/keys", tag = "keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, body = NewKey),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateKeyRequest = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let key = state
        .service
        .create_key(body.role, body.sponsor, body.name)
        .await?;
    Ok(HttpResponse::Created().json(key))
}

/// List keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeyList)), security(("bearer" = [])))]
#[tracing::instrument(skip(state))]
pub async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(KeyList {
        keys: state.service.keys().await?,
    }))
}

/// Revoke a key: refused at once from then on.
#[utoipa::path(
    post, path = "/v1/keys/{id}/revoke", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip(state))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.service.revoke_key(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
