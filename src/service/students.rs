//! Storing, reading, listing and importing student records.

use std::sync::Arc;

use sha2::Digest;

use serde_json::Value;

use super::import::{self, ImportFormat, RejectedRow};
use super::{blocking, Service, ServiceError};
use crate::policy::Student;
/// A stored record and its bookkeeping times (the store's, which is plain data).
pub use crate::store::students::StoredStudent;

/// Largest page of a listing.
pub const MAX_PAGE: i64 = 500;
pub const DEFAULT_PAGE: i64 = 50;

#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<StoredStudent>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Rows stored (new or replacing).
    pub imported: usize,
    /// Of those, new students.
    pub created: usize,
    pub rejected: Vec<RejectedRow>,
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound {
        what: "student",
        id: id.to_string(),
    }
}

impl Service {
    /// Stores a record under `id`. The body's `student_id`, when given, must match the path.
    /// Returns the stored record and whether it was new.
    pub async fn put_student(
        &self,
        id: String,
        mut body: Value,
    ) -> Result<(StoredStudent, bool), ServiceError> {
        if !crate::policy::student::is_valid_id(&id) {
            return Err(ServiceError::invalid(
                "student_id",
                "must be 1-64 characters of A-Za-z0-9._-",
            ));
        }
        match body.as_object_mut() {
            Some(map) => match map.get("student_id") {
                None => {
                    map.insert("student_id".into(), Value::String(id.clone()));
                }
                Some(Value::String(s)) if *s == id => {}
                Some(other) => {
                    return Err(ServiceError::invalid(
                        "student_id",
                        format!("{other} in the body does not match {id:?} in the path"),
                    ))
                }
            },
            None => {
                return Err(ServiceError::invalid(
                    "body",
                    "must be a JSON object (a student record)",
                ))
            }
        }
        let student = Student::from_value(body).map_err(ServiceError::InvalidRecord)?;
        let store = self.store().clone();
        let result = blocking(move || {
            let created = store.put_student(&student)?;
            let stored = store.get_student(&id)?.ok_or_else(|| not_found(&id))?;
            Ok((stored, created))
        })
        .await;
        self.record_cache.clear();
        result
    }

    /// A stored record. Trusted for at most `KEY_CACHE_TTL` (0.1 s) after it was read, like keys
    /// and sessions: a write on this process is seen at once (writes clear the cache), a write
    /// on another within that time. The student page is a record read and an evaluation, and
    /// the read was nearly all of its cost (benches/load.sh).
    pub async fn get_student(&self, id: String) -> Result<StoredStudent, ServiceError> {
        let digest: [u8; 32] = sha2::Sha256::digest(id.as_bytes()).into();
        let lookup_id = id.clone();
        self.trusted(
            |s| &s.record_cache,
            digest,
            move |s, _| {
                let id = lookup_id.clone();
                async move {
                    let store = s.store().clone();
                    blocking(move || Ok(store.get_student(&id)?.map(Arc::new))).await
                }
            },
        )
        .await?
        .map(|s| StoredStudent::clone(&s))
        .ok_or_else(|| not_found(&id))
    }

    pub async fn delete_student(&self, id: String) -> Result<(), ServiceError> {
        let store = self.store().clone();
        let result = blocking(move || {
            if store.delete_student(&id)? {
                Ok(())
            } else {
                Err(not_found(&id))
            }
        })
        .await;
        self.record_cache.clear();
        result
    }

    /// A page of records in id order: after `cursor`, of `school_id`, with ids starting with
    /// `id_prefix` (compared exactly: SQLite's LIKE ignores ASCII case, so its extra rows are
    /// dropped here).
    pub async fn list_students(
        &self,
        cursor: Option<String>,
        school_id: Option<String>,
        id_prefix: Option<String>,
        limit: Option<i64>,
    ) -> Result<Page, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let store = self.store().clone();
        blocking(move || {
            // One more than asked tells whether there is a next page.
            let mut items = store.list_students(
                cursor.as_deref(),
                school_id.as_deref(),
                id_prefix.as_deref(),
                limit + 1,
            )?;
            let more = items.len() as i64 > limit;
            items.truncate(limit as usize);
            let next_cursor = more
                .then(|| items.last().map(|s| s.student.student_id.clone()))
                .flatten();
            // After the cursor is taken, so a dropped row never ends the paging early.
            if let Some(p) = &id_prefix {
                items.retain(|s| s.student.student_id.starts_with(p.as_str()));
            }
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// Parses a body of records; stores every valid one in one transaction (later rows with the
    /// same id replace earlier ones) and reports the rest with their lines.
    pub async fn import_students<B>(
        &self,
        format: ImportFormat,
        body: B,
    ) -> Result<ImportReport, ServiceError>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let store = self.store().clone();
        let result = blocking(move || {
            let parsed = import::parse(format, body.as_ref())?;
            let created = if parsed.records.is_empty() {
                0
            } else {
                store.put_students(&parsed.records)?
            };
            Ok(ImportReport {
                imported: parsed.records.len(),
                created,
                rejected: parsed.rejected,
            })
        })
        .await;
        self.record_cache.clear();
        result
    }
}
