//! HTTP integration tests: a real server over real HTTP, each test on its own database, every
//! suite on SQLite and (when ELIGO_TEST_POSTGRES_URL is set) on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod access;
mod awards;
mod batches;
mod browser;
mod evaluations;
mod hostile;
mod operations;
mod pages;
mod policies;
mod policy_pages;
mod progress;
mod publishing;
mod reports;
mod resilience;
mod shapes;
mod students;
