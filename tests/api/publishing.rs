//! Publishing policy versions over the API (checked by their cases and coverage), the author
//! role, every instance serving a new version, and the what-if.

use serde_json::{json, Value};

use crate::helpers::{
    client_with_key, new_key, problem, qualifying_student, Backend, Process, TestApp, TestDb,
};
use crate::on_both_backends;
use eligo::service::access::Role;

pub const ACME: &str = "acme-machining-award";

/// A small policy of the sponsor `acme`: METT endorsement and graduation.
pub fn acme_source(version: u32, from: &str) -> String {
    format!(
        r#"// Acme Manufacturing: $250 for METT graduates.
fn policy() {{
    #{{
        id: "{ACME}",
        version: {version},
        title: "Acme machining award",
        sponsor: "acme",
        award: #{{ kind: "scholarship", amount_cents: 25000 }},
        effective_from: "{from}",
        criteria: #{{
            mett_endorsement: #{{ label: "METT endorsement", missing: "Earn the METT endorsement" }},
            graduated: #{{ label: "Graduated", missing: "Graduate from high school" }},
        }},
    }}
}}

fn evaluate(student, ctx) {{
    require("mett_endorsement", student.endorsement_earned("manufacturing_engineering_technology_trades"));
    require("graduated", student.graduated);
}}
"#
    )
}

fn case(name: &str, student: Value, expect: Value) -> Value {
    json!({"name": name, "as_of": "2024-06-01", "student": student, "expect": expect})
}

/// Cases that pass and cover both criteria.
pub fn acme_cases() -> Value {
    let mut in_progress = qualifying_student("C-2");
    in_progress["endorsements"][0]["status"] = json!("in_progress");
    let mut no_date = qualifying_student("C-3");
    no_date.as_object_mut().unwrap().remove("graduation_date");
    json!({"policy": ACME, "cases": [
        case("qualifies", qualifying_student("C-1"), json!({"outcome": "eligible"})),
        case("endorsement in progress", in_progress,
            json!({"outcome": "ineligible", "reasons": {"mett_endorsement": "failed"}})),
        case("graduation unknown", no_date,
            json!({"outcome": "ineligible", "reasons": {"graduated": "unknown"}})),
    ]})
}

async fn publish(
    client: &reqwest::Client,
    app: &str,
    source: &str,
    tests: &Value,
    dry_run: bool,
) -> reqwest::Response {
    let q = if dry_run { "?dry_run=true" } else { "" };
    client
        .post(format!("{app}/v1/policies{q}"))
        .json(&json!({"source": source, "tests": tests}))
        .send()
        .await
        .unwrap()
}

