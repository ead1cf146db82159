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
    /// Required for awarders: the sponsor whose policies the key may act on.
    pub sponsor: Option<String>,
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
