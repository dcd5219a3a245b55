//! Where a tenant's webhook deliveries stand, as an admin sees them: the cursor (the last
//! record the CRM acknowledged), a run in progress, the record the CRM keeps refusing, and the
//! records parked after repeated refusals (the pull feed still has them).

use crate::app::App;
use crate::clock::rfc3339;
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