on_both_backends! {
    async fn a_checked_version_is_published_and_served_at_once(app) {
        let source = acme_source(1, "2024-01-01");
        // A dry run does every check and stores nothing.
        let res = publish(&app.client, &app.address, &source, &acme_cases(), true).await;
        assert_eq!(res.status().as_u16(), 200);
        let dry: Value = res.json().await.unwrap();
        assert_eq!(dry["dry_run"], true);
        assert_eq!(dry["recorded"], false);
        problem(app.client.get(app.url(&format!("/v1/policies/{ACME}"))).send().await.unwrap(), 404).await;

        let res = publish(&app.client, &app.address, &source, &acme_cases(), false).await;
        assert_eq!(res.status().as_u16(), 201);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["id"], ACME);
        assert_eq!(body["version"], 1);
        assert_eq!(body["hash"].as_str().unwrap().len(), 64);
        assert_eq!(body["tests"], json!({"total": 3, "passed": 3, "failed": 0}));
        assert_eq!(body["coverage"]["met"], true);
        let criteria = body["coverage"]["criteria"].as_array().unwrap();
        assert_eq!(criteria[0]["code"], "graduated");
        assert_eq!(criteria[0]["statuses"], json!(["passed", "unknown"]));
        assert_eq!(criteria[1]["statuses"], json!(["passed", "failed"]));

        // Served now: listed with its source and cases, and evaluated.
        let view = app.get_json(&format!("/v1/policies/{ACME}")).await;
        assert_eq!(view["versions"][0]["source"], source);
        assert_eq!(view["versions"][0]["hash"], body["hash"]);
        let res = app.evaluate(&json!({"student": qualifying_student("X"), "policies": [ACME], "as_of": "2024-06-01"})).await;
        let decisions: Value = res.json().await.unwrap();
        assert_eq!(decisions["decisions"][0]["outcome"], "eligible", "{decisions}");

        // The same version again is not a new decision: 200, nothing recorded.
        let res = publish(&app.client, &app.address, &source, &acme_cases(), false).await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["recorded"], false);
    }

    async fn refusals_say_why(app) {
        let ok = acme_source(1, "2024-01-01");
        // A compile error, with line and column.
        let broken = ok.replace("require(\"graduated\", student.graduated);", "require(\"graduated\", ;");
        let p = problem(publish(&app.client, &app.address, &broken, &acme_cases(), false).await, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:compile-error");
        assert_eq!(p["line"], 19);
        assert!(p["column"].as_u64().unwrap() > 0);
        // Bad metadata names the key.
        let bad = ok.replace("amount_cents: 25000", "amount_cents: -1");
        let p = problem(publish(&app.client, &app.address, &bad, &acme_cases(), false).await, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:invalid-metadata");
        assert_eq!(p["field"], "award.amount_cents");
        let extra = ok.replace("effective_from:", "colour: \"red\", effective_from:");
        let p = problem(publish(&app.client, &app.address, &extra, &acme_cases(), false).await, 422).await;
        assert_eq!(p["field"], "colour");
        // A changed source under a published number: 409.
        let ima = std::fs::read_to_string(format!("{}/ima-mett-scholarship.v2.rhai", crate::helpers::RULES)).unwrap();
        let ima_cases: Value = serde_json::from_str(&std::fs::read_to_string(format!("{}/ima-mett-scholarship.tests.json", crate::helpers::RULES)).unwrap()).unwrap();
        let changed = ima.replace("amount_cents: 50000", "amount_cents: 60000");
        let p = problem(publish(&app.client, &app.address, &changed, &ima_cases, false).await, 409).await;
        assert!(p["detail"].as_str().unwrap().contains("never changes"), "{p}");
        // A new number whose period overlaps v2's: 422.
        let v3 = changed.replace("version: 2,", "version: 3,").replace("\"2023-07-01\"", "\"2025-07-01\"");
        let p = problem(publish(&app.client, &app.address, &v3, &ima_cases, false).await, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:overlapping-period");
        // A failing case: listed with what it expected and what it got.
        let mut cases = acme_cases();
        cases["cases"][0]["expect"]["outcome"] = json!("ineligible");
        let p = problem(publish(&app.client, &app.address, &ok, &cases, false).await, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:tests-fail");
        assert_eq!(p["tests"]["failed"], 1);
        assert_eq!(p["failures"][0]["name"], "qualifies");
        assert_eq!(p["failures"][0]["expected"]["outcome"], "ineligible");
        assert_eq!(p["failures"][0]["actual"], "eligible");
        // Cases that never see `graduated` fail: refused, naming it.
        let mut cases = acme_cases();
        cases["cases"].as_array_mut().unwrap().remove(2);
        let p = problem(publish(&app.client, &app.address, &ok, &cases, false).await, 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:coverage");
        assert_eq!(p["coverage"]["unexercised"], json!(["graduated"]));
        assert!(p["detail"].as_str().unwrap().contains("graduated"));
        // Cases for another policy.
        let p = problem(publish(&app.client, &app.address, &ok, &ima_cases, false).await, 422).await;
        assert_eq!(p["field"], "tests");
        // Nothing of all this was stored.
        problem(app.client.get(app.url(&format!("/v1/policies/{ACME}"))).send().await.unwrap(), 404).await;
        assert_eq!(app.get_json("/v1/policies/ima-mett-scholarship").await["versions"].as_array().unwrap().len(), 3);
    }

    async fn what_if_counts_gains_costs_groups_and_lists_students(app) {
        cohort(&app).await;
        app.client
            .put(app.url("/v1/policies/ima-mett-scholarship/budget"))
            .json(&json!({"total_cents": 1_000_000}))
            .send()
            .await
            .unwrap();
        let sim = |accept: &'static str, body: Value| {
            app.client
                .post(app.url("/v1/policies/ima-mett-scholarship/simulate"))
                .header("accept", accept)
                .json(&body)
                .send()
        };
        let body = json!({"version": 2, "against": 1, "as_of": "2024-06-01"});
        let res = sim("application/json", body.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let w: Value = res.json().await.unwrap();
        assert_eq!(w["students"], 47);
        assert_eq!(w["before"]["eligible"], 20);
        assert_eq!(w["after"]["eligible"], 47);
        assert_eq!(w["gained"], 27);
        assert_eq!(w["lost"], 0);
        assert_eq!(w["after"]["errors"], 0);
        assert_eq!(w["before"]["cost"]["cents"], 1_000_000);
        assert_eq!(w["after"]["cost"]["cents"], 2_350_000);
        assert_eq!(w["budget"]["remaining_cents"], 1_000_000);
        assert_eq!(w["suppress_below"], 10);
        let rows = |dimension: &str| w["groups"][dimension].as_array().unwrap().clone();
        let school = |name: &str| rows("school").into_iter().find(|r| r["group"] == name).unwrap();
        // The school of 3 shows nothing; the totals minus the two others would give it away,
        // so the smaller of them (by name, on a tie) is hidden as well; the third is shown.
        assert_eq!(school("small-school")["students"], "suppressed");
        assert_eq!(school("small-school")["gained"], "suppressed");
        assert_eq!(school("d204-metea-valley")["gained"], "suppressed");
        assert_eq!(school("d99-downers-grove-south")["students"], 22);
        assert_eq!(school("d99-downers-grove-south")["gained"], 12);
        // No column of a breakdown has exactly one hidden cell.
        for dimension in ["school", "area", "gender", "race_ethnicity"] {
            for column in ["students", "eligible_before", "eligible_after", "gained", "lost"] {
                let hidden = rows(dimension).iter().filter(|r| r[column] == "suppressed").count();
                assert_ne!(hidden, 1, "{dimension} {column}");
            }
        }

        // The students who gain, as NDJSON and CSV.
        let ndjson = sim("application/x-ndjson", body.clone()).await.unwrap().text().await.unwrap();
        let lines: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 27);
        assert!(lines.iter().all(|l| l["change"] == "gained" && l["before"] == "ineligible" && l["after"] == "eligible"));
        let csv = sim("text/csv", body.clone()).await.unwrap().text().await.unwrap();
        assert!(csv.starts_with("student_id,school_id,change,before,after\n"), "{csv}");
        assert!(csv.contains("J-00,d204-metea-valley,gained,ineligible,eligible"), "{csv}");
        assert_eq!(csv.lines().count(), 28);

        // One school only; and a candidate source that is not published.
        // One school: a school of 3 shows no number, not even its size.
        let w: Value = sim("application/json", json!({"version": 2, "against": 1, "as_of": "2024-06-01", "school_id": "small-school"})).await.unwrap().json().await.unwrap();
        assert_eq!(w["students"], "suppressed");
        assert_eq!(w["gained"], "suppressed");
        let w: Value = sim("application/json", json!({"version": 2, "against": 1, "as_of": "2024-06-01", "school_id": "d99-downers-grove-south"})).await.unwrap().json().await.unwrap();
        assert_eq!(w["students"], 22);
        let v2 = std::fs::read_to_string(format!("{}/ima-mett-scholarship.v2.rhai", crate::helpers::RULES)).unwrap();
        let stricter = v2.replace("version: 2,", "version: 3,").replace("[\"31\", \"32\", \"33\"]", "[\"336\"]");
        let w: Value = sim("application/json", json!({"source": stricter, "as_of": "2024-06-01"})).await.unwrap().json().await.unwrap();
        assert_eq!(w["against"]["version"], 2);
        assert_eq!(w["candidate"]["version"], 3);
        assert_eq!(w["lost"], 27);
        let shift = w["criteria"].as_array().unwrap().iter().find(|c| c["code"] == "college_or_local_job").unwrap();
        assert_eq!(shift["newly_failing"], 27);

        // A candidate that loops is bounded per decision: every decision is an error.
        let endless = v2.replace("version: 2,", "version: 3,").replace("pay_to_college_if_requested(student);", "loop { }");
        let w: Value = sim("application/json", json!({"source": endless, "as_of": "2024-06-01"})).await.unwrap().json().await.unwrap();
        assert_eq!(w["after"]["errors"], 47, "{w}");

        // Bad requests.
        problem(sim("application/json", json!({"as_of": "2024-06-01"})).await.unwrap(), 422).await;
        problem(sim("application/json", json!({"version": 7})).await.unwrap(), 422).await;
        let p = problem(sim("application/json", json!({"source": "fn policy( {"})).await.unwrap(), 422).await;
        assert_eq!(p["type"], "urn:eligo:problem:compile-error");
        problem(app.client.post(app.url("/v1/policies/nope/simulate")).json(&json!({"version": 1})).send().await.unwrap(), 404).await;

        // Nothing was written to the ledger.
        let ledger = app.get_json("/v1/ledger").await;
        assert_eq!(ledger["items"].as_array().unwrap().len(), 0);
    }
}

#[tokio::test]
async fn hostile_scripts_are_refused_by_their_cases_and_the_server_stays_up() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let ok = acme_source(1, "2024-01-01");
    let anchor = "require(\"graduated\", student.graduated);";
    for (body, extra) in [
        ("loop { }", ""),
        ("deep(1);", "fn deep(n) { deep(n + 1) }"),
        ("let s = \"xxxxxxxx\"; loop { s += s; }", ""),
    ] {
        let source = ok.replace(anchor, &format!("{body} {anchor}")) + extra;
        let p = problem(
            publish(&app.client, &app.address, &source, &acme_cases(), false).await,
            422,
        )
        .await;
        assert_eq!(p["type"], "urn:eligo:problem:tests-fail", "{body}: {p}");
        assert_eq!(p["failures"][0]["actual"], "error", "{body}");
    }
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    problem(
        app.client
            .get(app.url(&format!("/v1/policies/{ACME}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn authors_publish_and_simulate_only_their_own_sponsors_policies() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let acme = client_with_key(&new_key(&app.database_url, Role::Author, Some("acme")));
    let ima = client_with_key(&new_key(
        &app.database_url,
        Role::Author,
        Some("ima-education-foundation"),
    ));
    let source = acme_source(1, "2024-01-01");
    let p = problem(
        publish(&ima, &app.address, &source, &acme_cases(), false).await,
        403,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("acme"), "{p}");
    let res = publish(&acme, &app.address, &source, &acme_cases(), false).await;
    assert_eq!(res.status().as_u16(), 201);
    // The IMA author may simulate IMA, not Acme; the Acme author the reverse.
    let simulate = |client: &reqwest::Client, id: &str, body: Value| {
        client
            .post(app.url(&format!("/v1/policies/{id}/simulate")))
            .json(&body)
            .send()
    };
    let res = simulate(
        &ima,
        "ima-mett-scholarship",
        json!({"version": 2, "against": 1}),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The list of students who gain or lose names students: not for an author.
    let res = ima
        .post(app.url("/v1/policies/ima-mett-scholarship/simulate"))
        .header("accept", "text/csv")
        .json(&json!({"version": 2, "against": 1}))
        .send()
        .await
        .unwrap();
    assert!(problem(res, 403).await["detail"]
        .as_str()
        .unwrap()
        .contains("read students"));
    problem(
        simulate(&ima, ACME, json!({"version": 1})).await.unwrap(),
        403,
    )
    .await;
    problem(
        simulate(
            &acme,
            "ima-mett-scholarship",
            json!({"version": 2, "against": 1}),
        )
        .await
        .unwrap(),
        403,
    )
    .await;
    // An author cannot move a policy to its sponsor by publishing a version of it.
    let hijack = std::fs::read_to_string(format!(
        "{}/ima-mett-scholarship.v2.rhai",
        crate::helpers::RULES
    ))
    .unwrap()
    .replace("sponsor: \"ima-education-foundation\"", "sponsor: \"acme\"")
    .replace("version: 2,", "version: 9,");
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/ima-mett-scholarship.tests.json",
            crate::helpers::RULES
        ))
        .unwrap(),
    )
    .unwrap();
    problem(
        publish(&acme, &app.address, &hijack, &cases, false).await,
        403,
    )
    .await;
}

/// Students whose IMA decision changes from v1 to v2 (job offer instead of college), and
/// some who qualify under both.
async fn cohort(app: &TestApp) {
    let mut body = Vec::new();
    for i in 0..12 {
        let mut s = qualifying_student(&format!("J-{i:02}"));
        s["postsecondary"] = json!({"institution_id": "ivcc", "status": "applied"});
        s["job_offers"] = json!([{"employer": "Acme", "naics": "332710", "local": true}]);
        s["demographics"] = json!({"gender": "female", "race_ethnicity": ["hispanic_latino"]});
        body.push(s);
    }
    for i in 0..12 {
        let mut s = qualifying_student(&format!("K-{i:02}"));
        s["school_id"] = json!("d99-downers-grove-south");
        s["postsecondary"] = json!({"institution_id": "ivcc", "status": "applied"});
        s["job_offers"] = json!([{"employer": "Acme", "naics": "332710", "local": true}]);
        s["demographics"] = json!({"gender": "male"});
        body.push(s);
    }
    for i in 0..3 {
        let mut s = qualifying_student(&format!("S-{i}"));
        s["school_id"] = json!("small-school");
        s["postsecondary"] = json!({"institution_id": "ivcc", "status": "applied"});
        s["job_offers"] = json!([{"employer": "Acme", "naics": "332710", "local": true}]);
        body.push(s);
    }
    for i in 0..10 {
        body.push(qualifying_student(&format!("E-{i:02}")));
        let mut f = qualifying_student(&format!("F-{i:02}"));
        f["school_id"] = json!("d99-downers-grove-south");
        body.push(f);
    }
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn the_suppression_threshold_is_configurable() {
    let app = crate::helpers::spawn_app_with(
        Backend::Sqlite,
        std::path::Path::new(crate::helpers::RULES),
        |s| s.suppress_below = 2,
    )
    .await
    .unwrap();
    cohort(&app).await;
    let w: Value = app
        .client
        .post(app.url("/v1/policies/ima-mett-scholarship/simulate"))
        .json(&json!({"version": 2, "against": 1, "as_of": "2024-06-01"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["suppress_below"], 2);
    let small = w["groups"]["school"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "small-school")
        .unwrap()
        .clone();
    assert_eq!(small["students"], 3);
}

/// Two `eligo serve` processes on one PostgreSQL: a version published through one is served
/// by the other within a second.
#[tokio::test]
async fn a_version_published_through_one_instance_is_served_by_another_within_a_second() {
    let Some((_db, url)) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let a = Process::start(&url).await;
    let b = Process::start(&url).await;
    problem(
        b.client()
            .get(format!("{}/v1/policies/{ACME}", b.address))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let res = publish(
        &a.client(),
        &a.address,
        &acme_source(1, "2024-01-01"),
        &acme_cases(),
        false,
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let published = std::time::Instant::now();
    let mut served = None;
    while published.elapsed() < std::time::Duration::from_secs(5) {
        let res = b
            .client()
            .post(format!("{}/v1/evaluations", b.address))
            .json(&json!({"student": qualifying_student("X"), "policies": [ACME], "as_of": "2024-06-01"}))
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == 200 {
            served = Some(published.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let served = served.expect("the other instance never served the new version");
    assert!(
        served <= std::time::Duration::from_secs(1),
        "served after {served:?}"
    );
}

fn eligo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_eligo"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn eligo_simulate_prints_the_same_summary_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let cohort = dir.path().join("cohort.ndjson");
    let mut lines = String::new();
    for i in 0..12 {
        let mut s = qualifying_student(&format!("J-{i:02}"));
        s["postsecondary"] = json!({"institution_id": "ivcc", "status": "applied"});
        s["job_offers"] = json!([{"employer": "Acme", "naics": "332710", "local": true}]);
        lines.push_str(&format!("{s}\n"));
    }
    for i in 0..10 {
        lines.push_str(&format!("{}\n", qualifying_student(&format!("E-{i:02}"))));
    }
    std::fs::write(&cohort, &lines).unwrap();
    let rules = crate::helpers::RULES;
    let v2 = format!("{rules}/ima-mett-scholarship.v2.rhai");
    let v1 = format!("{rules}/ima-mett-scholarship.v1.rhai");
    let base = [
        "simulate",
        "--policy",
        v2.as_str(),
        "--students",
        cohort.to_str().unwrap(),
        "--as-of",
        "2024-06-01",
        "--rules",
        rules,
    ];
    let out = eligo(&[&base[..], &["--against-version", "1"]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ima-mett-scholarship v2 against v1, as of 2024-06-01, 22 students"),
        "{text}"
    );
    assert!(text.contains("gained 12, lost 0"), "{text}");
    assert!(
        text.contains("$5000.00") && text.contains("$11000.00"),
        "{text}"
    );
    // --against a file, as JSON: the API's summary.
    let out = eligo(&[&base[..], &["--against", v1.as_str(), "--json"]].concat());
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["gained"], 12);
    assert_eq!(w["after"]["cost"]["cents"], 1_100_000);
    assert_eq!(w["groups"]["school"][0]["students"], 22);
    // A bad line is named, and nothing is printed as a result.
    std::fs::write(&cohort, format!("{lines}{{\"student_id\": 5}}\n")).unwrap();
    let out = eligo(&[&base[..], &["--against-version", "1"]].concat());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 23"), "{err}");
    let out = eligo(&[&base[..], &["--against-version", "7"]].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no version 7"));
}

#[tokio::test]
async fn eligo_policies_export_writes_a_rules_folder_that_tests_green() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let res = publish(
        &app.client,
        &app.address,
        &acme_source(1, "2024-01-01"),
        &acme_cases(),
        false,
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("exported");
    let out = eligo(&[
        "policies",
        "export",
        out_dir.to_str().unwrap(),
        "--database-url",
        &app.database_url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "acme-machining-award.tests.json",
            "acme-machining-award.v1.rhai",
            "ccpe-health-requirements.tests.json",
            "ccpe-health-requirements.v1.rhai",
            "ccpe-mett-requirements.tests.json",
            "ccpe-mett-requirements.v1.rhai",
            "ima-mett-scholarship.tests.json",
            "ima-mett-scholarship.v1.rhai",
            "ima-mett-scholarship.v2.rhai",
            "ima-mett-scholarship.v3.rhai",
            "ivcc-ccpe-waiver.tests.json",
            "ivcc-ccpe-waiver.v1.rhai",
            "ivcc-ccpe-waiver.v2.rhai",
            "jjc-ccpe-waiver.tests.json",
            "jjc-ccpe-waiver.v1.rhai",
            "jjc-ccpe-waiver.v2.rhai",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("acme-machining-award.v1.rhai")).unwrap(),
        acme_source(1, "2024-01-01")
    );
    let out = eligo(&["test", out_dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("0 failed"), "{text}");
}

#[tokio::test]
async fn a_script_over_the_length_limit_is_refused_naming_the_field() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let long = format!(
        "{}\n// {}",
        acme_source(1, "2024-01-01"),
        "x".repeat(eligo::policy::publish::MAX_SOURCE_CHARS)
    );
    let p = problem(
        publish(&app.client, &app.address, &long, &acme_cases(), false).await,
        422,
    )
    .await;
    assert_eq!(p["field"], "source");
    assert!(p["detail"].as_str().unwrap().contains("16384"), "{p}");
    let res = app
        .client
        .post(app.url("/v1/policies/ima-mett-scholarship/simulate"))
        .json(&json!({"source": long}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 422).await["field"], "source");
}

/// A file in `rules/` must fit beside the versions published over the API: one whose period
/// overlaps a published version stops the start, before anything is recorded.
#[tokio::test]
async fn a_seed_file_that_overlaps_a_published_version_stops_the_start() {
    let Some((db, url)) = TestDb::create(Backend::Sqlite) else {
        return;
    };
    let rules = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(crate::helpers::RULES).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, rules.path().join(p.file_name().unwrap())).unwrap();
    }
    let start = |dir: std::path::PathBuf| {
        let url = url.clone();
        async move {
            let mut s = eligo::config::Settings::new(url, dir);
            s.workers = Some(1);
            eligo::api::Application::build(s).await
        }
    };
    // Published through the service, as the API's handler does.
    let mut settings = eligo::config::Settings::new(url.clone(), rules.path().to_path_buf());
    settings.workers = Some(1);
    let service = eligo::service::Service::start(&settings).unwrap();
    let admin = eligo::service::access::Caller {
        key_id: "test".into(),
        role: Role::Admin,
        sponsor: None,
    };
    let suite = serde_json::from_value(acme_cases()).unwrap();
    service
        .publish(&admin, acme_source(1, "2024-01-01"), suite, false)
        .await
        .unwrap();
    let store = eligo::store::Store::open(&url, 1).unwrap();
    let before = store.policy_versions().unwrap().len();
    // A seed v2 starting the same day as v1 overlaps it (a later start would supersede it).
    std::fs::write(
        rules.path().join("acme-machining-award.v2.rhai"),
        acme_source(2, "2024-01-01"),
    )
    .unwrap();
    let err = match start(rules.path().to_path_buf()).await {
        Ok(_) => panic!("an overlapping seed must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("overlapping"), "{err}");
    assert_eq!(store.policy_versions().unwrap().len(), before);
    drop(db);
}

/// A new version supersedes an open-ended one from its own start, but never from a day already
/// past: that would change which rule was in force on days already decided.
#[tokio::test]
async fn a_new_version_supersedes_from_today_on_never_in_the_past() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await.unwrap();
    let res = publish(
        &app.client,
        &app.address,
        &acme_source(1, "2024-01-01"),
        &acme_cases(),
        false,
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let mut cases = acme_cases();
    for c in cases["cases"].as_array_mut().unwrap() {
        c["as_of"] = json!("2099-06-01");
    }
    let p = problem(
        publish(
            &app.client,
            &app.address,
            &acme_source(2, "2025-01-01"),
            &cases,
            false,
        )
        .await,
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("already past"),
        "{p}"
    );
    let res = publish(
        &app.client,
        &app.address,
        &acme_source(2, "2099-01-01"),
        &cases,
        false,
    )
    .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    let view = app.get_json(&format!("/v1/policies/{ACME}")).await;
    assert_eq!(view["versions"][0]["effective_to"], "2099-01-01");
    assert_eq!(view["versions"][1]["effective_from"], "2099-01-01");
}
