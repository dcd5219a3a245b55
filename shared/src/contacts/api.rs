//! Contacts two-way sync, the CRM's side of it: record pushes (`PUT`/`DELETE` of a contact or
//! lead, and `contacts:push` for many at once), the pair's state. The pass that talks to the
//! People API is in [`super::sync`].

use crate::app::App;
use crate::calendar::model::parse_instant;
use crate::clock::rfc3339;
use crate::contacts::model::CrmContact;
use crate::contacts::normal::NormalizedContact;
use crate::domain::{Collection, CrmId, PairState, PairStatus, TenantId, UserId};
use crate::http::ApiError;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::services::records;
use serde::{Deserialize, Serialize};

/// How many records one `contacts:push` request may carry (more: several requests).
pub const MAX_PUSH: usize = 1000;

/// What the CRM sees of a contact pair.
#[derive(Debug, Serialize)]
pub struct ContactView {
    pub crm_id: String,
    pub state: PairState,
    pub google_resource_name: Option<String>,
    pub crm_version: Option<String>,
    pub last_synced_at: Option<String>,
    pub last_error: Option<String>,
}

pub fn view(p: &PairStatus) -> ContactView {
    ContactView {
        crm_id: p.crm_id.to_string(),
        state: crate::sync::pair::state(p),
        google_resource_name: p.google_id.clone(),
        crm_version: p.crm_version.clone(),
        last_synced_at: p.last_synced_at.map(rfc3339),
        last_error: p.last_error.clone(),
    }
}

fn incoming(contact: &CrmContact) -> Result<records::Incoming, ApiError> {
    contact.validate()?;
    Ok(records::Incoming {
        collection: Collection::Contacts,
        content: serde_json::to_value(NormalizedContact::from_crm(contact))
            .map_err(|e| ApiError::internal(&e, false))?,
        version: contact.version.clone(),
        updated_at: contact.updated_at.as_deref().and_then(parse_instant),
        link: contact.google_resource_name.clone(),
    })
}

/// Accepts a CRM contact or lead: stored as the CRM side of its pair and queued for the
/// worker (see [`records::put`]).
pub async fn put(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
    contact: CrmContact,
) -> Result<(bool, ContactView), ApiError> {
    let incoming = incoming(&contact)?;
    let account = records::require_account(app, t, u, Collection::Contacts).await?;
    let (changed, pair) = records::put(app, t, u, &account, crm_id, incoming).await?;
    Ok((changed, view(&pair)))
}

/// Records a CRM-side deletion: per the tenant's deletion policy the worker removes the
/// contact from the synced group (the default: the contact stays in Google) or deletes it.
pub async fn delete(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<ContactView, ApiError> {
    records::require_account(app, t, u, Collection::Contacts).await?;
    let pair = records::delete(app, t, u, Collection::Contacts, crm_id).await?;
    Ok(view(&pair))
}

pub async fn get(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
) -> Result<ContactView, ApiError> {
    Ok(view(
        &records::get(app, t, u, Collection::Contacts, crm_id).await?,
    ))
}

/// One record of a mass push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushItem {
    pub crm_id: CrmId,
    pub contact: CrmContact,
}

/// `POST /v1/users/{user}/contacts:push`: a manual push of one record, or a mass action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub contacts: Vec<PushItem>,
}

#[derive(Debug, Serialize)]
pub struct PushOutcome {
    /// Records stored as new or changed (the others were already as sent).
    pub accepted: usize,
    pub unchanged: usize,
    /// Whether a sync was queued (it carries the waiting records to Google, 200 per
    /// request, and queues itself again until none waits; progress on the account).
    pub queued: bool,
}

/// Records a mass push stores at once.
const STORE_CONCURRENCY: usize = 50;

/// Stores every record (all validated first: one bad record refuses the request, nothing
/// stored) and queues one sync for them all.
pub async fn push(
    app: &App,
    t: &TenantId,
    u: &UserId,
    request: PushRequest,
) -> Result<PushOutcome, ApiError> {
    if request.contacts.is_empty() || request.contacts.len() > MAX_PUSH {
        return Err(ApiError::invalid(format!(
            "contacts holds 1 to {MAX_PUSH} records (send more in several requests)"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut prepared = Vec::with_capacity(request.contacts.len());
    for (i, item) in request.contacts.iter().enumerate() {
        if !seen.insert(item.crm_id.as_str()) {
            return Err(ApiError::invalid(format!(
                "contacts[{i}].crm_id {} appears twice",
                item.crm_id
            )));
        }
        let incoming = incoming(&item.contact)
            .map_err(|e| ApiError::invalid(format!("contacts[{i}]: {}", e.message)))?;
        prepared.push((&item.crm_id, incoming));
    }
    let account = records::require_account(app, t, u, Collection::Contacts).await?;
    // Stored a few at a time (each record is a read and a conditional write): 1,000 records
    // take about a fiftieth of what one after the other would, well inside the API
    // function's timeout.
    let mut stored: Vec<(bool, bool)> = Vec::with_capacity(prepared.len());
    for chunk in prepared.chunks(STORE_CONCURRENCY) {
        let puts = chunk
            .iter()
            .map(|(crm_id, incoming)| records::store_put(app, t, u, &account, crm_id, incoming));
        for put in futures_util::future::join_all(puts).await {
            let (changed, pair) = put?;
            stored.push((changed, crate::sync::pair::waiting(&pair)));
        }
    }
    let accepted = stored.iter().filter(|(changed, _)| *changed).count();
    let unchanged = stored.len() - accepted;
    // A retry of a request that timed out after storing (everything "unchanged" now) still
    // queues the sync while any of its records waits.
    let queued = stored.iter().any(|(changed, waiting)| *changed || *waiting);
    if queued {
        let job = SyncJob {
            tenant: t.clone(),
            user: u.clone(),
            calendar: None,
            reason: SyncReason::RecordChange,
            confirm_mass_deletion: false,
            record: None,
        };
        let message = Message {
            dedup_id: dedup_id(&[
                &job.group_id(),
                "contacts-push",
                &ulid::Ulid::new().to_string(),
            ]),
            job,
        };
        app.queue.send(vec![message]).await?;
    }
    Ok(PushOutcome {
        accepted,
        unchanged,
        queued,
    })
}
