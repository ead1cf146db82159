//! Published policies: reading them, publishing a version (checked first), and noticing
//! versions another instance published.

use std::sync::Arc;

use super::access::Caller;
use super::{blocking, Service, ServiceError};
use crate::policy::publish::{self, Coverage, Refusal, TestSummary};
use crate::policy::tests::{CaseResult, TestSuite};
use crate::policy::{PolicyVersion, Registry};
use crate::store::policies::{NewVersion, StoredVersion};

/// How often an instance looks for versions published through another: well inside the one
/// second a new version may take to be served everywhere.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// A version with when it was recorded.
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    pub version: Arc<PolicyVersion>,
    pub published_at: Option<String>,
    /// The cases it was checked with (absent for versions recorded before cases were kept).
    pub tests: Option<TestSuite>,
    pub published_by: Option<String>,
}

/// What publishing (or a dry run) found.
#[derive(Debug, Clone)]
pub struct Publication {
    pub version: PolicyVersion,
    pub summary: TestSummary,
    /// Each case's result, in the order of the cases.
    pub results: Vec<CaseResult>,
    pub coverage: Coverage,
    /// Whether this call recorded it (false on a dry run and when it was already published).
    pub recorded: bool,
    pub already_published: bool,
    pub dry_run: bool,
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        Self::Refused(Box::new(r))
    }
}

/// Refuses a caller acting on a policy of another sponsor.
pub(crate) fn require_sponsor(
    caller: &Caller,
    id: &str,
    sponsor: &str,
) -> Result<(), ServiceError> {
    if caller.may_act_for(sponsor) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "this key may not act on {id}: its sponsor is {sponsor}, the key's is {}",
            caller.sponsor.as_deref().unwrap_or("none")
        )))
    }
}

impl Service {
    /// Every version of every policy, grouped by id in id order.
    pub async fn policies(&self) -> Result<Vec<(String, Vec<PublishedVersion>)>, ServiceError> {
        let store = self.store().clone();
        let registry = self.registry();
        let stored = blocking(move || Ok(store.policy_versions()?)).await?;
        let find = |id: &str, v: u32| {
            stored
                .iter()
                .find(|s| s.version.meta.id == id && s.version.meta.version == v)
        };
        Ok(registry
            .ids()
            .into_iter()
            .map(|id| {
                let versions = registry
                    .versions_of(id)
                    .map(|v| {
                        let s = find(id, v.meta.version);
                        PublishedVersion {
                            version: v.clone(),
                            published_at: s.map(|s| s.published_at.clone()),
                            tests: s
                                .and_then(|s| s.tests.as_deref())
                                .and_then(|t| serde_json::from_str(t).ok()),
                            published_by: s.and_then(|s| s.published_by.clone()),
                        }
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

    /// Compiles `source`, checks it may be published by `caller` (its sponsor, and the sponsor
    /// of the policy it adds a version to, must be the caller's), runs every check and, unless
    /// `dry_run`, records it and serves it at once. Every instance serves it within a second.
    pub async fn publish(
        &self,
        caller: &Caller,
        source: String,
        suite: TestSuite,
        dry_run: bool,
    ) -> Result<Publication, ServiceError> {
        let service = self.clone();
        let caller = caller.clone();
        blocking(move || {
            let origin = format!("published by key {}", caller.key_id);
            let candidate = publish::load_candidate(&source, &origin)?;
            let id = candidate.meta.id.clone();
            require_sponsor(&caller, &id, &candidate.meta.sponsor)?;
            if let Some(sponsor) = service.sponsor_of(&id) {
                require_sponsor(&caller, &id, &sponsor)?;
            }
            // Superseding an open-ended version from a past date would change which rule was in
            // force on days already decided: a new version supersedes from today on at the
            // earliest.
            let today = chrono::Utc::now().date_naive();
            if candidate.meta.effective_from < today {
                let registry = service.registry();
                let superseded: Option<u32> = registry
                    .versions_of(&id)
                    .find(|v| {
                        v.meta.version != candidate.meta.version
                            && v.meta.effective_from < candidate.meta.effective_from
                            && v.meta
                                .effective_to
                                .is_none_or(|to| to > candidate.meta.effective_from)
                    })
                    .map(|v| v.meta.version);
                if let Some(open) = superseded {
                    return Err(publish::Refusal::Period(format!(
                        "{id} version {} would end version {} on {}, a day already past: a new \
                         version supersedes from today ({today}) on",
                        candidate.meta.version, open, candidate.meta.effective_from
                    ))
                    .into());
                }
            }
            let checked = publish::check(&service.registry(), candidate, suite)?;
            let mut publication = Publication {
                version: checked.version,
                summary: checked.summary,
                results: checked.results,
                coverage: checked.coverage,
                recorded: false,
                already_published: checked.already_published,
                dry_run,
            };
            if dry_run || checked.already_published {
                return Ok(publication);
            }
            let new = NewVersion {
                version: &publication.version,
                tests: Some(serde_json::to_string(&checked.suite)?),
                published_by: Some(&caller.key_id),
            };
            // Checked again under the program lock against what is stored now: another
            // instance may have published since this one last refreshed.
            let recorded = service.store().publish_policy_version(&new, |stored| {
                publish::fits(stored.iter(), new.version).map(|_| ())
            })??;
            publication.recorded = recorded;
            service.refresh_policies()?;
            Ok(publication)
        })
        .await
    }

    /// Runs a version's cases as publishing does (for pages that show them).
    pub async fn run_cases(
        &self,
        version: Arc<PolicyVersion>,
        suite: TestSuite,
    ) -> Result<(Vec<CaseResult>, Coverage), ServiceError> {
        let registry = self.registry();
        blocking(move || Ok(publish::run_cases(&registry, &version, &suite)?)).await
    }

    /// Rebuilds the policies in force from the store (blocking).
    pub fn refresh_policies(&self) -> Result<(), ServiceError> {
        let _one_at_a_time = match self.refresh.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stored: Vec<PolicyVersion> = self
            .store()
            .policy_versions()?
            .into_iter()
            .map(|s: StoredVersion| s.version)
            .collect();
        let registry = Registry::new(stored, self.registry().suites().to_vec())
            .map_err(|e| ServiceError::internal("stored policies do not load", e))?;
        let mut slot = match self.registry.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(registry);
        Ok(())
    }

    /// Serves versions published through other instances: polls the number of stored versions
    /// every [`POLL_INTERVAL`] and reloads when it changes. Runs until the runtime stops.
    pub async fn watch_policies(self) {
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            let store = self.store().clone();
            let count = match blocking(move || Ok(store.policy_version_count()?)).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "cannot poll for published policies");
                    continue;
                }
            };
            // Compared with what is served (not with the last count seen): a reload by a
            // publication on this instance may have served an older snapshot since.
            if count == self.registry().versions().len() as i64 {
                continue;
            }
            let service = self.clone();
            match blocking(move || service.refresh_policies()).await {
                Ok(()) => {
                    tracing::info!(versions = count, "published policies reloaded");
                }
                Err(e) => tracing::error!(error = %e.chain(), "cannot reload published policies"),
            }
        }
    }
}
