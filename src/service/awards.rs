//! Awards, revocations, budgets and the ledger.
//!
//! An award request is evaluated first (outside any transaction), then queued to this
//! process's award writer: one thread that takes every queued request, decides and records them
//! in one database transaction (group commit) and answers each. Exactness does not depend on the
//! writer being alone: the transaction locks the program row, so several processes sharing one
//! PostgreSQL database stay exact too.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use utoipa::ToSchema;

use super::{blocking, with_evaluator, Service, ServiceError};
use crate::policy::{Award, Decision, Outcome, Prepared, Student};
use crate::store::awards::{AwardJob, AwardOutcome, Program, RecordedAward, RevokeRefusal};
use crate::store::{Store, StoreError};

/// Most awards decided in one transaction.
const MAX_BATCH: usize = 128;
/// Idempotency keys are kept this long (at least 24 hours is promised).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who is asking, for the ledger.
#[derive(Debug, Clone)]
pub struct Actor {
    pub key_id: String,
    pub request_id: String,
}

/// `POST /v1/awards` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct AwardRequest {
    pub student_id: String,
    pub policy_id: String,
    /// Evaluation date (default: today, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
}
crate::objects_only!(AwardRequest, Serialize);

/// Where the decision sits in the ledger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerRef {
    pub seq: i64,
    pub entry_hash: String,
    pub recorded_at: String,
}

/// The response to an award request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AwardResponse {
    /// `granted` or `denied`.
    pub decision: String,
    /// Why it was denied: `ineligible`, `already_awarded`, `budget_exhausted`, `policy_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The award's id, when granted (use it to revoke).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub award_id: Option<String>,
    pub policy_id: String,
    pub student_id: String,
    pub ledger: LedgerRef,
    /// The evaluation the decision rests on, exactly as the ledger holds it.
    #[schema(value_type = Decision)]
    pub evaluation: Box<RawValue>,
}

impl AwardResponse {
    /// The response to a recorded decision: the same bytes the first time and on every replay,
    /// since both are read from what the ledger holds.
    fn of(r: RecordedAward) -> Result<Self, ServiceError> {
        Ok(Self {
            decision: r.outcome,
            reason_code: r.reason_code,
            award_id: r.award_id,
            policy_id: r.policy_id,
            student_id: r.student_id,
            ledger: LedgerRef {
                seq: r.seq,
                entry_hash: r.entry_hash,
                recorded_at: r.recorded_at,
            },
            evaluation: RawValue::from_string(r.evaluation)
                .map_err(|e| ServiceError::internal("stored evaluation unreadable", e))?,
        })
    }
}

/// The answer to an award request.
#[derive(Debug)]
pub struct AwardReceipt {
    pub response: AwardResponse,
    /// Whether this repeats an earlier request's decision (same idempotency key and body).
    pub replayed: bool,
}

/// A program's budget limits: `total_cents` for scholarships, `max_awards` for waivers.
/// Absent limits mean unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct BudgetLimits {
    #[serde(default)]
    #[schema(minimum = 0)]
    pub total_cents: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub max_awards: Option<i64>,
}
crate::objects_only!(BudgetLimits, Serialize);

/// A recorded revocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revocation {
    pub award_id: String,
    pub policy_id: String,
    pub revoked: bool,
    pub ledger: LedgerRef,
}

type Reply = oneshot::Sender<Result<AwardReceipt, ServiceError>>;

/// The queue in front of this process's award writer.
#[derive(Clone)]
pub struct AwardQueue {
    tx: mpsc::Sender<(AwardJob, Reply)>,
}

/// What the writer answers for one job.
fn receipt(outcome: AwardOutcome) -> Result<AwardReceipt, ServiceError> {
    let (recorded, replayed) = match outcome {
        AwardOutcome::Recorded(r) => (r, false),
        AwardOutcome::Replayed(r) => (r, true),
        AwardOutcome::KeyReused => return Err(ServiceError::IdempotencyKeyReused),
    };
    Ok(AwardReceipt {
        response: AwardResponse::of(recorded)?,
        replayed,
    })
}

impl AwardQueue {
    /// Starts the writer thread for `store`.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel::<(AwardJob, Reply)>();
        let spawned = std::thread::Builder::new()
            .name("eligo-award-writer".into())
            .spawn(move || writer(store, rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the award writer");
        }
        Self { tx }
    }

    async fn submit(&self, job: AwardJob) -> Result<AwardReceipt, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((job, reply))
            .map_err(|_| ServiceError::invariant("the award writer has stopped"))?;
        answer
            .await
            .map_err(|_| ServiceError::invariant("the award writer dropped a request"))?
    }
}

