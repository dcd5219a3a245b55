//! An account's health as its admin needs to see it (`GET /v1/admin/accounts/{user}`, the
//! console's account page): how many records wait for the worker, which records failed and
//! why, the push channel of every calendar it reads, the deletions the mass-deletion guard
//! holds back, and the account's latest feed records. Reads only, each bounded: a health
//! view of a user with tens of thousands of records costs a few store pages, not a scan.

use crate::app::App;
use crate::clock::rfc3339;
use crate::domain::{
    Account, ChangeKind, ChannelState, Collection, PairStatus, Product, TenantId, UserId,
};
use crate::http::ApiError;
use serde::Serialize;

/// Waiting records are counted up to this many per collection.
pub const WAITING_CAP: u32 = 5_000;
/// Records looked at, at most, for those in error.
pub const ERRORS_SCANNED: usize = 2_000;
/// Records in error shown, at most.
pub const ERRORS_SHOWN: usize = 50;
/// Feed records looked at for the account's recent ones (the tenant's newest).
const RECENT_SCANNED: u32 = 300;
const RECENT_SHOWN: usize = 20;

#[derive(Debug, Serialize)]
pub struct AccountHealth {
    /// Per synced collection: records changed in the CRM that the worker has not sent yet.
    pub waiting: Vec<Waiting>,
    /// Records whose last attempt failed, with Google's or the sync's reason (the pass moves
    /// on without them; they are tried again when they next change or the account is
    /// reconnected).
    pub errors: Vec<RecordError>,
    /// Whether `errors` looked at every record (`false`: only the first
    /// [`ERRORS_SCANNED`] of a collection).
    pub errors_complete: bool,
    /// The push channel of every calendar the account reads.
    pub channels: Vec<ChannelHealth>,
    /// Read scopes whose deletions the mass-deletion guard holds back until an admin
    /// confirms (`POST /v1/users/{user}/sync` with `confirm_mass_deletion`).
    pub held_deletions: Vec<String>,
    /// The account's latest feed records, newest first (among the tenant's latest).
    pub recent_changes: Vec<RecentChange>,
}

#[derive(Debug, Serialize)]
pub struct Waiting {
    pub collection: Collection,
    pub count: usize,
    /// More than `count` (the count stopped at [`WAITING_CAP`]).
    pub more: bool,
}

