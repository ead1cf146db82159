//! The endorsement's requirements as policies, chained missing items and next steps (#16),
//! over HTTP.

use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student, spawn_app, Backend};

const AS_OF: &str = "2026-12-15";

/// A graduate enrolled at IVCC whose METT endorsement is in progress, with `left` of the
/// requirements still open: "credit" (3 of 6 hours) and/or "hours" (20 of 60).
fn in_progress(id: &str, left: &[&str]) -> Value {
    let mut s = qualifying_student(id);
    s["endorsements"] =
        json!([{"area": "manufacturing_engineering_technology_trades", "status": "in_progress"}]);
    let credit = if left.contains(&"credit") { 3.0 } else { 6.0 };
    let hours = if left.contains(&"hours") { 20 } else { 60 };
    s["early_college_credits"] = json!([{"subject": "machining", "credit_hours": credit}]);
    s["work_based_learning"] = json!([
        {"kind": "career_exploration", "intensive": true},
        {"kind": "team_based_challenge"}, {"kind": "team_based_challenge"},
        {"kind": "internship", "hours": hours}]);
    s["pathway"] = json!({"individualized_learning_plan": true, "career_coursework_years": 2,
        "professional_skills_assessment": true, "reading_ready": true, "math_ready": true});
    s
}

async fn evaluate(app: &crate::helpers::TestApp, student: Value) -> Value {
    let res = app
        .evaluate(&json!({"student": student, "as_of": AS_OF}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_endorsement_in_progress_expands_into_what_is_left_and_one_step_leads() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let body = evaluate(&app, in_progress("P-1", &["credit", "hours"])).await;
    // Incentives are decisions; the METT requirements are progress (not Health Sciences: the
    // student is not working toward it).
    let ids: Vec<&str> = body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["policy_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "ima-mett-scholarship",
            "ivcc-ccpe-waiver",
            "jjc-ccpe-waiver"
        ]
    );
    let progress = body["requirements"].as_array().unwrap();
    assert_eq!(progress.len(), 1, "{progress:?}");
    assert_eq!(progress[0]["policy_id"], "ccpe-mett-requirements");
    assert_eq!(progress[0]["kind"], "requirement");
    assert!(progress[0].get("award").is_none());
    // IMA's endorsement criterion carries the requirement's own items, in numbers.
    let ima = &body["decisions"][0];
    assert_eq!(ima["version"], 3);
    let missing = &ima["missing"][0];
    assert_eq!(missing["code"], "mett_endorsement");
    let steps: Vec<&str> = missing["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![
            "3 more early-college credit hours (3 of 6)",
            "40 more supervised hours (20 of 60)"
        ]
    );
    // Each step once, bringing all three incentives closer; none completes one alone.
    let next = body["next_steps"].as_array().unwrap();
    let credit: Vec<&Value> = next
        .iter()
        .filter(|s| s["key"] == "ccpe-mett-requirements/early_college_credit")
        .collect();
    assert_eq!(credit.len(), 1);
    assert_eq!(
        credit[0]["brings_closer"],
        json!([
            "ima-mett-scholarship",
            "ivcc-ccpe-waiver",
            "jjc-ccpe-waiver"
        ])
    );
    assert_eq!(credit[0]["completes"], json!([]));

    // With only the credit hours left, that step completes IMA and the IVCC waiver (the
    // student is enrolled at IVCC), not JJC's (admission there is missing too): it comes first.
    let body = evaluate(&app, in_progress("P-2", &["credit"])).await;
    let first = &body["next_steps"][0];
    assert_eq!(first["key"], "ccpe-mett-requirements/early_college_credit");
    assert_eq!(
        first["completes"],
        json!(["ima-mett-scholarship", "ivcc-ccpe-waiver"])
    );
    assert_eq!(first["completes_cents"], 50_000);
    assert_eq!(first["completes_credit_hours"], 3.0);
    let jjc = body["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "jjc-ccpe-waiver/jjc_admission")
        .unwrap();
    assert_eq!(jjc["brings_closer"], json!(["jjc-ccpe-waiver"]));

    // A record without the new fields means what it meant: unknown, not failed.
    let mut old = qualifying_student("P-3");
    old["endorsements"] =
        json!([{"area": "manufacturing_engineering_technology_trades", "status": "in_progress"}]);
    let body = evaluate(&app, old).await;
    let reasons = body["requirements"][0]["reasons"].as_array().unwrap();
    let plan = reasons
        .iter()
        .find(|r| r["code"] == "learning_plan")
        .unwrap();
    assert_eq!(plan["status"], "unknown");
    assert_eq!(
        plan["fields"],
        json!(["pathway.individualized_learning_plan"])
    );
}

#[tokio::test]
async fn a_requirement_is_never_awarded_nor_budgeted_and_bad_pathway_data_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.put_student("R-1", &in_progress("R-1", &[])).await;
    let (status, body) = app.award("req-1", "R-1", "ccpe-mett-requirements").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "policy_id");
    let res = app
        .client
        .put(app.url("/v1/policies/ccpe-mett-requirements/budget"))
        .json(&json!({"max_awards": 10}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let mut bad = in_progress("R-2", &[]);
    bad["pathway"]["career_coursework_years"] = json!(40);
    let res = app.put_student("R-2", &bad).await;
    assert_eq!(
        problem(res, 422).await["field"],
        "pathway.career_coursework_years"
    );
}

#[tokio::test]
async fn a_reference_to_an_unknown_requirement_is_refused_at_publish() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let source = crate::publishing::acme_source(1, "2024-01-01").replace(
        "require(\"graduated\", student.graduated);",
        "require(\"graduated\", with_steps(student.graduated, student.meets(\"ccpe-nope\")));",
    );
    let res = app
        .client
        .post(app.url("/v1/policies?dry_run=true"))
        .json(&json!({"source": source, "tests": crate::publishing::acme_cases()}))
        .send()
        .await
        .unwrap();
    let p = problem(res, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("ccpe-nope"), "{p}");
}
