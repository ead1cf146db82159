//! Previews: evaluate one student against the policies, writing nothing.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::read_json;
use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::{Decision, Student};
use crate::service::preview::Subject;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// A record to evaluate inline (validated, not stored). Give this or `student_id`.
    #[schema(value_type = Option<Student>)]
    pub student: Option<Box<serde_json::value::RawValue>>,
    /// A stored record to evaluate. Give this or `student`.
    pub student_id: Option<String>,
    /// Only these policies (default: every policy in effect on `as_of`).
    pub policies: Option<Vec<String>>,
    /// Evaluation date, YYYY-MM-DD (default: today, UTC).
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EvaluationResponse {
    pub student_id: String,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// One decision per policy in effect on `as_of`.
    pub decisions: Vec<Decision>,
}

/// Preview every incentive a student qualifies for, and what is missing. Writes nothing.
#[utoipa::path(
    post, path = "/v1/evaluations", tag = "evaluations",
    request_body = EvaluationRequest,
    responses(
        (status = 200, body = EvaluationResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Stored student not found", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid record, unknown policy or bad date", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn create_evaluation(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: EvaluationRequest = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let subject = match (body.student, body.student_id) {
        (Some(record), None) => {
            Subject::Inline(Box::new(Student::from_json(record.get()).map_err(|e| {
                ApiError::from(crate::service::ServiceError::InvalidRecord(
                    e.nested("student"),
                ))
            })?))
        }
        (None, Some(id)) => Subject::Stored(id),
        _ => {
            return Err(ApiError::validation(
                "student",
                "give exactly one of student (an inline record) or student_id (a stored one)",
            ))
        }
    };
    let as_of = body
        .as_of
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let result = state.service.preview(subject, body.policies, as_of).await?;
    state.metrics.observe_decisions(&result.decisions);
    Ok(HttpResponse::Ok().json(EvaluationResponse {
        student_id: result.student_id,
        as_of: result.as_of,
        decisions: result.decisions,
    }))
}
