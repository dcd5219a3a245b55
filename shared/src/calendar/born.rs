//! Finding the pair of a Google event that carries none of our private properties (one the
//! user made in Google, or an invitation), when the same event id can be in several places:
//!
//! * **two calendars of one user** (an invitation in the primary calendar and in a monitored
//!   team calendar; the user's own CRM meeting seen in a colleague's calendar the user
//!   monitors): one CRM record per user and Google event. The first calendar that brings the
//!   event in owns its pair; the other calendar's copy is not imported while that pair lives
//!   (before, the pair's calendar flipped with every read and each read announced it as new);
//! * **two connected users of one tenant** (an invitation between two CRM users: Google puts
//!   the organizer's event into each attendee's calendar under the same id): the organizer's
//!   sync brings the meeting into the CRM — as the CRM's own meeting, or as the organizer's
//!   Google-born one — with the attendee on it, and the attendee's RSVP reaches the
//!   organizer's copy through Google. The attendee's copy is therefore not imported as a
//!   second, Google-born record for the attendee.
//!
//! A Google-born pair's key names its calendar (`~{event id}/{calendar tag}`), so it is found
//! with a consistent read of a key known in advance before the eventually consistent
//! Google-id index is asked (a delete right after a create is not missed while the index
//! lags); pairs keyed before (`~{event id}`) are still found.

use crate::app::App;
use crate::domain::{AccountStatus, Collection, CrmId, PairStatus, Product, TenantId, UserId};
use crate::google::calendar::Event;
use crate::store::repo::Versioned;
use crate::store::StoreError;
use std::collections::HashSet;

/// The key of the Google-born pair of `event_id` read in `calendar`.
pub fn key(calendar: &str, event_id: &str) -> CrmId {
    use sha2::Digest;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let digest = sha2::Sha256::digest(format!("crm-google-sync/calendar/{calendar}"));
    // 40 bits: 8 characters of Google's own id alphabet.
    let mut bits = 0u64;
    for b in &digest[..5] {
        bits = (bits << 8) | u64::from(*b);
    }
    let tag: String = (0..8)
        .rev()
        .map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize]))
        .collect();
    CrmId::google_born(&format!("{event_id}/{tag}"))
}

/// What the user's pairs hold of a Google event read in a calendar.
#[derive(Debug)]
pub enum Lookup {
    /// The event's pair in this calendar.
    Pair(Box<Versioned<PairStatus>>),
    /// The user has this event as a live pair of another calendar: not imported again.
    Elsewhere,
    /// None: a new Google-born event (unless a colleague organizes it, see [`colleagues`]).
    New,
}

/// Finds the pair of `event_id` read in `calendar` (consistent reads first, then every hit
/// of the Google-id index).
pub async fn find(
    app: &App,
    t: &TenantId,
    u: &UserId,
    calendar: &str,
    event_id: &str,
) -> Result<Lookup, StoreError> {
    let c = Collection::Calendar;
    if let Some(p) = app
        .store
        .get_pair(t, u, c, key(calendar, event_id).as_str())
        .await?
    {
        return Ok(Lookup::Pair(Box::new(p)));
    }
    let in_calendar =
        |p: &Versioned<PairStatus>| p.value.container.as_deref().is_none_or(|c| c == calendar);
    let legacy = app
        .store
        .get_pair(t, u, c, CrmId::google_born(event_id).as_str())
        .await?;
    let mut elsewhere = false;
    if let Some(p) = legacy {
        if in_calendar(&p) {
            return Ok(Lookup::Pair(Box::new(p)));
        }
        elsewhere |= p.value.deleted_at.is_none();
    }
    let hits = app.store.find_pairs_by_google_id(t, u, c, event_id).await?;
    elsewhere |= hits.iter().any(|p| p.value.deleted_at.is_none());
    if let Some(p) = hits.into_iter().find(in_calendar) {
        return Ok(Lookup::Pair(Box::new(p)));
    }
    Ok(if elsewhere {
        Lookup::Elsewhere
    } else {
        Lookup::New
    })
}

/// The Google addresses of the tenant's other users whose calendars the sync reads (their
/// primary calendar's id is that address): an event one of them organizes reaches the CRM
/// through their sync.
pub async fn colleagues(
    app: &App,
    t: &TenantId,
    u: &UserId,
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    let mut page: Option<String> = None;
    loop {
        let records = app.store.list_accounts(t, 100, page.as_deref()).await?;
        for a in records.items {
            let reads = a.status != AccountStatus::Disconnected
                && a.products.contains(Product::Calendar)
                && a.settings.direction != Some(crate::domain::Direction::CrmToGoogle);
            if &a.user != u && reads {
                if let Some(email) = a.google_email {
                    out.insert(email.to_lowercase());
                }
            }
        }
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

/// Whether `event` is organized by one of `colleagues` (not by the calendar being read).
pub fn organized_by(colleagues: &HashSet<String>, event: &Event) -> bool {
    event
        .organizer
        .as_ref()
        .filter(|o| o.self_ != Some(true))
        .and_then(|o| o.email.as_deref())
        .is_some_and(|e| colleagues.contains(&e.to_lowercase()))
}

/// The Google-born pair of `event_id` the CRM acknowledges: in `calendar` when the CRM names
/// it (the feed record's `calendar_id`), else the user's only live one.
pub async fn acknowledged(
    app: &App,
    t: &TenantId,
    u: &UserId,
    calendar: Option<&str>,
    event_id: &str,
) -> Result<Option<Versioned<PairStatus>>, StoreError> {
    let c = Collection::Calendar;
    if let Some(cal) = calendar {
        return Ok(match find(app, t, u, cal, event_id).await? {
            Lookup::Pair(p) if p.value.google_born => Some(*p),
            _ => None,
        });
    }
    if let Some(p) = app
        .store
        .get_pair(t, u, c, CrmId::google_born(event_id).as_str())
        .await?
    {
        return Ok(Some(p));
    }
    let mut born: Vec<Versioned<PairStatus>> = app
        .store
        .find_pairs_by_google_id(t, u, c, event_id)
        .await?
        .into_iter()
        .filter(|p| p.value.google_born)
        .collect();
    born.sort_by_key(|p| p.value.deleted_at.is_some());
    Ok(born.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_calendar_and_are_stored_forms() {
        let a = key("primary", "abc123");
        let b = key("team@group.calendar.google.com", "abc123");
        assert_ne!(a, b);
        assert_eq!(a, key("primary", "abc123"));
        assert!(a.is_google_born());
        assert!(a.as_str().starts_with("~abc123/"));
        let stored =
            CrmId::deserialize_stored(serde_json::Value::String(a.as_str().into())).unwrap();
        assert_eq!(stored, a);
    }
}
