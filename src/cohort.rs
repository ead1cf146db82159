//! A synthetic cohort of student records for demos, load tests and benchmarks.
//!
//! Calibrated loosely to the published figures of the STAMP manufacturing-pathway initiative:
//! 20 districts; endorsement course sequences of about 10 early-college credit hours (about 6 in
//! advanced manufacturing and machining, about 3 in welding, the rest CAD and engineering); a
//! minority of students with job offers; every optional field sometimes absent.

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const DISTRICTS: [&str; 20] = [
    "d204-metea-valley",
    "d211-palatine",
    "d214-wheeling",
    "d300-hampshire",
    "d303-st-charles-north",
    "d308-oswego-east",
    "d365u-romeoville",
    "d202-plainfield-central",
    "d86-hinsdale-central",
    "d99-downers-grove-south",
    "d230-andrew",
    "d210-lincoln-way-east",
    "d111-kankakee",
    "d120-la-salle-peru",
    "d115-ottawa-township",
    "d140-streator",
    "d219-niles-west",
    "d207-maine-south",
    "d113-highland-park",
    "d187-north-chicago",
];

const COLLEGES: [&str; 6] = ["ivcc", "jjc", "cod", "elgin", "harper", "niu"];

const AREAS: [(&str, u32); 7] = [
    ("manufacturing_engineering_technology_trades", 40),
    ("health_sciences_technology", 20),
    ("information_technology", 12),
    ("human_public_services", 10),
    ("finance_business_services", 8),
    ("agriculture_food_natural_resources", 6),
    ("arts_communications", 4),
];

const EMPLOYERS: [(&str, &str); 8] = [
    ("Acme Tool & Die", "332710"),
    ("Caterpillar", "333120"),
    ("Prairie Plastics", "326199"),
    ("Midwest Foods", "311999"),
    ("River Valley Builders", "236220"),
    ("Fox Valley Engineering", "541330"),
    ("Illinois Valley Health", "622110"),
    ("Northern Logistics", "484121"),
];

fn weighted<'a>(rng: &mut StdRng, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (item, w) in items {
        if pick < *w {
            return item;
        }
        pick -= w;
    }
    items[0].0
}

fn hours(rng: &mut StdRng, mean: f64) -> f64 {
    // Whole or half credit hours around the mean.
    let h: f64 = mean + rng.random_range(-1.5..1.5);
    (h.max(0.0) * 2.0).round() / 2.0
}

/// One synthetic record (as JSON; every record validates as a `Student`).
pub fn student(rng: &mut StdRng, index: u64) -> Value {
    let mut s = Map::new();
    s.insert("student_id".into(), json!(format!("IL-{index:07}")));
    if rng.random_bool(0.95) {
        s.insert(
            "school_id".into(),
            json!(DISTRICTS[rng.random_range(0..DISTRICTS.len())]),
        );
    }
    let year = rng.random_range(2022..=2025);
    let grad = NaiveDate::from_ymd_opt(year, 5, 20).unwrap_or_default()
        + Duration::days(rng.random_range(0..14));
    if rng.random_bool(0.9) {
        s.insert("graduation_date".into(), json!(grad.to_string()));
    }
    let area = weighted(rng, &AREAS);
    let mett = area == "manufacturing_engineering_technology_trades";
    if rng.random_bool(0.92) {
        let earned = rng.random_bool(0.8);
        let mut e = json!({"area": area, "status": if earned { "earned" } else { "in_progress" }});
        if earned && rng.random_bool(0.7) {
            e["earned_on"] = json!(grad.to_string());
        }
        s.insert("endorsements".into(), json!([e]));
    }
    if rng.random_bool(0.85) {
        let college = COLLEGES[rng.random_range(0..2)];
        let mut credits = Vec::new();
        if mett {
            credits.push(json!({"course": "MFG 101", "subject": "machining", "credit_hours": hours(rng, 3.0), "institution_id": college}));
            credits.push(json!({"course": "MFG 110", "subject": "advanced_manufacturing", "credit_hours": hours(rng, 3.0), "institution_id": college}));
            credits.push(json!({"course": "WLD 101", "subject": "welding", "credit_hours": hours(rng, 3.0), "institution_id": college}));
            if rng.random_bool(0.5) {
                credits.push(json!({"course": "CAD 100", "subject": "cad", "credit_hours": 1.0, "institution_id": college}));
            } else {
                credits.push(json!({"course": "EGR 100", "subject": "engineering", "credit_hours": 1.0, "institution_id": college}));
            }
        } else {
            credits.push(
                json!({"course": "GEN 101", "subject": area, "credit_hours": hours(rng, 6.0)}),
            );
        }
        s.insert("early_college_credits".into(), json!(credits));
    }
    if rng.random_bool(0.8) {
        let mut wbl = vec![
            json!({"kind": "career_exploration", "hours": 4}),
            json!({"kind": "team_based_challenge", "hours": 10}),
        ];
        if rng.random_bool(0.7) {
            wbl.push(json!({"kind": "career_development_experience", "hours": 60}));
        }
        if rng.random_bool(0.2) {
            let (employer, _) = EMPLOYERS[rng.random_range(0..EMPLOYERS.len())];
            wbl.push(json!({"kind": "internship", "hours": rng.random_range(80..240), "employer": employer}));
        }
        s.insert("work_based_learning".into(), json!(wbl));
    }
    // About one in four has a job offer; a manufacturing pathway makes a factory offer likelier.
    if rng.random_bool(0.6) {
        let mut offers = Vec::new();
        if rng.random_bool(if mett { 0.35 } else { 0.15 }) {
            let pool = if mett { 4 } else { EMPLOYERS.len() };
            let (employer, naics) = EMPLOYERS[rng.random_range(0..pool)];
            let mut o = json!({"employer": employer, "naics": naics, "offered_on": (grad - Duration::days(40)).to_string()});
            if rng.random_bool(0.9) {
                o["local"] = json!(rng.random_bool(0.8));
            }
            offers.push(o);
        }
        s.insert("job_offers".into(), json!(offers));
    }
    if rng.random_bool(0.85) {
        let status = ["applied", "admitted", "enrolled"][rng.random_range(0..3)];
        let mut p = json!({"status": status, "term": format!("{year}FA")});
        if rng.random_bool(0.95) {
            p["institution_id"] = json!(COLLEGES[rng.random_range(0..COLLEGES.len())]);
        }
        s.insert("postsecondary".into(), p);
    }
    if rng.random_bool(0.7) {
        let pref = if rng.random_bool(0.2) {
            "institution"
        } else {
            "student"
        };
        s.insert("payee_preference".into(), json!(pref));
    }
    if rng.random_bool(0.75) {
        let gender = ["female", "male", "nonbinary"][rng.random_range(0..3)];
        let race = [
            "white",
            "hispanic_latino",
            "black_african_american",
            "asian",
            "two_or_more",
        ][rng.random_range(0..5)];
        s.insert(
            "demographics".into(),
            json!({"gender": gender, "race_ethnicity": [race]}),
        );
    }
    Value::Object(s)
}

