//! The award rule: grant, or deny with a reason, from the evaluation, once-per-student and the
//! program's budget. Pure: the store runs it inside the transaction that holds the program's
//! lock, with the facts it read there.

use super::decision::Outcome;

/// Why an award request was denied (the ledger's `reason_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The student does not qualify.
    Ineligible,
    /// The policy failed to decide (a script error or a broken limit): awards fail closed.
    PolicyError,
    /// The student already holds an active award of a once-per-student program.
    AlreadyAwarded,
    /// The program's money or count limit would be exceeded.
    BudgetExhausted,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ineligible => "ineligible",
            Self::PolicyError => "policy_error",
            Self::AlreadyAwarded => "already_awarded",
            Self::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// The decision on one award request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    Denied(DenyReason),
}

impl Verdict {
    /// The ledger's `outcome`: `granted` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied(_) => "denied",
        }
    }

    pub fn reason(self) -> Option<DenyReason> {
        match self {
            Self::Granted => None,
            Self::Denied(r) => Some(r),
        }
    }

    pub fn is_granted(self) -> bool {
        self == Self::Granted
    }
}

/// A program's limits and what its active awards already commit. Absent limits: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    pub total_cents: Option<i64>,
    pub max_awards: Option<i64>,
    pub committed_cents: i64,
    pub committed_awards: i64,
}

impl Budget {
    /// Whether one more award of `amount_cents` stays within both limits.
    pub fn allows(&self, amount_cents: i64) -> bool {
        let money = self
            .total_cents
            .is_none_or(|t| self.committed_cents + amount_cents <= t);
        let count = self.max_awards.is_none_or(|m| self.committed_awards < m);
        money && count
    }
}

/// Decides an award request. `holds_active_award` is asked only when the answer matters (an
/// eligible student of a once-per-student program), since it costs the caller a query.
pub fn decide<E>(
    outcome: Outcome,
    once_per_student: bool,
    budget: &Budget,
    amount_cents: i64,
    holds_active_award: impl FnOnce() -> Result<bool, E>,
) -> Result<Verdict, E> {
    Ok(match outcome {
        Outcome::Error => Verdict::Denied(DenyReason::PolicyError),
        Outcome::Ineligible => Verdict::Denied(DenyReason::Ineligible),
        Outcome::Eligible if once_per_student && holds_active_award()? => {
            Verdict::Denied(DenyReason::AlreadyAwarded)
        }
        Outcome::Eligible if !budget.allows(amount_cents) => {
            Verdict::Denied(DenyReason::BudgetExhausted)
        }
        Outcome::Eligible => Verdict::Granted,
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    const UNLIMITED: Budget = Budget {
        total_cents: None,
        max_awards: None,
        committed_cents: 0,
        committed_awards: 0,
    };

    fn verdict(outcome: Outcome, once: bool, budget: &Budget, holds: bool) -> Verdict {
        decide(outcome, once, budget, 50_000, || Ok::<_, Infallible>(holds))
            .unwrap_or_else(|never| match never {})
    }

    #[test]
    fn an_eligible_student_within_budget_is_granted() {
        assert_eq!(
            verdict(Outcome::Eligible, true, &UNLIMITED, false),
            Verdict::Granted
        );
        assert_eq!(Verdict::Granted.as_str(), "granted");
        assert_eq!(Verdict::Granted.reason(), None);
    }

    #[test]
    fn ineligible_and_policy_errors_are_denied_whatever_else_holds() {
        for once in [true, false] {
            for holds in [true, false] {
                assert_eq!(
                    verdict(Outcome::Ineligible, once, &UNLIMITED, holds),
                    Verdict::Denied(DenyReason::Ineligible)
                );
                assert_eq!(
                    verdict(Outcome::Error, once, &UNLIMITED, holds),
                    Verdict::Denied(DenyReason::PolicyError)
                );
            }
        }
    }

    #[test]
    fn once_per_student_denies_a_second_active_award_only_when_declared() {
        assert_eq!(
            verdict(Outcome::Eligible, true, &UNLIMITED, true),
            Verdict::Denied(DenyReason::AlreadyAwarded)
        );
        assert_eq!(
            verdict(Outcome::Eligible, false, &UNLIMITED, true),
            Verdict::Granted
        );
    }

    #[test]
    fn the_award_lookup_runs_only_when_it_decides_something() {
        let mut asked = 0;
        for (outcome, once) in [
            (Outcome::Ineligible, true),
            (Outcome::Error, true),
            (Outcome::Eligible, false),
        ] {
            let _ = decide(outcome, once, &UNLIMITED, 1, || {
                asked += 1;
                Ok::<_, Infallible>(false)
            });
        }
        assert_eq!(asked, 0);
        let failed = decide(Outcome::Eligible, true, &UNLIMITED, 1, || Err("db down"));
        assert_eq!(failed, Err("db down"));
    }

    #[test]
    fn money_and_count_limits_are_inclusive_and_checked_before_granting() {
        let money = |committed| Budget {
            total_cents: Some(100_000),
            committed_cents: committed,
            ..UNLIMITED
        };
        assert_eq!(
            verdict(Outcome::Eligible, true, &money(50_000), false),
            Verdict::Granted
        );
        assert_eq!(
            verdict(Outcome::Eligible, true, &money(50_001), false),
            Verdict::Denied(DenyReason::BudgetExhausted)
        );
        let count = |committed| Budget {
            max_awards: Some(2),
            committed_awards: committed,
            ..UNLIMITED
        };
        assert_eq!(
            verdict(Outcome::Eligible, true, &count(1), false),
            Verdict::Granted
        );
        assert_eq!(
            verdict(Outcome::Eligible, true, &count(2), false),
            Verdict::Denied(DenyReason::BudgetExhausted)
        );
        // Already awarded is the reason given when both hold.
        assert_eq!(
            verdict(Outcome::Eligible, true, &count(2), true),
            Verdict::Denied(DenyReason::AlreadyAwarded)
        );
        assert_eq!(DenyReason::BudgetExhausted.as_str(), "budget_exhausted");
    }
}
