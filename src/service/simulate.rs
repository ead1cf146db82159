//! What-if over the stored cohort: a candidate version (a source not yet published, or a
//! published version) against another, with the program's remaining budget beside the cost.
//! Writes nothing.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::awards::BudgetView;
use super::policies::require_sponsor;
use super::{blocking, Service, ServiceError};
use crate::policy::publish::load_candidate;
use crate::policy::whatif::{compare, Change, Comparison, WhatIf, DECISION_BUDGET, MAX_ERRORS};
use crate::policy::PolicyVersion;

/// What to compare.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct SimulationRequest {
    /// A candidate source (not yet published). Give this or `version`.
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub source: Option<String>,
    /// A published version of this policy as the candidate.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<u32>,
    /// The version to compare against; default: the version in effect on `as_of`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub against: Option<u32>,
    /// Evaluation date, YYYY-MM-DD; default: today (UTC).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<NaiveDate>,
    /// Only the students of this school.
    #[serde(default)]
    pub school_id: Option<String>,
}
crate::objects_only!(SimulationRequest);

/// A what-if's answer: the summary and the budget it would draw on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Simulation {
    #[serde(flatten)]
    pub summary: WhatIf,
    /// The program's budget today: remaining money or awards beside the costs above.
    pub budget: BudgetView,
}

/// Worker threads for cohort work: every core.
pub fn cohort_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Service {
    /// Compares a candidate with the version in effect (or `against`) on every stored student
    /// (of `school_id`). Returns the summary and the students who gain or lose.
    pub async fn simulate(
        &self,
        caller: &Caller,
        policy_id: String,
        request: SimulationRequest,
    ) -> Result<(Simulation, Vec<Change>), ServiceError> {
        let registry = self.registry();
        let not_found = || ServiceError::NotFound {
            what: "policy",
            id: policy_id.clone(),
        };
        let sponsor = self.sponsor_of(&policy_id).ok_or_else(not_found)?;
        require_sponsor(caller, &policy_id, &sponsor)?;
        let as_of = request
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let published = |n: u32, field: &str| {
            registry
                .version(&policy_id, n)
                .map(|v| (**v).clone())
                .ok_or_else(|| {
                    ServiceError::invalid(field, format!("{policy_id} has no version {n}"))
                })
        };
        let candidate: PolicyVersion = match (&request.source, request.version) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "source",
                    "give a candidate source or a published version, not both",
                ))
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "source",
                    "give a candidate source or a published version",
                ))
            }
            (None, Some(n)) => published(n, "version")?,
            (Some(source), None) => {
                let v = load_candidate(source, "candidate")?;
                if v.meta.id != policy_id {
                    return Err(ServiceError::invalid(
                        "source",
                        format!("the candidate is policy {:?}, not {policy_id:?}", v.meta.id),
                    ));
                }
                require_sponsor(caller, &policy_id, &v.meta.sponsor)?;
                // Linked to the requirements it refers to (and so checked).
                crate::policy::publish::linked(&registry, &v)?
            }
        };
        let against = match request.against {
            Some(n) => published(n, "against")?,
            None => registry
                .in_effect(&policy_id, as_of)
                .map(|v| (**v).clone())
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "against",
                        format!("no version of {policy_id} is in effect on {as_of}; name one"),
                    )
                })?,
        };
        let budget = self.budget(policy_id.clone()).await?;
        let store = self.store().clone();
        let below = self.suppress_below;
        let school = request.school_id;
        blocking(move || {
            let started = std::time::Instant::now();
            let records = store.student_records(school.as_deref())?;
            let loaded = started.elapsed();
            let (summary, changes, bad) = compare(
                &Comparison {
                    candidate: &candidate,
                    against: &against,
                    as_of,
                    suppress_below: below,
                    threads: cohort_threads(),
                    budget: DECISION_BUDGET,
                    max_errors: MAX_ERRORS,
                },
                &records,
            )
            .map_err(|stopped| ServiceError::invalid("source", stopped.to_string()))?;
            tracing::info!(
                students = records.len(),
                load_ms = loaded.as_millis() as u64,
                evaluate_ms = (started.elapsed() - loaded).as_millis() as u64,
                "what-if done"
            );
            if let Some(b) = bad.first() {
                return Err(ServiceError::invariant(format!(
                    "{} stored records do not read, the first: {}",
                    bad.len(),
                    b.message
                )));
            }
            Ok((Simulation { summary, budget }, changes))
        })
        .await
    }
}
