//! Cohort batches: a preview or an award run over many students, queued, worked through in
//! chunks by a runner (one per process), resumable after a restart.
//!
//! An award batch makes each award through the same transaction as `POST /v1/awards`
//! (`Store::award_batch`: once per student, budget, ledger) with the batch starter's key and an
//! idempotency key of (batch, student, policy), so a chunk redone after a crash replays the
//! decisions it had already recorded instead of making them twice. Only eligible decisions
//! become award requests: a batch asks "award everyone who qualifies", and a ledger holding a
//! denial for every student of a class who never qualified would bury the decisions that were
//! made (the batch's own results list the ineligible, with what is missing).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::access::{Caller, Role};
use super::policies::require_sponsor;
use super::simulate::cohort_threads;
use super::{blocking, with_evaluator, Service, ServiceError};
use crate::policy::{Decision, Outcome, PolicyVersion, Prepared, Student};
use crate::store::awards::{AwardJob, AwardOutcome, RecordedAward};
use crate::store::batches::{BatchRow, Claimed, NewBatch, Progress};

/// A runner that has not renewed its lease for this long is taken to have stopped. Runners
/// renew every [`RENEW`] whatever a chunk costs; the margin covers a busy machine and clocks
/// a little apart between instances.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a working runner renews its lease.
const RENEW: Duration = Duration::from_secs(1);
/// Failures of the database in a row after which a batch is given up as `failed`.
const ATTEMPTS: u32 = 3;
/// How often an idle runner looks for queued (or abandoned) batches.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Most students one batch may cover (the list is frozen in the batch's row).
pub const MAX_STUDENTS: usize = 1_000_000;

/// Preview or award.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// Evaluate only; writes nothing but the batch's results.
    Preview,
    /// Award every eligible student (each decision logged in the ledger).
    Award,
}

impl BatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preview => "preview",
            Self::Award => "award",
        }
    }
}

/// The keyword for every stored student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllStudents {
    All,
}

/// Which students: `"all"`, `{"school_id": "..."}`, or a list of student ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StudentSelection {
    All(AllStudents),
    School { school_id: String },
    Ids(Vec<String>),
}

impl<'de> Deserialize<'de> for StudentSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const EXPECTED: &str =
            r#"students must be "all", {"school_id": "..."} or a list of student ids"#;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "all" => Ok(Self::All(AllStudents::All)),
            serde_json::Value::Object(map) => match map.get("school_id") {
                Some(serde_json::Value::String(s)) if map.len() == 1 => Ok(Self::School {
                    school_id: s.clone(),
                }),
                _ => Err(D::Error::custom(EXPECTED)),
            },
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(D::Error::custom(EXPECTED)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Ids),
            _ => Err(D::Error::custom(EXPECTED)),
        }
    }
}

/// `POST /v1/batches` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct BatchRequest {
    pub mode: BatchMode,
    /// The policies (default: for a preview, every policy that concerns each student; for an
    /// award batch, every incentive the key may award).
    #[serde(default)]
    pub policy_ids: Option<Vec<String>>,
    /// Evaluation date, YYYY-MM-DD; default: today (UTC).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    pub students: StudentSelection,
}
crate::objects_only!(BatchRequest);

/// A batch's state and progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchView {
    pub batch_id: String,
    pub mode: BatchMode,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// The policies asked for (absent: every policy that concerns each student).
    pub policy_ids: Option<Vec<String>>,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    pub students: StudentSelection,
    /// Students in the batch (frozen when it was asked for).
    pub total: i64,
    /// Students worked through so far.
    pub done: i64,
    /// Result lines by outcome: `eligible`, `ineligible`, `error` (preview); `granted`,
    /// `denied`, `ineligible`, `error` (award).
    pub counts: BTreeMap<String, i64>,
    /// Why the batch failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The key that started it (its awards are recorded under this key).
    pub started_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl BatchView {
    fn of(row: BatchRow) -> Result<Self, ServiceError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ServiceError::invariant(format!("batch {} {what}: {e}", row.batch_id))
        };
        let mode = match row.mode.as_str() {
            "preview" => BatchMode::Preview,
            "award" => BatchMode::Award,
            other => return Err(bad("mode", &other)),
        };
        Ok(Self {
            mode,
            policy_ids: serde_json::from_str(&row.policy_ids).map_err(|e| bad("policies", &e))?,
            as_of: row.as_of.parse().map_err(|e| bad("as_of", &e))?,
            students: serde_json::from_str(&row.selection).map_err(|e| bad("students", &e))?,
            counts: serde_json::from_str(&row.counts).map_err(|e| bad("counts", &e))?,
            batch_id: row.batch_id,
            state: row.state,
            total: row.total,
            done: row.done,
            error: row.error,
            started_by: row.key_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Whether the batch will change no more.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed" | "cancelled")
    }
}

