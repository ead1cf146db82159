//! What the reports read: ledger decisions in a period (without the columns they do not need)
//! and the awards in force.

use diesel::prelude::*;

use super::schema::{awards, ledger};
use super::{Store, StoreError};
use crate::with_conn;

/// One ledger entry as the awards report reads it.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct ReportEntry {
    pub policy_id: String,
    /// `decision` or `revocation`.
    pub kind: String,
    pub recorded_at: String,
    pub student_id: String,
    /// `granted`, `denied` or `revoked`.
    pub outcome: String,
    pub reason_code: Option<String>,
    /// The award (JSON), for credit hours.
    pub award: String,
    /// Money granted (negative for a revocation).
    pub amount_cents: i64,
}

impl Store {
    /// The ledger entries of `policy_ids` recorded in `[from, to)` (RFC 3339 bounds), in order,
    /// each with the record as evaluated when `with_records` (grouping by the student's school,
    /// area or demographics needs it; by policy or month does not).
    pub fn report_entries(
        &self,
        policy_ids: &[String],
        from: Option<&str>,
        to: Option<&str>,
        with_records: bool,
    ) -> Result<Vec<(ReportEntry, Option<String>)>, StoreError> {
        let mut conn = self.conn()?;
        let columns = (
            ledger::policy_id,
            ledger::kind,
            ledger::recorded_at,
            ledger::student_id,
            ledger::outcome,
            ledger::reason_code,
            ledger::award,
            ledger::amount_cents,
        );
        Ok(with_conn!(&mut *conn, |c| {
            let mut q = ledger::table
                .filter(ledger::policy_id.eq_any(policy_ids))
                .into_boxed();
            if let Some(t) = from {
                q = q.filter(ledger::recorded_at.ge(t));
            }
            if let Some(t) = to {
                q = q.filter(ledger::recorded_at.lt(t));
            }
            let q = q.order(ledger::seq.asc());
            if with_records {
                q.select((columns, ledger::record))
                    .load::<(ReportEntry, String)>(c)
                    .map(|rows| rows.into_iter().map(|(e, r)| (e, Some(r))).collect())
            } else {
                q.select(columns)
                    .load::<ReportEntry>(c)
                    .map(|rows| rows.into_iter().map(|e| (e, None)).collect())
            }
        })?)
    }

    /// The awards in force (granted, not revoked) of `policy_ids`, as (policy, student).
    pub fn active_awards(
        &self,
        policy_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| awards::table
            .filter(awards::active.eq(true))
            .filter(awards::policy_id.eq_any(policy_ids))
            .select((awards::policy_id, awards::student_id))
            .load(c))?)
    }
}
