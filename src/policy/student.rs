//! The student record: parsed with serde, validated on parse, so nothing downstream sees bad data.
//!
//! Every optional part of the record is an `Option`: "absent" (we do not know) and "empty"
//! (we know there is none) are different facts, and the helpers policies use keep them apart.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Limits on a record's size: a record is data about one student, never a payload.
pub const MAX_LIST_ITEMS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 256;
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// Why a record was refused: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RecordError {
    /// Dotted path of the offending field (`endorsements[0].area`), empty for the whole record.
    pub field: String,
    /// A sentence naming the field and the problem.
    pub message: String,
    /// 1-based line and column of a JSON syntax error, when there is one.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl RecordError {
    /// The same error for a record found at `prefix` inside a larger document
    /// (`student` + `graduation_date` -> `student.graduation_date`).
    pub fn nested(&self, prefix: &str) -> Self {
        let (field, message) = if self.field.is_empty() {
            (prefix.to_string(), format!("{prefix}: {}", self.message))
        } else {
            (
                format!("{prefix}.{}", self.field),
                format!("{prefix}.{}", self.message),
            )
        };
        Self {
            field,
            message,
            line: self.line,
            column: self.column,
        }
    }

    fn field(field: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            message: format!("{field}: {problem}"),
            field,
            line: None,
            column: None,
        }
    }
}

/// CCPE endorsement areas (Illinois identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndorsementArea {
    AgricultureFoodNaturalResources,
    ArtsCommunications,
    FinanceBusinessServices,
    HealthSciencesTechnology,
    HumanPublicServices,
    InformationTechnology,
    ManufacturingEngineeringTechnologyTrades,
}

impl EndorsementArea {
    pub const ALL: [EndorsementArea; 7] = [
        Self::AgricultureFoodNaturalResources,
        Self::ArtsCommunications,
        Self::FinanceBusinessServices,
        Self::HealthSciencesTechnology,
        Self::HumanPublicServices,
        Self::InformationTechnology,
        Self::ManufacturingEngineeringTechnologyTrades,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgricultureFoodNaturalResources => "agriculture_food_natural_resources",
            Self::ArtsCommunications => "arts_communications",
            Self::FinanceBusinessServices => "finance_business_services",
            Self::HealthSciencesTechnology => "health_sciences_technology",
            Self::HumanPublicServices => "human_public_services",
            Self::InformationTechnology => "information_technology",
            Self::ManufacturingEngineeringTechnologyTrades => {
                "manufacturing_engineering_technology_trades"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndorsementStatus {
    Earned,
    InProgress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostsecondaryStatus {
    Applied,
    Admitted,
    Enrolled,
}

impl PostsecondaryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Admitted => "admitted",
            Self::Enrolled => "enrolled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayeePreference {
    Student,
    Institution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkBasedLearningKind {
    CareerExploration,
    TeamBasedChallenge,
    CareerDevelopmentExperience,
    MicroInternship,
    Internship,
    Apprenticeship,
}

impl WorkBasedLearningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CareerExploration => "career_exploration",
            Self::TeamBasedChallenge => "team_based_challenge",
            Self::CareerDevelopmentExperience => "career_development_experience",
            Self::MicroInternship => "micro_internship",
            Self::Internship => "internship",
            Self::Apprenticeship => "apprenticeship",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Endorsement {
    pub area: EndorsementArea,
    pub status: EndorsementStatus,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_date"
    )]
    #[schema(value_type = Option<String>, format = Date)]
    pub earned_on: Option<NaiveDate>,
}
crate::objects_only!(Endorsement, Serialize);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct EarlyCollegeCredit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub course: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub subject: Option<String>,
    #[schema(minimum = 0, maximum = 10000)]
    pub credit_hours: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub institution_id: Option<String>,
}
crate::objects_only!(EarlyCollegeCredit, Serialize);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct WorkBasedLearning {
    pub kind: WorkBasedLearningKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 10000)]
    pub hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub employer: Option<String>,
    /// For career exploration: an intensive experience, which counts for two activities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensive: Option<bool>,
}
crate::objects_only!(WorkBasedLearning, Serialize);