/// `count` records, the same for the same seed.
/// The endorsement's requirements that the rest of a record does not show (the PWR Act):
/// students who earned it completed them all; students in progress part of them (each field
/// sometimes absent). Drawn from a generator of its own per student, so the rest of each
/// record is what it was before these fields existed.
fn pathway(s: &mut Value, seed: u64, index: u64) {
    let mut rng =
        StdRng::seed_from_u64(seed.rotate_left(32) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let status = s["endorsements"][0]["status"].as_str().map(str::to_string);
    let earned = status.as_deref() == Some("earned");
    if status.is_none() && rng.random_bool(0.5) {
        return;
    }
    let mut p = Map::new();
    let flag = |p: &mut Map<String, Value>, rng: &mut StdRng, name: &str, likely: f64| {
        if rng.random_bool(0.9) {
            p.insert(name.into(), json!(earned || rng.random_bool(likely)));
        }
    };
    flag(&mut p, &mut rng, "individualized_learning_plan", 0.85);
    if rng.random_bool(0.9) {
        let years = if earned { 2 } else { rng.random_range(1..=2) };
        p.insert("career_coursework_years".into(), json!(years));
    }
    flag(&mut p, &mut rng, "professional_skills_assessment", 0.4);
    flag(&mut p, &mut rng, "reading_ready", 0.8);
    flag(&mut p, &mut rng, "math_ready", 0.7);
    s["pathway"] = Value::Object(p);
    // Earners completed two explorations and two team-based challenges; in progress, often one.
    if let Some(list) = s["work_based_learning"].as_array_mut() {
        if earned || rng.random_bool(0.5) {
            list.push(json!({"kind": "career_exploration", "hours": 4}));
            list.push(json!({"kind": "team_based_challenge", "hours": 10}));
        }
    }
}

pub fn generate(count: u64, seed: u64) -> impl Iterator<Item = Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    (1..=count).map(move |i| {
        let mut s = student(&mut rng, i);
        pathway(&mut s, seed, i);
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Student;

    #[test]
    fn is_deterministic_valid_and_mixed() {
        let a: Vec<Value> = generate(300, 7).collect();
        let b: Vec<Value> = generate(300, 7).collect();
        assert_eq!(a, b);
        assert_ne!(a, generate(300, 8).collect::<Vec<_>>());
        let students: Vec<Student> = a
            .iter()
            .map(|v| Student::from_value(v.clone()).unwrap())
            .collect();
        let count = |f: &dyn Fn(&Student) -> bool| students.iter().filter(|s| f(s)).count();
        assert!(count(&|s| s.endorsements.is_none()) > 0);
        assert!(count(&|s| s.postsecondary.is_none()) > 0);
        assert!(count(&|s| s.job_offers.as_ref().is_some_and(|o| !o.is_empty())) > 10);
        assert!(count(&|s| s.job_offers.as_ref().is_some_and(|o| !o.is_empty())) < 150);
        let schools: std::collections::HashSet<_> = students
            .iter()
            .filter_map(|s| s.school_id.clone())
            .collect();
        assert_eq!(schools.len(), 20);
        let in_progress = count(&|s| {
            s.endorsements.as_ref().is_some_and(|e| {
                e.iter()
                    .any(|e| e.status == crate::policy::student::EndorsementStatus::InProgress)
            })
        });
        assert!(in_progress > 0);
    }

    #[test]
    fn mett_credit_hours_average_about_ten() {
        let students: Vec<Student> = generate(2000, 1)
            .map(|v| Student::from_value(v).unwrap())
            .filter(|s| {
                s.endorsements.as_ref().is_some_and(|e| {
                    e.iter().any(|e| {
                        e.area == crate::policy::student::EndorsementArea::ManufacturingEngineeringTechnologyTrades
                    })
                })
            })
            .filter(|s| s.early_college_credits.is_some())
            .collect();
        let total: f64 = students
            .iter()
            .flat_map(|s| s.early_college_credits.iter().flatten())
            .map(|c| c.credit_hours)
            .sum();
        let mean = total / students.len() as f64;
        assert!((9.0..=11.0).contains(&mean), "mean {mean}");
    }
}
