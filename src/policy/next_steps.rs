//! Next steps for one student across every incentive: the distinct things the student could
//! do, each naming the incentives it brings closer and those it would complete on its own, with
//! what those completions are worth, most valuable first.
//!
//! A step is a missing item of an incentive, or, when the item waits on a requirement policy
//! (an endorsement in progress), one of the requirement's own missing items. A requirement's
//! step is the same step for every incentive that refers to the requirement (so the METT
//! endorsement's "3 more early-college credit hours" appears once); an incentive's own item is
//! its own (two sponsors' criteria may share a code and mean different things).

use serde::Serialize;
use utoipa::ToSchema;

use super::decision::{Award, Decision, Outcome, Status};
use super::registry::PolicyKind;

/// One thing the student could do.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct NextStep {
    /// `<requirement id>/<code>` for a requirement's step, `<incentive id>/<code>` for an
    /// incentive's own item.
    pub key: String,
    pub message: String,
    /// Record fields that would settle it, when it is unknown rather than failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Every incentive this step brings closer (policy ids).
    pub brings_closer: Vec<String>,
    /// The incentives it would complete on its own: every other criterion of theirs passed.
    pub completes: Vec<String>,
    /// What those completions are worth: scholarship money, in cents ...
    pub completes_cents: i64,
    /// ... and waived credit hours.
    pub completes_credit_hours: f64,
}

