//! Use cases that combine the policy core and the store: previews, students, policies.
//! Async at the edges; the store and the engine run on the blocking pool.

pub mod access;
pub mod awards;
pub mod batches;
pub mod import;
pub mod incentives;
pub mod ledger;
pub mod policies;
pub mod preview;
pub mod reports;
pub mod sessions;
pub mod simulate;
pub mod students;

use std::sync::{Arc, RwLock};

use crate::config::Settings;
use crate::policy::{Evaluator, PolicyError, RecordError, Registry};
use crate::store::{self, Store, StoreError};

/// What a use case can fail with; the API maps each to one HTTP status. Failures of the layers
/// below keep their cause as `source`, so the log line of an internal error names it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    InvalidRecord(RecordError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    /// The caller's key may not do this (an author acting on another sponsor's policy).
    #[error("{0}")]
    Forbidden(String),
    /// A candidate policy version failed a check before publishing.
    #[error("{0}")]
    Refused(Box<crate::policy::publish::Refusal>),
    /// The request conflicts with the state of what it acts on (already revoked, a published
    /// version changed, ...).
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key sent again with a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything that should not happen: a database error, stored data that no longer reads, a
    /// broken invariant. Never the caller's fault.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxedError>,
    },
}

/// A cause kept behind an internal error.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An internal failure caused by `source`.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxedError>) -> Self {
        Self::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A broken invariant, with no underlying error.
    pub fn invariant(context: impl Into<String>) -> Self {
        Self::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// The message and every cause below it, for the log.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e),
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::internal("database", other),
        }
    }
}

impl From<serde_json::Error> for ServiceError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal("JSON encoding", e)
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("policy test cases fail, refusing to publish:\n{0}")]
    PolicyTests(String),
    #[error("cannot create the first access key: {0}")]
    FirstKey(String),
}

/// The service: the store and the policies in force. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    store: Store,
    registry: Arc<RwLock<Arc<Registry>>>,
    awards: awards::AwardQueue,
    key_cache: Arc<access::KeyCache>,
    session_cache: Arc<access::TrustCache<Arc<sessions::Session>>>,
    record_cache: Arc<access::TrustCache<Arc<students::StoredStudent>>>,
    /// Report and what-if cells under this many students are suppressed (minors' records).
    suppress_below: u64,
    /// Students per committed step of a batch.
    batch_chunk: usize,
    /// Wakes the batch runner when a batch is queued.
    batch_wake: Arc<tokio::sync::Notify>,
    /// Batches this process is working on (the reports' background evaluation waits for them).
    batches_running: Arc<std::sync::atomic::AtomicUsize>,
    /// The cohort as the reports last evaluated it.
    cohort: Arc<tokio::sync::Mutex<Option<Arc<reports::CohortFacts>>>>,
    /// One reload of the policies at a time, so a slower reload never replaces a newer one.
    refresh: Arc<std::sync::Mutex<()>>,
}

thread_local! {
    /// One engine per thread: sharing one engine, AST or record across threads measured slower
    /// than one thread (contention on their reference counts).
    static EVALUATOR: std::cell::RefCell<Evaluator> = std::cell::RefCell::new(Evaluator::default());
}

/// Runs `f` with this thread's evaluator.
pub fn with_evaluator<R>(f: impl FnOnce(&mut Evaluator) -> R) -> R {
    EVALUATOR.with(|e| f(&mut e.borrow_mut()))
}

/// Runs blocking work (database, engine) off the async workers.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ServiceError> + Send + 'static,
) -> Result<R, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::internal("background task failed", e))?
}

impl Service {
    /// Opens the store (migrating it), loads `rules/`, runs the rules' test cases, records new
    /// versions, and builds the registry from every recorded version.
    pub fn start(settings: &Settings) -> Result<Self, StartError> {
        let store = Store::open(&settings.database_url, settings.db_connections)?;
        let files = Registry::load_dir(&settings.rules_dir)?;
        let failures: Vec<String> = with_evaluator(|ev| crate::policy::tests::run_all(&files, ev))
            .into_iter()
            .filter(|r| !r.passed)
            .map(|r| r.to_string())
            .collect();
        if !failures.is_empty() {
            return Err(StartError::PolicyTests(failures.join("\n")));
        }
        let mut file_versions = Vec::new();
        for v in files.versions() {
            let tests = files
                .suites()
                .iter()
                .find(|s| s.policy == v.meta.id)
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("policy cases: {e}")))?;
            file_versions.push(store::policies::NewVersion {
                version: v,
                tests,
                published_by: None,
            });
        }
        // A file must fit beside the versions published over the API under the same rules as a
        // publication (period, sponsor), or the stored versions would no longer load.
        let stored = store.policy_versions()?;
        for new in &file_versions {
            match crate::policy::publish::fits(stored.iter().map(|s| &s.version), new.version) {
                // A changed source is refused below, by the store, with what to do about it.
                Ok(_) | Err(crate::policy::publish::Refusal::Changed(_)) => {}
                Err(e) => {
                    return Err(
                        PolicyError::Conflict(format!("{}: {e}", new.version.origin)).into(),
                    )
                }
            }
        }
        let added = store.record_policy_versions(&file_versions)?;
        tracing::info!(
            loaded = file_versions.len(),
            newly_recorded = added,
            "policies loaded from {}",
            settings.rules_dir.display()
        );
        if let Some(key) = access::ensure_first_key(&store)? {
            // Printed, not logged: the secret must not end up in log storage, and it is shown
            // only this once.
            eprintln!(
                "\n  No access keys existed, so an admin key was created. It is shown only now:\n\n      {}\n\n  Send it as `Authorization: Bearer <key>`; make more with `eligo keys create`.\n",
                key.secret
            );
        }
        let stored = store
            .policy_versions()?
            .into_iter()
            .map(|s| s.version)
            .collect();
        let registry = Registry::new(stored, files.suites().to_vec())?;
        Ok(Self {
            awards: awards::AwardQueue::start(store.clone()),
            key_cache: Default::default(),
            session_cache: Default::default(),
            record_cache: Default::default(),
            suppress_below: settings.suppress_below,
            batch_chunk: settings.batch_chunk as usize,
            batch_wake: Default::default(),
            batches_running: Default::default(),
            cohort: Default::default(),
            refresh: Default::default(),
            store,
            registry: Arc::new(RwLock::new(Arc::new(registry))),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The policies in force now (a snapshot; publishing swaps it).
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        let store = self.store.clone();
        blocking(move || store.ping().map_err(ServiceError::from)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store invariant broken is internal (never a conflict), and keeps its cause.
    #[test]
    fn store_errors_keep_their_cause_and_only_conflicts_are_conflicts() {
        let e = ServiceError::from(StoreError::Invariant("program p was not locked".into()));
        assert!(matches!(e, ServiceError::Internal { .. }));
        assert!(
            e.chain().contains("program p was not locked"),
            "{}",
            e.chain()
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(
            ServiceError::from(StoreError::Conflict("changed".into())),
            ServiceError::Conflict(_)
        ));
        assert!(matches!(
            ServiceError::from(StoreError::Unavailable("down".into())),
            ServiceError::Unavailable(_)
        ));
    }
}
