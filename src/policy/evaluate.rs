//! Runs one policy version against one student on one date and returns a Decision.
//! Every failure inside the script fails closed: outcome `error`, never `eligible`.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::NaiveDate;
use std::cell::RefCell;

use rhai::{Caches, Dynamic, Engine, EvalAltResult, ImmutableString, Scope, AST};
use serde::Deserialize;

use super::decision::{Award, Decision, Missing, Outcome, Payee, PayeeKind, Reason, Status};
use super::engine::{build_engine, Checks, Context, Limits, Requirements, StudentRef};
use super::plan::Plan;
use super::registry::{compile, PolicyMeta, PolicyVersion};
use super::student::Student;

/// A record made ready for scripts once, then shared by every policy evaluated for it.
#[derive(Debug, Clone)]
pub struct Prepared {
    student: Rc<Student>,
    /// Requirement decisions made for this record (by source hash and date): a requirement
    /// that several incentives refer to is evaluated once.
    requirements: Rc<RefCell<Vec<MadeRequirement>>>,
}

/// A requirement decision made for a record: by source hash and date.
type MadeRequirement = (String, NaiveDate, Rc<Decision>);

impl Prepared {
    pub fn new(student: Student) -> Self {
        Self {
            student: Rc::new(student),
            requirements: Rc::default(),
        }
    }

    /// The record inside.
    pub fn student(&self) -> &Student {
        &self.student
    }
}

struct Compiled {
    /// The whole script: its functions are the library `body` runs against.
    ast: AST,
    /// The body of `fn evaluate(student, ctx)` compiled as top-level statements over a scope
    /// holding `student` and `ctx`, positions as in the file. Running it directly saves a
    /// script-function call per decision (a tenth of a decision's cost).
    body: AST,
    params: Params,
    /// The body as direct calls of the native helpers, when it has the common shape (see
    /// `plan.rs`); `None` leaves every decision to rhai.
    plan: Option<Plan>,
    /// rhai's function-resolution cache, kept across decisions of this policy (`call_fn` starts
    /// every call with an empty one). One per policy: it may hold this policy's own functions.
    caches: RefCell<Caches>,
    meta: Rc<PolicyMeta>,
    /// The `ctx` of the last decision: consecutive decisions are usually on one date.
    last_ctx: RefCell<Option<(NaiveDate, Dynamic)>>,
}

impl Compiled {
    fn context(&self, as_of: NaiveDate) -> Dynamic {
        let mut last = self.last_ctx.borrow_mut();
        match &*last {
            Some((date, ctx)) if *date == as_of => ctx.clone(),
            _ => {
                let ctx = Dynamic::from(Context {
                    as_of: ImmutableString::from(super::engine::date_text(as_of)),
                    meta: self.meta.clone(),
                });
                *last = Some((as_of, ctx.clone()));
                ctx
            }
        }
    }
}

/// An engine and the compiled policies it has seen, keyed by source hash. Not `Send`: give each
/// thread its own (sharing one across threads measured slower than one thread).
pub struct Evaluator {
    engine: Engine,
    compiled: HashMap<String, Rc<Compiled>>,
    /// The limits the engine was built with; `evaluate_within` lowers the operation limit for
    /// one call.
    limits: Limits,
    /// Reused by every decision (emptied after each), saving its allocations.
    scope: Scope<'static>,
    /// Whether bodies of the common shape run as direct plans (off only to compare the paths).
    plans: bool,
}

/// Why `run` failed: the script's own fault, or a caller's tighter budget running out.
enum RunError {
    Script(String),
    OverBudget,
}

impl From<String> for RunError {
    fn from(s: String) -> Self {
        Self::Script(s)
    }
}

/// The names a script gave the parameters of `evaluate` (usually `student` and `ctx`).
type Params = [rhai::Identifier; 2];

