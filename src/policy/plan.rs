//! Direct plans: the common shape of `fn evaluate`, run without the interpreter's dispatch.
//!
//! Most policies are a list of statements such as
//! `require("code", student.endorsement_earned("..."));` and
//! `pay_to_college_if_requested(student);`. Run by rhai, each call costs a name resolution, an
//! argument vector, type checks and a size check, about as much as the native helper it reaches.
//! When a compiled body consists only of such statements, [`Plan::build`] turns it into a list of
//! steps that call the very same native helpers directly.
//!
//! A plan decides exactly what rhai would decide:
//! - only a closed set of shapes is recognised, each mapped to the helper rhai would resolve the
//!   call to; anything else (a `let`, an `if`, another function, a non-literal argument, ...)
//!   leaves the policy to rhai;
//! - a script that defines a function with a helper's name (which rhai would call instead of the
//!   helper) is left to rhai;
//! - when a step fails (an unknown endorsement area, an undeclared criterion, ...), the plan
//!   gives up and the caller runs the script through rhai, which reports the error with its
//!   position; scripts are pure, so running them again decides the same;
//! - a plan has no loops and at most [`MAX_STEPS`] statements; it records an upper bound of the
//!   operations rhai would count for the same body and runs only where the limit in force allows
//!   that many (otherwise rhai runs and hits the limit as it would); literal lists longer than the
//!   engine's array limit are left to rhai, which refuses them.
//!
//! `Evaluator::interpreted` turns plans off; tests compare both paths decision by decision.

use std::rc::Rc;

use rhai::{Array, Dynamic, Expr, FnCallExpr, ImmutableString, Stmt, AST};

use super::decision::{Missing, Payee, Reason};
use super::engine::{
    absent_check, academic_readiness, at_least, bool_check, career_exploration, college_status,
    combine, coursework_years, early_college_hours, endorsement_earned_any, graduated_by,
    graduated_on, learning_plan, local_job_offer, meets, progress, skills_assessment,
    supervised_experience, with_steps, work_based_count, work_based_hours, Check, Checks, Limits,
    StudentRef,
};
use super::registry::PolicyMeta;

/// Statements a plan may hold; a longer body is left to rhai (and its operation limit).
pub const MAX_STEPS: usize = 64;
/// Items a literal list in a plan may hold (far below the engine's array limit).
const MAX_LIST: usize = 64;

/// The steps of one `evaluate` body.
#[derive(Debug)]
pub struct Plan {
    steps: Vec<Step>,
    /// At least the operations rhai counts running the same body (every AST node counted three
    /// times; rhai counts each statement, expression and call once).
    operations: u64,
}

#[derive(Debug)]
enum Step {
    /// `require(code, value)` (words from `policy().criteria`) or
    /// `require(code, value, message, missing)`.
    Require {
        code: ImmutableString,
        value: Value,
        words: Option<(ImmutableString, ImmutableString)>,
    },
    PayToStudent,
    PayToInstitution(ImmutableString),
    PayToCollegeIfRequested,
}

/// What `require` is given: a check, or a literal `true`/`false`/`()`.
#[derive(Debug)]
enum Value {
    Check(Node),
    Bool(bool),
    Unit,
}

/// A check-valued expression.
#[derive(Debug)]
enum Node {
    EndorsementEarned(Vec<ImmutableString>),
    /// `student.graduated`, and `student.graduated_by(ctx.as_of)`.
    Graduated,
    GraduatedBy(ImmutableString),
    CollegeStatusIn(Array),
    Attending(ImmutableString, Array),
    LocalJobOffer(Array),
    AtLeast {
        amount: Amount,
        min: f64,
        field: ImmutableString,
    },
    Either(Box<Node>, Box<Node>),
    Both(Box<Node>, Box<Node>),
    /// `progress(amount, target, unit, field)`.
    Progress {
        amount: Amount,
        target: f64,
        unit: ImmutableString,
        field: ImmutableString,
    },
    LearningPlan,
    SkillsAssessment,
    AcademicReadiness,
    CareerExploration,
    SupervisedExperience(f64),
    /// `student.meets("id")`.
    Meets(ImmutableString),
    /// `with_steps(check, student.meets(..))` or `with_steps(check, [student.meets(..), ..])`.
    WithSteps(Box<Node>, Vec<Node>),
}

