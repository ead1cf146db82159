//! Cohort batches over HTTP: start, watch, read the results (NDJSON or CSV), cancel.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{ApiError, Problem};
use super::AppState;
use crate::service::batches::{BatchLine, BatchRequest, BatchView};
use crate::service::ledger::csv_cell;
use crate::service::Service;

/// Chunks of results read per database round trip while streaming (a chunk is up to
/// `ELIGO_BATCH_CHUNK` students' lines).
const RESULT_PAGE: i64 = 2;

/// Start a batch: preview or award a set of students (`"all"`, `{"school_id": ...}` or a list of
/// ids, frozen now) against policies on `as_of`. Answers `202` at once with the batch's id
/// (`Location` names it); the batch runs in the background and survives a restart.
///
/// Previews: admins, counselors, and awarders for their own sponsor's policies. Awards: admins
/// and awarders (own sponsor), through the same decision, budget, once-per-student and ledger
/// rules as `POST /v1/awards`, one decision per eligible student and policy, idempotent on
/// (batch, student, policy) and recorded under the starting key.
#[utoipa::path(
    post, path = "/v1/batches", tag = "batches",
    request_body = BatchRequest,
    responses(
        (status = 202, description = "Queued", body = BatchView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req, payload))]
pub async fn create_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let body: BatchRequest =
        super::body::read_json(&req, payload, state.settings.max_import_bytes).await?;
    let view = state.service.create_batch(&caller, body).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/batches/{}", view.batch_id)))
        .json(view))
}

/// A batch's state (`queued`, `running`, `done`, `failed`, `cancelled`), total, done and
/// counts by outcome. For the key that started it, and admins.
#[utoipa::path(
    get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, body = BatchView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn get_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    Ok(HttpResponse::Ok().json(state.service.batch(&caller, id.into_inner()).await?))
}

/// Cancel a queued or running batch. The results so far are kept, and so are the awards
/// already recorded (revoke them one by one if they should not stand). A batch that has
/// already ended is left as it is (the answer's `state` says so): cancelling is idempotent.
#[utoipa::path(
    delete, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "Cancelled, or already ended", body = BatchView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn cancel_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    Ok(HttpResponse::Ok().json(state.service.cancel_batch(&caller, id.into_inner()).await?))
}

/// A batch's results so far, one line per decision in student order: NDJSON, or CSV with
/// `Accept: text/csv`. Streamed, so a class of any size is served in constant memory.
#[utoipa::path(
    get, path = "/v1/batches/{id}/results", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "One line per decision",
            content((BatchLine = "application/x-ndjson"), (String = "text/csv"))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn batch_results(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::access::caller(&req)?;
    let id = id.into_inner();
    // Refused or unknown before the first byte is sent.
    state.service.batch(&caller, id.clone()).await?;
    let csv = super::body::accepts(&req, "text/csv");
    Ok(results_response(state.service.clone(), id, csv))
}

/// The streamed results of a batch (the caller's right to them already checked): shared by the
/// API and the batch page's download.
pub fn results_response(service: Service, batch_id: String, csv: bool) -> HttpResponse {
    let first = csv.then(|| {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(BatchLine::CSV_HEADER);
        w.into_inner().unwrap_or_default()
    });
    let stream = futures_util::stream::unfold(
        (service, batch_id, -1i64, first, false),
        move |(service, id, after, first, finished)| async move {
            if let Some(header) = first {
                let bytes = web::Bytes::from(header);
                return Some((Ok(bytes), (service, id, after, None, finished)));
            }
            if finished {
                return None;
            }
            match service.batch_results(id.clone(), after, RESULT_PAGE).await {
                Ok((text, Some(last))) => {
                    let body = if csv {
                        to_csv(&text)
                    } else {
                        Ok(text.into_bytes())
                    };
                    let out = body.map(web::Bytes::from).map_err(|e| {
                        actix_web::error::ErrorInternalServerError(format!("encoding results: {e}"))
                    });
                    Some((out, (service, id, last, None, false)))
                }
                Ok((_, None)) => None,
                Err(e) => {
                    tracing::error!(error = %e.chain(), "cannot read batch results");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError(
                            "the results could not be read",
                        )),
                        (service, id, after, None, true),
                    ))
                }
            }
        },
    );
    HttpResponse::Ok()
        .content_type(if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/x-ndjson"
        })
        .streaming(stream)
}

/// Stored NDJSON lines as CSV rows (text cells that a spreadsheet would run are neutralised).
fn to_csv(ndjson: &str) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(ndjson.len() / 2));
    for line in ndjson.lines().filter(|l| !l.is_empty()) {
        let l: BatchLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut record = l.csv_record();
        for cell in [0, 1, 5, 7, 8] {
            record[cell] = csv_cell(&record[cell]);
        }
        w.write_record(record).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}
