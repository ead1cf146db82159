//! The ledger over HTTP: listing (JSON or CSV), verification, replay.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem};
use super::AppState;
use crate::service::awards::ReplayResult;
use crate::service::ledger::{time_bound, to_csv, LedgerEntry, LedgerFilter, Verification};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    pub policy_id: Option<String>,
    pub student_id: Option<String>,
    /// `granted`, `denied` or `revoked`.
    #[param(value_type = Option<LedgerOutcome>)]
    pub outcome: Option<String>,
    /// Entries recorded at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Entries recorded before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The outcomes a ledger entry records (for the `outcome` filter's documented values).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOutcome {
    Granted,
    Denied,
    Revoked,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<i64>,
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|t| {
        time_bound(&t).map_err(|e| {
            ApiError::validation(name, format!("{name}: {t:?} is not an RFC 3339 time: {e}"))
        })
    })
    .transpose()
}

/// List ledger entries, oldest first, filtered and paged; `Accept: text/csv` gives the award
/// list as CSV (text cells that a spreadsheet would run as formulas are neutralised).
#[utoipa::path(
    get, path = "/v1/ledger", tag = "ledger",
    params(LedgerParams),
    responses(
        (status = 200, description = "Entries as JSON, or as CSV with `Accept: text/csv`",
            content((LedgerPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn list_ledger(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<LedgerParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit: must be between 1 and 1000",
        ));
    }
    if let Some(o) = &p.outcome {
        if !["granted", "denied", "revoked"].contains(&o.as_str()) {
            return Err(ApiError::validation(
                "outcome",
                "outcome: must be granted, denied or revoked",
            ));
        }
    }
    let caller = super::access::caller(&req)?;
    let policy_ids = match caller.role {
        crate::service::access::Role::Awarder => {
            if let Some(id) = &p.policy_id {
                super::access::require_sponsor(&caller, id, state.service.sponsor_of(id))?;
            }
            Some(
                state
                    .service
                    .policies_of(caller.sponsor.as_deref().unwrap_or_default()),
            )
        }
        _ => None,
    };
    let filter = LedgerFilter {
        policy_ids,
        policy_id: p.policy_id,
        student_id: p.student_id,
        outcome: p.outcome,
        from: time_param("from", p.from)?,
        to: time_param("to", p.to)?,
        after_seq: p.cursor,
        limit: limit + 1,
    };
    let mut entries = state.service.ledger(filter).await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_cursor = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    if super::body::accepts(&req, "text/csv") {
        let mut res = HttpResponse::Ok();
        res.content_type("text/csv; charset=utf-8");
        if let Some(c) = next_cursor {
            res.insert_header(("X-Next-Cursor", c.to_string()));
        }
        return Ok(res.body(to_csv(&entries)?));
    }
    Ok(HttpResponse::Ok().json(LedgerPage {
        items: entries,
        next_cursor,
    }))
}

/// Walk every hash chain; report the first entry that does not verify.
#[utoipa::path(get, path = "/v1/ledger/verify", tag = "ledger", responses((status = 200, body = Verification)))]
#[tracing::instrument(skip(state))]
pub async fn verify_ledger(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.service.verify_ledger().await?))
}

/// Re-evaluate an entry's stored record with its stored policy version: same result?
#[utoipa::path(
    post, path = "/v1/ledger/{seq}/replay", tag = "ledger",
    params(("seq" = i64, Path, description = "Ledger sequence number")),
    responses(
        (status = 200, body = ReplayResult),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip(state, req))]
pub async fn replay_entry(
    state: web::Data<AppState>,
    req: HttpRequest,
    seq: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let seq = seq.into_inner();
    let caller = super::access::caller(&req)?;
    if let Some(policy) = state.service.entry_policy(seq).await? {
        super::access::require_sponsor(&caller, &policy, state.service.sponsor_of(&policy))?;
    }
    Ok(HttpResponse::Ok().json(state.service.replay(seq).await?))
}
