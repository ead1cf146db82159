//! Property and fuzz tests of the record parser, the importers and the seed policies.
//!
//! - generated records, valid and invalid, go through parse -> evaluate for every seed policy:
//!   no panic, every invalid record refused with a message, every decision consistent, and the
//!   same decision whether a policy runs as a direct plan or through rhai;
//! - a bounded, deterministic fuzz loop mutates seed inputs for the parser and the CSV, NDJSON
//!   and JSON importers (fixed seed, fixed iteration count: reproducible, a few seconds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eligo::policy::{Evaluator, Limits, Outcome, Prepared, Registry, Student};
use eligo::service::import::{parse, ImportFormat};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const AREAS: [&str; 8] = [
    "agriculture_food_natural_resources",
    "arts_communications",
    "finance_business_services",
    "health_sciences_technology",
    "human_public_services",
    "information_technology",
    "manufacturing_engineering_technology_trades",
    "welding", // invalid
];

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (2019i32..2027, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
        Just("2024-02-30".to_string()),
        Just("soon".to_string()),
    ]
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 3 => s.prop_map(Some)].boxed()
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop_oneof![9 => "[A-Za-z0-9._-]{1,12}", 1 => ".{0,70}"],
        maybe(date()),
        maybe(prop::collection::vec((0usize..8, prop::bool::ANY, maybe(date())), 0..3)),
        maybe(prop::collection::vec((-2.0f64..12.0, maybe("[a-z]{1,8}")), 0..4)),
        maybe(prop::collection::vec((prop_oneof!["3[1-3][0-9]{0,4}", "[0-9]{1,7}"], maybe(prop::bool::ANY)), 0..3)),
        maybe((maybe(prop_oneof![Just("ivcc"), Just("jjc"), Just("cod")]), maybe(prop_oneof![Just("applied"), Just("admitted"), Just("enrolled"), Just("graduated")]))),
        maybe(prop_oneof![Just("student"), Just("institution"), Just("parent")]),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(id, grad, ends, credits, offers, post, payee, typo)| {
            let mut m = Map::new();
            m.insert("student_id".into(), json!(id));
            if let Some(g) = grad {
                m.insert("graduation_date".into(), json!(g));
            }
            if let Some(e) = ends {
                let list: Vec<Value> = e
                    .into_iter()
                    .map(|(a, earned, on)| {
                        let mut v = json!({"area": AREAS[a], "status": if earned { "earned" } else { "in_progress" }});
                        if let Some(d) = on {
                            v["earned_on"] = json!(d);
                        }
                        v
                    })
                    .collect();
                m.insert("endorsements".into(), json!(list));
            }
            if let Some(c) = credits {
                let list: Vec<Value> = c
                    .into_iter()
                    .map(|(h, s)| json!({"credit_hours": h, "subject": s}))
                    .collect();
                m.insert("early_college_credits".into(), json!(list));
            }
            if let Some(o) = offers {
                let list: Vec<Value> = o
                    .into_iter()
                    .map(|(n, l)| {
                        let mut v = json!({"naics": n});
                        if let Some(l) = l {
                            v["local"] = json!(l);
                        }
                        v
                    })
                    .collect();
                m.insert("job_offers".into(), json!(list));
            }
            if let Some((inst, status)) = post {
                let mut p = Map::new();
                if let Some(i) = inst {
                    p.insert("institution_id".into(), json!(i));
                }
                if let Some(s) = status {
                    p.insert("status".into(), json!(s));
                }
                m.insert("postsecondary".into(), Value::Object(p));
            }
            if let Some(p) = payee {
                m.insert("payee_preference".into(), json!(p));
            }
            if typo {
                m.insert("graduaton_date".into(), json!("2024-05-30"));
            }
            Value::Object(m)
        })
}

