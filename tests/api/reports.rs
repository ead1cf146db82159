//! Reports: awards by group, progression along the pathway, budgets; small groups suppressed.

use serde_json::{json, Value};

use crate::helpers::{client_with_key, problem, qualifying_student, spawn_app, Backend, TestApp};

const IMA: &str = "ima-mett-scholarship";
const IVCC: &str = "ivcc-ccpe-waiver";

/// A qualifying record (IMA v2 and the IVCC waiver on 2024-06-01) with a gender, who has also
/// met every METT requirement.
fn complete(id: &str, gender: &str) -> Value {
    let mut s = qualifying_student(id);
    s["demographics"] = json!({"gender": gender, "race_ethnicity": ["hispanic_latino"]});
    s["early_college_credits"] = json!([
        {"course": "MFG 101", "subject": "machining", "credit_hours": 3.0},
        {"course": "WLD 110", "subject": "welding", "credit_hours": 3.0}
    ]);
    s["work_based_learning"] = json!([
        {"kind": "career_exploration", "employer": "Caterpillar"},
        {"kind": "career_exploration", "employer": "Ingalls"},
        {"kind": "team_based_challenge", "employer": "Exelon"},
        {"kind": "team_based_challenge", "employer": "Rivian"},
        {"kind": "internship", "hours": 60, "employer": "Rivian"}
    ]);
    s["pathway"] = json!({"individualized_learning_plan": true, "career_coursework_years": 2,
        "professional_skills_assessment": true, "reading_ready": true, "math_ready": true});
    s
}

/// On the METT pathway, with a learning plan and nothing else yet.
fn beginner(id: &str, gender: &str) -> Value {
    json!({"student_id": id, "school_id": "d204-metea-valley",
        "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "in_progress"}],
        "pathway": {"individualized_learning_plan": true},
        "demographics": {"gender": gender}})
}

async fn import(app: &TestApp, records: Vec<Value>) {
    let res = app
        .client
        .post(app.url("/v1/students/import"))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
}

/// Awards every eligible student of `policies` in one batch and waits for it.
async fn award_all(app: &TestApp, policies: &[&str]) -> Value {
    let res = app.client.post(app.url("/v1/batches"))
        .json(&json!({"mode": "award", "policy_ids": policies, "students": "all", "as_of": "2024-06-01"}))
        .send().await.unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let id = res.json::<Value>().await.unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..400 {
        let b = app.get_json(&format!("/v1/batches/{id}")).await;
        if b["state"] == "done" {
            return b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the award batch did not finish");
}

fn row<'a>(report: &'a Value, group: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == group)
        .unwrap_or_else(|| panic!("no row {group} in {report}"))
}

