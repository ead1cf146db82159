//! The seed policies' own test cases, run under `cargo test`, and the command line around them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

use eligo::policy::tests::{run_all, run_case, TestSuite};
use eligo::policy::{Evaluator, Registry};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");

fn eligo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eligo"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_seed_policy_case_passes() {
    let registry = Registry::load_dir(RULES).unwrap();
    let results = run_all(&registry, &mut Evaluator::default());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "failing policy cases:\n{}",
        failed.join("\n")
    );
    let mut per_policy: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &results {
        *per_policy.entry(r.policy.as_str()).or_default() += 1;
    }
    for id in registry.ids() {
        let n = per_policy.get(id).copied().unwrap_or(0);
        assert!(n >= 10, "{id} ships only {n} test cases");
    }
}

#[test]
fn a_wrong_expectation_is_reported_with_expected_and_actual() {
    let registry = Registry::load_dir(RULES).unwrap();
    let suite = TestSuite::parse(
        r#"{"policy":"ima-mett-scholarship","cases":[{"name":"wrong on purpose","as_of":"2024-06-01",
            "student":{"student_id":"x"},"expect":{"outcome":"eligible","payee":"institution"}}]}"#,
        "inline",
    )
    .unwrap();
    let r = run_case(
        &registry,
        &mut Evaluator::default(),
        &suite.policy,
        &suite.cases[0],
    );
    assert!(!r.passed);
    let text = r.to_string();
    assert!(text.contains("wrong on purpose"), "{text}");
    assert!(text.contains("expected eligible, got ineligible"), "{text}");
}

#[test]
fn eligo_test_exits_non_zero_on_a_failing_case() {
    let ok = eligo(&["test", RULES]);
    assert!(ok.status.success());
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains(" passed, 0 failed"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(RULES).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "rhai") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("broken.tests.json"),
        r#"{"policy":"jjc-ccpe-waiver","cases":[{"name":"expects the impossible","as_of":"2024-06-01",
            "student":{"student_id":"x","endorsements":[]},"expect":{"outcome":"eligible"}}]}"#,
    )
    .unwrap();
    let bad = eligo(&["test", dir.path().to_str().unwrap()]);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains(
            "FAIL  jjc-ccpe-waiver :: expects the impossible: expected eligible, got ineligible"
        ),
        "{out}"
    );
}

#[test]
fn eligo_check_prints_a_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    std::fs::write(
        &file,
        r#"{"student_id":"IL-1","graduation_date":"2024-05-30",
            "endorsements":[{"area":"manufacturing_engineering_technology_trades","status":"earned"}],
            "postsecondary":{"institution_id":"jjc","status":"enrolled"}}"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = eligo(&[
        "check",
        "--student",
        f,
        "--as-of",
        "2024-06-01",
        "--rules",
        RULES,
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ELIGIBLE    ima-mett-scholarship v2"),
        "{text}"
    );
    assert!(text.contains("ELIGIBLE    jjc-ccpe-waiver v1"), "{text}");
    assert!(text.contains("INELIGIBLE  ivcc-ccpe-waiver v1"), "{text}");
    assert!(
        text.contains("missing: Be admitted to or enroll at Illinois Valley"),
        "{text}"
    );

    let out = eligo(&[
        "check",
        "--student",
        f,
        "--as-of",
        "2024-06-01",
        "--rules",
        RULES,
        "--json",
        "--policy",
        "jjc-ccpe-waiver",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["outcome"], "eligible");
    assert_eq!(decisions[0]["award"]["credit_hours"], 3.0);
    assert_eq!(v["next_steps"], serde_json::json!([]));
}

#[test]
fn eligo_check_refuses_bad_input_with_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    std::fs::write(&file, r#"{"student_id":"IL-1","gpa":4.0}"#).unwrap();
    let out = eligo(&[
        "check",
        "--student",
        file.to_str().unwrap(),
        "--rules",
        RULES,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gpa"), "{err}");
    let out = eligo(&[
        "check",
        "--student",
        file.to_str().unwrap(),
        "--as-of",
        "2024-13-01",
    ]);
    assert!(!out.status.success());
    std::fs::write(&file, r#"{"student_id":"IL-1"}"#).unwrap();
    let out = eligo(&[
        "check",
        "--student",
        file.to_str().unwrap(),
        "--rules",
        RULES,
        "--policy",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn gen_students_is_deterministic_ndjson_of_valid_records() {
    let a = eligo(&["gen-students", "--count", "50", "--seed", "42"]);
    let b = eligo(&["gen-students", "--count", "50", "--seed", "42"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert_eq!(text.lines().count(), 50);
    for line in text.lines() {
        eligo::policy::Student::from_json(line).unwrap();
    }
}

#[test]
fn eligo_check_students_gives_one_line_per_student_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cohort.ndjson");
    let good = r#"{"student_id":"C-1","graduation_date":"2024-05-30","endorsements":[{"area":"manufacturing_engineering_technology_trades","status":"earned"}],"postsecondary":{"institution_id":"jjc","status":"enrolled"}}"#;
    let other = r#"{"student_id":"C-2"}"#;
    std::fs::write(&file, format!("{good}\n\n{other}\n{{\"student_id\": 5}}\n")).unwrap();
    let f = file.to_str().unwrap();
    let base = [
        "check",
        "--students",
        f,
        "--as-of",
        "2024-06-01",
        "--rules",
        RULES,
    ];
    let out = eligo(&base);
    // The bad line is named and the exit code says so; the good lines are all there.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["student_id"], "C-1");
    assert_eq!(lines[0]["decisions"].as_array().unwrap().len(), 3);
    assert_eq!(lines[1]["student_id"], "C-2");
    let out = eligo(&[&base[..], &["--csv"]].concat());
    let csv = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("student_id,"), "{csv}");
    assert!(rows[0].contains("ima-mett-scholarship"), "{csv}");
    assert_eq!(rows.len(), 3, "{csv}");
    let header: Vec<&str> = rows[0].split(',').collect();
    let ima = header
        .iter()
        .position(|h| *h == "ima-mett-scholarship")
        .unwrap();
    assert_eq!(rows[1].split(',').nth(ima), Some("eligible"), "{csv}");
    // Without a terminal, no progress bar reaches stderr.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('█'));
}
