//! Runs one policy version against one student on one date and returns a Decision.
//! Every failure inside the script fails closed: outcome `error`, never `eligible`.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::NaiveDate;
use rhai::{CallFnOptions, Dynamic, Engine, ImmutableString, Scope, AST};
use serde::Deserialize;

use super::decision::{Award, Decision, Missing, Outcome, Payee, PayeeKind, Reason, Status};
use super::engine::{build_engine, Checks, Context, Limits, StudentRef};
use super::registry::{compile, PolicyMeta, PolicyVersion};
use super::student::Student;

/// A record made ready for scripts once, then shared by every policy evaluated for it.
#[derive(Debug, Clone)]
pub struct Prepared(Dynamic);

impl Prepared {
    pub fn new(student: Student) -> Self {
        Self(Dynamic::from(StudentRef(Rc::new(student))))
    }
}

struct Compiled {
    ast: AST,
    meta: Rc<PolicyMeta>,
}

/// An engine and the compiled policies it has seen, keyed by source hash. Not `Send`: give each
/// thread its own (sharing one across threads measured slower than one thread).
pub struct Evaluator {
    engine: Engine,
    compiled: HashMap<String, Rc<Compiled>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new(&Limits::default())
    }
}

/// The plain-map form a script may return instead of `checks()`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnedMap {
    eligible: bool,
    reasons: Vec<Reason>,
    #[serde(default)]
    missing: Vec<Missing>,
    #[serde(default)]
    payee: Option<Payee>,
}

impl Evaluator {
    pub fn new(limits: &Limits) -> Self {
        Self {
            engine: build_engine(limits),
            compiled: HashMap::new(),
        }
    }

    fn compiled(&mut self, policy: &PolicyVersion) -> Result<Rc<Compiled>, String> {
        if let Some(c) = self.compiled.get(&policy.hash) {
            return Ok(c.clone());
        }
        let ast =
            compile(&self.engine, &policy.source, &policy.origin).map_err(|e| e.to_string())?;
        let c = Rc::new(Compiled {
            ast,
            meta: Rc::new(policy.meta.clone()),
        });
        self.compiled.insert(policy.hash.clone(), c.clone());
        Ok(c)
    }

    /// Evaluates `policy` for a prepared record on `as_of`.
    pub fn evaluate(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
    ) -> Decision {
        let mut decision = Decision {
            policy_id: policy.meta.id.clone(),
            version: policy.meta.version,
            hash: policy.hash.clone(),
            title: policy.meta.title.clone(),
            sponsor: policy.meta.sponsor.clone(),
            award: policy.meta.award.clone(),
            as_of,
            outcome: Outcome::Error,
            reasons: Vec::new(),
            missing: Vec::new(),
            payee: None,
            error: None,
        };
        match self.run(policy, student, as_of) {
            Ok((reasons, missing, payee)) => {
                let eligible = reasons.iter().all(|r| r.status == Status::Passed);
                decision.outcome = if eligible {
                    Outcome::Eligible
                } else {
                    Outcome::Ineligible
                };
                decision.payee = match (&decision.award, eligible) {
                    (_, false) => None,
                    // Scholarships go to the student unless the policy chose otherwise.
                    (Award::Scholarship { .. }, true) => payee.or(Some(Payee {
                        kind: PayeeKind::Student,
                        institution_id: None,
                    })),
                    (Award::TuitionWaiver { .. }, true) => payee,
                };
                decision.reasons = reasons;
                decision.missing = if eligible { Vec::new() } else { missing };
            }
            Err(message) => decision.error = Some(message),
        }
        decision
    }

    /// Parses, prepares and evaluates in one go (the CLI's path; the service prepares once).
    pub fn evaluate_student(
        &mut self,
        policy: &PolicyVersion,
        student: &Student,
        as_of: NaiveDate,
    ) -> Decision {
        self.evaluate(policy, &Prepared::new(student.clone()), as_of)
    }

    #[allow(clippy::type_complexity)]
    fn run(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
    ) -> Result<(Vec<Reason>, Vec<Missing>, Option<Payee>), String> {
        let compiled = self.compiled(policy)?;
        let ctx = Context {
            as_of: ImmutableString::from(as_of.to_string()),
            meta: compiled.meta.clone(),
        };
        let value: Dynamic = self
            .engine
            .call_fn_with_options(
                CallFnOptions::new().eval_ast(false).rewind_scope(true),
                &mut Scope::new(),
                &compiled.ast,
                "evaluate",
                (student.0.clone(), Dynamic::from(ctx)),
            )
            .map_err(|e| format!("policy script failed: {e}"))?;
        if value.is::<Checks>() {
            let checks = value
                .try_cast::<Checks>()
                .ok_or_else(|| "policy script returned an unreadable checks() value".to_string())?;
            if checks.reasons.is_empty() {
                return Err(
                    "evaluate returned checks() with no criteria: nothing was checked".into(),
                );
            }
            return Ok((checks.reasons, checks.missing, checks.payee));
        }
        if value.is_map() {
            let map: ReturnedMap = rhai::serde::from_dynamic(&value)
                .map_err(|e| format!("evaluate returned a malformed decision map: {e}"))?;
            let all_passed = map.reasons.iter().all(|r| r.status == Status::Passed);
            if map.reasons.is_empty() {
                return Err("evaluate returned no reasons: nothing was checked".into());
            }
            if map.eligible != all_passed {
                return Err(format!(
                    "evaluate returned eligible = {} but its reasons say {}",
                    map.eligible,
                    if all_passed {
                        "every criterion passed"
                    } else {
                        "a criterion did not pass"
                    }
                ));
            }
            return Ok((map.reasons, map.missing, map.payee));
        }
        Err(format!(
            "evaluate must return checks() or a map with eligible, reasons and missing; it returned {}",
            value.type_name()
        ))
    }
}