fn registry() -> Registry {
    Registry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_then_evaluate_never_panics_and_decisions_are_consistent(
        value in record(),
        as_of in (2022i32..2026, 1u32..13, 1u32..29),
    ) {
        let registry = registry();
        let mut evaluator = Evaluator::default();
        let mut interpreted = Evaluator::interpreted(&Limits::default());
        let as_of = chrono::NaiveDate::from_ymd_opt(as_of.0, as_of.1, as_of.2).unwrap();
        match Student::from_value(value.clone()) {
            Err(e) => prop_assert!(!e.message.is_empty(), "an invalid record needs a message: {value}"),
            Ok(student) => {
                let prepared = Prepared::new(student);
                for v in registry.all_in_effect(as_of) {
                    let d = evaluator.evaluate(v, &prepared, as_of);
                    prop_assert_eq!(&d, &interpreted.evaluate(v, &prepared, as_of), "plan and rhai disagree on {}", value);
                    prop_assert!(d.is_consistent(), "inconsistent decision {d:?} for {value}");
                    prop_assert!(d.outcome != Outcome::Error, "a seed policy failed on a valid record: {d:?} {value}");
                    if d.outcome == Outcome::Eligible {
                        prop_assert!(d.missing.is_empty());
                    } else {
                        prop_assert!(!d.missing.is_empty(), "an ineligible decision must say what is missing: {d:?}");
                    }
                }
            }
        }
    }
}

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..6) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = rng.random(),
            2 => {
                let alphabet = b"{}[]\",:;\n\\0-e9";
                b.insert(i, alphabet[rng.random_range(0..alphabet.len())]);
            }
            3 => {
                b.remove(i);
            }
            4 => b.truncate(i),
            _ => {
                let j = rng.random_range(0..b.len());
                let chunk: Vec<u8> = b[i.min(j)..i.max(j)].to_vec();
                b.splice(i..i, chunk);
            }
        }
    }
    b
}

#[test]
fn fuzz_parser_and_importers_for_a_bounded_number_of_inputs() {
    let seeds: Vec<(ImportFormat, Vec<u8>)> = vec![
        (ImportFormat::JsonArray, serde_json::to_vec(&json!([
            {"student_id": "A-1", "graduation_date": "2024-05-30", "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned"}],
             "job_offers": [{"naics": "332710", "local": true}], "postsecondary": {"institution_id": "ivcc", "status": "enrolled"}},
            {"student_id": "A-2", "early_college_credits": [{"credit_hours": 3.0, "subject": "welding"}]}
        ])).unwrap()),
        (ImportFormat::Ndjson, b"{\"student_id\":\"N-1\",\"payee_preference\":\"institution\"}\n{\"student_id\":\"N-2\",\"work_based_learning\":[{\"kind\":\"internship\",\"hours\":120}]}\n".to_vec()),
        (ImportFormat::Csv, b"student_id,school_id,graduation_date,endorsements,job_offers,postsecondary_status\nC-1,d1,2024-05-30,manufacturing_engineering_technology_trades:earned,332710:true,enrolled\nC-2,=cmd,,none,none,\n".to_vec()),
    ];
    let registry = registry();
    let mut evaluator = Evaluator::default();
    let as_of = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
    let mut rng = StdRng::seed_from_u64(20261122);
    let (mut parsed, mut refused) = (0usize, 0usize);
    for _ in 0..20_000 {
        let (format, seed) = &seeds[rng.random_range(0..seeds.len())];
        let input = mutate(&mut rng, seed);
        match parse(*format, &input) {
            Ok(p) => {
                parsed += p.records.len();
                refused += p.rejected.len();
                for r in &p.rejected {
                    assert!(!r.error.is_empty());
                }
                for s in p.records {
                    let prepared = Prepared::new(s);
                    for v in registry.all_in_effect(as_of) {
                        assert!(evaluator.evaluate(v, &prepared, as_of).is_consistent());
                    }
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        if let Ok(text) = std::str::from_utf8(&input) {
            if let Err(e) = Student::from_json(text) {
                assert!(!e.message.is_empty());
            }
        }
    }
    // The loop must have exercised both sides.
    assert!(parsed > 1_000, "only {parsed} records parsed");
    assert!(refused > 1_000, "only {refused} rows refused");
}
