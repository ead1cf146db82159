//! Previews over HTTP.

use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student};
use crate::on_both_backends;

fn outcome<'a>(body: &'a Value, policy: &str) -> &'a str {
    body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["policy_id"] == policy)
        .unwrap_or_else(|| panic!("no decision for {policy}: {body}"))["outcome"]
        .as_str()
        .unwrap()
}

on_both_backends! {
    async fn an_inline_record_gets_one_decision_per_policy_and_is_not_stored(app) {
        let res = app.evaluate(&json!({"student": qualifying_student("IL-9"), "as_of": "2024-06-01"})).await;
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["student_id"], "IL-9");
        assert_eq!(body["as_of"], "2024-06-01");
        assert_eq!(body["decisions"].as_array().unwrap().len(), 3);
        assert_eq!(outcome(&body, "ima-mett-scholarship"), "eligible");
        assert_eq!(outcome(&body, "ivcc-ccpe-waiver"), "eligible");
        assert_eq!(outcome(&body, "jjc-ccpe-waiver"), "ineligible");
        let ima = &body["decisions"][0];
        assert_eq!(ima["version"], 2);
        assert_eq!(ima["hash"].as_str().unwrap().len(), 64);
        assert_eq!(ima["award"]["amount_cents"], 50000);
        assert_eq!(ima["payee"]["kind"], "student");
        let jjc = body["decisions"].as_array().unwrap().iter().find(|d| d["policy_id"] == "jjc-ccpe-waiver").unwrap();
        assert_eq!(jjc["missing"][0]["code"], "jjc_admission");
        let res = app.client.get(app.url("/v1/students/IL-9")).send().await.unwrap();
        problem(res, 404).await;
    }

    async fn a_stored_record_is_evaluated_by_id(app) {
        app.put_student("IL-10", &qualifying_student("IL-10")).await;
        let body: Value = app
            .evaluate(&json!({"student_id": "IL-10", "as_of": "2023-01-15", "policies": ["ima-mett-scholarship"]}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["decisions"].as_array().unwrap().len(), 1);
        // Graduating in 2024 means not yet graduated on 2023-01-15, under version 1.
        assert_eq!(body["decisions"][0]["version"], 1);
        assert_eq!(outcome(&body, "ima-mett-scholarship"), "ineligible");
        let res = app.evaluate(&json!({"student_id": "nobody"})).await;
        problem(res, 404).await;
    }

    async fn absent_data_is_unknown_with_the_fields_to_settle_it(app) {
        let body: Value = app
            .evaluate(&json!({"student": {"student_id": "IL-11"}, "as_of": "2024-06-01", "policies": ["ivcc-ccpe-waiver"]}))
            .await
            .json()
            .await
            .unwrap();
        let d = &body["decisions"][0];
        assert_eq!(d["outcome"], "ineligible");
        assert!(d["reasons"].as_array().unwrap().iter().all(|r| r["status"] == "unknown"));
        let fields: Vec<&str> = d["missing"].as_array().unwrap().iter().flat_map(|m| m["fields"].as_array().unwrap()).map(|f| f.as_str().unwrap()).collect();
        assert_eq!(fields, vec!["endorsements", "postsecondary"]);
    }

    async fn unknown_policies_bad_dates_and_bad_shapes_are_422(app) {
        let res = app.evaluate(&json!({"student": qualifying_student("x"), "policies": ["nope"]})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:unknown-policy");
        assert!(p["detail"].as_str().unwrap().contains("nope"));

        let res = app.evaluate(&json!({"student": qualifying_student("x"), "as_of": "2024-13-45"})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "as_of");

        let res = app.evaluate(&json!({"student": qualifying_student("x"), "student_id": "x"})).await;
        problem(res, 422).await;
        let res = app.evaluate(&json!({})).await;
        problem(res, 422).await;
        let res = app.evaluate(&json!({"student": {"student_id": "x", "gpa": 4}})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "student.gpa");
        // Well-formed JSON of the right shape, but an invalid record: named the same way.
        let res = app.evaluate(&json!({"student": {"student_id": "x",
            "job_offers": [{"employer": "A", "naics": "3x"}]}})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "student.job_offers[0].naics");
        let res = app.evaluate(&json!({"student": {"student_id": "x", "graduation_date": 5}})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "student.graduation_date");
        let res = app.evaluate(&json!({"student": qualifying_student("x"), "extra": 1})).await;
        let p = problem(res, 422).await;
        assert!(p["detail"].as_str().unwrap().contains("extra"));
    }

    async fn no_policy_in_effect_gives_no_decisions(app) {
        let body: Value = app
            .evaluate(&json!({"student": qualifying_student("x"), "as_of": "2020-01-01"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["decisions"], json!([]));
    }
}

#[tokio::test]
async fn a_heavy_policy_is_moved_off_the_workers_and_still_decides() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("heavy.rhai"),
        r#"fn policy() { #{ id: "heavy", version: 1, title: "Heavy", sponsor: "s",
              award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01" } }
           fn evaluate(student, ctx) {
               let n = 0; while n < 4000 { n += 1; }
               let c = checks(); c.require("counted", n == 4000, "Counted", "count"); c
           }"#,
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, rules.path(), |_| {})
        .await
        .unwrap();
    let body: Value = app
        .evaluate(&json!({"student": {"student_id": "h"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["decisions"][0]["outcome"], "eligible", "{body}");
}
