//! Reading many student records at once: a JSON array, NDJSON, or CSV. Each bad row is
//! reported with its line and reason; the good rows go on.
//!
//! CSV columns (header row required, any order, unknown columns refused; an empty cell means
//! "not on record", the word `none` in a list column means "known to be empty"):
//!
//! | column | content |
//! |---|---|
//! | `student_id` | required |
//! | `school_id`, `graduation_date`, `payee_preference` | as in JSON |
//! | `endorsements` | `area:status[:earned_on]`, several separated by `;` |
//! | `early_college_credits` | `subject:credit_hours[:institution_id[:course]]`, `;`-separated |
//! | `work_based_learning` | `kind[:hours[:employer[:intensive]]]` (the word `intensive` marks an intensive career exploration), `;`-separated |
//! | `job_offers` | `naics:local[:offered_on[:employer]]` (local `true`, `false` or empty), `;`-separated |
//! | `postsecondary_institution_id`, `postsecondary_status`, `postsecondary_term` | the `postsecondary` object |
//! | `gender`, `race_ethnicity` | `demographics`; race/ethnicity values `;`-separated |
//! | `individualized_learning_plan`, `career_coursework_years`, `professional_skills_assessment`, `reading_ready`, `math_ready` | the `pathway` object (`true`/`false`, years a number) |
//! | `attributes` | a JSON object |

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::ServiceError;
use crate::policy::Student;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    JsonArray,
    Ndjson,
    Csv,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// 1-based line of the row in the body.
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_id: Option<String>,
    /// The offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Student>,
    pub rejected: Vec<RejectedRow>,
}

pub const CSV_COLUMNS: [&str; 19] = [
    "student_id",
    "school_id",
    "graduation_date",
    "payee_preference",
    "endorsements",
    "early_college_credits",
    "work_based_learning",
    "job_offers",
    "postsecondary_institution_id",
    "postsecondary_status",
    "postsecondary_term",
    "gender",
    "race_ethnicity",
    "individualized_learning_plan",
    "career_coursework_years",
    "professional_skills_assessment",
    "reading_ready",
    "math_ready",
    // A JSON object, for free-form extras.
    "attributes",
];

impl Parsed {
    fn push(&mut self, line: usize, value: Result<Value, String>) {
        let value = match value {
            Ok(v) => v,
            Err(error) => {
                self.rejected.push(RejectedRow {
                    line,
                    student_id: None,
                    field: None,
                    error,
                });
                return;
            }
        };
        let student_id = value
            .get("student_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        match Student::from_value(value) {
            Ok(s) => self.records.push(s),
            Err(e) => self.rejected.push(RejectedRow {
                line,
                student_id,
                field: (!e.field.is_empty()).then(|| e.field.clone()),
                error: e.message,
            }),
        }
    }
}

fn line_of(body: &str, offset: usize) -> usize {
    body.as_bytes()[..offset.min(body.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub fn parse(format: ImportFormat, body: &[u8]) -> Result<Parsed, ServiceError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ServiceError::invalid(
            "body",
            format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let mut parsed = Parsed::default();
    match format {
        ImportFormat::JsonArray => {
            let items: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(text).map_err(|e| {
                    ServiceError::invalid("body", format!("is not a JSON array of records: {e}"))
                })?;
            for raw in items {
                let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                let value = serde_json::from_str::<Value>(raw.get()).map_err(|e| e.to_string());
                parsed.push(line_of(text, offset), value);
            }
        }
        ImportFormat::Ndjson => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value =
                    serde_json::from_str::<Value>(line).map_err(|e| format!("invalid JSON: {e}"));
                parsed.push(i + 1, value);
            }
        }
        ImportFormat::Csv => parse_csv(text, &mut parsed)?,
    }
    Ok(parsed)
}

fn parse_csv(text: &str, parsed: &mut Parsed) -> Result<(), ServiceError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ServiceError::invalid("body", format!("CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !CSV_COLUMNS.contains(&h.as_str())) {
        return Err(ServiceError::invalid(
            "body",
            format!(
                "unknown CSV column {unknown:?}; columns are {}",
                CSV_COLUMNS.join(", ")
            ),
        ));
    }
    if !headers.iter().any(|h| h == "student_id") {
        return Err(ServiceError::invalid(
            "body",
            "the CSV header has no student_id column",
        ));
    }
    for row in reader.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                parsed.push(line, Err(format!("unreadable CSV row: {e}")));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line() as usize);
        if row.len() != headers.len() {
            parsed.push(
                line,
                Err(format!(
                    "has {} cells, the header has {}",
                    row.len(),
                    headers.len()
                )),
            );
            continue;
        }
        let cells: Vec<(&str, &str)> = headers.iter().map(String::as_str).zip(row.iter()).collect();
        parsed.push(line, csv_row(&cells));
    }
    Ok(())
}

