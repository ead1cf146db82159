//! Keys, roles and sponsor scope: every route × every role, as the README's table says.

use actix_web::http::Method;
use eligo::api::routes::{Access, Kind, Route, Scope, ROUTES};
use eligo::service::access::Role;
use serde_json::{json, Value};

use crate::helpers::{
    browser, client_with_key, problem, qualifying_student, sign_in_browser, spawn_app,
    submit_sign_in, Backend, TestApp,
};

const IMA: &str = "ima-mett-scholarship";

struct Keys {
    admin: reqwest::Client,
    ima_awarder: reqwest::Client,
    ima_awarder_id: String,
    ivcc_awarder: reqwest::Client,
    counselor: reqwest::Client,
    auditor: reqwest::Client,
}

async fn make_key(app: &TestApp, body: Value) -> (String, String) {
    let res = app
        .client
        .post(app.url("/v1/keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let k: Value = res.json().await.unwrap();
    (
        k["key_id"].as_str().unwrap().to_string(),
        k["secret"].as_str().unwrap().to_string(),
    )
}

async fn keys(app: &TestApp) -> Keys {
    let (ima_awarder_id, ima) = make_key(
        app,
        json!({"role": "awarder", "sponsor": "ima-education-foundation"}),
    )
    .await;
    let (_, ivcc) = make_key(app, json!({"role": "awarder", "sponsor": "ivcc"})).await;
    let (_, counselor) = make_key(
        app,
        json!({"role": "counselor", "name": "Metea Valley counseling"}),
    )
    .await;
    let (_, auditor) = make_key(app, json!({"role": "auditor"})).await;
    Keys {
        admin: app.client.clone(),
        ima_awarder: client_with_key(&ima),
        ima_awarder_id,
        ivcc_awarder: client_with_key(&ivcc),
        counselor: client_with_key(&counselor),
        auditor: client_with_key(&auditor),
    }
}

/// A fresh granted IMA award (made by the admin) for a new student.
async fn fresh_award(app: &TestApp, n: &str) -> (String, i64) {
    app.put_student(n, &qualifying_student(n)).await;
    let (status, body) = app.award(&format!("fresh-{n}"), n, IMA).await;
    assert_eq!(status, 201);
    (
        body["award_id"].as_str().unwrap().to_string(),
        body["ledger"]["seq"].as_i64().unwrap(),
    )
}

async fn call(
    client: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    n: usize,
) -> u16 {
    let key = (path == "/v1/awards").then(|| format!("acl-{n}"));
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    send(client, app, &method, path, body, key).await
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let k = keys(&app).await;
    // (who, allowed?) for: admin, IMA awarder, IVCC awarder (wrong sponsor for IMA), counselor, auditor
    type Expect = [bool; 5];
    const STUDENTS: Expect = [true, false, false, true, false];
    const ALL: Expect = [true, true, true, true, true];
    const IMA_AWARD: Expect = [true, true, false, false, false];
    const LEDGER: Expect = [true, true, true, false, true];
    const REPLAY: Expect = [true, true, false, false, true];
    const AUDIT: Expect = [true, false, false, false, true];
    const ADMIN: Expect = [true, false, false, false, false];
    let clients = [
        &k.admin,
        &k.ima_awarder,
        &k.ivcc_awarder,
        &k.counselor,
        &k.auditor,
    ];
    let mut n = 0;
    let mut failures = Vec::new();
    for (who, client) in clients.iter().enumerate() {
        let s = format!("ACL-{who}");
        app.put_student(&s, &qualifying_student(&s)).await;
        let (award_id, seq) = fresh_award(&app, &format!("ACL-R-{who}")).await;
        let (victim_key, _) = make_key(&app, json!({"role": "counselor"})).await;
        let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
            ("GET", "/v1/students".into(), None, STUDENTS),
            (
                "POST",
                "/v1/students/import".into(),
                Some(json!([qualifying_student(&format!("{s}-imp"))])),
                STUDENTS,
            ),
            ("GET", format!("/v1/students/{s}"), None, STUDENTS),
            (
                "PUT",
                format!("/v1/students/{s}"),
                Some(qualifying_student(&s)),
                STUDENTS,
            ),
            (
                "POST",
                "/v1/evaluations".into(),
                Some(json!({"student_id": s})),
                STUDENTS,
            ),
            ("GET", "/v1/policies".into(), None, ALL),
            ("GET", format!("/v1/policies/{IMA}"), None, ALL),
            ("GET", format!("/v1/policies/{IMA}/budget"), None, IMA_AWARD),
            (
                "PUT",
                format!("/v1/policies/{IMA}/budget"),
                Some(json!({"total_cents": 100_000_000})),
                IMA_AWARD,
            ),
            (
                "POST",
                "/v1/awards".into(),
                Some(json!({"student_id": s, "policy_id": IMA, "as_of": "2024-06-01"})),
                IMA_AWARD,
            ),
            (
                "POST",
                format!("/v1/awards/{award_id}/revoke"),
                Some(json!({"reason": "test"})),
                IMA_AWARD,
            ),
            ("GET", "/v1/ledger".into(), None, LEDGER),
            ("POST", format!("/v1/ledger/{seq}/replay"), None, REPLAY),
            ("GET", "/v1/ledger/verify".into(), None, AUDIT),
            ("GET", "/v1/keys".into(), None, ADMIN),
            (
                "POST",
                "/v1/keys".into(),
                Some(json!({"role": "auditor"})),
                ADMIN,
            ),
            ("POST", format!("/v1/keys/{victim_key}/revoke"), None, ADMIN),
            ("DELETE", format!("/v1/students/{s}"), None, STUDENTS),
        ];
        for (method, path, body, expect) in cases {
            n += 1;
            let status = call(client, &app, method, &path, body, n).await;
            let allowed = expect[who];
            let ok = if allowed {
                (200..300).contains(&status)
            } else {
                status == 403
            };
            if !ok {
                failures.push(format!(
                    "key #{who}: {method} {path} -> {status} (expected {})",
                    if allowed { "2xx" } else { "403" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn missing_unknown_malformed_and_revoked_keys_are_401() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let plain = reqwest::Client::new();
    let res = plain.get(app.url("/v1/policies")).send().await.unwrap();
    assert!(problem(res, 401).await["detail"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    let res = plain
        .get(app.url("/v1/policies"))
        .header("authorization", "Bearer eligo_nope")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let res = plain
        .get(app.url("/v1/policies"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let (id, secret) = make_key(&app, json!({"role": "counselor"})).await;
    let counselor = client_with_key(&secret);
    assert_eq!(
        counselor
            .get(app.url("/v1/policies"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let res = app
        .client
        .post(app.url(&format!("/v1/keys/{id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let res = counselor.get(app.url("/v1/policies")).send().await.unwrap();
    problem(res, 401).await;
    // Open routes stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(
            plain
                .get(app.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200,
            "{path}"
        );
    }
    // Keys are validated: an awarder needs a sponsor, others have none.
    let res = app
        .client
        .post(app.url("/v1/keys"))
        .json(&json!({"role": "awarder"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 422).await["field"], "sponsor");
    let res = app
        .client
        .post(app.url("/v1/keys"))
        .json(&json!({"role": "auditor", "sponsor": "x"}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
    let res = app
        .client
        .post(app.url("/v1/keys"))
        .json(&json!({"role": "root"}))
        .send()
        .await
        .unwrap();
    problem(res, 422).await;
}

#[tokio::test]
async fn the_ledger_records_the_acting_key_and_awarders_see_only_their_programs() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let k = keys(&app).await;
    app.put_student("W-1", &qualifying_student("W-1")).await;
    let res = k
        .ima_awarder
        .post(app.url("/v1/awards"))
        .header("idempotency-key", "w1")
        .json(&json!({"student_id": "W-1", "policy_id": IMA, "as_of": "2024-06-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    app.award("w-ivcc", "W-1", "ivcc-ccpe-waiver").await;
    let all = app.get_json("/v1/ledger").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let theirs: Value = k
        .ima_awarder
        .get(app.url("/v1/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = theirs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["policy_id"], IMA);
    assert_eq!(items[0]["key_id"], k.ima_awarder_id.as_str());
    let res = k
        .ima_awarder
        .get(app.url("/v1/ledger?policy_id=ivcc-ccpe-waiver"))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    // The same idempotency key from two callers is two requests.
    let (status, body) = app.award("w1", "W-1", IMA).await;
    assert_eq!(status, 201);
    assert_eq!(body["reason_code"], "already_awarded");
}

#[test]
fn eligo_keys_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
            .args(args)
            .args(["--database-url", &url])
            .output()
            .unwrap()
    };
    let out = run(&[
        "keys",
        "create",
        "--role",
        "awarder",
        "--sponsor",
        "ivcc",
        "--name",
        "IVCC registrar",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("eligo_") && secret.len() > 40);
    let list = String::from_utf8(run(&["keys", "list"]).stdout).unwrap();
    assert!(
        list.contains("awarder\tivcc\tactive\tIVCC registrar"),
        "{list}"
    );
    assert!(!list.contains(&secret), "the secret must never be listed");
    let id = list.split('\t').next().unwrap().to_string();
    assert!(run(&["keys", "revoke", &id]).status.success());
    assert!(String::from_utf8(run(&["keys", "list"]).stdout)
        .unwrap()
        .contains("revoked"));
    assert!(!run(&["keys", "revoke", &id]).status.success());
    let bad = run(&["keys", "create", "--role", "awarder"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sponsor"));
}

/// Starts `eligo serve` on `url`, reads its stderr until it listens; returns the child, its
/// address and everything it printed by then.
fn start_and_read(url: &str) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let (mut command, port) = crate::helpers::serve_command(url, "info");
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("eligo listening on") {
            break;
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://127.0.0.1:{port}"), printed)
}

#[tokio::test]
async fn the_first_start_prints_one_admin_key_and_later_starts_none() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("first.db").display());
    let (mut first, address, printed) = start_and_read(&url);
    let key = printed
        .split_whitespace()
        .find(|w| w.starts_with("eligo_"))
        .unwrap_or_else(|| panic!("no key printed on first start:\n{printed}"))
        .to_string();
    let res = client_with_key(&key)
        .get(format!("{address}/v1/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        200,
        "the printed key is an admin key"
    );
    let keys: Value = res.json().await.unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["role"], "admin");
    assert!(
        !keys.to_string().contains(&key),
        "the secret is never listed"
    );
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, address, printed) = start_and_read(&url);
    assert!(
        !printed.contains("eligo_"),
        "a later start must not make or print a key:\n{printed}"
    );
    let res = client_with_key(&key)
        .get(format!("{address}/v1/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "the first key still works");
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn a_key_revoked_from_another_process_is_refused_within_a_tenth_of_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rev.db").display());
    let server = crate::helpers::Process::start(&url).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
            .args(args)
            .args(["--database-url", &url])
            .output()
            .unwrap()
    };
    let out = cli(&["keys", "create", "--role", "counselor"]);
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let counselor = client_with_key(&secret);
    let url_policies = format!("{}/v1/policies", server.address);
    assert_eq!(
        counselor
            .get(&url_policies)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let list = String::from_utf8(cli(&["keys", "list"]).stdout).unwrap();
    let id = list
        .lines()
        .find(|l| l.contains("counselor"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    assert!(cli(&["keys", "revoke", &id]).status.success());
    tokio::time::sleep(
        eligo::service::access::KEY_CACHE_TTL + std::time::Duration::from_millis(20),
    )
    .await;
    let res = counselor.get(&url_policies).send().await.unwrap();
    problem(res, 401).await;
}

/// A caller of the table-driven matrix: a key of one role, and for roles bound to a sponsor,
/// whether it is the sponsor of the program every sample request acts on (IMA).
struct Matrix {
    role: Role,
    own_sponsor: bool,
    client: reqwest::Client,
    secret: String,
}

/// A request that the route `method path` serves successfully for a caller it allows, acting on
/// the IMA program, with fresh records (`n` keeps them apart). Every row of the table needs one.
///
/// `caller` is who will send it: a batch is shown to the key that started it (and admins), so a
/// batch route's sample is a batch the caller started when its key may start one.
async fn sample(
    app: &TestApp,
    caller: &reqwest::Client,
    method: &Method,
    path: &str,
    n: usize,
) -> (String, Option<Value>, Option<String>) {
    let s = format!("MX-{n}");
    let put = app.put_student(&s, &qualifying_student(&s)).await;
    assert!(put.status().is_success(), "{}", put.status());
    let awarded = || async {
        let (award_id, seq) = fresh_award(app, &format!("MX-R-{n}")).await;
        (award_id, seq)
    };
    let key = Some(format!("mx-{n}"));
    match (method.as_str(), path) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/v1/students" | "/v1/policies") => {
            (path.to_string(), None, None)
        }
        ("GET" | "DELETE", "/v1/students/{id}") => (format!("/v1/students/{s}"), None, None),
        ("PUT", "/v1/students/{id}") => (
            format!("/v1/students/{s}"),
            Some(qualifying_student(&s)),
            None,
        ),
        ("POST", "/v1/students/import") => (
            path.into(),
            Some(json!([qualifying_student(&format!("{s}-imp"))])),
            None,
        ),
        ("POST", "/v1/evaluations") => (path.into(), Some(json!({"student_id": s})), None),
        ("GET", "/v1/policies/{id}") => (format!("/v1/policies/{IMA}"), None, None),
        ("POST", "/v1/policies") => {
            // A dry run of the published IMA v2 with its cases: every check, nothing stored.
            let read = |f: &str| std::fs::read_to_string(format!("{}/{f}", crate::helpers::RULES));
            let tests: Value =
                serde_json::from_str(&read("ima-mett-scholarship.tests.json").unwrap()).unwrap();
            (
                "/v1/policies?dry_run=true".into(),
                Some(
                    json!({"source": read("ima-mett-scholarship.v2.rhai").unwrap(), "tests": tests}),
                ),
                None,
            )
        }
        ("POST", "/v1/policies/{id}/simulate") => (
            format!("/v1/policies/{IMA}/simulate"),
            Some(json!({"version": 2, "against": 1, "as_of": "2024-06-01"})),
            None,
        ),
        ("GET", "/v1/policies/{id}/budget") => (format!("/v1/policies/{IMA}/budget"), None, None),
        ("PUT", "/v1/policies/{id}/budget") => (
            format!("/v1/policies/{IMA}/budget"),
            Some(json!({"total_cents": 100_000_000})),
            None,
        ),
        ("POST", "/v1/awards") => (
            path.into(),
            Some(json!({"student_id": s, "policy_id": IMA, "as_of": "2024-06-01"})),
            key,
        ),
        ("POST", "/v1/awards/{id}/revoke") => (
            format!("/v1/awards/{}/revoke", awarded().await.0),
            Some(json!({"reason": "matrix"})),
            None,
        ),
        ("GET", "/v1/ledger") => (format!("/v1/ledger?policy_id={IMA}"), None, None),
        ("GET", "/v1/ledger/verify") => (path.into(), None, None),
        ("POST", "/v1/ledger/{seq}/replay") => (
            format!("/v1/ledger/{}/replay", awarded().await.1),
            None,
            None,
        ),
        ("POST", "/v1/batches") => (
            path.into(),
            Some(
                json!({"mode": "preview", "policy_ids": [IMA], "students": [s], "as_of": "2024-06-01"}),
            ),
            None,
        ),
        ("GET" | "DELETE", "/v1/batches/{id}") | ("GET", "/v1/batches/{id}/results") => {
            // The caller's own batch of its own programs (an awarder's default) where it may
            // start one, else an admin's.
            let body = json!({"mode": "preview", "students": [s], "as_of": "2024-06-01"});
            let mut res = caller
                .post(app.url("/v1/batches"))
                .json(&body)
                .send()
                .await
                .unwrap();
            if res.status().as_u16() != 202 {
                res = app
                    .client
                    .post(app.url("/v1/batches"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
            }
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap();
            assert_eq!(status, 202, "{v}");
            (
                path.replace("{id}", v["batch_id"].as_str().unwrap()),
                None,
                None,
            )
        }
        ("GET", "/v1/reports/awards" | "/v1/reports/progression" | "/v1/reports/budget") => {
            (path.into(), None, None)
        }
        ("GET", "/v1/keys") => (path.into(), None, None),
        ("POST", "/v1/keys") => (path.into(), Some(json!({"role": "auditor"})), None),
        ("POST", "/v1/keys/{id}/revoke") => {
            let (victim, _) = make_key(app, json!({"role": "counselor"})).await;
            (format!("/v1/keys/{victim}/revoke"), None, None)
        }
        _ => panic!(
            "no sample request for {method} {path}: add one here so the access matrix covers it"
        ),
    }
}

/// Walks the route table × every role (and, for roles bound to a sponsor, a key of the program's
/// own sponsor and one of another): a caller the row allows gets a 2xx, any other a 403; without
/// a key every `/v1` row is a 401. The expectations are read from the table itself.
#[tokio::test]
async fn the_route_table_decides_who_may_call_each_route() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut callers = Vec::new();
    for role in Role::ALL {
        let sponsors: &[(bool, &str)] = if role.bound_to_sponsor() {
            &[(true, "ima-education-foundation"), (false, "ivcc")]
        } else {
            &[(true, "")]
        };
        for (own_sponsor, sponsor) in sponsors {
            let mut body = json!({"role": role.as_str()});
            if role.bound_to_sponsor() {
                body["sponsor"] = json!(sponsor);
            }
            let (_, secret) = make_key(&app, body).await;
            callers.push(Matrix {
                role,
                own_sponsor: *own_sponsor,
                client: client_with_key(&secret),
                secret,
            });
        }
    }
    let anonymous = reqwest::Client::new();
    let mut n = 0;
    let mut failures = Vec::new();
    for row in ROUTES.iter() {
        for caller in &callers {
            n += 1;
            let status = if row.kind == Kind::Page {
                page_status(&app, row, Some(&caller.secret), n).await
            } else {
                let (path, body, key) =
                    sample(&app, &caller.client, &row.method, row.path, n).await;
                send(&caller.client, &app, &row.method, &path, body, key).await
            };
            let path = row.path;
            let allowed = row.allows(caller.role)
                && (row.scope == Scope::Any
                    || !caller.role.bound_to_sponsor()
                    || caller.own_sponsor);
            let ok = if allowed {
                (200..300).contains(&status)
            } else {
                status == 403
            };
            if !ok {
                failures.push(format!(
                    "{} key ({}): {} {path} -> {status}, the table says {}",
                    caller.role.as_str(),
                    if caller.own_sponsor {
                        "own sponsor"
                    } else {
                        "other sponsor"
                    },
                    row.method,
                    if allowed { "2xx" } else { "403" }
                ));
            }
        }
        n += 1;
        let (path, status) = if row.kind == Kind::Page {
            (row.path.to_string(), page_status(&app, row, None, n).await)
        } else {
            let (path, body, key) = sample(&app, &anonymous, &row.method, row.path, n).await;
            let status = send(&anonymous, &app, &row.method, &path, body, key).await;
            (path, status)
        };
        let expected = if row.access == Access::Open { 200 } else { 401 };
        if status != expected {
            failures.push(format!(
                "no key: {} {path} -> {status}, expected {expected}",
                row.method
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a page row answers a browser signed in with `secret` (or signed out), for a request it
/// would serve: the status after redirects.
async fn page_status(app: &TestApp, row: &Route, secret: Option<&str>, n: usize) -> u16 {
    let s = format!("PG-{n}");
    app.put_student(&s, &qualifying_student(&s)).await;
    let (b, csrf) = match secret {
        Some(secret) => sign_in_browser(app, secret).await,
        None => (browser(), String::new()),
    };
    if row.path == "/sign-in" {
        // Open: anyone may sign in with a valid key and the form's token.
        let secret = crate::helpers::new_key(&app.database_url, Role::Counselor, None);
        let res = submit_sign_in(&browser(), app, &secret).await;
        return res.status().as_u16();
    }
    let (path, form): (String, Vec<(&str, String)>) = match (row.method.as_str(), row.path) {
        ("GET", "/" | "/students" | "/preview") => (row.path.into(), vec![]),
        ("GET", "/assets/{file}") => ("/assets/eligo.css".into(), vec![]),
        ("POST", "/sign-out") => (row.path.into(), vec![("csrf", csrf)]),
        ("GET", "/students/{id}") => (format!("/students/{s}"), vec![]),
        ("POST", "/students/{id}/try") => (
            format!("/students/{s}/try"),
            vec![
                ("csrf", csrf),
                ("college", "jjc".into()),
                ("college_status", "enrolled".into()),
            ],
        ),
        ("POST", "/preview") => (
            row.path.into(),
            vec![
                ("csrf", csrf),
                ("record", qualifying_student(&s).to_string()),
            ],
        ),
        ("GET", "/schools/{id}") => ("/schools/d204".into(), vec![]),
        ("GET", "/policies") => (row.path.into(), vec![]),
        ("GET", "/policies/new") => (format!("/policies/new?policy={IMA}"), vec![]),
        ("GET", "/policies/{id}/versions/{version}") => {
            (format!("/policies/{IMA}/versions/2"), vec![])
        }
        ("POST", "/policies/check" | "/policies/publish") => {
            // IMA v2 as published, with its cases: every check passes (already published).
            let read = |f: &str| {
                std::fs::read_to_string(format!("{}/{f}", crate::helpers::RULES)).unwrap()
            };
            (
                row.path.into(),
                vec![
                    ("csrf", csrf),
                    ("source", read("ima-mett-scholarship.v2.rhai")),
                    ("tests", read("ima-mett-scholarship.tests.json")),
                    ("as_of", "2024-06-01".into()),
                ],
            )
        }
        ("GET", "/schools/{id}/students.csv") => ("/schools/d204/students.csv".into(), vec![]),
        ("GET", "/dashboard") => (row.path.into(), vec![]),
        ("GET", "/dashboard/{table}") => ("/dashboard/budget.csv".into(), vec![]),
        ("POST", "/batches") => (
            row.path.into(),
            vec![
                ("csrf", csrf),
                ("mode", "preview".into()),
                ("policy_id", IMA.into()),
                ("as_of", "2024-06-01".into()),
            ],
        ),
        ("GET", "/batches/{id}" | "/batches/{id}/results.csv") => {
            // The caller's own batch where its key may start one, else an admin's.
            let body = json!({"mode": "preview", "students": [s], "as_of": "2024-06-01"});
            let mut res = None;
            if let Some(secret) = secret {
                let r = client_with_key(secret)
                    .post(app.url("/v1/batches"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                if r.status().as_u16() == 202 {
                    res = Some(r);
                }
            }
            let res = match res {
                Some(r) => r,
                None => app
                    .client
                    .post(app.url("/v1/batches"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            };
            let v: Value = res.json().await.unwrap();
            (
                row.path.replace("{id}", v["batch_id"].as_str().unwrap()),
                vec![],
            )
        }
        _ => panic!(
            "no sample request for the page {} {}: add one here so the access matrix covers it",
            row.method, row.path
        ),
    };
    let rb = if row.method == Method::POST {
        b.post(app.url(&path)).form(&form)
    } else {
        b.get(app.url(&path))
    };
    rb.send().await.unwrap().status().as_u16()
}

async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    method: &Method,
    path: &str,
    body: Option<Value>,
    idempotency_key: Option<String>,
) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut rb = client.request(method, app.url(path));
    if let Some(k) = idempotency_key {
        rb = rb.header("idempotency-key", k);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_table_and_the_openapi_document_name_the_same_routes() {
    let spec: Value = serde_json::from_str(&eligo::api::openapi::document().unwrap()).unwrap();
    let documented: std::collections::BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let table: std::collections::BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.kind == Kind::Api)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table);
    assert!(table.len() >= 21);
}

#[tokio::test]
async fn a_method_the_table_does_not_serve_is_405_with_the_tables_allow() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for path in ["/v1/students/x", "/v1/keys", "/healthz"] {
        let res = app.client.patch(app.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 405, "{path}");
        let allow = res.headers()["allow"].to_str().unwrap().to_string();
        let pattern = if path == "/v1/students/x" {
            "/v1/students/{id}"
        } else {
            path
        };
        assert_eq!(allow, eligo::api::routes::allowed_methods(pattern));
        problem(res, 405).await;
    }
}
