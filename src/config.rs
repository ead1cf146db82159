//! Settings for the service, from flags and ELIGO_* environment variables.

use std::path::PathBuf;

use clap::Args;

/// Bodies larger than this are refused with 413 (imports have their own, larger limit).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
pub const DEFAULT_MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database URL: sqlite://FILE (default) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "ELIGO_DATABASE_URL", default_value = "sqlite://eligo.db")]
    pub database_url: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "ELIGO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Folder of policy scripts (*.rhai) and their test cases (*.tests.json).
    #[arg(long, env = "ELIGO_RULES_DIR", default_value = "rules")]
    pub rules_dir: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "ELIGO_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "ELIGO_WORKERS")]
    pub workers: Option<usize>,
    /// Largest request body accepted, in bytes (imports excepted).
    #[arg(long, env = "ELIGO_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Largest import body accepted, in bytes.
    #[arg(long, env = "ELIGO_MAX_IMPORT_BYTES", default_value_t = DEFAULT_MAX_IMPORT_BYTES)]
    pub max_import_bytes: usize,
    /// Database connections in the pool.
    #[arg(long, env = "ELIGO_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,
}

impl Settings {
    /// Defaults for a given database and rules folder (tests and embedding).
    pub fn new(database_url: impl Into<String>, rules_dir: impl Into<PathBuf>) -> Self {
        Self {
            database_url: database_url.into(),
            bind: "127.0.0.1:0".into(),
            rules_dir: rules_dir.into(),
            log_json: false,
            workers: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            db_connections: 8,
        }
    }
}
