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
        if let Some(merged) = merged(&fresh.value, loaded, &pair) {
            pair = merged;
            dirty = true;
        }
        version = Some(fresh.version);
    }
    // The row kept changing under the pass: a passing condition, retried with the job.
    Err(StoreError::Conflict)
}

/// Pure: what a pass saves when the row it loaded (`loaded`) has become `fresh` under it and
/// the pass made it `pair`. `None`: the CRM side did not move (the pass's row is saved on
/// the fresh version as it is). Otherwise the fresh row with the pass's Google side: when the
/// pass pulled Google's content to the CRM side while the CRM sent a change of its own,
/// neither is the other's baseline, so the pair keeps the CRM's old baseline and forgets
/// Google's; the next pass reads the Google record again and decides the two changes by the
/// conflict policy (the CRM's change is not simply pushed over Google's newer one).
pub fn merged(fresh: &PairStatus, loaded: &PairStatus, pair: &PairStatus) -> Option<PairStatus> {
    let crm_moved = fresh.crm_content != loaded.crm_content
        || fresh.crm_deleted_at != loaded.crm_deleted_at
        || fresh.generation != loaded.generation;
    if !crm_moved {
        return None;
    }
    let pulled = pair.crm_content != loaded.crm_content;
    let mut merged = fresh.clone();
    merged.google_id.clone_from(&pair.google_id);
    merged.google_etag.clone_from(&pair.google_etag);
    merged.container.clone_from(&pair.container);
    merged.google_resources.clone_from(&pair.google_resources);
    if pulled {
        merged.crm_hash.clone_from(&loaded.crm_hash);
        merged.google_hash = None;
    } else {
        merged.google_hash.clone_from(&pair.google_hash);
        merged.crm_hash.clone_from(&pair.crm_hash);
    }
    merged.last_synced_at = pair.last_synced_at;
    // What the pass's full read saw (or reconcile would read the pair again).
    merged.seen_in_read.clone_from(&pair.seen_in_read);
    merged.generation = merged.generation.max(pair.generation);
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pair() -> PairStatus {
        let mut p = PairStatus::new(
            crate::domain::AccountId::generate(),
            Collection::Contacts,
            crate::domain::CrmId::parse("C-1").unwrap(),
        );
        p.crm_content = Some(json!({"title": "CRM v1"}));
        p.crm_hash = Some("h1".into());
        p.google_hash = Some("g1".into());
        p
    }

    #[test]
    fn a_row_the_crm_left_alone_is_saved_as_the_pass_made_it() {
        let loaded = pair();
        let mut done = loaded.clone();
        done.google_etag = Some("e2".into());
        assert_eq!(merged(&loaded.clone(), &loaded, &done), None);
    }

    #[test]
    fn a_push_raced_by_a_crm_edit_keeps_the_edit_waiting() {
        let loaded = pair();
        let mut fresh = loaded.clone();
        fresh.crm_content = Some(json!({"title": "CRM v2"}));
        let mut pushed = loaded.clone();
        pushed.google_id = Some("ev1".into());
        pushed.google_hash = Some("g2".into());
        pushed.crm_hash = Some("h1-sent".into());
        let m = merged(&fresh, &loaded, &pushed).unwrap();
        assert_eq!(
            m.crm_content, fresh.crm_content,
            "the CRM's newer edit stays"
        );
        assert_eq!(m.google_id.as_deref(), Some("ev1"));
        assert_eq!(
            (m.crm_hash.as_deref(), m.google_hash.as_deref()),
            (Some("h1-sent"), Some("g2"))
        );
        assert!(
            waiting(&m),
            "the CRM's edit is not its baseline: it still waits"
        );
    }

    #[test]
    fn a_pull_raced_by_a_crm_edit_forgets_googles_baseline() {
        let loaded = pair();
        let mut fresh = loaded.clone();
        fresh.crm_content = Some(json!({"title": "CRM v2"}));
        let mut pulled = loaded.clone();
        pulled.crm_content = Some(json!({"title": "Google v2"}));
        pulled.google_hash = Some("g2".into());
        pulled.crm_hash = Some("g2".into());
        pulled.generation = 3;
        let m = merged(&fresh, &loaded, &pulled).unwrap();
        assert_eq!(m.crm_content, fresh.crm_content);
        assert_eq!(m.crm_hash.as_deref(), Some("h1"), "the CRM's old baseline");
        assert_eq!(m.google_hash, None, "Google's read again, then decided");
        assert_eq!(m.generation, 3);
    }
}