/// Compiles the body of `fn evaluate(student, ctx)` as top-level statements. The text before
/// the body is blanked, not dropped, so lines and columns in errors are those of the file.
fn evaluate_body(engine: &Engine, ast: &AST, source: &str) -> Result<(AST, Params), String> {
    let def = ast
        .iter_fn_def()
        .find(|f| f.name == "evaluate" && f.params.len() == 2)
        .ok_or("the script must define fn evaluate(student, ctx)")?;
    let names: Params = [def.params[0].as_str().into(), def.params[1].as_str().into()];
    let open = byte_offset(source, def.body.start_position());
    let close = byte_offset(source, def.body.end_position());
    let (Some(open), Some(close)) = (open, close) else {
        return Err("cannot locate the body of fn evaluate".into());
    };
    if source.as_bytes().get(open) != Some(&b'{') || source.as_bytes().get(close) != Some(&b'}') {
        return Err("cannot locate the body of fn evaluate".into());
    }
    let mut text: String = source[..=open]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    text.push_str(&source[open + 1..close]);
    let mut params = Scope::new();
    for name in &names {
        params.push(name.clone(), ());
    }
    let body = engine
        .compile_with_scope(&params, text)
        .map_err(|e| format!("fn evaluate: {e}"))?;
    Ok((body, names))
}

/// The byte offset of a rhai position (1-based line, 1-based column counted in characters).
fn byte_offset(source: &str, pos: rhai::Position) -> Option<usize> {
    let (line, column) = (pos.line()?, pos.position()?);
    let start = if line == 1 {
        0
    } else {
        source.match_indices('\n').nth(line - 2)?.0 + 1
    };
    source[start..]
        .char_indices()
        .nth(column - 1)
        .map(|(i, _)| start + i)
}

fn run_error(e: EvalAltResult) -> RunError {
    match e {
        EvalAltResult::ErrorTooManyOperations(..) => RunError::OverBudget,
        other => RunError::Script(format!("policy script failed: {other}")),
    }
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new(&Limits::default())
    }
}

