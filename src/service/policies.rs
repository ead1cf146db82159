//! Reading the published policies.

use std::sync::Arc;

use super::{blocking, Service, ServiceError};
use crate::policy::PolicyVersion;

/// A version with when it was recorded.
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    pub version: Arc<PolicyVersion>,
    pub published_at: Option<String>,
}

impl Service {
    /// Every version of every policy, grouped by id in id order.
    pub async fn policies(&self) -> Result<Vec<(String, Vec<PublishedVersion>)>, ServiceError> {
        let store = self.store().clone();
        let registry = self.registry();
        let stored = blocking(move || Ok(store.policy_versions()?)).await?;
        let published_at = |id: &str, v: u32| {
            stored
                .iter()
                .find(|s| s.version.meta.id == id && s.version.meta.version == v)
                .map(|s| s.published_at.clone())
        };
        Ok(registry
            .ids()
            .into_iter()
            .map(|id| {
                let versions = registry
                    .versions_of(id)
                    .map(|v| PublishedVersion {
                        version: v.clone(),
                        published_at: published_at(id, v.meta.version),
                    })
                    .collect();
                (id.to_string(), versions)
            })
            .collect())
    }

    pub async fn policy(&self, id: &str) -> Result<Vec<PublishedVersion>, ServiceError> {
        self.policies()
            .await?
            .into_iter()
            .find(|(pid, _)| pid == id)
            .map(|(_, v)| v)
            .ok_or_else(|| ServiceError::NotFound {
                what: "policy",
                id: id.to_string(),
            })
    }
}
