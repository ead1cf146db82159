//! The append-only ledger: entries, their hash chain (one chain per program), verification and
//! queries. Rows are inserted, never updated or deleted.
//!
//! `entry_hash` = SHA-256 (hex) of the canonical encoding of the entry: a JSON array of every
//! column but `seq` and `entry_hash`, in a fixed order, with `prev_hash` (the previous entry of
//! the same program, or 64 zeros for the first) among them. `seq` is left out because the
//! database assigns it on insert; the position in the chain is `(policy_id, chain_seq)`.

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{ledger, programs};
use super::{Store, StoreError};
use crate::with_conn;

/// The `prev_hash` of a program's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub const ENGINE_VERSION: &str = env!("ELIGO_RHAI_VERSION");
pub const ELIGO_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One ledger row: its `seq` and everything else.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = ledger)]
pub struct Entry {
    pub seq: i64,
    #[diesel(embed)]
    #[serde(flatten)]
    pub fields: NewEntry,
}

impl std::ops::Deref for Entry {
    type Target = NewEntry;
    fn deref(&self) -> &NewEntry {
        &self.fields
    }
}

/// A ledger row without `seq` (which the database assigns): what is inserted and hashed.
#[derive(Debug, Clone, PartialEq, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = ledger)]
pub struct NewEntry {
    pub policy_id: String,
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
    pub record: String,
    pub outcome: String,
    pub reason_code: Option<String>,
    pub evaluation: String,
    pub award: String,
    pub amount_cents: i64,
    pub payee: Option<String>,
    pub award_id: Option<String>,
    pub note: Option<String>,
    pub prev_hash: String,
    pub entry_hash: String,
}

/// The canonical encoding that `entry_hash` covers.
fn canonical(e: &NewEntry) -> String {
    // Strings, integers and nulls only: building and printing this array cannot fail.
    serde_json::json!([
        "eligo-ledger-v1",
        e.policy_id,
        e.chain_seq,
        e.kind,
        e.recorded_at,
        e.key_id,
        e.request_id,
        e.idempotency_key,
        e.student_id,
        e.policy_version,
        e.policy_hash,
        e.eligo_version,
        e.rhai_version,
        e.as_of,
        e.record,
        e.outcome,
        e.reason_code,
        e.evaluation,
        e.award,
        e.amount_cents,
        e.payee,
        e.award_id,
        e.note,
        e.prev_hash,
    ])
    .to_string()
}

impl NewEntry {
    /// Computes and sets `entry_hash` from the other fields.
    pub fn seal(mut self) -> Self {
        self.entry_hash = hex::encode(Sha256::digest(canonical(&self).as_bytes()));
        self
    }
}

impl Entry {
    /// The hash this entry should carry, from its other fields.
    pub fn computed_hash(&self) -> String {
        self.fields.clone().seal().entry_hash
    }
}

/// Filters for listing the ledger.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub policy_id: Option<String>,
    /// Only these policies (an awarder's own).
    pub policy_ids: Option<Vec<String>>,
    pub student_id: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339 bounds on `recorded_at`, inclusive from, exclusive to.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries with `seq` greater than this.
    pub after_seq: Option<i64>,
    pub limit: i64,
}

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadEntry {
    pub seq: i64,
    pub policy_id: String,
    pub chain_seq: i64,
    pub problem: String,
}

/// The result of walking every hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub ok: bool,
    pub entries_checked: u64,
    pub chains_checked: u64,
    pub first_bad: Option<BadEntry>,
}

const VERIFY_PAGE: i64 = 2_000;

