//! The CRM's side of a pair, the same for events and contacts: a record pushed by the CRM
//! (`PUT`) or deleted (`DELETE`) is stored as the CRM side of its pair, marked for the worker
//! (the pair's entry in the sparse "dirty" index), and a sync is queued. The passes that talk
//! to Google read the marked pairs.

use crate::app::App;
use crate::clock::rfc3339;
use crate::domain::{
    Account, AccountStatus, Collection, CrmId, PairStatus, Product, TenantId, UserId,
};
use crate::http::ApiError;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::store::repo::Versioned;
use crate::store::StoreError;
use crate::sync::pair::{content_hash, oversize, waiting, MAX_RECORD_BYTES};
use serde_json::Value;
use time::OffsetDateTime;

/// The user's account, connected with the collection's product: what a CRM write to the
/// collection needs (409 otherwise).
pub async fn require_account(
    app: &App,
    t: &TenantId,
    u: &UserId,
    c: Collection,
) -> Result<Account, ApiError> {
    let account = crate::services::accounts::get(app, t, u).await?;
    if account.status == AccountStatus::Disconnected {
        return Err(ApiError::conflict(
            "not_connected",
            "the user's Google account is disconnected",
        ));
    }
    let (product, what) = match c {
        Collection::Calendar => (Product::Calendar, "the calendar"),
        Collection::Contacts => (Product::Contacts, "contacts"),
    };
    if !account.products.contains(product) {
        return Err(ApiError::conflict(
            "product_not_connected",
            format!("the user's connection does not include {what}"),
        ));
    }
    Ok(account)
}

fn noun(c: Collection) -> &'static str {
    match c {
        Collection::Calendar => "event",
        Collection::Contacts => "contact",
    }
}

/// A record as the CRM sent it, normalized.
pub struct Incoming {
    pub collection: Collection,
    /// The normalized content (JSON).
    pub content: Value,
    pub version: Option<String>,
    /// The CRM's modification time (decides "latest wins"; older retries are ignored).
    pub updated_at: Option<OffsetDateTime>,
    /// The Google resource the CRM links the record to (an event id, a `people/…` name).
    pub link: Option<String>,
}

/// Asks the worker to push a record's change. `change` names it, so the same change queued
/// twice (a retried request) is one job, while distinct changes are not lost.
pub async fn enqueue(
    app: &App,
    t: &TenantId,
    u: &UserId,
    collection: Collection,
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
        dedup_id: dedup_id(&[&job.group_id(), collection.as_str(), change]),
        job,
    };
    app.queue.send(vec![message]).await?;
    Ok(())
}

/// Whether `incoming` is a late or retried delivery: older than what the CRM sent before, or
/// the very same send again (time and content), compared on the CRM's own clock only — not
/// with Google's times, nor the server's. So a retry of an edit that lost a conflict, or of
/// the PUT before a delete, changes nothing; a new edit always counts, and after a deletion
/// in Google it beats the delete.
fn stale(pair: &PairStatus, incoming: &Incoming) -> bool {
    let Some(at) = incoming.updated_at else {
        return false;
    };
    match pair.crm_sent_at {
        Some(sent) => {
            at < sent
                || (at == sent
                    && pair.crm_sent_hash.is_some()
                    && pair.crm_sent_hash == content_hash(incoming.collection, &incoming.content))
        }
        // The CRM sent no time before (or the pair predates `crm_sent_at`): the pair's own
        // times are all there is to compare with.
        None => [pair.crm_modified, pair.crm_deleted_at, pair.deleted_at]
            .into_iter()
            .flatten()
            .max()
            .is_some_and(|newest| at < newest),
    }
}

