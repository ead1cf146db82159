//! The counselor's pages: student search, a student's incentives (with "try a change"), a
//! record previewed without storing it, and a school's list with its CSV.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::{html, html_with, verify_csrf, Chrome, PageError};
use crate::api::AppState;
use crate::policy::student::{EndorsementArea, PostsecondaryStatus};
use crate::policy::{Award, Decision, PayeeKind, Status, Student};
use crate::service::incentives::{rank, Change, Standing};
use crate::service::preview::Subject;

/// Students a search page shows at once.
const SEARCH_PAGE: i64 = 25;
/// Students a school list shows (one page of the API's largest).
const SCHOOL_PAGE: i64 = 500;

/// One criterion as a page shows it: a mark in words (never colour alone).
pub struct ReasonView {
    pub mark: &'static str,
    pub class: &'static str,
    pub message: String,
    pub fields: String,
}

pub struct MissingView {
    pub message: String,
    pub fields: String,
}

/// One incentive as a page shows it.
pub struct DecisionView {
    pub title: String,
    pub sponsor: String,
    pub policy_id: String,
    pub version: u32,
    pub hash: String,
    pub effective: String,
    pub standing: &'static str,
    pub class: &'static str,
    pub award: String,
    pub reasons: Vec<ReasonView>,
    pub missing: Vec<MissingView>,
    pub error: Option<String>,
}

fn standing_class(s: Standing) -> &'static str {
    match s {
        Standing::Eligible => "eligible",
        Standing::NotYet => "not-yet",
        Standing::CannotTell => "cannot-tell",
    }
}

/// Dollars from integer cents (`$500.00`).
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", c % 100)
}

fn award_text(d: &Decision) -> String {
    let base = match &d.award {
        Some(Award::Scholarship { amount_cents }) => {
            format!("{} scholarship", dollars(*amount_cents))
        }
        Some(Award::TuitionWaiver {
            credit_hours,
            institution_id,
        }) => format!("Tuition waived for {credit_hours} credit hours at {institution_id}"),
        None => "A requirement".to_string(),
    };
    match &d.payee {
        Some(p) if p.kind == PayeeKind::Institution => format!(
            "{base}, paid to {}",
            p.institution_id.as_deref().unwrap_or("the college")
        ),
        Some(_) => format!("{base}, paid to the student"),
        None => base,
    }
}

fn fields_text(fields: &[String]) -> String {
    fields.join(", ")
}

/// The view of each decision, with the version's effective dates from the registry.
fn views(state: &AppState, decisions: &[Decision]) -> Vec<DecisionView> {
    let registry = state.service.registry();
    decisions
        .iter()
        .map(|d| {
            let standing = Standing::of(d);
            let effective = registry
                .version(&d.policy_id, d.version)
                .map(|v| {
                    let to = v
                        .meta
                        .effective_to
                        .map_or("open-ended".to_string(), |t| format!("until {t}"));
                    format!("from {} ({to})", v.meta.effective_from)
                })
                .unwrap_or_default();
            DecisionView {
                title: d.title.clone(),
                sponsor: d.sponsor.clone(),
                policy_id: d.policy_id.clone(),
                version: d.version,
                hash: d.hash.chars().take(12).collect(),
                effective,
                standing: standing.label(),
                class: standing_class(standing),
                award: award_text(d),
                reasons: d
                    .reasons
                    .iter()
                    .map(|r| {
                        let (mark, class) = match r.status {
                            Status::Passed => ("Passed", "passed"),
                            Status::Failed => ("Not met", "failed"),
                            Status::Unknown => ("Cannot tell", "unknown"),
                        };
                        ReasonView {
                            mark,
                            class,
                            message: r.message.clone(),
                            fields: fields_text(&r.fields),
                        }
                    })
                    .collect(),
                missing: d
                    .missing
                    .iter()
                    .map(|m| MissingView {
                        message: m.message.clone(),
                        fields: fields_text(&m.fields),
                    })
                    .collect(),
                error: d.error.clone(),
            }
        })
        .collect()
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A date from a form field: empty means today; anything else must be `YYYY-MM-DD`.
fn date_field(value: Option<&str>) -> Result<NaiveDate, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(today()),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{v:?} is not a date (YYYY-MM-DD)")),
    }
}

