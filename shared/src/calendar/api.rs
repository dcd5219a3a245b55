//! Calendar two-way sync, the CRM's side of it: record pushes (`PUT`/`DELETE` of an event),
//! the pair's state, acknowledgements of Google-born events, and "sync now". The passes that
//! talk to Google are in [`super::sync`].

use crate::app::App;
use crate::calendar::model::{parse_instant, CrmEvent};
use crate::calendar::normal::Normalized;
use crate::clock::rfc3339;
use crate::domain::{Collection, CrmId, PairState, PairStatus, TenantId, UserId};
use crate::http::ApiError;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::services::records;
use serde::{Deserialize, Serialize};

/// What the CRM sees of a pair.
#[derive(Debug, Serialize)]
pub struct PairView {
    pub crm_id: String,
    pub state: PairState,
    pub google_event_id: Option<String>,
    pub calendar_id: Option<String>,
    pub crm_version: Option<String>,
    pub last_synced_at: Option<String>,
    pub last_error: Option<String>,
}

pub use crate::sync::pair::waiting;

pub fn view(p: &PairStatus) -> PairView {
    PairView {
        crm_id: p.crm_id.to_string(),
        state: crate::sync::pair::state(p),
        google_event_id: p.google_id.clone(),
        calendar_id: p.container.clone(),
        crm_version: p.crm_version.clone(),
        last_synced_at: p.last_synced_at.map(rfc3339),
        last_error: p.last_error.clone(),
    }
}

/// Accepts a CRM event: stores it as the CRM side of its pair (marked for the worker) and
/// queues a sync (see [`records::put`]).
pub async fn put(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
    event: CrmEvent,
) -> Result<(bool, PairView), ApiError> {
    event.validate()?;
    let account = records::require_account(app, t, u, Collection::Calendar).await?;
    let content = serde_json::to_value(Normalized::from_crm(&event))
        .map_err(|e| ApiError::internal(&e, false))?;
    let incoming = records::Incoming {
        collection: Collection::Calendar,
        content,
        version: event.version.clone(),
        updated_at: event.updated_at.as_deref().and_then(parse_instant),
        link: event.google_event_id.clone(),
    };
    let (changed, pair) = records::put(app, t, u, &account, crm_id, incoming).await?;
    Ok((changed, view(&pair)))
}

/// Records a CRM-side deletion and queues the sync that carries it out (per the tenant's
/// deletion policy). Idempotent.
pub async fn delete(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<PairView, ApiError> {
    records::require_account(app, t, u, Collection::Calendar).await?;
    let pair = records::delete(app, t, u, Collection::Calendar, crm_id).await?;
    Ok(view(&pair))
}

pub async fn get(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<PairView, ApiError> {
    Ok(view(
        &records::get(app, t, u, Collection::Calendar, crm_id).await?,
    ))
}

/// The CRM names a Google-born event or contact it created a record for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckItem {
    pub user: UserId,
    /// A Google-born event…
    #[serde(default)]
    pub google_event_id: Option<String>,
    /// …read in this calendar (the feed record's `calendar_id`; without it, the user's
    /// Google-born event of that id, whichever calendar it was read in).
    #[serde(default)]
    pub calendar_id: Option<String>,
    /// …or a Google-born contact (`people/…`).
    #[serde(default)]
    pub google_resource_name: Option<String>,
    pub crm_id: CrmId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub items: Vec<AckItem>,
}

#[derive(Debug, Serialize)]
pub struct AckResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google_resource_name: Option<String>,
    pub crm_id: String,
    pub result: records::AckOutcome,
}

/// Links Google-born events and contacts to the CRM ids the CRM gave them, so the CRM's next
/// `PUT` of the record is an update of the same Google record.
pub async fn ack(app: &App, t: &TenantId, ack: Ack) -> Result<Vec<AckResult>, ApiError> {
    if ack.items.is_empty() || ack.items.len() > 100 {
        return Err(ApiError::invalid("items holds 1 to 100 acknowledgements"));
    }
    let mut out = Vec::with_capacity(ack.items.len());
    for (i, item) in ack.items.into_iter().enumerate() {
        let (collection, google_id) = match (&item.google_event_id, &item.google_resource_name) {
            (Some(id), None) => (Collection::Calendar, id),
            (None, Some(rn)) => (Collection::Contacts, rn),
            _ => {
                return Err(ApiError::invalid(format!(
                    "items[{i}]: exactly one of google_event_id and google_resource_name"
                )))
            }
        };
        let result = crate::services::records::link_google_born(
            app,
            t,
            &item.user,
            collection,
            google_id,
            item.calendar_id.as_deref(),
            &item.crm_id,
        )
        .await?;
        out.push(AckResult {
            google_event_id: item.google_event_id,
            google_resource_name: item.google_resource_name,
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
    let account = crate::services::accounts::get(app, t, u).await?;
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
