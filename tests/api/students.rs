//! Student records over HTTP.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student};
use crate::on_both_backends;

on_both_backends! {
    async fn put_creates_then_replaces_get_reads_delete_removes(app) {
        let res = app.put_student("IL-1", &qualifying_student("IL-1")).await;
        assert_eq!(res.status().as_u16(), 201);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["student"]["student_id"], "IL-1");
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

        let mut changed = qualifying_student("IL-1");
        changed["school_id"] = json!("d211-palatine");
        let res = app.put_student("IL-1", &changed).await;
        assert_eq!(res.status().as_u16(), 200);

        let res = app.client.get(app.url("/v1/students/IL-1")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["student"]["school_id"], "d211-palatine");
        assert_eq!(body["student"]["endorsements"][0]["status"], "earned");

        let res = app.client.delete(app.url("/v1/students/IL-1")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 204);
        let res = app.client.get(app.url("/v1/students/IL-1")).send().await.unwrap();
        problem(res, 404).await;
        let res = app.client.delete(app.url("/v1/students/IL-1")).send().await.unwrap();
        problem(res, 404).await;
    }

    async fn put_takes_the_id_from_the_path_and_refuses_a_mismatch(app) {
        let res = app.put_student("IL-2", &json!({"school_id": "x"})).await;
        assert_eq!(res.status().as_u16(), 201);
        let res = app.put_student("IL-2", &json!({"student_id": "IL-3"})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "student_id");
        let res = app.put_student("bad%20id", &json!({})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "student_id");
    }

    async fn invalid_records_name_the_field(app) {
        let res = app.put_student("IL-4", &json!({"endorsements": [{"area": "welding", "status": "earned"}]})).await;
        let p = problem(res, 422).await;
        assert_eq!(p["field"], "endorsements[0].area");
        assert!(p["detail"].as_str().unwrap().contains("welding"));
        let res = app.put_student("IL-4", &json!({"graduation_date": "2024-02-30"})).await;
        assert_eq!(problem(res, 422).await["field"], "graduation_date");
        let res = app.put_student("IL-4", &json!({"gpa": 4.0})).await;
        assert!(problem(res, 422).await["detail"].as_str().unwrap().contains("gpa"));
        let res = app.put_student("IL-4", &json!([1, 2])).await;
        problem(res, 422).await;
    }

    async fn malformed_json_wrong_type_and_oversized_bodies_are_refused(app) {
        let res = app.send_body(Method::PUT, "/v1/students/IL-5", "application/json", "{\n  \"student_id\": \"IL-5\",\n  oops\n}").await;
        let p = problem(res, 400).await;
        assert_eq!(p["line"], 3);
        assert_eq!(p["type"], "urn:eligo:problem:malformed-json");

        let res = app.send_body(Method::PUT, "/v1/students/IL-5", "text/plain", "{}").await;
        problem(res, 415).await;
        let res = app.client.put(app.url("/v1/students/IL-5")).body("{}").send().await.unwrap();
        problem(res, 415).await;

        let big = json!({"student_id": "IL-5", "attributes": {"blob": "x".repeat(300 * 1024)}});
        let res = app.put_student("IL-5", &big).await;
        let p = problem(res, 413).await;
        assert!(p["detail"].as_str().unwrap().contains("262144"));
        let res = app.client.get(app.url("/v1/students/IL-5")).send().await.unwrap();
        problem(res, 404).await;
    }

    async fn listing_pages_with_a_cursor_and_filters_by_school(app) {
        for i in 0..7 {
            let mut s = qualifying_student(&format!("S-{i}"));
            s["school_id"] = json!(if i % 2 == 0 { "even" } else { "odd" });
            assert_eq!(app.put_student(&format!("S-{i}"), &s).await.status().as_u16(), 201);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut url = app.url("/v1/students?limit=3");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
            pages += 1;
            for item in page["items"].as_array().unwrap() {
                seen.push(item["student"]["student_id"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, (0..7).map(|i| format!("S-{i}")).collect::<Vec<_>>());

        let page: Value = app
            .client
            .get(app.url("/v1/students?school_id=even"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["student"]["student_id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["S-0", "S-2", "S-4", "S-6"]);
        assert!(page.get("next_cursor").is_none());

        let res = app.client.get(app.url("/v1/students?limit=0")).send().await.unwrap();
        assert_eq!(problem(res, 422).await["field"], "limit");
        let res = app.client.get(app.url("/v1/students?limit=abc")).send().await.unwrap();
        problem(res, 400).await;
        let res = app.client.get(app.url("/v1/students?colour=red")).send().await.unwrap();
        problem(res, 400).await;
    }

    async fn import_json_array_reports_bad_rows_and_stores_the_rest(app) {
        let body = "[\n{\"student_id\": \"A-1\"},\n{\"student_id\": \"A-2\", \"graduation_date\": \"soon\"},\n{\"student_id\": \"A-3\"}\n]";
        let res = app.send_body(Method::POST, "/v1/students/import", "application/json", body).await;
        assert_eq!(res.status().as_u16(), 200);
        let r: Value = res.json().await.unwrap();
        assert_eq!(r["imported"], 2);
        assert_eq!(r["created"], 2);
        assert_eq!(r["rejected"][0]["line"], 3);
        assert_eq!(r["rejected"][0]["student_id"], "A-2");
        assert_eq!(r["rejected"][0]["field"], "graduation_date");
        for (id, status) in [("A-1", 200), ("A-2", 404), ("A-3", 200)] {
            let res = app.client.get(app.url(&format!("/v1/students/{id}"))).send().await.unwrap();
            assert_eq!(res.status().as_u16(), status, "{id}");
        }
    }

    async fn import_ndjson_and_csv(app) {
        let ndjson = "{\"student_id\":\"N-1\"}\n{\"student_id\":\"N-2\",\"oops\":1}\n\n{\"student_id\":\"N-3\"}\n";
        let r: Value = app.send_body(Method::POST, "/v1/students/import", "application/x-ndjson", ndjson).await
            .json()
            .await
            .unwrap();
        assert_eq!(r["imported"], 2);
        assert_eq!(r["rejected"][0]["line"], 2);

        let csv = "student_id,school_id,graduation_date,endorsements,job_offers,postsecondary_institution_id,postsecondary_status\n\
                   C-1,d1,2024-05-30,manufacturing_engineering_technology_trades:earned,332710:true::Acme,ivcc,enrolled\n\
                   C-2,d1,2024-05-30\n\
                   C-3,d2,,none,none,,\n";
        let r: Value = app.send_body(Method::POST, "/v1/students/import", "text/csv", csv).await
            .json()
            .await
            .unwrap();
        assert_eq!(r["imported"], 2, "{r}");
        assert_eq!(r["rejected"][0]["line"], 3);
        let s: Value = app.client.get(app.url("/v1/students/C-1")).send().await.unwrap().json().await.unwrap();
        assert_eq!(s["student"]["job_offers"][0]["employer"], "Acme");
        assert_eq!(s["student"]["postsecondary"]["status"], "enrolled");
        let s: Value = app.client.get(app.url("/v1/students/C-3")).send().await.unwrap().json().await.unwrap();
        assert_eq!(s["student"]["endorsements"], json!([]));

        let res = app.send_body(Method::POST, "/v1/students/import", "text/csv", "student_id,gpa\nx,4\n").await;
        problem(res, 422).await;
        let res = app.send_body(Method::POST, "/v1/students/import", "application/xml", "<x/>").await;
        problem(res, 415).await;
    }
}

/// A record read is trusted for at most 0.1 s: a write through this process is seen at once, a
/// write by another (here, straight to the database) within that time.
#[tokio::test]
async fn a_record_read_is_fresh_within_a_tenth_of_a_second() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let mut record = crate::helpers::qualifying_student("FR-1");
    record["school_id"] = serde_json::json!("first");
    app.put_student("FR-1", &record).await;
    assert_eq!(
        app.get_json("/v1/students/FR-1").await["student"]["school_id"],
        "first"
    );
    record["school_id"] = serde_json::json!("school-two");
    app.put_student("FR-1", &record).await;
    assert_eq!(
        app.get_json("/v1/students/FR-1").await["student"]["school_id"],
        "school-two"
    );
    crate::helpers::tamper(
        &app.database_url,
        "UPDATE students SET record = replace(record, 'school-two', 'school-three') WHERE student_id = 'FR-1'",
    );
    tokio::time::sleep(
        eligo::service::access::KEY_CACHE_TTL + std::time::Duration::from_millis(20),
    )
    .await;
    let fresh = app.get_json("/v1/students/FR-1").await;
    assert_eq!(fresh["student"]["school_id"], "school-three", "{fresh}");
    app.client
        .delete(app.url("/v1/students/FR-1"))
        .send()
        .await
        .unwrap();
    let res = app
        .client
        .get(app.url("/v1/students/FR-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404, "a delete is seen at once");
}
