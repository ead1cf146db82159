//! Cohort batches: previews and awards of many students, in the background, through a restart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    client_with_key, problem, qualifying_student, spawn_app, spawn_app_with, Backend, Process,
    TestApp, TestDb, RULES,
};

const IMA: &str = "ima-mett-scholarship";
const IVCC: &str = "ivcc-ccpe-waiver";

/// A student who qualifies for nothing (no endorsement).
fn unqualified(id: &str) -> Value {
    json!({"student_id": id, "school_id": "d204-naperville-north", "graduation_date": "2024-05-30"})
}

async fn start(client: &reqwest::Client, address: &str, body: Value) -> (u16, Value) {
    let res = client
        .post(format!("{address}/v1/batches"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 202 {
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            location,
            format!("/v1/batches/{}", v["batch_id"].as_str().unwrap())
        );
        return (status, v);
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls the batch until it has ended; returns its last state.
async fn finished(client: &reqwest::Client, address: &str, id: &str) -> Value {
    for _ in 0..600 {
        let v: Value = client
            .get(format!("{address}/v1/batches/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["done", "failed", "cancelled"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("batch {id} did not finish");
}

async fn results(client: &reqwest::Client, address: &str, id: &str) -> Vec<Value> {
    let res = client
        .get(format!("{address}/v1/batches/{id}/results"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    res.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(lines: &[Value], outcome: &str) -> usize {
    lines.iter().filter(|l| l["outcome"] == outcome).count()
}

async fn import(app: &TestApp, records: Vec<Value>) {
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

crate::on_both_backends! {
    async fn a_preview_batch_decides_every_student_and_counts_match_its_results(app) {
        let mut records: Vec<Value> = (0..12).map(|i| qualifying_student(&format!("Q-{i:02}"))).collect();
        records.extend((0..8).map(|i| unqualified(&format!("U-{i:02}"))));
        import(&app, records).await;
        let (status, queued) = start(&app.client, &app.address, json!({
            "mode": "preview", "policy_ids": [IMA, IVCC], "as_of": "2024-06-01", "students": "all"
        })).await;
        assert_eq!(status, 202, "{queued}");
        assert_eq!(queued["total"], 20);
        let id = queued["batch_id"].as_str().unwrap();
        let done = finished(&app.client, &app.address, id).await;
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["done"], 20);
        // 12 qualify for both; 8 for neither: one line per student and policy.
        assert_eq!(done["counts"], json!({"eligible": 24, "ineligible": 16}));
        let lines = results(&app.client, &app.address, id).await;
        assert_eq!(lines.len(), 40);
        assert_eq!(count(&lines, "eligible"), 24);
        let u = lines.iter().find(|l| l["student_id"] == "U-00" && l["policy_id"] == IMA).unwrap();
        assert_eq!(u["outcome"], "ineligible");
        assert!(u["missing"].as_array().unwrap().iter().any(|m| m == "mett_endorsement"), "{u}");
        // In student order, and the same as CSV.
        let ids: Vec<&str> = lines.iter().map(|l| l["student_id"].as_str().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let csv = app.client.get(app.url(&format!("/v1/batches/{id}/results")))
            .header("accept", "text/csv").send().await.unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let text = csv.text().await.unwrap();
        let mut rows = text.lines();
        assert_eq!(rows.next().unwrap(), "student_id,policy_id,version,outcome,reason_code,award_id,ledger_seq,missing,error");
        assert_eq!(rows.count(), 40);
        // A preview writes nothing to the ledger.
        assert_eq!(app.get_json("/v1/ledger/verify").await["entries_checked"], 0);

        // One school, and a list of ids.
        let (_, school) = start(&app.client, &app.address, json!({
            "mode": "preview", "policy_ids": [IMA], "as_of": "2024-06-01",
            "students": {"school_id": "d204-naperville-north"}
        })).await;
        assert_eq!(school["total"], 8);
        let (_, listed) = start(&app.client, &app.address, json!({
            "mode": "preview", "policy_ids": [IMA], "as_of": "2024-06-01",
            "students": ["Q-01", "U-03", "Q-01"]
        })).await;
        assert_eq!(listed["total"], 2, "duplicates count once: {listed}");
        let id = listed["batch_id"].as_str().unwrap();
        let done = finished(&app.client, &app.address, id).await;
        assert_eq!(done["counts"], json!({"eligible": 1, "ineligible": 1}));
    }

    async fn an_award_batch_keeps_the_budget_and_once_per_student_and_the_ledger_verifies(app) {
        import(&app, (0..6).map(|i| qualifying_student(&format!("A-{i}"))).collect()).await;
        import(&app, vec![unqualified("A-none")]).await;
        // Room for four IMA scholarships.
        let res = app.client.put(app.url(&format!("/v1/policies/{IMA}/budget")))
            .json(&json!({"total_cents": 200000})).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        // One student already has the scholarship.
        let (status, _) = app.award("single-A-0", "A-0", IMA).await;
        assert_eq!(status, 201);
        let (status, queued) = start(&app.client, &app.address, json!({
            "mode": "award", "policy_ids": [IMA], "as_of": "2024-06-01", "students": "all"
        })).await;
        assert_eq!(status, 202, "{queued}");
        let id = queued["batch_id"].as_str().unwrap();
        let done = finished(&app.client, &app.address, id).await;
        assert_eq!(done["state"], "done", "{done}");
        // A-0 already awarded; A-1..A-3 granted (budget: 3 more); denied for budget;
        // A-none never asked (not eligible).
        assert_eq!(done["counts"], json!({"granted": 3, "denied": 3, "ineligible": 1}), "{done}");
        let lines = results(&app.client, &app.address, id).await;
        let reason = |s: &str| lines.iter().find(|l| l["student_id"] == s).unwrap()["reason_code"].clone();
        assert_eq!(reason("A-0"), "already_awarded");
        assert_eq!(reason("A-5"), "budget_exhausted");
        let granted = lines.iter().find(|l| l["outcome"] == "granted").unwrap();
        assert!(granted["award_id"].is_string() && granted["ledger_seq"].is_i64(), "{granted}");
        let ineligible = lines.iter().find(|l| l["student_id"] == "A-none").unwrap();
        assert_eq!(ineligible["outcome"], "ineligible");
        assert!(ineligible.get("ledger_seq").is_none());
        let budget = app.get_json(&format!("/v1/policies/{IMA}/budget")).await;
        assert_eq!(budget["committed_cents"], 200000);
        let verify = app.get_json("/v1/ledger/verify").await;
        assert_eq!(verify["ok"], true);
        // The single award, three grants and three denials.
        assert_eq!(verify["entries_checked"], 7);
        // The decisions are recorded under the starting key, named by the batch.
        let entry = app.get_json(&format!("/v1/ledger?student_id=A-1&policy_id={IMA}")).await;
        assert_eq!(entry["items"][0]["request_id"], format!("batch:{id}"));
        assert_eq!(entry["items"][0]["key_id"], done["started_by"]);
        // The sweep of old idempotency keys keeps a batch's: a batch resumed at any later time
        // must find the awards it made.
        let store = eligo::store::Store::open(&app.database_url, 1).unwrap();
        assert_eq!(store.sweep_idempotency("9999-01-01T00:00:00Z").unwrap(), 1, "only the single award's key");
    }
}

#[tokio::test]
async fn who_may_start_see_and_cancel_a_batch() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    import(&app, vec![qualifying_student("K-1")]).await;
    let key = |body: Value| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url("/v1/keys"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let v: Value = res.json().await.unwrap();
            client_with_key(v["secret"].as_str().unwrap())
        }
    };
    let counselor = key(json!({"role": "counselor"})).await;
    let ivcc = key(json!({"role": "awarder", "sponsor": "ivcc"})).await;
    let auditor = key(json!({"role": "auditor"})).await;
    let award =
        json!({"mode": "award", "policy_ids": [IMA], "as_of": "2024-06-01", "students": "all"});
    let (status, body) = start(&counselor, &app.address, award.clone()).await;
    assert_eq!(status, 403, "a counselor previews, never awards: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("counselor"),
        "{body}"
    );
    let (status, body) = start(&ivcc, &app.address, award.clone()).await;
    assert_eq!(status, 403, "IVCC may not award IMA's scholarship: {body}");
    assert_eq!(start(&auditor, &app.address, award.clone()).await.0, 403);
    // An awarder's default is its own programs.
    let (status, own) = start(
        &ivcc,
        &app.address,
        json!({"mode": "award", "as_of": "2024-06-01", "students": ["K-1"]}),
    )
    .await;
    assert_eq!(status, 202, "{own}");
    assert_eq!(own["policy_ids"], json!([IVCC]));
    // A counselor's preview is the counselor's: others are refused, admins see it.
    let (status, mine) = start(
        &counselor,
        &app.address,
        json!({"mode": "preview", "students": "all", "as_of": "2024-06-01"}),
    )
    .await;
    assert_eq!(status, 202);
    let id = mine["batch_id"].as_str().unwrap();
    let res = ivcc
        .get(app.url(&format!("/v1/batches/{id}")))
        .send()
        .await
        .unwrap();
    let p = problem(res, 403).await;
    assert!(p["detail"].as_str().unwrap().contains("another key"), "{p}");
    let res = ivcc
        .get(app.url(&format!("/v1/batches/{id}/results")))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    finished(&app.client, &app.address, id).await;
    // Ended: cancelling leaves it as it is, and says so.
    let res = counselor
        .delete(app.url(&format!("/v1/batches/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "done");
    let res = app
        .client
        .get(app.url("/v1/batches/no-such-batch"))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
}

#[tokio::test]
async fn bad_batch_requests_are_refused_with_the_field() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    import(&app, vec![qualifying_student("B-1")]).await;
    for (body, field, words) in [
        (
            json!({"mode": "preview", "students": "everyone"}),
            None,
            "students must be",
        ),
        (
            json!({"mode": "preview", "students": {"school": "x"}}),
            None,
            "students must be",
        ),
        (
            json!({"mode": "sometimes", "students": "all"}),
            None,
            "mode",
        ),
        (
            json!({"mode": "preview", "students": ["B-1", "B-404"]}),
            Some("students"),
            "B-404",
        ),
        (
            json!({"mode": "preview", "students": []}),
            Some("students"),
            "empty",
        ),
        (
            json!({"mode": "preview", "policy_ids": [], "students": "all"}),
            Some("policy_ids"),
            "at least one",
        ),
        (
            json!({"mode": "award", "policy_ids": ["ccpe-mett-requirements"], "students": "all", "as_of": "2024-06-01"}),
            Some("policy_ids"),
            "never awarded",
        ),
        (
            json!({"mode": "preview", "policy_ids": ["nope"], "students": "all"}),
            None,
            "nope",
        ),
        (
            json!({"mode": "preview", "students": "all", "extra": 1}),
            None,
            "extra",
        ),
    ] {
        let res = app
            .client
            .post(app.url("/v1/batches"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let p: Value = res.json().await.unwrap();
        assert!(status == 400 || status == 422, "{body}: {status} {p}");
        assert!(p["detail"].as_str().unwrap().contains(words), "{body}: {p}");
        if let Some(f) = field {
            assert!(p.to_string().contains(f), "{body}: {p}");
        }
    }
}

#[tokio::test]
async fn a_running_batch_can_be_cancelled_and_keeps_what_it_did() {
    let app = spawn_app_with(Backend::Sqlite, std::path::Path::new(RULES), |s| {
        s.batch_chunk = 1
    })
    .await
    .unwrap();
    import(
        &app,
        (0..400)
            .map(|i| qualifying_student(&format!("C-{i:03}")))
            .collect(),
    )
    .await;
    let (_, queued) = start(
        &app.client,
        &app.address,
        json!({
            "mode": "preview", "policy_ids": [IMA], "as_of": "2024-06-01", "students": "all"
        }),
    )
    .await;
    let id = queued["batch_id"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/v1/batches/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["state"], "cancelled");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = finished(&app.client, &app.address, id).await;
    assert_eq!(after["state"], "cancelled");
    let done = after["done"].as_u64().unwrap();
    assert!(
        done < 400,
        "the batch went on after it was cancelled: {after}"
    );
    assert_eq!(
        results(&app.client, &app.address, id).await.len() as u64,
        done
    );
}

/// SIGKILL mid-batch, restart: the batch finishes, every award is made once, the ledger
/// verifies.
async fn an_award_batch_survives_a_kill(backend: Backend) {
    let Some((_db, url)) = TestDb::create(backend) else {
        return;
    };
    const STUDENTS: usize = 600;
    let env = [("ELIGO_BATCH_CHUNK", "10")];
    let mut first = Process::start_with(&url, &env).await;
    let client = first.client();
    let records: Vec<Value> = (0..STUDENTS)
        .map(|i| qualifying_student(&format!("K-{i:04}")))
        .collect();
    let res = client
        .post(format!("{}/v1/students/import", first.address))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, queued) = start(
        &client,
        &first.address,
        json!({
            "mode": "award", "policy_ids": [IMA, IVCC], "as_of": "2024-06-01", "students": "all"
        }),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["batch_id"].as_str().unwrap().to_string();
    let mut seen = 0;
    for _ in 0..2000 {
        let v: Value = client
            .get(format!("{}/v1/batches/{id}", first.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen = v["done"].as_u64().unwrap();
        if seen >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    assert!(
        (50..STUDENTS as u64).contains(&seen),
        "killed mid-batch, after {seen} students"
    );
    let second = Process::start_with(&url, &env).await;
    let client = client_with_key(&first.key);
    let done = finished(&client, &second.address, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["done"], STUDENTS);
    assert_eq!(done["counts"], json!({"granted": 2 * STUDENTS}), "{done}");
    let lines = results(&client, &second.address, &id).await;
    assert_eq!(lines.len(), 2 * STUDENTS);
    let mut pairs: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["student_id"].as_str().unwrap().into(),
                l["policy_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 2 * STUDENTS, "one line per student and policy");
    let verify: Value = client
        .get(format!("{}/v1/ledger/verify", second.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
    // Every award once: no second grant, no denial for an award made before the kill.
    assert_eq!(verify["entries_checked"], 2 * STUDENTS, "{verify}");
}

#[tokio::test]
async fn an_award_batch_survives_a_kill_on_sqlite() {
    an_award_batch_survives_a_kill(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_award_batch_survives_a_kill_on_postgres() {
    an_award_batch_survives_a_kill(Backend::Postgres).await;
}

#[tokio::test]
async fn a_batch_started_from_a_page_shows_its_progress_until_it_ends() {
    let app = spawn_app_with(Backend::Sqlite, std::path::Path::new(RULES), |s| {
        s.batch_chunk = 1
    })
    .await
    .unwrap();
    import(
        &app,
        (0..1500)
            .map(|i| qualifying_student(&format!("P-{i:04}")))
            .collect(),
    )
    .await;
    let secret =
        crate::helpers::new_key(&app.database_url, eligo::service::access::Role::Admin, None);
    let (b, csrf) = crate::helpers::sign_in_browser(&app, &secret).await;
    let res = b
        .post(app.url("/batches"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("mode", "preview"),
            ("policy_id", IMA),
            ("as_of", "2024-06-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let page = res.url().path().to_string();
    assert!(page.starts_with("/batches/"), "{page}");
    // Running: the page asks the browser to reload it, and says how to stop that.
    assert_eq!(res.headers()["refresh"], "2");
    let text = res.text().await.unwrap();
    assert!(text.contains("of 1500"), "{text}");
    assert!(text.contains("?refresh=off"), "{text}");
    let off = b
        .get(app.url(&format!("{page}?refresh=off")))
        .send()
        .await
        .unwrap();
    assert!(off.headers().get("refresh").is_none());
    assert!(off
        .text()
        .await
        .unwrap()
        .contains("Reload and keep reloading"));
    // Ended: no more reloading; the results download as CSV.
    let id = page.trim_start_matches("/batches/").to_string();
    finished(&app.client, &app.address, &id).await;
    let done = b.get(app.url(&page)).send().await.unwrap();
    assert!(done.headers().get("refresh").is_none());
    assert!(done.text().await.unwrap().contains("Check batch: done"));
    let csv = b
        .get(app.url(&format!("{page}/results.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("student_id,policy_id,version,outcome"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1501);
    // A counselor may check a class from the page, but not award it.
    let counselor = crate::helpers::new_key(
        &app.database_url,
        eligo::service::access::Role::Counselor,
        None,
    );
    let (c, csrf) = crate::helpers::sign_in_browser(&app, &counselor).await;
    let refused = c
        .post(app.url("/batches"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("mode", "award"),
            ("policy_id", IMA),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("may not start award batches"));
}
