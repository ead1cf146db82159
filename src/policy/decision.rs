//! What an evaluation returns: an outcome and the reasons that produced it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The award a policy grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Award {
    /// Money, in integer cents.
    Scholarship { amount_cents: i64 },
    /// Tuition waived for some credit hours at one institution.
    TuitionWaiver {
        credit_hours: f64,
        institution_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Eligible,
    Ineligible,
    /// The policy could not be evaluated (it threw, broke a limit or returned the wrong shape).
    /// Never grants anything.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eligible => "eligible",
            Self::Ineligible => "ineligible",
            Self::Error => "error",
        }
    }
}

/// How one criterion came out (ordered passed, failed, unknown).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// The record lacks the data to decide; `fields` says what would settle it.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub code: String,
    pub status: Status,
    pub message: String,
    /// Record fields that would settle an `unknown` criterion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Something the student would need to qualify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// When the criterion waits on a requirement policy (an endorsement in progress): the
    /// requirement's own missing items, the concrete things left to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// One missing item of a requirement policy, carried by an incentive's criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The requirement policy's id.
    pub requirement: String,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayeeKind {
    Student,
    Institution,
}

/// Who receives a scholarship's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payee {
    pub kind: PayeeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution_id: Option<String>,
}

/// One policy's decision for one student on one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub policy_id: String,
    pub version: u32,
    /// SHA-256 of the policy version's source, hex.
    pub hash: String,
    pub title: String,
    pub sponsor: String,
    /// `requirement` for a requirement policy's decision (absent for an incentive's).
    #[serde(
        default,
        skip_serializing_if = "super::registry::PolicyKind::is_incentive"
    )]
    pub kind: super::registry::PolicyKind,
    /// What the incentive grants (absent for a requirement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub award: Option<Award>,
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "super::engine::serialize_date")]
    pub as_of: NaiveDate,
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    pub missing: Vec<Missing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<Payee>,
    /// Set when `outcome` is `error`: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Decision {
    /// Whether the reasons agree with the outcome: eligible exactly when every reason passed,
    /// an error carries a message and no payee.
    pub fn is_consistent(&self) -> bool {
        match self.outcome {
            Outcome::Eligible => {
                self.reasons.iter().all(|r| r.status == Status::Passed)
                    && self.missing.is_empty()
                    && self.error.is_none()
            }
            Outcome::Ineligible => {
                self.reasons.iter().any(|r| r.status != Status::Passed)
                    && self.payee.is_none()
                    && self.error.is_none()
            }
            Outcome::Error => self.error.is_some() && self.payee.is_none(),
        }
    }
}
