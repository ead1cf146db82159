//! Award transactions: idempotency, once-per-student, budgets and the ledger append, decided
//! together under a lock on the program's row so they stay exact across processes.
//!
//! SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front. PostgreSQL: `SELECT ... FOR
//! UPDATE` on the program row. Several queued awards share one transaction (group commit), each
//! in its own savepoint so one failing award does not undo the others.

use std::sync::Arc;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{PgConnection, SqliteConnection};
use serde::Serialize;

use super::ledger::{NewEntry, ELIGO_VERSION, ENGINE_VERSION, GENESIS};
use super::schema::{awards, idempotency, ledger, programs};
use super::{now_text, Store, StoreError};
use crate::policy::grant;
use crate::policy::{Award, Decision, PolicyVersion};
use crate::with_conn;

/// A program's chain head and budget counters.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = programs)]
pub struct Program {
    pub policy_id: String,
    pub head_seq: i64,
    pub head_hash: String,
    pub budget_total_cents: Option<i64>,
    pub budget_max_awards: Option<i64>,
    pub committed_cents: i64,
    pub committed_awards: i64,
    pub updated_at: String,
}

/// What a program may spend. Absent limits mean unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    pub total_cents: Option<i64>,
    pub max_awards: Option<i64>,
}

/// Transactions that need the write lock first: SQLite's IMMEDIATE transactions, PostgreSQL's
/// row locks.
pub(crate) trait WriteConn: Connection {
    fn write_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>;
    /// The program's row, created if missing, locked until the transaction ends.
    fn lock_program(&mut self, policy_id: &str) -> QueryResult<Program>;
    /// A read-only transaction over one consistent snapshot.
    fn snapshot_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>;
}

/// Creates a program's row if it has none yet (same SQL on both backends).
macro_rules! insert_program {
    ($conn:expr, $policy_id:expr) => {
        diesel::insert_into(programs::table)
            .values((
                programs::policy_id.eq($policy_id),
                programs::head_hash.eq(GENESIS),
                programs::updated_at.eq(now_text()),
            ))
            .on_conflict_do_nothing()
            .execute($conn)?
    };
}

impl WriteConn for SqliteConnection {
    fn write_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.immediate_transaction(f)
    }

    fn snapshot_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        // In WAL mode a read transaction sees the snapshot of its first read.
        self.transaction(f)
    }

    fn lock_program(&mut self, policy_id: &str) -> QueryResult<Program> {
        insert_program!(self, policy_id);
        programs::table
            .find(policy_id)
            .select(Program::as_select())
            .first(self)
    }
}

impl WriteConn for PgConnection {
    fn write_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.transaction(f)
    }

    fn snapshot_tx<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.build_transaction()
            .repeatable_read()
            .read_only()
            .run(f)
    }

    fn lock_program(&mut self, policy_id: &str) -> QueryResult<Program> {
        insert_program!(self, policy_id);
        programs::table
            .find(policy_id)
            .select(Program::as_select())
            .for_update()
            .first(self)
    }
}

/// One award request, evaluated, waiting to be decided and recorded.
#[derive(Debug, Clone)]
pub struct AwardJob {
    pub key_id: String,
    pub idempotency_key: String,
    /// SHA-256 of the request as sent, to tell a retry from a different request.
    pub request_hash: String,
    pub request_id: String,
    pub policy: Arc<PolicyVersion>,
    pub student_id: String,
    /// The record exactly as evaluated (JSON).
    pub record: String,
    pub as_of: NaiveDate,
    pub decision: Decision,
}

/// A decision entry as recorded: what an award request is answered with, the first time and
/// on every replay of its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAward {
    pub seq: i64,
    pub entry_hash: String,
    pub recorded_at: String,
    pub policy_id: String,
    pub student_id: String,
    /// `granted` or `denied`.
    pub outcome: String,
    pub reason_code: Option<String>,
    pub award_id: Option<String>,
    /// The evaluation the decision rests on, as the ledger holds it (JSON).
    pub evaluation: String,
}

impl From<NewEntry> for RecordedAward {
    fn from(e: NewEntry) -> Self {
        Self {
            seq: 0,
            entry_hash: e.entry_hash,
            recorded_at: e.recorded_at,
            policy_id: e.policy_id,
            student_id: e.student_id,
            outcome: e.outcome,
            reason_code: e.reason_code,
            award_id: e.award_id,
            evaluation: e.evaluation,
        }
    }
}

