//! Access keys: stored as SHA-256 hashes of their secrets, never the secrets.

use diesel::prelude::*;

use super::schema::api_keys;
use super::{now_text, Store, StoreError};
use crate::with_conn;

/// A key as stored: the SHA-256 of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct StoredKey {
    pub key_id: String,
    pub name: String,
    /// `admin`, `awarder`, `counselor` or `auditor`.
    pub role: String,
    /// For awarders: the sponsor whose policies the key may act on.
    pub sponsor: Option<String>,
    pub secret_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl Store {
    pub fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| diesel::insert_into(api_keys::table)
            .values((
                api_keys::key_id.eq(&key.key_id),
                api_keys::name.eq(&key.name),
                api_keys::role.eq(&key.role),
                api_keys::sponsor.eq(&key.sponsor),
                api_keys::secret_hash.eq(&key.secret_hash),
                api_keys::created_at.eq(&key.created_at),
            ))
            .execute(c))?;
        Ok(())
    }

    pub fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| api_keys::table
            .order(api_keys::created_at.asc())
            .select(StoredKey::as_select())
            .load(c))?)
    }

    /// The active key with this secret hash.
    pub fn key_by_hash(&self, hash: &str) -> Result<Option<StoredKey>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| api_keys::table
            .filter(api_keys::secret_hash.eq(hash))
            .filter(api_keys::revoked_at.is_null())
            .select(StoredKey::as_select())
            .first(c)
            .optional())?)
    }

    /// Revokes a key; false when there is no such active key.
    pub fn revoke_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = with_conn!(&mut *conn, |c| diesel::update(
            api_keys::table
                .find(key_id)
                .filter(api_keys::revoked_at.is_null())
        )
        .set(api_keys::revoked_at.eq(now_text()))
        .execute(c))?;
        Ok(n > 0)
    }

    /// Whether the key exists and is not revoked.
    pub fn key_in_force(&self, key_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let revoked: Option<Option<String>> = with_conn!(&mut *conn, |c| api_keys::table
            .find(key_id)
            .select(api_keys::revoked_at)
            .first(c)
            .optional())?;
        Ok(matches!(revoked, Some(None)))
    }

    pub fn count_keys(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| api_keys::table
            .count()
            .get_result(c))?)
    }
}
