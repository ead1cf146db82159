//! The ledger over HTTP: listing (JSON or CSV), verification, replay.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem};
use super::AppState;
use crate::service::awards::ReplayResult;
use crate::store::ledger::{Entry, LedgerFilter, Verification};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    pub policy_id: Option<String>,
    pub student_id: Option<String>,
    /// `granted`, `denied` or `revoked`.
    pub outcome: Option<String>,
    /// Entries recorded at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Entries recorded before this time (RFC 3339).
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One ledger entry, with its JSON columns parsed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    pub policy_id: String,
    /// Position in the program's hash chain.
    pub chain_seq: i64,
    /// `decision` or `revocation`.
    pub kind: String,
    pub recorded_at: String,
    pub key_id: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub student_id: String,
    pub policy_version: i32,
    pub policy_hash: String,
    pub eligo_version: String,
    pub rhai_version: String,
    pub as_of: String,
    /// `granted`, `denied` or `revoked`.
    pub outcome: String,
    pub reason_code: Option<String>,
    /// Money committed (+) or freed (-) by this entry.
    pub amount_cents: i64,
    pub award_id: Option<String>,
    pub note: Option<String>,
    #[schema(value_type = Object)]
    pub award: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub payee: Option<serde_json::Value>,
    /// The student record exactly as evaluated.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    /// The evaluation (outcome, reasons, missing).
    #[schema(value_type = Object)]
    pub evaluation: serde_json::Value,
    pub prev_hash: String,
    pub entry_hash: String,
}

fn parse(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.to_string()))
}

impl From<Entry> for LedgerEntry {
    fn from(entry: Entry) -> Self {
        let seq = entry.seq;
        let e = entry.fields;
        Self {
            award: parse(&e.award),
            payee: e.payee.as_deref().map(parse),
            record: parse(&e.record),
            evaluation: parse(&e.evaluation),
            seq,
            policy_id: e.policy_id,
            chain_seq: e.chain_seq,
            kind: e.kind,
            recorded_at: e.recorded_at,
            key_id: e.key_id,
            request_id: e.request_id,
            idempotency_key: e.idempotency_key,
            student_id: e.student_id,
            policy_version: e.policy_version,
            policy_hash: e.policy_hash,
            eligo_version: e.eligo_version,
            rhai_version: e.rhai_version,
            as_of: e.as_of,
            outcome: e.outcome,
            reason_code: e.reason_code,
            amount_cents: e.amount_cents,
            award_id: e.award_id,
            note: e.note,
            prev_hash: e.prev_hash,
            entry_hash: e.entry_hash,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<i64>,
}

/// A cell safe to open in a spreadsheet: text that a spreadsheet would run as a formula is
/// prefixed with an apostrophe.
pub fn csv_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

pub const CSV_HEADER: [&str; 15] = [
    "seq",
    "recorded_at",
    "policy_id",
    "policy_version",
    "student_id",
    "kind",
    "outcome",
    "reason_code",
    "amount_cents",
    "payee_kind",
    "payee_institution_id",
    "award_id",
    "as_of",
    "note",
    "entry_hash",
];

fn to_csv(entries: &[Entry]) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let internal =
        |e: csv::Error| ApiError::from(crate::service::ServiceError::Internal(e.to_string()));
    w.write_record(CSV_HEADER).map_err(internal)?;
    for e in entries {
        let payee: Option<serde_json::Value> = e.payee.as_deref().map(parse);
        let pk = payee
            .as_ref()
            .and_then(|p| p["kind"].as_str())
            .unwrap_or_default()
            .to_string();
        let pi = payee
            .as_ref()
            .and_then(|p| p["institution_id"].as_str())
            .unwrap_or_default()
            .to_string();
        let row = [
            e.seq.to_string(),
            e.recorded_at.clone(),
            e.policy_id.clone(),
            e.policy_version.to_string(),
            e.student_id.clone(),
            e.kind.clone(),
            e.outcome.clone(),
            e.reason_code.clone().unwrap_or_default(),
            e.amount_cents.to_string(),
            pk,
            pi,
            e.award_id.clone().unwrap_or_default(),
            e.as_of.clone(),
            e.note.clone().unwrap_or_default(),
            e.entry_hash.clone(),
        ];
        // Numbers may be negative (a revocation frees money): only text columns are neutralised.
        let row: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 8 || i == 0 || i == 3 {
                    c.clone()
                } else {
                    csv_cell(c)
                }
            })
            .collect();
        w.write_record(&row).map_err(internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| internal(e.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| crate::store::timestamp_text(d.with_timezone(&Utc)))
            .map_err(|e| {
                ApiError::validation(name, format!("{name}: {t:?} is not an RFC 3339 time: {e}"))
            })
    })
    .transpose()
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
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
    if wants_csv(&req) {
        let mut res = HttpResponse::Ok();
        res.content_type("text/csv; charset=utf-8");
        if let Some(c) = next_cursor {
            res.insert_header(("X-Next-Cursor", c.to_string()));
        }
        return Ok(res.body(to_csv(&entries)?));
    }
    Ok(HttpResponse::Ok().json(LedgerPage {
        items: entries.into_iter().map(LedgerEntry::from).collect(),
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