#[derive(Debug, Serialize)]
pub struct RecordError {
    pub collection: Collection,
    pub crm_id: String,
    pub google_id: Option<String>,
    pub message: String,
    pub last_synced_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChannelHealth {
    pub calendar: String,
    pub push: PushHealth,
    /// When the channel (or the "push unsupported" note) runs out.
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushHealth {
    /// A live channel: changes arrive within seconds.
    Watching,
    /// Google cannot watch this calendar: it is polled.
    Unsupported,
    /// No live channel (not opened yet, expired, or Google refused it): polled until the
    /// next pass opens one.
    None,
}

#[derive(Debug, Serialize)]
pub struct RecentChange {
    pub id: String,
    /// As the feed spells it (`event_created`, …).
    pub kind: String,
    pub crm_id: Option<String>,
    pub created_at: String,
}

/// The health of `account` (as just read from the store).
pub async fn of(app: &App, account: &Account) -> Result<AccountHealth, ApiError> {
    let (t, u) = (&account.tenant, &account.user);
    let collections = synced(account);
    let mut waiting = Vec::new();
    let mut errors = Vec::new();
    let mut errors_complete = true;
    for &c in &collections {
        let counted = app.store.count_dirty_pairs(t, u, c, WAITING_CAP).await?;
        waiting.push(Waiting {
            collection: c,
            count: counted.unwrap_or(WAITING_CAP as usize),
            more: counted.is_none(),
        });
        errors_complete &= in_error(app, t, u, c, &mut errors).await?;
    }
    Ok(AccountHealth {
        waiting,
        errors,
        errors_complete,
        channels: channels(app, account).await?,
        held_deletions: held_deletions(app, t, u).await?,
        recent_changes: recent(app, t, u).await?,
    })
}

/// An account's health in brief, for one row of a list of accounts.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Records waiting for the worker, all collections (counted up to a cap per collection:
    /// [`SUMMARY_CAP`] in a list, [`WAITING_CAP`] on an account's own page).
    pub waiting: usize,
    pub waiting_more: bool,
    /// Calendars read, and how many have a live push channel or are known not to support
    /// push (polled).
    pub calendars: usize,
    pub watching: usize,
    pub push_unsupported: usize,
    /// A mass deletion is held back until someone confirms it.
    pub deletions_held: bool,
}

/// Waiting records are counted up to this many per collection in a [`Summary`].
pub const SUMMARY_CAP: u32 = 1_000;

/// [`Summary`] of one account: a few bounded queries (one count per collection, its
/// channels, its cursors).
pub async fn summary(app: &App, a: &Account) -> Result<Summary, ApiError> {
    let mut waiting = Vec::new();
    for c in synced(a) {
        let counted = app
            .store
            .count_dirty_pairs(&a.tenant, &a.user, c, SUMMARY_CAP)
            .await?;
        waiting.push(Waiting {
            collection: c,
            count: counted.unwrap_or(SUMMARY_CAP as usize),
            more: counted.is_none(),
        });
    }
    let channels = channels(app, a).await?;
    let held = held_deletions(app, &a.tenant, &a.user).await?;
    Ok(Summary::of(&waiting, &channels, &held))
}

impl Summary {
    /// The brief of a health's parts (pure).
    pub fn of(waiting: &[Waiting], channels: &[ChannelHealth], held: &[String]) -> Self {
        let count = |p: PushHealth| channels.iter().filter(|c| c.push == p).count();
        Summary {
            waiting: waiting.iter().map(|w| w.count).sum(),
            waiting_more: waiting.iter().any(|w| w.more),
            calendars: channels.len(),
            watching: count(PushHealth::Watching),
            push_unsupported: count(PushHealth::Unsupported),
            deletions_held: !held.is_empty(),
        }
    }
}

impl AccountHealth {
    pub fn summary(&self) -> Summary {
        Summary::of(&self.waiting, &self.channels, &self.held_deletions)
    }
}

fn synced(a: &Account) -> Vec<Collection> {
    let mut out = Vec::new();
    if a.products.contains(Product::Calendar) {
        out.push(Collection::Calendar);
    }
    if a.products.contains(Product::Contacts) {
        out.push(Collection::Contacts);
    }
    out
}

/// Adds the pairs of `c` in error to `out` (up to [`ERRORS_SHOWN`] in all); whether every
/// pair was looked at.
async fn in_error(
    app: &App,
    t: &TenantId,
    u: &UserId,
    c: Collection,
    out: &mut Vec<RecordError>,
) -> Result<bool, ApiError> {
    let mut page: Option<String> = None;
    let mut scanned = 0usize;
    loop {
        let found = app.store.list_pairs(t, u, c, 500, page.as_deref()).await?;
        scanned += found.items.len();
        out.extend(found.items.into_iter().filter_map(record_error));
        out.truncate(ERRORS_SHOWN);
        match found.next {
            Some(next) if scanned < ERRORS_SCANNED && out.len() < ERRORS_SHOWN => page = Some(next),
            Some(_) => return Ok(false),
            None => return Ok(true),
        }
    }
}

fn record_error(p: PairStatus) -> Option<RecordError> {
    if p.deleted_at.is_some() {
        return None;
    }
    Some(RecordError {
        collection: p.collection,
        crm_id: p.crm_id.to_string(),
        google_id: p.google_id,
        message: p.last_error?,
        last_synced_at: p.last_synced_at.map(rfc3339),
    })
}

async fn channels(app: &App, a: &Account) -> Result<Vec<ChannelHealth>, ApiError> {
    if !a.products.contains(Product::Calendar) {
        return Ok(Vec::new());
    }
    let now = app.clock.now();
    let mut out: Vec<ChannelHealth> = super::schedule::read_calendars(a)
        .into_iter()
        .map(|calendar| ChannelHealth {
            calendar,
            push: PushHealth::None,
            expires_at: None,
        })
        .collect();
    let mut page: Option<String> = None;
    loop {
        let found = app
            .store
            .list_channels(&a.tenant, &a.user, 100, page.as_deref())
            .await?;
        for ch in found.items.into_iter().filter(|c| c.expires_at > now) {
            let push = match ch.state {
                ChannelState::Active => PushHealth::Watching,
                ChannelState::PushUnsupported => PushHealth::Unsupported,
                ChannelState::Stopped => continue,
            };
            if let Some(h) = out.iter_mut().find(|h| h.calendar == ch.calendar_id) {
                // The live channel that lasts longest (a renewal overlaps the old one).
                if h.push == PushHealth::None
                    || h.expires_at.as_deref() < Some(rfc3339(ch.expires_at).as_str())
                {
                    h.push = push;
                    h.expires_at = Some(rfc3339(ch.expires_at));
                }
            }
        }
        match found.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

/// The read scopes of the user whose deletions the guard holds back.
pub async fn held_deletions(app: &App, t: &TenantId, u: &UserId) -> Result<Vec<String>, ApiError> {
    Ok(app
        .store
        .list_cursors(t, u)
        .await?
        .into_iter()
        .filter(|c| c.block_told)
        .map(|c| c.scope)
        .collect())
}

async fn recent(app: &App, t: &TenantId, u: &UserId) -> Result<Vec<RecentChange>, ApiError> {
    Ok(app
        .store
        .recent_changes(t, RECENT_SCANNED)
        .await?
        .into_iter()
        .filter(|r| &r.user == u)
        .take(RECENT_SHOWN)
        .map(|r| RecentChange {
            id: r.id,
            kind: kind_name(r.kind),
            crm_id: r.crm_id,
            created_at: rfc3339(r.created_at),
        })
        .collect())
}

fn kind_name(k: ChangeKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(calendar: &str, push: PushHealth) -> ChannelHealth {
        ChannelHealth {
            calendar: calendar.into(),
            push,
            expires_at: None,
        }
    }

    #[test]
    fn a_summary_adds_the_collections_and_counts_the_channels() {
        let waiting = [
            Waiting {
                collection: Collection::Calendar,
                count: 1_000,
                more: true,
            },
            Waiting {
                collection: Collection::Contacts,
                count: 3,
                more: false,
            },
        ];
        let channels = [
            channel("primary", PushHealth::Watching),
            channel("holidays", PushHealth::Unsupported),
            channel("team", PushHealth::None),
        ];
        let s = Summary::of(&waiting, &channels, &[]);
        assert_eq!((s.waiting, s.waiting_more), (1_003, true));
        assert_eq!((s.calendars, s.watching, s.push_unsupported), (3, 1, 1));
        assert!(!s.deletions_held);
        assert!(Summary::of(&[], &[], &["contacts".into()]).deletions_held);
    }

    #[test]
    fn only_live_pairs_with_an_error_are_records_in_error() {
        let mut p = PairStatus::new(
            crate::domain::AccountId::generate(),
            Collection::Calendar,
            crate::domain::CrmId::parse("m-1").unwrap(),
        );
        assert!(record_error(p.clone()).is_none());
        p.last_error = Some("Google refused".into());
        let e = record_error(p.clone()).unwrap();
        assert_eq!(
            (e.crm_id.as_str(), e.message.as_str()),
            ("m-1", "Google refused")
        );
        p.deleted_at = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert!(
            record_error(p).is_none(),
            "a tombstone is no record in error"
        );
    }
}
