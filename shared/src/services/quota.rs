//! Google quota: the limits the worker paces each job by, and the tenant's budget — a token
//! bucket in the store (`TENANT#{t}` / `BUDGET`, access pattern 16) shared by every worker of
//! the tenant, since a tenant is one Google Cloud project with one quota.
//!
//! The numbers ([`Limits::default`]): Google Calendar's default project quota is 1,000,000
//! requests a day, with per-minute limits per project and per user on top. A tenant refills
//! at 10 calls/s (864,000 a day, under the daily quota, and 600 a minute) with a burst of 600,
//! so a busy hour slows the tenant's syncs down before Google answers `rateLimitExceeded`;
//! an account gets at most 200 calls per job (an initial sync of 10,000 events needs about
//! 45), after which the rest continues in a job queued behind the other accounts'.
//!
//! Approximation, on purpose: workers take calls from the bucket in reservations of 20 (the
//! first one the calls an idle job makes) and give back what they did not use when the job
//! ends, so the bucket is written once per idle job and twice per busy one, rather than once
//! per call; a crashed worker's reservation is lost (the tenant runs
//! slightly under its budget, never over). A store failure does not stop syncing: the
//! budget then grants (fails open), and Google's own limits with our backoff remain.

use crate::clock::SharedClock;
use crate::domain::{GoogleQuota, Tenant, TenantId};
use crate::google::pacing::{Budget, Grant, Pacer};
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// How Google calls are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Calls (batch parts counted) one job may make for its account.
    pub calls_per_job: u32,
    /// The tenant's sustained rate, calls per second.
    pub tenant_rate: f64,
    /// The tenant's burst (bucket size).
    pub tenant_burst: u32,
    /// Calls a worker reserves from the bucket at a time.
    pub reserve: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            calls_per_job: 200,
            tenant_rate: 10.0,
            tenant_burst: 600,
            reserve: 20,
        }
    }
}

tokio::task_local! {
    static LIMITS: Limits;
}

impl Limits {
    /// The ambient limits: those set by [`with_limits`] around this task, else the default.
    pub fn current() -> Self {
        LIMITS.try_with(|l| *l).unwrap_or_default()
    }

    /// The tenant's limits (its settings' `google_quota`), unless [`with_limits`] set others
    /// around this task (tests, benchmarks).
    pub fn for_tenant(quota: &GoogleQuota) -> Self {
        LIMITS.try_with(|l| *l).unwrap_or(Self {
            calls_per_job: quota.calls_per_job,
            tenant_rate: f64::from(quota.calls_per_second),
            tenant_burst: quota.burst,
            ..Self::default()
        })
    }
}

/// Runs `fut` with `limits` as the ambient [`Limits::current`] (tests, benchmarks).
pub async fn with_limits<F: std::future::Future>(limits: Limits, fut: F) -> F::Output {
    LIMITS.scope(limits, fut).await
}

pub use crate::domain::quota::Bucket;

/// A tenant's budget in the store.
pub struct TenantBudget {
    store: Store,
    clock: SharedClock,
    tenant: TenantId,
    limits: Limits,
}

impl TenantBudget {
    pub fn new(store: Store, clock: SharedClock, tenant: TenantId, limits: Limits) -> Self {
        Self {
            store,
            clock,
            tenant,
            limits,
        }
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Applies `change` to the refilled bucket under optimistic concurrency.
    async fn update<T>(&self, mut change: impl FnMut(&mut Bucket) -> T) -> Result<T, StoreError> {
        for _ in 0..8 {
            let now = self.now_ms();
            let found = self.store.get_budget(&self.tenant).await?;
            let (bucket, version) = match found {
                Some(v) => (v.value, Some(v.version)),
                None => (
                    Bucket {
                        tokens: f64::from(self.limits.tenant_burst),
                        at_ms: now,
                    },
                    None,
                ),
            };
            let mut bucket =
                bucket.refilled(now, self.limits.tenant_rate, self.limits.tenant_burst);
            let out = change(&mut bucket);
            match self.store.put_budget(&self.tenant, &bucket, version).await {
                Ok(_) => return Ok(out),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

#[async_trait]
impl Budget for TenantBudget {
    async fn take(&self, n: u32) -> Grant {
        let rate = self.limits.tenant_rate;
        let result = self
            .update(|b| {
                let granted = (b.tokens.floor().max(0.0) as u32).min(n);
                b.tokens -= f64::from(granted);
                Grant {
                    granted,
                    retry_in: if granted == 0 {
                        b.wait_for_one(rate)
                    } else {
                        Duration::ZERO
                    },
                }
            })
            .await;
        result.unwrap_or_else(|e| {
            tracing::warn!(tenant = %self.tenant, error = %e, "Google budget unavailable; not paced");
            Grant {
                granted: n,
                retry_in: Duration::ZERO,
            }
        })
    }

    async fn give_back(&self, n: u32) {
        let burst = f64::from(self.limits.tenant_burst);
        if let Err(e) = self
            .update(|b| b.tokens = (b.tokens + f64::from(n)).min(burst))
            .await
        {
            tracing::warn!(tenant = %self.tenant, error = %e, "unused Google budget not given back");
        }
    }
}

/// The pacer of one worker job for an account of `tenant`, under its limits; the job expects
/// `idle_calls` calls when nothing changed (see [`Pacer::expecting`]).
pub fn pacer(app: &crate::app::App, tenant: &Tenant, idle_calls: u32) -> Arc<Pacer> {
    let limits = Limits::for_tenant(&tenant.settings.google_quota);
    let budget = TenantBudget::new(
        app.store.clone(),
        app.clock.clone(),
        tenant.id.clone(),
        limits,
    );
    let pacer = Pacer::new(limits.calls_per_job, Some(Arc::new(budget)), limits.reserve);
    Arc::new(pacer.expecting(idle_calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate_up_to_its_burst() {
        let b = Bucket {
            tokens: 0.0,
            at_ms: 1_000,
        };
        assert_eq!(b.refilled(2_000, 10.0, 600).tokens, 10.0);
        assert_eq!(b.refilled(1_000_000, 10.0, 600).tokens, 600.0);
        // A clock that went back does not drain it.
        assert_eq!(b.refilled(0, 10.0, 600).tokens, 0.0);
        assert_eq!(b.wait_for_one(10.0), Duration::from_millis(100));
        assert_eq!(
            Bucket {
                tokens: 0.5,
                at_ms: 0
            }
            .wait_for_one(0.5),
            Duration::from_secs(1)
        );
    }
}
