//! Test helpers: a real server on a random port, on its own fresh database.

use std::path::{Path, PathBuf};

use diesel::{Connection, PgConnection, RunQueryDsl};
use eligo::api::Application;
use eligo::config::Settings;
use eligo::service::access::Role;

pub const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
pub const POSTGRES_ENV: &str = "ELIGO_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test and removed after it.
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh database, or None (with a message) when PostgreSQL is not configured.
    pub fn create(backend: Backend) -> Option<(TestDb, String)> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("eligo.db").display());
                Some((TestDb::Sqlite(dir), url))
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
                    // Straight to the process's stderr: cargo test captures eprintln!, and a
                    // skip must be seen.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED (PostgreSQL): {POSTGRES_ENV} is not set; this test ran on SQLite only"
                    );
                    return None;
                };
                let name = format!("eligo_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).expect("connect to PostgreSQL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let url = with_database(&admin_url, &name);
                Some((TestDb::Postgres { admin_url, name }, url))
            }
        }
    }
}

/// The same server URL naming another database.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // A plain thread: Drop may run inside the test's async runtime.
            let _ = std::thread::spawn(move || {
                if let Ok(mut conn) = PgConnection::establish(&admin_url) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn);
                }
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    _db: TestDb,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        eligo::cli::init_tracing(false);
    }
}

/// Creates a key directly in the database; returns its secret.
pub fn new_key(database_url: &str, role: Role, sponsor: Option<&str>) -> String {
    let store = eligo::store::Store::open(database_url, 1).expect("store");
    eligo::service::access::create_key(&store, role, sponsor.map(str::to_string), None)
        .expect("key")
        .secret
}

/// A client that sends `Authorization: Bearer <key>` on every request.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Starts the service on a random port with a fresh database and the seed rules.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Path::new(RULES), |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    rules: &Path,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    init_logs();
    let (db, url) = TestDb::create(backend)?;
    let mut settings = Settings::new(url.clone(), PathBuf::from(rules));
    settings.workers = Some(1);
    settings.db_connections = 4;
    tweak(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let key = new_key(&url, Role::Admin, None);
    Some(TestApp {
        address,
        client: client_with_key(&key),
        database_url: url,
        _db: db,
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn put_student(&self, id: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/students/{id}")))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn evaluate(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/evaluations"))
            .json(body)
            .send()
            .await
            .expect("request")
    }
}

/// Reads a problem document, checking its media type and status.
pub async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(ct, "application/problem+json");
    let body: serde_json::Value = res.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:eligo:problem:"));
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

/// A record that qualifies for IMA v2 and the IVCC waiver on 2024-06-01.
pub fn qualifying_student(id: &str) -> serde_json::Value {
    serde_json::json!({
        "student_id": id,
        "school_id": "d204-metea-valley",
        "graduation_date": "2024-05-30",
        "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned", "earned_on": "2024-05-30"}],
        "job_offers": [],
        "postsecondary": {"institution_id": "ivcc", "status": "enrolled", "term": "2024FA"},
        "payee_preference": "student"
    })
}

/// Defines each test twice: on SQLite always, on PostgreSQL when configured (else it says it
/// skips).
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.expect("sqlite");
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                        return;
                    };
                    $body
                }
            )*
        }
    };
}

impl TestApp {
    /// Requests an award; returns status and body.
    pub async fn award(&self, key: &str, student: &str, policy: &str) -> (u16, serde_json::Value) {
        let res = self
            .client
            .post(self.url("/v1/awards"))
            .header("idempotency-key", key)
            .json(&serde_json::json!({"student_id": student, "policy_id": policy, "as_of": "2024-06-01"}))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON"))
    }

    /// Stores qualifying students `prefix-0` .. `prefix-(n-1)`.
    pub async fn seed_students(&self, prefix: &str, n: usize) {
        let body: Vec<serde_json::Value> = (0..n)
            .map(|i| qualifying_student(&format!("{prefix}-{i}")))
            .collect();
        let res = self
            .client
            .post(self.url("/v1/students/import"))
            .json(&body)
            .send()
            .await
            .expect("import");
        assert_eq!(res.status().as_u16(), 200);
    }

    /// Sends `body` as is, with the given content type (for raw JSON, CSV, NDJSON and the like).
    pub async fn send_body(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON")
    }
}

/// Runs SQL against the test's database behind the service's back.
pub fn tamper(database_url: &str, sql: &str) {
    use diesel::connection::SimpleConnection;
    let (backend, target) = eligo::store::conn::parse_url(database_url);
    match backend {
        eligo::store::Backend::Postgres => PgConnection::establish(&target)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
        eligo::store::Backend::Sqlite => diesel::SqliteConnection::establish(&target)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

/// `eligo serve` on `database_url` with the seed rules, on a free port (returned).
pub fn serve_command(database_url: &str, log: &str) -> (std::process::Command, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"));
    command
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .args(["--rules-dir", RULES, "--workers", "2"])
        .env("RUST_LOG", log);
    (command, port)
}

/// Whether a server at `address` answers `/healthz`, asked up to `attempts` times `pause` apart.
pub async fn serving(address: &str, attempts: u32, pause: std::time::Duration) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..attempts {
        if client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}

/// An `eligo serve` process on its own port, killed when dropped.
pub struct Process {
    pub child: std::process::Child,
    pub address: String,
    /// An admin key for this database.
    pub key: String,
}

impl Process {
    pub async fn start(database_url: &str) -> Process {
        Self::start_with(database_url, &[]).await
    }

    /// Started with extra environment variables (settings such as `ELIGO_BATCH_CHUNK`).
    // The child is killed and waited for in Drop.
    #[allow(clippy::zombie_processes)]
    pub async fn start_with(database_url: &str, env: &[(&str, &str)]) -> Process {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
            .args([
                "keys",
                "create",
                "--role",
                "admin",
                "--database-url",
                database_url,
            ])
            .output()
            .expect("eligo keys create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        let (mut command, port) = serve_command(database_url, "warn");
        let mut child = command
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start eligo");
        let address = format!("http://127.0.0.1:{port}");
        if serving(&address, 300, std::time::Duration::from_millis(20)).await {
            return Process {
                child,
                address,
                key,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("eligo did not start");
    }

    pub fn client(&self) -> reqwest::Client {
        client_with_key(&self.key)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A browser-like client: keeps cookies, follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> Option<String> {
    let field = r#"name="csrf" value=""#;
    let at = html.find(field)? + field.len();
    Some(html[at..].split('"').next()?.to_string())
}

/// The body of the page at `path`, as browser `b` gets it.
pub async fn page_text(b: &reqwest::Client, app: &TestApp, path: &str) -> String {
    b.get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs browser `b` in with `key` through the sign-in form (its CSRF token included).
pub async fn submit_sign_in(b: &reqwest::Client, app: &TestApp, key: &str) -> reqwest::Response {
    let form = page_text(b, app, "/").await;
    let csrf = csrf_of(&form).expect("the sign-in form carries a CSRF token");
    b.post(app.url("/sign-in"))
        .form(&[("key", key), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// A browser signed in with `secret` (a fresh session), and its forms' CSRF token.
pub async fn sign_in_browser(app: &TestApp, secret: &str) -> (reqwest::Client, String) {
    let b = browser();
    let home = submit_sign_in(&b, app, secret).await;
    assert_eq!(home.status().as_u16(), 200, "signing in");
    let csrf = csrf_of(&home.text().await.unwrap()).expect("signed-in pages carry a CSRF token");
    (b, csrf)
}
