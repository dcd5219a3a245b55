//! Reading Google's changes into the CRM, whatever the collection: the cursor (a sync token
//! for incremental reads, a page token within a read, saved after every page), one full
//! resync when Google expires the token, the mass-deletion guard before a page is applied,
//! and, at the end of a full read, the reconcile of the pairs it did not return.

use super::guard::{Guard, Window};
use super::{Held, Part, SyncError};
use crate::domain::{Cursor, PairStatus};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use std::collections::HashSet;
use std::future::Future;
use std::time::Instant;
use time::OffsetDateTime;

/// One page of Google's changes.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
}

/// What a collection's read needs: how a page is listed, which items end a pair, how one
/// item is applied. Everything else is [`read`]'s.
pub(crate) trait Source: Part {
    type Item: Send + Sync;

    /// The cursor's scope (`calendar:<id>`, `contacts`).
    fn scope(&self) -> String;

    /// What the read's tokens are good for (Google's tokens only serve the same request):
    /// when it changes, the read starts over. `None`: always the same.
    fn shape(&self) -> Option<String> {
        None
    }

    /// Lists a page at `cursor` (a full read when it has no sync token).
    fn list(
        &mut self,
        cursor: &Cursor,
    ) -> impl Future<Output = Result<Page<Self::Item>, GoogleError>> + Send;

    fn id(item: &Self::Item) -> &str;

