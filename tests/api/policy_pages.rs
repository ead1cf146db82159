//! The policy author's pages over HTTP: the list, a version (source with line numbers,
//! criteria, cases, coverage), checking a candidate (compile errors at their line, failing
//! cases, coverage, the what-if with charts and tables) and publishing it.

use serde_json::{json, Value};

use crate::helpers::{new_key, page_text, qualifying_student, sign_in_browser, spawn_app, Backend};
use crate::publishing::{acme_cases, acme_source, ACME};
use eligo::service::access::Role;

const IMA: &str = "ima-mett-scholarship";

fn rules(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", crate::helpers::RULES)).unwrap()
}

async fn check(
    b: &reqwest::Client,
    app: &crate::helpers::TestApp,
    csrf: &str,
    action: &str,
    source: &str,
    tests: &str,
) -> (u16, String) {
    let res = b
        .post(app.url(action))
        .form(&[
            ("csrf", csrf),
            ("source", source),
            ("tests", tests),
            ("as_of", "2024-06-01"),
            ("school_id", ""),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn authors_read_policies_versions_sources_cases_and_coverage() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let secret = new_key(&app.database_url, Role::Author, Some("acme"));
    let (b, _) = sign_in_browser(&app, &secret).await;
    // Home sends an author to the policies.
    let list = page_text(&b, &app, "/").await;
    assert!(list.contains("<h1>Policies</h1>"), "{list}");
    assert!(list.contains("IMA Education Foundation Manufacturing Scholarship"));
    assert!(list.contains("/policies/ima-mett-scholarship/versions/2"));
    assert!(list.contains("from 2022-07-01 until 2023-07-01"));
    // Another sponsor's policy: readable, but no "new version" link.
    assert!(!list.contains("/policies/new?policy=ima-mett-scholarship"));
    let page = page_text(&b, &app, "/policies/ima-mett-scholarship/versions/2").await;
    assert!(page.contains("version 2</h1>"), "{page}");
    assert!(page.contains(
        r#"<span class="line-number" aria-hidden="true">1</span><code>// IMA Education Foundation"#
    ));
    assert!(page.contains("College admission or local manufacturing job offer"));
    assert!(page.contains("Coverage met"), "{page}");
    assert!(page.contains("v2: local manufacturing job offer instead of college"));
    assert!(!page.contains("Fail:"));
    let hash = eligo::policy::registry::source_hash(&rules("ima-mett-scholarship.v2.rhai"));
    assert!(page.contains(&hash));
    // A counselor has no policy pages.
    let counselor = new_key(&app.database_url, Role::Counselor, None);
    let (c, _) = sign_in_browser(&app, &counselor).await;
    let res = c.get(app.url("/policies")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn checking_shows_errors_at_their_line_failures_and_coverage_then_publishes() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let secret = new_key(&app.database_url, Role::Author, Some("acme"));
    let (b, csrf) = sign_in_browser(&app, &secret).await;
    let source = acme_source(1, "2024-01-01");
    let cases = acme_cases().to_string();
    // A compile error: next to the field, and the line marked in the listing.
    let broken = source.replace(
        "require(\"graduated\", student.graduated);",
        "require(\"graduated\", ;",
    );
    let (status, page) = check(&b, &app, &csrf, "/policies/check", &broken, &cases).await;
    assert_eq!(status, 422);
    assert!(
        page.contains(r#"id="source-error""#) && page.contains("Line 19, column"),
        "{page}"
    );
    assert!(page.contains(r#"class="error-line" id="error-line""#));
    // Cases that are not JSON: next to their field.
    let (_, page) = check(&b, &app, &csrf, "/policies/check", &source, "{").await;
    assert!(page.contains(r#"id="tests-error""#), "{page}");
    // A failing case, and coverage.
    let mut wrong = acme_cases();
    wrong["cases"][0]["expect"]["outcome"] = json!("ineligible");
    let (status, page) = check(
        &b,
        &app,
        &csrf,
        "/policies/check",
        &source,
        &wrong.to_string(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("3 run, 2 pass, 1 fail"), "{page}");
    assert!(page.contains("Fail: outcome eligible"), "{page}");
    assert!(!page.contains("Publish acme"));
    let mut thin = acme_cases();
    thin["cases"].as_array_mut().unwrap().remove(2);
    let (_, page) = check(
        &b,
        &app,
        &csrf,
        "/policies/check",
        &source,
        &thin.to_string(),
    )
    .await;
    assert!(page.contains("Coverage not met"), "{page}");
    assert!(page.contains("No: add a case where it fails"));
    // Everything passes: a publish button; a new policy has nothing to compare against.
    let (status, page) = check(&b, &app, &csrf, "/policies/check", &source, &cases).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Publish acme-machining-award version 1"),
        "{page}"
    );
    assert!(page.contains("is a new policy"));
    // Nothing stored yet; publishing (line breaks sent as CRLF, as browsers do) stores the LF
    // text and shows the version.
    let res = app
        .client
        .get(app.url(&format!("/v1/policies/{ACME}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let crlf = source.replace('\n', "\r\n");
    let res = b
        .post(app.url("/policies/publish"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("source", &crlf),
            ("tests", &cases),
            ("as_of", ""),
            ("school_id", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.url().path(),
        "/policies/acme-machining-award/versions/1"
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("Acme machining award, version 1"), "{page}");
    let api: Value = app.get_json(&format!("/v1/policies/{ACME}")).await;
    assert_eq!(api["versions"][0]["source"], source);
    // Another sponsor's policy cannot be published from this key.
    let (status, _) = check(
        &b,
        &app,
        &csrf,
        "/policies/publish",
        &rules("ima-mett-scholarship.v2.rhai"),
        &rules("ima-mett-scholarship.tests.json"),
    )
    .await;
    assert_eq!(status, 403);
    // A form without the session's token is refused.
    let (status, _) = check(&b, &app, "forged", "/policies/check", &source, &cases).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_what_if_shows_charts_with_tables_and_suppresses_small_groups() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut body = Vec::new();
    for i in 0..12 {
        let mut s = qualifying_student(&format!("J-{i:02}"));
        s["job_offers"] = json!([{"employer": "Acme", "naics": "336111", "local": false}]);
        body.push(s);
    }
    for i in 0..3 {
        let mut s = qualifying_student(&format!("S-{i}"));
        s["school_id"] = json!("small-school");
        body.push(s);
    }
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let secret = new_key(
        &app.database_url,
        Role::Author,
        Some("ima-education-foundation"),
    );
    let (b, csrf) = sign_in_browser(&app, &secret).await;
    // The form starts from the latest version.
    let form = page_text(&b, &app, &format!("/policies/new?policy={IMA}")).await;
    assert!(
        form.contains("award: #{ kind: &#34;scholarship&#34;")
            || form.contains("award: #{ kind: &quot;scholarship&quot;"),
        "{form}"
    );
    // A stricter v3 (enrolled only): everyone enrolled stays; its period overlaps v2's, so it
    // cannot be published, but the what-if still shows.
    let stricter = rules("ima-mett-scholarship.v2.rhai")
        .replace("version: 2,", "version: 3,")
        .replace(
            "student.college_status_in([\"admitted\", \"enrolled\"])",
            "student.college_status_in([\"admitted\"])",
        );
    let (status, page) = check(
        &b,
        &app,
        &csrf,
        "/policies/check",
        &stricter,
        &rules("ima-mett-scholarship.tests.json"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Version 3 against version 2"), "{page}");
    assert!(page.contains("Gained 0, lost 15."), "{page}");
    assert!(page.contains("<svg"), "{page}");
    assert!(page.contains(r#"role="img" aria-labelledby="chart-school-title""#));
    assert!(
        page.contains("<th scope=\"row\">small-school</th><td>suppressed</td>"),
        "{page}"
    );
    // With two schools, the other one's numbers would give the small one away.
    assert!(
        page.contains("<th scope=\"row\">d204-metea-valley</th><td>suppressed</td>"),
        "{page}"
    );
    assert!(!page.contains("Publish ima"));
}