/// A number-valued expression, for `at_least`.
#[derive(Debug)]
enum Amount {
    EarlyCollegeHours(Option<ImmutableString>),
    WorkBasedHours(Option<ImmutableString>),
    CourseworkYears,
    WorkBasedCount(ImmutableString),
}

/// The names `evaluate` gave its parameters, and the engine's limits.
struct Names<'a> {
    student: &'a str,
    ctx: &'a str,
    limits: &'a Limits,
}

impl Plan {
    /// The plan of `body` (the statements of `fn evaluate(student, ctx)`), or `None` when it
    /// holds anything a plan does not cover. `script` is the whole script, for its functions.
    pub fn build(
        script: &AST,
        body: &AST,
        student: &str,
        ctx: &str,
        limits: &Limits,
    ) -> Option<Self> {
        // A script function named like a helper is what rhai would call instead.
        if script
            .iter_functions()
            .any(|f| super::engine::planned(f.name))
        {
            return None;
        }
        let names = Names {
            student,
            ctx,
            limits,
        };
        let mut steps = Vec::new();
        let mut nodes = 0u64;
        for stmt in body.statements() {
            nodes += 1;
            let call = match stmt {
                Stmt::Noop(..) => continue,
                Stmt::FnCall(call, ..) => call,
                Stmt::Expr(expr) => match &**expr {
                    Expr::FnCall(call, ..) => call,
                    _ => return None,
                },
                _ => return None,
            };
            nodes += call.args.iter().map(size).sum::<u64>() + 1;
            steps.push(step(call, &names)?);
            if steps.len() > MAX_STEPS {
                return None;
            }
        }
        // A body that checks nothing is an error, which rhai's path words.
        if !steps.iter().any(|s| matches!(s, Step::Require { .. })) {
            return None;
        }
        Some(Self {
            steps,
            operations: 3 * nodes + 3,
        })
    }

    /// Whether the plan may run under an operation limit of `limit`.
    pub fn fits(&self, limit: u64) -> bool {
        self.operations <= limit
    }

    /// The least operation limit the plan runs under.
    #[cfg(test)]
    pub fn operations(&self) -> u64 {
        self.operations
    }

    /// Runs the plan for `student` under `policy`: the reasons, missing items and payee, or
    /// `None` when a step failed and the script must run through rhai to say why.
    pub fn run(
        &self,
        student: &StudentRef,
        policy: Rc<PolicyMeta>,
    ) -> Option<(Vec<Reason>, Vec<Missing>, Option<Payee>)> {
        let mut checks = Checks::for_policy(policy);
        for step in &self.steps {
            match step {
                Step::Require { code, value, words } => {
                    let check = match value {
                        Value::Check(node) => node.check(student)?,
                        Value::Bool(b) => bool_check(*b),
                        Value::Unit => absent_check(),
                    };
                    match words {
                        None => checks.require_declared(code, check).ok()?,
                        Some((message, missing)) => checks.require(code, check, message, missing),
                    }
                }
                Step::PayToStudent => checks.pay_to_student(),
                Step::PayToInstitution(id) => checks.pay_to_institution(id),
                Step::PayToCollegeIfRequested => checks.pay_to_college_if_requested(student),
            }
        }
        let data = checks.into_data();
        Some((data.reasons, data.missing, data.payee))
    }
}