// ---- search -----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    school_id: Option<String>,
    cursor: Option<String>,
}

pub struct StudentRow {
    pub id: String,
    pub school: String,
    pub eligible: usize,
    pub not_yet: usize,
    pub cannot_tell: usize,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    school_id: String,
    rows: Vec<StudentRow>,
    next: Option<String>,
    searched: bool,
}

/// Students by id prefix and school, each with where its incentives stand.
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    let q = query.q.clone().unwrap_or_default().trim().to_string();
    let school = query
        .school_id
        .clone()
        .unwrap_or_default()
        .trim()
        .to_string();
    let none_if_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let page = state
        .service
        .list_students(
            query.cursor.clone(),
            none_if_empty(&school),
            none_if_empty(&q),
            Some(SEARCH_PAGE),
        )
        .await?;
    let as_of = today();
    let mut rows = Vec::with_capacity(page.items.len());
    for s in page.items {
        let result = state
            .service
            .preview(Subject::Inline(Box::new(s.student.clone())), None, as_of)
            .await?;
        let count = |want: Standing| {
            result
                .decisions
                .iter()
                .filter(|d| Standing::of(d) == want)
                .count()
        };
        rows.push(StudentRow {
            id: s.student.student_id.clone(),
            school: s.student.school_id.clone().unwrap_or_default(),
            eligible: count(Standing::Eligible),
            not_yet: count(Standing::NotYet),
            cannot_tell: count(Standing::CannotTell),
        });
    }
    let next = page.next_cursor.map(|c| {
        let mut url = form_urlencoded(&[("q", &q), ("school_id", &school), ("cursor", &c)]);
        url.insert_str(0, "/students?");
        url
    });
    html(SearchPage {
        chrome: Chrome::of(&req),
        searched: query.q.is_some() || query.school_id.is_some(),
        q,
        school_id: school,
        rows,
        next,
    })
}

/// `k=v&k=v`, each value percent-encoded.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let encode = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---- one student ------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct StudentQuery {
    as_of: Option<String>,
}

/// The "try a change" form's fields.
#[derive(Deserialize, Default, Clone)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    as_of: String,
    #[serde(default)]
    endorsement: String,
    #[serde(default)]
    college: String,
    #[serde(default)]
    college_status: String,
    #[serde(default)]
    naics: String,
}

