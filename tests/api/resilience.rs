//! Exactness across processes and across a crash: real `eligo` processes, killed with SIGKILL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{qualifying_student, Backend, Process, TestDb};

async fn award(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    student: &str,
    policy: &str,
) -> Option<(u16, Value)> {
    let res = client
        .post(format!("{base}/v1/awards"))
        .header("idempotency-key", key)
        .json(&json!({"student_id": student, "policy_id": policy, "as_of": "2024-06-01"}))
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?))
}

async fn seed(client: &reqwest::Client, base: &str, prefix: &str, n: usize) {
    let body: Vec<Value> = (0..n)
        .map(|i| qualifying_student(&format!("{prefix}-{i}")))
        .collect();
    let res = client
        .post(format!("{base}/v1/students/import"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

async fn all_entries(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let url = match cursor {
            Some(c) => format!("{base}/v1/ledger?limit=1000&cursor={c}"),
            None => format!("{base}/v1/ledger?limit=1000"),
        };
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn two_processes_on_one_postgres_stay_exact() {
    let Some((_db, url)) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let a = Process::start(&url).await;
    let b = Process::start(&url).await;
    let client = a.client();
    seed(&client, &a.address, "P", 30).await;
    let n = 10;
    let res = client
        .put(format!(
            "{}/v1/policies/ima-mett-scholarship/budget",
            b.address
        ))
        .json(&json!({"total_cents": 50000 * n}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let bases = [a.address.clone(), b.address.clone()];
    let same_student = (0..100).map(|i| {
        let (client, base) = (&client, &bases[i % 2]);
        async move {
            award(client, base, &format!("s{i}"), "P-0", "ivcc-ccpe-waiver")
                .await
                .unwrap()
        }
    });
    let budgeted = (0..30).map(|i| {
        let (client, base) = (&client, &bases[i % 2]);
        async move {
            award(
                client,
                base,
                &format!("b{i}"),
                &format!("P-{i}"),
                "ima-mett-scholarship",
            )
            .await
            .unwrap()
        }
    });
    let (one, many) = futures_util::future::join(
        futures_util::future::join_all(same_student),
        futures_util::future::join_all(budgeted),
    )
    .await;
    assert_eq!(
        one.iter()
            .filter(|(_, b)| b["decision"] == "granted")
            .count(),
        1
    );
    assert_eq!(
        many.iter()
            .filter(|(_, b)| b["decision"] == "granted")
            .count(),
        n as usize
    );
    let odd: Vec<&(u16, Value)> = many
        .iter()
        .filter(|(_, b)| b["decision"] != "granted" && b["reason_code"] != "budget_exhausted")
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    assert_eq!(
        many.iter()
            .filter(|(_, b)| b["reason_code"] == "budget_exhausted")
            .count(),
        30 - n as usize
    );
    for base in &bases {
        let v: Value = client
            .get(format!("{base}/v1/ledger/verify"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["entries_checked"], 130);
    }
}

async fn acknowledged_awards_survive_sigkill(backend: Backend) {
    let Some((_db, url)) = TestDb::create(backend) else {
        return;
    };
    let mut server = Process::start(&url).await;
    let client = server.client();
    seed(&client, &server.address, "K", 400).await;
    let base = server.address.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Kill once a good number of awards were acknowledged (or after 10 s on a slow machine).
    let acks = std::sync::atomic::AtomicUsize::new(0);
    let acks = &acks;
    // Eight clients stream awards; every 2xx answer is remembered.
    let streams = (0..8).map(|w| {
        let (client, base) = (&client, &base);
        async move {
            let mut acked = Vec::new();
            let mut i = w;
            // Until the server dies (a denied decision is a decision too: keep going).
            while Instant::now() < deadline {
                let key = format!("k{i}");
                let body = json!({"student_id": format!("K-{}", i % 400), "policy_id": "ima-mett-scholarship", "as_of": "2024-06-01"});
                let sent = client.post(format!("{base}/v1/awards")).header("idempotency-key", &key).json(&body).send();
                match tokio::time::timeout(Duration::from_secs(5), sent).await {
                    Ok(Ok(res)) if res.status().is_success() => {
                        if let Ok(v) = res.json::<Value>().await {
                            acked.push((key, body, v));
                            acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    _ => break,
                }
                i += 8;
            }
            acked
        }
    });
    let killer = async {
        let started = Instant::now();
        while acks.load(std::sync::atomic::Ordering::SeqCst) < 60
            && started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
    };
    let (acked, ()) =
        futures_util::future::join(futures_util::future::join_all(streams), killer).await;
    let acked: Vec<(String, Value, Value)> = acked.into_iter().flatten().collect();
    assert!(
        acked.len() >= 20,
        "only {} awards were acknowledged before the kill",
        acked.len()
    );

    let restarted = Process::start(&url).await;
    let entries = all_entries(&client, &restarted.address).await;
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        *by_key
            .entry(
                e["idempotency_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
    }
    assert!(
        by_key.values().all(|&n| n == 1),
        "an idempotency key appears twice in the ledger"
    );
    let by_seq: HashMap<i64, &Value> = entries
        .iter()
        .map(|e| (e["seq"].as_i64().unwrap(), e))
        .collect();
    for (key, body, answer) in &acked {
        let seq = answer["ledger"]["seq"].as_i64().unwrap();
        let entry = by_seq
            .get(&seq)
            .unwrap_or_else(|| panic!("acknowledged award {key} (seq {seq}) was lost"));
        assert_eq!(entry["entry_hash"], answer["ledger"]["entry_hash"]);
        assert_eq!(entry["idempotency_key"], key.as_str());
        // Retrying an acknowledged request gives the original answer, not a second decision.
        let res = client
            .post(format!("{}/v1/awards", restarted.address))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(&res.json::<Value>().await.unwrap(), answer);
    }
    let v: Value = client
        .get(format!("{}/v1/ledger/verify", restarted.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let again = all_entries(&client, &restarted.address).await;
    assert_eq!(again.len(), entries.len(), "retries wrote new entries");
}

#[tokio::test]
async fn sqlite_acknowledged_awards_survive_sigkill() {
    acknowledged_awards_survive_sigkill(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_acknowledged_awards_survive_sigkill() {
    acknowledged_awards_survive_sigkill(Backend::Postgres).await;
}
