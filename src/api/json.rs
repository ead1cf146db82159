//! The preview response written straight into bytes: the hot path of `POST /v1/evaluations`.
//!
//! serde_json escapes every string byte by byte, keys included; a preview is ~2 KB of mostly
//! plain text, and that scan was a tenth of a preview's cost. This writer emits exactly what the
//! serde derives emit (same fields, order and skips; numbers and any string that needs escaping
//! still go through serde_json), which `writes_what_serde_writes` checks on every variant.
//! A field added to `Decision` and its parts must be added here too: that test fails until it is.

use chrono::NaiveDate;
use serde::Serialize;

use super::evaluations::EvaluationResponse;
use crate::policy::{Award, Decision, Missing, Payee, PayeeKind, Reason};

/// `value` as serde_json writes it (numbers, and strings that need escaping).
fn serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Whether JSON needs any byte of `s` escaped: a control character, a quote or a backslash.
/// Sixteen bytes at a time without early exits, so the compiler can vectorise the inner loop.
fn needs_escape(s: &[u8]) -> bool {
    let bad = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut chunks = s.chunks_exact(16);
    for chunk in &mut chunks {
        let mut hits = 0u8;
        for &b in chunk {
            hits |= u8::from(bad(b));
        }
        if hits != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| bad(b))
}

/// A JSON string: copied as is unless a byte needs escaping (then serde_json escapes it).
fn string(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde(out, s);
    }
}

/// `,"key":` (or `"key":` first in an object). Keys are our own plain identifiers.
fn key(out: &mut Vec<u8>, first: bool, k: &str) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn date(out: &mut Vec<u8>, d: NaiveDate) {
    out.push(b'"');
    out.extend_from_slice(crate::policy::engine::date_text(d).as_bytes());
    out.push(b'"');
}

fn list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    list(out, items, |out, s| string(out, s));
}

fn award(out: &mut Vec<u8>, a: &Award) {
    match a {
        Award::Scholarship { amount_cents } => {
            out.extend_from_slice(b"{\"kind\":\"scholarship\",\"amount_cents\":");
            serde(out, amount_cents);
        }
        Award::TuitionWaiver {
            credit_hours,
            institution_id,
        } => {
            out.extend_from_slice(b"{\"kind\":\"tuition_waiver\",\"credit_hours\":");
            serde(out, credit_hours);
            key(out, false, "institution_id");
            string(out, institution_id);
        }
    }
    out.push(b'}');
}

/// A reason or a missing item: `code`, a reason's `status`, `message`, and `fields` when any.
fn criterion(
    out: &mut Vec<u8>,
    code: &str,
    status: Option<&str>,
    message: &str,
    fields: &[String],
) {
    out.push(b'{');
    key(out, true, "code");
    string(out, code);
    if let Some(status) = status {
        key(out, false, "status");
        string(out, status);
    }
    key(out, false, "message");
    string(out, message);
    if !fields.is_empty() {
        key(out, false, "fields");
        strings(out, fields);
    }
    out.push(b'}');
}

fn reason(out: &mut Vec<u8>, r: &Reason) {
    criterion(out, &r.code, Some(r.status.as_str()), &r.message, &r.fields);
}

fn missing(out: &mut Vec<u8>, m: &Missing) {
    criterion(out, &m.code, None, &m.message, &m.fields);
}

fn payee(out: &mut Vec<u8>, p: &Payee) {
    out.push(b'{');
    key(out, true, "kind");
    string(
        out,
        match p.kind {
            PayeeKind::Student => "student",
            PayeeKind::Institution => "institution",
        },
    );
    if let Some(id) = &p.institution_id {
        key(out, false, "institution_id");
        string(out, id);
    }
    out.push(b'}');
}