#[tokio::test]
async fn the_awards_report_counts_by_program_and_suppresses_small_groups_of_students() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut records = Vec::new();
    records.extend((0..12).map(|i| complete(&format!("F-{i:02}"), "female")));
    records.extend((0..15).map(|i| complete(&format!("M-{i:02}"), "male")));
    records.extend((0..2).map(|i| complete(&format!("N-{i:02}"), "nonbinary")));
    import(&app, records).await;
    // Room for 25 of the 29 IMA scholarships.
    let res = app
        .client
        .put(app.url(&format!("/v1/policies/{IMA}/budget")))
        .json(&json!({"total_cents": 25 * 50_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let batch = award_all(&app, &[IMA, IVCC]).await;
    assert_eq!(
        batch["counts"],
        json!({"granted": 54, "denied": 4}),
        "{batch}"
    );
    // One IVCC waiver revoked.
    let lines = app
        .client
        .get(app.url(&format!(
            "/v1/batches/{}/results",
            batch["batch_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let waiver: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["policy_id"] == IVCC && l["outcome"] == "granted")
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!(
            "/v1/awards/{}/revoke",
            waiver["award_id"].as_str().unwrap()
        )))
        .json(&json!({"reason": "withdrew"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    let by_policy = app.get_json("/v1/reports/awards?group_by=policy").await;
    let ima = row(&by_policy, IMA);
    assert_eq!(ima["granted"], 25);
    assert_eq!(ima["denied"], 4);
    assert_eq!(ima["denied_by_reason"], json!({"budget_exhausted": 4}));
    assert_eq!(ima["net_cents"], 25 * 50_000);
    let ivcc = row(&by_policy, IVCC);
    assert_eq!(ivcc["granted"], 29);
    assert_eq!(ivcc["revoked"], 1);
    assert_eq!(ivcc["net_credit_hours"], 28.0 * 3.0);
    assert_eq!(by_policy["total"]["granted"], 54);

    // By gender: two nonbinary students are a group too small to show. A row with any count
    // from 1 to 9 hides all its counts (they add up to one another), and a column with one
    // hidden cell hides a second, so no count under 10 can be shown or worked out.
    let by_gender = app.get_json("/v1/reports/awards?group_by=gender").await;
    assert_eq!(by_gender["suppress_below"], 10);
    let nonbinary = row(&by_gender, "nonbinary");
    for cell in [
        "students",
        "granted",
        "denied",
        "revoked",
        "net_cents",
        "net_credit_hours",
    ] {
        assert_eq!(nonbinary[cell], "suppressed", "{cell}: {nonbinary}");
    }
    let rows = by_gender["rows"].as_array().unwrap();
    assert!(rows.len() >= 3);
    for r in rows {
        let counts = ["students", "granted", "denied", "revoked"].map(|c| &r[c]);
        let hidden = counts.iter().filter(|c| **c == "suppressed").count();
        assert!(hidden == 0 || hidden == 4, "a row half hidden: {r}");
        for c in counts {
            if let Some(n) = c.as_u64() {
                assert!(n == 0 || n >= 10, "a small count shown: {r}");
            }
        }
    }
    assert!(
        rows.iter().filter(|r| r["granted"] == "suppressed").count() >= 2,
        "{by_gender}"
    );
    // The program totals are not about a group of students: shown whole ...
    assert_eq!(by_gender["total"]["granted"], 54);
    // ... unless the report is narrowed to one school's students.
    let school = app
        .get_json("/v1/reports/awards?group_by=policy&school_id=d204-metea-valley")
        .await;
    assert_eq!(school["total"]["granted"], "suppressed", "{school}");
    assert_eq!(row(&school, IMA)["granted"], "suppressed", "{school}");

    let by_month = app.get_json("/v1/reports/awards?group_by=month").await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(row(&by_month, &month)["granted"], 54);
    let empty = app
        .get_json("/v1/reports/awards?from=2001-01-01&to=2001-12-31")
        .await;
    assert_eq!(empty["rows"], json!([]));
    assert_eq!(empty["total"]["granted"], 0);

    let csv = app
        .client
        .get(app.url("/v1/reports/awards?group_by=gender"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("group,students,granted,denied,denied_budget_exhausted,revoked,net_cents,net_credit_hours\n"), "{text}");
    assert!(text.contains("nonbinary,suppressed,suppressed"), "{text}");
    let res = app
        .client
        .get(app.url("/v1/reports/awards?area=welding"))
        .send()
        .await
        .unwrap();
    problem(res, 400).await;

    let res = app
        .client
        .get(app.url("/v1/reports/awards?from=yesterday"))
        .send()
        .await
        .unwrap();
    let p = problem(res, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("YYYY-MM-DD"), "{p}");
    let res = app
        .client
        .get(app.url("/v1/reports/awards?group_by=shoe_size"))
        .send()
        .await
        .unwrap();
    problem(res, 400).await;

    // An awarder sees its own programs only; a counselor no report.
    let ivcc_key = make_key(&app, json!({"role": "awarder", "sponsor": "ivcc"})).await;
    let own: Value = ivcc_key
        .get(app.url("/v1/reports/awards"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["policy_ids"], json!([IVCC]));
    assert_eq!(own["rows"].as_array().unwrap().len(), 1);
    let counselor = make_key(&app, json!({"role": "counselor"})).await;
    problem(
        counselor
            .get(app.url("/v1/reports/awards"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}

async fn make_key(app: &TestApp, body: Value) -> reqwest::Client {
    let v: Value = app
        .client
        .post(app.url("/v1/keys"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    client_with_key(v["secret"].as_str().unwrap())
}

#[tokio::test]
async fn the_progression_report_follows_the_pathway_in_order() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut records: Vec<Value> = (0..12)
        .map(|i| complete(&format!("C-{i:02}"), "female"))
        .collect();
    records.extend((0..11).map(|i| beginner(&format!("B-{i:02}"), "female")));
    records.extend((0..3).map(|i| beginner(&format!("X-{i:02}"), "male")));
    // Not on the METT pathway: not counted.
    records.push(json!({"student_id": "OTHER", "endorsements": [{"area": "health_sciences_technology", "status": "in_progress"}]}));
    import(&app, records).await;
    award_all(&app, &[IMA]).await;

    let r = app
        .get_json("/v1/reports/progression?as_of=2024-06-01&group_by=gender")
        .await;
    assert_eq!(r["requirement"], "ccpe-mett-requirements");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"learning_plan"));
    assert!(
        steps.iter().position(|s| *s == "early_college_credit")
            < steps.iter().position(|s| *s == "supervised_experience")
    );
    assert_eq!(
        &steps[steps.len() - 4..],
        [
            "endorsement_earned",
            "eligible_for_incentive",
            "awarded",
            "enrolled_or_employed"
        ]
    );
    let total = &r["total"];
    assert_eq!(total["students"], 26);
    let step = |row: &Value, code: &str| -> (Value, Value) {
        let s = row["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"] == code)
            .unwrap();
        (s["reached"].clone(), s["through"].clone())
    };
    assert_eq!(step(total, "learning_plan"), (json!(26), json!(26)));
    assert_eq!(step(total, "early_college_credit"), (json!(12), json!(12)));
    assert_eq!(step(total, "endorsement_earned"), (json!(12), json!(12)));
    assert_eq!(step(total, "awarded"), (json!(12), json!(12)));
    assert_eq!(step(total, "enrolled_or_employed"), (json!(12), json!(12)));
    // Three male students: too few to show, and so is what the total would reveal.
    let male = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "male")
        .unwrap();
    assert_eq!(male["students"], "suppressed");
    assert!(male["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reached"] == "suppressed"));
    let female = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "female")
        .unwrap();
    assert_eq!(
        female["students"], "suppressed",
        "secondary suppression: {female}"
    );

    let csv = app
        .client
        .get(app.url("/v1/reports/progression?as_of=2024-06-01"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("group,students,step,label,reached,through\nall,26,learning_plan,"),
        "{csv}"
    );

    let r = app
        .get_json("/v1/reports/progression?as_of=2024-06-01&school_id=nowhere")
        .await;
    assert_eq!(r["total"]["students"], 0);
    let res = app
        .client
        .get(app.url("/v1/reports/progression?area=welding"))
        .send()
        .await
        .unwrap();
    let p = problem(res, 400).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("manufacturing_engineering_technology_trades"),
        "{p}"
    );
}

#[tokio::test]
async fn the_budget_report_warns_that_a_fund_will_run_out() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    import(
        &app,
        (0..5)
            .map(|i| qualifying_student(&format!("Q-{i}")))
            .collect(),
    )
    .await;
    let res = app
        .client
        .put(app.url(&format!("/v1/policies/{IMA}/budget")))
        .json(&json!({"total_cents": 150_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let program = |r: &Value, id: &str| {
        r["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["policy_id"] == id)
            .unwrap()
            .clone()
    };
    let before = app.get_json("/v1/reports/budget?as_of=2024-06-01").await;
    let ima = program(&before, IMA);
    assert_eq!(ima["eligible_unawarded"], 5);
    assert_eq!(ima["eligible_unawarded_cents"], 250_000);
    assert_eq!(ima["remaining_cents"], 150_000);
    assert_eq!(ima["projection"], "runs_out");
    assert_eq!(ima["projected_remaining_cents"], -100_000);
    let ivcc = program(&before, IVCC);
    assert_eq!(ivcc["projection"], "unlimited");
    assert_eq!(ivcc["eligible_unawarded_credit_hours"], 15.0);

    award_all(&app, &[IMA]).await;
    let after = app.get_json("/v1/reports/budget?as_of=2024-06-01").await;
    let ima = program(&after, IMA);
    assert_eq!(ima["committed_cents"], 150_000);
    assert_eq!(ima["remaining_cents"], 0);
    assert_eq!(
        ima["eligible_unawarded"], 2,
        "the two the budget could not cover: {ima}"
    );
    // Twice the budget: money would be left over.
    let res = app
        .client
        .put(app.url(&format!("/v1/policies/{IMA}/budget")))
        .json(&json!({"total_cents": 400_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let roomy = program(
        &app.get_json("/v1/reports/budget?as_of=2024-06-01").await,
        IMA,
    );
    assert_eq!(roomy["projection"], "unused");
    assert_eq!(roomy["projected_remaining_cents"], 150_000);

    let csv = app
        .client
        .get(app.url("/v1/reports/budget?as_of=2024-06-01"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("policy_id,title,sponsor,award_kind,total_cents"),
        "{csv}"
    );
    assert!(csv.contains(",unused,150000,"), "{csv}");
    let auditor = make_key(&app, json!({"role": "auditor"})).await;
    assert_eq!(
        auditor
            .get(app.url("/v1/reports/budget"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// The cohort's evaluation is kept between reports, and is stale the moment a record changes,
/// through this process or another one.
#[tokio::test]
async fn reports_follow_every_change_of_the_records_whoever_makes_it() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    import(
        &app,
        (0..24)
            .map(|i| complete(&format!("K-{i:02}"), "female"))
            .collect(),
    )
    .await;
    let path = "/v1/reports/progression?as_of=2024-06-01";
    let first = app.get_json(path).await;
    assert_eq!(first["total"]["students"], 24);
    // Kept: the same answer.
    assert_eq!(app.get_json(path).await, first);
    // A record added through this process...
    app.put_student("K-new", &complete("K-new", "male")).await;
    assert_eq!(app.get_json(path).await["total"]["students"], 25);
    // ... deleted ...
    let res = app
        .client
        .delete(app.url("/v1/students/K-new"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(app.get_json(path).await, first);
    // ... and changed by another process sharing the database.
    let other = eligo::store::Store::open(&app.database_url, 1).unwrap();
    let changed: Vec<eligo::policy::Student> = (0..12)
        .map(|i| {
            let mut s = complete(&format!("K-{i:02}"), "female");
            s["pathway"]["individualized_learning_plan"] = json!(false);
            eligo::policy::Student::from_json(&s.to_string()).unwrap()
        })
        .collect();
    other.put_students(&changed).unwrap();
    let after = app.get_json(path).await;
    let plan = after["total"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "learning_plan")
        .unwrap();
    assert_eq!(plan["reached"], 12, "{after}");
    let budget = app.get_json("/v1/reports/budget?as_of=2024-06-01").await;
    let ima = budget["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy_id"] == IMA)
        .unwrap();
    assert_eq!(ima["eligible_unawarded"], 24);
}

/// Each table of the dashboard downloads as CSV with the page's filters; only the report the
/// table comes from is read, so a date filter does not touch the progression's table.
#[tokio::test]
async fn each_dashboard_table_downloads_as_csv() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    import(
        &app,
        (0..12)
            .map(|i| complete(&format!("D-{i:02}"), "female"))
            .collect(),
    )
    .await;
    let secret = crate::helpers::new_key(
        &app.database_url,
        eligo::service::access::Role::Auditor,
        None,
    );
    let (b, _) = crate::helpers::sign_in_browser(&app, &secret).await;
    for (table, header) in [
        (
            "progression.csv",
            "group,students,step,label,reached,through",
        ),
        (
            "reach.csv",
            "group,students,cohort_share,granted,award_share",
        ),
        (
            "budget.csv",
            "policy_id,title,sponsor,award_kind,total_cents",
        ),
        ("burn.csv", "group,students,granted,denied"),
    ] {
        let res = b
            .get(app.url(&format!("/dashboard/{table}?group=gender")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{table}");
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(table));
        let text = res.text().await.unwrap();
        assert!(text.starts_with(header), "{table}: {text}");
    }
    let reach = b
        .get(app.url("/dashboard/reach.csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(reach.contains("female,12,100%,0,"), "{reach}");
    let bad = b
        .get(app.url("/dashboard/burn.csv?from=spring"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("YYYY-MM-DD"));
    let fine = b
        .get(app.url("/dashboard/progression.csv?from=spring"))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status().as_u16(), 200);
    let none = b
        .get(app.url("/dashboard/secrets.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 404);
}