/// A choice of a select box.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "student.html")]
struct StudentPage {
    chrome: Chrome,
    student_id: String,
    school: String,
    as_of: String,
    date_error: Option<String>,
    decisions: Vec<DecisionView>,
    eligible: usize,
    /// What was tried, in words, when the page shows a change.
    tried: Vec<String>,
    change_errors: Vec<(&'static str, String)>,
    form: ChangeForm,
    areas: Vec<Choice>,
    statuses: Vec<Choice>,
    steps: Vec<StepView>,
    progress: Vec<ProgressView>,
}

/// A next step as the student page shows it.
pub struct StepView {
    pub message: String,
    pub fields: String,
    /// "Completes the IMA scholarship ($500.00)", when it completes any incentive alone.
    pub completes: String,
    pub closer: String,
}

/// One requirement policy's progress: each requirement done, or how much is left.
pub struct ProgressView {
    pub title: String,
    pub met: usize,
    pub total: usize,
    pub items: Vec<ProgressItem>,
}

pub struct ProgressItem {
    pub label: String,
    pub class: &'static str,
    pub mark: &'static str,
    /// What is left, in numbers, when not done.
    pub left: String,
}

fn step_views(state: &AppState, steps: &[crate::policy::next_steps::NextStep]) -> Vec<StepView> {
    let registry = state.service.registry();
    let title = |id: &String| {
        registry
            .versions_of(id)
            .last()
            .map_or(id.clone(), |v| v.meta.title.clone())
    };
    steps
        .iter()
        .map(|s| {
            let mut worth = Vec::new();
            if s.completes_cents > 0 {
                worth.push(dollars(s.completes_cents));
            }
            if s.completes_credit_hours > 0.0 {
                worth.push(format!("{} credit hours", s.completes_credit_hours));
            }
            StepView {
                message: s.message.clone(),
                fields: fields_text(&s.fields),
                completes: if s.completes.is_empty() {
                    String::new()
                } else {
                    format!(
                        "Completes {} ({})",
                        s.completes.iter().map(title).collect::<Vec<_>>().join(", "),
                        worth.join(" and ")
                    )
                },
                closer: s
                    .brings_closer
                    .iter()
                    .map(title)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect()
}

fn progress_views(requirements: &[Decision]) -> Vec<ProgressView> {
    requirements
        .iter()
        .map(|d| ProgressView {
            title: d.title.clone(),
            met: d
                .reasons
                .iter()
                .filter(|r| r.status == Status::Passed)
                .count(),
            total: d.reasons.len(),
            items: d
                .reasons
                .iter()
                .map(|r| {
                    let (mark, class) = match r.status {
                        Status::Passed => ("Done", "passed"),
                        Status::Failed => ("Not yet", "failed"),
                        Status::Unknown => ("Cannot tell", "unknown"),
                    };
                    ProgressItem {
                        label: r.message.clone(),
                        class,
                        mark,
                        left: if r.status == Status::Passed {
                            String::new()
                        } else {
                            d.missing
                                .iter()
                                .find(|m| m.code == r.code)
                                .map_or(String::new(), |m| m.message.clone())
                        },
                    }
                })
                .collect(),
        })
        .collect()
}

fn area_choices(selected: &str) -> Vec<Choice> {
    EndorsementArea::ALL
        .iter()
        .map(|a| Choice {
            value: a.as_str(),
            label: a.as_str(),
            selected: a.as_str() == selected,
        })
        .collect()
}

fn status_choices(selected: &str) -> Vec<Choice> {
    [("admitted", "admitted"), ("enrolled", "enrolled")]
        .into_iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: value == selected,
        })
        .collect()
}

/// The change a form asks for, or the errors to show next to its fields.
fn change_of(form: &ChangeForm) -> Result<Change, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let mut change = Change::default();
    let area = form.endorsement.trim();
    if !area.is_empty() {
        match EndorsementArea::parse(area) {
            Some(a) => change.endorsement = Some(a),
            None => errors.push((
                "endorsement",
                format!("{area:?} is not an endorsement area"),
            )),
        }
    }
    let college = form.college.trim();
    if !college.is_empty() {
        let status = match form.college_status.as_str() {
            "admitted" => Some(PostsecondaryStatus::Admitted),
            "enrolled" | "" => Some(PostsecondaryStatus::Enrolled),
            _ => None,
        };
        match status {
            Some(s) => change.college = Some((college.to_string(), s)),
            None => errors.push(("college_status", "choose admitted or enrolled".into())),
        }
    }
    let naics = form.naics.trim();
    if !naics.is_empty() {
        if (2..=6).contains(&naics.len()) && naics.bytes().all(|b| b.is_ascii_digit()) {
            change.job_offer_naics = Some(naics.to_string());
        } else {
            errors.push((
                "naics",
                "a NAICS code is 2 to 6 digits (manufacturing: 31-33)".into(),
            ));
        }
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(errors)
    }
}

fn tried_words(change: &Change) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(a) = change.endorsement {
        words.push(format!("an earned {} endorsement", a.as_str()));
    }
    if let Some((college, status)) = &change.college {
        words.push(format!("{} at {college}", status.as_str()));
    }
    if let Some(naics) = &change.job_offer_naics {
        words.push(format!("a local job offer (NAICS {naics})"));
    }
    words
}

