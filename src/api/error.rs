//! The one place that maps errors to HTTP: RFC 9457 problem details (application/problem+json).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::policy::publish::{Coverage, Refusal, TestSummary};
use crate::policy::tests::CaseResult;
use crate::policy::PolicyError;
use crate::service::ServiceError;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem (`urn:eligo:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, stable summary of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What went wrong this time, naming the field when one is to blame.
    pub detail: String,
    /// The offending field's path, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Line and column of a JSON syntax error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// On a refused policy version: how its cases came out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// On a refused policy version: each failing case, with what it expected and what it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<CaseResult>>,
    /// On a refused policy version: what its cases exercised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Methods the resource allows, for 405.
    pub allow: Option<String>,
    /// Test results of a refused policy version.
    pub checks: Option<Box<Checks>>,
}

/// The test results a refused policy version carries in its problem document.
#[derive(Debug, Clone)]
pub struct Checks {
    pub tests: TestSummary,
    pub failures: Option<Vec<CaseResult>>,
    pub coverage: Coverage,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            field: None,
            line: None,
            column: None,
            allow: None,
            checks: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty()).then_some(f);
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn malformed_json(
        detail: impl Into<String>,
        line: Option<usize>,
        column: Option<usize>,
    ) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        );
        e.line = line;
        e.column = column;
        e
    }

    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
            detail,
        )
        .with_field(field)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn method_not_allowed(allow: &str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("this resource allows {allow}"),
        );
        e.allow = Some(allow.to_string());
        e
    }

    /// A 500 `internal` problem. The cause goes to the log with the request id (a field of the
    /// line itself: the line may sit in a handler's span, below the request's); the caller gets
    /// the request id to quote, never the cause.
    pub fn internal(cause: &str) -> Self {
        let id = super::observe::current_request_id();
        tracing::error!(
            request_id = id.as_deref().unwrap_or("none"),
            error = %cause,
            "internal error"
        );
        let detail = match id {
            Some(id) => {
                format!("an internal error occurred; it has been logged with request id {id}")
            }
            None => "an internal error occurred; it has been logged".to_string(),
        };
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:eligo:problem:{}", self.slug),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            line: self.line,
            column: self.column,
            tests: self.checks.as_ref().map(|c| c.tests.clone()),
            failures: self.checks.as_ref().and_then(|c| c.failures.clone()),
            coverage: self.checks.as_ref().map(|c| c.coverage.clone()),
        }
    }
}

impl ApiError {
    /// A policy version refused before publishing: 422, or 409 for a changed published version.
    fn refused(r: Refusal) -> Self {
        let unprocessable = |slug, title, detail: String| {
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, slug, title, detail)
        };
        let detail = r.to_string();
        match r {
            Refusal::Policy(PolicyError::Compile {
                line,
                column,
                message,
                ..
            }) => {
                let mut e = unprocessable("compile-error", "The policy does not compile", message)
                    .with_field("source");
                e.line = line;
                e.column = column;
                e
            }
            Refusal::Policy(PolicyError::Metadata { key, message, .. }) => {
                unprocessable("invalid-metadata", "Invalid policy metadata", message)
                    .with_field(key.unwrap_or_else(|| "source".into()))
            }
            Refusal::Policy(_) | Refusal::TooLong(_) => {
                unprocessable("invalid-policy", "Invalid policy", detail).with_field("source")
            }
            Refusal::Tests(_) => {
                unprocessable("invalid-tests", "Invalid test cases", detail).with_field("tests")
            }
            Refusal::Changed(_) => Self::new(
                StatusCode::CONFLICT,
                "version-changed",
                "A published version never changes",
                detail,
            ),
            Refusal::Period(_) => {
                unprocessable("overlapping-period", "Overlapping effective period", detail)
                    .with_field("effective_from")
            }
            Refusal::Sponsor(_) => {
                unprocessable("sponsor-changed", "Another sponsor's policy", detail)
                    .with_field("sponsor")
            }
            Refusal::CasesFail {
                summary,
                failures,
                coverage,
            } => {
                let mut e =
                    unprocessable("tests-fail", "Test cases fail", detail).with_field("tests");
                e.checks = Some(Box::new(Checks {
                    tests: summary,
                    failures: Some(failures),
                    coverage: *coverage,
                }));
                e
            }
            Refusal::Coverage { summary, coverage } => {
                let mut e = unprocessable("coverage", "Test cases do not cover the policy", detail)
                    .with_field("tests");
                e.checks = Some(Box::new(Checks {
                    tests: summary,
                    failures: None,
                    coverage: *coverage,
                }));
                e
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.title,
            self.detail
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(allow) = &self.allow {
            res.insert_header((header::ALLOW, allow.clone()));
        }
        match serde_json::to_string(&self.problem()) {
            Ok(body) => res.body(body),
            // A problem is strings and numbers; should that ever fail, say so plainly.
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a problem document");
                res.body(r#"{"type":"urn:eligo:problem:internal","title":"Internal error","status":500,"detail":"the error could not be encoded"}"#)
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => Self::not_found(e.to_string()),
            ServiceError::InvalidRecord(r) => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-record",
                    "Invalid student record",
                    r.message.clone(),
                )
                .with_field(r.field.clone());
                err.line = r.line;
                err.column = r.column;
                err
            }
            ServiceError::Invalid { field, message } => {
                Self::validation(field.clone(), format!("{field}: {message}"))
            }
            ServiceError::UnknownPolicy(id) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-policy",
                "Unknown policy",
                format!("no policy {id:?} is published"),
            )
            .with_field("policies"),
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", m),
            ServiceError::Forbidden(m) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", m)
            }
            ServiceError::Refused(r) => Self::refused(*r),
            ServiceError::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                e.to_string(),
            )
            .with_field("Idempotency-Key"),
            ServiceError::Unavailable(_) => {
                let id = super::observe::current_request_id();
                tracing::error!(request_id = id.as_deref().unwrap_or("none"), error = %e.chain(), "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the database is unavailable; try again shortly",
                )
            }
            ServiceError::Internal { .. } => Self::internal(&e.chain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_failure_is_a_500_internal_never_a_409() {
        let e = ServiceError::invariant("program p was not locked");
        let api = ApiError::from(e);
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.slug, "internal");
        assert!(
            !api.detail.contains("locked"),
            "the cause is logged, not sent"
        );
        // A real conflict stays a 409.
        let conflict = ApiError::from(ServiceError::Conflict("changed".into()));
        assert_eq!(conflict.status, StatusCode::CONFLICT);
    }

    #[actix_web::test]
    async fn the_internal_problem_names_the_request_being_served() {
        let e = super::super::observe::with_request_id("req-42".into(), async {
            ApiError::from(ServiceError::invariant("boom"))
        })
        .await;
        assert!(e.detail.contains("req-42"), "{}", e.detail);
        let outside = ApiError::from(ServiceError::invariant("boom"));
        assert!(!outside.detail.contains("req-42"));
    }
}
