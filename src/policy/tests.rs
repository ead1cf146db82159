//! Policy test cases: a student, a date and the expected outcome, kept in `*.tests.json` next to
//! the scripts, run by `cargo test`, `eligo test` and before a version is published.
//!
//! A case names a policy id, not a version: the registry picks the version in effect on the
//! case's `as_of`, so cases at period boundaries test version selection as well.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::decision::{Decision, PayeeKind, Status};
use super::evaluate::Evaluator;
use super::registry::Registry;
use super::student::Student;
use super::PolicyError;

/// What a case expects. Only what is given is compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `eligible`, `ineligible`, `error`, or `none` (no version in effect on that date).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `student` or `institution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<PayeeKind>,
    /// Reason code -> status, for the reasons the case cares about.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, Status>,
    /// Codes that must be listed as missing (exactly these, when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
    /// Fields that must be named as settling an unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// One case: a student record, a date and what the policy should decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// A student record (as `PUT /v1/students/{id}` takes it).
    #[schema(value_type = Object)]
    pub student: serde_json::Value,
    pub expect: Expect,
}

/// A policy's cases: the `rules/<id>.tests.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSuite {
    pub policy: String,
    pub cases: Vec<TestCase>,
    #[serde(skip)]
    pub origin: String,
}

impl TestSuite {
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut suite: TestSuite =
            serde_path_to_error::deserialize(de).map_err(|e| PolicyError::Tests {
                origin: origin.to_string(),
                message: format!("{}: {}", e.path(), e.inner()),
            })?;
        suite.origin = origin.to_string();
        Ok(suite)
    }
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseResult {
    pub policy: String,
    pub name: String,
    pub passed: bool,
    /// What differed, when it failed.
    pub problems: Vec<String>,
    pub expected: Expect,
    /// The outcome actually seen (`none` when no version was in effect).
    pub actual: String,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed {
            write!(f, "ok    {} :: {}", self.policy, self.name)
        } else {
            write!(
                f,
                "FAIL  {} :: {}: expected {}, got {}; {}",
                self.policy,
                self.name,
                self.expected.outcome,
                self.actual,
                self.problems.join("; ")
            )
        }
    }
}

fn compare(expect: &Expect, decision: Option<&Decision>) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let Some(d) = decision else {
        if expect.outcome != "none" {
            problems.push("no version in effect on that date".into());
        }
        return ("none".into(), problems);
    };
    let actual = d.outcome.as_str().to_string();
    if expect.outcome != actual {
        problems.push(match &d.error {
            Some(e) => format!("outcome {actual} ({e})"),
            None => format!("outcome {actual}"),
        });
    }
    if let Some(v) = expect.version {
        if v != d.version {
            problems.push(format!("version {} instead of {v}", d.version));
        }
    }
    if let Some(kind) = expect.payee {
        let got = d.payee.as_ref().map(|p| p.kind);
        if got != Some(kind) {
            problems.push(format!("payee {got:?} instead of {kind:?}"));
        }
    }
    for (code, status) in &expect.reasons {
        match d.reasons.iter().find(|r| &r.code == code) {
            None => problems.push(format!("no reason {code}")),
            Some(r) if r.status != *status => problems.push(format!(
                "reason {code} is {} instead of {}",
                r.status.as_str(),
                status.as_str()
            )),
            Some(_) => {}
        }
    }
    if let Some(codes) = &expect.missing {
        let mut got: Vec<&str> = d.missing.iter().map(|m| m.code.as_str()).collect();
        let mut want: Vec<&str> = codes.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            problems.push(format!("missing {got:?} instead of {want:?}"));
        }
    }
    for field in &expect.fields {
        if !d.missing.iter().any(|m| m.fields.contains(field)) {
            problems.push(format!("field {field} not named as missing"));
        }
    }
    if !d.is_consistent() {
        problems.push("reasons do not agree with the outcome".into());
    }
    (actual, problems)
}

/// Runs one case against the registry.
pub fn run_case(
    registry: &Registry,
    evaluator: &mut Evaluator,
    policy: &str,
    case: &TestCase,
) -> CaseResult {
    run_case_deciding(registry, evaluator, policy, case).0
}

/// Runs one case and keeps the decision it produced (none when the record is invalid or no
/// version is in effect on the case's date): coverage is read from the decisions.
pub fn run_case_deciding(
    registry: &Registry,
    evaluator: &mut Evaluator,
    policy: &str,
    case: &TestCase,
) -> (CaseResult, Option<Decision>) {
    let result = |actual: String, problems: Vec<String>| CaseResult {
        policy: policy.to_string(),
        name: case.name.clone(),
        passed: problems.is_empty(),
        problems,
        expected: case.expect.clone(),
        actual,
    };
    let student = match Student::from_value(case.student.clone()) {
        Ok(s) => s,
        Err(e) => {
            return (
                result(
                    "invalid record".into(),
                    vec![format!("the case's student is invalid: {e}")],
                ),
                None,
            )
        }
    };
    let decision = registry
        .in_effect(policy, case.as_of)
        .map(|v| evaluator.evaluate_student(v, &student, case.as_of));
    let (actual, problems) = compare(&case.expect, decision.as_ref());
    (result(actual, problems), decision)
}

/// Runs every suite in the registry; a suite naming an unknown policy fails.
pub fn run_all(registry: &Registry, evaluator: &mut Evaluator) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for suite in registry.suites() {
        if !registry.contains(&suite.policy) {
            results.push(CaseResult {
                policy: suite.policy.clone(),
                name: format!("({})", suite.origin),
                passed: false,
                problems: vec![format!("no policy {} is loaded", suite.policy)],
                expected: Expect {
                    outcome: "-".into(),
                    version: None,
                    payee: None,
                    reasons: BTreeMap::new(),
                    missing: None,
                    fields: vec![],
                },
                actual: "-".into(),
            });
            continue;
        }
        for case in &suite.cases {
            results.push(run_case(registry, evaluator, &suite.policy, case));
        }
    }
    results
}
