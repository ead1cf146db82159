//! Access keys and roles: who may do what.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{blocking, Service, ServiceError};
use crate::store::keys::StoredKey;
use crate::store::{now_text, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Awards, revocations, budgets and the ledger of its own sponsor's policies.
    Awarder,
    /// Students and previews.
    Counselor,
    /// Read-only: ledger, verification, replay.
    Auditor,
    /// Publishes and simulates versions of its own sponsor's policies.
    Author,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Awarder => "awarder",
            Self::Counselor => "counselor",
            Self::Auditor => "auditor",
            Self::Author => "author",
        }
    }

    /// Every role.
    pub const ALL: [Role; 5] = [
        Self::Admin,
        Self::Awarder,
        Self::Counselor,
        Self::Auditor,
        Self::Author,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a key of this role acts for one sponsor (and must name it).
    pub fn bound_to_sponsor(self) -> bool {
        matches!(self, Self::Awarder | Self::Author)
    }
}

/// A key as listed: never its secret, nor the secret's hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyRecord {
    pub key_id: String,
    pub name: String,
    /// `admin`, `awarder`, `counselor` or `auditor`.
    pub role: String,
    /// For awarders: the sponsor whose policies the key may act on.
    pub sponsor: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<StoredKey> for KeyRecord {
    fn from(k: StoredKey) -> Self {
        Self {
            key_id: k.key_id,
            name: k.name,
            role: k.role,
            sponsor: k.sponsor,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// The key a request acts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
    pub sponsor: Option<String>,
}

impl Caller {
    /// Whether this caller may act on a policy of `sponsor` (admins always; awarders for
    /// their own sponsor only).
    pub fn may_act_for(&self, sponsor: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Awarder | Role::Author => self.sponsor.as_deref() == Some(sponsor),
            Role::Counselor | Role::Auditor => false,
        }
    }
}

/// A new key: the stored record and the secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    pub sponsor: Option<String>,
    /// The bearer secret. Shown only now; only its hash is stored.
    pub secret: String,
}

/// How long a known key is trusted without asking the database again.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(100);

/// Known keys by secret digest (see [`TrustCache`]).
pub type KeyCache = TrustCache<std::sync::Arc<Caller>>;

/// What the database said about a secret (a key's, a session's), by the secret's digest. An
/// entry is trusted for `KEY_CACHE_TTL` after its look-up and never longer. Past half that age,
/// the first request to notice starts one look-up in the background while requests go on using
/// the entry, so a busy key is re-checked about every 50 ms by one look-up instead of by every
/// request in flight when it expires (which, at thousands of previews a second, put a burst of
/// database look-ups on every expiry).
pub struct TrustCache<V> {
    inner: std::sync::Mutex<TrustCacheInner<V>>,
}

impl<V> Default for TrustCache<V> {
    fn default() -> Self {
        Self {
            inner: std::sync::Mutex::new(TrustCacheInner {
                entries: Default::default(),
                generation: 0,
            }),
        }
    }
}

struct TrustCacheInner<V> {
    entries: std::collections::HashMap<[u8; 32], TrustEntry<V>>,
    /// Bumped by `clear`: a look-up that started before a revocation must not store its answer.
    generation: u64,
}

struct TrustEntry<V> {
    value: V,
    at: std::time::Instant,
    refreshing: bool,
}

/// What the cache says about a secret.
/// `generation`: the cache's, to store a look-up's answer under.
pub(crate) enum Cached<V> {
    /// Trusted; `refresh` asks the caller to start the background look-up.
    Hit {
        value: V,
        refresh: bool,
        generation: u64,
    },
    /// Unknown or expired: look it up now.
    Miss(u64),
}