/// One result line: one decision about one student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchLine {
    pub student_id: String,
    pub policy_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Preview: `eligible`, `ineligible` or `error`. Award: `granted` or `denied` (recorded in
    /// the ledger), `ineligible` or `error` (not an award request, not logged).
    pub outcome: String,
    /// Why an award was denied (`already_awarded`, `budget_exhausted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub award_id: Option<String>,
    /// The ledger entry of an award decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_seq: Option<i64>,
    /// What the student is missing (codes), when not eligible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// The policy's error, or why the student could not be evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BatchLine {
    fn of(student_id: &str, d: &Decision) -> Self {
        Self {
            student_id: student_id.to_string(),
            policy_id: d.policy_id.clone(),
            version: Some(d.version),
            outcome: d.outcome.as_str().to_string(),
            reason_code: None,
            award_id: None,
            ledger_seq: None,
            missing: d.missing.iter().map(|m| m.code.clone()).collect(),
            error: d.error.clone(),
        }
    }

    fn recorded(mut self, r: &RecordedAward) -> Self {
        self.outcome = r.outcome.clone();
        self.reason_code = r.reason_code.clone();
        self.award_id = r.award_id.clone();
        self.ledger_seq = Some(r.seq);
        self
    }

    /// The CSV columns, in order.
    pub const CSV_HEADER: [&'static str; 9] = [
        "student_id",
        "policy_id",
        "version",
        "outcome",
        "reason_code",
        "award_id",
        "ledger_seq",
        "missing",
        "error",
    ];

    pub fn csv_record(&self) -> [String; 9] {
        [
            self.student_id.clone(),
            self.policy_id.clone(),
            self.version.map(|v| v.to_string()).unwrap_or_default(),
            self.outcome.clone(),
            self.reason_code.clone().unwrap_or_default(),
            self.award_id.clone().unwrap_or_default(),
            self.ledger_seq.map(|s| s.to_string()).unwrap_or_default(),
            self.missing.join(" "),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// A student's result lines, and the eligible decisions to award (with the record as
/// evaluated).
type Evaluated = (
    Vec<BatchLine>,
    Vec<(Decision, Arc<PolicyVersion>, Arc<str>)>,
);

/// Where a batch's time went.
#[derive(Debug, Default, Clone, Copy)]
struct Timings {
    /// Reading the records (beside the previous chunk's evaluation) ...
    read: Duration,
    /// ... and how long the work waited for them.
    read_waited: Duration,
    evaluate: Duration,
    award: Duration,
    /// Encoding and writing the results (beside the next chunk's evaluation).
    write: Duration,
}

/// The idempotency key of a batch's award: one per (batch, student, policy).
fn award_key(batch_id: &str, student_id: &str, policy_id: &str) -> String {
    format!("batch:{batch_id}:{student_id}:{policy_id}")
}

impl Service {
    /// Queues a batch for `caller`; answers with its state (queued).
    pub async fn create_batch(
        &self,
        caller: &Caller,
        request: BatchRequest,
    ) -> Result<BatchView, ServiceError> {
        let registry = self.registry();
        let as_of = request
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        match (request.mode, caller.role) {
            (BatchMode::Preview, Role::Admin | Role::Counselor | Role::Awarder) => {}
            (BatchMode::Award, Role::Admin | Role::Awarder) => {}
            (mode, role) => {
                return Err(ServiceError::Forbidden(format!(
                    "a {} key may not start {} batches",
                    role.as_str(),
                    mode.as_str()
                )))
            }
        }
        let policy_ids = match (&request.policy_ids, request.mode) {
            (Some(ids), _) if ids.is_empty() => {
                return Err(ServiceError::invalid(
                    "policy_ids",
                    "name at least one policy, or leave policy_ids out for every policy",
                ))
            }
            (Some(ids), mode) => {
                let mut seen = Vec::new();
                for id in ids {
                    let v = registry.in_effect(id, as_of).ok_or_else(|| {
                        if registry.contains(id) {
                            ServiceError::invalid(
                                "policy_ids",
                                format!("no version of {id} is in effect on {as_of}"),
                            )
                        } else {
                            ServiceError::UnknownPolicy(id.clone())
                        }
                    })?;
                    if mode == BatchMode::Award && !v.meta.kind.is_incentive() {
                        return Err(ServiceError::invalid(
                            "policy_ids",
                            format!("{id} is a requirement policy: it is never awarded"),
                        ));
                    }
                    // Awarders act on their own sponsor's programs only, in both modes.
                    if caller.role == Role::Awarder {
                        require_sponsor(caller, id, &v.meta.sponsor)?;
                    }
                    if !seen.contains(id) {
                        seen.push(id.clone());
                    }
                }
                Some(seen)
            }
            (None, BatchMode::Preview) if caller.role != Role::Awarder => None,
            (None, mode) => {
                let ids: Vec<String> = registry
                    .all_in_effect(as_of)
                    .filter(|v| mode == BatchMode::Preview || v.meta.kind.is_incentive())
                    .filter(|v| caller.may_act_for(&v.meta.sponsor))
                    .map(|v| v.meta.id.clone())
                    .collect();
                if ids.is_empty() {
                    return Err(ServiceError::invalid(
                        "policy_ids",
                        format!("no policy this key may act on is in effect on {as_of}"),
                    ));
                }
                Some(ids)
            }
        };
        let store = self.store().clone();
        let selection = request.students;
        let key_id = caller.key_id.clone();
        let row = blocking(move || {
            let student_ids = match &selection {
                StudentSelection::All(_) => store.student_ids(None)?,
                StudentSelection::School { school_id } => store.student_ids(Some(school_id))?,
                StudentSelection::Ids(ids) => {
                    if ids.is_empty() {
                        return Err(ServiceError::invalid("students", "the list is empty"));
                    }
                    let mut ids = ids.clone();
                    ids.sort();
                    ids.dedup();
                    if ids.len() > MAX_STUDENTS {
                        return Err(ServiceError::invalid(
                            "students",
                            format!("at most {MAX_STUDENTS} students per batch"),
                        ));
                    }
                    let found: std::collections::HashSet<String> =
                        store.stored_student_ids(&ids)?.into_iter().collect();
                    let unknown: Vec<&String> =
                        ids.iter().filter(|id| !found.contains(*id)).collect();
                    if let Some(first) = unknown.first() {
                        return Err(ServiceError::invalid(
                            "students",
                            format!(
                                "{} of the students are not stored, the first: {first}",
                                unknown.len()
                            ),
                        ));
                    }
                    ids
                }
            };
            if student_ids.len() > MAX_STUDENTS {
                return Err(ServiceError::invalid(
                    "students",
                    format!("at most {MAX_STUDENTS} students per batch: choose a school"),
                ));
            }
            Ok(store.create_batch(&NewBatch {
                batch_id: uuid::Uuid::new_v4().to_string(),
                mode: request.mode.as_str().into(),
                policy_ids,
                as_of: as_of.to_string(),
                selection: serde_json::to_string(&selection)?,
                student_ids,
                key_id,
            })?)
        })
        .await?;
        self.batch_wake.notify_one();
        BatchView::of(row)
    }

    /// A batch, for the key that started it (or an admin).
    pub async fn batch(
        &self,
        caller: &Caller,
        batch_id: String,
    ) -> Result<BatchView, ServiceError> {
        let store = self.store().clone();
        let row = blocking(move || {
            store.batch(&batch_id)?.ok_or(ServiceError::NotFound {
                what: "batch",
                id: batch_id,
            })
        })
        .await?;
        owned_by(caller, &row)?;
        BatchView::of(row)
    }

    /// Cancels a queued or running batch (results so far are kept). A batch that has ended is
    /// left as it is: cancelling is idempotent, and the answer's state says what happened.
    pub async fn cancel_batch(
        &self,
        caller: &Caller,
        batch_id: String,
    ) -> Result<BatchView, ServiceError> {
        self.batch(caller, batch_id.clone()).await?;
        let store = self.store().clone();
        let row = blocking(move || {
            store
                .cancel_batch(&batch_id)?
                .ok_or(ServiceError::NotFound {
                    what: "batch",
                    id: batch_id,
                })
        })
        .await?;
        BatchView::of(row)
    }

    /// Up to `limit` committed chunks' result lines (NDJSON, a line per decision) after the
    /// chunk at `after` (a page of the results); returns the text and the position of the last
    /// chunk read (None: nothing more yet).
    pub async fn batch_results(
        &self,
        batch_id: String,
        after: i64,
        limit: i64,
    ) -> Result<(String, Option<i64>), ServiceError> {
        let store = self.store().clone();
        blocking(move || {
            let rows = store.batch_results(&batch_id, after, limit)?;
            let last = rows.last().map(|(p, _)| *p);
            let text: String = rows.into_iter().map(|(_, t)| t).collect();
            Ok((text, last))
        })
        .await
    }

    /// Works through queued batches, and those whose runner stopped, until the runtime stops.
    pub async fn run_batches(self) {
        let runner = uuid::Uuid::new_v4().to_string();
        // Database failures in a row, by batch: a passing one (the database restarting, a lock
        // held too long) leaves the batch to be taken up again once its lease runs out.
        let mut failures: HashMap<String, u32> = HashMap::new();
        loop {
            let store = self.store().clone();
            let me = runner.clone();
            let claimed = blocking(move || {
                let stale =
                    chrono::Utc::now() - chrono::Duration::from_std(LEASE).unwrap_or_default();
                Ok(store.claim_batch(&me, stale)?)
            })
            .await;
            match claimed {
                Ok(Some(batch)) => {
                    let id = batch.row.batch_id.clone();
                    self.batches_running
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let worked = self.work(&runner, batch).await;
                    self.batches_running
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let Err(e) = worked else {
                        failures.remove(&id);
                        continue;
                    };
                    let tries = failures.entry(id.clone()).or_default();
                    *tries += 1;
                    if is_passing(&e) && *tries < ATTEMPTS {
                        tracing::warn!(batch = %id, error = %e.chain(), attempt = *tries,
                            "batch interrupted by the database; it resumes when its lease runs out");
                        continue;
                    }
                    failures.remove(&id);
                    tracing::error!(batch = %id, error = %e.chain(), "batch failed");
                    let store = self.store().clone();
                    let (me, message) = (runner.clone(), e.to_string());
                    if let Err(e) = blocking(move || {
                        Ok(store.finish_batch(&id, &me, "failed", Some(&message))?)
                    })
                    .await
                    {
                        tracing::error!(error = %e.chain(), "cannot record a batch's failure");
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e.chain(), "cannot look for batches"),
            }
            tokio::select! {
                _ = self.batch_wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }

    /// Works through one claimed batch from where its last committed chunk ended. A chunk's
    /// results are written while the next chunk is evaluated (the write waits on the disk more
    /// than on the processor); an award batch awards a chunk only after the one before is
    /// committed, so a cancelled batch awards nothing past the chunk it was cancelled in.
    async fn work(&self, runner: &str, batch: Claimed) -> Result<(), ServiceError> {
        let view = Arc::new(BatchView::of(batch.row)?);
        let ids = Arc::new(batch.student_ids);
        let mut counts = view.counts.clone();
        let mut done = view.done.max(0) as usize;
        tracing::info!(batch = %view.batch_id, total = ids.len(), from = done, "batch running");
        let started = std::time::Instant::now();
        let mut spent = Timings::default();
        // The lease is renewed on its own clock, however long a chunk takes.
        let renewing = {
            let (store, id, me) = (
                self.store().clone(),
                view.batch_id.clone(),
                runner.to_string(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW).await;
                    let (store, id, me) = (store.clone(), id.clone(), me.clone());
                    match blocking(move || Ok(store.renew_batch(&id, &me)?)).await {
                        Ok(Progress::Running) => {}
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e.chain(), "cannot renew a batch's lease")
                        }
                    }
                }
            })
        };
        let _stop_renewing = AbortOnDrop(renewing);
        let mut writing: Option<Commit> = None;
        let stop = |progress: Progress| match progress {
            Progress::Running => false,
            Progress::Cancelled => {
                tracing::info!(batch = %view.batch_id, "batch cancelled");
                true
            }
            Progress::Lost => {
                tracing::warn!(batch = %view.batch_id, "batch taken over by another runner");
                true
            }
        };
        // The next chunk's records are read while this one is evaluated.
        // A batch of every student reads each chunk as one stretch of the key (its ids are in
        // order); others look their students up (a school's are spread over the whole key).
        let stretch = matches!(view.students, StudentSelection::All(_));
        let read = |range: std::ops::Range<usize>| {
            let (store, ids) = (self.store().clone(), ids.clone());
            tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                let part = &ids[range];
                let rows = match (stretch, part.first(), part.last()) {
                    (true, Some(first), Some(last)) => {
                        store.student_records_between(first, last)?
                    }
                    _ => store.student_records_of(part)?,
                };
                let records: HashMap<String, String> = rows.into_iter().collect();
                Ok::<_, ServiceError>((Arc::new(records), t.elapsed()))
            })
        };
        let mut reading = Some(read(done..(done + self.batch_chunk).min(ids.len())));
        while done < ids.len() {
            let end = (done + self.batch_chunk).min(ids.len());
            let waited = std::time::Instant::now();
            let (records, took) = match reading.take() {
                Some(r) => r
                    .await
                    .map_err(|e| ServiceError::internal("a batch read failed", e))??,
                None => return Err(ServiceError::invariant("a batch chunk was not read")),
            };
            spent.read += took;
            spent.read_waited += waited.elapsed();
            if end < ids.len() {
                reading = Some(read(end..(end + self.batch_chunk).min(ids.len())));
            }
            let mut evaluated = self
                .evaluate_chunk(&view, &ids, done..end, records, &mut spent)
                .await?;
            if let Some(w) = writing.take() {
                if stop(written(w, &mut spent).await?) {
                    return Ok(());
                }
            }
            if view.mode == BatchMode::Award {
                // Just before awarding: still this runner's, not cancelled, and the key that
                // started it still in force.
                let (store, id, me) = (
                    self.store().clone(),
                    view.batch_id.clone(),
                    runner.to_string(),
                );
                let key = view.started_by.clone();
                let (progress, key_in_force) =
                    blocking(move || Ok((store.renew_batch(&id, &me)?, store.key_in_force(&key)?)))
                        .await?;
                if stop(progress) {
                    return Ok(());
                }
                if !key_in_force {
                    return Err(ServiceError::Forbidden(
                        "the key that started this batch was revoked; nothing more is awarded"
                            .into(),
                    ));
                }
                let (service, view_c, ids_c) = (self.clone(), view.clone(), ids.clone());
                let awarding = std::time::Instant::now();
                evaluated = blocking(move || {
                    service.award_chunk(&view_c, &ids_c[done..end], &mut evaluated)?;
                    Ok(evaluated)
                })
                .await?;
                spent.award += awarding.elapsed();
            }
            for (lines, _) in &evaluated {
                for l in lines {
                    *counts.entry(l.outcome.clone()).or_default() += 1;
                }
            }
            let (store, id, me) = (
                self.store().clone(),
                view.batch_id.clone(),
                runner.to_string(),
            );
            let counts_text = serde_json::to_string(&counts)?;
            let first = done;
            // Encoded and written off the async workers, beside the next chunk's evaluation.
            writing = Some(tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                // One row per chunk, its lines as NDJSON: a hundred rows for a class of 100,000
                // rather than 100,000 (the index and the disk feel the difference), and the
                // NDJSON answer is the stored text.
                let mut text = Vec::with_capacity(evaluated.len() * 400);
                for (lines, _) in &evaluated {
                    for l in lines {
                        serde_json::to_writer(&mut text, l)?;
                        text.push(b'\n');
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|e| ServiceError::internal("encoding batch results", e))?;
                let rows = [(first as i64, text)];
                let progress = store.commit_chunk(&id, &me, &rows, end as i64, &counts_text)?;
                Ok((progress, t.elapsed()))
            }));
            done = end;
        }
        if let Some(w) = writing.take() {
            if stop(written(w, &mut spent).await?) {
                return Ok(());
            }
        }
        let store = self.store().clone();
        let (id, me) = (view.batch_id.clone(), runner.to_string());
        blocking(move || Ok(store.finish_batch(&id, &me, "done", None)?)).await?;
        tracing::info!(
            batch = %view.batch_id,
            ms = started.elapsed().as_millis() as u64,
            read_ms = spent.read.as_millis() as u64,
            read_waited_ms = spent.read_waited.as_millis() as u64,
            evaluate_ms = spent.evaluate.as_millis() as u64,
            award_ms = spent.award.as_millis() as u64,
            write_ms = spent.write.as_millis() as u64,
            "batch done (reads and writes overlap evaluation)"
        );
        Ok(())
    }

    /// Evaluates a chunk's records on every core: one task per core on the
    /// blocking pool, whose threads live on, and with them their compiled policies (a thread of
    /// its own per chunk would compile every policy again for every chunk).
    async fn evaluate_chunk(
        &self,
        batch: &Arc<BatchView>,
        ids: &Arc<Vec<String>>,
        range: std::ops::Range<usize>,
        records: Arc<HashMap<String, String>>,
        spent: &mut Timings,
    ) -> Result<Vec<Evaluated>, ServiceError> {
        let evaluating = std::time::Instant::now();
        let registry = self.registry();
        let versions: Arc<Vec<Arc<PolicyVersion>>> = Arc::new(match &batch.policy_ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| registry.in_effect(id, batch.as_of).cloned())
                .collect(),
            None => registry.all_in_effect(batch.as_of).cloned().collect(),
        });
        let per = range.len().div_ceil(cohort_threads()).max(1);
        let mut tasks = Vec::new();
        let mut start = range.start;
        while start < range.end {
            let stop = (start + per).min(range.end);
            let (batch, ids, records, versions) = (
                batch.clone(),
                ids.clone(),
                records.clone(),
                versions.clone(),
            );
            tasks.push(tokio::task::spawn_blocking(move || {
                ids[start..stop]
                    .iter()
                    .map(|id| evaluate_student(&batch, &versions, records.get(id), id))
                    .collect::<Vec<Evaluated>>()
            }));
            start = stop;
        }
        let mut out = Vec::with_capacity(range.len());
        for t in tasks {
            out.extend(
                t.await
                    .map_err(|e| ServiceError::internal("a batch worker failed", e))?,
            );
        }
        spent.evaluate += evaluating.elapsed();
        Ok(out)
    }

    /// Awards a chunk's eligible decisions (one group-committed transaction, retried when the
    /// database aborts it for contention) and writes the outcomes into their lines.
    fn award_chunk(
        &self,
        batch: &BatchView,
        ids: &[String],
        evaluated: &mut [Evaluated],
    ) -> Result<(), ServiceError> {
        let mut jobs = Vec::new();
        let mut at = Vec::new();
        for (i, (lines, eligible)) in evaluated.iter_mut().enumerate() {
            for (decision, policy, record) in eligible.drain(..) {
                let key = award_key(&batch.batch_id, &ids[i], &policy.meta.id);
                let line = lines
                    .iter()
                    .position(|l| l.policy_id == policy.meta.id)
                    .ok_or_else(|| ServiceError::invariant("an award without its line"))?;
                at.push((i, line));
                jobs.push(AwardJob {
                    key_id: batch.started_by.clone(),
                    request_hash: hex::encode(Sha256::digest(key.as_bytes())),
                    idempotency_key: key,
                    request_id: format!("batch:{}", batch.batch_id),
                    policy,
                    student_id: ids[i].clone(),
                    record: record.to_string(),
                    as_of: batch.as_of,
                    decision,
                });
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let outcome = super::awards::record_awards(self.store(), &jobs)?;
        for ((i, line), result) in at.into_iter().zip(outcome) {
            let l = &mut evaluated[i].0[line];
            match result {
                Ok(AwardOutcome::Recorded(r) | AwardOutcome::Replayed(r)) => {
                    *l = l.clone().recorded(&r)
                }
                // One award that could not be recorded is that student's line, not the batch's
                // end: the others stand, and the line says why this one did not.
                Ok(AwardOutcome::KeyReused) => {
                    l.outcome = "error".into();
                    l.error =
                        Some("this award's idempotency key was used for another request".into());
                }
                Err(e) => {
                    tracing::error!(error = %e, student = %l.student_id, "a batch award failed");
                    l.outcome = "error".into();
                    l.error = Some(format!("the award could not be recorded: {e}"));
                }
            }
        }
        Ok(())
    }
}

/// One student's lines in a batch (and, in an award batch, the decisions to award).
fn evaluate_student(
    batch: &BatchView,
    versions: &[Arc<PolicyVersion>],
    record: Option<&String>,
    id: &str,
) -> Evaluated {
    let failed = |message: String| -> Evaluated {
        let lines = versions
            .iter()
            .map(|v| BatchLine {
                student_id: id.to_string(),
                policy_id: v.meta.id.clone(),
                version: None,
                outcome: "error".into(),
                reason_code: None,
                award_id: None,
                ledger_seq: None,
                missing: Vec::new(),
                error: Some(message.clone()),
            })
            .collect();
        (lines, Vec::new())
    };
    let Some(text) = record else {
        return failed("the record was deleted after the batch was asked for".into());
    };
    let student = match Student::from_json(text) {
        Ok(s) => s,
        Err(e) => return failed(format!("the stored record does not read: {e}")),
    };
    let every = batch.policy_ids.is_none();
    let record: Arc<str> = Arc::from(text.as_str());
    let prepared = Prepared::new(student);
    with_evaluator(|ev| {
        let mut lines = Vec::with_capacity(versions.len());
        let mut eligible = Vec::new();
        for v in versions {
            if every && !v.meta.concerns(prepared.student()) {
                continue;
            }
            let d = ev.evaluate(v, &prepared, batch.as_of);
            lines.push(BatchLine::of(id, &d));
            if batch.mode == BatchMode::Award && d.outcome == Outcome::Eligible {
                eligible.push((d, v.clone(), record.clone()));
            }
        }
        (lines, eligible)
    })
}

/// A chunk's write under way: what the runner learns from it, and how long it took.
type Commit = tokio::task::JoinHandle<Result<(Progress, Duration), ServiceError>>;

/// Waits for a chunk's write; counts its time.
async fn written(w: Commit, spent: &mut Timings) -> Result<Progress, ServiceError> {
    let (progress, took) = w
        .await
        .map_err(|e| ServiceError::internal("a batch write failed", e))??;
    spent.write += took;
    Ok(progress)
}

/// Aborts a task when dropped (the lease renewal ends with the work, however it ends).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a batch's failure may pass: the database unreachable, or a transaction it aborted.
fn is_passing(e: &ServiceError) -> bool {
    match e {
        ServiceError::Unavailable(_) => true,
        ServiceError::Internal { .. } => {
            let chain = e.chain();
            [
                "database is locked",
                "deadlock detected",
                "could not serialize",
                "connection",
            ]
            .iter()
            .any(|m| chain.contains(m))
        }
        _ => false,
    }
}

/// Refuses a batch to anyone but the key that started it and admins.
fn owned_by(caller: &Caller, row: &BatchRow) -> Result<(), ServiceError> {
    if caller.role == Role::Admin || caller.key_id == row.key_id {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "this batch was started by another key: only that key and admins may see it".into(),
        ))
    }
}
