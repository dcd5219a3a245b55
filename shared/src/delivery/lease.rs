//! The tenant's delivery cursor as a run holds it: the lease, the cursor's moves, parking.

use super::{DeliveryCursor, DeliveryError, DeliveryOptions, Failing, Lease, PARKED_KEPT};
use crate::app::App;
use crate::domain::TenantId;
use crate::store::StoreError;
use std::time::Duration;

/// The cursor item as this run last wrote it (lease held).
pub(super) struct Held {
    pub(super) cursor: DeliveryCursor,
    version: u64,
    holder: String,
}

impl Held {
    /// Takes the tenant's lease unless another run holds an unexpired one.
    pub(super) async fn acquire(
        app: &App,
        tenant: &TenantId,
        holder: &str,
        lease_for: Duration,
    ) -> Result<Option<Self>, DeliveryError> {
        for _ in 0..3 {
            let now = app.clock.now();
            let (mut cursor, expected) = match app.store.get_delivery_cursor(tenant).await? {
                Some(found) => (found.value, Some(found.version)),
                None => (
                    DeliveryCursor {
                        tenant: tenant.clone(),
                        last_delivered: None,
                        lease: None,
                        updated_at: now,
                        failing: None,
                        parked: Vec::new(),
                    },
                    None,
                ),
            };
            if cursor.lease.as_ref().is_some_and(|l| l.until > now) {
                return Ok(None);
            }
            cursor.lease = Some(Lease {
                holder: holder.to_owned(),
                until: now + lease_for,
            });
            cursor.updated_at = now;
            match app.store.put_delivery_cursor(&cursor, expected).await {
                Ok(version) => {
                    return Ok(Some(Self {
                        cursor,
                        version,
                        holder: holder.to_owned(),
                    }))
                }
                // Someone wrote in between: look again (they may hold the lease now).
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Moves the cursor past `id` (and extends the lease); `Ok(false)` if the lease was lost.
    pub(super) async fn advance(
        &mut self,
        app: &App,
        id: &str,
        lease_for: Duration,
    ) -> Result<bool, DeliveryError> {
        let now = app.clock.now();
        let mut next = self.cursor.clone();
        next.last_delivered = Some(id.to_owned());
        next.failing = None;
        next.lease = Some(Lease {
            holder: self.holder.clone(),
            until: now + lease_for,
        });
        next.updated_at = now;
        self.save(app, next).await
    }

    /// Records that `id` failed in this run; parks it (moves the cursor past it) once it has
    /// failed in `park_after_runs` runs over at least `park_after`. Returns whether it was
    /// parked, `None` if the lease was lost.
    pub(super) async fn fail(
        &mut self,
        app: &App,
        id: &str,
        options: &DeliveryOptions,
    ) -> Result<Option<bool>, DeliveryError> {
        let now = app.clock.now();
        let mut next = self.cursor.clone();
        let failing = match next.failing.take() {
            Some(f) if f.id == id => Failing {
                runs: f.runs.saturating_add(1),
                ..f
            },
            _ => Failing {
                id: id.to_owned(),
                runs: 1,
                since: now,
            },
        };
        let long_enough = time::Duration::try_from(options.park_after)
            .is_ok_and(|after| now - failing.since >= after);
        let park = failing.runs >= options.park_after_runs && long_enough;
        if park {
            next.last_delivered = Some(id.to_owned());
            next.parked.push(id.to_owned());
            let excess = next.parked.len().saturating_sub(PARKED_KEPT);
            next.parked.drain(..excess);
        } else {
            next.failing = Some(failing);
        }
        next.updated_at = now;
        Ok(self.save(app, next).await?.then_some(park))
    }

    /// Writes the cursor on the version this run holds; `Ok(false)` if the lease was lost.
    pub(super) async fn save(
        &mut self,
        app: &App,
        next: DeliveryCursor,
    ) -> Result<bool, DeliveryError> {
        match app
            .store
            .put_delivery_cursor(&next, Some(self.version))
            .await
        {
            Ok(version) => {
                self.cursor = next;
                self.version = version;
                Ok(true)
            }
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Frees the lease (best effort: an unreleased lease expires by itself).
    pub(super) async fn release(&mut self, app: &App) {
        let mut next = self.cursor.clone();
        next.lease = None;
        next.updated_at = app.clock.now();
        // `Ok(false)`: taken over meanwhile, nothing of ours left to free.
        if let Err(e) = self.save(app, next).await {
            tracing::warn!(tenant = %self.cursor.tenant, error = %e, "could not release the webhook delivery lease")
        }
    }
}
