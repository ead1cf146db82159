//! Sessions for the pages: a person signs in with an access key and gets a random session
//! token (kept as a cookie; stored only as its SHA-256), valid for 8 hours of idleness and 24
//! hours at most, with a CSRF token for the forms. A revoked key ends its sessions at once.

use std::time::Duration;

use chrono::Utc;

use std::sync::Arc;

use super::access::{secret_digest, Caller, Role};
use super::{blocking, Service, ServiceError};
use crate::store::sessions::StoredSession;
use crate::store::{parse_timestamp, timestamp_text};

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// And this long after it was opened, whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(24 * 3600);
/// `last_seen_at` is written at most this often per session (a page view is not a write).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A signed-in person: the key they signed in with, and the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub caller: Caller,
    pub csrf_token: String,
}

/// A session just opened: the token goes into the cookie, once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// SHA-256 of a session token, hex (what the database holds).
fn token_hash(token: &str) -> String {
    super::access::secret_hash(token)
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

impl Service {
    /// Opens a session for the key with this secret; `None` when the key is unknown or revoked.
    pub async fn sign_in(&self, secret: &str) -> Result<Option<NewSession>, ServiceError> {
        let Some(caller) = self.authenticate(secret).await? else {
            return Ok(None);
        };
        let caller = Caller::clone(&caller);
        let token = random_token();
        let csrf_token = random_token();
        let now = Utc::now();
        let row = StoredSession {
            token_hash: token_hash(&token),
            key_id: caller.key_id.clone(),
            csrf_token: csrf_token.clone(),
            created_at: timestamp_text(now),
            last_seen_at: timestamp_text(now),
        };
        let store = self.store().clone();
        blocking(move || {
            store.sweep_sessions(&timestamp_text(now - duration(ABSOLUTE)))?;
            Ok(store.insert_session(&row)?)
        })
        .await?;
        Ok(Some(NewSession {
            token,
            session: Session { caller, csrf_token },
        }))
    }

    /// The live session with this token: `None` when it is unknown, expired (idle or absolute)
    /// or its key was revoked. Answers are trusted for at most `KEY_CACHE_TTL` (0.1 s), like
    /// keys: a sign-out or revocation on this process takes effect at once, on another within
    /// that time; a busy session is re-read by one background look-up, not by every request.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, ServiceError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let digest = secret_digest(token);
        let found = self
            .trusted(
                |s| &s.session_cache,
                digest,
                |s, d| async move { Ok(s.lookup_session(d).await?.map(Arc::new)) },
            )
            .await?;
        Ok(found.map(|s| Session::clone(&s)))
    }

    /// The live session with this token digest, from the store (ending an expired one).
    async fn lookup_session(&self, digest: [u8; 32]) -> Result<Option<Session>, ServiceError> {
        let hash = hex::encode(digest);
        let store = self.store().clone();
        blocking(move || {
            let Some((s, key)) = store.session(&hash)? else {
                return Ok(None);
            };
            let now = Utc::now();
            let created = parse_timestamp(&s.created_at)?;
            let seen = parse_timestamp(&s.last_seen_at)?;
            if now - created > duration(ABSOLUTE) || now - seen > duration(IDLE) {
                store.delete_session(&hash)?;
                return Ok(None);
            }
            if now - seen > duration(TOUCH_EVERY) {
                store.touch_session(&hash, &timestamp_text(now))?;
            }
            let role = Role::parse(&key.role).ok_or_else(|| {
                ServiceError::invariant(format!(
                    "key {} has unknown role {:?}",
                    key.key_id, key.role
                ))
            })?;
            Ok(Some(Session {
                caller: Caller {
                    key_id: key.key_id,
                    role,
                    sponsor: key.sponsor,
                },
                csrf_token: s.csrf_token,
            }))
        })
        .await
    }

    /// Ends the session with this token (nothing happens for an unknown one).
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let hash = token_hash(token);
        let store = self.store().clone();
        let result = blocking(move || Ok(store.delete_session(&hash)?)).await;
        self.session_cache.clear();
        result
    }
}