async fn student_page(
    state: &AppState,
    req: &HttpRequest,
    student_id: String,
    form: ChangeForm,
) -> Result<HttpResponse, PageError> {
    let (as_of, date_error) = match date_field(Some(&form.as_of)) {
        Ok(d) => (d, None),
        Err(e) => (today(), Some(e)),
    };
    let (change, change_errors) = match change_of(&form) {
        Ok(c) => (c, Vec::new()),
        Err(errors) => (Change::default(), errors),
    };
    let (stored, result) = state
        .service
        .incentives(student_id.clone(), as_of, &change)
        .await?;
    let decisions = views(state, &result.decisions);
    let steps = step_views(state, &result.next_steps);
    let progress = progress_views(&result.requirements);
    let status = if date_error.is_some() || !change_errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html_with(
        status,
        StudentPage {
            chrome: Chrome::of(req),
            school: stored.student.school_id.unwrap_or_default(),
            student_id,
            as_of: as_of.to_string(),
            date_error,
            eligible: decisions.iter().filter(|d| d.class == "eligible").count(),
            decisions,
            tried: tried_words(&change),
            change_errors,
            areas: area_choices(&form.endorsement),
            statuses: status_choices(&form.college_status),
            form,
            steps,
            progress,
        },
    )
}

/// One student's incentives on a date (default today).
pub async fn student(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<StudentQuery>,
) -> Result<HttpResponse, PageError> {
    let form = ChangeForm {
        as_of: query.as_of.clone().unwrap_or_default(),
        ..ChangeForm::default()
    };
    student_page(&state, &req, id.into_inner(), form).await
}

/// The same page for the record as changed; nothing is stored.
pub async fn try_change(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    verify_csrf(&req, &form.csrf)?;
    student_page(&state, &req, id.into_inner(), form.into_inner()).await
}

// ---- a record not stored ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewPage {
    chrome: Chrome,
    record: String,
    as_of: String,
    error: Option<(String, String)>,
    student_id: String,
    decisions: Vec<DecisionView>,
    eligible: usize,
}

pub async fn preview_form(req: HttpRequest) -> Result<HttpResponse, PageError> {
    html(PreviewPage {
        chrome: Chrome::of(&req),
        record: String::new(),
        as_of: today().to_string(),
        error: None,
        student_id: String::new(),
        decisions: Vec::new(),
        eligible: 0,
    })
}

#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    as_of: String,
}

/// A pasted record, evaluated like a stored one; errors are shown next to the field they name.
pub async fn preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PreviewForm>,
) -> Result<HttpResponse, PageError> {
    verify_csrf(&req, &form.csrf)?;
    let form = form.into_inner();
    let page =
        |error: Option<(String, String)>, student_id, decisions: Vec<DecisionView>| PreviewPage {
            chrome: Chrome::of(&req),
            eligible: decisions.iter().filter(|d| d.class == "eligible").count(),
            record: form.record.clone(),
            as_of: form.as_of.clone(),
            error,
            student_id,
            decisions,
        };
    let as_of = match date_field(Some(&form.as_of)) {
        Ok(d) => d,
        Err(e) => {
            return html_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(
                    Some(("as_of".into(), format!("as_of: {e}"))),
                    String::new(),
                    vec![],
                ),
            )
        }
    };
    let student = match Student::from_json(&form.record).and_then(|s| s.validate().map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            let field = if e.field.is_empty() {
                "record".to_string()
            } else {
                e.field.clone()
            };
            return html_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(Some((field, e.message)), String::new(), vec![]),
            );
        }
    };
    let mut result = state
        .service
        .preview(Subject::Inline(Box::new(student)), None, as_of)
        .await?;
    rank(&mut result.decisions);
    let decisions = views(&state, &result.decisions);
    html(page(None, result.student_id, decisions))
}

// ---- a school ---------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct SchoolQuery {
    sort: Option<String>,
    dir: Option<String>,
}

pub struct Column {
    pub key: String,
    pub title: String,
    pub sort: &'static str,
    pub href: String,
}