/// What the endorsement's requirements need that the lists of a record do not show (the
/// Postsecondary and Workforce Readiness Act). Every field optional: absent is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Pathway {
    /// The student has an individualized learning plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub individualized_learning_plan: Option<bool>,
    /// Years of career-focused coursework completed in the endorsement's area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 12)]
    pub career_coursework_years: Option<f64>,
    /// The supervised career development experience ended in a professional skills assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professional_skills_assessment: Option<bool>,
    /// Ready for non-remedial coursework in reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_ready: Option<bool>,
    /// Ready for non-remedial coursework in math.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub math_ready: Option<bool>,
}
crate::objects_only!(Pathway, Serialize);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct JobOffer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub employer: Option<String>,
    /// NAICS code, 2 to 6 digits (manufacturing is 31-33).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{2,6}$")]
    pub naics: Option<String>,
    /// Whether the employer is local. Absent means unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_date"
    )]
    #[schema(value_type = Option<String>, format = Date)]
    pub offered_on: Option<NaiveDate>,
}
crate::objects_only!(JobOffer, Serialize);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Postsecondary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub institution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PostsecondaryStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub term: Option<String>,
}
crate::objects_only!(Postsecondary, Serialize);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Demographics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200, schema_with = race_ethnicity_schema)]
    pub race_ethnicity: Option<Vec<String>>,
}
crate::objects_only!(Demographics, Serialize);

/// One student's record. Only `student_id` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Student {
    /// 1-64 characters of `A-Za-z0-9._-`.
    #[schema(example = "IL-000123", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub student_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub school_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_date"
    )]
    #[schema(value_type = Option<String>, format = Date)]
    pub graduation_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub endorsements: Option<Vec<Endorsement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub early_college_credits: Option<Vec<EarlyCollegeCredit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub work_based_learning: Option<Vec<WorkBasedLearning>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub job_offers: Option<Vec<JobOffer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postsecondary: Option<Postsecondary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee_preference: Option<PayeePreference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demographics: Option<Demographics>,
    /// The endorsement's requirements not shown by the lists above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pathway: Option<Pathway>,
    /// Free-form extras; policies may read them, validation does not interpret them. At most
    /// 16 KiB as JSON (a size OpenAPI cannot state).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}
crate::objects_only!(Student, Serialize);

/// `race_ethnicity`'s schema: up to 200 free-form values, each like any other text field.
fn race_ethnicity_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_TEXT_CHARS))
                .pattern(Some(TEXT_PATTERN)),
        )
        .max_items(Some(MAX_LIST_ITEMS))
        .build()
}

/// What a text field may hold, as an OpenAPI pattern: no control characters.
pub const TEXT_PATTERN: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";

