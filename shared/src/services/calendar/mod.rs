//! Calendar two-way sync, the CRM's side of it: record pushes (`PUT`/`DELETE` of an event),
//! the pair's state, acknowledgements of Google-born events, and "sync now". The passes that
//! talk to Google are in [`engine`].

pub mod channels;
pub mod engine;

use crate::app::App;
use crate::calendar::model::{parse_instant, CrmEvent};
use crate::calendar::normal::Normalized;
use crate::clock::rfc3339;
use crate::domain::{AccountStatus, Collection, CrmId, PairStatus, TenantId, UserId};
use crate::http::ApiError;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::store::repo::Versioned;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the CRM sees of a pair.
#[derive(Debug, Serialize)]
pub struct PairView {
    pub crm_id: String,
    /// `synced`, `pending` (waiting for the worker), `deleted`, or `error`.
    pub state: &'static str,
    pub google_event_id: Option<String>,
    pub calendar_id: Option<String>,
    pub crm_version: Option<String>,
    pub last_synced_at: Option<String>,
    pub last_error: Option<String>,
}

/// Whether the pair's CRM side waits for the worker.
pub fn waiting(p: &PairStatus) -> bool {
    p.deleted_at.is_none()
        && (p.crm_deleted_at.is_some()
            || p.crm_content.as_ref().and_then(engine::content_hash) != p.crm_hash)
}

pub fn view(p: &PairStatus) -> PairView {
    let pending = waiting(p);
    let state = if p.deleted_at.is_some() {
        "deleted"
    } else if p.last_error.is_some() {
        "error"
    } else if pending {
        "pending"
    } else {
        "synced"
    };
    PairView {
        crm_id: p.crm_id.to_string(),
        state,
        google_event_id: p.google_id.clone(),
        calendar_id: p.container.clone(),
        crm_version: p.crm_version.clone(),
        last_synced_at: p.last_synced_at.map(rfc3339),
        last_error: p.last_error.clone(),
    }
}

async fn require_account(
    app: &App,
    t: &TenantId,
    u: &UserId,
) -> Result<crate::domain::Account, ApiError> {
    let account = super::accounts::get(app, t, u).await?;
    if account.status == AccountStatus::Disconnected {
        return Err(ApiError::conflict(
            "not_connected",
            "the user's Google account is disconnected",
        ));
    }
    if !account.products.contains(crate::domain::Product::Calendar) {
        return Err(ApiError::conflict(
            "product_not_connected",
            "the user's connection does not include the calendar",
        ));
    }
    Ok(account)
}

/// Asks the worker to push a record's change. `change` names it, so the same change queued
/// twice (a retried request) is one job, while distinct changes are not lost.
pub async fn enqueue(
    app: &App,
    t: &TenantId,
    u: &UserId,
    record: &CrmId,
    change: &str,
) -> Result<(), ApiError> {
    let job = SyncJob {
        tenant: t.clone(),
        user: u.clone(),
        calendar: None,
        reason: SyncReason::RecordChange,
        confirm_mass_deletion: false,
        record: Some(record.clone()),
    };
    let message = Message {
        dedup_id: dedup_id(&[&job.group_id(), "calendar", change]),
        job,
    };
    app.queue.send(vec![message]).await?;
    Ok(())
}

/// Whether `incoming` is older than what we hold (a late, retried delivery).
fn stale(pair: &PairStatus, incoming: Option<OffsetDateTime>) -> bool {
    let Some(incoming) = incoming else {
        return false;
    };
    let newest = [pair.crm_modified, pair.crm_deleted_at, pair.deleted_at]
        .into_iter()
        .flatten()
        .max();
    newest.is_some_and(|n| incoming < n)
}

