//! Cohort batches: the batch rows (what was asked, state, progress) and their results, one row
//! per committed chunk. A batch is worked by one process at a time under a lease (`runner`,
//! `heartbeat_at`): a runner that stops renewing it (killed, cut off) loses the batch to the
//! next process that looks, which resumes after the last committed chunk.

use diesel::prelude::*;

use super::awards::WriteConn;
use super::schema::{batch_results, batches, students};
use super::{now_text, timestamp_text, Store, StoreError};
use crate::with_conn;

/// A batch as stored, without its (long) list of students.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = batches)]
pub struct BatchRow {
    pub batch_id: String,
    pub mode: String,
    pub state: String,
    /// JSON array of policy ids.
    pub policy_ids: String,
    pub as_of: String,
    /// JSON: the selection as asked for.
    pub selection: String,
    pub total: i64,
    pub done: i64,
    /// JSON object: outcome -> count.
    pub counts: String,
    pub key_id: String,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A batch to record, queued.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub batch_id: String,
    pub mode: String,
    /// None: every policy that concerns each student.
    pub policy_ids: Option<Vec<String>>,
    pub as_of: String,
    pub selection: String,
    /// The students, frozen now: a batch works on the cohort as it was when it was asked for.
    pub student_ids: Vec<String>,
    pub key_id: String,
}

/// A batch claimed by a runner: its row and its students.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: BatchRow,
    pub student_ids: Vec<String>,
}

/// What became of a committed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Go on.
    Running,
    /// Someone cancelled the batch: stop (this chunk's results are kept).
    Cancelled,
    /// Another runner holds the batch now (this one was too slow to renew its lease): stop.
    Lost,
}

impl Progress {
    /// What a runner that holds a batch in `state` should do.
    fn of_held(state: &str) -> Self {
        if state == "cancelled" {
            Self::Cancelled
        } else {
            Self::Running
        }
    }
}

/// Rows per insert statement (SQLite allows 32,766 parameters per statement).
const INSERT_ROWS: usize = 1000;
/// Ids per `IN (...)` look-up.
const LOOKUP_IDS: usize = 1000;

