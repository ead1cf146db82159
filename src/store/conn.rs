//! Connections: SQLite or PostgreSQL chosen from the URL, pooled with r2d2, migrated at start.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::StoreError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Either backend behind one connection type. PostgreSQL first: SQLite accepts any string.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs the same diesel code against whichever concrete connection is inside, so each branch
/// is type-checked against its own backend (upserts, locking) while the source stays single.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::conn::AnyConnection::Postgresql($c) => $body,
            $crate::store::conn::AnyConnection::Sqlite($c) => $body,
        }
    };
}

pub type DbPool = Pool<ConnectionManager<AnyConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<AnyConnection>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Which backend a URL names, and the string diesel should connect with.
pub fn parse_url(url: &str) -> (Backend, String) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Backend::Postgres, url.to_string())
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        (Backend::Sqlite, path.to_string())
    }
}

/// SQLite settings applied to every pooled connection: WAL so readers never wait for the
/// writer, a busy timeout instead of immediate "database is locked", foreign keys on, and
/// synchronous=FULL so a committed transaction survives a crash of the process or the machine.
#[derive(Debug)]
struct SqliteSettings;

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool for the URL (nothing is created on PostgreSQL; a missing SQLite file is).
pub fn connect(url: &str, max_size: u32) -> Result<(DbPool, Backend), StoreError> {
    let (backend, target) = parse_url(url);
    // Check the URL once with a direct connection so a typo gives a clear error at start.
    match backend {
        Backend::Postgres => PgConnection::establish(&target).map(|_| ()),
        Backend::Sqlite => SqliteConnection::establish(&target).map(|_| ()),
    }
    .map_err(|e| StoreError::Unavailable(format!("cannot connect to the database: {e}")))?;
    let manager = ConnectionManager::<AnyConnection>::new(target);
    let pool = Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(SqliteSettings))
        .build(manager)
        .map_err(|e| StoreError::Unavailable(format!("cannot open a connection pool: {e}")))?;
    Ok((pool, backend))
}

/// Applies pending migrations; returns the names of those applied.
pub fn migrate(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|m| m.to_string()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use diesel::sql_types::{BigInt, Text};
    use diesel::{QueryableByName, RunQueryDsl};

    use super::*;

    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }

    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }

    #[test]
    fn every_pooled_sqlite_connection_has_wal_busy_timeout_foreign_keys_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pragmas.db").display());
        let (pool, backend) = connect(&url, 2).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        // Both connections of the pool, not only the first.
        let conns = [pool.get().unwrap(), pool.get().unwrap()];
        for mut conn in conns {
            let AnyConnection::Sqlite(c) = &mut *conn else {
                panic!("expected SQLite");
            };
            let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
                .get_result(c)
                .unwrap();
            assert_eq!(mode.journal_mode, "wal");
            let number = |c: &mut SqliteConnection, pragma: &str| {
                diesel::sql_query(format!("SELECT {pragma} AS value FROM pragma_{pragma}"))
                    .get_result::<Number>(c)
                    .unwrap()
                    .value
            };
            assert_eq!(number(c, "foreign_keys"), 1);
            assert_eq!(number(c, "synchronous"), 2, "2 is FULL");
            let timeout: Number =
                diesel::sql_query("SELECT timeout AS value FROM pragma_busy_timeout")
                    .get_result(c)
                    .unwrap();
            assert_eq!(timeout.value, 10_000);
        }
    }

    /// Keys recorded before idempotency pointed at the ledger keep answering: each is carried
    /// over with the entry recorded under it; a key with no entry (never expected) is dropped.
    #[test]
    fn the_idempotency_upgrade_points_old_keys_at_their_ledger_entries() {
        use diesel::connection::SimpleConnection;
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        for _ in 0..4 {
            c.run_next_migration(SQLITE_MIGRATIONS).unwrap();
        }
        let entry = |seq: i64, key: &str| {
            format!(
                "INSERT INTO ledger (seq, policy_id, chain_seq, kind, recorded_at, key_id, \
                 request_id, idempotency_key, student_id, policy_version, policy_hash, \
                 eligo_version, rhai_version, as_of, record, outcome, evaluation, award, \
                 amount_cents, prev_hash, entry_hash) VALUES ({seq}, 'p', {seq}, 'decision', \
                 't', 'k1', 'r', '{key}', 's', 1, 'h', 'e', 'r', '2024-06-01', '{{}}', \
                 'denied', '{{}}', '{{}}', 0, 'x', 'y');"
            )
        };
        c.batch_execute(&format!(
            "{}{}{}
             INSERT INTO idempotency VALUES ('k1', 'a', 'ha', 201, '{{}}', 't1');
             INSERT INTO idempotency VALUES ('k1', 'b', 'hb', 201, '{{}}', 't2');
             INSERT INTO idempotency VALUES ('k1', 'orphan', 'ho', 201, '{{}}', 't3');",
            entry(1, "a"),
            entry(2, "b"),
            entry(3, "a"),
        ))
        .unwrap();
        c.run_pending_migrations(SQLITE_MIGRATIONS).unwrap();
        #[derive(QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = Text)]
            idempotency_key: String,
            #[diesel(sql_type = BigInt)]
            ledger_seq: i64,
        }
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT idempotency_key, ledger_seq FROM idempotency ORDER BY idempotency_key",
        )
        .load(&mut c)
        .unwrap();
        let seqs: Vec<(&str, i64)> = rows
            .iter()
            .map(|r| (r.idempotency_key.as_str(), r.ledger_seq))
            .collect();
        assert_eq!(seqs, [("a", 3), ("b", 2)]);
    }
}
