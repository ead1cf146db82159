//! Published policies over HTTP, and the start-up guard against changed versions.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{problem, Backend, TestDb, RULES};
use crate::on_both_backends;

on_both_backends! {
    async fn policies_list_versions_dates_and_hashes(app) {
        let body: Value = app.client.get(app.url("/v1/policies")).send().await.unwrap().json().await.unwrap();
        let ids: Vec<&str> = body["policies"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["ccpe-health-requirements", "ccpe-mett-requirements", "ima-mett-scholarship", "ivcc-ccpe-waiver", "jjc-ccpe-waiver"]);
        assert_eq!(body["policies"][1]["versions"][0]["kind"], "requirement");
        assert!(body["policies"][1]["versions"][0].get("award").is_none());
        let ima = &body["policies"][2]["versions"];
        assert_eq!(ima[0]["kind"], "incentive");
        assert_eq!(ima.as_array().unwrap().len(), 3);
        assert_eq!(ima[0]["effective_from"], "2022-07-01");
        assert_eq!(ima[0]["effective_to"], "2023-07-01");
        assert_eq!(ima[1]["effective_from"], "2023-07-01");
        // An open-ended version ends where the next one begins.
        assert_eq!(ima[1]["effective_to"], "2026-12-01");
        assert!(ima[2].get("effective_to").is_none());
        assert!(ima[0].get("source").is_none());
        let file = std::fs::read_to_string(format!("{RULES}/ima-mett-scholarship.v2.rhai")).unwrap();
        assert_eq!(ima[1]["hash"], hex::encode(Sha256::digest(file.as_bytes())));
        assert!(ima[1]["published_at"].as_str().unwrap().ends_with('Z'));
    }

    async fn one_policy_shows_its_source(app) {
        let body: Value = app.client.get(app.url("/v1/policies/jjc-ccpe-waiver")).send().await.unwrap().json().await.unwrap();
        let file = std::fs::read_to_string(format!("{RULES}/jjc-ccpe-waiver.v1.rhai")).unwrap();
        assert_eq!(body["versions"][0]["source"], file);
        assert_eq!(body["versions"][0]["award"]["kind"], "tuition_waiver");
        let criteria = &body["versions"][0]["criteria"];
        assert_eq!(criteria["jjc_admission"]["label"], "Admission at Joliet Junior College");
        assert_eq!(criteria["jjc_admission"]["missing"], "Be admitted to or enroll at Joliet Junior College");
        assert!(criteria["qualifying_endorsement"]["label"].is_string());
        let res = app.client.get(app.url("/v1/policies/nope")).send().await.unwrap();
        problem(res, 404).await;
    }
}

async fn changed_source_without_a_new_version_is_refused(backend: Backend) {
    let Some((db, url)) = TestDb::create(backend) else {
        return;
    };
    let rules = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(RULES).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, rules.path().join(p.file_name().unwrap())).unwrap();
    }
    let start = |url: String, dir: std::path::PathBuf| async move {
        let mut s = eligo::config::Settings::new(url, dir);
        s.workers = Some(1);
        eligo::api::Application::build(s).await
    };
    start(url.clone(), rules.path().to_path_buf())
        .await
        .expect("first start");
    let path = rules.path().join("jjc-ccpe-waiver.v1.rhai");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("CCPE tuition waiver", "CCPE waiver");
    std::fs::write(&path, changed).unwrap();
    let err = match start(url.clone(), rules.path().to_path_buf()).await {
        Ok(_) => panic!("a changed published version must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("jjc-ccpe-waiver version 1"), "{err}");
    assert!(err.contains("bump the version"), "{err}");
    drop(db);
}

#[tokio::test]
async fn sqlite_changed_source_without_a_new_version_is_refused() {
    changed_source_without_a_new_version_is_refused(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_changed_source_without_a_new_version_is_refused() {
    changed_source_without_a_new_version_is_refused(Backend::Postgres).await;
}

#[tokio::test]
async fn failing_policy_tests_refuse_start() {
    let rules = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(RULES).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "rhai") {
            std::fs::copy(&p, rules.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        rules.path().join("bad.tests.json"),
        r#"{"policy":"jjc-ccpe-waiver","cases":[{"name":"impossible","as_of":"2024-06-01","student":{"student_id":"x"},"expect":{"outcome":"eligible"}}]}"#,
    )
    .unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("e.db").display());
    let err = match eligo::api::Application::build(eligo::config::Settings::new(url, rules.path()))
        .await
    {
        Ok(_) => panic!("the service must not start with failing policy tests"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("policy test cases fail"), "{err}");
    assert!(err.contains("impossible"), "{err}");
}
