//! The pages in headless Chromium (Debian's `chromium` and `chromium-driver`) through WebDriver:
//! sign in, search, open a student, read a missing item, try a change, paste a bad record and
//! see the field error, sign out and be refused. Each page is checked with axe-core (no
//! `serious` or `critical` violation) and saved as a screenshot under `target/screenshots/`.
//! Without Chromium the test says that it skips; under CI (`CI` set) a missing tool fails it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{new_key, qualifying_student, spawn_app, Backend};
use eligo::service::access::Role;

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.exists().then_some(path)
}

fn axe_path() -> PathBuf {
    std::env::var_os("ELIGO_AXE_JS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/axe/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    )
}

/// The tools, or `None` after saying why the test skips (failing instead under CI).
fn tools() -> Option<(PathBuf, PathBuf, String)> {
    let driver = tool("ELIGO_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = tool("ELIGO_CHROMIUM", "/usr/bin/chromium");
    let axe = std::fs::read_to_string(axe_path()).ok();
    match (driver, chromium, axe) {
        (Some(d), Some(c), Some(a)) => Some((d, c, a)),
        missing => {
            let why = format!(
                "needs chromedriver, chromium and axe-core ({}); found: driver {}, chromium {}, axe {}",
                axe_path().display(),
                missing.0.is_some(),
                missing.1.is_some(),
                missing.2.is_some()
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser tests: {why}"
            );
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED (browser): {why}");
            None
        }
    }
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn start_browser(driver: &Path, chromium: &Path, profile: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display()), "--window-size=1280,1400"]
        }
    }))
    .unwrap();
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(client) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return (driver, client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// Runs axe-core on the page; fails on any serious or critical violation. Saves a screenshot.
async fn check(c: &Client, axe: &str, name: &str) {
    c.execute(axe, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v =>
               ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))
             .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
            vec![],
        )
        .await
        .unwrap();
    let bad: Vec<&Value> = found
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    assert!(bad.is_empty(), "{name}: accessibility violations: {bad:#?}");
}