/// Stores a CRM record as the CRM side of its pair (marked for the worker) and queues a
/// sync. Idempotent: the same content again changes nothing; an older `updated_at` than the
/// stored one is ignored (late retries cannot undo newer edits). Returns whether anything
/// changed, and the pair.
pub async fn put(
    app: &App,
    t: &TenantId,
    u: &UserId,
    account: &Account,
    crm_id: &CrmId,
    incoming: Incoming,
) -> Result<(bool, PairStatus), ApiError> {
    let c = incoming.collection;
    let (changed, pair) = store_put(app, t, u, account, crm_id, &incoming).await?;
    if changed || waiting(&pair) {
        // A change still waiting is queued again, in case the first queueing failed. The
        // content's hash is part of the name: two different edits with the same `updated_at`
        // (a CRM with one-second times) are two jobs, not one dropped as a duplicate.
        let change = format!(
            "put/{crm_id}/{}/{}",
            pair.crm_modified.map(rfc3339).unwrap_or_default(),
            content_hash(c, &incoming.content).unwrap_or_default()
        );
        enqueue(app, t, u, c, crm_id, &change).await?;
    }
    Ok((changed, pair))
}

/// [`put`] without the queueing: what a mass push uses (one job for many records).
pub async fn store_put(
    app: &App,
    t: &TenantId,
    u: &UserId,
    account: &Account,
    crm_id: &CrmId,
    incoming: &Incoming,
) -> Result<(bool, PairStatus), ApiError> {
    let c = incoming.collection;
    if let Some(bytes) = oversize(&incoming.content) {
        return Err(ApiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "record_too_large",
            format!(
                "the {} is {} KB once normalized; at most {} KB is kept (fewer occurrences with attendee lists of their own, or fewer attendees)",
                noun(c),
                bytes.div_ceil(1024),
                MAX_RECORD_BYTES / 1024
            ),
        ));
    }
    for _ in 0..5 {
        let current = app.store.get_pair(t, u, c, crm_id.as_str()).await?;
        let (mut pair, version) = match current {
            Some(Versioned { value, version }) => (value, Some(version)),
            None => (PairStatus::new(account.id.clone(), c, crm_id.clone()), None),
        };
        if !news(&pair, incoming) {
            return Ok((false, pair));
        }
        check_link(app, t, u, crm_id, &pair, incoming).await?;
        take_put(&mut pair, incoming, app.clock.now());
        match app.store.put_dirty_pair(t, u, &pair, version).await {
            Ok(_) => return Ok((true, pair)),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        format!("the {} was changed concurrently; retry", noun(c)),
    ))
}

/// Whether a PUT brings the pair news: not older than what it has, and not the same content
/// again — even for a tombstone, which only an edit newer than the deletion brings back (so
/// a periodic re-push does not resurrect a record deleted in Google). Pure.
fn news(pair: &PairStatus, incoming: &Incoming) -> bool {
    if stale(pair, incoming) {
        return false;
    }
    let same =
        pair.crm_deleted_at.is_none() && pair.crm_content.as_ref() == Some(&incoming.content);
    !(same && (pair.deleted_at.is_none() || incoming.updated_at.is_none()))
}

/// A Google record the PUT links to must not be another pair's (409).
async fn check_link(
    app: &App,
    t: &TenantId,
    u: &UserId,
    crm_id: &CrmId,
    pair: &PairStatus,
    incoming: &Incoming,
) -> Result<(), ApiError> {
    let c = incoming.collection;
    let Some(link) = incoming
        .link
        .as_ref()
        .filter(|l| pair.google_id.as_deref() != Some(l.as_str()))
    else {
        return Ok(());
    };
    match app.store.find_pair_by_google_id(t, u, c, link).await? {
        Some(other) if other.value.crm_id != *crm_id => Err(ApiError::conflict(
            match c {
                Collection::Calendar => "google_event_linked",
                Collection::Contacts => "google_contact_linked",
            },
            format!("that Google {} is already paired (for one born in Google, use POST /v1/changes/ack)", noun(c)),
        )),
        _ => Ok(()),
    }
}

/// The pair after a PUT it takes: the CRM's content, version and clocks; a tombstone comes
/// back to life. Pure.
fn take_put(pair: &mut PairStatus, incoming: &Incoming, now: OffsetDateTime) {
    let c = incoming.collection;
    if pair.deleted_at.is_some() {
        pair.deleted_at = None;
        pair.google_hash = None;
        pair.google_etag = None;
        pair.crm_hash = None;
        match c {
            // Re-created after a delete: a new Google event (a new id generation).
            Collection::Calendar => {
                pair.google_id = None;
                pair.generation += 1;
            }
            // A contact outlives its pair (taken out of the group, untagged): the sync
            // reads it again and, still there, brings the same contact back.
            Collection::Contacts => {}
        }
    }
    if pair.google_id.is_none() {
        pair.google_id.clone_from(&incoming.link);
    }
    pair.crm_content = Some(incoming.content.clone());
    pair.crm_version.clone_from(&incoming.version);
    pair.crm_modified = Some(incoming.updated_at.unwrap_or(now));
    if incoming.updated_at.is_some() {
        pair.crm_sent_at = incoming.updated_at;
        pair.crm_sent_hash = content_hash(c, &incoming.content);
    }
    pair.crm_deleted_at = None;
    pair.last_error = None;
}