impl Store {
    pub fn ledger_entries(&self, f: &LedgerFilter) -> Result<Vec<Entry>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| {
            let mut q = ledger::table.into_boxed();
            if let Some(p) = &f.policy_id {
                q = q.filter(ledger::policy_id.eq(p));
            }
            if let Some(ids) = &f.policy_ids {
                q = q.filter(ledger::policy_id.eq_any(ids));
            }
            if let Some(s) = &f.student_id {
                q = q.filter(ledger::student_id.eq(s));
            }
            if let Some(o) = &f.outcome {
                q = q.filter(ledger::outcome.eq(o));
            }
            if let Some(t) = &f.from {
                q = q.filter(ledger::recorded_at.ge(t));
            }
            if let Some(t) = &f.to {
                q = q.filter(ledger::recorded_at.lt(t));
            }
            if let Some(s) = f.after_seq {
                q = q.filter(ledger::seq.gt(s));
            }
            q.order(ledger::seq.asc())
                .limit(f.limit)
                .select(Entry::as_select())
                .load(c)
        })?)
    }

    pub fn ledger_entry(&self, seq: i64) -> Result<Option<Entry>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| ledger::table
            .find(seq)
            .select(Entry::as_select())
            .first(c)
            .optional())?)
    }

    /// Walks every program's chain in order and reports the first entry whose hash or link
    /// does not hold, or a chain whose recorded head does not match its last entry. Reads one
    /// consistent snapshot, so awards recorded meanwhile do not look like damage.
    pub fn verify_ledger(&self) -> Result<Verification, StoreError> {
        use super::awards::WriteConn;
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.snapshot_tx(|c| {
            let heads: Vec<(String, i64, String)> = programs::table
                .select((programs::policy_id, programs::head_seq, programs::head_hash))
                .order(programs::policy_id.asc())
                .load(c)?;
            walk(&heads, |policy_id, from| {
                Ok(ledger::table
                    .filter(ledger::policy_id.eq(policy_id))
                    .filter(ledger::chain_seq.ge(from))
                    .order(ledger::chain_seq.asc())
                    .limit(VERIFY_PAGE)
                    .select(Entry::as_select())
                    .load(c)?)
            })
        }))
    }
}

/// Checks each chain, reading it a page at a time through `page(policy_id, from_chain_seq)`.
fn walk(
    heads: &[(String, i64, String)],
    mut page: impl FnMut(&str, i64) -> Result<Vec<Entry>, StoreError>,
) -> Result<Verification, StoreError> {
    let mut checked = 0u64;
    let mut chains = 0u64;
    for (policy_id, head_seq, head_hash) in heads {
        chains += 1;
        let mut prev = GENESIS.to_string();
        let mut expected = 1i64;
        loop {
            let entries = page(policy_id, expected)?;
            let done = (entries.len() as i64) < VERIFY_PAGE;
            for e in entries {
                checked += 1;
                let problem = if e.chain_seq != expected {
                    Some(format!(
                        "chain position {} where {expected} was expected (an entry is missing)",
                        e.chain_seq
                    ))
                } else if e.prev_hash != prev {
                    Some("prev_hash does not match the previous entry's hash".to_string())
                } else if e.computed_hash() != e.entry_hash {
                    Some("entry_hash does not match the entry's contents".to_string())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Ok(Verification {
                        ok: false,
                        entries_checked: checked,
                        chains_checked: chains,
                        first_bad: Some(BadEntry {
                            seq: e.seq,
                            policy_id: e.fields.policy_id,
                            chain_seq: e.fields.chain_seq,
                            problem,
                        }),
                    });
                }
                prev = e.fields.entry_hash;
                expected += 1;
            }
            if done {
                break;
            }
        }
        let last = expected - 1;
        if last != *head_seq || (*head_seq > 0 && &prev != head_hash) {
            return Ok(Verification {
                ok: false,
                entries_checked: checked,
                chains_checked: chains,
                first_bad: Some(BadEntry {
                    seq: 0,
                    policy_id: policy_id.clone(),
                    chain_seq: last,
                    problem: format!(
                        "the chain ends at position {last} but the program's head says {head_seq}"
                    ),
                }),
            });
        }
    }
    Ok(Verification {
        ok: true,
        entries_checked: checked,
        chains_checked: chains,
        first_bad: None,
    })
}
