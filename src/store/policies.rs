//! Published policy versions: immutable rows keyed by (policy id, version), with source and hash.

use diesel::prelude::*;

use super::schema::policy_versions as pv;
use super::{now_text, Store, StoreError};
use crate::policy::{PolicyMeta, PolicyVersion};
use crate::with_conn;

#[derive(Queryable)]
struct Row {
    policy_id: String,
    version: i32,
    hash: String,
    source: String,
    meta: String,
    origin: String,
    published_at: String,
}

/// A stored version and when it was first recorded.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: PolicyVersion,
    pub published_at: String,
}

impl Store {
    /// Records versions not yet stored. A version whose (id, version) is stored with another
    /// hash is refused: a published version never changes. All or nothing.
    pub fn record_policy_versions(&self, versions: &[PolicyVersion]) -> Result<usize, StoreError> {
        let now = now_text();
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| {
            c.transaction(|c| {
            let mut added = 0;
            for v in versions {
                let number = i32::try_from(v.meta.version)
                    .map_err(|_| StoreError::Conflict("version number too large".into()))?;
                let stored: Option<String> = pv::table
                    .find((&v.meta.id, number))
                    .select(pv::hash)
                    .first(c)
                    .optional()?;
                match stored {
                    Some(hash) if hash == v.hash => continue,
                    Some(hash) => {
                        return Err(StoreError::Conflict(format!(
                            "{}: policy {} version {} is already published with a different source \
                             (stored hash {hash}, this file {}); a published version never changes: \
                             bump the version number and set the effective dates",
                            v.origin, v.meta.id, v.meta.version, v.hash
                        )))
                    }
                    None => {}
                }
                let meta = serde_json::to_string(&v.meta)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                diesel::insert_into(pv::table)
                    .values((
                        pv::policy_id.eq(&v.meta.id),
                        pv::version.eq(number),
                        pv::hash.eq(&v.hash),
                        pv::source.eq(&*v.source),
                        pv::title.eq(&v.meta.title),
                        pv::sponsor.eq(&v.meta.sponsor),
                        pv::effective_from.eq(v.meta.effective_from.to_string()),
                        pv::effective_to.eq(v.meta.effective_to.map(|d| d.to_string())),
                        pv::meta.eq(meta),
                        pv::origin.eq(&v.origin),
                        pv::published_at.eq(&now),
                    ))
                    .execute(c)?;
                added += 1;
            }
            Ok::<_, StoreError>(added)
        })
        })
    }

    /// Every stored version.
    pub fn policy_versions(&self) -> Result<Vec<StoredVersion>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<Row> = with_conn!(&mut *conn, |c| pv::table
            .select((
                pv::policy_id,
                pv::version,
                pv::hash,
                pv::source,
                pv::meta,
                pv::origin,
                pv::published_at,
            ))
            .order((pv::policy_id.asc(), pv::version.asc()))
            .load::<Row>(c))?;
        rows.into_iter()
            .map(|r| {
                let meta: PolicyMeta = serde_json::from_str(&r.meta).map_err(|e| {
                    StoreError::Corrupt(format!("policy {} metadata: {e}", r.policy_id))
                })?;
                let computed = crate::policy::registry::source_hash(&r.source);
                if computed != r.hash
                    || meta.id != r.policy_id
                    || i64::from(meta.version) != i64::from(r.version)
                {
                    return Err(StoreError::Corrupt(format!(
                        "policy {} version {}: stored source does not match its hash",
                        r.policy_id, r.version
                    )));
                }
                Ok(StoredVersion {
                    version: PolicyVersion {
                        meta,
                        source: r.source.into(),
                        hash: r.hash,
                        origin: r.origin,
                    },
                    published_at: r.published_at,
                })
            })
            .collect()
    }
}