/// The steps for one student's decisions (incentives only; requirements, errors and eligible
/// incentives bring nothing to do), sorted by the dollars they would complete, then the credit
/// hours, then by how many incentives they touch.
pub fn next_steps(decisions: &[Decision]) -> Vec<NextStep> {
    let mut steps: Vec<NextStep> = Vec::new();
    let mut touch =
        |key: String, message: &str, fields: &[String], d: &Decision, completes: bool| {
            let at = match steps.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    steps.push(NextStep {
                        key,
                        message: message.to_string(),
                        fields: fields.to_vec(),
                        brings_closer: Vec::new(),
                        completes: Vec::new(),
                        completes_cents: 0,
                        completes_credit_hours: 0.0,
                    });
                    steps.len() - 1
                }
            };
            let step = &mut steps[at];
            if !step.brings_closer.contains(&d.policy_id) {
                step.brings_closer.push(d.policy_id.clone());
            }
            if completes && !step.completes.contains(&d.policy_id) {
                step.completes.push(d.policy_id.clone());
                match &d.award {
                    Some(Award::Scholarship { amount_cents }) => {
                        step.completes_cents += amount_cents
                    }
                    Some(Award::TuitionWaiver { credit_hours, .. }) => {
                        step.completes_credit_hours += credit_hours
                    }
                    None => {}
                }
            }
        };
    for d in decisions {
        if d.kind != PolicyKind::Incentive || d.outcome != Outcome::Ineligible {
            continue;
        }
        let open = d
            .reasons
            .iter()
            .filter(|r| r.status != Status::Passed)
            .count();
        for m in &d.missing {
            if m.steps.is_empty() {
                touch(
                    format!("{}/{}", d.policy_id, m.code),
                    &m.message,
                    &m.fields,
                    d,
                    open == 1,
                );
                continue;
            }
            for s in &m.steps {
                // Alone, a requirement's step completes the criterion only when it is that
                // requirement's last one.
                let last_of_its_requirement = m
                    .steps
                    .iter()
                    .filter(|o| o.requirement == s.requirement)
                    .count()
                    == 1;
                touch(
                    format!("{}/{}", s.requirement, s.code),
                    &s.message,
                    &s.fields,
                    d,
                    open == 1 && last_of_its_requirement,
                );
            }
        }
    }
    steps.sort_by(|a, b| {
        b.completes_cents
            .cmp(&a.completes_cents)
            .then(
                b.completes_credit_hours
                    .total_cmp(&a.completes_credit_hours),
            )
            .then(b.brings_closer.len().cmp(&a.brings_closer.len()))
            .then(a.key.cmp(&b.key))
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decision::{Missing, Reason, Step};

    fn decision(
        id: &str,
        award: Award,
        reasons: &[(&str, Status)],
        missing: Vec<Missing>,
    ) -> Decision {
        Decision {
            policy_id: id.into(),
            version: 1,
            hash: String::new(),
            title: id.into(),
            sponsor: "s".into(),
            kind: PolicyKind::Incentive,
            award: Some(award),
            as_of: chrono::NaiveDate::MIN,
            outcome: if reasons.iter().all(|r| r.1 == Status::Passed) {
                Outcome::Eligible
            } else {
                Outcome::Ineligible
            },
            reasons: reasons
                .iter()
                .map(|(c, s)| Reason {
                    code: (*c).into(),
                    status: *s,
                    message: String::new(),
                    fields: vec![],
                })
                .collect(),
            missing,
            payee: None,
            error: None,
        }
    }

    fn endorsement(steps: &[&str]) -> Missing {
        Missing {
            code: "endorsement".into(),
            message: "Earn the endorsement".into(),
            fields: vec![],
            steps: steps
                .iter()
                .map(|c| Step {
                    requirement: "mett".into(),
                    code: (*c).into(),
                    message: format!("do {c}"),
                    fields: vec![],
                })
                .collect(),
        }
    }

    fn own(code: &str) -> Missing {
        Missing {
            code: code.into(),
            message: format!("do {code}"),
            fields: vec![],
            steps: vec![],
        }
    }

    const SCHOLARSHIP: Award = Award::Scholarship {
        amount_cents: 50_000,
    };

    fn waiver() -> Award {
        Award::TuitionWaiver {
            credit_hours: 3.0,
            institution_id: "jjc".into(),
        }
    }

    #[test]
    fn a_shared_step_appears_once_and_completes_only_where_it_is_the_last_thing() {
        use Status::{Failed, Passed};
        let decisions = vec![
            // The scholarship waits on the endorsement alone, whose last step is credit.
            decision(
                "ima",
                SCHOLARSHIP,
                &[("endorsement", Failed), ("graduated", Passed)],
                vec![endorsement(&["credit"])],
            ),
            // The waiver waits on the endorsement and on admission.
            decision(
                "jjc",
                waiver(),
                &[("endorsement", Failed), ("admission", Failed)],
                vec![endorsement(&["credit"]), own("admission")],
            ),
            // Another waiver waits on two endorsement steps.
            decision(
                "ivcc",
                waiver(),
                &[("endorsement", Failed)],
                vec![endorsement(&["credit", "hours"])],
            ),
        ];
        let steps = next_steps(&decisions);
        let credit = steps.iter().find(|s| s.key == "mett/credit").unwrap();
        assert_eq!(credit.brings_closer, vec!["ima", "jjc", "ivcc"]);
        assert_eq!(credit.completes, vec!["ima"]);
        assert_eq!(credit.completes_cents, 50_000);
        assert_eq!(steps.iter().filter(|s| s.key == "mett/credit").count(), 1);
        // The most valuable step first; then by how many incentives a step touches.
        assert_eq!(steps[0].key, "mett/credit");
        let admission = steps.iter().find(|s| s.key == "jjc/admission").unwrap();
        assert!(
            admission.completes.is_empty(),
            "the endorsement is still open for jjc"
        );
        let hours = steps.iter().find(|s| s.key == "mett/hours").unwrap();
        assert_eq!(hours.brings_closer, vec!["ivcc"]);
        assert!(
            hours.completes.is_empty(),
            "two endorsement steps are open for ivcc"
        );
    }

    #[test]
    fn eligible_incentives_and_requirements_bring_no_steps() {
        let mut requirement = decision(
            "mett",
            SCHOLARSHIP,
            &[("credit", Status::Failed)],
            vec![own("credit")],
        );
        requirement.kind = PolicyKind::Requirement;
        requirement.award = None;
        let eligible = decision(
            "ima",
            SCHOLARSHIP,
            &[("endorsement", Status::Passed)],
            vec![],
        );
        assert!(next_steps(&[requirement, eligible]).is_empty());
    }

    #[test]
    fn credit_hours_rank_below_dollars_and_above_breadth() {
        use Status::Failed;
        let steps = next_steps(&[
            decision("w", waiver(), &[("a", Failed)], vec![own("a")]),
            decision(
                "x",
                waiver(),
                &[("b", Failed), ("c", Failed)],
                vec![own("b"), own("c")],
            ),
            decision(
                "y",
                waiver(),
                &[("b", Failed), ("c", Failed)],
                vec![own("b"), own("c")],
            ),
        ]);
        assert_eq!(steps[0].key, "w/a");
        assert_eq!(steps[0].completes_credit_hours, 3.0);
        // The same code in two incentives is two steps: their own, not shared.
        assert!(steps.iter().any(|s| s.key == "x/b") && steps.iter().any(|s| s.key == "y/b"));
        assert!(steps.iter().all(|s| s.brings_closer.len() == 1));
    }
}
