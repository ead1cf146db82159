//! Stored student records: one row per student, the validated record as JSON.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::awards::WriteConn;
use super::schema::{generations, students};
use super::{now_text, parse_timestamp, Store, StoreError};
use crate::policy::Student;
use crate::with_conn;

/// A record and its bookkeeping times.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStudent {
    pub student: Student,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable)]
struct Row {
    _student_id: String,
    _school_id: Option<String>,
    record: String,
    created_at: String,
    updated_at: String,
}

impl Row {
    fn into_stored(self) -> Result<StoredStudent, StoreError> {
        let student = Student::from_json(&self.record)
            .map_err(|e| StoreError::Corrupt(format!("student record: {e}")))?;
        Ok(StoredStudent {
            student,
            created_at: parse_timestamp(&self.created_at)?,
            updated_at: parse_timestamp(&self.updated_at)?,
        })
    }
}

/// Moves the students' generation (inside the writing transaction).
macro_rules! bump_students {
    ($c:expr) => {
        diesel::update(generations::table.find("students"))
            .set(generations::value.eq(generations::value + 1))
            .execute($c)
    };
}

/// Records per upsert statement (SQLite allows 32,766 parameters per statement).
const UPSERT_ROWS: usize = 1000;

fn encode(s: &Student) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Inserts or replaces records in one transaction; returns how many were new.
    ///
    /// One look-up of the existing ids and one multi-row upsert per thousand records (not a
    /// look-up and an upsert per record), inside a write transaction taken up front: a deferred
    /// one that read first could not be upgraded once another writer had committed (SQLite
    /// answers "database is locked" at once rather than wait).
    pub fn put_students(&self, records: &[Student]) -> Result<usize, StoreError> {
        use diesel::upsert::excluded;
        let now = now_text();
        let mut rows = Vec::with_capacity(records.len());
        for s in records {
            rows.push((s.student_id.as_str(), s.school_id.as_deref(), encode(s)?));
        }
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let mut created = 0;
            for part in rows.chunks(UPSERT_ROWS) {
                let ids: Vec<&str> = part.iter().map(|r| r.0).collect();
                let mut existing: Vec<String> = students::table
                    .filter(students::student_id.eq_any(&ids))
                    .select(students::student_id)
                    .load(c)?;
                existing.sort_unstable();
                // A record given twice in one import is one student.
                let mut new: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| existing.binary_search_by(|e| e.as_str().cmp(id)).is_err())
                    .collect();
                new.sort_unstable();
                new.dedup();
                created += new.len();
                // Later copies of a record win, as they would one by one: keep the last.
                let mut seen = std::collections::HashSet::with_capacity(part.len());
                let last: Vec<&(&str, Option<&str>, String)> =
                    part.iter().rev().filter(|r| seen.insert(r.0)).collect();
                let values: Vec<_> = last
                    .iter()
                    .map(|(id, school, record)| {
                        (
                            students::student_id.eq(*id),
                            students::school_id.eq(*school),
                            students::record.eq(record),
                            students::created_at.eq(&now),
                            students::updated_at.eq(&now),
                        )
                    })
                    .collect();
                diesel::insert_into(students::table)
                    .values(values)
                    .on_conflict(students::student_id)
                    .do_update()
                    .set((
                        students::school_id.eq(excluded(students::school_id)),
                        students::record.eq(excluded(students::record)),
                        students::updated_at.eq(excluded(students::updated_at)),
                    ))
                    .execute(c)?;
            }
            bump_students!(c)?;
            Ok::<_, StoreError>(created)
        }))
    }

    /// Inserts or replaces one record; true when it was new.
    pub fn put_student(&self, record: &Student) -> Result<bool, StoreError> {
        Ok(self.put_students(std::slice::from_ref(record))? == 1)
    }

    pub fn get_student(&self, id: &str) -> Result<Option<StoredStudent>, StoreError> {
        let mut conn = self.conn()?;
        let row: Option<Row> = with_conn!(&mut *conn, |c| students::table
            .find(id)
            .first::<Row>(c)
            .optional())?;
        row.map(Row::into_stored).transpose()
    }

    /// Deletes a record; true when there was one.
    pub fn delete_student(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = with_conn!(&mut *conn, |c| c.write_tx(|c| {
            let n = diesel::delete(students::table.find(id)).execute(c)?;
            if n > 0 {
                bump_students!(c)?;
            }
            Ok::<_, StoreError>(n)
        }))?;
        Ok(n > 0)
    }

    /// A number that moves whenever a stored record changes (in the writing transaction).
    pub fn students_generation(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| generations::table
            .find("students")
            .select(generations::value)
            .first::<i64>(c)
            .optional())?
        .unwrap_or(0))
    }

    /// Records in id order after `after`, optionally of one school and with ids starting with
    /// `id_prefix`.
    pub fn list_students(
        &self,
        after: Option<&str>,
        school_id: Option<&str>,
        id_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredStudent>, StoreError> {
        let mut conn = self.conn()?;
        // Ids are `A-Za-z0-9._-`: only `_` is special to LIKE, and it is escaped.
        let pattern = id_prefix.map(|p| format!("{}%", p.replace('_', "\\_")));
        let rows: Vec<Row> = with_conn!(&mut *conn, |c| {
            let mut q = students::table.into_boxed();
            if let Some(a) = after {
                q = q.filter(students::student_id.gt(a));
            }
            if let Some(s) = school_id {
                q = q.filter(students::school_id.eq(s));
            }
            if let Some(p) = &pattern {
                q = q.filter(students::student_id.like(p).escape('\\'));
            }
            q.order(students::student_id.asc())
                .limit(limit)
                .load::<Row>(c)
        })?;
        rows.into_iter().map(Row::into_stored).collect()
    }

    /// Every stored record as its JSON text, in id order, optionally of one school: for work
    /// over a whole cohort, which parses them on its own threads.
    pub fn student_records(&self, school_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| {
            let mut q = students::table.select(students::record).into_boxed();
            if let Some(s) = school_id {
                q = q.filter(students::school_id.eq(s));
            }
            q.order(students::student_id.asc()).load::<String>(c)
        })?)
    }

    /// How many records are stored.
    pub fn count_students(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| students::table
            .count()
            .get_result::<i64>(c))?)
    }
}
