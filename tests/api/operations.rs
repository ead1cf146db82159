//! Health, readiness, metrics, request ids, method and route errors, the OpenAPI document.

use serde_json::{json, Value};

use crate::helpers::{problem, qualifying_student};
use crate::on_both_backends;

on_both_backends! {
    async fn health_and_readiness(app) {
        let res = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers().contains_key("x-request-id"));
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ready");
    }

    async fn metrics_count_requests_and_decisions(app) {
        app.evaluate(&json!({"student": qualifying_student("m"), "as_of": "2024-06-01"})).await;
        app.client.get(app.url("/v1/students/nobody")).send().await.unwrap();
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains(r#"eligo_http_requests_total{method="POST",route="/v1/evaluations",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"eligo_http_requests_total{method="GET",route="/v1/students/{id}",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"eligo_decisions_total{outcome="eligible",policy="ima-mett-scholarship"} 1"#), "{text}");
        assert!(text.contains(r#"eligo_decisions_total{outcome="ineligible",policy="jjc-ccpe-waiver"} 1"#), "{text}");
        assert!(text.contains("eligo_http_request_duration_seconds_bucket"), "{text}");
    }

    async fn request_ids_are_echoed_or_made(app) {
        let res = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123");
        let res = app.client.get(app.url("/healthz")).header("x-request-id", "bad id").send().await.unwrap();
        assert_ne!(res.headers()["x-request-id"], "bad id");
        assert_eq!(res.headers()["x-request-id"].len(), 36);
    }

    async fn wrong_methods_are_405_with_allow_and_unknown_routes_404(app) {
        let res = app.client.patch(app.url("/v1/students/x")).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "GET, PUT, DELETE");
        problem(res, 405).await;
        let res = app.client.get(app.url("/v1/evaluations")).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "POST");
        problem(res, 405).await;
        let res = app.client.get(app.url("/v1/nothing-here")).send().await.unwrap();
        problem(res, 404).await;
    }

    async fn an_internal_failure_is_a_500_naming_the_request_never_a_409(app) {
        // A stored record that no longer reads: the store's fault, never the caller's.
        crate::helpers::tamper(
            &app.database_url,
            "INSERT INTO students (student_id, school_id, record, created_at, updated_at) \
             VALUES ('BROKEN', NULL, 'not json', '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z')",
        );
        let res = app.client.get(app.url("/v1/students/BROKEN")).header("x-request-id", "broken-1").send().await.unwrap();
        let body = problem(res, 500).await;
        assert_eq!(body["type"], "urn:eligo:problem:internal");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("broken-1"), "{detail}");
        assert!(!detail.contains("not json") && !detail.contains("corrupt"), "the cause stays in the log: {detail}");
    }

    async fn openapi_and_docs_are_served(app) {
        let spec: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        assert!(spec["paths"]["/v1/evaluations"]["post"].is_object());
        let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = no_redirect.get(app.url("/docs")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 308);
        let res = app.client.get(app.url("/docs/")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.text().await.unwrap().contains("swagger"));
    }
}