/// Clicks what `locator` finds and waits until the next page has loaded.
async fn click_and_load(c: &Client, locator: Locator<'_>) {
    c.execute("window.eligoOldPage = true;", vec![])
        .await
        .unwrap();
    c.find(locator).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        let loaded = c
            .execute(
                "return window.eligoOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap_or(Value::Bool(false));
        if loaded == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the next page did not load");
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_counselor_uses_the_pages_in_a_browser() {
    let Some((driver, chromium, axe)) = tools() else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut ready = qualifying_student("BR-1");
    ready["school_id"] = json!("d204");
    app.put_student("BR-1", &ready).await;
    let mut progress = qualifying_student("BR-2");
    progress["school_id"] = json!("d204");
    progress["endorsements"] =
        json!([{"area": "manufacturing_engineering_technology_trades", "status": "in_progress"}]);
    progress["postsecondary"] = json!({"status": "applied"});
    progress["early_college_credits"] = json!([{"subject": "machining", "credit_hours": 3.0}]);
    progress["work_based_learning"] = json!([
        {"kind": "career_exploration"}, {"kind": "career_exploration"},
        {"kind": "team_based_challenge"}, {"kind": "internship", "hours": 20}]);
    progress["pathway"] = json!({"individualized_learning_plan": true, "career_coursework_years": 2,
        "reading_ready": true, "math_ready": true});
    app.put_student("BR-2", &progress).await;
    let secret = new_key(&app.database_url, Role::Counselor, None);
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&driver, &chromium, profile.path()).await;

    // Sign in.
    c.goto(&app.url("/")).await.unwrap();
    check(&c, &axe, "sign-in").await;
    c.find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys(&secret)
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[action='/sign-in'] button")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/students");

    // Search.
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("BR")
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[role='search'] button")).await;
    let table = text_of(&c, "table.list").await;
    assert!(table.contains("BR-1") && table.contains("BR-2"), "{table}");
    check(&c, &axe, "search").await;

    // Open the in-progress student and read what is missing.
    click_and_load(&c, Locator::LinkText("BR-2")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/students/BR-2");
    let missing = text_of(&c, "ul.missing li").await;
    assert!(!missing.is_empty());
    let page = text_of(&c, "main").await;
    assert!(page.contains("still in progress"), "{page}");
    // Next steps come first, then the endorsement's progress, then the incentives.
    let steps = text_of(&c, "section.next-steps").await;
    assert!(
        steps.contains("3 more early-college credit hours (3 of 6)"),
        "{steps}"
    );
    let at = |text: &str| {
        page.find(text)
            .unwrap_or_else(|| panic!("{text:?} not on the page"))
    };
    assert!(
        at("Next steps") < at("METT endorsement requirements: 4 of 8 done"),
        "{page}"
    );
    assert!(
        at("METT endorsement requirements") < at("\nIncentives\n"),
        "{page}"
    );
    check(&c, &axe, "student").await;

    // Try a change: the endorsement earned and enrolment at IVCC.
    c.find(Locator::Id("endorsement"))
        .await
        .unwrap()
        .select_by_value("manufacturing_engineering_technology_trades")
        .await
        .unwrap();
    c.find(Locator::Id("college"))
        .await
        .unwrap()
        .send_keys("ivcc")
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[action$='/try'] button")).await;
    let notice = text_of(&c, "p.notice").await;
    assert!(notice.contains("Nothing was stored"), "{notice}");
    assert!(
        text_of(&c, "p.summary").await.starts_with('3')
            || text_of(&c, "p.summary").await.starts_with('2')
    );
    check(&c, &axe, "try-a-change").await;

    // Printed for a meeting with the family: without the navigation and the forms.
    let hidden_in_print = c
        .execute(
            "const rules = [...document.styleSheets].flatMap(s => [...s.cssRules]);
             const print = rules.filter(r => r.media && [...r.media].includes('print'))
               .flatMap(r => [...r.cssRules]);
             const hides = sel => print.some(r => (r.selectorText || '').split(',')
               .map(s => s.trim()).includes(sel) && r.style.display === 'none');
             return hides('.top') && hides('.no-print');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        hidden_in_print,
        json!(true),
        "the print style hides the navigation and forms"
    );
    let pdf = c
        .print(fantoccini::wd::PrintConfiguration::default())
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::write(dir.join("try-a-change-printed.pdf"), pdf).unwrap();

    // The same page on a phone.
    c.set_window_size(390, 1400).await.unwrap();
    c.goto(&app.url("/students/BR-2")).await.unwrap();
    check(&c, &axe, "student-phone").await;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(0), "the page scrolls sideways on a phone");
    c.set_window_size(1280, 1400).await.unwrap();

    // Paste a bad record: the error names the field, next to the box.
    c.goto(&app.url("/preview")).await.unwrap();
    check(&c, &axe, "preview").await;
    c.find(Locator::Id("record"))
        .await
        .unwrap()
        .send_keys(r#"{"student_id": "P-1", "graduation_date": "soon"}"#)
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[action='/preview'] button")).await;
    let error = text_of(&c, "#record-error").await;
    assert!(error.contains("graduation_date"), "{error}");
    check(&c, &axe, "preview-error").await;

    // The school list.
    c.goto(&app.url("/schools/d204")).await.unwrap();
    assert!(text_of(&c, "table.list").await.contains("BR-1"));
    check(&c, &axe, "school").await;

    // Sign out, and be refused.
    click_and_load(&c, Locator::Css("form.sign-out button")).await;
    c.goto(&app.url("/students")).await.unwrap();
    let refused = text_of(&c, "main").await;
    assert!(refused.contains("not signed in"), "{refused}");
    check(&c, &axe, "signed-out").await;
    c.close().await.unwrap();
}

/// Sets a form field's value (long texts: typing them key by key is slow and proves nothing).
async fn fill(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1];",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_author_checks_a_candidate_sees_the_what_if_and_publishes_in_a_browser() {
    let Some((driver, chromium, axe)) = tools() else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut cohort = Vec::new();
    for i in 0..30 {
        let mut s = qualifying_student(&format!("WI-{i:02}"));
        s["school_id"] = json!(if i < 20 {
            "d204-metea-valley"
        } else {
            "d99-downers-grove-south"
        });
        s["demographics"] = json!({"gender": if i % 2 == 0 { "female" } else { "male" }});
        if i % 3 == 0 {
            s["postsecondary"] = json!({"institution_id": "ivcc", "status": "admitted"});
        }
        cohort.push(s);
    }
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&cohort)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let secret = new_key(&app.database_url, Role::Admin, None);
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&driver, &chromium, profile.path()).await;
    c.goto(&app.url("/")).await.unwrap();
    c.find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys(&secret)
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[action='/sign-in'] button")).await;

    // The policies, then one version.
    click_and_load(&c, Locator::LinkText("Policies")).await;
    check(&c, &axe, "policies").await;
    click_and_load(
        &c,
        Locator::Css("a[href='/policies/ima-mett-scholarship/versions/2']"),
    )
    .await;
    assert!(text_of(&c, "h1").await.contains("version 2"));
    assert!(text_of(&c, "ol.source")
        .await
        .contains("fn evaluate(student, ctx)"));
    check(&c, &axe, "policy-version").await;

    // A candidate started from IMA: a stricter v3 (admitted only) shows whom it drops.
    click_and_load(
        &c,
        Locator::LinkText("Start a new version from this policy"),
    )
    .await;
    let v2 = std::fs::read_to_string(format!(
        "{}/ima-mett-scholarship.v2.rhai",
        crate::helpers::RULES
    ))
    .unwrap();
    let stricter = v2
        .replace("version: 2,", "version: 3,")
        .replace("[\"admitted\", \"enrolled\"]", "[\"admitted\"]");
    fill(&c, "source", &stricter).await;
    fill(&c, "as_of", "2024-06-01").await;
    click_and_load(&c, Locator::Css("form[action^='/policies/check'] button")).await;
    let whatif = text_of(&c, "main").await;
    assert!(whatif.contains("Gained 0, lost 20."), "{whatif}");
    assert!(whatif.contains("overlapping"), "{whatif}");
    assert!(c
        .find(Locator::Css("figure.chart svg[role='img']"))
        .await
        .is_ok());
    c.execute(
        "document.getElementById('whatif').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    check(&c, &axe, "policy-whatif").await;

    // A compile error is shown next to the field and at its line.
    fill(
        &c,
        "source",
        &stricter.replace(
            "require(\"graduated\", student.graduated);",
            "require(\"graduated\", ;",
        ),
    )
    .await;
    click_and_load(&c, Locator::Css("form[action^='/policies/check'] button")).await;
    assert!(text_of(&c, "#source-error").await.contains("Line "));
    assert!(text_of(&c, "#error-line")
        .await
        .contains("require(\"graduated\", ;"));
    check(&c, &axe, "policy-compile-error").await;

    // A new policy with covering cases: checked, then published.
    fill(
        &c,
        "source",
        &crate::publishing::acme_source(1, "2024-01-01"),
    )
    .await;
    fill(&c, "tests", &crate::publishing::acme_cases().to_string()).await;
    click_and_load(&c, Locator::Css("form[action^='/policies/check'] button")).await;
    assert!(text_of(&c, "main").await.contains("Coverage met"));
    click_and_load(&c, Locator::Css("form[action='/policies/publish'] button")).await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/policies/acme-machining-award/versions/1"
    );
    check(&c, &axe, "policy-published").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_program_officer_reads_the_dashboard_and_runs_a_batch_in_a_browser() {
    let Some((driver, chromium, axe)) = tools() else {
        return;
    };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut cohort = Vec::new();
    for i in 0..40 {
        let mut s = qualifying_student(&format!("DB-{i:02}"));
        s["demographics"] = json!({
            "gender": if i % 3 == 0 { "female" } else { "male" },
            "race_ethnicity": [if i % 2 == 0 { "hispanic_latino" } else { "white" }]
        });
        if i % 4 == 0 {
            s["endorsements"] = json!([{"area": "manufacturing_engineering_technology_trades", "status": "in_progress"}]);
        }
        // Most have their pathway on record, some of it met.
        if i % 5 != 0 {
            s["pathway"] = json!({"individualized_learning_plan": true,
                "career_coursework_years": if i % 3 == 0 { 1 } else { 2 },
                "reading_ready": true, "math_ready": i % 2 == 0});
            s["early_college_credits"] = json!([{"subject": "machining", "credit_hours": if i % 4 == 1 { 3.0 } else { 6.0 }}]);
        }
        cohort.push(s);
    }
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&cohort)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Some awards already made, on a budget.
    let res = app
        .client
        .put(app.url("/v1/policies/ima-mett-scholarship/budget"))
        .json(&json!({"total_cents": 1_000_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    for i in 1..12 {
        app.award(
            &format!("dash-{i}"),
            &format!("DB-{i:02}"),
            "ima-mett-scholarship",
        )
        .await;
    }
    let secret = new_key(&app.database_url, Role::Admin, None);
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = start_browser(&driver, &chromium, profile.path()).await;
    c.goto(&app.url("/")).await.unwrap();
    c.find(Locator::Id("key"))
        .await
        .unwrap()
        .send_keys(&secret)
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form[action='/sign-in'] button")).await;

    click_and_load(&c, Locator::LinkText("Dashboard")).await;
    let main = text_of(&c, "main").await;
    assert!(
        main.contains("Along the manufacturing engineering technology trades pathway"),
        "{main}"
    );
    assert!(main.contains("Endorsement earned"), "{main}");
    assert!(
        main.contains("Awards by gender, beside the cohort"),
        "{main}"
    );
    assert!(
        main.contains("will run out") || main.contains("money or awards would be left"),
        "{main}"
    );
    // Every chart is an image with a name, and has its table.
    let charts = c
        .find_all(Locator::Css(
            "figure.chart svg[role='img'][aria-labelledby]",
        ))
        .await
        .unwrap();
    assert_eq!(charts.len(), 4);
    let tables = c
        .find_all(Locator::Css("table.list caption a[href^='/dashboard/']"))
        .await
        .unwrap();
    assert_eq!(tables.len(), 4, "a CSV download for each table");
    check(&c, &axe, "dashboard").await;
    // The whole page, to look at every chart and table below the first screen.
    c.set_window_size(1280, 3600).await.unwrap();
    check(&c, &axe, "dashboard-whole").await;
    c.set_window_size(1280, 1400).await.unwrap();

    // A date that is not one: the message sits by the field.
    fill(&c, "from", "last spring").await;
    click_and_load(&c, Locator::Css("form.filters button")).await;
    let error = text_of(&c, "#filter-error").await;
    assert!(error.contains("YYYY-MM-DD"), "{error}");
    let invalid = c
        .find(Locator::Id("from"))
        .await
        .unwrap()
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    check(&c, &axe, "dashboard-bad-date").await;

    // By race/ethnicity.
    fill(&c, "from", "").await;
    c.find(Locator::Css("#group option[value='race_ethnicity']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_and_load(&c, Locator::Css("form.filters button")).await;
    let main = text_of(&c, "main").await;
    assert!(main.contains("Awards by race/ethnicity"), "{main}");
    assert!(main.contains("hispanic_latino"), "{main}");

    // A batch from the page: its progress until it is done.
    fill(&c, "batch-as-of", "2024-06-01").await;
    click_and_load(&c, Locator::Css("form.batch button")).await;
    let mut heading = String::new();
    for _ in 0..100 {
        heading = text_of(&c, "h1").await;
        if heading.contains("done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.refresh().await.unwrap();
    }
    assert!(heading.contains("Check batch: done"), "{heading}");
    let main = text_of(&c, "main").await;
    assert!(main.contains("40 of 40"), "{main}");
    assert!(main.contains("eligible"), "{main}");
    check(&c, &axe, "batch").await;
    let href = c
        .find(Locator::LinkText("Download the results as CSV"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.ends_with("/results.csv"), "{href}");
}
