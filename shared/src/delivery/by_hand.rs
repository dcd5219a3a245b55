//! Deliveries made by hand: a test delivery, a redelivery of one record.

use super::lease::Held;
use super::target::Target;
use super::{body, AttemptError, DeliveryError, DeliveryOptions, LEASE_SLACK};
use crate::app::App;
use crate::domain::TenantId;
use serde::Serialize;
use time::OffsetDateTime;

/// The `type` of a test delivery (`POST /v1/admin/webhook/test`): not a change record, so a
/// CRM that dispatches on `type` can answer it with a `2xx` and do nothing.
pub const TEST_TYPE: &str = "webhook.test";

/// How one delivery made by hand went (a test, or a redelivery of a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The `webhook-id` sent.
    pub webhook_id: String,
    /// The CRM answered with a `2xx`.
    pub delivered: bool,
    /// What went wrong, when it did not.
    pub error: Option<AttemptError>,
    /// A redelivered record was parked and is not any more.
    pub unparked: bool,
}

/// The body of a test delivery, in the shape of every delivery.
fn test_body(tenant: &TenantId, now: OffsetDateTime) -> Result<Vec<u8>, DeliveryError> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "type": TEST_TYPE,
        "timestamp": crate::clock::rfc3339(now),
        "data": {
            "tenant": tenant,
            "message": "A test delivery from crm-google-sync: answer 2xx to acknowledge it.",
        },
    }))?)
}

/// Sends one signed test delivery to the tenant's webhook now, once (no retry), outside the
/// feed: the cursor and the records waiting are untouched. `None`: the tenant has no webhook.
pub async fn send_test(app: &App, tenant: &TenantId) -> Result<Option<Attempt>, DeliveryError> {
    let Some(target) = Target::of(app, tenant).await? else {
        return Ok(None);
    };
    let webhook_id = format!("test_{}", ulid::Ulid::new());
    let body = test_body(tenant, app.clock.now())?;
    let timeout = DeliveryOptions::default().request_timeout;
    let sent = target.post(app, &webhook_id, &body, timeout).await?;
    Ok(Some(Attempt {
        webhook_id,
        delivered: sent.is_ok(),
        error: sent.err().map(|(e, _)| e),
        unparked: false,
    }))
}

/// Why a record could not be redelivered.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("the tenant has no webhook URL")]
    NoWebhook,
    #[error("no such record in the tenant's feed (records are kept 30 days)")]
    NoRecord,
    #[error("a delivery run is in progress; try again in a minute")]
    Busy,
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// Sends one record of the tenant's feed again, now, once, under its own `webhook-id` (the
/// CRM's idempotency key, as on every delivery), holding the tenant's delivery lease so no
/// run sends beside it. A parked record the CRM now takes is unparked; the cursor does not
/// move (the records after it were delivered already, or wait for the next run).
pub async fn redeliver(app: &App, tenant: &TenantId, id: &str) -> Result<Attempt, RedeliverError> {
    let target = Target::of(app, tenant)
        .await?
        .ok_or(RedeliverError::NoWebhook)?;
    let record = app
        .store
        .get_change(tenant, id)
        .await
        .map_err(DeliveryError::from)?
        .ok_or(RedeliverError::NoRecord)?;
    let timeout = DeliveryOptions::default().request_timeout;
    let holder = ulid::Ulid::new().to_string();
    let Some(mut lease) = Held::acquire(app, tenant, &holder, timeout + LEASE_SLACK).await? else {
        return Err(RedeliverError::Busy);
    };
    let sent = target.post(app, &record.id, &body(&record)?, timeout).await;
    let mut unparked = false;
    if matches!(sent, Ok(Ok(()))) && lease.cursor.parked.contains(&record.id) {
        let mut next = lease.cursor.clone();
        next.parked.retain(|p| *p != record.id);
        next.updated_at = app.clock.now();
        unparked = lease.save(app, next).await?;
    }
    lease.release(app).await;
    let sent = sent?;
    Ok(Attempt {
        webhook_id: record.id,
        delivered: sent.is_ok(),
        error: sent.err().map(|(e, _)| e),
        unparked,
    })
}