fn list<T>(cell: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Option<Vec<T>>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    if cell.eq_ignore_ascii_case("none") {
        return Ok(Some(Vec::new()));
    }
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(item)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn number(field: &str, s: &str) -> Result<Value, String> {
    s.parse::<f64>()
        .map(|n| json!(n))
        .map_err(|_| format!("{field}: {s:?} is not a number"))
}

fn csv_row(cells: &[(&str, &str)]) -> Result<Value, String> {
    let mut m = Map::new();
    let mut post = Map::new();
    let mut demo = Map::new();
    let mut pathway = Map::new();
    for &(column, cell) in cells {
        if cell.is_empty() {
            continue;
        }
        let value = match column {
            "student_id" | "school_id" | "graduation_date" | "payee_preference" => json!(cell),
            "endorsements" => json!(list(cell, |e| {
                let mut p = e.splitn(3, ':');
                let mut o = json!({"area": p.next().unwrap_or_default(), "status": p.next().unwrap_or_default()});
                if let Some(d) = p.next() {
                    o["earned_on"] = json!(d);
                }
                Ok(o)
            })?),
            "early_college_credits" => json!(list(cell, |e| {
                let mut p = e.splitn(4, ':');
                let subject = p.next().unwrap_or_default();
                let hours = number(
                    "early_college_credits.credit_hours",
                    p.next().unwrap_or_default(),
                )?;
                let mut o = json!({"subject": subject, "credit_hours": hours});
                if let Some(i) = p.next().filter(|s| !s.is_empty()) {
                    o["institution_id"] = json!(i);
                }
                if let Some(c) = p.next().filter(|s| !s.is_empty()) {
                    o["course"] = json!(c);
                }
                Ok(o)
            })?),
            "work_based_learning" => json!(list(cell, |e| {
                let mut p = e.splitn(4, ':');
                let mut o = json!({"kind": p.next().unwrap_or_default()});
                if let Some(h) = p.next().filter(|s| !s.is_empty()) {
                    o["hours"] = number("work_based_learning.hours", h)?;
                }
                if let Some(emp) = p.next().filter(|s| !s.is_empty()) {
                    o["employer"] = json!(emp);
                }
                match p.next() {
                    None | Some("") => {}
                    Some("intensive") => o["intensive"] = json!(true),
                    Some(other) => {
                        return Err(format!(
                            "work_based_learning: {other:?} is not the word intensive"
                        ))
                    }
                }
                Ok(o)
            })?),
            "job_offers" => json!(list(cell, |e| {
                let mut p = e.splitn(4, ':');
                let mut o = json!({});
                if let Some(n) = p.next().filter(|s| !s.is_empty()) {
                    o["naics"] = json!(n);
                }
                match p.next().unwrap_or_default() {
                    "" => {}
                    "true" => o["local"] = json!(true),
                    "false" => o["local"] = json!(false),
                    other => {
                        return Err(format!("job_offers.local: {other:?} is not true or false"))
                    }
                }
                if let Some(d) = p.next().filter(|s| !s.is_empty()) {
                    o["offered_on"] = json!(d);
                }
                if let Some(emp) = p.next().filter(|s| !s.is_empty()) {
                    o["employer"] = json!(emp);
                }
                Ok(o)
            })?),
            "postsecondary_institution_id" => {
                post.insert("institution_id".into(), json!(cell));
                continue;
            }
            "postsecondary_status" => {
                post.insert("status".into(), json!(cell));
                continue;
            }
            "postsecondary_term" => {
                post.insert("term".into(), json!(cell));
                continue;
            }
            "gender" => {
                demo.insert("gender".into(), json!(cell));
                continue;
            }
            "individualized_learning_plan"
            | "professional_skills_assessment"
            | "reading_ready"
            | "math_ready" => {
                let flag = match cell {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("{column}: {other:?} is not true or false")),
                };
                pathway.insert(column.into(), json!(flag));
                continue;
            }
            "career_coursework_years" => {
                pathway.insert(column.into(), number("career_coursework_years", cell)?);
                continue;
            }
            "race_ethnicity" => {
                demo.insert(
                    "race_ethnicity".into(),
                    json!(list(cell, |r| Ok(r.to_string()))?),
                );
                continue;
            }
            "attributes" => serde_json::from_str::<Value>(cell)
                .map_err(|e| format!("attributes: not a JSON object: {e}"))?,
            _ => continue,
        };
        m.insert(column.to_string(), value);
    }
    if !post.is_empty() {
        m.insert("postsecondary".into(), Value::Object(post));
    }
    if !demo.is_empty() {
        m.insert("demographics".into(), Value::Object(demo));
    }
    if !pathway.is_empty() {
        m.insert("pathway".into(), Value::Object(pathway));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_array_rows_carry_their_lines() {
        let body = "[\n{\"student_id\":\"a\"},\n{\"student_id\":\"b c\"},\n{\"student_id\":\"d\",\"x\":1}\n]";
        let p = parse(ImportFormat::JsonArray, body.as_bytes()).unwrap();
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].line, 3);
        assert_eq!(p.rejected[0].field.as_deref(), Some("student_id"));
        assert_eq!(p.rejected[1].line, 4);
        assert!(p.rejected[1].error.contains('x'));
    }

    #[test]
    fn ndjson_skips_blank_lines_and_reports_bad_ones() {
        let body = "{\"student_id\":\"a\"}\n\n{oops}\n{\"student_id\":\"b\"}\n";
        let p = parse(ImportFormat::Ndjson, body.as_bytes()).unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.rejected[0].line, 3);
    }

    #[test]
    fn csv_reads_nested_lists_and_reports_ragged_rows() {
        let body = "student_id,graduation_date,endorsements,job_offers,postsecondary_institution_id,postsecondary_status,race_ethnicity\n\
            IL-1,2024-05-30,manufacturing_engineering_technology_trades:earned:2024-05-30,332710:true:2024-04-15:Acme: Tool,ivcc,enrolled,white;asian\n\
            IL-2,,none,none,,,\n\
            IL-3,2024-05-30\n\
            IL-4,2024-13-01,,,,,\n";
        let p = parse(ImportFormat::Csv, body.as_bytes()).unwrap();
        assert_eq!(p.records.len(), 2, "{:?}", p.rejected);
        let s = &p.records[0];
        assert_eq!(
            s.job_offers.as_ref().unwrap()[0].employer.as_deref(),
            Some("Acme: Tool")
        );
        assert_eq!(s.job_offers.as_ref().unwrap()[0].local, Some(true));
        assert_eq!(
            s.demographics
                .as_ref()
                .unwrap()
                .race_ethnicity
                .as_ref()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(p.records[1].endorsements, Some(vec![]));
        assert!(p.records[1].graduation_date.is_none());
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].line, 4);
        assert!(p.rejected[0].error.contains("cells"));
        assert_eq!(p.rejected[1].line, 5);
        assert_eq!(p.rejected[1].field.as_deref(), Some("graduation_date"));
    }

    #[test]
    fn csv_pathway_columns_and_intensive_exploration() {
        let body = "student_id,work_based_learning,individualized_learning_plan,career_coursework_years,math_ready\n\
                    p1,career_exploration:6::intensive;internship:60:Rivian,true,2,false\n\
                    p2,career_exploration::Acme:sometimes,,,\n\
                    p3,,maybe,,\n";
        let p = parse(ImportFormat::Csv, body.as_bytes()).unwrap();
        assert_eq!(p.records.len(), 1, "{:?}", p.rejected);
        let r = &p.records[0];
        let path = r.pathway.as_ref().unwrap();
        assert_eq!(path.individualized_learning_plan, Some(true));
        assert_eq!(path.career_coursework_years, Some(2.0));
        assert_eq!(path.math_ready, Some(false));
        assert_eq!(path.reading_ready, None);
        let wbl = r.work_based_learning.as_ref().unwrap();
        assert_eq!(wbl[0].intensive, Some(true));
        assert_eq!(wbl[1].intensive, None);
        assert_eq!(p.rejected.len(), 2);
        assert!(
            p.rejected[0].error.contains("intensive"),
            "{:?}",
            p.rejected
        );
        assert!(
            p.rejected[1].error.contains("true or false"),
            "{:?}",
            p.rejected
        );
    }

    #[test]
    fn csv_refuses_unknown_columns() {
        assert!(parse(ImportFormat::Csv, b"student_id,gpa\nx,4\n").is_err());
        assert!(parse(ImportFormat::Csv, b"school_id\nx\n").is_err());
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert!(parse(ImportFormat::Ndjson, b"{\"student_id\":\"\xff\"}").is_err());
    }
}
