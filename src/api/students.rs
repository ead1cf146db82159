//! Student record handlers.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{media_type, read_body, read_json};
use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::Student;
use crate::service::import::{ImportFormat, RejectedRow};
use crate::service::students::StoredStudent;

/// A stored record with its bookkeeping times.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StudentResponse {
    pub student: Student,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredStudent> for StudentResponse {
    fn from(s: StoredStudent) -> Self {
        Self {
            student: s.student,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StudentPage {
    pub items: Vec<StudentResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only students of this school.
    pub school_id: Option<String>,
    /// Only students whose id starts with this.
    pub id_prefix: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    /// Rows stored (new or replacing an earlier record).
    pub imported: usize,
    /// Of those, students not stored before.
    pub created: usize,
    /// Rows refused, with their line and reason; the other rows were stored.
    pub rejected: Vec<RejectedRow>,
}

/// Store (create or replace) a student record.
///
/// A rule between the body and the path: a `student_id` given in the body must equal the
/// path's id (`422` otherwise).
#[utoipa::path(
    put, path = "/v1/students/{id}", tag = "students",
    params(("id" = String, Path, description = "Student id (1-64 of A-Za-z0-9._-)", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body(content = Student, description = "The record; `student_id` may be omitted or must match the path"),
    responses(
        (status = 201, description = "Created", body = StudentResponse),
        (status = 200, description = "Replaced", body = StudentResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid record", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn put_student(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: serde_json::Value = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let (stored, created) = state.service.put_student(id.into_inner(), body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(StudentResponse::from(stored)))
}

/// Read a stored student record.
#[utoipa::path(
    get, path = "/v1/students/{id}", tag = "students",
    params(("id" = String, Path, description = "Student id")),
    responses(
        (status = 200, body = StudentResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_student(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stored = state.service.get_student(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(StudentResponse::from(stored)))
}

/// Delete a stored student record.
#[utoipa::path(
    delete, path = "/v1/students/{id}", tag = "students",
    params(("id" = String, Path, description = "Student id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn delete_student(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.service.delete_student(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List stored students in id order, a page at a time.
#[utoipa::path(
    get, path = "/v1/students", tag = "students",
    params(ListParams),
    responses(
        (status = 200, body = StudentPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_students(
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let page = state
        .service
        .list_students(p.cursor, p.school_id, p.id_prefix, p.limit)
        .await?;
    Ok(HttpResponse::Ok().json(StudentPage {
        items: page.items.into_iter().map(StudentResponse::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Import many records: a JSON array (`application/json`), NDJSON (`application/x-ndjson`)
/// or CSV (`text/csv`, columns in the README). Valid rows are stored in one transaction;
/// each refused row is reported with its line and reason.
///
/// A CSV body needs a header row of known columns, `student_id` among them (`422` otherwise):
/// a rule about the text that OpenAPI cannot state.
#[utoipa::path(
    post, path = "/v1/students/import", tag = "students",
    request_body(description = "JSON array, NDJSON (one record a line) or CSV (header row; columns in the README)",
        content((Vec<Student> = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
    responses(
        (status = 200, body = ImportResponse),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn import_students(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let format = match media_type(&req).as_deref() {
        Some("application/json") => ImportFormat::JsonArray,
        Some("application/x-ndjson" | "application/jsonl" | "application/ndjson") => {
            ImportFormat::Ndjson
        }
        Some("text/csv") => ImportFormat::Csv,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "import takes application/json, application/x-ndjson or text/csv, got {}",
                other.unwrap_or("no Content-Type")
            )))
        }
    };
    let body = read_body(&req, payload, state.settings.max_import_bytes).await?;
    let report = state.service.import_students(format, body).await?;
    Ok(HttpResponse::Ok().json(ImportResponse {
        imported: report.imported,
        created: report.created,
        rejected: report.rejected,
    }))
}