    /// How many of `items` would end a live pair of the scope (for the guard).
    fn ending(
        &mut self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<usize, SyncError>> + Send;

    /// Whether a pair belongs to the scope read (a calendar's pairs, the contacts).
    fn in_scope(&self, pair: &PairStatus) -> bool;

    /// Whether a pair the full read did not return may have been deleted (a calendar's
    /// events that ended before the read's window are hidden by it, not gone).
    fn may_be_gone(&self, _pair: &PairStatus) -> bool {
        true
    }

    /// What the scope says of deletions the guard holds back (see [`super::Pass::block`]).
    fn held(&self) -> Held;

    /// Applies a page (in order; a collection may read more per item).
    fn apply_page(
        &mut self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<(), SyncError>> + Send {
        async move {
            for item in items {
                self.apply(item).await?;
            }
            Ok(())
        }
    }

    /// Applies one item (looked up by the reconcile).
    fn apply(&mut self, item: &Self::Item) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// How many ids one [`Self::look_up`] takes (what one request of Google's answers).
    const LOOK_UP: usize;

    /// Google's state of pairs the full read did not return, one item per id (a gone one
    /// as a deletion).
    fn look_up(
        &mut self,
        ids: Vec<String>,
    ) -> impl Future<Output = Result<Vec<Self::Item>, SyncError>> + Send;

    /// Whether an item ends its pair (deleted, or out of the scope).
    fn ends(&self, item: &Self::Item) -> bool;
}

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Up to date (or nothing new).
    Done,
    /// The guard held deletions back: nothing more was applied.
    Blocked,
    /// Stopped at the deadline between pages: a continuation resumes from the cursor.
    Incomplete,
}

/// Reads the source's changes page by page until its sync token is current, or `deadline`
/// (the scope is then in the report's `incomplete`).
pub(crate) async fn read<S: Source>(src: &mut S, deadline: Instant) -> Result<Read, SyncError> {
    let outcome = read_pages(src, deadline).await;
    src.pass().set_full_read(None);
    if let Ok(Read::Incomplete) = outcome {
        let scope = src.scope();
        src.report().incomplete.push(scope);
    }
    outcome
}

/// A read under way: the scope's cursor (and its stored version), the guard's count, what a
/// full read returned.
struct Reading {
    cursor: Cursor,
    version: Option<u64>,
    guard: Guard,
    confirmed: bool,
    /// One full resync per pass at most: a second expired token in a row fails the pass.
    reset: bool,
    /// What a full read returned (a full read reports no deletions: see `reconcile`).
    seen: HashSet<String>,
}

async fn read_pages<S: Source>(src: &mut S, deadline: Instant) -> Result<Read, SyncError> {
    let mut r = open_cursor(src).await?;
    loop {
        src.pass().set_full_read(r.cursor.start_page());
        let Some(page) = list_page(src, &mut r).await? else {
            continue;
        };
        if src.pass().full_read().is_some() {
            r.seen
                .extend(page.items.iter().map(|i| S::id(i).to_owned()));
        }
        if guard_page(src, &mut r, &page.items).await? {
            return Ok(Read::Blocked);
        }
        // The page's feed records go in one append, before the pairs they tell of are
        // committed and before the cursor moves past the page.
        // A page cut short (pacing mid-page) still keeps what it applied, so the next run
        // goes on from there.
        let now = src.pass().now();
        src.pass().hold();
        let applied = src.apply_page(&page.items).await;
        let flushed = src.pass().flush().await;
        applied?;
        flushed?;
        let news = !page.items.is_empty() || page.next_page_token.is_some();
        if r.cursor.idle_page(news, now) {
            // Nothing changed: the stored sync token still says where the read stands, and
            // an idle pass writes nothing.
            return Ok(Read::Done);
        }
        if page_read(src, &mut r, page, now).await? {
            return Ok(Read::Blocked);
        }
        if r.cursor.page_token.is_none() {
            return Ok(Read::Done);
        }
        if Instant::now() >= deadline {
            return Ok(Read::Incomplete);
        }
    }
}

/// The scope's cursor, started over in full when what the read asks for changed.
async fn open_cursor<S: Source>(src: &S) -> Result<Reading, SyncError> {
    let (scope, shape, pass) = (src.scope(), src.shape(), src.pass());
    let stored = pass
        .app
        .store
        .get_cursor(pass.t(), pass.u(), &scope)
        .await?;
    let (mut cursor, version) = match stored {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (
            Cursor::new(pass.account.id.clone(), scope.clone(), pass.now()),
            None,
        ),
    };
    if shape.is_some_and(|shape| cursor.reshape(shape)) {
        tracing::info!(tenant = %pass.t(), user = %pass.u(), scope, "what the read asks for changed; full read");
    }
    let confirmed = pass.confirm_mass_deletion;
    Ok(Reading {
        guard: Guard::new(
            confirmed,
            Window::earlier(cursor.deletions.as_ref(), pass.now()),
        ),
        cursor,
        version,
        confirmed,
        reset: false,
        seen: HashSet::new(),
    })
}

/// Lists the next page; `None` when a refused token started the read over (once).
async fn list_page<S: Source>(
    src: &mut S,
    r: &mut Reading,
) -> Result<Option<Page<S::Item>>, SyncError> {
    let with_token = r.cursor.page_token.is_some() || r.cursor.sync_token.is_some();
    match src.list(&r.cursor).await {
        Ok(page) => {
            src.report().read += page.items.len();
            Ok(Some(page))
        }
        // Expired, or refused as not matching the call that gave it (Google binds page and
        // sync tokens to the request's other parameters): the read starts over in full,
        // once.
        Err(e) if (e.is_full_sync_required() || (with_token && e.is_bad_request())) && !r.reset => {
            r.reset = true;
            let (pass, scope) = (src.pass(), src.scope());
            tracing::info!(tenant = %pass.t(), user = %pass.u(), scope, error = %e, "sync or page token refused; full resync");
            r.cursor.sync_token = None;
            r.cursor.page_token = None;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The guard looks at the whole page before anything is deleted: `true` when it holds the
/// page's deletions back (reported; nothing of the page is applied).
async fn guard_page<S: Source>(
    src: &mut S,
    r: &mut Reading,
    items: &[S::Item],
) -> Result<bool, SyncError> {
    let ending = if r.guard.watching() {
        src.ending(items).await?
    } else {
        0
    };
    if r.guard.needs_count(ending) {
        let live = live_pairs(src).await?;
        if r.guard.holds(ending, live) {
            let total = r.guard.total(ending);
            hold_back(src, &mut r.cursor, r.version, total, live).await?;
            return Ok(true);
        }
    }
    r.guard.pass(ending);
    let now = src.pass().now();
    r.cursor.deletions = match r.confirmed {
        // Confirmed: what the CRM let through starts the count over.
        true => None,
        false => Window::note(r.cursor.deletions, ending, now),
    };
    if ending > 0 || r.confirmed {
        r.cursor.block_told = false;
    }
    Ok(false)
}

/// Moves the cursor past an applied page (at the last one of a full read, after the
/// reconcile) and saves it; `true` when the reconcile's deletions are held back.
async fn page_read<S: Source>(
    src: &mut S,
    r: &mut Reading,
    page: Page<S::Item>,
    now: OffsetDateTime,
) -> Result<bool, SyncError> {
    r.cursor.updated_at = now;
    match page.next_page_token {
        Some(next) => r.cursor.page_token = Some(next),
        None => {
            if src.pass().full_read().is_some() {
                if let Some((deletions, live)) = reconcile(src, &r.seen, &mut r.cursor).await? {
                    hold_back(src, &mut r.cursor, r.version, deletions, live).await?;
                    return Ok(true);
                }
            }
            r.cursor.full_read = None;
            r.cursor.page_token = None;
            r.cursor.sync_token = page.next_sync_token.or(r.cursor.sync_token.take());
        }
    }
    let pass = src.pass();
    let stored = pass
        .app
        .store
        .put_cursor(pass.t(), pass.u(), &r.cursor, r.version);
    r.version = Some(stored.await?);
    Ok(false)
}

/// Deletions the guard holds back: reported once (the cursor remembers it was told; the
/// read does not move past them until the CRM confirms).
async fn hold_back<S: Source>(
    src: &mut S,
    cursor: &mut Cursor,
    version: Option<u64>,
    deletions: usize,
    live: usize,
) -> Result<(), SyncError> {
    let scope = src.scope();
    src.report().blocked.push(scope);
    let held = src.held();
    src.pass()
        .block(held, deletions, live, !cursor.block_told)
        .await?;
    if cursor.block_told {
        return Ok(());
    }
    cursor.block_told = true;
    let pass = src.pass();
    pass.app
        .store
        .put_cursor(pass.t(), pass.u(), cursor, version)
        .await?;
    Ok(())
}

async fn live_pairs<S: Source>(src: &mut S) -> Result<usize, SyncError> {
    let pairs = src.pass().all_pairs().await?;
    Ok(pairs
        .iter()
        .filter(|p| p.deleted_at.is_none() && src.in_scope(p))
        .count())
}

/// Which pair a full read's reconcile must look up: a live one of the scope, synced from
/// Google, that the read (in this run, or an earlier run of the same read) did not return.
/// Pure.
pub fn to_look_up<'p>(
    pair: &'p PairStatus,
    read: Option<&str>,
    seen: &HashSet<String>,
) -> Option<&'p str> {
    if pair.deleted_at.is_some()
        || pair.google_hash.is_none()
        || !super::unseen_by_full_read(read, pair)
    {
        return None;
    }
    pair.google_id.as_deref().filter(|g| !seen.contains(*g))
}

/// After a full read (the first one, or after Google expired the sync token): a full list
/// shows no deletions, so a record deleted while the token was stale would never be heard
/// of. Each pair [`to_look_up`] names is looked up and, if gone, ended like any deletion —
/// under the guard (with the scope's recent deletions). Returns the deletions the guard held
/// back, and the live pairs.
async fn reconcile<S: Source>(
    src: &mut S,
    seen: &HashSet<String>,
    cursor: &mut Cursor,
) -> Result<Option<(usize, usize)>, SyncError> {
    let pairs = src.pass().all_pairs().await?;
    let read = src.pass().full_read();
    let (mut live, mut unseen) = (0usize, Vec::new());
    for p in &pairs {
        if p.deleted_at.is_some() || !src.in_scope(p) {
            continue;
        }
        live += 1;
        if let Some(g) = to_look_up(p, read.as_deref(), seen).filter(|_| src.may_be_gone(p)) {
            unseen.push(g.to_owned());
        }
    }
    if unseen.is_empty() {
        return Ok(None);
    }
    let mut gone = Vec::new();
    for ids in unseen.chunks(S::LOOK_UP.max(1)) {
        for item in src.look_up(ids.to_vec()).await? {
            if src.ends(&item) {
                gone.push(item);
            } else {
                // Still there (outside what the list showed): applied like a listed item,
                // which also marks it seen should this check be cut short and run again.
                src.apply(&item).await?;
            }
        }
    }
    let now = src.pass().now();
    let confirmed = src.pass().confirm_mass_deletion;
    let guard = Guard::new(confirmed, Window::earlier(cursor.deletions.as_ref(), now));
    if guard.holds(gone.len(), live) {
        return Ok(Some((guard.total(gone.len()), live)));
    }
    for item in &gone {
        src.apply(item).await?;
    }
    if !confirmed {
        cursor.deletions = Window::note(cursor.deletions, gone.len(), now);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Collection, CrmId};

    fn pair(google_id: &str) -> PairStatus {
        let mut p = PairStatus::new(
            AccountId::generate(),
            Collection::Contacts,
            CrmId::parse("C-1").unwrap(),
        );
        p.google_id = Some(google_id.into());
        p.google_hash = Some("h".into());
        p
    }

    #[test]
    fn the_reconcile_looks_up_live_synced_pairs_the_read_missed() {
        let seen: HashSet<String> = ["people/c1".to_owned()].into();
        assert_eq!(
            to_look_up(&pair("people/c2"), Some("R"), &seen),
            Some("people/c2")
        );
        assert_eq!(
            to_look_up(&pair("people/c1"), Some("R"), &seen),
            None,
            "returned"
        );
        let mut earlier = pair("people/c2");
        earlier.seen_in_read = Some("R".into());
        assert_eq!(
            to_look_up(&earlier, Some("R"), &seen),
            None,
            "an earlier run saw it"
        );
        earlier.seen_in_read = Some("older read".into());
        assert_eq!(to_look_up(&earlier, Some("R"), &seen), Some("people/c2"));
        let mut ended = pair("people/c2");
        ended.deleted_at = Some(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(to_look_up(&ended, Some("R"), &seen), None, "already ended");
        let mut unsynced = pair("people/c2");
        unsynced.google_hash = None;
        assert_eq!(
            to_look_up(&unsynced, Some("R"), &seen),
            None,
            "never read from Google"
        );
        assert_eq!(
            to_look_up(&pair("people/c2"), None, &seen),
            None,
            "not a full read"
        );
    }
}
