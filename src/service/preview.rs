//! Previews: every decision for one student, written nowhere.

use std::sync::Arc;

use chrono::NaiveDate;

use super::{blocking, with_evaluator, Service, ServiceError};
use crate::policy::next_steps::{next_steps, NextStep};
use crate::policy::{Decision, PolicyVersion, Prepared, Student};

/// Operations a policy may spend on an async worker before it is moved to the blocking pool.
pub const INLINE_OPERATION_BUDGET: u64 = 5_000;

/// Whose record to evaluate.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A record given inline (validated, not stored).
    Inline(Box<Student>),
    /// A stored record.
    Stored(String),
}

#[derive(Debug, Clone)]
pub struct PreviewResult {
    pub student_id: String,
    pub as_of: NaiveDate,
    /// One per incentive in effect (asked for).
    pub decisions: Vec<Decision>,
    /// One per requirement policy in effect (asked for): the student's progress.
    pub requirements: Vec<Decision>,
    /// What the student could do next, across the incentives, most valuable first.
    pub next_steps: Vec<NextStep>,
}

impl Service {
    /// Evaluates the student against `policies` (default: all) in effect on `as_of`.
    pub async fn preview(
        &self,
        subject: Subject,
        policies: Option<Vec<String>>,
        as_of: NaiveDate,
    ) -> Result<PreviewResult, ServiceError> {
        let registry = self.registry();
        if let Some(ids) = &policies {
            if let Some(unknown) = ids.iter().find(|id| !registry.contains(id)) {
                return Err(ServiceError::UnknownPolicy(unknown.clone()));
            }
        }
        let student = match subject {
            Subject::Inline(s) => *s,
            Subject::Stored(id) => {
                let store = self.store().clone();
                blocking(move || {
                    Ok(store
                        .get_student(&id)?
                        .ok_or(ServiceError::NotFound {
                            what: "student",
                            id,
                        })?
                        .student)
                })
                .await?
            }
        };
        let versions: Vec<Arc<PolicyVersion>> = registry
            .all_in_effect(as_of)
            .filter(|v| match &policies {
                Some(ids) => ids.contains(&v.meta.id),
                None => v.meta.concerns(&student),
            })
            .cloned()
            .collect();
        let student_id = student.student_id.clone();
        // Policies run here, on the async worker, within a small operation budget (tens of
        // microseconds of engine work; the seed policies need a few hundred operations). A
        // policy that needs more is evaluated again on the blocking pool with the full limit,
        // so a heavy script never stalls the workers, and the common case pays no thread hop
        // (which measured as a quarter of a preview's cost).
        let prepared = Prepared::new(student);
        let mut decisions: Vec<Option<Decision>> = with_evaluator(|ev| {
            versions
                .iter()
                .map(|v| ev.evaluate_within(v, &prepared, as_of, INLINE_OPERATION_BUDGET))
                .collect()
        });
        let heavy: Vec<usize> = (0..decisions.len())
            .filter(|&i| decisions[i].is_none())
            .collect();
        if !heavy.is_empty() {
            let student = prepared.student().clone();
            let todo: Vec<Arc<PolicyVersion>> =
                heavy.iter().map(|&i| versions[i].clone()).collect();
            let done = blocking(move || {
                let prepared = Prepared::new(student);
                Ok(with_evaluator(|ev| {
                    todo.iter()
                        .map(|v| ev.evaluate(v, &prepared, as_of))
                        .collect::<Vec<_>>()
                }))
            })
            .await?;
            for (i, d) in heavy.into_iter().zip(done) {
                decisions[i] = Some(d);
            }
        }
        let (decisions, requirements): (Vec<Decision>, Vec<Decision>) = decisions
            .into_iter()
            .flatten()
            .partition(|d| d.kind.is_incentive());
        Ok(PreviewResult {
            student_id,
            as_of,
            next_steps: next_steps(&decisions),
            decisions,
            requirements,
        })
    }
}
