//! The evaluation core: student records, the rhai engine, policy versions and decisions.
//! No HTTP, SQL or async runtime here: the CLI and the service both stand on it.

pub mod decision;
pub mod engine;
pub mod evaluate;
pub mod grant;
pub mod next_steps;
pub mod objects;
mod plan;
pub mod publish;
pub mod registry;
pub mod student;
pub mod tests;
pub mod whatif;

pub use decision::{Award, Decision, Missing, Outcome, Payee, PayeeKind, Reason, Status};
pub use engine::Limits;
pub use evaluate::{Evaluator, Prepared};
pub use registry::{PolicyMeta, PolicyVersion, Registry};
pub use student::{RecordError, Student};

/// Why policies could not be loaded or published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{origin}: compile error{}: {message}", location(*line, *column))]
    Compile {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{origin}: {message}")]
    Metadata {
        origin: String,
        /// The metadata key the problem is about, when there is one (`award.amount_cents`).
        key: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{origin}: bad test cases: {message}")]
    Tests { origin: String, message: String },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}
