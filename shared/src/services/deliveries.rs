//! Where a tenant's webhook deliveries stand, as an admin sees them: the cursor (the last
//! record the CRM acknowledged), a run in progress, the record the CRM keeps refusing, and the
//! records parked after repeated refusals (the pull feed still has them); a test delivery and
//! the redelivery of one record, by hand.

use crate::app::App;
use crate::clock::rfc3339;
use crate::delivery::{self, Attempt, DeliveryError, RedeliverError};
use crate::domain::TenantId;
use crate::http::ApiError;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct DeliveriesView {
    pub webhook_set: bool,
    /// The last record the CRM acknowledged with a `2xx` (`None`: nothing delivered yet).
    pub last_delivered: Option<String>,
    pub updated_at: Option<String>,
    /// A run is delivering until then.
    pub delivering_until: Option<String>,
    pub failing: Option<FailingView>,
    /// Newest first.
    pub parked: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FailingView {
    pub record: String,
    pub runs: u32,
    pub since: String,
}

pub async fn status(app: &App, t: &TenantId) -> Result<DeliveriesView, ApiError> {
    let tenant = super::tenants::get(app, t).await?;
    let cursor = app.store.get_delivery_cursor(t).await?.map(|v| v.value);
    let now = app.clock.now();
    Ok(match cursor {
        None => DeliveriesView {
            webhook_set: tenant.settings.webhook_url.is_some(),
            last_delivered: None,
            updated_at: None,
            delivering_until: None,
            failing: None,
            parked: Vec::new(),
        },
        Some(c) => DeliveriesView {
            webhook_set: tenant.settings.webhook_url.is_some(),
            last_delivered: c.last_delivered,
            updated_at: Some(rfc3339(c.updated_at)),
            delivering_until: c.lease.filter(|l| l.until > now).map(|l| rfc3339(l.until)),
            failing: c.failing.map(|f| FailingView {
                record: f.id,
                runs: f.runs,
                since: rfc3339(f.since),
            }),
            parked: c.parked.into_iter().rev().collect(),
        },
    })
}

/// What the admin API answers for a delivery run by hand.
fn delivery_error(e: DeliveryError) -> ApiError {
    match e {
        DeliveryError::TenantNotFound => ApiError::not_found("tenant not found"),
        DeliveryError::MissingSecret => ApiError::conflict(
            "webhook_secret_missing",
            "the webhook has no signing secret: rotate it under the tenant's settings",
        ),
        DeliveryError::InvalidUrl => ApiError::conflict(
            "webhook_url_invalid",
            "the webhook URL is not a valid public https URL: set another one",
        ),
        other => {
            let retryable = other.is_retryable();
            ApiError::internal(&other, retryable)
        }
    }
}

fn no_webhook() -> ApiError {
    ApiError::conflict(
        "no_webhook",
        "the tenant has no webhook URL: set one in the tenant's settings first",
    )
}

/// `POST /v1/admin/webhook/test`: one signed `webhook.test` delivery, now.
pub async fn send_test(app: &App, t: &TenantId) -> Result<Attempt, ApiError> {
    delivery::send_test(app, t)
        .await
        .map_err(delivery_error)?
        .ok_or_else(no_webhook)
}

/// `POST /v1/admin/deliveries/redeliver`: one record of the feed sent again, now.
pub async fn redeliver(app: &App, t: &TenantId, record: &str) -> Result<Attempt, ApiError> {
    if record.is_empty() || record.len() > 64 || !record.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ApiError::invalid(
            "record: a change record id (26 characters)",
        ));
    }
    delivery::redeliver(app, t, record)
        .await
        .map_err(|e| match e {
            RedeliverError::NoWebhook => no_webhook(),
            RedeliverError::NoRecord => ApiError::not_found(e.to_string()),
            RedeliverError::Busy => {
                ApiError::conflict("delivery_running", e.to_string()).with_retry_after(30)
            }
            RedeliverError::Delivery(e) => delivery_error(e),
        })
}