/// Decides and records `jobs` in one transaction, run again (up to three more times) when the
/// database aborts it to resolve contention: the award writer's and the award batches' way in.
pub(crate) fn record_awards(
    store: &Store,
    jobs: &[AwardJob],
) -> Result<Vec<Result<AwardOutcome, StoreError>>, StoreError> {
    let mut outcome = store.award_batch(jobs);
    for _ in 0..3 {
        match &outcome {
            Err(e) if crate::store::awards::is_retryable(e) => {
                tracing::warn!(error = %e, "award transaction aborted by the database; retrying");
                outcome = store.award_batch(jobs);
            }
            _ => break,
        }
    }
    outcome
}

fn writer(store: Store, rx: mpsc::Receiver<(AwardJob, Reply)>) {
    let mut last_sweep: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let jobs: Vec<AwardJob> = batch.iter().map(|(j, _)| j.clone()).collect();
        match record_awards(&store, &jobs) {
            Ok(results) => {
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(ServiceError::from).and_then(receipt));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, awards = jobs.len(), "award transaction failed");
                // Every award of the batch failed for the same cause, which each keeps.
                let unavailable = matches!(e, StoreError::Unavailable(_));
                let cause = std::sync::Arc::new(e);
                for (_, reply) in batch {
                    let _ = reply.send(Err(if unavailable {
                        ServiceError::Unavailable(StoreError::Unavailable(cause.to_string()))
                    } else {
                        ServiceError::internal("award transaction failed", cause.clone())
                    }));
                }
            }
        }
        if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_sweep = Some(Instant::now());
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(IDEMPOTENCY_RETENTION).unwrap_or_default();
            if let Err(e) = store.sweep_idempotency(&crate::store::timestamp_text(cutoff)) {
                tracing::warn!(error = %e, "idempotency sweep failed");
            }
        }
    }
}

/// A program's budget as shown to callers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    pub policy_id: String,
    /// Money limit, for scholarships (absent: unlimited).
    pub total_cents: Option<i64>,
    /// Count limit, for waivers (absent: unlimited).
    pub max_awards: Option<i64>,
    pub committed_cents: i64,
    pub committed_awards: i64,
    pub remaining_cents: Option<i64>,
    pub remaining_awards: Option<i64>,
}

impl BudgetView {
    pub(crate) fn new(policy_id: &str, p: Option<Program>) -> Self {
        let (total, max, cents, count) = p.map_or((None, None, 0, 0), |p| {
            (
                p.budget_total_cents,
                p.budget_max_awards,
                p.committed_cents,
                p.committed_awards,
            )
        });
        Self {
            policy_id: policy_id.to_string(),
            total_cents: total,
            max_awards: max,
            committed_cents: cents,
            committed_awards: count,
            remaining_cents: total.map(|t| (t - cents).max(0)),
            remaining_awards: max.map(|m| (m - count).max(0)),
        }
    }
}

/// The outcome of replaying a ledger entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayResult {
    pub seq: i64,
    /// Whether the replayed evaluation has the stored outcome and reasons.
    pub matches: bool,
    pub stored_outcome: Outcome,
    pub replayed_outcome: Outcome,
    pub replayed: Decision,
}

impl Service {
    /// Evaluates the stored student and queues the decision for recording.
    pub async fn award(
        &self,
        request: AwardRequest,
        idempotency_key: String,
        actor: Actor,
    ) -> Result<AwardReceipt, ServiceError> {
        let request_hash = hex::encode(Sha256::digest(serde_json::to_string(&request)?.as_bytes()));
        let as_of = request
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let registry = self.registry();
        if !registry.contains(&request.policy_id) {
            return Err(ServiceError::NotFound {
                what: "policy",
                id: request.policy_id,
            });
        }
        if registry
            .versions_of(&request.policy_id)
            .any(|v| v.meta.kind == crate::policy::registry::PolicyKind::Requirement)
        {
            return Err(ServiceError::invalid(
                "policy_id",
                format!(
                    "{} is a requirement policy: it is never awarded",
                    request.policy_id
                ),
            ));
        }
        let policy = registry
            .in_effect(&request.policy_id, as_of)
            .cloned()
            .ok_or_else(|| {
                ServiceError::invalid(
                    "as_of",
                    format!(
                        "no version of {} is in effect on {as_of}",
                        request.policy_id
                    ),
                )
            })?;
        let store = self.store().clone();
        let student_id = request.student_id.clone();
        let (student, decision) = {
            let policy = policy.clone();
            blocking(move || {
                let student = store
                    .get_student(&student_id)?
                    .ok_or(ServiceError::NotFound {
                        what: "student",
                        id: student_id,
                    })?
                    .student;
                let prepared = Prepared::new(student.clone());
                let decision = with_evaluator(|ev| ev.evaluate(&policy, &prepared, as_of));
                Ok((student, decision))
            })
            .await?
        };
        let job = AwardJob {
            key_id: actor.key_id,
            idempotency_key,
            request_hash,
            request_id: actor.request_id,
            policy,
            student_id: student.student_id.clone(),
            record: serde_json::to_string(&student)?,
            as_of,
            decision,
        };
        self.awards.submit(job).await
    }