/// What became of an award request.
#[derive(Debug, Clone, PartialEq)]
pub enum AwardOutcome {
    /// A new decision was recorded.
    Recorded(RecordedAward),
    /// The same key and request came before: the decision recorded then.
    Replayed(RecordedAward),
    /// The key was used before for a different request.
    KeyReused,
}

fn amount_of(award: &Option<Award>) -> i64 {
    match award {
        Some(Award::Scholarship { amount_cents }) => *amount_cents,
        Some(Award::TuitionWaiver { .. }) | None => 0,
    }
}

/// A transaction the database aborted to resolve contention; running it again is safe.
pub fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            _,
        )) => true,
        StoreError::Query(DieselError::DatabaseError(_, info)) => {
            let m = info.message();
            m.contains("deadlock detected") || m.contains("database is locked")
        }
        _ => false,
    }
}

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// The revocation of an award, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    pub seq: i64,
    pub entry_hash: String,
    pub recorded_at: String,
    pub policy_id: String,
}

/// Why a revocation was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum RevokeRefusal {
    NotFound,
    AlreadyRevoked,
}

/// Decides and records one award against the program state `$program` (locked by the caller).
/// The first attempt skips the idempotency look-up: a repeated key then fails on the key's
/// unique index, and the retry (`$check_key`) finds the entry recorded under it. The verdict is
/// `grant::decide`'s. Returns the outcome and the program's new state.
macro_rules! decide_one {
    ($c:ident, $job:expr, $program:expr, $check_key:expr) => {{
        let job: &AwardJob = $job;
        let program: &Program = $program;
        if $check_key {
            let existing: Option<(String, i64)> = idempotency::table
                .find((&job.key_id, &job.idempotency_key))
                .select((idempotency::request_hash, idempotency::ledger_seq))
                .first($c)
                .optional()?;
            if let Some((hash, seq)) = existing {
                if hash != job.request_hash {
                    return Ok((AwardOutcome::KeyReused, None));
                }
                let entry: super::ledger::Entry = ledger::table
                    .find(seq)
                    .select(super::ledger::Entry::as_select())
                    .first($c)?;
                let recorded = RecordedAward {
                    seq: entry.seq,
                    ..RecordedAward::from(entry.fields)
                };
                return Ok((AwardOutcome::Replayed(recorded), None));
            }
        }
        let meta = &job.policy.meta;
        let amount = amount_of(&meta.award);
        let budget = grant::Budget {
            total_cents: program.budget_total_cents,
            max_awards: program.budget_max_awards,
            committed_cents: program.committed_cents,
            committed_awards: program.committed_awards,
        };
        let verdict = grant::decide(
            job.decision.outcome,
            meta.once_per_student,
            &budget,
            amount,
            || -> Result<bool, StoreError> {
                Ok(awards::table
                    .filter(awards::policy_id.eq(&meta.id))
                    .filter(awards::student_id.eq(&job.student_id))
                    .filter(awards::active.eq(true))
                    .select(awards::award_id)
                    .first::<String>($c)
                    .optional()?
                    .is_some())
            },
        )?;
        let granted = verdict.is_granted();
        let award_id = granted.then(|| uuid::Uuid::new_v4().to_string());
        let now = now_text();
        let entry = NewEntry {
            policy_id: meta.id.clone(),
            chain_seq: program.head_seq + 1,
            kind: "decision".into(),
            recorded_at: now.clone(),
            key_id: job.key_id.clone(),
            request_id: job.request_id.clone(),
            idempotency_key: Some(job.idempotency_key.clone()),
            student_id: job.student_id.clone(),
            policy_version: meta.version as i32,
            policy_hash: job.policy.hash.clone(),
            eligo_version: ELIGO_VERSION.into(),
            rhai_version: ENGINE_VERSION.into(),
            as_of: job.as_of.to_string(),
            record: job.record.clone(),
            outcome: verdict.as_str().into(),
            reason_code: verdict.reason().map(|r| r.as_str().to_string()),
            evaluation: to_json(&job.decision)?,
            award: to_json(&meta.award)?,
            amount_cents: if granted { amount } else { 0 },
            payee: match (&job.decision.payee, granted) {
                (Some(p), true) => Some(to_json(p)?),
                _ => None,
            },
            award_id: award_id.clone(),
            note: None,
            prev_hash: program.head_hash.clone(),
            entry_hash: String::new(),
        }
        .seal();
        let seq: i64 = diesel::insert_into(ledger::table)
            .values(&entry)
            .returning(ledger::seq)
            .get_result($c)?;
        if let Some(id) = &award_id {
            diesel::insert_into(awards::table)
                .values((
                    awards::award_id.eq(id),
                    awards::policy_id.eq(&meta.id),
                    awards::student_id.eq(&job.student_id),
                    awards::once_per_student.eq(meta.once_per_student),
                    awards::amount_cents.eq(amount),
                    awards::granted_seq.eq(seq),
                    awards::active.eq(true),
                ))
                .execute($c)?;
        }
        diesel::insert_into(idempotency::table)
            .values((
                idempotency::key_id.eq(&job.key_id),
                idempotency::idempotency_key.eq(&job.idempotency_key),
                idempotency::request_hash.eq(&job.request_hash),
                idempotency::ledger_seq.eq(seq),
                idempotency::created_at.eq(&now),
            ))
            .execute($c)?;
        let next = Program {
            head_seq: entry.chain_seq,
            head_hash: entry.entry_hash.clone(),
            committed_cents: program.committed_cents + entry.amount_cents,
            committed_awards: program.committed_awards + i64::from(granted),
            updated_at: now,
            ..program.clone()
        };
        let recorded = RecordedAward {
            seq,
            ..RecordedAward::from(entry)
        };
        Ok((AwardOutcome::Recorded(recorded), Some(next)))
    }};
}

