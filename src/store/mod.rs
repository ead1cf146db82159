//! The database behind one narrow interface: `Store`. Synchronous (diesel); the service calls
//! it from the blocking pool.

pub mod awards;
pub mod batches;
pub mod conn;
pub mod keys;
pub mod ledger;
pub mod policies;
pub mod reports;
pub mod schema;
pub mod sessions;
pub mod students;

use chrono::{DateTime, SecondsFormat, Utc};

pub use conn::Backend;
use conn::{DbConn, DbPool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (or the pool is exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A write would break an invariant the database guards (a changed policy version, ...).
    #[error("{0}")]
    Conflict(String),
    /// Stored data that no longer parses: never expected, reported rather than hidden.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A rule of the store's own broken (never the caller's doing).
    #[error("store invariant broken: {0}")]
    Invariant(String),
    /// A value that feeds a stored column or a hash could not be encoded.
    #[error("cannot encode a stored value: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Access to the database.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Now, as stored: RFC 3339 UTC with microseconds, so text order is time order.
pub fn now_text() -> String {
    timestamp_text(Utc::now())
}

pub fn timestamp_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

impl Store {
    /// Connects (SQLite file or PostgreSQL, from the URL) and applies pending migrations.
    pub fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let (pool, backend) = conn::connect(url, max_connections)?;
        let store = Self { pool, backend };
        store.migrate()?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn conn(&self) -> Result<DbConn, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        conn::migrate(&mut *self.conn()?)
    }

    /// Whether the database answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        self.conn()?
            .batch_execute("SELECT 1")
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}