/// `YYYY-MM-DD` read without chrono's general parser (records and scripts hold many dates).
pub fn fast_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// A date field: `YYYY-MM-DD` the fast way, anything else through chrono's parser, so what is
/// accepted and every error message stay chrono's own.
struct Date(NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Date;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a formatted date string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Date, E> {
                match fast_date(v) {
                    Some(d) => Ok(Date(d)),
                    None => v.parse().map(Date).map_err(E::custom),
                }
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// `Option<NaiveDate>` through [`Date`].
pub fn optional_date<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDate>, D::Error> {
    Ok(Option::<Date>::deserialize(d)?.map(|d| d.0))
}

/// Checks an identifier: 1-64 characters of `A-Za-z0-9._-`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Student {
    /// Parses and validates a record from JSON text.
    pub fn from_json(text: &str) -> Result<Self, RecordError> {
        // The plain parser first: tracking the path costs as much again, and is only needed to
        // name the field of a record that fails.
        let student: Student = match serde_json::from_str(text) {
            Ok(s) => s,
            Err(_) => {
                let de = &mut serde_json::Deserializer::from_str(text);
                let err = match serde_path_to_error::deserialize::<_, Student>(de) {
                    Err(e) => from_serde_error(e),
                    // Cannot happen (the plain parse failed); refuse rather than guess.
                    Ok(_) => RecordError::field("", "invalid record"),
                };
                return Err(err);
            }
        };
        student.validate()?;
        Ok(student)
    }

    /// Parses and validates a record from an already-parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, RecordError> {
        let student: Student = serde_path_to_error::deserialize(value).map_err(from_serde_error)?;
        student.validate()?;
        Ok(student)
    }

    /// Checks what serde's types cannot: id shapes, signs, NAICS codes, sizes. Field names are
    /// only formatted for a failure (every preview validates its record).
    pub fn validate(&self) -> Result<(), RecordError> {
        if !is_valid_id(&self.student_id) {
            return Err(RecordError::field(
                "student_id",
                "must be 1-64 characters of A-Za-z0-9._-",
            ));
        }
        let named = |field: &'static str| move |message: String| RecordError::field(field, message);
        check_text(self.school_id.as_deref()).map_err(named("school_id"))?;
        if let Some(list) = &self.endorsements {
            check_len(list.len()).map_err(named("endorsements"))?;
        }
        if let Some(list) = &self.early_college_credits {
            check_len(list.len()).map_err(named("early_college_credits"))?;
            for (i, c) in list.iter().enumerate() {
                let at = |f| item_field("early_college_credits", i, f);
                check_hours(c.credit_hours).map_err(at("credit_hours"))?;
                check_text(c.course.as_deref()).map_err(at("course"))?;
                check_text(c.subject.as_deref()).map_err(at("subject"))?;
                check_text(c.institution_id.as_deref()).map_err(at("institution_id"))?;
            }
        }
        if let Some(list) = &self.work_based_learning {
            check_len(list.len()).map_err(named("work_based_learning"))?;
            for (i, w) in list.iter().enumerate() {
                let at = |f| item_field("work_based_learning", i, f);
                if let Some(h) = w.hours {
                    check_hours(h).map_err(at("hours"))?;
                }
                check_text(w.employer.as_deref()).map_err(at("employer"))?;
            }
        }
        if let Some(list) = &self.job_offers {
            check_len(list.len()).map_err(named("job_offers"))?;
            for (i, o) in list.iter().enumerate() {
                let at = |f| item_field("job_offers", i, f);
                if let Some(code) = &o.naics {
                    if !(2..=6).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(at("naics")(format!(
                            "{code:?} is not a NAICS code (2 to 6 digits)"
                        )));
                    }
                }
                check_text(o.employer.as_deref()).map_err(at("employer"))?;
            }
        }
        if let Some(p) = &self.postsecondary {
            check_text(p.institution_id.as_deref())
                .map_err(named("postsecondary.institution_id"))?;
            check_text(p.term.as_deref()).map_err(named("postsecondary.term"))?;
        }
        if let Some(years) = self
            .pathway
            .as_ref()
            .and_then(|p| p.career_coursework_years)
        {
            if !years.is_finite() || !(0.0..=12.0).contains(&years) {
                return Err(RecordError::field(
                    "pathway.career_coursework_years",
                    format!("{years} is not a number of years from 0 to 12"),
                ));
            }
        }
        if let Some(d) = &self.demographics {
            check_text(d.gender.as_deref()).map_err(named("demographics.gender"))?;
            if let Some(list) = &d.race_ethnicity {
                check_len(list.len()).map_err(named("demographics.race_ethnicity"))?;
                for (i, r) in list.iter().enumerate() {
                    check_text(Some(r)).map_err(|m| {
                        RecordError::field(format!("demographics.race_ethnicity[{i}]"), m)
                    })?;
                }
            }
        }
        if !self.attributes.is_empty() {
            let size = serde_json::to_vec(&self.attributes).map_or(usize::MAX, |v| v.len());
            if size > MAX_ATTRIBUTES_BYTES {
                return Err(RecordError::field(
                    "attributes",
                    format!("is {size} bytes; at most {MAX_ATTRIBUTES_BYTES} are allowed"),
                ));
            }
        }
        Ok(())
    }
}

/// Names a field of a list item (`job_offers[2].employer`) in an error, formatting the name
/// only when there is an error.
fn item_field(list: &'static str, i: usize, f: &'static str) -> impl FnOnce(String) -> RecordError {
    move |message| RecordError::field(format!("{list}[{i}].{f}"), message)
}

fn check_len(len: usize) -> Result<(), String> {
    if len > MAX_LIST_ITEMS {
        return Err(format!(
            "has {len} items; at most {MAX_LIST_ITEMS} are allowed"
        ));
    }
    Ok(())
}

/// Whether every byte is printable ASCII (no early exit, so the loop vectorises).
fn printable_ascii(v: &str) -> bool {
    v.bytes().fold(true, |ok, b| ok & (0x20..0x7f).contains(&b))
}

fn check_text(value: Option<&str>) -> Result<(), String> {
    match value {
        // Byte length bounds the character count: count only when it could exceed the limit.
        Some(v) if v.len() > MAX_TEXT_CHARS && v.chars().count() > MAX_TEXT_CHARS => {
            Err(format!("is longer than {MAX_TEXT_CHARS} characters"))
        }
        // Printable ASCII (the usual case) is checked without decoding characters.
        Some(v) if !printable_ascii(v) && v.chars().any(char::is_control) => {
            Err("must not contain control characters".into())
        }
        _ => Ok(()),
    }
}

fn check_hours(hours: f64) -> Result<(), String> {
    if !hours.is_finite() || hours < 0.0 {
        return Err(format!(
            "must be a non-negative number of hours, got {hours}"
        ));
    }
    if hours > 10_000.0 {
        return Err(format!("{hours} hours is not plausible (at most 10000)"));
    }
    Ok(())
}