impl Node {
    fn check(&self, s: &StudentRef) -> Option<Check> {
        match self {
            Node::EndorsementEarned(areas) => endorsement_earned_any(s, areas).ok(),
            Node::Graduated => Some(graduated_on(s, s.1)),
            Node::GraduatedBy(date) => graduated_by(s, date).ok(),
            Node::CollegeStatusIn(statuses) => college_status(s, None, statuses).ok(),
            Node::Attending(id, statuses) => college_status(s, Some(id), statuses).ok(),
            Node::LocalJobOffer(prefixes) => local_job_offer(s, prefixes).ok(),
            Node::AtLeast { amount, min, field } => at_least(amount.value(s), *min, field).ok(),
            Node::Either(a, b) => Some(combine(a.check(s)?, b.check(s)?, true)),
            Node::Both(a, b) => Some(combine(a.check(s)?, b.check(s)?, false)),
            Node::Progress {
                amount,
                target,
                unit,
                field,
            } => progress(amount.value(s), *target, unit, field).ok(),
            Node::LearningPlan => Some(learning_plan(s)),
            Node::SkillsAssessment => Some(skills_assessment(s)),
            Node::AcademicReadiness => Some(academic_readiness(s)),
            Node::CareerExploration => Some(career_exploration(s)),
            Node::SupervisedExperience(target) => Some(supervised_experience(s, *target)),
            Node::Meets(id) => meets(s, id).ok(),
            Node::WithSteps(check, from) => {
                let from: Option<Vec<Check>> = from.iter().map(|n| n.check(s)).collect();
                Some(with_steps(check.check(s)?, &from?))
            }
        }
    }
}

impl Amount {
    fn value(&self, s: &StudentRef) -> Dynamic {
        match self {
            Amount::EarlyCollegeHours(subject) => early_college_hours(s, subject.as_deref()),
            Amount::WorkBasedHours(kind) => work_based_hours(s, kind.as_deref()),
            Amount::CourseworkYears => coursework_years(s),
            Amount::WorkBasedCount(kind) => work_based_count(s, kind),
        }
    }
}

/// A plain call of a helper that `engine::HELPERS` declares planned: no `!` (scope capture)
/// and no operator form.
fn plain(call: &FnCallExpr) -> bool {
    !call.capture_parent_scope && call.op_token.is_none() && super::engine::planned(&call.name)
}

fn step(call: &FnCallExpr, names: &Names) -> Option<Step> {
    if !plain(call) {
        return None;
    }
    let args = &call.args[..];
    Some(match (call.name.as_str(), args) {
        ("require", [code, value]) => Step::Require {
            code: string(code)?,
            value: value_of(value, names)?,
            words: None,
        },
        ("require", [code, value, message, missing]) => Step::Require {
            code: string(code)?,
            value: value_of(value, names)?,
            words: Some((string(message)?, string(missing)?)),
        },
        ("pay_to_student", []) => Step::PayToStudent,
        ("pay_to_institution", [id]) => Step::PayToInstitution(string(id)?),
        ("pay_to_college_if_requested", [s]) if is_var(s, names.student) => {
            Step::PayToCollegeIfRequested
        }
        _ => return None,
    })
}

fn value_of(expr: &Expr, names: &Names) -> Option<Value> {
    Some(match expr {
        Expr::BoolConstant(b, ..) => Value::Bool(*b),
        Expr::Unit(..) => Value::Unit,
        _ => Value::Check(node(expr, names)?),
    })
}

