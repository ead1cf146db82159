//! Access keys and roles: who may do what.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{blocking, Service, ServiceError};
use crate::store::keys::KeyRecord;
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
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Awarder => "awarder",
            Self::Counselor => "counselor",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Awarder, Self::Counselor, Self::Auditor]
            .into_iter()
            .find(|r| r.as_str() == s)
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
            Role::Awarder => self.sponsor.as_deref() == Some(sponsor),
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

/// Known keys by secret hash, with when they were looked up.
pub type KeyCache = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<String, (Caller, std::time::Instant)>>,
>;

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key directly in a store (the CLI and first start use this).
pub fn create_key(
    store: &Store,
    role: Role,
    sponsor: Option<String>,
    name: Option<String>,
) -> Result<NewKey, ServiceError> {
    match (role, &sponsor) {
        (Role::Awarder, None) => {
            return Err(ServiceError::invalid(
                "sponsor",
                "an awarder key needs a sponsor",
            ))
        }
        (Role::Awarder, Some(s)) if s.trim().is_empty() || s.len() > 128 => {
            return Err(ServiceError::invalid("sponsor", "must be 1-128 characters"))
        }
        (Role::Admin | Role::Counselor | Role::Auditor, Some(_)) => {
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
    store.insert_key(&KeyRecord {
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
    /// The caller holding `secret`, if it is an active key. Known keys are remembered for
    /// `KEY_CACHE_TTL`: a revocation takes effect at once on the process that made it (the cache
    /// is cleared) and within that time on other processes sharing the database.
    pub async fn authenticate(&self, secret: String) -> Result<Option<Caller>, ServiceError> {
        let hash = secret_hash(&secret);
        if let Ok(cache) = self.key_cache.lock() {
            if let Some((caller, at)) = cache.get(&hash) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(Some(caller.clone()));
                }
            }
        }
        let found = self.lookup_key(secret).await?;
        if let (Some(caller), Ok(mut cache)) = (&found, self.key_cache.lock()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (caller.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }

    async fn lookup_key(&self, secret: String) -> Result<Option<Caller>, ServiceError> {
        let store = self.store().clone();
        blocking(move || {
            let Some(k) = store.key_by_hash(&secret_hash(&secret))? else {
                return Ok(None);
            };
            let role = Role::parse(&k.role).ok_or_else(|| {
                ServiceError::Internal(format!("key {} has unknown role", k.key_id))
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
        blocking(move || Ok(store.keys()?)).await
    }

    pub async fn revoke_key(&self, key_id: String) -> Result<(), ServiceError> {
        let store = self.store().clone();
        let result = blocking(move || {
            if store.revoke_key(&key_id)? {
                Ok(())
            } else {
                Err(ServiceError::NotFound {
                    what: "active key",
                    id: key_id,
                })
            }
        })
        .await;
        if let Ok(mut cache) = self.key_cache.lock() {
            cache.clear();
        }
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