fn from_serde_error(err: serde_path_to_error::Error<serde_json::Error>) -> RecordError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let syntax = matches!(
        inner.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    );
    let (line, column) = if inner.line() == 0 {
        (None, None)
    } else {
        (Some(inner.line()), Some(inner.column()))
    };
    // serde_json appends " at line X column Y" itself; keep the sentence clean and carry the
    // location in fields of its own.
    let text = inner.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if !syntax && (path == "." || path == "?") {
        return RecordError {
            field: String::new(),
            message: text,
            line: None,
            column: None,
        };
    }
    if syntax {
        let message = match line {
            Some(l) => format!(
                "invalid JSON at line {l} column {}: {text}",
                column.unwrap_or(0)
            ),
            None => format!("invalid JSON: {text}"),
        };
        return RecordError {
            field: String::new(),
            message,
            line,
            column,
        };
    }
    RecordError {
        message: format!("{path}: {text}"),
        field: path,
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
      "student_id": "IL-000123",
      "school_id": "d204-metea-valley",
      "graduation_date": "2024-05-30",
      "endorsements": [
        {"area": "manufacturing_engineering_technology_trades", "status": "earned", "earned_on": "2024-05-30"}
      ],
      "early_college_credits": [
        {"course": "MFG 101", "subject": "machining", "credit_hours": 3.0, "institution_id": "jjc"}
      ],
      "work_based_learning": [
        {"kind": "internship", "hours": 120, "employer": "Acme Tool & Die"}
      ],
      "job_offers": [
        {"employer": "Acme Tool & Die", "naics": "332710", "local": true, "offered_on": "2024-04-15"}
      ],
      "postsecondary": {"institution_id": "ivcc", "status": "enrolled", "term": "2024FA"},
      "payee_preference": "student",
      "demographics": {"gender": "female", "race_ethnicity": ["hispanic_latino"]},
      "attributes": {}
    }"#;

    fn err(text: &str) -> RecordError {
        Student::from_json(text).expect_err("should be refused")
    }

    #[test]
    fn parses_the_product_example() {
        let s = Student::from_json(FULL).unwrap();
        assert_eq!(s.student_id, "IL-000123");
        assert_eq!(
            s.endorsements.as_ref().unwrap()[0].area,
            EndorsementArea::ManufacturingEngineeringTechnologyTrades
        );
        assert_eq!(s.job_offers.as_ref().unwrap()[0].local, Some(true));
        assert_eq!(s.graduation_date, NaiveDate::from_ymd_opt(2024, 5, 30));
    }

    #[test]
    fn only_student_id_is_required_and_absent_stays_absent() {
        let s = Student::from_json(r#"{"student_id":"a.b_c-1"}"#).unwrap();
        assert!(s.endorsements.is_none());
        assert!(s.postsecondary.is_none());
        let s = Student::from_json(r#"{"student_id":"x","endorsements":[]}"#).unwrap();
        assert_eq!(s.endorsements, Some(vec![]));
    }

    #[test]
    fn round_trips_without_inventing_fields() {
        let s = Student::from_json(r#"{"student_id":"x","job_offers":[{"naics":"31"}]}"#).unwrap();
        let back = serde_json::to_string(&s).unwrap();
        assert_eq!(back, r#"{"student_id":"x","job_offers":[{"naics":"31"}]}"#);
        assert_eq!(Student::from_json(FULL).unwrap(), {
            let v = serde_json::to_string(&Student::from_json(FULL).unwrap()).unwrap();
            Student::from_json(&v).unwrap()
        });
    }

    #[test]
    fn refuses_missing_student_id() {
        let e = err(r#"{"school_id":"x"}"#);
        assert!(e.message.contains("student_id"), "{}", e.message);
    }

    #[test]
    fn refuses_unknown_fields_naming_them() {
        let e = err(r#"{"student_id":"x","graduaton_date":"2024-05-30"}"#);
        assert!(e.message.contains("graduaton_date"), "{}", e.message);
        let e = err(
            r#"{"student_id":"x","endorsements":[{"area":"information_technology","status":"earned","level":2}]}"#,
        );
        assert!(e.message.contains("endorsements[0]"), "{}", e.message);
        assert!(e.message.contains("level"), "{}", e.message);
    }

    #[test]
    fn refuses_bad_ids() {
        for id in ["", "has space", "slash/../x", &"x".repeat(65), "é"] {
            let e = err(&serde_json::json!({ "student_id": id }).to_string());
            assert_eq!(e.field, "student_id", "{id:?}");
        }
    }

    #[test]
    fn refuses_bad_dates_naming_the_field() {
        let e = err(r#"{"student_id":"x","graduation_date":"2024-02-30"}"#);
        assert_eq!(e.field, "graduation_date");
        let e = err(r#"{"student_id":"x","job_offers":[{"offered_on":"yesterday"}]}"#);
        assert_eq!(e.field, "job_offers[0].offered_on");
    }

    #[test]
    fn dates_read_the_fast_way_accept_and_refuse_what_chrono_does() {
        #[derive(Deserialize)]
        struct Ours(#[serde(deserialize_with = "optional_date")] Option<NaiveDate>);
        for input in [
            r#""2024-06-01""#,
            r#""0000-01-01""#,
            r#""9999-12-31""#,
            r#""2024-02-29""#,
            r#""2023-02-29""#,
            r#""2024-13-01""#,
            r#""2024-6-1""#,
            r#""+12345-01-01""#,
            r#""2024-06-01T00:00:00""#,
            r#"" 2024-06-01""#,
            r#""2024/06/01""#,
            r#""20a4-06-01""#,
            r#""""#,
            r#""\u0032024-06-01""#,
            "null",
            "20240601",
            "[]",
        ] {
            let ours = serde_json::from_str::<Ours>(input).map(|o| o.0);
            let chrono = serde_json::from_str::<Option<NaiveDate>>(input);
            match (ours, chrono) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{input}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{input}"),
                (a, b) => panic!("{input}: ours {a:?}, chrono {b:?}"),
            }
        }
    }

    #[test]
    fn refuses_control_characters_in_text_and_keeps_other_unicode() {
        for bad in ["\\u0001", "\\u007f", "\\u0085", "\\n"] {
            let e = err(&format!(
                r#"{{"student_id":"x","job_offers":[{{"employer":"Acme{bad}Tool"}}]}}"#
            ));
            assert_eq!(e.field, "job_offers[0].employer", "{bad}");
            assert!(e.message.contains("control characters"), "{bad}");
        }
        let s = Student::from_json(
            r#"{"student_id":"x","job_offers":[{"employer":"Café Ünïcode 漢字 🎓"}]}"#,
        );
        assert!(s.is_ok(), "{s:?}");
    }

    #[test]
    fn refuses_negative_hours() {
        let e = err(r#"{"student_id":"x","early_college_credits":[{"credit_hours":-3}]}"#);
        assert_eq!(e.field, "early_college_credits[0].credit_hours");
        let e =
            err(r#"{"student_id":"x","work_based_learning":[{"kind":"internship","hours":-1}]}"#);
        assert_eq!(e.field, "work_based_learning[0].hours");
        assert!(e.message.contains("non-negative"));
    }

    #[test]
    fn refuses_unknown_areas_and_statuses() {
        let e = err(r#"{"student_id":"x","endorsements":[{"area":"welding","status":"earned"}]}"#);
        assert_eq!(e.field, "endorsements[0].area");
        assert!(e.message.contains("welding"), "{}", e.message);
        let e = err(
            r#"{"student_id":"x","endorsements":[{"area":"information_technology","status":"done"}]}"#,
        );
        assert_eq!(e.field, "endorsements[0].status");
        let e = err(r#"{"student_id":"x","postsecondary":{"status":"graduated"}}"#);
        assert_eq!(e.field, "postsecondary.status");
        let e = err(r#"{"student_id":"x","payee_preference":"parent"}"#);
        assert_eq!(e.field, "payee_preference");
        let e = err(r#"{"student_id":"x","work_based_learning":[{"kind":"nap"}]}"#);
        assert_eq!(e.field, "work_based_learning[0].kind");
    }

    #[test]
    fn refuses_bad_naics() {
        for code in ["3", "3327101", "33a"] {
            let e = err(
                &serde_json::json!({"student_id":"x","job_offers":[{"naics":code}]}).to_string(),
            );
            assert_eq!(e.field, "job_offers[0].naics");
        }
    }

    #[test]
    fn reports_line_and_column_of_syntax_errors() {
        let e = err("{\n  \"student_id\": \"x\",\n  oops\n}");
        assert_eq!(e.line, Some(3));
        assert!(e.column.is_some());
        assert!(e.message.contains("line 3"), "{}", e.message);
    }

    #[test]
    fn refuses_oversized_parts() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let e = err(&serde_json::json!({"student_id":"x","school_id":long}).to_string());
        assert_eq!(e.field, "school_id");
        let many: Vec<_> = (0..=MAX_LIST_ITEMS)
            .map(|_| serde_json::json!({"kind":"internship"}))
            .collect();
        let e = err(&serde_json::json!({"student_id":"x","work_based_learning":many}).to_string());
        assert_eq!(e.field, "work_based_learning");
    }
}
