//! The ledger as the service offers it: entries with their JSON columns parsed, the award list
//! as CSV, verification of the hash chains.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{blocking, Service, ServiceError};
use crate::store::ledger::Entry;

/// Filters for listing the ledger (the store's, which is plain data).
pub use crate::store::ledger::LedgerFilter;

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

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BadEntry {
    pub seq: i64,
    pub policy_id: String,
    pub chain_seq: i64,
    pub problem: String,
}

/// The result of walking every hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub entries_checked: u64,
    pub chains_checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadEntry>,
}

impl From<crate::store::ledger::Verification> for Verification {
    fn from(v: crate::store::ledger::Verification) -> Self {
        Self {
            ok: v.ok,
            entries_checked: v.entries_checked,
            chains_checked: v.chains_checked,
            first_bad: v.first_bad.map(|b| BadEntry {
                seq: b.seq,
                policy_id: b.policy_id,
                chain_seq: b.chain_seq,
                problem: b.problem,
            }),
        }
    }
}

/// A time bound of a ledger query, as the ledger stores times (UTC, microseconds); an error
/// when `text` is not RFC 3339.
pub fn time_bound(text: &str) -> Result<String, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|d| crate::store::timestamp_text(d.with_timezone(&Utc)))
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

/// The entries as the award list's CSV. Text cells that a spreadsheet would run as formulas
/// are neutralised; numbers (a revocation's amount is negative) are written as they are.
pub fn to_csv(entries: &[LedgerEntry]) -> Result<String, ServiceError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)
        .map_err(|e| ServiceError::internal("writing CSV", e))?;
    for e in entries {
        let payee = |key: &str| {
            e.payee
                .as_ref()
                .and_then(|p| p[key].as_str())
                .map(csv_cell)
                .unwrap_or_default()
        };
        let text = |v: &Option<String>| v.as_deref().map(csv_cell).unwrap_or_default();
        let row = [
            e.seq.to_string(),
            csv_cell(&e.recorded_at),
            csv_cell(&e.policy_id),
            e.policy_version.to_string(),
            csv_cell(&e.student_id),
            csv_cell(&e.kind),
            csv_cell(&e.outcome),
            text(&e.reason_code),
            e.amount_cents.to_string(),
            payee("kind"),
            payee("institution_id"),
            text(&e.award_id),
            csv_cell(&e.as_of),
            text(&e.note),
            csv_cell(&e.entry_hash),
        ];
        w.write_record(&row)
            .map_err(|e| ServiceError::internal("writing CSV", e))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ServiceError::internal("writing CSV", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::internal("writing CSV", e))
}

impl Service {
    pub async fn ledger(&self, filter: LedgerFilter) -> Result<Vec<LedgerEntry>, ServiceError> {
        let store = self.store().clone();
        blocking(move || {
            Ok(store
                .ledger_entries(&filter)?
                .into_iter()
                .map(LedgerEntry::from)
                .collect())
        })
        .await
    }

    pub async fn verify_ledger(&self) -> Result<Verification, ServiceError> {
        let store = self.store().clone();
        blocking(move || Ok(store.verify_ledger()?.into())).await
    }
}