/// Accepts a CRM event: stores it as the CRM side of its pair (marked for the worker) and
/// queues a sync. Idempotent: the same content again changes nothing; an older `updated_at`
/// than the stored one is ignored (late retries cannot undo newer edits).
pub async fn put(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
    event: CrmEvent,
) -> Result<(bool, PairView), ApiError> {
    event.validate()?;
    let account = require_account(app, t, u).await?;
    let incoming = event.updated_at.as_deref().and_then(parse_instant);
    let content = serde_json::to_value(Normalized::from_crm(&event))
        .map_err(|e| ApiError::internal(&e, false))?;
    for _ in 0..5 {
        let current = app
            .store
            .get_pair(t, u, Collection::Calendar, crm_id.as_str())
            .await?;
        let (mut pair, version) = match current {
            Some(Versioned { value, version }) => (value, Some(version)),
            None => (
                PairStatus::new(account.id.clone(), Collection::Calendar, crm_id.clone()),
                None,
            ),
        };
        if stale(&pair, incoming) {
            return Ok((false, view(&pair)));
        }
        let same = pair.crm_deleted_at.is_none() && pair.crm_content.as_ref() == Some(&content);
        // The same content again: nothing new — even for a tombstone, which only an edit
        // newer than the deletion brings back (so a periodic re-push does not resurrect an
        // event deleted in Google). A change still waiting is queued again, in case the first
        // queueing failed.
        if same && (pair.deleted_at.is_none() || incoming.is_none()) {
            if waiting(&pair) {
                enqueue(
                    app,
                    t,
                    u,
                    crm_id,
                    &format!(
                        "put/{crm_id}/{}",
                        pair.crm_modified.map(rfc3339).unwrap_or_default()
                    ),
                )
                .await?;
            }
            return Ok((false, view(&pair)));
        }
        if let Some(link) = &event.google_event_id {
            if pair.google_id.as_deref() != Some(link.as_str()) {
                if let Some(other) = app
                    .store
                    .find_pair_by_google_id(t, u, Collection::Calendar, link)
                    .await?
                {
                    if other.value.crm_id != *crm_id {
                        return Err(ApiError::conflict(
                            "google_event_linked",
                            "that Google event is already paired (for an event born in Google, use POST /v1/changes/ack)",
                        ));
                    }
                }
            }
        }
        if pair.deleted_at.is_some() {
            // Re-created after a delete: a new Google event (a new id generation).
            pair.deleted_at = None;
            pair.google_id = None;
            pair.google_hash = None;
            pair.google_etag = None;
            pair.crm_hash = None;
            pair.generation += 1;
        }
        if pair.google_id.is_none() {
            if let Some(link) = &event.google_event_id {
                pair.google_id = Some(link.clone());
            }
        }
        pair.crm_content = Some(content.clone());
        pair.crm_version = event.version.clone();
        pair.crm_modified = Some(incoming.unwrap_or_else(|| app.clock.now()));
        pair.crm_deleted_at = None;
        pair.last_error = None;
        match app.store.put_dirty_pair(t, u, &pair, version).await {
            Ok(_) => {
                let change = format!(
                    "put/{crm_id}/{}",
                    pair.crm_modified.map(rfc3339).unwrap_or_default()
                );
                enqueue(app, t, u, crm_id, &change).await?;
                return Ok((true, view(&pair)));
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the event was changed concurrently; retry",
    ))
}

/// Records a CRM-side deletion and queues the sync that carries it out (per the tenant's
/// deletion policy). Idempotent.
pub async fn delete(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<PairView, ApiError> {
    require_account(app, t, u).await?;
    for _ in 0..5 {
        let Some(Versioned {
            value: mut pair,
            version,
        }) = app
            .store
            .get_pair(t, u, Collection::Calendar, crm_id.as_str())
            .await?
        else {
            return Err(ApiError::not_found("no such event"));
        };
        if pair.crm_deleted_at.is_some() || pair.deleted_at.is_some() {
            if waiting(&pair) {
                enqueue(app, t, u, crm_id, &format!("delete/{crm_id}")).await?;
            }
            return Ok(view(&pair));
        }
        pair.crm_deleted_at = Some(app.clock.now());
        match app.store.put_dirty_pair(t, u, &pair, Some(version)).await {
            Ok(_) => {
                enqueue(app, t, u, crm_id, &format!("delete/{crm_id}")).await?;
                return Ok(view(&pair));
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the event was changed concurrently; retry",
    ))
}

pub async fn get(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<PairView, ApiError> {
    let pair = app
        .store
        .get_pair(t, u, Collection::Calendar, crm_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("no such event"))?;
    Ok(view(&pair.value))
}

/// The CRM names a Google-born event it created a record for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckItem {
    pub user: UserId,
    pub google_event_id: String,
    pub crm_id: CrmId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub items: Vec<AckItem>,
}

#[derive(Debug, Serialize)]
pub struct AckResult {
    pub google_event_id: String,
    pub crm_id: String,
    /// `linked`, `already_linked`, `unknown` (no such Google-born event), `deleted` (the
    /// event was deleted in Google before the acknowledgement), or `conflict` (the CRM id is
    /// already paired with another event).
    pub result: &'static str,
}

/// Links Google-born events to the CRM ids the CRM gave them, so the CRM's next `PUT` of the
/// record is an update of the same Google event.
pub async fn ack(app: &App, t: &TenantId, ack: Ack) -> Result<Vec<AckResult>, ApiError> {
    if ack.items.is_empty() || ack.items.len() > 100 {
        return Err(ApiError::invalid("items holds 1 to 100 acknowledgements"));
    }
    let mut out = Vec::with_capacity(ack.items.len());
    for item in ack.items {
        let result =
            engine::link_google_born(app, t, &item.user, &item.google_event_id, &item.crm_id)
                .await?;
        out.push(AckResult {
            google_event_id: item.google_event_id,
            crm_id: item.crm_id.to_string(),
            result,
        });
    }
    Ok(out)
}

/// "Sync now": queues a full pass of the account (Google's changes, then the CRM's).
pub async fn sync_now(
    app: &App,
    t: &TenantId,
    u: &UserId,
    confirm_mass_deletion: bool,
) -> Result<(), ApiError> {
    let account = super::accounts::get(app, t, u).await?;
    if !account.status.syncs() {
        return Err(ApiError::conflict(
            "not_active",
            format!("the account is {:?}; it does not sync", account.status).to_lowercase(),
        ));
    }
    let job = SyncJob {
        tenant: t.clone(),
        user: u.clone(),
        calendar: None,
        reason: SyncReason::Manual,
        confirm_mass_deletion,
        record: None,
    };
    let message = Message {
        dedup_id: dedup_id(&[&job.group_id(), "manual", &ulid::Ulid::new().to_string()]),
        job,
    };
    app.queue.send(vec![message]).await?;
    Ok(())
}