/// One decision, as `serde_json::to_vec(decision)` would write it.
pub fn decision(out: &mut Vec<u8>, d: &Decision) {
    out.push(b'{');
    key(out, true, "policy_id");
    string(out, &d.policy_id);
    key(out, false, "version");
    serde(out, &d.version);
    key(out, false, "hash");
    string(out, &d.hash);
    key(out, false, "title");
    string(out, &d.title);
    key(out, false, "sponsor");
    string(out, &d.sponsor);
    key(out, false, "award");
    award(out, &d.award);
    key(out, false, "as_of");
    date(out, d.as_of);
    key(out, false, "outcome");
    string(out, d.outcome.as_str());
    key(out, false, "reasons");
    list(out, &d.reasons, reason);
    key(out, false, "missing");
    list(out, &d.missing, missing);
    if let Some(p) = &d.payee {
        key(out, false, "payee");
        payee(out, p);
    }
    if let Some(e) = &d.error {
        key(out, false, "error");
        string(out, e);
    }
    out.push(b'}');
}

/// The whole preview response, as `serde_json::to_vec(response)` would write it.
pub fn evaluation_response(r: &EvaluationResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 * (1 + r.decisions.len()));
    out.push(b'{');
    key(&mut out, true, "student_id");
    string(&mut out, &r.student_id);
    key(&mut out, false, "as_of");
    date(&mut out, r.as_of);
    key(&mut out, false, "decisions");
    list(&mut out, &r.decisions, decision);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Outcome, Status};

    fn sample(text: &str, date: NaiveDate) -> Vec<Decision> {
        let reason = |status, fields: Vec<String>| Reason {
            code: format!("code_{text}"),
            status,
            message: format!("message {text}"),
            fields,
        };
        let base = Decision {
            policy_id: format!("p-{text}"),
            version: 7,
            hash: "ab".repeat(32),
            title: format!("Title {text}"),
            sponsor: text.to_string(),
            award: Award::Scholarship {
                amount_cents: 50_000,
            },
            as_of: date,
            outcome: Outcome::Eligible,
            reasons: vec![reason(Status::Passed, vec![])],
            missing: vec![],
            payee: Some(Payee {
                kind: PayeeKind::Student,
                institution_id: None,
            }),
            error: None,
        };
        vec![
            base.clone(),
            Decision {
                award: Award::TuitionWaiver {
                    credit_hours: 3.0,
                    institution_id: text.to_string(),
                },
                payee: Some(Payee {
                    kind: PayeeKind::Institution,
                    institution_id: Some(text.to_string()),
                }),
                ..base.clone()
            },
            Decision {
                award: Award::TuitionWaiver {
                    credit_hours: 1.25e-7,
                    institution_id: String::new(),
                },
                outcome: Outcome::Ineligible,
                reasons: vec![
                    reason(Status::Failed, vec![]),
                    reason(Status::Unknown, vec![text.into(), "b.c".into()]),
                ],
                missing: vec![
                    Missing {
                        code: "m".into(),
                        message: text.into(),
                        fields: vec![],
                    },
                    Missing {
                        code: text.into(),
                        message: "m".into(),
                        fields: vec![text.into()],
                    },
                ],
                payee: None,
                ..base.clone()
            },
            Decision {
                version: u32::MAX,
                award: Award::Scholarship {
                    amount_cents: i64::MIN,
                },
                outcome: Outcome::Error,
                reasons: vec![],
                payee: None,
                error: Some(format!("policy script failed: {text}")),
                ..base
            },
        ]
    }

    #[test]
    fn writes_what_serde_writes() {
        let texts = [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "control \u{0} \u{1f} \n \t \r \u{7f}",
            "unicode é ü 漢字 🎓 \u{2028}",
        ];
        let dates = [
            NaiveDate::from_ymd_opt(2024, 6, 1),
            NaiveDate::from_ymd_opt(1, 1, 1),
            NaiveDate::from_ymd_opt(-5, 12, 31),
            NaiveDate::from_ymd_opt(12_345, 2, 3),
        ];
        for text in texts {
            for date in dates.into_iter().flatten() {
                let response = EvaluationResponse {
                    student_id: text.to_string(),
                    as_of: date,
                    decisions: sample(text, date),
                };
                let ours = evaluation_response(&response);
                let theirs = serde_json::to_vec(&response).unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs),
                    "for {text:?} on {date}"
                );
            }
        }
        let empty = EvaluationResponse {
            student_id: "s".into(),
            as_of: NaiveDate::MIN,
            decisions: vec![],
        };
        assert_eq!(
            evaluation_response(&empty),
            serde_json::to_vec(&empty).unwrap_or_default()
        );
    }
}
