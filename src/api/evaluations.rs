//! Previews: evaluate one student against the policies, writing nothing.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::{parse_json, read_json_body};
use super::error::{ApiError, Problem};
use super::AppState;
use crate::policy::next_steps::NextStep;
use crate::policy::{Decision, Student};
use crate::service::preview::Subject;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
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
crate::objects_only!(EvaluationRequest, Serialize);

/// The request with the record already typed (not yet validated).
#[derive(Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
struct TypedRequest {
    student: Option<Box<Student>>,
    student_id: Option<String>,
    policies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::policy::student::optional_date")]
    as_of: Option<NaiveDate>,
}
crate::objects_only!(TypedRequest);

/// One pass over the body for a well-formed request. A malformed one is parsed again the slow
/// way, record apart, only to say precisely what is wrong (the field, line and column).
fn parse_request(bytes: &[u8]) -> Result<TypedRequest, ApiError> {
    // UTF-8 checked once for the whole body, not string by string.
    if let Ok(Ok(typed)) = std::str::from_utf8(bytes).map(serde_json::from_str::<TypedRequest>) {
        return Ok(typed);
    }
    let body: EvaluationRequest = parse_json(bytes)?;
    let student = match body.student {
        Some(record) => Some(Box::new(Student::from_json(record.get()).map_err(|e| {
            ApiError::from(crate::service::ServiceError::InvalidRecord(
                e.nested("student"),
            ))
        })?)),
        None => None,
    };
    Ok(TypedRequest {
        student,
        student_id: body.student_id,
        policies: body.policies,
        as_of: body.as_of,
    })
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EvaluationResponse {
    pub student_id: String,
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "crate::policy::engine::serialize_date")]
    pub as_of: NaiveDate,
    /// One decision per incentive in effect on `as_of`.
    pub decisions: Vec<Decision>,
    /// One decision per requirement policy in effect (an endorsement's requirements): the
    /// student's progress, never an incentive.
    pub requirements: Vec<Decision>,
    /// What the student could do next: each step with every incentive it brings closer and
    /// those it would complete on its own (and what they are worth), most valuable first.
    pub next_steps: Vec<NextStep>,
}

/// Preview every incentive a student qualifies for, and what is missing. Writes nothing.
///
/// Rules that depend on stored data: `policies` must name published policies (`422`
/// `unknown-policy` otherwise), and a `student_id` must name a stored student (`404`).
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
    let bytes = read_json_body(&req, payload, state.settings.max_body_bytes).await?;
    let body = parse_request(&bytes)?;
    let subject = match (body.student, body.student_id) {
        (Some(record), None) => {
            record.validate().map_err(|e| {
                ApiError::from(crate::service::ServiceError::InvalidRecord(
                    e.nested("student"),
                ))
            })?;
            Subject::Inline(record)
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
    let response = EvaluationResponse {
        student_id: result.student_id,
        as_of: result.as_of,
        decisions: result.decisions,
        requirements: result.requirements,
        next_steps: result.next_steps,
    };
    // Sized for the response up front (about 1 KB a decision): growing a Vec from empty, as
    // `HttpResponse::json` does, measured as a tenth of the serialization's cost.
    let mut body =
        Vec::with_capacity(1024 * (1 + response.decisions.len() + response.requirements.len()));
    serde_json::to_writer(&mut body, &response)
        .map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}
