//! The tenant's change feed: what the CRM must learn about, in order.

use crate::app::App;
use crate::domain::{Account, AccountStatus, ChangeKind, ChangeRecord, Products, TenantId};
use crate::http::ApiError;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use serde::Serialize;

/// Appends a record — the feed gives it its id (the tenant's next number, as a ULID-shaped
/// string), so the feed is ordered by when records took their numbers — and asks the worker
/// to deliver it to the CRM's webhook now (what sync jobs write is delivered at the end of the
/// job; this is for records written anywhere else).
pub async fn append(
    app: &App,
    tenant: &TenantId,
    user: &crate::domain::UserId,
    kind: ChangeKind,
    data: serde_json::Value,
) -> Result<ChangeRecord, ApiError> {
    let mut record = ChangeRecord::new(tenant.clone(), user.clone(), kind, data, app.clock.now());
    app.store.append_change(&mut record).await?;
    let webhook = app
        .store
        .get_tenant(tenant)
        .await?
        .is_some_and(|t| t.value.settings.webhook_url.is_some());
    if !webhook {
        // Pull feed only: nothing to deliver.
        return Ok(record);
    }
    let job = SyncJob {
        tenant: tenant.clone(),
        user: user.clone(),
        calendar: None,
        reason: SyncReason::Deliver,
        confirm_mass_deletion: false,
        record: None,
    };
    let message = Message {
        dedup_id: dedup_id(&[&job.group_id(), "deliver", &record.id]),
        job,
    };
    if let Err(e) = app.queue.send(vec![message]).await {
        // The feed is the source of truth: the record goes with the next job's deliveries.
        tracing::warn!(tenant = %tenant, error = %e, "delivery not queued");
    }
    Ok(record)
}

/// An `account_status_changed` record's data.
#[derive(Debug, Serialize)]
struct StatusChanged<'a> {
    status: AccountStatus,
    reason: Option<&'a str>,
    google_email: Option<&'a str>,
    products: &'a Products,
}

/// Tells the CRM an account changed state (connected, needs reconnecting, disconnected).
pub async fn account_status(
    app: &App,
    account: &Account,
    reason: Option<&str>,
) -> Result<ChangeRecord, ApiError> {
    let data = StatusChanged {
        status: account.status,
        reason,
        google_email: account.google_email.as_deref(),
        products: &account.products,
    };
    append(
        app,
        &account.tenant,
        &account.user,
        ChangeKind::AccountStatusChanged,
        serde_json::to_value(data).map_err(|e| ApiError::internal(&e, false))?,
    )
    .await
}

/// The feed after `after` (exclusive), oldest first.
pub async fn list(
    app: &App,
    tenant: &TenantId,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ChangeRecord>, ApiError> {
    let invalid =
        || ApiError::bad_request("invalid_query", "after must be the id of a change record");
    let after = after
        .map(|a| {
            // A ULID's first character is at most 7 (26 base32 digits hold 128 bits); the
            // decoder would silently wrap a larger one.
            if a.len() != 26 || !matches!(a.as_bytes()[0], b'0'..=b'7') {
                return Err(invalid());
            }
            a.parse::<ulid::Ulid>()
                .map(|u| u.to_string())
                .map_err(|_| invalid())
        })
        .transpose()?;
    Ok(app
        .store
        .list_changes(tenant, after.as_deref(), limit)
        .await?)
}
