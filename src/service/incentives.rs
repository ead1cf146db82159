//! A student's incentives as a counselor reads them: where each stands, in the order to read
//! them, and the common changes a counselor tries ("what if the student enrolled at IVCC?").

use chrono::NaiveDate;

use super::preview::{PreviewResult, Subject};
use super::students::StoredStudent;
use super::{Service, ServiceError};
use crate::policy::student::{
    Endorsement, EndorsementArea, EndorsementStatus, JobOffer, Postsecondary, PostsecondaryStatus,
};
use crate::policy::{Decision, Outcome, Status, Student};

/// Where a student stands on one incentive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Eligible,
    /// At least one criterion failed: something is missing.
    NotYet,
    /// Nothing failed, but the record lacks what would decide (or the policy could not decide).
    CannotTell,
}

impl Standing {
    pub fn of(d: &Decision) -> Self {
        match d.outcome {
            Outcome::Eligible => Self::Eligible,
            Outcome::Error => Self::CannotTell,
            Outcome::Ineligible if d.reasons.iter().any(|r| r.status == Status::Failed) => {
                Self::NotYet
            }
            Outcome::Ineligible => Self::CannotTell,
        }
    }

    /// The words a page and a CSV show.
    pub fn label(self) -> &'static str {
        match self {
            Self::Eligible => "eligible",
            Self::NotYet => "not yet",
            Self::CannotTell => "cannot tell",
        }
    }
}

/// Eligible incentives first, then those with the fewest missing items; ties by title.
pub fn rank(decisions: &mut [Decision]) {
    decisions.sort_by(|a, b| {
        let key = |d: &Decision| (d.outcome != Outcome::Eligible, d.missing.len());
        key(a).cmp(&key(b)).then_with(|| a.title.cmp(&b.title))
    });
}

/// The common changes a counselor tries on a record, none stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// An endorsement earned in this area.
    pub endorsement: Option<EndorsementArea>,
    /// Admission or enrolment at this college.
    pub college: Option<(String, PostsecondaryStatus)>,
    /// A local job offer with this NAICS code.
    pub job_offer_naics: Option<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The record with the change made.
    pub fn apply(&self, mut student: Student) -> Student {
        if let Some(area) = self.endorsement {
            let list = student.endorsements.get_or_insert_with(Vec::new);
            list.retain(|e| e.area != area);
            list.push(Endorsement {
                area,
                status: EndorsementStatus::Earned,
                earned_on: None,
            });
        }
        if let Some((institution, status)) = &self.college {
            student.postsecondary = Some(Postsecondary {
                institution_id: Some(institution.clone()),
                status: Some(*status),
                term: student.postsecondary.and_then(|p| p.term),
            });
        }
        if let Some(naics) = &self.job_offer_naics {
            student
                .job_offers
                .get_or_insert_with(Vec::new)
                .push(JobOffer {
                    employer: Some("a local employer (tried)".into()),
                    naics: Some(naics.clone()),
                    local: Some(true),
                    offered_on: None,
                });
        }
        student
    }
}

impl Service {
    /// A stored student and every incentive in effect on `as_of`, ranked for reading: one read
    /// and one evaluation. With `change`, for the record as changed (nothing is stored).
    pub async fn incentives(
        &self,
        student_id: String,
        as_of: NaiveDate,
        change: &Change,
    ) -> Result<(StoredStudent, PreviewResult), ServiceError> {
        let stored = self.get_student(student_id).await?;
        let student = if change.is_empty() {
            stored.student.clone()
        } else {
            let changed = change.apply(stored.student.clone());
            changed.validate().map_err(ServiceError::InvalidRecord)?;
            changed
        };
        let mut result = self
            .preview(Subject::Inline(Box::new(student)), None, as_of)
            .await?;
        rank(&mut result.decisions);
        Ok((stored, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Award, Missing, Reason};

    fn decision(title: &str, outcome: Outcome, statuses: &[Status], missing: usize) -> Decision {
        Decision {
            policy_id: title.to_lowercase(),
            version: 1,
            hash: String::new(),
            title: title.into(),
            sponsor: "s".into(),
            kind: Default::default(),
            award: Some(Award::Scholarship { amount_cents: 1 }),
            as_of: NaiveDate::MIN,
            outcome,
            reasons: statuses
                .iter()
                .map(|s| Reason {
                    code: "c".into(),
                    status: *s,
                    message: "m".into(),
                    fields: vec![],
                })
                .collect(),
            missing: (0..missing)
                .map(|_| Missing {
                    code: "c".into(),
                    message: "m".into(),
                    fields: vec![],
                    steps: vec![],
                })
                .collect(),
            payee: None,
            error: None,
        }
    }

    #[test]
    fn standing_reads_failed_and_unknown_apart() {
        use Status::*;
        let d = |o, s: &[Status]| Standing::of(&decision("T", o, s, 0));
        assert_eq!(d(Outcome::Eligible, &[Passed]), Standing::Eligible);
        assert_eq!(
            d(Outcome::Ineligible, &[Passed, Failed, Unknown]),
            Standing::NotYet
        );
        assert_eq!(
            d(Outcome::Ineligible, &[Passed, Unknown]),
            Standing::CannotTell
        );
        assert_eq!(d(Outcome::Error, &[]), Standing::CannotTell);
    }

    #[test]
    fn eligible_first_then_fewest_missing() {
        let mut list = vec![
            decision("B", Outcome::Ineligible, &[], 2),
            decision("C", Outcome::Ineligible, &[], 1),
            decision("D", Outcome::Eligible, &[], 0),
            decision("A", Outcome::Ineligible, &[], 1),
        ];
        rank(&mut list);
        let order: Vec<&str> = list.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(order, ["D", "A", "C", "B"]);
    }

    #[test]
    fn a_change_adds_what_it_says_and_keeps_the_rest() {
        let s = Student::from_json(
            r#"{"student_id":"x","endorsements":[{"area":"manufacturing_engineering_technology_trades","status":"in_progress"}],
                "postsecondary":{"status":"applied","term":"2024FA"}}"#,
        )
        .unwrap();
        let changed = Change {
            endorsement: Some(EndorsementArea::ManufacturingEngineeringTechnologyTrades),
            college: Some(("ivcc".into(), PostsecondaryStatus::Enrolled)),
            job_offer_naics: Some("332710".into()),
        }
        .apply(s);
        let e = changed.endorsements.unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].status, EndorsementStatus::Earned);
        let p = changed.postsecondary.unwrap();
        assert_eq!(p.institution_id.as_deref(), Some("ivcc"));
        assert_eq!(p.term.as_deref(), Some("2024FA"));
        assert_eq!(changed.job_offers.unwrap()[0].local, Some(true));
    }
}