/// JSON text of a value, for ledger columns and hashes: a failure is an error, never an empty
/// string in a hashed column.
fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

impl Store {
    /// Decides and records a batch of awards in one transaction (group commit). Each award gets
    /// its own result; a database error in one does not undo the others. An award that loses a
    /// race on a unique constraint (another process recorded the same key or award first) is
    /// decided again, and then sees the winner.
    pub fn award_batch(
        &self,
        jobs: &[AwardJob],
    ) -> Result<Vec<Result<AwardOutcome, StoreError>>, StoreError> {
        // Program rows are locked in policy-id order, the same in every process, so two
        // processes' batches cannot deadlock on each other's locks.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&a, &b| jobs[a].policy.meta.id.cmp(&jobs[b].policy.meta.id));
        let mut conn = self.conn()?;
        let sorted = with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let mut results = Vec::with_capacity(jobs.len());
            // Each program is locked once per batch; its state is kept here and written back
            // once at the end.
            let mut state: std::collections::HashMap<String, Program> = Default::default();
            for &i in &order {
                let job = &jobs[i];
                let id = &job.policy.meta.id;
                if !state.contains_key(id) {
                    let locked = c.lock_program(id)?;
                    state.insert(id.clone(), locked);
                }
                let program = state
                    .get(id)
                    .cloned()
                    .ok_or_else(|| StoreError::Invariant(format!("program {id} was not locked")))?;
                let mut attempt = |check_key: bool| {
                    c.transaction(|c| -> Result<(AwardOutcome, Option<Program>), StoreError> {
                        decide_one!(c, job, &program, check_key)
                    })
                };
                let result = match attempt(false) {
                    Err(e) if is_unique_violation(&e) => attempt(true),
                    other => other,
                };
                results.push((
                    i,
                    result.map(|(reply, next)| {
                        if let Some(next) = next {
                            state.insert(id.clone(), next);
                        }
                        reply
                    }),
                ));
            }
            for p in state.values() {
                diesel::update(programs::table.find(&p.policy_id))
                    .set((
                        programs::head_seq.eq(p.head_seq),
                        programs::head_hash.eq(&p.head_hash),
                        programs::committed_cents.eq(p.committed_cents),
                        programs::committed_awards.eq(p.committed_awards),
                        programs::updated_at.eq(&p.updated_at),
                    ))
                    .execute(c)?;
            }
            Ok::<_, StoreError>(results)
        }))?;
        let mut out: Vec<Option<Result<AwardOutcome, StoreError>>> =
            (0..jobs.len()).map(|_| None).collect();
        for (i, r) in sorted {
            out[i] = Some(r);
        }
        Ok(out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(StoreError::Invariant("award was not processed".into())))
            })
            .collect())
    }

    /// Appends a revocation of `award_id` and frees its budget.
    pub fn revoke_award(
        &self,
        award_id: &str,
        reason: &str,
        key_id: &str,
        request_id: &str,
    ) -> Result<Result<Revoked, RevokeRefusal>, StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let policy_id: Option<String> = awards::table
                .find(award_id)
                .select(awards::policy_id)
                .first(c)
                .optional()?;
            let Some(policy_id) = policy_id else {
                return Ok(Err(RevokeRefusal::NotFound));
            };
            let program = c.lock_program(&policy_id)?;
            let (student_id, amount, granted_seq, active): (String, i64, i64, bool) = awards::table
                .find(award_id)
                .select((
                    awards::student_id,
                    awards::amount_cents,
                    awards::granted_seq,
                    awards::active,
                ))
                .first(c)?;
            if !active {
                return Ok(Err(RevokeRefusal::AlreadyRevoked));
            }
            let granted: NewEntry = ledger::table
                .find(granted_seq)
                .select(super::ledger::Entry::as_select())
                .first::<super::ledger::Entry>(c)?
                .fields;
            let now = now_text();
            let entry = NewEntry {
                policy_id: policy_id.clone(),
                chain_seq: program.head_seq + 1,
                kind: "revocation".into(),
                recorded_at: now.clone(),
                key_id: key_id.into(),
                request_id: request_id.into(),
                idempotency_key: None,
                student_id,
                policy_version: granted.policy_version,
                policy_hash: granted.policy_hash,
                eligo_version: ELIGO_VERSION.into(),
                rhai_version: ENGINE_VERSION.into(),
                as_of: granted.as_of,
                record: granted.record,
                outcome: "revoked".into(),
                reason_code: Some("revoked".into()),
                evaluation: granted.evaluation,
                award: granted.award,
                amount_cents: -amount,
                payee: granted.payee,
                award_id: Some(award_id.to_string()),
                note: Some(reason.to_string()),
                prev_hash: program.head_hash.clone(),
                entry_hash: String::new(),
            }
            .seal();
            let seq: i64 = diesel::insert_into(ledger::table)
                .values(&entry)
                .returning(ledger::seq)
                .get_result(c)?;
            diesel::update(awards::table.find(award_id))
                .set((awards::active.eq(false), awards::revoked_seq.eq(seq)))
                .execute(c)?;
            diesel::update(programs::table.find(&policy_id))
                .set((
                    programs::head_seq.eq(entry.chain_seq),
                    programs::head_hash.eq(&entry.entry_hash),
                    programs::committed_cents.eq(program.committed_cents - amount),
                    programs::committed_awards.eq(program.committed_awards - 1),
                    programs::updated_at.eq(&now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(Ok(Revoked {
                seq,
                entry_hash: entry.entry_hash,
                recorded_at: now,
                policy_id,
            }))
        }))
    }

    /// Sets a program's budget limits (under the program lock); returns the program.
    pub fn set_budget(&self, policy_id: &str, limits: BudgetLimits) -> Result<Program, StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            c.lock_program(policy_id)?;
            diesel::update(programs::table.find(policy_id))
                .set((
                    programs::budget_total_cents.eq(limits.total_cents),
                    programs::budget_max_awards.eq(limits.max_awards),
                    programs::updated_at.eq(now_text()),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(
                programs::table
                    .find(policy_id)
                    .select(Program::as_select())
                    .first(c)?,
            )
        }))
    }

    /// The policy an award belongs to.
    pub fn award_policy(&self, award_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| awards::table
            .find(award_id)
            .select(awards::policy_id)
            .first(c)
            .optional())?)
    }

    /// A program's row, if it has one yet.
    pub fn program(&self, policy_id: &str) -> Result<Option<Program>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| programs::table
            .find(policy_id)
            .select(Program::as_select())
            .first(c)
            .optional())?)
    }

    /// Deletes idempotency keys recorded before `cutoff` (RFC 3339); returns how many.
    pub fn sweep_idempotency(&self, cutoff: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        // A batch's keys are kept: they are what lets a batch resumed at any later time replay
        // the awards it made instead of making them again (one row per award, like `awards`).
        Ok(with_conn!(&mut *conn, |c| diesel::delete(
            idempotency::table
                .filter(idempotency::created_at.lt(cutoff))
                .filter(idempotency::idempotency_key.not_like("batch:%"))
        )
        .execute(c))?)
    }
}
