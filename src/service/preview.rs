//! Previews: every decision for one student, written nowhere.

use chrono::NaiveDate;

use super::{blocking, with_evaluator, Service, ServiceError};
use crate::policy::{Decision, Prepared, Student};

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
    pub decisions: Vec<Decision>,
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
        let store = self.store().clone();
        blocking(move || {
            let student = match subject {
                Subject::Inline(s) => *s,
                Subject::Stored(id) => {
                    store
                        .get_student(&id)?
                        .ok_or(ServiceError::NotFound {
                            what: "student",
                            id,
                        })?
                        .student
                }
            };
            let student_id = student.student_id.clone();
            let prepared = Prepared::new(student);
            let decisions = with_evaluator(|ev| {
                registry
                    .all_in_effect(as_of)
                    .filter(|v| policies.as_ref().is_none_or(|ids| ids.contains(&v.meta.id)))
                    .map(|v| ev.evaluate(v, &prepared, as_of))
                    .collect()
            });
            Ok(PreviewResult {
                student_id,
                as_of,
                decisions,
            })
        })
        .await
    }
}