/// Records a CRM-side deletion and queues the sync that carries it out (per the tenant's
/// deletion policy). Idempotent.
pub async fn delete(
    app: &App,
    t: &TenantId,
    u: &UserId,
    c: Collection,
    crm_id: &CrmId,
) -> Result<PairStatus, ApiError> {
    let change = format!("delete/{crm_id}");
    for _ in 0..5 {
        let Some(Versioned {
            value: mut pair,
            version,
        }) = app.store.get_pair(t, u, c, crm_id.as_str()).await?
        else {
            return Err(ApiError::not_found(format!("no such {}", noun(c))));
        };
        if pair.crm_deleted_at.is_some() || pair.deleted_at.is_some() {
            if waiting(&pair) {
                enqueue(app, t, u, c, crm_id, &change).await?;
            }
            return Ok(pair);
        }
        pair.crm_deleted_at = Some(app.clock.now());
        match app.store.put_dirty_pair(t, u, &pair, Some(version)).await {
            Ok(_) => {
                enqueue(app, t, u, c, crm_id, &change).await?;
                return Ok(pair);
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        format!("the {} was changed concurrently; retry", noun(c)),
    ))
}

/// A pair by CRM id (404 when the CRM never sent it).
pub async fn get(
    app: &App,
    t: &TenantId,
    u: &UserId,
    c: Collection,
    crm_id: &CrmId,
) -> Result<PairStatus, ApiError> {
    Ok(app
        .store
        .get_pair(t, u, c, crm_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no such {}", noun(c))))?
        .value)
}

/// What became of an acknowledgement of a Google-born record (`result` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    Linked,
    AlreadyLinked,
    /// No such Google-born record.
    Unknown,
    /// Deleted in Google before the acknowledgement.
    Deleted,
    /// The CRM id is already paired with another Google record.
    Conflict,
}

/// Gives a Google-born pair of `collection` the CRM id the CRM created for it.
pub async fn link_google_born(
    app: &App,
    t: &TenantId,
    u: &UserId,
    collection: Collection,
    google_id: &str,
    calendar: Option<&str>,
    crm_id: &CrmId,
) -> Result<AckOutcome, ApiError> {
    if let Some(existing) = app
        .store
        .get_pair(t, u, collection, crm_id.as_str())
        .await?
    {
        return Ok(if existing.value.google_id.as_deref() == Some(google_id) {
            AckOutcome::AlreadyLinked
        } else {
            AckOutcome::Conflict
        });
    }
    let born = match collection {
        Collection::Calendar => {
            crate::calendar::born::acknowledged(app, t, u, calendar, google_id).await?
        }
        Collection::Contacts => {
            app.store
                .get_pair(t, u, collection, CrmId::google_born(google_id).as_str())
                .await?
        }
    };
    let Some(born) = born else {
        return Ok(AckOutcome::Unknown);
    };
    // Gone from Google (or out of the contact group) before the CRM named it: the name is
    // kept all the same, so that should the record come back (put back into the group,
    // restored) it reaches the CRM under the CRM's id, not as a stranger.
    let deleted = born.value.deleted_at.is_some();
    let mut linked = born.value.clone();
    linked.crm_id = crm_id.clone();
    linked.google_born = false;
    match app.store.rekey_pair(t, u, &born, &linked).await {
        Ok(()) if deleted => Ok(AckOutcome::Deleted),
        Ok(()) => Ok(AckOutcome::Linked),
        Err(StoreError::ConditionFailed) => Ok(AckOutcome::Conflict),
        Err(e) => Err(e.into()),
    }
}