#[test]
fn the_checked_in_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap();
    let generated = eligo::api::openapi::document().unwrap();
    assert!(
        checked_in == generated,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_route_is_documented() {
    let spec: Value = serde_json::from_str(&eligo::api::openapi::document().unwrap()).unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/students", "get"),
        ("/v1/students/import", "post"),
        ("/v1/students/{id}", "get"),
        ("/v1/students/{id}", "put"),
        ("/v1/students/{id}", "delete"),
        ("/v1/evaluations", "post"),
        ("/v1/policies", "get"),
        ("/v1/policies/{id}", "get"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

#[test]
fn eligo_migrate_prepares_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("m.db").exists());
}

/// SIGTERM and SIGINT stop the server cleanly: it finishes, exits 0 and stops listening.
#[tokio::test]
async fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let mut server = crate::helpers::Process::start(&url).await;
        let sent = std::process::Command::new("kill")
            .args([signal, &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut status = None;
        for _ in 0..200 {
            if let Some(s) = server.child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let status = status.unwrap_or_else(|| panic!("{signal}: still running after 10 s"));
        assert!(status.success(), "{signal}: exited with {status}");
        let after = reqwest::get(format!("{}/healthz", server.address)).await;
        assert!(after.is_err(), "{signal}: still answering");
    }
}

/// `eligo serve --log-json` on `url`, its log in a file under `dir`.
struct JsonLogServer {
    child: std::process::Child,
    address: String,
    log_path: std::path::PathBuf,
}

impl JsonLogServer {
    async fn start(dir: &std::path::Path, url: &str) -> Self {
        let log_path = dir.join("server.log");
        let (mut command, port) = crate::helpers::serve_command(url, "info");
        let child = command
            .arg("--log-json")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let address = format!("http://127.0.0.1:{port}");
        let up = crate::helpers::serving(&address, 300, std::time::Duration::from_millis(50)).await;
        assert!(up, "the server did not start");
        Self {
            child,
            address,
            log_path,
        }
    }

    /// Stops the server with SIGTERM; returns everything it logged.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(stopped.success());
        // Bounded: a server that does not stop fails the test instead of hanging the suite.
        for _ in 0..300 {
            if self.child.try_wait().unwrap().is_some() {
                return std::fs::read_to_string(&self.log_path).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "the server did not stop within 15 s of SIGTERM:\n{}",
            std::fs::read_to_string(&self.log_path).unwrap_or_default()
        );
    }
}

/// `--log-json`: every line is a JSON object, and every line logged while serving a request
/// carries that request's id (the one the client sent, or the one the server made).
#[tokio::test]
async fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("logs.db").display());
    // A key made beforehand, so the first start prints no key banner (it is not a log line).
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
        .args(["keys", "create", "--role", "admin", "--database-url", &url])
        .output()
        .unwrap();
    assert!(made.status.success());
    let server = JsonLogServer::start(dir.path(), &url).await;
    let address = server.address.clone();
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{address}/healthz"))
        .header("x-request-id", "trace-json-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = client
        .get(format!("{address}/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let made_id = res
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let log = server.stop();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"].is_object()));
    // Every line inside a request span names its request.
    for l in lines.iter().filter(|l| l["span"]["name"] == "request") {
        assert!(l["span"]["request_id"].is_string(), "no request id: {l}");
    }
    for (id, route, status) in [
        ("trace-json-1", "/healthz", 200),
        (made_id.as_str(), "unmatched", 404),
    ] {
        let served: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id && l["fields"]["message"] == "served")
            .collect();
        assert_eq!(served.len(), 1, "one 'served' line for {id}:\n{log}");
        assert_eq!(served[0]["span"]["route"], route);
        assert_eq!(served[0]["fields"]["status"], status);
    }
}

/// The log line of an internal failure carries the request id and the cause that the response
/// leaves out.
#[tokio::test]
async fn an_internal_failure_is_logged_with_its_cause_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("internal.db").display());
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
        .args(["keys", "create", "--role", "admin", "--database-url", &url])
        .output()
        .unwrap();
    assert!(made.status.success());
    let key = String::from_utf8(made.stdout).unwrap().trim().to_string();
    crate::helpers::tamper(
        &url,
        "INSERT INTO students (student_id, school_id, record, created_at, updated_at) \
         VALUES ('BROKEN', NULL, 'not json', '2024-01-01T00:00:00.000000Z', '2024-01-01T00:00:00.000000Z')",
    );
    let server = JsonLogServer::start(dir.path(), &url).await;
    let address = server.address.clone();
    let res = crate::helpers::client_with_key(&key)
        .get(format!("{address}/v1/students/BROKEN"))
        .header("x-request-id", "broken-log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 500);
    let log = server.stop();
    let errors: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert_eq!(errors[0]["fields"]["request_id"], "broken-log-1", "{log}");
    let cause = errors[0]["fields"]["error"].as_str().unwrap();
    assert!(cause.contains("corrupt stored data"), "{cause}");
}

/// The layers depend one way (api -> service -> policy and store): the API names nothing of the
/// store, the store nothing of HTTP, the service or the API, the core nothing of them all.
#[test]
fn the_layers_depend_one_way() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: [(&str, &[&str]); 4] = [
        ("api", &["crate::store", "store::"]),
        ("pages", &["crate::store", "store::", "diesel"]),
        (
            "store",
            &[
                "actix",
                "utoipa",
                "crate::service",
                "crate::api",
                "StatusCode",
            ],
        ),
        (
            "policy",
            &[
                "actix",
                "diesel",
                "tokio",
                "crate::store",
                "crate::service",
                "crate::api",
            ],
        ),
    ];
    let mut offences = Vec::new();
    for (layer, banned) in rules {
        for entry in std::fs::read_dir(src.join(layer)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for word in banned {
                if text.contains(word) {
                    offences.push(format!("{} mentions {word}", path.display()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

/// The document states the rules the service applies wherever OpenAPI 3.1 can say them (#13);
/// schemathesis in `.ci/run` holds the service to them with its acceptance checks.
#[test]
fn the_document_states_the_rules_the_service_applies() {
    let doc: Value = serde_json::from_str(&eligo::api::openapi::document().unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let ledger = &doc["paths"]["/v1/ledger"]["get"]["parameters"];
    let outcome = ledger
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "outcome")
        .unwrap();
    assert_eq!(
        outcome["schema"]["$ref"],
        "#/components/schemas/LedgerOutcome"
    );
    assert_eq!(
        schemas["LedgerOutcome"]["enum"],
        json!(["granted", "denied", "revoked"])
    );
    let key = &doc["paths"]["/v1/awards"]["post"]["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["schema"]["maxLength"], 255);
    assert!(key["schema"]["pattern"].is_string());
    let reason = &schemas["RevokeRequest"]["properties"]["reason"];
    assert_eq!(
        (reason["minLength"].clone(), reason["maxLength"].clone()),
        (json!(1), json!(1000))
    );
    assert_eq!(
        schemas["EvaluationRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        schemas["CreateKeyRequest"]["oneOf"][0]["properties"]["role"]["enum"],
        json!(["awarder", "author"])
    );
    assert_eq!(
        schemas["BudgetLimits"]["anyOf"].as_array().unwrap().len(),
        2
    );
    assert_eq!(schemas["Student"]["required"], json!(["student_id"]));
    assert!(schemas["StudentUpdate"]["required"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        doc["paths"]["/v1/students/{id}"]["put"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/StudentUpdate"
    );
    let props = &schemas["Student"]["properties"];
    assert_eq!(props["student_id"]["pattern"], "^[A-Za-z0-9._-]{1,64}$");
    assert_eq!(props["endorsements"]["maxItems"], 200);
    assert_eq!(
        schemas["JobOffer"]["properties"]["naics"]["pattern"],
        "^[0-9]{2,6}$"
    );
    // Rules that depend on stored data are in the descriptions.
    let budget = doc["paths"]["/v1/policies/{id}/budget"]["put"]["description"]
        .as_str()
        .unwrap();
    assert!(budget.contains("tuition waiver"), "{budget}");
}

/// Values at the edges of what the document allows are accepted (nothing valid is refused).
#[tokio::test]
async fn values_at_the_documented_limits_are_accepted() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let text = "x".repeat(256);
    let record = json!({
        "student_id": "a".repeat(64),
        "school_id": text,
        "job_offers": [{"naics": "31"}, {"naics": "336111"}],
        "early_college_credits": [{"credit_hours": 0}, {"credit_hours": 10000}],
        "demographics": {"race_ethnicity": vec!["r"; 200]},
    });
    let res = app.put_student(&"a".repeat(64), &record).await;
    assert_eq!(res.status().as_u16(), 201);
    let res = app
        .client
        .post(app.url("/v1/keys"))
        .json(&json!({"role": "awarder", "sponsor": "é".repeat(128), "name": format!(" n {}", "ü".repeat(125))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
}
