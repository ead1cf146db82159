//! Hostile input: nothing a client sends may crash the service or half-write data.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student, spawn_app, Backend};

#[tokio::test]
async fn deeply_nested_json_is_refused_not_crashed_on() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let deep = format!(
        "{{\"student_id\":\"x\",\"attributes\":{{\"a\":{}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    for path in ["/v1/students/x", "/v1/evaluations"] {
        let body = if path.ends_with('x') {
            deep.clone()
        } else {
            format!("{{\"student\":{deep}}}")
        };
        let req = if path.ends_with('x') {
            app.client.put(app.url(path))
        } else {
            app.client.post(app.url(path))
        };
        let res = req
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(status == 400 || status == 422, "{path}: {status}");
        problem(res, status).await;
    }
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn huge_strings_and_arrays_inside_a_record_are_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let res = app
        .put_student("H-1", &json!({"school_id": "s".repeat(200_000)}))
        .await;
    assert_eq!(problem(res, 422).await["field"], "school_id");
    let many: Vec<Value> = (0..5000).map(|_| json!({"kind": "internship"})).collect();
    let res = app
        .put_student("H-1", &json!({"work_based_learning": many}))
        .await;
    assert_eq!(problem(res, 422).await["field"], "work_based_learning");
    let res = app
        .put_student("H-1", &json!({"attributes": {"blob": "x".repeat(100_000)}}))
        .await;
    assert_eq!(problem(res, 422).await["field"], "attributes");
    let res = app
        .client
        .get(app.url("/v1/students/H-1"))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
}

#[tokio::test]
async fn invalid_utf8_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut body = b"{\"student_id\":\"U-1\",\"school_id\":\"".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    body.extend_from_slice(b"\"}");
    let res = app
        .send_body(
            Method::PUT,
            "/v1/students/U-1",
            "application/json",
            body.clone(),
        )
        .await;
    problem(res, 400).await;
    for ct in ["text/csv", "application/x-ndjson", "application/json"] {
        let res = app
            .send_body(Method::POST, "/v1/students/import", ct, body.clone())
            .await;
        let status = res.status().as_u16();
        assert!(status == 400 || status == 422, "{ct}: {status}");
        problem(res, status).await;
    }
}

#[tokio::test]
async fn path_ids_with_traversal_or_control_characters() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for path in [
        "/v1/students/..%2F..%2Fetc%2Fpasswd",
        "/v1/students/%2e%2e",
        "/v1/students/a%00b",
        "/v1/students/a%0Ab",
        "/v1/policies/..%2Fpolicies",
        "/v1/policies/%00/budget",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        assert!(status == 404 || status == 403, "{path}: {status}");
        problem(res, status).await;
    }
    for id in ["..%2Fx", "a%00b", "a%0Ab", "a%20b"] {
        let res = app
            .client
            .put(app.url(&format!("/v1/students/{id}")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res, 422).await["field"], "student_id", "{id}");
    }
}

#[tokio::test]
async fn csv_formula_cells_are_stored_as_text_and_ragged_rows_reported() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let csv = "student_id,school_id,gender\nF-1,=cmd|' /C calc'!A0,@SUM(A1)\nF-2,x\nF-3,+1,-2\n";
    let r: Value = app
        .send_body(Method::POST, "/v1/students/import", "text/csv", csv)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["imported"], 2, "{r}");
    assert_eq!(r["rejected"][0]["line"], 3);
    let s = app.get_json("/v1/students/F-1").await;
    assert_eq!(s["student"]["school_id"], "=cmd|' /C calc'!A0");
    assert_eq!(s["student"]["demographics"]["gender"], "@SUM(A1)");
}

#[tokio::test]
async fn a_ten_thousand_row_import_with_one_bad_row_in_the_middle() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut body = String::new();
    for i in 0..10_000 {
        if i == 5_000 {
            body.push_str("{\"student_id\":\"T-5000\",\"graduation_date\":\"2024-02-31\"}\n");
        } else {
            body.push_str(&serde_json::to_string(&qualifying_student(&format!("T-{i}"))).unwrap());
            body.push('\n');
        }
    }
    let res = app
        .send_body(
            Method::POST,
            "/v1/students/import",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["imported"], 9_999);
    assert_eq!(r["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(r["rejected"][0]["line"], 5_001);
    assert_eq!(r["rejected"][0]["field"], "graduation_date");
    let page = app.get_json("/v1/students?limit=1&cursor=T-9998").await;
    assert_eq!(page["items"][0]["student"]["student_id"], "T-9999");
}