fn node(expr: &Expr, names: &Names) -> Option<Node> {
    match expr {
        Expr::FnCall(call, ..) if plain(call) => match (call.name.as_str(), &call.args[..]) {
            ("either", [a, b]) => Some(Node::Either(
                Box::new(node(a, names)?),
                Box::new(node(b, names)?),
            )),
            ("both", [a, b]) => Some(Node::Both(
                Box::new(node(a, names)?),
                Box::new(node(b, names)?),
            )),
            ("with_steps", [check, from]) => {
                let from = match from {
                    Expr::Array(items, ..) if items.len() <= MAX_LIST => items
                        .iter()
                        .map(|i| node(i, names))
                        .collect::<Option<Vec<_>>>()?,
                    other => vec![node(other, names)?],
                };
                Some(Node::WithSteps(Box::new(node(check, names)?), from))
            }
            ("progress", [value, target, unit, field]) => Some(Node::Progress {
                amount: amount(value, names)?,
                target: number(target)?,
                unit: string(unit)?,
                field: string(field)?,
            }),
            ("at_least", [value, min, field]) => Some(Node::AtLeast {
                amount: amount(value, names)?,
                min: number(min)?,
                field: string(field)?,
            }),
            _ => None,
        },
        Expr::Dot(dot, flags, ..) if flags.is_empty() && is_var(&dot.lhs, names.student) => {
            match &dot.rhs {
                Expr::Property(p, ..) if super::engine::planned(p.2.as_str()) => {
                    match p.2.as_str() {
                        "graduated" => Some(Node::Graduated),
                        "learning_plan" => Some(Node::LearningPlan),
                        "skills_assessment" => Some(Node::SkillsAssessment),
                        "academic_readiness" => Some(Node::AcademicReadiness),
                        _ => None,
                    }
                }
                Expr::MethodCall(call, ..) if plain(call) => method(call, names),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `student.<helper>(args)`: the overload rhai would pick for these argument types.
fn method(call: &FnCallExpr, names: &Names) -> Option<Node> {
    Some(match (call.name.as_str(), &call.args[..]) {
        ("endorsement_earned", [area]) => match area {
            Expr::StringConstant(s, ..) => Node::EndorsementEarned(vec![s.clone()]),
            list => Node::EndorsementEarned(string_list(list, names.limits)?),
        },
        ("graduated_by", [date]) if is_as_of(date, names) => Node::Graduated,
        ("graduated_by", [date]) => Node::GraduatedBy(string(date)?),
        ("college_status_in", [statuses]) => Node::CollegeStatusIn(array(statuses, names.limits)?),
        ("attending", [id, statuses]) => {
            Node::Attending(string(id)?, array(statuses, names.limits)?)
        }
        ("local_job_offer", [prefixes]) => Node::LocalJobOffer(array(prefixes, names.limits)?),
        ("meets", [id]) => Node::Meets(string(id)?),
        ("career_exploration", []) => Node::CareerExploration,
        ("supervised_experience", [target]) => Node::SupervisedExperience(number(target)?),
        _ => return None,
    })
}

fn amount(expr: &Expr, names: &Names) -> Option<Amount> {
    let Expr::Dot(dot, flags, ..) = expr else {
        return None;
    };
    let Expr::MethodCall(call, ..) = &dot.rhs else {
        return None;
    };
    if !flags.is_empty() || !is_var(&dot.lhs, names.student) || !plain(call) {
        return None;
    }
    Some(match (call.name.as_str(), &call.args[..]) {
        ("early_college_hours", []) => Amount::EarlyCollegeHours(None),
        ("early_college_hours", [subject]) => Amount::EarlyCollegeHours(Some(string(subject)?)),
        ("work_based_hours", []) => Amount::WorkBasedHours(None),
        ("work_based_hours", [kind]) => Amount::WorkBasedHours(Some(string(kind)?)),
        ("coursework_years", []) => Amount::CourseworkYears,
        ("work_based_count", [kind]) => Amount::WorkBasedCount(string(kind)?),
        _ => return None,
    })
}

/// The nodes of an expression (a plan's expressions are calls, dots, lists and literals).
fn size(expr: &Expr) -> u64 {
    1 + match expr {
        Expr::FnCall(call, ..) | Expr::MethodCall(call, ..) => call.args.iter().map(size).sum(),
        Expr::Dot(dot, ..) => size(&dot.lhs) + size(&dot.rhs),
        Expr::Array(items, ..) => items.iter().map(size).sum(),
        _ => 0,
    }
}

fn is_var(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Variable(v, ..) if v.1.as_str() == name)
}

/// `ctx.as_of`, the evaluation date (which `graduated_by` parses back into itself).
fn is_as_of(expr: &Expr, names: &Names) -> bool {
    matches!(expr, Expr::Dot(dot, flags, ..)
        if flags.is_empty()
            && is_var(&dot.lhs, names.ctx)
            && matches!(&dot.rhs, Expr::Property(p, ..) if p.2.as_str() == "as_of")
            && super::engine::planned("as_of"))
}

fn string(expr: &Expr) -> Option<ImmutableString> {
    match expr {
        Expr::StringConstant(s, ..) => Some(s.clone()),
        Expr::DynamicConstant(d, ..) if d.is_string() => d.clone().into_immutable_string().ok(),
        _ => None,
    }
}

fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::IntegerConstant(i, ..) => Some(*i as f64),
        Expr::FloatConstant(f, ..) => Some(**f),
        _ => None,
    }
}

/// A literal list of strings, within the engine's array and string limits (rhai refuses a
/// longer one when it builds it).
fn string_list(expr: &Expr, limits: &Limits) -> Option<Vec<ImmutableString>> {
    let items: Vec<ImmutableString> = match expr {
        Expr::Array(items, ..) => items.iter().map(string).collect::<Option<_>>()?,
        Expr::DynamicConstant(d, ..) if d.is_array() => d
            .read_lock::<Array>()?
            .iter()
            .map(|v| v.clone().into_immutable_string().ok())
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let bytes: usize = items.iter().map(|s| s.len()).sum();
    (items.len() <= MAX_LIST.min(limits.max_array_size) && bytes <= limits.max_string_size)
        .then_some(items)
}

/// A literal list of strings, as the array rhai would pass.
fn array(expr: &Expr, limits: &Limits) -> Option<Array> {
    Some(
        string_list(expr, limits)?
            .into_iter()
            .map(Dynamic::from)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::policy::engine::{build_engine, Limits};
    use crate::policy::registry::{load_version, Registry};
    use crate::policy::{Decision, Evaluator, PolicyVersion, Prepared, Student};

    fn policy(body: &str, extra: &str) -> PolicyVersion {
        let src = format!(
            r#"fn policy() {{ #{{ id: "p", version: 1, title: "T", sponsor: "S",
                award: #{{ kind: "scholarship", amount_cents: 100 }}, effective_from: "2020-01-01",
                criteria: #{{ e: #{{ label: "E", missing: "Earn E" }}, g: #{{ label: "G", missing: "Graduate" }} }} }} }}
               {extra}
               fn evaluate(student, ctx) {{ {body} }}"#
        );
        load_version(&build_engine(&Limits::default()), &src, "test").unwrap()
    }

    /// Records that take every helper down each of its branches.
    const RECORDS: &[&str] = &[
        r#"{"student_id":"empty"}"#,
        r#"{"student_id":"full","graduation_date":"2024-05-30",
            "endorsements":[{"area":"manufacturing_engineering_technology_trades","status":"earned","earned_on":"2024-05-30"}],
            "early_college_credits":[{"subject":"welding","credit_hours":3.0},{"subject":"cad","credit_hours":1.0}],
            "work_based_learning":[{"kind":"internship","hours":120}],
            "job_offers":[{"employer":"Acme","naics":"332710","local":true}],
            "postsecondary":{"institution_id":"jjc","status":"enrolled"},"payee_preference":"institution"}"#,
        r#"{"student_id":"partial","graduation_date":"2025-05-30",
            "endorsements":[{"area":"health_sciences_technology","status":"in_progress"}],
            "early_college_credits":[],"work_based_learning":[{"kind":"internship"}],
            "job_offers":[{"employer":"Far","naics":"541511","local":true},{"naics":"311"}],
            "postsecondary":{"status":"applied"},"payee_preference":"institution"}"#,
        r#"{"student_id":"other","endorsements":[],"job_offers":[],"postsecondary":{"institution_id":"ivcc","status":"admitted"}}"#,
    ];

    /// Every decision of `p`, on every record and two dates, by `ev`.
    fn decisions(ev: &mut Evaluator, p: &PolicyVersion) -> Vec<Decision> {
        let mut out = Vec::new();
        for r in RECORDS {
            let s = Prepared::new(Student::from_json(r).unwrap());
            for day in ["2024-06-01", "2025-01-15"] {
                let as_of: NaiveDate = day.parse().unwrap();
                out.push(ev.evaluate(p, &s, as_of));
            }
        }
        out
    }

    fn has_plan(body: &str, extra: &str) -> bool {
        Evaluator::default().plans_for(&policy(body, extra))
    }

    /// Bodies of the shape a plan covers: each must become a plan and decide as rhai does,
    /// including the ones whose steps fail (rhai then words the error).
    const PLANNED: &[&str] = &[
        r#"require("e", student.endorsement_earned("manufacturing_engineering_technology_trades"));
           require("g", student.graduated); pay_to_college_if_requested(student);"#,
        r#"require("e", student.endorsement_earned(["health_sciences_technology", "information_technology"]));
           require("g", student.graduated_by(ctx.as_of));"#,
        r#"require("g", student.graduated_by("2024-12-31"), "Graduated", "Graduate by the end of 2024");"#,
        r#"require("c", either(student.college_status_in(["admitted", "enrolled"]),
                               student.local_job_offer(["31", "32", "33"])), "College or job", "Get one");"#,
        r#"require("a", both(student.attending("jjc", ["enrolled"]), student.graduated), "JJC", "Enroll");
           pay_to_institution("jjc");"#,
        r#"require("h", at_least(student.early_college_hours(), 3, "early_college_credits"), "Hours", "More");
           require("w", at_least(student.work_based_hours("internship"), 60.5, "work_based_learning"), "WBL", "More");
           require("s", at_least(student.early_college_hours("welding"), 3.0, "early_college_credits"), "Welding", "More");
           require("t", at_least(student.work_based_hours(), 1, "work_based_learning"), "Any", "More");"#,
        r#"require("t", true, "Always", "-"); require("f", false, "Never", "-"); require("u", (), "Unknown", "-");
           pay_to_student();"#,
        // Steps that fail: rhai runs the script and reports the error.
        r#"require("x", student.graduated);"#,
        r#"require("e", student.endorsement_earned("welding"));"#,
        r#"require("g", student.graduated_by("June"), "G", "g");"#,
        r#"require("c", student.college_status_in(["graduated"]), "C", "c");"#,
        r#"require("c", student.attending("jjc", ["enrolled", "dropped"]), "C", "c");"#,
    ];

    /// Every helper declared planned in `engine::HELPERS` is reached by plans: its example
    /// becomes a plan and decides as rhai does.
    #[test]
    fn every_planned_helper_plans_and_decides_as_rhai_does() {
        use crate::policy::engine::{PlanForm, HELPERS};
        let mut planned = 0;
        for h in HELPERS {
            let PlanForm::Planned { example } = h.plan else {
                continue;
            };
            planned += 1;
            assert!(
                example.contains(h.name),
                "{}'s example does not use it",
                h.name
            );
            assert!(
                has_plan(example, ""),
                "{} is declared planned but its example is not a plan",
                h.name
            );
            let p = policy(example, "");
            let direct = decisions(&mut Evaluator::default(), &p);
            let interpreted = decisions(&mut Evaluator::interpreted(&Limits::default()), &p);
            assert_eq!(direct, interpreted, "{}", h.name);
        }
        assert!(planned >= 15, "only {planned} planned helpers");
    }

    #[test]
    fn plans_decide_exactly_as_rhai_does() {
        for body in PLANNED {
            assert!(has_plan(body, ""), "expected a plan for {body}");
            let p = policy(body, "");
            let direct = decisions(&mut Evaluator::default(), &p);
            let interpreted = decisions(&mut Evaluator::interpreted(&Limits::default()), &p);
            assert_eq!(direct, interpreted, "{body}");
        }
        // The failing bodies fail on every record, worded by rhai.
        let d = decisions(&mut Evaluator::default(), &policy(PLANNED[8], ""));
        assert!(d.iter().all(|d| d
            .error
            .as_deref()
            .is_some_and(|e| e.contains("is not an endorsement area") && e.contains("line"))));
    }

    #[test]
    fn a_plan_runs_only_where_rhai_would_stay_within_the_operation_limit() {
        let registry = Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
        let mut bodies: Vec<PolicyVersion> = PLANNED.iter().map(|b| policy(b, "")).collect();
        bodies.extend(registry.versions().iter().map(|v| (**v).clone()));
        let mut interpreted = Evaluator::interpreted(&Limits::default());
        for p in &bodies {
            let bound = Evaluator::default().plan_operations(p).unwrap();
            for r in RECORDS {
                let s = Prepared::new(Student::from_json(r).unwrap());
                let as_of = "2024-06-01".parse().unwrap();
                // rhai finishes within the plan's bound, so a plan never decides where rhai
                // would have run out.
                let d = interpreted.evaluate_within(p, &s, as_of, bound);
                assert!(
                    d.is_some(),
                    "rhai needs more than {bound} operations: {}",
                    p.source
                );
                // Under a tighter limit the plan stands aside and rhai runs out as it would.
                let tight = Limits {
                    max_operations: 2,
                    ..Limits::default()
                };
                // (A fresh record each: requirement decisions are kept per record.)
                let fresh = || Prepared::new(Student::from_json(r).unwrap());
                let a = Evaluator::new(&tight).evaluate(p, &fresh(), as_of);
                let b = Evaluator::interpreted(&tight).evaluate(p, &fresh(), as_of);
                assert_eq!(a, b);
                assert!(
                    a.error
                        .as_deref()
                        .unwrap_or_default()
                        .contains("Too many operations"),
                    "{}: {a:?}",
                    p.meta.id
                );
                assert!(Evaluator::default()
                    .evaluate_within(p, &fresh(), as_of, 2)
                    .is_none());
            }
        }
    }

    #[test]
    fn lists_over_the_array_limit_are_left_to_rhai() {
        let body =
            r#"require("c", student.college_status_in(["admitted", "enrolled"]), "C", "c");"#;
        let small = Limits {
            max_array_size: 1,
            ..Limits::default()
        };
        let p = policy(body, "");
        assert!(!Evaluator::new(&small).plans_for(&p));
        assert!(Evaluator::default().plans_for(&p));
        let a = decisions(&mut Evaluator::new(&small), &p);
        assert_eq!(a, decisions(&mut Evaluator::interpreted(&small), &p));
        assert!(
            a[0].error.as_deref().unwrap().contains("Size of array"),
            "{a:?}"
        );
    }

    #[test]
    fn other_shapes_are_left_to_rhai() {
        for (body, extra) in [
            // Statements other than the verbs.
            (r#"let e = student.graduated; require("g", e);"#, ""),
            (
                r#"if student.graduated.passed { require("g", true, "G", "g"); }"#,
                "",
            ),
            (r#"require("g", student.graduated); eligible_so_far();"#, ""),
            // Arguments that are not literals.
            (
                r#"require("g", student.graduated_by(student.graduation_date), "G", "g");"#,
                "",
            ),
            (
                r#"require("c", student.college_status_in(["admitted", 1]), "C", "c");"#,
                "",
            ),
            (r#"require("g", student.graduated.passed, "G", "g");"#, ""),
            // The older styles.
            (
                r#"let c = checks(); c.require("g", student.graduated); c"#,
                "",
            ),
            (r#"#{ eligible: true, reasons: [] }"#, ""),
            // Nothing checked: rhai's error.
            ("pay_to_student();", ""),
            // A script function that rhai would call instead of the helper.
            (
                r#"require("g", student.graduated);"#,
                "fn require(a, b) { }",
            ),
            (
                r#"require("c", either(student.graduated, student.graduated), "C", "c");"#,
                "fn either(a, b) { a }",
            ),
        ] {
            assert!(
                !has_plan(body, extra),
                "expected no plan for {body} {extra}"
            );
        }
        let long = r#"require("t", true, "T", "t");"#.repeat(MAX_STEPS + 1);
        assert!(!has_plan(&long, ""));
        assert!(has_plan(
            &r#"require("t", true, "T", "t");"#.repeat(MAX_STEPS),
            ""
        ));
    }

    #[test]
    fn every_seed_policy_runs_as_a_plan_and_decides_its_cases_as_rhai_does() {
        let registry = Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap();
        let mut direct = Evaluator::default();
        let mut interpreted = Evaluator::interpreted(&Limits::default());
        let mut compared = 0;
        for v in registry.versions() {
            assert!(!decisions(&mut direct, v).is_empty());
            assert!(
                direct.plans_for(v),
                "{} v{} is not a plan",
                v.meta.id,
                v.meta.version
            );
            assert_eq!(decisions(&mut direct, v), decisions(&mut interpreted, v));
        }
        for suite in registry.suites() {
            for case in &suite.cases {
                let Some(v) = registry.in_effect(&suite.policy, case.as_of) else {
                    continue;
                };
                let s = Prepared::new(Student::from_value(case.student.clone()).unwrap());
                let a = direct.evaluate(v, &s, case.as_of);
                let b = interpreted.evaluate(v, &s, case.as_of);
                assert_eq!(a, b, "{}: {}", suite.policy, case.name);
                compared += 1;
            }
        }
        assert!(compared >= 20, "only {compared} cases compared");
    }
}
