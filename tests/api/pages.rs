//! The pages over HTTP (no browser): sessions, CSRF, headers, escaping, refusals as pages.
//! `tests/api/browser.rs` drives the same pages in Chromium.

use serde_json::json;

use crate::helpers::{
    browser, csrf_of, new_key, page_text, qualifying_student, sign_in_browser, spawn_app,
    submit_sign_in, tamper, Backend, TestApp,
};
use eligo::service::access::Role;

/// Signs a browser in with a new key of `role`; returns it and its forms' CSRF token.
async fn sign_in(app: &TestApp, role: Role) -> (reqwest::Client, String) {
    sign_in_browser(app, &new_key(&app.database_url, role, None)).await
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_pages_send_the_security_headers() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert_eq!(res.headers()["referrer-policy"], "same-origin");
    let sign_in_cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let form = res.text().await.unwrap();
    assert!(form.contains(r#"action="/sign-in""#));
    let token = sign_in_cookie.split(';').next().unwrap().to_string();
    let secret = new_key(&app.database_url, Role::Counselor, None);
    let res = plain
        .post(app.url("/sign-in"))
        .header("cookie", &token)
        .form(&[("key", secret.as_str()), ("csrf", &csrf_of(&form).unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("eligo_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain HTTP without the setting: {session}"
    );
    // A 401 page for a signed-out visitor carries the headers too, and is a page.
    let res = plain.get(app.url("/students")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.text().await.unwrap().contains("not signed in"));
}

#[tokio::test]
async fn secure_cookies_when_told_the_service_is_behind_tls() {
    let app = crate::helpers::spawn_app_with(
        Backend::Sqlite,
        std::path::Path::new(crate::helpers::RULES),
        |s| s.secure_cookies = true,
    )
    .await
    .unwrap();
    let res = reqwest::get(app.url("/")).await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_bad_key_is_told_next_to_the_field_and_no_session_is_made() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let b = browser();
    let res = submit_sign_in(&b, &app, "eligo_wrong").await;
    assert_eq!(res.status().as_u16(), 401);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"id="key-error""#) && page.contains("unknown or revoked"),
        "{page}"
    );
    assert_eq!(
        b.get(app.url("/students"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // Without the form's token the sign-in is refused.
    let res = browser()
        .post(app.url("/sign-in"))
        .form(&[("key", "eligo_wrong"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.put_student("CS-1", &qualifying_student("CS-1")).await;
    let (b, csrf) = sign_in(&app, Role::Counselor).await;
    for (path, form) in [
        ("/students/CS-1/try", vec![("college", "jjc")]),
        ("/preview", vec![("record", r#"{"student_id":"x"}"#)]),
        ("/sign-out", vec![]),
    ] {
        for token in [None, Some("0".repeat(csrf.len()))] {
            let mut f: Vec<(&str, &str)> = form.clone();
            if let Some(t) = &token {
                f.push(("csrf", t));
            }
            let res = b.post(app.url(path)).form(&f).send().await.unwrap();
            let status = res.status().as_u16();
            assert!(status == 403 || status == 400, "{path} {token:?}: {status}");
        }
    }
    // The session still works: nothing was signed out.
    assert_eq!(
        b.get(app.url("/students"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn sign_out_and_revocation_end_sessions_in_the_database() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (b, csrf) = sign_in(&app, Role::Counselor).await;
    let res = b
        .post(app.url("/sign-out"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "back at the sign-in page");
    assert_eq!(
        b.get(app.url("/students"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A revoked key's session is refused at once.
    let (b, _) = sign_in(&app, Role::Counselor).await;
    let keys = app.get_json("/v1/keys").await;
    for k in keys["keys"].as_array().unwrap() {
        if k["role"] == "counselor" && k["revoked_at"].is_null() {
            let id = k["key_id"].as_str().unwrap();
            app.client
                .post(app.url(&format!("/v1/keys/{id}/revoke")))
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(
        b.get(app.url("/students"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn idle_and_old_sessions_end() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for (column, hours) in [("last_seen_at", 9), ("created_at", 25)] {
        let (b, _) = sign_in(&app, Role::Counselor).await;
        assert_eq!(
            b.get(app.url("/students"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        let then = (chrono::Utc::now() - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        tamper(
            &app.database_url,
            &format!("UPDATE sessions SET {column} = '{then}'"),
        );
        // A session read from the database is trusted for at most the cache's lifetime.
        tokio::time::sleep(
            eligo::service::access::KEY_CACHE_TTL + std::time::Duration::from_millis(20),
        )
        .await;
        let res = b.get(app.url("/students")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{column} {hours} h ago");
    }
}

#[tokio::test]
async fn a_role_without_the_page_gets_a_403_page_with_the_reason() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (b, _) = sign_in(&app, Role::Auditor).await;
    let res = b.get(app.url("/students")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<h1>") && page.contains("auditor key may not open"),
        "{page}"
    );
}

#[tokio::test]
async fn record_text_is_escaped_everywhere() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut record = qualifying_student("XSS-1");
    record["school_id"] = json!("<script>alert(1)</script>");
    assert_eq!(
        app.put_student("XSS-1", &record).await.status().as_u16(),
        201
    );
    let (b, csrf) = sign_in(&app, Role::Counselor).await;
    for page in [
        page_text(&b, &app, "/students/XSS-1").await,
        page_text(&b, &app, "/students?q=XSS").await,
        b.post(app.url("/preview"))
            .form(&[("csrf", csrf.as_str()), ("record", &record.to_string())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ] {
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn the_student_page_ranks_incentives_and_says_what_is_missing() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut record = qualifying_student("ST-1");
    record["postsecondary"] = json!({"institution_id": "jjc", "status": "enrolled"});
    app.put_student("ST-1", &record).await;
    let (b, csrf) = sign_in(&app, Role::Counselor).await;
    let page = page_text(&b, &app, "/students/ST-1?as_of=2024-06-01").await;
    // Eligible first (IMA and JJC), the IVCC waiver after, with what is missing and marks in words.
    // (Within the incentives: the next steps above them name incentives too.)
    let incentives = &page[page.find("<h2>Incentives</h2>").unwrap()..];
    let ima = incentives.find("Manufacturing").unwrap_or(usize::MAX);
    let ivcc = incentives.find("Illinois Valley").unwrap();
    assert!(ima < ivcc, "eligible incentives come first");
    assert!(
        page.contains("What is missing") && page.contains("Passed:") && page.contains("Not met:")
    );
    assert!(page.contains("$500.00 scholarship"));
    // The version and its effective dates are one click away (a disclosure).
    assert!(page.contains("<summary>Policy version</summary>"));
    assert!(
        page.contains("version 2, in effect from 2023-07-01 (until 2026-12-01)"),
        "{page}"
    );
    // Try a change: enrolment at IVCC instead; nothing stored.
    let tried = b
        .post(app.url("/students/ST-1/try"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("as_of", "2024-06-01"),
            ("college", "ivcc"),
            ("college_status", "enrolled"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        tried.contains("enrolled at ivcc") && tried.contains("Nothing was stored"),
        "{tried}"
    );
    let stored = app.get_json("/v1/students/ST-1").await;
    assert_eq!(stored["student"]["postsecondary"]["institution_id"], "jjc");
    // A bad NAICS code is told next to its field.
    let res = b
        .post(app.url("/students/ST-1/try"))
        .form(&[("csrf", csrf.as_str()), ("naics", "steel")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    assert!(res.text().await.unwrap().contains(r#"id="naics-error""#));
}

#[tokio::test]
async fn search_by_prefix_and_school_and_the_school_list_with_its_csv() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    for (id, school) in [
        ("AB-1", "s1"),
        ("AB-2", "s2"),
        ("ab-3", "s1"),
        ("CD-1", "s1"),
    ] {
        let mut r = qualifying_student(id);
        r["school_id"] = json!(school);
        app.put_student(id, &r).await;
    }
    let (b, _) = sign_in(&app, Role::Counselor).await;
    let page = page_text(&b, &app, "/students?q=AB").await;
    assert!(page.contains(">AB-1<") && page.contains(">AB-2<"));
    assert!(
        !page.contains(">ab-3<") && !page.contains(">CD-1<"),
        "prefix is exact"
    );
    let page = page_text(&b, &app, "/students?q=AB&school_id=s1").await;
    assert!(page.contains(">AB-1<") && !page.contains(">AB-2<"));
    let school = page_text(&b, &app, "/schools/s1").await;
    assert!(school.contains(">AB-1<") && school.contains(">CD-1<") && !school.contains(">AB-2<"));
    assert!(school.contains("aria-sort=\"ascending\""));
    let desc = page_text(&b, &app, "/schools/s1?sort=student_id&dir=desc").await;
    assert!(
        desc.find(">CD-1<").unwrap() < desc.find(">AB-1<").unwrap(),
        "sorted descending"
    );
    let csv = b
        .get(app.url("/schools/s1/students.csv"))
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("student_id,"));
    assert_eq!(lines.count(), 3);
}

#[tokio::test]
async fn search_results_page_with_the_apis_cursor() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.seed_students("PG", 30).await;
    let (b, _) = sign_in(&app, Role::Counselor).await;
    let first = page_text(&b, &app, "/students?q=PG").await;
    assert_eq!(first.matches("<th scope=\"row\">").count(), 25);
    // The link's `&` is escaped in the HTML (askama writes `&#38;`).
    let at = first
        .find(r#"<a href="/students?q=PG"#)
        .expect("a next-page link")
        + 9;
    let link = &first[at..];
    let link = link[..link.find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(link.contains("cursor=PG-"), "{link}");
    let second = page_text(&b, &app, &link).await;
    assert_eq!(second.matches("<th scope=\"row\">").count(), 5);
    assert!(!second.contains("Next page"));
}