impl<V: Clone> TrustCache<V> {
    pub(crate) fn get(&self, digest: &[u8; 32]) -> Cached<V> {
        let Ok(mut inner) = self.inner.lock() else {
            return Cached::Miss(u64::MAX);
        };
        let generation = inner.generation;
        let entry = inner.entries.get_mut(digest).map(|e| (e.at.elapsed(), e));
        match entry {
            Some((age, e)) if age < KEY_CACHE_TTL => {
                let refresh = !e.refreshing && age >= KEY_CACHE_TTL / 2;
                e.refreshing |= refresh;
                Cached::Hit {
                    value: e.value.clone(),
                    refresh,
                    generation,
                }
            }
            _ => Cached::Miss(generation),
        }
    }

    /// Stores a look-up's answer, unless the cache was cleared since it started.
    pub(crate) fn store(&self, digest: [u8; 32], found: Option<&V>, generation: u64) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation {
            return;
        }
        match found {
            Some(value) => {
                if inner.entries.len() >= 10_000 {
                    inner.entries.clear();
                }
                inner.entries.insert(
                    digest,
                    TrustEntry {
                        value: value.clone(),
                        at: std::time::Instant::now(),
                        refreshing: false,
                    },
                );
            }
            None => {
                inner.entries.remove(&digest);
            }
        }
    }

    /// Forgets a failed background look-up, so a later request tries again.
    pub(crate) fn refresh_failed(&self, digest: &[u8; 32]) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(e) = inner.entries.get_mut(digest) {
                e.refreshing = false;
            }
        }
    }

    /// Forgets everything (after a revocation or a sign-out on this process).
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.clear();
            inner.generation += 1;
        }
    }
}

/// The SHA-256 digest of a secret (the cache's key).
pub(crate) fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The stored form of a secret: its SHA-256 digest, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// Creates a key directly in a store (the CLI and first start use this).
pub fn create_key(
    store: &Store,
    role: Role,
    sponsor: Option<String>,
    name: Option<String>,
) -> Result<NewKey, ServiceError> {
    match (role, &sponsor) {
        (r, None) if r.bound_to_sponsor() => {
            return Err(ServiceError::invalid(
                "sponsor",
                format!("an {} key needs a sponsor", r.as_str()),
            ))
        }
        (r, Some(s))
            if r.bound_to_sponsor() && (s.trim().is_empty() || s.chars().count() > 128) =>
        {
            return Err(ServiceError::invalid("sponsor", "must be 1-128 characters"))
        }
        (r, Some(_)) if !r.bound_to_sponsor() => {
            return Err(ServiceError::invalid(
                "sponsor",
                "only awarder keys have a sponsor",
            ))
        }
        _ => {}
    }
    let name = name.unwrap_or_else(|| format!("{} key", role.as_str()));
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "must be 1-128 printable characters",
        ));
    }
    let random: [u8; 24] = rand::random();
    let secret = format!("eligo_{}", hex::encode(random));
    let key_id = format!("key_{}", &hex::encode(rand::random::<[u8; 8]>()));
    store.insert_key(&StoredKey {
        key_id: key_id.clone(),
        name: name.clone(),
        role: role.as_str().to_string(),
        sponsor: sponsor.clone(),
        secret_hash: secret_hash(&secret),
        created_at: now_text(),
        revoked_at: None,
    })?;
    Ok(NewKey {
        key_id,
        name,
        role,
        sponsor,
        secret,
    })
}

/// On a database with no keys at all, creates one admin key (the first start); `None` when keys
/// exist already. Racing first starts of two processes may each create one: both are valid
/// admin keys, and each process prints its own.
pub fn ensure_first_key(store: &Store) -> Result<Option<NewKey>, super::StartError> {
    if store.count_keys()? > 0 {
        return Ok(None);
    }
    create_key(store, Role::Admin, None, Some("first admin".into()))
        .map(Some)
        .map_err(|e| super::StartError::FirstKey(e.to_string()))
}