impl Store {
    pub fn create_batch(&self, b: &NewBatch) -> Result<BatchRow, StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        let policy_ids = serde_json::to_string(&b.policy_ids)?;
        let student_ids = serde_json::to_string(&b.student_ids)?;
        with_conn!(&mut *conn, |c| {
            diesel::insert_into(batches::table)
                .values((
                    batches::batch_id.eq(&b.batch_id),
                    batches::mode.eq(&b.mode),
                    batches::state.eq("queued"),
                    batches::policy_ids.eq(&policy_ids),
                    batches::as_of.eq(&b.as_of),
                    batches::selection.eq(&b.selection),
                    batches::student_ids.eq(&student_ids),
                    batches::total.eq(b.student_ids.len() as i64),
                    batches::done.eq(0i64),
                    batches::counts.eq("{}"),
                    batches::key_id.eq(&b.key_id),
                    batches::created_at.eq(&now),
                    batches::updated_at.eq(&now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        })?;
        self.batch(&b.batch_id)?
            .ok_or_else(|| StoreError::Invariant(format!("batch {} vanished", b.batch_id)))
    }

    pub fn batch(&self, batch_id: &str) -> Result<Option<BatchRow>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| batches::table
            .find(batch_id)
            .select(BatchRow::as_select())
            .first(c)
            .optional())?)
    }

    /// Takes the oldest batch that is queued, or running under a lease not renewed since
    /// `stale_before` (its runner stopped), for `runner`.
    pub fn claim_batch(
        &self,
        runner: &str,
        stale_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Claimed>, StoreError> {
        let stale = timestamp_text(stale_before);
        let now = now_text();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let candidate: Option<String> = batches::table
                .filter(
                    batches::state
                        .eq("queued")
                        .or(batches::state.eq("running").and(
                            batches::heartbeat_at
                                .is_null()
                                .or(batches::heartbeat_at.lt(&stale)),
                        )),
                )
                .order(batches::created_at.asc())
                .select(batches::batch_id)
                .first(c)
                .optional()?;
            let Some(id) = candidate else {
                return Ok(None);
            };
            // The same condition again: on PostgreSQL another process may have claimed it
            // between the look-up and here.
            let taken = diesel::update(
                batches::table.find(&id).filter(
                    batches::state
                        .eq("queued")
                        .or(batches::state.eq("running").and(
                            batches::heartbeat_at
                                .is_null()
                                .or(batches::heartbeat_at.lt(&stale)),
                        )),
                ),
            )
            .set((
                batches::state.eq("running"),
                batches::runner.eq(runner),
                batches::heartbeat_at.eq(&now),
                batches::updated_at.eq(&now),
            ))
            .execute(c)?;
            if taken == 0 {
                return Ok(None);
            }
            let row: BatchRow = batches::table
                .find(&id)
                .select(BatchRow::as_select())
                .first(c)?;
            let ids: String = batches::table
                .find(&id)
                .select(batches::student_ids)
                .first(c)?;
            let student_ids: Vec<String> = serde_json::from_str(&ids)
                .map_err(|e| StoreError::Corrupt(format!("batch {id} students: {e}")))?;
            Ok::<_, StoreError>(Some(Claimed { row, student_ids }))
        }))
    }

    /// Records one chunk's results (`(position, lines)` rows) and the progress after it, in one
    /// transaction, if `runner` still holds the batch. Results already recorded for a position
    /// (a chunk redone after a restart) are kept as they were.
    pub fn commit_chunk(
        &self,
        batch_id: &str,
        runner: &str,
        results: &[(i64, String)],
        done: i64,
        counts: &str,
    ) -> Result<Progress, StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            // The guarded update first: it locks the row (PostgreSQL) and tells whether this
            // runner still holds the batch, before anything is written.
            let held = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::runner.eq(runner))
                    .filter(batches::state.eq_any(["running", "cancelled"])),
            )
            .set((
                batches::done.eq(done),
                batches::counts.eq(counts),
                batches::heartbeat_at.eq(&now),
                batches::updated_at.eq(&now),
            ))
            .execute(c)?;
            if held == 0 {
                return Ok(Progress::Lost);
            }
            for rows in results.chunks(INSERT_ROWS) {
                let values: Vec<_> = rows
                    .iter()
                    .map(|(position, lines)| {
                        (
                            batch_results::batch_id.eq(batch_id),
                            batch_results::position.eq(*position),
                            batch_results::lines.eq(lines),
                        )
                    })
                    .collect();
                diesel::insert_into(batch_results::table)
                    .values(values)
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            let state: String = batches::table
                .find(batch_id)
                .select(batches::state)
                .first(c)?;
            Ok::<_, StoreError>(Progress::of_held(&state))
        }))
    }

    /// Renews `runner`'s lease on a batch and says whether to go on.
    pub fn renew_batch(&self, batch_id: &str, runner: &str) -> Result<Progress, StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let held = diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::runner.eq(runner))
                    .filter(batches::state.eq_any(["running", "cancelled"])),
            )
            .set(batches::heartbeat_at.eq(&now))
            .execute(c)?;
            if held == 0 {
                return Ok(Progress::Lost);
            }
            let state: String = batches::table
                .find(batch_id)
                .select(batches::state)
                .first(c)?;
            Ok::<_, StoreError>(Progress::of_held(&state))
        }))
    }

    /// Ends a running batch held by `runner` as `state` (`done` or `failed`, with `error`).
    pub fn finish_batch(
        &self,
        batch_id: &str,
        runner: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| diesel::update(
            batches::table
                .find(batch_id)
                .filter(batches::runner.eq(runner))
                .filter(batches::state.eq("running"))
        )
        .set((
            batches::state.eq(state),
            batches::error.eq(error),
            batches::updated_at.eq(&now),
        ))
        .execute(c))?;
        Ok(())
    }

    /// Cancels a queued or running batch; returns its state afterwards (None: no such batch).
    pub fn cancel_batch(&self, batch_id: &str) -> Result<Option<BatchRow>, StoreError> {
        let now = now_text();
        {
            let mut conn = self.conn()?;
            with_conn!(&mut *conn, |c| diesel::update(
                batches::table
                    .find(batch_id)
                    .filter(batches::state.eq_any(["queued", "running"]))
            )
            .set((batches::state.eq("cancelled"), batches::updated_at.eq(&now),))
            .execute(c))?;
        }
        self.batch(batch_id)
    }

    /// Up to `limit` result rows after `after` (a position), in order.
    pub fn batch_results(
        &self,
        batch_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| batch_results::table
            .filter(batch_results::batch_id.eq(batch_id))
            .filter(batch_results::position.gt(after))
            .order(batch_results::position.asc())
            .limit(limit)
            .select((batch_results::position, batch_results::lines))
            .load(c))?)
    }

    /// The ids of the stored students, in id order, optionally of one school.
    pub fn student_ids(&self, school_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| {
            let mut q = students::table.select(students::student_id).into_boxed();
            if let Some(s) = school_id {
                q = q.filter(students::school_id.eq(s));
            }
            q.order(students::student_id.asc()).load::<String>(c)
        })?)
    }

    /// The stored records (JSON text) with ids from `first` to `last`, as `(id, record)`: one
    /// range scan of the key, cheaper than looking up each id of a stretch of the whole cohort.
    pub fn student_records_between(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| students::table
            .filter(students::student_id.ge(first))
            .filter(students::student_id.le(last))
            .select((students::student_id, students::record))
            .load(c))?)
    }

    /// Which of `ids` are stored (their records not read).
    pub fn stored_student_ids(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(LOOKUP_IDS) {
            let found: Vec<String> = with_conn!(&mut *conn, |c| students::table
                .filter(students::student_id.eq_any(part))
                .select(students::student_id)
                .load(c))?;
            out.extend(found);
        }
        Ok(out)
    }

    /// The stored records (JSON text) of `ids` that exist, as `(id, record)`, in no set order.
    pub fn student_records_of(&self, ids: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn()?;
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(LOOKUP_IDS) {
            let rows: Vec<(String, String)> = with_conn!(&mut *conn, |c| students::table
                .filter(students::student_id.eq_any(part))
                .select((students::student_id, students::record))
                .load(c))?;
            out.extend(rows);
        }
        Ok(out)
    }
}