pub struct SchoolRow {
    pub id: String,
    pub cells: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "school.html")]
struct SchoolPage {
    chrome: Chrome,
    school_id: String,
    columns: Vec<Column>,
    id_sort: &'static str,
    id_href: String,
    rows: Vec<SchoolRow>,
    truncated: bool,
}

/// A school's students × incentives: the header (policy id, title) and rows of standings.
async fn school_table(
    state: &AppState,
    school_id: &str,
) -> Result<(Vec<(String, String)>, Vec<(String, Vec<Standing>)>, bool), PageError> {
    let page = state
        .service
        .list_students(None, Some(school_id.to_string()), None, Some(SCHOOL_PAGE))
        .await?;
    let as_of = today();
    let mut header: Vec<(String, String)> = Vec::new();
    let mut rows = Vec::with_capacity(page.items.len());
    for s in page.items {
        let result = state
            .service
            .preview(Subject::Inline(Box::new(s.student.clone())), None, as_of)
            .await?;
        let mut cells = Vec::new();
        for d in &result.decisions {
            let col = match header.iter().position(|(id, _)| *id == d.policy_id) {
                Some(i) => i,
                None => {
                    header.push((d.policy_id.clone(), d.title.clone()));
                    header.len() - 1
                }
            };
            if cells.len() <= col {
                cells.resize(col + 1, Standing::CannotTell);
            }
            cells[col] = Standing::of(d);
        }
        rows.push((s.student.student_id, cells));
    }
    for (_, cells) in &mut rows {
        cells.resize(header.len(), Standing::CannotTell);
    }
    Ok((header, rows, page.next_cursor.is_some()))
}

/// Every student of a school with one column per incentive, sortable.
pub async fn school(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<SchoolQuery>,
) -> Result<HttpResponse, PageError> {
    let school_id = id.into_inner();
    let (header, mut rows, truncated) = school_table(&state, &school_id).await?;
    let descending = query.dir.as_deref() == Some("desc");
    let sort = query.sort.clone().unwrap_or_else(|| "student_id".into());
    match header.iter().position(|(id, _)| *id == sort) {
        Some(col) => rows.sort_by(|a, b| a.1[col].cmp(&b.1[col]).then_with(|| a.0.cmp(&b.0))),
        None => rows.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    if descending {
        rows.reverse();
    }
    let aria = |key: &str| match (key == sort, descending) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    let href = |key: &str| {
        let dir = if key == sort && !descending {
            "desc"
        } else {
            "asc"
        };
        format!("?{}", form_urlencoded(&[("sort", key), ("dir", dir)]))
    };
    html(SchoolPage {
        chrome: Chrome::of(&req),
        columns: header
            .iter()
            .map(|(id, title)| Column {
                key: id.clone(),
                title: title.clone(),
                sort: aria(id),
                href: href(id),
            })
            .collect(),
        id_sort: aria("student_id"),
        id_href: href("student_id"),
        rows: rows
            .into_iter()
            .map(|(id, cells)| SchoolRow {
                id,
                cells: cells
                    .into_iter()
                    .map(|s| (s.label(), standing_class(s)))
                    .collect(),
            })
            .collect(),
        school_id,
        truncated,
    })
}

/// The school's table as CSV (the same rows, in student id order).
pub async fn school_csv(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let school_id = id.into_inner();
    let (header, rows, _) = school_table(&state, &school_id).await?;
    let internal =
        |e: csv::Error| PageError::from(crate::service::ServiceError::internal("CSV", e));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["student_id".to_string()];
    head.extend(header.iter().map(|(id, _)| id.clone()));
    w.write_record(&head).map_err(internal)?;
    for (id, cells) in rows {
        let mut record = vec![crate::service::ledger::csv_cell(&id)];
        record.extend(cells.iter().map(|s| s.label().to_string()));
        w.write_record(&record).map_err(internal)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| internal(e.into_error().into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"{}-incentives.csv\"",
                school_id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            ),
        ))
        .body(body))
}