impl Decision {
    /// An `error` decision for `policy`: the shape every failure takes.
    pub fn failed(policy: &PolicyVersion, as_of: NaiveDate, message: &str) -> Self {
        Decision {
            policy_id: policy.meta.id.clone(),
            version: policy.meta.version,
            hash: policy.hash.clone(),
            title: policy.meta.title.clone(),
            sponsor: policy.meta.sponsor.clone(),
            kind: policy.meta.kind,
            award: policy.meta.award.clone(),
            as_of,
            outcome: Outcome::Error,
            reasons: Vec::new(),
            missing: Vec::new(),
            payee: None,
            error: Some(message.to_string()),
        }
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
            limits: *limits,
            scope: Scope::new(),
            plans: true,
        }
    }

    /// An evaluator that runs every policy through rhai, never as a direct plan: the reference
    /// the plans are tested against.
    pub fn interpreted(limits: &Limits) -> Self {
        Self {
            plans: false,
            ..Self::new(limits)
        }
    }

    fn compiled(&mut self, policy: &PolicyVersion) -> Result<Rc<Compiled>, String> {
        if let Some(c) = self.compiled.get(&policy.hash) {
            return Ok(c.clone());
        }
        let ast =
            compile(&self.engine, &policy.source, &policy.origin).map_err(|e| e.to_string())?;
        let (body, params) = evaluate_body(&self.engine, &ast, &policy.source)?;
        let plan = Plan::build(&ast, &body, &params[0], &params[1], &self.limits);
        let c = Rc::new(Compiled {
            ast,
            body,
            params,
            plan,
            caches: RefCell::new(Caches::new()),
            last_ctx: RefCell::new(None),
            meta: Rc::new(policy.meta.clone()),
        });
        self.compiled.insert(policy.hash.clone(), c.clone());
        Ok(c)
    }

    /// Whether `policy` (compiled on first use) runs as a direct plan here.
    #[cfg(test)]
    pub(crate) fn plans_for(&mut self, policy: &PolicyVersion) -> bool {
        self.plans && self.compiled(policy).is_ok_and(|c| c.plan.is_some())
    }

    /// The least operation limit under which `policy`'s plan runs (`None`: it has no plan).
    #[cfg(test)]
    pub(crate) fn plan_operations(&mut self, policy: &PolicyVersion) -> Option<u64> {
        Some(self.compiled(policy).ok()?.plan.as_ref()?.operations())
    }

    /// Evaluates `policy` for a prepared record on `as_of`.
    pub fn evaluate(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
    ) -> Decision {
        match self.evaluate_budgeted(policy, student, as_of, None) {
            Some(d) => d,
            // Without a tighter budget the limit is the engine's own: an exhausted limit is an
            // error decision, never None.
            None => Decision::failed(policy, as_of, "policy script failed: Too many operations"),
        }
    }

    /// Evaluates with at most `budget` operations (never more than the engine limit). `None`
    /// when the budget ran out before the script finished: the caller may run it again with the
    /// full limit where spending longer is harmless (a blocking thread). Scripts are pure, so a
    /// second run decides the same.
    pub fn evaluate_within(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
        budget: u64,
    ) -> Option<Decision> {
        self.evaluate_budgeted(policy, student, as_of, Some(budget))
    }

    fn evaluate_budgeted(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
        budget: Option<u64>,
    ) -> Option<Decision> {
        // A requirement is decided once per record and date, however many incentives refer to
        // it (and whether it is asked for itself).
        let is_requirement = !policy.meta.kind.is_incentive();
        if is_requirement {
            let made = student
                .requirements
                .borrow()
                .iter()
                .find(|(h, d, _)| *h == policy.hash && *d == as_of)
                .map(|(_, _, d)| Decision::clone(d));
            if made.is_some() {
                return made;
            }
        }
        let mut decision = Decision::failed(policy, as_of, "");
        decision.error = None;
        // The requirements it refers to first, within the same budget: a requirement that
        // runs out of it leaves the whole decision to the caller's retry.
        let requirements = self.requirements(policy, student, as_of, budget)?;
        let full = self.limits.max_operations;
        let limit = budget.map_or(full, |b| b.min(full));
        let tighter = limit < full;
        self.engine.set_max_operations(limit);
        let result = self.run(policy, student, as_of, requirements);
        self.engine.set_max_operations(full);
        match result {
            Err(RunError::OverBudget) if tighter => return None,
            Err(RunError::OverBudget) => {
                decision.error = Some("policy script failed: Too many operations".into())
            }
            Err(RunError::Script(message)) => decision.error = Some(message),
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
                    (Some(Award::Scholarship { .. }), true) => payee.or(Some(Payee {
                        kind: PayeeKind::Student,
                        institution_id: None,
                    })),
                    (Some(Award::TuitionWaiver { .. }), true) => payee,
                    // A requirement pays no one.
                    (None, true) => None,
                };
                decision.reasons = reasons;
                decision.missing = if eligible { Vec::new() } else { missing };
            }
        }
        if is_requirement {
            student.requirements.borrow_mut().push((
                policy.hash.clone(),
                as_of,
                Rc::new(decision.clone()),
            ));
        }
        Some(decision)
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

    /// The decisions of the requirements `policy` refers to, for `student` on `as_of` (each
    /// made once per record and date).
    fn requirements(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
        budget: Option<u64>,
    ) -> Option<Rc<Requirements>> {
        if policy.links.is_empty() {
            return Some(Rc::default());
        }
        let mut found = Vec::new();
        for id in policy.requires().iter().cloned() {
            let Some(v) = policy
                .links
                .iter()
                .find(|l| l.meta.id == id && l.meta.in_effect(as_of))
            else {
                // No version in effect: meets() is then unknown, with the reason.
                let mut d = Decision::failed(policy, as_of, "");
                d.error = None;
                d.outcome = super::decision::Outcome::Ineligible;
                d.reasons.push(Reason {
                    code: id.clone(),
                    status: Status::Unknown,
                    message: format!("no version of {id} is in effect on {as_of}"),
                    fields: Vec::new(),
                });
                found.push((id, Rc::new(d), None));
                continue;
            };
            let v = v.clone();
            // Shared, not copied: a requirement made for this record already is handed on as
            // it is (a deep copy per incentive measured as 4 % of a cohort batch).
            let made = student
                .requirements
                .borrow()
                .iter()
                .find(|(h, d, _)| *h == v.hash && *d == as_of)
                .map(|(_, _, d)| d.clone());
            let decision = match made {
                Some(d) => d,
                None => Rc::new(self.evaluate_budgeted(&v, student, as_of, budget)?),
            };
            found.push((id, decision, v.meta.endorsement_area));
        }
        Some(Rc::new(Requirements(found)))
    }

    #[allow(clippy::type_complexity)]
    fn run(
        &mut self,
        policy: &PolicyVersion,
        student: &Prepared,
        as_of: NaiveDate,
        requirements: Rc<Requirements>,
    ) -> Result<(Vec<Reason>, Vec<Missing>, Option<Payee>), RunError> {
        let compiled = self.compiled(policy)?;
        let plan = compiled
            .plan
            .as_ref()
            .filter(|p| self.plans && p.fits(self.engine.max_operations()));
        if let Some(plan) = plan {
            // A step that fails falls through to rhai, which says why and where.
            let s = StudentRef(student.student.clone(), as_of, requirements.clone());
            if let Some(decided) = plan.run(&s, compiled.meta.clone()) {
                return Ok(decided);
            }
        }
        let ctx = compiled.context(as_of);
        // The decision `require(...)` and `pay_to_...(...)` record into, reached by the natives
        // through the run's tag.
        let implicit = Checks::for_policy(compiled.meta.clone());
        let mut global = self.engine.new_global_runtime_state();
        global.lib.push(compiled.ast.shared_lib().clone());
        global.tag = Dynamic::from(implicit.clone());
        let scope = &mut self.scope;
        let [student_name, ctx_name] = &compiled.params;
        scope.push(
            student_name.clone(),
            StudentRef(student.student.clone(), as_of, requirements),
        );
        scope.push(ctx_name.clone(), ctx);
        let mut caches = compiled.caches.borrow_mut();
        #[allow(deprecated)] // the one rhai entry point that keeps `caches` across runs
        let result = self.engine.eval_statements_raw(
            &mut global,
            &mut caches,
            scope,
            compiled.body.statements(),
        );
        scope.clear();
        if result.is_err() {
            // An error may leave a nested resolution level behind; start clean.
            *caches = Caches::new();
        }
        drop(caches);
        drop(global);
        let value = result.map_err(|e| run_error(*e))?;
        let implicit = implicit.into_data();
        let explicit = value.is::<Checks>() || value.is_map();
        if !implicit.reasons.is_empty() || implicit.payee.is_some() {
            if explicit {
                return Err(RunError::Script(
                    "evaluate both called require(...) and returned a decision: use one style"
                        .into(),
                ));
            }
            if !value.is_unit() {
                return Err(RunError::Script(format!(
                    "evaluate called require(...) but ended with a value ({}): end it with a statement",
                    value.type_name()
                )));
            }
            if implicit.reasons.is_empty() {
                return Err(RunError::Script(
                    "evaluate chose a payee but checked no criteria: nothing was checked".into(),
                ));
            }
            return Ok((implicit.reasons, implicit.missing, implicit.payee));
        }
        if value.is_unit() {
            return Err(RunError::Script(
                "evaluate checked no criteria: call require(...) for each".into(),
            ));
        }
        if value.is::<Checks>() {
            let checks = value
                .try_cast::<Checks>()
                .ok_or_else(|| {
                    RunError::Script("policy script returned an unreadable checks() value".into())
                })?
                .into_data();
            if checks.reasons.is_empty() {
                return Err(RunError::Script(
                    "evaluate returned checks() with no criteria: nothing was checked".into(),
                ));
            }
            return Ok((checks.reasons, checks.missing, checks.payee));
        }
        if value.is_map() {
            let map: ReturnedMap = rhai::serde::from_dynamic(&value).map_err(|e| {
                RunError::Script(format!("evaluate returned a malformed decision map: {e}"))
            })?;
            let all_passed = map.reasons.iter().all(|r| r.status == Status::Passed);
            if map.reasons.is_empty() {
                return Err(RunError::Script(
                    "evaluate returned no reasons: nothing was checked".into(),
                ));
            }
            if map.eligible != all_passed {
                return Err(RunError::Script(format!(
                    "evaluate returned eligible = {} but its reasons say {}",
                    map.eligible,
                    if all_passed {
                        "every criterion passed"
                    } else {
                        "a criterion did not pass"
                    }
                )));
            }
            return Ok((map.reasons, map.missing, map.payee));
        }
        Err(RunError::Script(format!(
            "evaluate must return checks() or a map with eligible, reasons and missing; it returned {}",
            value.type_name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::policy::engine::build_engine;
    use crate::policy::registry::load_version;
    use crate::policy::PolicyError;

    fn policy(body: &str) -> Result<PolicyVersion, PolicyError> {
        let src = format!(
            r#"fn policy() {{ #{{ id: "p", version: 1, title: "T", sponsor: "S",
                award: #{{ kind: "scholarship", amount_cents: 100 }}, effective_from: "2020-01-01" }} }}
               fn evaluate(student, ctx) {{ {body} }}"#
        );
        load_version(&build_engine(&Limits::default()), &src, "test")
    }

    fn student(json: &str) -> Prepared {
        Prepared::new(Student::from_json(json).unwrap())
    }

    fn run(body: &str) -> Decision {
        let p = policy(body).unwrap();
        let mut ev = Evaluator::default();
        ev.evaluate(
            &p,
            &student(r#"{"student_id":"s1"}"#),
            "2024-06-01".parse().unwrap(),
        )
    }

    /// A requirement that cannot be decided makes `meets` unknown, never the incentive an error:
    /// a student who earned the endorsement still passes.
    #[test]
    fn a_broken_requirement_is_unknown_to_the_incentives_that_refer_to_it() {
        let broken = load_version(
            &build_engine(&Limits::default()),
            r#"fn policy() { #{ id: "r", version: 1, title: "R", sponsor: "S", kind: "requirement",
                effective_from: "2020-01-01" } }
               fn evaluate(s, ctx) { throw "broken"; }"#,
            "r",
        )
        .unwrap();
        let incentive = load_version(
            &build_engine(&Limits::default()),
            r#"fn policy() { #{ id: "i", version: 1, title: "I", sponsor: "S",
                award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01" } }
               fn evaluate(s, ctx) {
                 require("e", with_steps(s.endorsement_earned("health_sciences_technology"), s.meets("r")), "E", "e");
               }"#,
            "i",
        )
        .unwrap();
        let r = crate::policy::Registry::new(vec![broken, incentive], vec![]).unwrap();
        let i = r.version("i", 1).unwrap();
        let mut ev = Evaluator::default();
        let as_of = "2024-06-01".parse().unwrap();
        let earned = student(
            r#"{"student_id":"s1","endorsements":[{"area":"health_sciences_technology","status":"earned"}]}"#,
        );
        assert_eq!(ev.evaluate(i, &earned, as_of).outcome, Outcome::Eligible);
        let d = ev.evaluate(
            i,
            &student(r#"{"student_id":"s2","endorsements":[]}"#),
            as_of,
        );
        assert_eq!(d.outcome, Outcome::Ineligible, "{d:?}");
    }

    /// Runs a hostile script and checks it fails closed, quickly.
    fn assert_fails_closed(body: &str, needle: &str) {
        let p = policy(body).unwrap();
        let mut ev = Evaluator::default();
        let s = student(r#"{"student_id":"s1"}"#);
        let as_of = "2024-06-01".parse().unwrap();
        ev.evaluate(&p, &s, as_of); // compile once, outside the timing
        let start = Instant::now();
        let d = ev.evaluate(&p, &s, as_of);
        let took = start.elapsed();
        assert_eq!(d.outcome, Outcome::Error, "{body}: {d:?}");
        assert!(d.payee.is_none());
        let err = d.error.clone().unwrap();
        assert!(err.to_lowercase().contains(needle), "{body}: {err}");
        assert!(d.is_consistent());
        assert!(took < Duration::from_millis(100), "{body} took {took:?}");
    }

    #[test]
    fn endless_loop_hits_the_operation_limit() {
        assert_fails_closed("loop { }", "too many operations");
    }

    #[test]
    fn unbounded_recursion_hits_the_call_depth_limit() {
        // Script functions cannot see each other's scope, but they can call each other.
        let src = r#"fn policy() { #{ id: "p", version: 1, title: "T", sponsor: "S",
                award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01" } }
               fn deep(n) { deep(n + 1) }
               fn evaluate(student, ctx) { deep(0) }"#;
        let p = load_version(&build_engine(&Limits::default()), src, "t").unwrap();
        let mut ev = Evaluator::default();
        let start = Instant::now();
        let d = ev.evaluate(
            &p,
            &student(r#"{"student_id":"s1"}"#),
            "2024-06-01".parse().unwrap(),
        );
        assert_eq!(d.outcome, Outcome::Error);
        assert!(
            d.error.unwrap().to_lowercase().contains("stack overflow"),
            "recursion must stop at the call depth limit"
        );
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn string_doubling_hits_the_string_size_limit() {
        assert_fails_closed(r#"let s = "xy"; loop { s += s; }"#, "length of string");
    }

    #[test]
    fn huge_array_hits_the_array_size_limit() {
        assert_fails_closed("let a = []; a.pad(100000000, 0); a", "size of array");
        assert_fails_closed("let a = []; loop { a.push(a.len()); }", "size of array");
    }

    #[test]
    fn huge_map_hits_the_map_size_limit() {
        assert_fails_closed(
            r#"let m = #{}; let i = 0; while i < 600 { m[`k${i}`] = i; i += 1; } m.len()"#,
            "size of object map",
        );
    }

    #[test]
    fn throw_is_an_error_with_the_message() {
        assert_fails_closed(r#"throw "no data feed today""#, "no data feed today");
    }

    #[test]
    fn wrong_return_types_are_errors() {
        assert_fails_closed("42", "must return checks()");
        assert_fails_closed(r#""eligible""#, "must return checks()");
        assert_fails_closed("#{ eligible: true }", "malformed decision map");
        assert_fails_closed("checks()", "no criteria");
        assert_fails_closed(
            r#"#{ eligible: true, reasons: [#{ code: "x", status: "failed", message: "m" }] }"#,
            "eligible = true",
        );
        assert_fails_closed(
            r#"#{ eligible: true, reasons: [#{ code: "x", status: "maybe", message: "m" }] }"#,
            "malformed",
        );
    }

    #[test]
    fn helper_misuse_is_an_error_not_a_failed_criterion() {
        assert_fails_closed(
            r#"let c = checks(); c.require("e", student.endorsement_earned("welding"), "m", "x"); c"#,
            "not an endorsement area",
        );
        assert_fails_closed(
            r#"let c = checks(); c.require("g", student.graduated_by("June"), "m", "x"); c"#,
            "not a yyyy-mm-dd date",
        );
        assert_fails_closed(
            r#"let c = checks(); c.require("g", 42, "m", "x"); c"#,
            "function not found",
        );
        assert_fails_closed("student.no_such_field", "no_such_field");
    }

    #[test]
    fn eval_and_modules_are_refused_at_compile_time() {
        assert!(policy(r#"eval("1")"#).is_err());
        // Built without module support: `import` does not even parse.
        let err = policy(r#"import "secrets" as s; 1"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("import"), "{err}");
    }

    #[test]
    fn require_statements_record_the_decision_without_checks() {
        let d = run(
            r#"require("g", student.graduated_by(ctx.as_of), "Graduated", "Graduate");
               require("t", true, "Always", "Nothing");
               if eligible_so_far() { pay_to_institution("jjc"); }"#,
        );
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert_eq!(d.reasons.len(), 2);
        assert_eq!(d.reasons[0].status, Status::Unknown);
        assert_eq!(d.reasons[0].fields, vec!["graduation_date".to_string()]);
        assert_eq!(d.reasons[1].status, Status::Passed);
        assert_eq!(d.missing.len(), 1);
        assert!(d.payee.is_none());
        assert!(d.is_consistent());

        let d = run(r#"require("t", true, "Always", "Nothing"); pay_to_institution("jjc");"#);
        assert_eq!(d.outcome, Outcome::Eligible);
        assert_eq!(d.payee.unwrap().institution_id.as_deref(), Some("jjc"));
    }

    #[test]
    fn require_with_a_declared_code_takes_its_words_from_the_metadata() {
        let src = r#"fn policy() { #{ id: "p", version: 1, title: "T", sponsor: "S",
                award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01",
                criteria: #{ grad: #{ label: "Graduation", missing: "Graduate first" } } } }
            fn evaluate(student, ctx) {
                require("grad", student.graduated_by("2020-01-01"));
                if ctx.as_of == "2024-06-01" { require("other", true); }
            }"#;
        let p = load_version(&build_engine(&Limits::default()), src, "test").unwrap();
        let mut ev = Evaluator::default();
        let s = student(r#"{"student_id":"s1","graduation_date":"2024-05-30"}"#);
        let d = ev.evaluate(&p, &s, "2020-06-01".parse().unwrap());
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert!(d.reasons[0].message.starts_with("Graduation: "), "{d:?}");
        assert_eq!(d.missing[0].message, "Graduate first");
        // An undeclared code is the script's error, named.
        let d = ev.evaluate(&p, &s, "2024-06-01".parse().unwrap());
        assert_eq!(d.outcome, Outcome::Error);
        let err = d.error.unwrap();
        assert!(err.contains("\"other\" is not declared"), "{err}");
    }

    #[test]
    fn student_graduated_is_graduated_by_the_evaluation_date() {
        let src = r#"fn policy() { #{ id: "p", version: 1, title: "T", sponsor: "S",
                award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01" } }
            fn evaluate(student, ctx) {
                require("g", student.graduated, "G", "g");
                require("same", student.graduated.status == student.graduated_by(ctx.as_of).status, "S", "s");
            }"#;
        let p = load_version(&build_engine(&Limits::default()), src, "test").unwrap();
        let mut ev = Evaluator::default();
        let s = student(r#"{"student_id":"s1","graduation_date":"2024-05-30"}"#);
        for (as_of, status) in [
            ("2024-05-29", Status::Failed),
            ("2024-05-30", Status::Passed),
        ] {
            let d = ev.evaluate(&p, &s, as_of.parse().unwrap());
            assert_eq!(d.reasons[0].status, status, "{as_of}: {d:?}");
            assert_eq!(d.reasons[1].status, Status::Passed, "{as_of}: {d:?}");
        }
        let d = ev.evaluate(
            &p,
            &student(r#"{"student_id":"s1"}"#),
            "2024-06-01".parse().unwrap(),
        );
        assert_eq!(d.reasons[0].status, Status::Unknown);
    }

    #[test]
    fn a_decision_is_recorded_in_one_style_only() {
        for (body, needle) in [
            // nothing checked at all
            ("let x = 1;", "no criteria"),
            // a payee but no criterion
            ("pay_to_student();", "no criteria"),
            // statements, then a value at the end
            (r#"require("t", true, "a", "b"); 5"#, "ended with a value"),
            // statements and a returned checks()
            (
                r#"require("t", true, "a", "b"); let c = checks(); c.require("u", true, "a", "b"); c"#,
                "one style",
            ),
        ] {
            let d = run(body);
            assert_eq!(d.outcome, Outcome::Error, "{body}");
            let err = d.error.unwrap();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn require_outside_evaluate_is_an_error() {
        let src = r#"fn policy() { require("t", true, "a", "b"); #{ id: "p", version: 1, title: "T",
                sponsor: "S", award: #{ kind: "scholarship", amount_cents: 100 },
                effective_from: "2020-01-01" } }
            fn evaluate(student, ctx) { require("t", true, "a", "b"); }"#;
        let err = load_version(&build_engine(&Limits::default()), src, "test").unwrap_err();
        assert!(
            err.to_string().contains("only while evaluate runs"),
            "{err}"
        );
    }

    #[test]
    fn errors_point_at_lines_of_the_file_and_parameters_may_be_renamed() {
        let src = "fn policy() { #{ id: \"p\", version: 1, title: \"T\", sponsor: \"S\",\n\
            award: #{ kind: \"scholarship\", amount_cents: 100 }, effective_from: \"2020-01-01\" } }\n\
            fn evaluate(s, c) {\n\
            \trequire(\"g\", s.graduated_by(c.as_of), \"G\", \"g\");\n\
            \tthrow \"boom\";\n\
            }";
        let p = load_version(&build_engine(&Limits::default()), src, "test").unwrap();
        let d = Evaluator::default().evaluate(
            &p,
            &student(r#"{"student_id":"s1"}"#),
            "2024-06-01".parse().unwrap(),
        );
        let err = d.error.unwrap();
        assert!(err.contains("boom") && err.contains("line 5"), "{err}");
    }

    #[test]
    fn deep_expressions_are_refused() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(policy(&deep).is_err());
    }

    #[test]
    fn the_map_form_is_accepted_when_consistent() {
        let d = run(r#"#{ eligible: false,
            reasons: [#{ code: "x", status: "unknown", message: "m", fields: ["graduation_date"] }],
            missing: [#{ code: "x", message: "tell us", fields: ["graduation_date"] }] }"#);
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert_eq!(d.reasons[0].status, Status::Unknown);
        assert_eq!(d.missing[0].fields, vec!["graduation_date".to_string()]);
        assert!(d.is_consistent());
    }

    #[test]
    fn unknown_data_is_never_failed_and_never_eligible() {
        let d = run(r#"let c = checks();
               c.require("g", student.graduated_by(ctx.as_of), "Graduated", "Graduate");
               c.require("h", at_least(student.early_college_hours(), 6, "early_college_credits"), "Hours", "Earn 6 hours");
               c.require("u", (), "Something", "Tell us");
               c"#);
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert!(
            d.reasons.iter().all(|r| r.status == Status::Unknown),
            "{d:?}"
        );
        assert_eq!(d.missing.len(), 3);
        assert_eq!(d.missing[0].fields, vec!["graduation_date".to_string()]);
        assert_eq!(
            d.missing[1].fields,
            vec!["early_college_credits".to_string()]
        );
    }

    #[test]
    fn helpers_read_the_record() {
        let s = student(
            r#"{"student_id":"s1","graduation_date":"2024-05-30",
                "early_college_credits":[{"subject":"machining","credit_hours":6},{"subject":"welding","credit_hours":3.5}],
                "work_based_learning":[{"kind":"internship","hours":120},{"kind":"career_exploration"}],
                "attributes":{"county":"lasalle"}}"#,
        );
        let p = policy(
            r#"let c = checks();
               c.require("hours", at_least(student.early_college_hours(), 9.5, "early_college_credits"), "h", "m");
               c.require("machining", at_least(student.early_college_hours("machining"), 6, "early_college_credits"), "h", "m");
               c.require("welding", at_least(student.early_college_hours("welding"), 4, "early_college_credits"), "h", "m");
               c.require("wbl", at_least(student.work_based_hours("internship"), 60, "work_based_learning"), "h", "m");
               c.require("county", student.attribute("county") == "lasalle", "county", "m");
               c.require("days", days_between(student.graduation_date, ctx.as_of) == 2, "days", "m");
               c.require("meta", ctx.policy.award.amount_cents == 100, "meta", "m");
               c.require("both", both(student.graduated_by(ctx.as_of), student.graduated_by("2024-01-01")), "both", "m");
               c"#,
        )
        .unwrap();
        let d = Evaluator::default().evaluate(&p, &s, "2024-06-01".parse().unwrap());
        let status = |code: &str| d.reasons.iter().find(|r| r.code == code).unwrap().status;
        assert_eq!(status("hours"), Status::Passed);
        assert_eq!(status("machining"), Status::Passed);
        assert_eq!(status("welding"), Status::Failed);
        assert_eq!(status("wbl"), Status::Passed);
        assert_eq!(status("county"), Status::Passed);
        assert_eq!(status("days"), Status::Passed);
        assert_eq!(status("meta"), Status::Passed);
        assert_eq!(status("both"), Status::Failed);
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert_eq!(d.missing.len(), 2);
    }

    #[test]
    fn eligible_scholarships_default_to_the_student_and_ineligible_have_no_payee() {
        let d = run(r#"let c = checks(); c.require("a", true, "A", "a"); c"#);
        assert_eq!(d.outcome, Outcome::Eligible);
        assert_eq!(d.payee.unwrap().kind, PayeeKind::Student);
        let d = run(
            r#"let c = checks(); c.require("a", false, "A", "a"); c.pay_to_institution("x"); c"#,
        );
        assert_eq!(d.outcome, Outcome::Ineligible);
        assert!(d.payee.is_none());
    }

    #[test]
    fn the_same_evaluator_serves_many_policies_and_records() {
        let a =
            policy(r#"let c = checks(); c.require("a", student.student_id == "s1", "A", "a"); c"#)
                .unwrap();
        let b =
            policy(r#"let c = checks(); c.require("b", student.student_id == "s2", "B", "b"); c"#)
                .unwrap();
        let mut ev = Evaluator::default();
        let as_of = "2024-06-01".parse().unwrap();
        let s1 = student(r#"{"student_id":"s1"}"#);
        let s2 = student(r#"{"student_id":"s2"}"#);
        assert_eq!(ev.evaluate(&a, &s1, as_of).outcome, Outcome::Eligible);
        assert_eq!(ev.evaluate(&b, &s1, as_of).outcome, Outcome::Ineligible);
        assert_eq!(ev.evaluate(&b, &s2, as_of).outcome, Outcome::Eligible);
        assert_eq!(ev.evaluate(&a, &s2, as_of).outcome, Outcome::Ineligible);
    }

    #[test]
    fn a_tight_budget_gives_way_and_the_full_limit_decides() {
        let p = policy(
            r#"let n = 0; while n < 2000 { n += 1; }
               let c = checks(); c.require("n", n == 2000, "N", "n"); c"#,
        )
        .unwrap();
        let mut ev = Evaluator::default();
        let s = student(r#"{"student_id":"s1"}"#);
        let as_of = "2024-06-01".parse().unwrap();
        assert!(ev.evaluate_within(&p, &s, as_of, 500).is_none());
        let d = ev.evaluate_within(&p, &s, as_of, 1_000_000).unwrap();
        assert_eq!(d.outcome, Outcome::Eligible);
        // The engine's own limit is restored after a budgeted call.
        assert_eq!(ev.evaluate(&p, &s, as_of).outcome, Outcome::Eligible);
        let endless = policy("loop { }").unwrap();
        let d = ev.evaluate_within(&endless, &s, as_of, u64::MAX).unwrap();
        assert_eq!(d.outcome, Outcome::Error);
    }
}
