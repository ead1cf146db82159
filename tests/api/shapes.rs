//! Objects given as arrays are refused on every path (previews, PUT, imports, the CLI), at every
//! level of the record and in every request type, with the same problem and field naming as any
//! other invalid record. serde would otherwise read a struct from an array by position.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student, spawn_app, Backend, TestApp};

/// A record with every nested object present.
fn full(id: &str) -> Value {
    json!({
        "student_id": id,
        "school_id": "d204",
        "graduation_date": "2024-05-30",
        "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned"}],
        "early_college_credits": [{"course": "MFG 101", "subject": "machining", "credit_hours": 3.0}],
        "work_based_learning": [{"kind": "internship", "hours": 120}],
        "job_offers": [{"employer": "Acme", "naics": "332710", "local": true}],
        "postsecondary": {"institution_id": "ivcc", "status": "enrolled"},
        "demographics": {"gender": "female", "race_ethnicity": ["hispanic_latino"]}
    })
}

/// The record with the object at `path` replaced by its values in order (what serde would have
/// read by position).
fn as_array(mut record: Value, path: &str) -> Value {
    let target = match path.split_once('[') {
        Some((list, _)) => &mut record[list][0],
        None => &mut record[path],
    };
    let values: Vec<Value> = target.as_object().unwrap().values().cloned().collect();
    *target = Value::Array(values);
    record
}

/// Every nested object of the record, by the field path an error names.
const NESTED: [&str; 6] = [
    "endorsements[0]",
    "early_college_credits[0]",
    "work_based_learning[0]",
    "job_offers[0]",
    "postsecondary",
    "demographics",
];

fn assert_object_error(body: &Value, field: &str) {
    assert_eq!(body["type"], "urn:eligo:problem:invalid-record", "{body}");
    assert_eq!(body["field"], field, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
    assert!(detail.contains("expected an object"), "{detail}");
}

#[tokio::test]
async fn a_nested_object_given_as_an_array_is_refused_by_previews_put_and_imports() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    // The valid record is accepted everywhere (the refusals below are about the shape alone).
    assert_eq!(
        app.put_student("OK-1", &full("OK-1"))
            .await
            .status()
            .as_u16(),
        201
    );
    for path in NESTED {
        let record = as_array(full("SH-1"), path);
        // Preview of an inline record.
        let res = app
            .evaluate(&json!({"student": record, "as_of": "2024-06-01"}))
            .await;
        assert_object_error(&problem(res, 422).await, &format!("student.{path}"));
        // PUT.
        let res = app.put_student("SH-1", &record).await;
        assert_object_error(&problem(res, 422).await, path);
        // Imports: JSON array and NDJSON report the row; nothing is stored.
        for (media, body) in [
            (
                "application/json",
                serde_json::to_string(&json!([record])).unwrap(),
            ),
            ("application/x-ndjson", format!("{record}\n")),
        ] {
            let r: Value = app
                .send_body(Method::POST, "/v1/students/import", media, body.clone())
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(r["imported"], 0, "{media} {path}: {r}");
            assert_eq!(r["rejected"][0]["field"], path, "{media}: {r}");
            assert!(r["rejected"][0]["error"]
                .as_str()
                .unwrap()
                .contains("expected an object"));
        }
    }
    let res = app
        .client
        .get(app.url("/v1/students/SH-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404, "nothing was stored");
}

#[tokio::test]
async fn the_record_itself_given_as_an_array_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let positional = json!(["SH-2", "d204", "2024-05-30"]);
    let res = app.evaluate(&json!({"student": positional})).await;
    let body = problem(res, 422).await;
    assert_eq!(body["field"], "student");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("expected an object"));
    let res = app.put_student("SH-2", &positional).await;
    let body = problem(res, 422).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object"),
        "{body}"
    );
}

/// The example from the issue: `eligo check` used to decide this record ELIGIBLE.
#[test]
fn the_cli_refuses_objects_given_as_arrays() {
    let dir = tempfile::tempdir().unwrap();
    for path in NESTED {
        let file = dir.path().join("student.json");
        std::fs::write(&file, as_array(full("CLI-1"), path).to_string()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
            .args(["check", "--student"])
            .arg(&file)
            .args(["--as-of", "2024-06-01", "--rules"])
            .arg(crate::helpers::RULES)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{path}: invalid type: sequence, expected an object"
            )),
            "{path}: {err}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("ELIGIBLE"));
    }
}

async fn send(app: &TestApp, method: Method, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .header("idempotency-key", "shape-1")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_request_type_given_as_an_array_is_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.put_student("SH-3", &qualifying_student("SH-3")).await;
    for (method, path, body) in [
        (Method::POST, "/v1/evaluations", json!([null, "SH-3"])),
        (
            Method::POST,
            "/v1/evaluations",
            json!([null, "SH-3", null, "2024-06-01"]),
        ),
        (
            Method::POST,
            "/v1/awards",
            json!(["SH-3", "ima-mett-scholarship"]),
        ),
        (
            Method::PUT,
            "/v1/policies/ima-mett-scholarship/budget",
            json!([100, null]),
        ),
        (Method::POST, "/v1/keys", json!(["auditor"])),
        (Method::POST, "/v1/awards/nope/revoke", json!(["because"])),
    ] {
        let res = send(&app, method.clone(), path, &body).await;
        let p = problem(res, 422).await;
        assert!(
            p["detail"].as_str().unwrap().contains("expected an object"),
            "{method} {path}: {p}"
        );
    }
    let ledger = app.get_json("/v1/ledger").await;
    assert_eq!(ledger["items"], json!([]), "nothing was recorded");
}