    pub async fn revoke(
        &self,
        award_id: String,
        reason: String,
        actor: Actor,
    ) -> Result<Revocation, ServiceError> {
        if reason.trim().is_empty() || reason.chars().count() > 1000 {
            return Err(ServiceError::invalid("reason", "must be 1-1000 characters"));
        }
        let store = self.store().clone();
        blocking(move || {
            match store.revoke_award(&award_id, &reason, &actor.key_id, &actor.request_id)? {
                Ok(r) => Ok(Revocation {
                    award_id,
                    policy_id: r.policy_id,
                    revoked: true,
                    ledger: LedgerRef {
                        seq: r.seq,
                        entry_hash: r.entry_hash,
                        recorded_at: r.recorded_at,
                    },
                }),
                Err(RevokeRefusal::NotFound) => Err(ServiceError::NotFound {
                    what: "award",
                    id: award_id,
                }),
                Err(RevokeRefusal::AlreadyRevoked) => Err(ServiceError::Conflict(format!(
                    "award {award_id} is already revoked"
                ))),
            }
        })
        .await
    }

    pub async fn set_budget(
        &self,
        policy_id: String,
        limits: BudgetLimits,
    ) -> Result<BudgetView, ServiceError> {
        let registry = self.registry();
        let Some(version) = registry.versions_of(&policy_id).last() else {
            return Err(ServiceError::NotFound {
                what: "policy",
                id: policy_id,
            });
        };
        match (&version.meta.award, limits.total_cents, limits.max_awards) {
            (_, None, None) => {
                return Err(ServiceError::invalid(
                    "budget",
                    "give total_cents or max_awards",
                ))
            }
            (None, _, _) => {
                return Err(ServiceError::invalid(
                    "policy_id",
                    "a requirement policy is never awarded: it has no budget",
                ))
            }
            (Some(Award::TuitionWaiver { .. }), Some(_), _) => {
                return Err(ServiceError::invalid(
                    "total_cents",
                    "a tuition waiver has no money amount: use max_awards",
                ))
            }
            _ => {}
        }
        for (field, v) in [
            ("total_cents", limits.total_cents),
            ("max_awards", limits.max_awards),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(ServiceError::invalid(field, "must not be negative"));
            }
        }
        let store = self.store().clone();
        blocking(move || {
            let p = store.set_budget(
                &policy_id,
                crate::store::awards::BudgetLimits {
                    total_cents: limits.total_cents,
                    max_awards: limits.max_awards,
                },
            )?;
            Ok(BudgetView::new(&policy_id, Some(p)))
        })
        .await
    }

    pub async fn budget(&self, policy_id: String) -> Result<BudgetView, ServiceError> {
        if !self.registry().contains(&policy_id) {
            return Err(ServiceError::NotFound {
                what: "policy",
                id: policy_id,
            });
        }
        let store = self.store().clone();
        blocking(move || {
            let p = store.program(&policy_id)?;
            Ok(BudgetView::new(&policy_id, p))
        })
        .await
    }

    /// Re-evaluates a decision entry's stored record with its stored policy version.
    pub async fn replay(&self, seq: i64) -> Result<ReplayResult, ServiceError> {
        let store = self.store().clone();
        let registry = self.registry();
        blocking(move || {
            let entry = store.ledger_entry(seq)?.ok_or(ServiceError::NotFound {
                what: "ledger entry",
                id: seq.to_string(),
            })?;
            let version = registry
                .version(&entry.policy_id, entry.policy_version as u32)
                .filter(|v| v.hash == entry.policy_hash)
                .cloned()
                .ok_or_else(|| {
                    ServiceError::Conflict(format!(
                        "policy {} version {} with hash {} is no longer available",
                        entry.policy_id, entry.policy_version, entry.policy_hash
                    ))
                })?;
            let stored: Decision = serde_json::from_str(&entry.evaluation)
                .map_err(|e| ServiceError::internal("stored evaluation unreadable", e))?;
            let student = Student::from_json(&entry.record)
                .map_err(|e| ServiceError::internal("stored record unreadable", e))?;
            let as_of: NaiveDate = entry
                .as_of
                .parse()
                .map_err(|e| ServiceError::internal("stored as_of unreadable", e))?;
            let replayed =
                with_evaluator(|ev| ev.evaluate(&version, &Prepared::new(student), as_of));
            let matches = replayed.outcome == stored.outcome
                && replayed.reasons == stored.reasons
                && replayed.missing == stored.missing
                && replayed.payee == stored.payee;
            Ok(ReplayResult {
                seq,
                matches,
                stored_outcome: stored.outcome,
                replayed_outcome: replayed.outcome,
                replayed,
            })
        })
        .await
    }
}
