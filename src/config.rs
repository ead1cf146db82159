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
    /// Mark the pages' cookies `Secure`: set it when a TLS proxy serves eligo (requests that
    /// arrive over TLS get `Secure` cookies anyway).
    #[arg(long, env = "ELIGO_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,
    /// Groups of fewer students than this are suppressed in what-ifs and reports (the records
    /// are minors'); at least 1.
    #[arg(long, env = "ELIGO_SUPPRESS_BELOW", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub suppress_below: u64,
    /// Students a batch works through per committed step: its progress, and how much a
    /// restart redoes.
    #[arg(long, env = "ELIGO_BATCH_CHUNK", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_chunk: u64,
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
            secure_cookies: false,
            suppress_below: 10,
            batch_chunk: 5000,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// `eligo serve` as `main` reads it for `cargo run` with no arguments (flags only: setting
    /// ELIGO_* here would leak into servers other tests spawn).
    fn serve(args: &[&str]) -> super::Settings {
        let argv = ["eligo", "serve"].iter().chain(args).copied();
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Some(Command::Serve(s)),
            }) => *s,
            other => panic!("not a serve command: {other:?}"),
        }
    }

    #[test]
    fn serve_defaults_to_loopback_8080_an_sqlite_file_and_the_rules_folder() {
        // Unless the environment running the tests sets them.
        if std::env::vars().any(|(k, _)| k.starts_with("ELIGO_") && k != "ELIGO_TEST_POSTGRES_URL")
        {
            eprintln!("skipped: ELIGO_* variables are set in this environment");
            return;
        }
        let s = serve(&[]);
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://eligo.db");
        assert_eq!(s.rules_dir, std::path::PathBuf::from("rules"));
        assert!(!s.log_json);
        assert_eq!(s.max_body_bytes, super::DEFAULT_MAX_BODY_BYTES);
    }

    #[test]
    fn serve_flags_override_the_defaults() {
        let s = serve(&[
            "--bind",
            "0.0.0.0:9000",
            "--database-url",
            "postgres://u@h/db",
            "--rules-dir",
            "elsewhere",
            "--log-json",
            "--workers",
            "3",
            "--max-body-bytes",
            "1024",
        ]);
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.database_url, "postgres://u@h/db");
        assert_eq!(s.rules_dir, std::path::PathBuf::from("elsewhere"));
        assert!(s.log_json);
        assert_eq!(s.workers, Some(3));
        assert_eq!(s.max_body_bytes, 1024);
    }
}
