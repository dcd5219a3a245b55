//! A pair's state, the same for events and contacts: whether its CRM side waits for the
//! worker, where it stands for the CRM, how large a record may be, and how a pass saves a
//! pair (merging into a row the CRM changed meanwhile).

use crate::domain::{Collection, PairState, PairStatus, TenantId, UserId};
use crate::store::repo::Store;
use crate::store::StoreError;
use serde_json::Value;

/// The largest record (its normalized content, as JSON) the product keeps: the pair row
/// holds it beside its sync state, and a change-feed record carries it, each within the
/// store's item limit ([`crate::store::MAX_ITEM_BYTES`]). A series of 300 attendees can have
/// 7 occurrences whose attendee lists (per-occurrence RSVPs) differ from the series' (8 are
/// refused; `tests/tests/e2e/calendar` holds the boundary);
/// moved or cancelled occurrences cost about 150 bytes each.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
// Under the store's item limit, with room for the pair's (or feed record's) other fields.
const _: () = assert!(MAX_RECORD_BYTES + 64 * 1024 < crate::store::MAX_ITEM_BYTES);

/// The size of `content` as stored, when it is larger than [`MAX_RECORD_BYTES`].
pub fn oversize(content: &Value) -> Option<usize> {
    let bytes = serde_json::to_vec(content).map_or(usize::MAX, |v| v.len());
    (bytes > MAX_RECORD_BYTES).then_some(bytes)
}

/// The hash of a pair's stored CRM content (`None` if unreadable).
pub fn content_hash(collection: Collection, content: &Value) -> Option<String> {
    match collection {
        Collection::Calendar => crate::calendar::normal::content_hash(content),
        Collection::Contacts => crate::contacts::normal::content_hash(content),
    }
}

/// Whether the pair's CRM side waits for the worker.
pub fn waiting(p: &PairStatus) -> bool {
    p.deleted_at.is_none()
        && (p.crm_deleted_at.is_some()
            || p.crm_content
                .as_ref()
                .and_then(|c| content_hash(p.collection, c))
                != p.crm_hash)
}

/// Where the pair stands for the CRM: deleted, in error, waiting for the worker, or synced.
pub fn state(p: &PairStatus) -> PairState {
    if p.deleted_at.is_some() {
        PairState::Deleted
    } else if p.last_error.is_some() {
        PairState::Error
    } else if waiting(p) {
        PairState::Pending
    } else {
        PairState::Synced
    }
}

/// Saves a pair after a pass carried out its decision. If the row changed meanwhile (the CRM
/// pushed during the pass), the outcome is merged into the fresh row rather than lost: the
/// Google side is what the pass did, the CRM side stays the newer one — still waiting.
pub async fn commit(
    store: &Store,
    t: &TenantId,
    u: &UserId,
    loaded: &PairStatus,
    mut pair: PairStatus,
    mut version: Option<u64>,
    mut dirty: bool,
) -> Result<(), StoreError> {
    for _ in 0..5 {
        let saved = if dirty {
            store.put_dirty_pair(t, u, &pair, version).await
        } else {
            store.put_pair(t, u, &pair, version).await
        };
        match saved {
            Ok(_) => return Ok(()),
            Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
        let Some(fresh) = store
            .get_pair(t, u, pair.collection, pair.crm_id.as_str())
            .await?
        else {
            // Re-keyed or gone (an acknowledgement raced us): nothing left to merge into.
            return Ok(());
        };
        let crm_moved = fresh.value.crm_content != loaded.crm_content
            || fresh.value.crm_deleted_at != loaded.crm_deleted_at
            || fresh.value.generation != loaded.generation;
        if crm_moved {
            // The pass brought Google's content to the CRM side (a pull) while the CRM sent a
            // change of its own: neither is the other's baseline. The pair keeps the CRM's
            // old baseline and forgets Google's, so the next pass reads the Google record
            // again and decides the two changes by the conflict policy (the CRM's change is
            // not simply pushed over Google's newer one).
            let pulled = pair.crm_content != loaded.crm_content;
            let mut merged = fresh.value;
            merged.google_id = pair.google_id.clone();
            merged.google_etag = pair.google_etag.clone();
            merged.container = pair.container.clone();
            merged.google_resources = pair.google_resources.clone();
            if pulled {
                merged.crm_hash = loaded.crm_hash.clone();
                merged.google_hash = None;
            } else {
                merged.google_hash = pair.google_hash.clone();
                merged.crm_hash = pair.crm_hash.clone();
            }
            merged.last_synced_at = pair.last_synced_at;
            // What the pass's full read saw (or reconcile would read the pair again).
            merged.seen_in_read = pair.seen_in_read.clone();
            if merged.generation < pair.generation {
                merged.generation = pair.generation;
            }
            pair = merged;
            dirty = true;
        }
        version = Some(fresh.version);
    }
    // The row kept changing under the pass: a passing condition, retried with the job.
    Err(StoreError::Conflict)
}
