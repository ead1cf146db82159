//! Awards, idempotency, budgets, revocation, the ledger and its verification, over HTTP.

use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student, tamper};
use crate::on_both_backends;

const IMA: &str = "ima-mett-scholarship";
const IVCC: &str = "ivcc-ccpe-waiver";

on_both_backends! {
    async fn a_grant_then_already_awarded_with_ledger_references(app) {
        app.seed_students("G", 1).await;
        let (status, first) = app.award("k1", "G-0", IMA).await;
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["decision"], "granted");
        assert!(first["award_id"].as_str().unwrap().len() == 36);
        assert!(first["ledger"]["seq"].as_i64().unwrap() > 0);
        assert_eq!(first["ledger"]["entry_hash"].as_str().unwrap().len(), 64);
        assert_eq!(first["evaluation"]["outcome"], "eligible");
        let (status, second) = app.award("k2", "G-0", IMA).await;
        assert_eq!(status, 201);
        assert_eq!(second["decision"], "denied");
        assert_eq!(second["reason_code"], "already_awarded");
        assert!(second.get("award_id").is_none());
        assert!(second["ledger"]["seq"].as_i64() > first["ledger"]["seq"].as_i64());
    }

    async fn idempotency_replays_refuses_reuse_and_requires_a_key(app) {
        app.seed_students("I", 1).await;
        let (s1, b1) = app.award("same", "I-0", IMA).await;
        let (s2, b2) = app.award("same", "I-0", IMA).await;
        assert_eq!((s1, &b1), (s2, &b2));
        let ledger = app.get_json("/v1/ledger").await;
        assert_eq!(ledger["items"].as_array().unwrap().len(), 1, "a replay writes nothing");
        let (s3, b3) = app.award("same", "I-0", IVCC).await;
        assert_eq!(s3, 422, "{b3}");
        assert_eq!(b3["type"], "urn:eligo:problem:idempotency-key-reused");
        let res = app
            .client
            .post(app.url("/v1/awards"))
            .json(&json!({"student_id": "I-0", "policy_id": IMA}))
            .send()
            .await
            .unwrap();
        let p = problem(res, 400).await;
        assert_eq!(p["field"], "Idempotency-Key");
    }

    async fn a_replay_is_the_original_response_byte_for_byte_and_is_not_counted_again(app) {
        app.seed_students("B", 2).await;
        let raw = |key: &'static str, student: &'static str| {
            app.client
                .post(app.url("/v1/awards"))
                .header("idempotency-key", key)
                .json(&json!({"student_id": student, "policy_id": IMA, "as_of": "2024-06-01"}))
                .send()
        };
        for (key, student) in [("byte-1", "B-0"), ("byte-2", "B-0"), ("byte-3", "B-1")] {
            let first = raw(key, student).await.unwrap();
            assert_eq!(first.status().as_u16(), 201);
            let first = first.bytes().await.unwrap();
            for _ in 0..2 {
                let again = raw(key, student).await.unwrap();
                assert_eq!(again.status().as_u16(), 201);
                assert_eq!(again.bytes().await.unwrap(), first, "{key}");
            }
        }
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains(&format!(r#"eligo_awards_total{{decision="granted",policy="{IMA}"}} 2"#)), "{text}");
        assert!(text.contains(&format!(r#"eligo_awards_total{{decision="denied",policy="{IMA}"}} 1"#)), "{text}");
    }

    async fn ineligible_unknown_and_out_of_period_requests(app) {
        app.put_student("N-0", &json!({"student_id": "N-0", "endorsements": []})).await;
        let (status, body) = app.award("n1", "N-0", IMA).await;
        assert_eq!(status, 201);
        assert_eq!(body["decision"], "denied");
        assert_eq!(body["reason_code"], "ineligible");
        let (status, _) = app.award("n2", "nobody", IMA).await;
        assert_eq!(status, 404);
        let (status, _) = app.award("n3", "N-0", "no-such-policy").await;
        assert_eq!(status, 404);
        let res = app
            .client
            .post(app.url("/v1/awards"))
            .header("idempotency-key", "n4")
            .json(&json!({"student_id": "N-0", "policy_id": IMA, "as_of": "2020-01-01"}))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res, 422).await["field"], "as_of");
    }

    async fn budgets_cap_grants_and_revocation_frees_them(app) {
        app.seed_students("B", 3).await;
        let res = app.client.put(app.url(&format!("/v1/policies/{IVCC}/budget"))).json(&json!({"max_awards": 2})).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let res = app.client.put(app.url(&format!("/v1/policies/{IVCC}/budget"))).json(&json!({"total_cents": 5})).send().await.unwrap();
        assert_eq!(problem(res, 422).await["field"], "total_cents");
        let mut granted = Vec::new();
        for i in 0..3 {
            let (_, body) = app.award(&format!("b{i}"), &format!("B-{i}"), IVCC).await;
            if body["decision"] == "granted" {
                granted.push(body["award_id"].as_str().unwrap().to_string());
            } else {
                assert_eq!(body["reason_code"], "budget_exhausted");
            }
        }
        assert_eq!(granted.len(), 2);
        let budget = app.get_json(&format!("/v1/policies/{IVCC}/budget")).await;
        assert_eq!(budget["max_awards"], 2);
        assert_eq!(budget["committed_awards"], 2);
        assert_eq!(budget["remaining_awards"], 0);

        let revoke = |id: String| {
            let app = &app;
            async move {
                app.client
                    .post(app.url(&format!("/v1/awards/{id}/revoke")))
                    .json(&json!({"reason": "=HYPERLINK(\"x\") enrolled elsewhere"}))
                    .send()
                    .await
                    .unwrap()
            }
        };
        let res = revoke(granted[0].clone()).await;
        assert_eq!(res.status().as_u16(), 201);
        let res = revoke(granted[0].clone()).await;
        problem(res, 409).await;
        let res = revoke("no-such-award".into()).await;
        problem(res, 404).await;
        let budget = app.get_json(&format!("/v1/policies/{IVCC}/budget")).await;
        assert_eq!(budget["committed_awards"], 1);
        assert_eq!(budget["remaining_awards"], 1);
        // The student whose award was revoked, and the one refused for budget, may now be awarded.
        let (_, b2) = app.award("b2-again", "B-2", IVCC).await;
        assert_eq!(b2["decision"], "granted", "{b2}");

        let money = app.client.put(app.url(&format!("/v1/policies/{IMA}/budget"))).json(&json!({"total_cents": 60000})).send().await.unwrap();
        assert_eq!(money.status().as_u16(), 200);
        let (_, m0) = app.award("m0", "B-0", IMA).await;
        let (_, m1) = app.award("m1", "B-1", IMA).await;
        assert_eq!(m0["decision"], "granted");
        assert_eq!(m1["reason_code"], "budget_exhausted");
        let budget = app.get_json(&format!("/v1/policies/{IMA}/budget")).await;
        assert_eq!(budget["committed_cents"], 50000);
        assert_eq!(budget["remaining_cents"], 10000);
    }

    async fn ledger_filters_pages_and_exports_csv(app) {
        app.seed_students("L", 4).await;
        for i in 0..4 {
            app.award(&format!("l{i}"), &format!("L-{i}"), IMA).await;
        }
        app.award("l-dup", "L-0", IMA).await;
        let (_, w) = app.award("w0", "L-0", IVCC).await;
        let award_id = w["award_id"].as_str().unwrap().to_string();
        app.client
            .post(app.url(&format!("/v1/awards/{award_id}/revoke")))
            .json(&json!({"reason": "=cmd|' /C calc'!A0"}))
            .send()
            .await
            .unwrap();

        let all = app.get_json("/v1/ledger").await;
        assert_eq!(all["items"].as_array().unwrap().len(), 7);
        let e = &all["items"][0];
        for field in ["seq", "recorded_at", "key_id", "request_id", "idempotency_key", "policy_hash", "eligo_version", "rhai_version", "record", "evaluation", "award", "prev_hash", "entry_hash"] {
            assert!(!e[field].is_null(), "ledger entry lacks {field}: {e}");
        }
        assert_eq!(e["record"]["student_id"], "L-0");
        assert_eq!(e["prev_hash"], "0".repeat(64));
        let granted = app.get_json(&format!("/v1/ledger?policy_id={IMA}&outcome=granted")).await;
        assert_eq!(granted["items"].as_array().unwrap().len(), 4);
        let student = app.get_json("/v1/ledger?student_id=L-0").await;
        assert_eq!(student["items"].as_array().unwrap().len(), 4);
        let revoked = app.get_json("/v1/ledger?outcome=revoked").await;
        assert_eq!(revoked["items"][0]["amount_cents"], 0);
        assert_eq!(revoked["items"][0]["award_id"], award_id.as_str());

        let page1 = app.get_json("/v1/ledger?limit=3").await;
        let cursor = page1["next_cursor"].as_i64().unwrap();
        let page2 = app.get_json(&format!("/v1/ledger?limit=3&cursor={cursor}")).await;
        let page3 = app.get_json(&format!("/v1/ledger?limit=3&cursor={}", page2["next_cursor"])).await;
        assert_eq!(page3["items"].as_array().unwrap().len(), 1);
        assert!(page3.get("next_cursor").is_none());

        let first_time = e["recorded_at"].as_str().unwrap();
        let later = app.get_json(&format!("/v1/ledger?from={}", urlencode(first_time))).await;
        assert_eq!(later["items"].as_array().unwrap().len(), 7);
        let none = app.get_json(&format!("/v1/ledger?to={}", urlencode(first_time))).await;
        assert_eq!(none["items"].as_array().unwrap().len(), 0);
        let res = app.client.get(app.url("/v1/ledger?from=yesterday")).send().await.unwrap();
        assert_eq!(problem(res, 422).await["field"], "from");

        let csv = app
            .client
            .get(app.url(&format!("/v1/ledger?policy_id={IMA}&outcome=granted")))
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap();
        assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = csv.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("seq,recorded_at,policy_id"));
        assert_eq!(lines.len(), 5);
        assert!(lines[1].contains(",50000,student,"), "{text}");
        let revoked_csv = app.client.get(app.url("/v1/ledger?outcome=revoked")).header("accept", "text/csv").send().await.unwrap().text().await.unwrap();
        assert!(revoked_csv.contains("'=cmd|"), "{revoked_csv}");
        assert!(!revoked_csv.contains(",=cmd"), "{revoked_csv}");
    }

    async fn verify_passes_then_points_at_a_tampered_entry_and_replay_matches(app) {
        app.seed_students("V", 3).await;
        let mut seqs = Vec::new();
        for i in 0..3 {
            let (_, b) = app.award(&format!("v{i}"), &format!("V-{i}"), IMA).await;
            seqs.push(b["ledger"]["seq"].as_i64().unwrap());
        }
        let v = app.get_json("/v1/ledger/verify").await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["entries_checked"], 3);
        let replay: Value = app.client.post(app.url(&format!("/v1/ledger/{}/replay", seqs[1]))).send().await.unwrap().json().await.unwrap();
        assert_eq!(replay["matches"], true, "{replay}");
        assert_eq!(replay["replayed_outcome"], "eligible");
        let res = app.client.post(app.url("/v1/ledger/999999/replay")).send().await.unwrap();
        problem(res, 404).await;

        tamper(&app.database_url, &format!("UPDATE ledger SET amount_cents = 99999 WHERE seq = {}", seqs[1]));
        let v = app.get_json("/v1/ledger/verify").await;
        assert_eq!(v["ok"], false);
        assert_eq!(v["first_bad"]["seq"], seqs[1], "{v}");
        assert!(v["first_bad"]["problem"].as_str().unwrap().contains("entry_hash"));
    }

    async fn two_hundred_concurrent_requests_grant_exactly_once(app) {
        app.seed_students("C", 1).await;
        let requests = (0..200).map(|i| {
            let app = &app;
            async move { app.award(&format!("c{i}"), "C-0", IMA).await }
        });
        let results = futures_util::future::join_all(requests).await;
        assert!(results.iter().all(|(s, _)| *s == 201));
        let granted = results.iter().filter(|(_, b)| b["decision"] == "granted").count();
        assert_eq!(granted, 1);
        let denied = results.iter().filter(|(_, b)| b["reason_code"] == "already_awarded").count();
        assert_eq!(denied, 199);
        let v = app.get_json("/v1/ledger/verify").await;
        assert_eq!(v["ok"], true);
        assert_eq!(v["entries_checked"], 200);
    }

    async fn a_budget_of_n_with_3n_concurrent_students_grants_exactly_n(app) {
        let n = 10;
        app.seed_students("D", 3 * n).await;
        app.client.put(app.url(&format!("/v1/policies/{IMA}/budget"))).json(&json!({"total_cents": 50000 * n as i64})).send().await.unwrap();
        let requests = (0..3 * n).map(|i| {
            let app = &app;
            async move { app.award(&format!("d{i}"), &format!("D-{i}"), IMA).await }
        });
        let results = futures_util::future::join_all(requests).await;
        let granted = results.iter().filter(|(_, b)| b["decision"] == "granted").count();
        assert_eq!(granted, n);
        assert_eq!(results.iter().filter(|(_, b)| b["reason_code"] == "budget_exhausted").count(), 2 * n);
        let budget = app.get_json(&format!("/v1/policies/{IMA}/budget")).await;
        assert_eq!(budget["committed_cents"], 50000 * n as i64);
        assert_eq!(budget["remaining_cents"], 0);
    }
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn a_policy_error_is_denied_never_granted() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("broken.rhai"),
        r#"fn policy() { #{ id: "broken", version: 1, title: "Broken", sponsor: "s",
              award: #{ kind: "scholarship", amount_cents: 100 }, effective_from: "2020-01-01" } }
           fn evaluate(student, ctx) { throw "the data feed is down" }"#,
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, rules.path(), |_| {})
        .await
        .unwrap();
    app.put_student("E-0", &qualifying_student("E-0")).await;
    let (status, body) = app.award("e0", "E-0", "broken").await;
    assert_eq!(status, 201);
    assert_eq!(body["decision"], "denied");
    assert_eq!(body["reason_code"], "policy_error");
    assert_eq!(body["evaluation"]["outcome"], "error");
    assert!(body["evaluation"]["error"]
        .as_str()
        .unwrap()
        .contains("data feed"));
}
