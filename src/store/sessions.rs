//! Page sessions: rows keyed by the SHA-256 of the session token (never the token), each bound
//! to the access key it was opened with.

use diesel::prelude::*;

use super::keys::StoredKey;
use super::schema::{api_keys, sessions};
use super::{Store, StoreError};
use crate::with_conn;

diesel::joinable!(sessions -> api_keys (key_id));
diesel::allow_tables_to_appear_in_same_query!(sessions, api_keys);

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct StoredSession {
    pub token_hash: String,
    pub key_id: String,
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
}

impl Store {
    pub fn insert_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| diesel::insert_into(sessions::table)
            .values(session)
            .execute(c))?;
        Ok(())
    }

    /// The session with this token hash and its key, while the key is not revoked.
    pub fn session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(StoredSession, StoredKey)>, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| sessions::table
            .inner_join(api_keys::table)
            .filter(sessions::token_hash.eq(token_hash))
            .filter(api_keys::revoked_at.is_null())
            .select((StoredSession::as_select(), StoredKey::as_select()))
            .first(c)
            .optional())?)
    }

    /// Records that the session was used at `now`.
    pub fn touch_session(&self, token_hash: &str, now: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| diesel::update(
            sessions::table.find(token_hash)
        )
        .set(sessions::last_seen_at.eq(now))
        .execute(c))?;
        Ok(())
    }

    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        with_conn!(&mut *conn, |c| diesel::delete(
            sessions::table.find(token_hash)
        )
        .execute(c))?;
        Ok(())
    }

    /// Ends every session of a key (when it is revoked).
    pub fn delete_sessions_of(&self, key_id: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| diesel::delete(
            sessions::table.filter(sessions::key_id.eq(key_id))
        )
        .execute(c))?)
    }

    /// Deletes sessions opened before `cutoff` (past their absolute lifetime).
    pub fn sweep_sessions(&self, cutoff: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        Ok(with_conn!(&mut *conn, |c| diesel::delete(
            sessions::table.filter(sessions::created_at.lt(cutoff))
        )
        .execute(c))?)
    }
}