impl Service {
    /// The caller holding `secret`, if it is an active key. Known keys are remembered for at
    /// most `KEY_CACHE_TTL` (see [`KeyCache`]): a revocation takes effect at once on the process
    /// that made it (the cache is cleared) and within that time on other processes sharing the
    /// database.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<Option<std::sync::Arc<Caller>>, ServiceError> {
        let digest = secret_digest(secret);
        self.trusted(
            |s| &s.key_cache,
            digest,
            |s, d| async move { Ok(s.lookup_key(d).await?.map(std::sync::Arc::new)) },
        )
        .await
    }

    /// `lookup`'s answer for `digest` through `cache`: an entry younger than `KEY_CACHE_TTL` is
    /// trusted (and past half that age re-read once in the background); otherwise the look-up
    /// runs now and its answer is stored.
    pub(crate) async fn trusted<V, L, Fut>(
        &self,
        cache: fn(&Service) -> &TrustCache<V>,
        digest: [u8; 32],
        lookup: L,
    ) -> Result<Option<V>, ServiceError>
    where
        V: Clone + Send + Sync + 'static,
        L: Fn(Service, [u8; 32]) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<V>, ServiceError>> + Send + 'static,
    {
        let generation = match cache(self).get(&digest) {
            Cached::Hit {
                value,
                refresh,
                generation,
            } => {
                if refresh {
                    let service = self.clone();
                    let lookup = lookup.clone();
                    tokio::spawn(async move {
                        match lookup(service.clone(), digest).await {
                            Ok(found) => cache(&service).store(digest, found.as_ref(), generation),
                            Err(e) => {
                                tracing::warn!("refreshing a cached look-up failed: {e}");
                                cache(&service).refresh_failed(&digest);
                            }
                        }
                    });
                }
                return Ok(Some(value));
            }
            Cached::Miss(generation) => generation,
        };
        let found = lookup(self.clone(), digest).await?;
        cache(self).store(digest, found.as_ref(), generation);
        Ok(found)
    }

    /// The active key with this secret digest, from the store.
    async fn lookup_key(&self, digest: [u8; 32]) -> Result<Option<Caller>, ServiceError> {
        let store = self.store().clone();
        blocking(move || {
            let Some(k) = store.key_by_hash(&hex::encode(digest))? else {
                return Ok(None);
            };
            let role = Role::parse(&k.role).ok_or_else(|| {
                ServiceError::invariant(format!("key {} has unknown role {:?}", k.key_id, k.role))
            })?;
            Ok(Some(Caller {
                key_id: k.key_id,
                role,
                sponsor: k.sponsor,
            }))
        })
        .await
    }

    pub async fn create_key(
        &self,
        role: Role,
        sponsor: Option<String>,
        name: Option<String>,
    ) -> Result<NewKey, ServiceError> {
        let store = self.store().clone();
        blocking(move || create_key(&store, role, sponsor, name)).await
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, ServiceError> {
        let store = self.store().clone();
        blocking(move || Ok(store.keys()?.into_iter().map(KeyRecord::from).collect())).await
    }

    pub async fn revoke_key(&self, key_id: String) -> Result<(), ServiceError> {
        let store = self.store().clone();
        let result = blocking(move || {
            if store.revoke_key(&key_id)? {
                // Its sessions end too (a session of a revoked key is refused anyway).
                store.delete_sessions_of(&key_id)?;
                Ok(())
            } else {
                Err(ServiceError::NotFound {
                    what: "active key",
                    id: key_id,
                })
            }
        })
        .await;
        self.key_cache.clear();
        self.session_cache.clear();
        result
    }

    /// The sponsor of a policy, if the policy exists.
    pub fn sponsor_of(&self, policy_id: &str) -> Option<String> {
        self.registry()
            .versions_of(policy_id)
            .last()
            .map(|v| v.meta.sponsor.clone())
    }

    /// Policy ids whose sponsor is `sponsor`.
    pub fn policies_of(&self, sponsor: &str) -> Vec<String> {
        let registry = self.registry();
        registry
            .ids()
            .into_iter()
            .filter(|id| registry.versions_of(id).any(|v| v.meta.sponsor == sponsor))
            .map(str::to_string)
            .collect()
    }

    /// The policy an award belongs to.
    pub async fn award_policy(&self, award_id: String) -> Result<Option<String>, ServiceError> {
        let store = self.store().clone();
        blocking(move || Ok(store.award_policy(&award_id)?)).await
    }

    /// The policy of a ledger entry.
    pub async fn entry_policy(&self, seq: i64) -> Result<Option<String>, ServiceError> {
        let store = self.store().clone();
        blocking(move || Ok(store.ledger_entry(seq)?.map(|e| e.fields.policy_id))).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn caller(id: &str) -> Arc<Caller> {
        Arc::new(Caller {
            key_id: id.into(),
            role: Role::Counselor,
            sponsor: None,
        })
    }

    fn hit(cached: Cached<Arc<Caller>>) -> Option<(String, bool)> {
        match cached {
            Cached::Hit { value, refresh, .. } => Some((value.key_id.clone(), refresh)),
            Cached::Miss(_) => None,
        }
    }

    fn generation(cached: Cached<Arc<Caller>>) -> u64 {
        match cached {
            Cached::Hit { generation, .. } | Cached::Miss(generation) => generation,
        }
    }

    #[test]
    fn a_key_is_trusted_for_the_ttl_and_refreshed_once_past_half_of_it() {
        let cache = KeyCache::default();
        let digest = [1u8; 32];
        let g = generation(cache.get(&digest));
        assert!(hit(cache.get(&digest)).is_none(), "unknown keys miss");
        cache.store(digest, Some(&caller("k1")), g);
        assert_eq!(hit(cache.get(&digest)), Some(("k1".into(), false)));
        std::thread::sleep(KEY_CACHE_TTL / 2 + Duration::from_millis(5));
        // Past half the TTL: exactly one request is asked to refresh; all are still served.
        assert_eq!(hit(cache.get(&digest)), Some(("k1".into(), true)));
        assert_eq!(hit(cache.get(&digest)), Some(("k1".into(), false)));
        std::thread::sleep(KEY_CACHE_TTL / 2);
        // Past the TTL the entry is never used, refresh or not.
        assert!(hit(cache.get(&digest)).is_none());
    }

    #[test]
    fn a_refresh_stores_the_new_answer_and_a_revoked_key_is_forgotten() {
        let cache = KeyCache::default();
        let digest = [2u8; 32];
        let g = generation(cache.get(&digest));
        cache.store(digest, Some(&caller("k2")), g);
        cache.store(digest, None, g);
        assert!(hit(cache.get(&digest)).is_none());
    }

    #[test]
    fn a_look_up_that_started_before_a_clear_does_not_store_its_answer() {
        let cache = KeyCache::default();
        let digest = [3u8; 32];
        let before = generation(cache.get(&digest));
        cache.clear(); // a revocation on this process
        cache.store(digest, Some(&caller("stale")), before);
        assert!(hit(cache.get(&digest)).is_none());
        let after = generation(cache.get(&digest));
        cache.store(digest, Some(&caller("fresh")), after);
        assert_eq!(hit(cache.get(&digest)), Some(("fresh".into(), false)));
    }

    #[test]
    fn a_failed_refresh_lets_a_later_request_try_again() {
        let cache = KeyCache::default();
        let digest = [4u8; 32];
        let g = generation(cache.get(&digest));
        cache.store(digest, Some(&caller("k4")), g);
        std::thread::sleep(KEY_CACHE_TTL / 2 + Duration::from_millis(5));
        assert_eq!(hit(cache.get(&digest)), Some(("k4".into(), true)));
        cache.refresh_failed(&digest);
        assert_eq!(hit(cache.get(&digest)), Some(("k4".into(), true)));
    }
}
