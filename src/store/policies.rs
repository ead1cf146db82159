//! Published policy versions: immutable rows keyed by (policy id, version), with source, hash,
//! the cases they were checked with and who published them.

use diesel::prelude::*;

use super::awards::WriteConn;
use super::schema::policy_versions as pv;
use super::{now_text, Store, StoreError};
use crate::policy::{PolicyMeta, PolicyVersion};
use crate::with_conn;

#[derive(Queryable, Selectable)]
#[diesel(table_name = pv)]
struct Row {
    policy_id: String,
    version: i32,
    hash: String,
    source: String,
    meta: String,
    origin: String,
    published_at: String,
    tests: Option<String>,
    published_by: Option<String>,
}

/// A stored version, when it was first recorded, its cases and who published it.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: PolicyVersion,
    pub published_at: String,
    /// The cases document (JSON) the version was checked with.
    pub tests: Option<String>,
    /// The key that published it over the API (none for `rules/`).
    pub published_by: Option<String>,
}

/// A version to record and the cases document it came with.
pub struct NewVersion<'a> {
    pub version: &'a PolicyVersion,
    pub tests: Option<String>,
    pub published_by: Option<&'a str>,
}

fn number(v: &PolicyVersion) -> Result<i32, StoreError> {
    i32::try_from(v.meta.version)
        .map_err(|_| StoreError::Conflict("version number too large".into()))
}

/// Inserts a `NewVersion` unless it is stored (true when inserted); refuses another source under
/// the same number; fills in the cases of a version stored before cases were kept. A macro
/// because the body is the same on both backends.
macro_rules! insert_version {
    ($c:expr, $new:expr, $now:expr) => {{
        let new: &NewVersion = $new;
        let v = new.version;
        let n = number(v)?;
        let stored: Option<(String, Option<String>)> = pv::table
            .find((&v.meta.id, n))
            .select((pv::hash, pv::tests))
            .first($c)
            .optional()?;
        match stored {
            Some((hash, tests)) if hash == v.hash => {
                if tests.is_none() && new.tests.is_some() {
                    diesel::update(pv::table.find((&v.meta.id, n)))
                        .set(pv::tests.eq(&new.tests))
                        .execute($c)?;
                }
                false
            }
            Some((hash, _)) => {
                return Err(StoreError::Conflict(format!(
                    "{}: policy {} version {} is already published with a different source \
                     (stored hash {hash}, this one {}); a published version never changes: \
                     bump the version number and set the effective dates",
                    v.origin, v.meta.id, v.meta.version, v.hash
                )))
            }
            None => {
                let meta = serde_json::to_string(&v.meta)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                diesel::insert_into(pv::table)
                    .values((
                        pv::policy_id.eq(&v.meta.id),
                        pv::version.eq(n),
                        pv::hash.eq(&v.hash),
                        pv::source.eq(&*v.source),
                        pv::title.eq(&v.meta.title),
                        pv::sponsor.eq(&v.meta.sponsor),
                        pv::effective_from.eq(v.meta.effective_from.to_string()),
                        pv::effective_to.eq(v.meta.effective_to.map(|d| d.to_string())),
                        pv::meta.eq(meta),
                        pv::origin.eq(&v.origin),
                        pv::published_at.eq($now),
                        pv::tests.eq(&new.tests),
                        pv::published_by.eq(new.published_by),
                    ))
                    .execute($c)?;
                true
            }
        }
    }};
}

impl Row {
    fn into_stored(self) -> Result<StoredVersion, StoreError> {
        let meta: PolicyMeta = serde_json::from_str(&self.meta)
            .map_err(|e| StoreError::Corrupt(format!("policy {} metadata: {e}", self.policy_id)))?;
        let computed = crate::policy::registry::source_hash(&self.source);
        if computed != self.hash
            || meta.id != self.policy_id
            || i64::from(meta.version) != i64::from(self.version)
        {
            return Err(StoreError::Corrupt(format!(
                "policy {} version {}: stored source does not match its hash",
                self.policy_id, self.version
            )));
        }
        Ok(StoredVersion {
            version: PolicyVersion::new(meta, self.source.into(), self.hash, self.origin),
            published_at: self.published_at,
            tests: self.tests,
            published_by: self.published_by,
        })
    }
}

impl Store {
    /// Records versions not yet stored (the seed from `rules/`). A version whose (id, version)
    /// is stored with another hash is refused: a published version never changes. All or
    /// nothing.
    pub fn record_policy_versions(&self, versions: &[NewVersion]) -> Result<usize, StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        // A write transaction from the start: a deferred one that read first could not become
        // a writer once another process had committed (SQLite would answer "locked" at once).
        with_conn!(&mut *conn, |c| {
            c.write_tx(|c| {
                let mut added = 0;
                for new in versions {
                    if insert_version!(c, new, &now) {
                        added += 1;
                    }
                }
                Ok::<_, StoreError>(added)
            })
        })
    }

    /// Publishes one version: under the policy's program lock (so two instances publishing at
    /// once are checked one after the other), `check` sees every stored version of the policy
    /// and may refuse; then the version is recorded unless it is stored already. The outer
    /// result is the store's, the inner one `check`'s (`Ok(true)` when newly recorded).
    pub fn publish_policy_version<E>(
        &self,
        new: &NewVersion,
        check: impl FnOnce(&[PolicyVersion]) -> Result<(), E>,
    ) -> Result<Result<bool, E>, StoreError> {
        let now = now_text();
        let id = new.version.meta.id.clone();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| c.write_tx(|c| {
            c.lock_program(&id)?;
            let stored = pv::table
                .filter(pv::policy_id.eq(&id))
                .select(Row::as_select())
                .load::<Row>(c)?
                .into_iter()
                .map(|r| r.into_stored().map(|s| s.version))
                .collect::<Result<Vec<_>, StoreError>>()?;
            if let Err(e) = check(&stored) {
                return Ok(Err(e));
            }
            Ok::<_, StoreError>(Ok(insert_version!(c, new, &now)))
        }))
    }

    /// Every stored version, by id then version.
    pub fn policy_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<Row> = with_conn!(&mut *conn, |c| pv::table
            .select(Row::as_select())
            .order((pv::policy_id.asc(), pv::version.asc()))
            .load::<Row>(c))?;
        rows.into_iter().map(Row::into_stored).collect()
    }

    /// How many versions are stored: versions are never removed, so a change in this number
    /// is how an instance notices a version published through another.
    pub fn policy_version_count(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| pv::table
            .count()
            .get_result::<i64>(c))?)
    }
}
