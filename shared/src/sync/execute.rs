//! Carrying out one pair's decision, whatever the collection: decide (the pure
//! [`crate::sync::decide::decide`], through the collection's inputs), write to Google or
//! tell the CRM, record what was written, and commit the pair after the write (with the
//! feed record it needs, see [`super::Pass::feed`]); read a record again when Google says it
//! changed ([`decide_fresh`]); settle Google's answer to a batched write ([`finish`]). What
//! differs between events and contacts is behind [`Records`]: the Google calls and their
//! bodies, the feed records' kinds and data, what a pair keeps of Google's answer.

use super::feed::{Change, Conflict, Winner};
use super::{Part, SyncError};
use crate::domain::PairStatus;
use crate::store::repo::Versioned;
use crate::sync::decide::{Action, Decision, Side};
use std::future::Future;
use time::OffsetDateTime;

/// What a Google write came to.
pub enum Wrote<I> {
    /// Google applied it and answered with the record as it now is.
    Done(I),
    /// Changed in Google since it was read (a 412): nothing is recorded, the next read
    /// brings the change and the pair is decided anew.
    Stale,
}

/// What telling the CRM of Google's content came to.
pub enum Pulled {
    /// Told; `dirty`: the CRM side still has something for Google (the pair stays waiting).
    Told { dirty: bool },
    /// Not told, the pair is saved as it is now (a record too large to sync, reported on
    /// the pair).
    Kept,
}

/// A record read again by its id ([`Records::fetch`]): the item, and its content when it is
/// live and in the synced scope.
pub type Fetched<I, C> = (Option<I>, Option<C>);

/// A collection's part of carrying out a decision. Everything else is [`execute`]'s.
pub(crate) trait Records: Part {
    /// Google's record (an event, a person).
    type Item: Send + Sync;
    /// The normalized content both sides are compared by.
    type Content: Send + Sync;

    fn etag(item: &Self::Item) -> Option<String>;
    /// When Google last changed it (for "latest wins").
    fn modified(item: &Self::Item) -> Option<OffsetDateTime>;
    /// Whether Google still has it (not cancelled, not deleted).
    fn live(item: &Self::Item) -> bool;
    fn hash(content: &Self::Content) -> String;
    /// The CRM's content as the pair stores it.
    fn stored(pair: &PairStatus) -> Option<Self::Content>;

    /// Reads the pair's record again by its Google id: the item, and its content when it is
    /// live and in the synced scope.
    fn fetch(
        &mut self,
        pair: &PairStatus,
    ) -> impl Future<Output = Result<Fetched<Self::Item, Self::Content>, SyncError>> + Send;

    /// Decides the pair against Google's side (`item` and its `content`, as read). May note
    /// on the pair what the read tells whatever the decision (an event's resources).
    fn decide(
        &self,
        pair: &mut PairStatus,
        google: Side<'_>,
        item: Option<&Self::Item>,
        content: Option<&Self::Content>,
    ) -> Decision;

    /// After the decision: records the link the read item tells of (its id, its calendar);
    /// whether it is news to the pair.
    fn link(&self, _pair: &mut PairStatus, _item: Option<&Self::Item>, _d: &Decision) -> bool {
        false
    }

    /// Both sides hold the same content (Google's `content`, of `hash`): the new baseline.
    fn baseline(
        &self,
        pair: &mut PairStatus,
        item: Option<&Self::Item>,
        content: Option<&Self::Content>,
        hash: Option<String>,
    );

    /// Tells the CRM of Google's content and records it on the pair.
    fn pull(
        &mut self,
        pair: &mut PairStatus,
        d: &Decision,
        item: Option<&Self::Item>,
        content: Self::Content,
    ) -> impl Future<Output = Result<Pulled, SyncError>> + Send;

    /// Writes the CRM's content over Google's live `item`.
    fn update(
        &mut self,
        pair: &PairStatus,
        item: &Self::Item,
        content: &Self::Content,
    ) -> impl Future<Output = Result<Wrote<Self::Item>, SyncError>> + Send;

    /// Creates the CRM's record in Google (none there, or deleted there and edited in the
    /// CRM: the edit wins).
    fn create(
        &mut self,
        pair: &mut PairStatus,
        content: &Self::Content,
    ) -> impl Future<Output = Result<Self::Item, SyncError>> + Send;

    /// Records a write on the pair; whether the pair must stay waiting (a part of it could
    /// not be written yet).
    fn written(
        &mut self,
        pair: &mut PairStatus,
        written: &Self::Item,
        content: &Self::Content,
    ) -> impl Future<Output = bool> + Send;

    /// Deletes the pair's record in Google (`item`: as read).
    fn delete(
        &mut self,
        pair: &PairStatus,
        item: Option<&Self::Item>,
    ) -> impl Future<Output = Result<Wrote<()>, SyncError>> + Send;

    /// The pair ends on Google's news or by the deletion policy ([`Action::DeleteInCrm`],
    /// [`Action::Unlink`]): what the CRM is told, what Google loses.
    fn end(
        &mut self,
        pair: &mut PairStatus,
        action: Action,
        item: Option<&Self::Item>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// Whether a pair decided [`Action::Nothing`] still has something to save: Google's newer
/// etag (a change outside the synced fields, which the next conditional write needs), a link
/// learned, or the mark of the full read under way. Pure.
pub fn worth_saving(
    pair: &mut PairStatus,
    etag: Option<String>,
    linked: bool,
    unseen: bool,
) -> bool {
    if etag.is_some() && etag != pair.google_etag {
        pair.google_etag = etag;
        return true;
    }
    linked || unseen
}

/// Marks a pair carried out at `now` (and seen by the full read under way, if any). Pure.
pub fn stamp(pair: &mut PairStatus, now: OffsetDateTime, full_read: Option<&str>) {
    pair.last_synced_at = Some(now);
    if let Some(read) = full_read {
        pair.seen_in_read = Some(read.to_owned());
    }
}

/// Decides one pair against a known Google state (`item` as read, `content` its normalized
/// content, `google` its side) and carries the decision out; the pair is committed after the
/// write.
pub(crate) async fn execute<R: Records>(
    r: &mut R,
    mut pair: PairStatus,
    version: Option<u64>,
    google: Side<'_>,
    item: Option<&R::Item>,
    content: Option<R::Content>,
) -> Result<(), SyncError> {
    let loaded = pair.clone();
    let d = r.decide(&mut pair, google, item, content.as_ref());
    if d.conflict {
        r.report().conflicts += 1;
    }
    let now = r.pass().now();
    let hash = content.as_ref().map(R::hash);
    let linked = r.link(&mut pair, item, &d);
    let mut dirty = false;
    match d.action {
        Action::Nothing => {
            let unseen = r.pass().unseen(&pair);
            if !worth_saving(&mut pair, item.and_then(R::etag), linked, unseen) {
                return Ok(());
            }
        }
        Action::Baseline => r.baseline(&mut pair, item, content.as_ref(), hash),
        Action::PullToCrm => {
            let Some(content) = content else {
                return Ok(());
            };
            match r.pull(&mut pair, &d, item, content).await? {
                Pulled::Told { dirty: d } => dirty = d,
                Pulled::Kept => return r.pass().commit(&loaded, pair, version, false).await,
            }
        }
        Action::PushToGoogle => {
            let Some(content) = R::stored(&pair) else {
                return Ok(());
            };
            let written = match item.filter(|i| R::live(i)) {
                Some(live) => match r.update(&pair, live, &content).await? {
                    Wrote::Done(w) => w,
                    Wrote::Stale => return Ok(()),
                },
                None => r.create(&mut pair, &content).await?,
            };
            if let Some(conflict) = Conflict::of(&d, Winner::Crm) {
                r.pass()
                    .feed(Change::ConflictResolved(conflict), &pair)
                    .await?;
            }
            dirty = r.written(&mut pair, &written, &content).await;
            r.report().pushed += 1;
        }
        Action::DeleteInGoogle => {
            if let Wrote::Stale = r.delete(&pair, item).await? {
                return Ok(());
            }
            pair.deleted_at = Some(now);
        }
        Action::DeleteInCrm | Action::Unlink => {
            r.end(&mut pair, d.action, item).await?;
            pair.deleted_at = Some(now);
        }
        Action::Tombstone => {
            pair.deleted_at.get_or_insert(now);
        }
    }
    let read = r.pass().full_read();
    stamp(&mut pair, now, read.as_deref());
    r.pass().commit(&loaded, pair, version, dirty).await
}

/// Decides a pair against an item just read (listed on a page, or looked up): Google's side
/// is present with its content's hash, or deleted (no content: cancelled, deleted, out of
/// the scope), as of the item's last change.
pub(crate) async fn apply<R: Records>(
    r: &mut R,
    pair: PairStatus,
    version: Option<u64>,
    item: &R::Item,
    content: Option<R::Content>,
) -> Result<(), SyncError> {
    let hash = content.as_ref().map(R::hash);
    let modified = R::modified(item).unwrap_or_else(|| r.pass().now());
    let google = match &hash {
        Some(h) => Side::Present { hash: h, modified },
        None => Side::Deleted { at: modified },
    };
    execute(r, pair, version, google, Some(item), content).await
}

/// What reading a pair's record again by its id found (see [`fresh_side`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'h> {
    /// Live and in the synced scope: its content's hash, its last change.
    Synced {
        hash: &'h str,
        modified: OffsetDateTime,
    },
    /// Live, but out of the synced scope (a contact taken out of the group).
    OutOfScope,
    /// Not there, or deleted.
    Gone,
}

/// Google's side of a pair read again by its id. Pure. Out of the scope is absent: the
/// CRM's record puts that same record back, never a second one. Gone after it was synced is
/// a deletion (now); a link to a record that does not exist (or was never read) is dropped:
/// the CRM's record is new to Google.
pub fn fresh_side<'h>(pair: &mut PairStatus, found: Found<'h>, now: OffsetDateTime) -> Side<'h> {
    match found {
        Found::Synced { hash, modified } => Side::Present { hash, modified },
        Found::OutOfScope => Side::Absent,
        Found::Gone if pair.google_hash.is_some() => Side::Deleted { at: now },
        Found::Gone => {
            pair.google_id = None;
            Side::Absent
        }
    }
}

/// Reads the pair's record now and decides with what Google really holds (a link the CRM
/// made to a record not read yet; a write Google refused as stale).
pub(crate) async fn decide_fresh<R: Records>(
    r: &mut R,
    v: Versioned<PairStatus>,
) -> Result<(), SyncError> {
    let (item, content) = r.fetch(&v.value).await?;
    let hash = content.as_ref().map(R::hash);
    let found = match (item.as_ref().filter(|i| R::live(i)), hash.as_deref()) {
        (Some(i), Some(hash)) => Found::Synced {
            hash,
            modified: R::modified(i).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        (Some(_), None) => Found::OutOfScope,
        (None, _) => Found::Gone,
    };
    let mut pair = v.value;
    let google = fresh_side(&mut pair, found, r.pass().now());
    execute(r, pair, Some(v.version), google, item.as_ref(), content).await
}

/// Google's answer to one batched write, as the collection reads it.
pub enum Answer<I> {
    /// Written: the record as Google now holds it.
    Written(I),
    /// Deleted in Google, or taken out of the synced scope.
    Removed,
    /// Changed (or gone) in Google since it was read: read it again and decide.
    Fresh,
    /// A passing failure of this record: it keeps waiting, unchanged.
    Wait,
    /// A create whose outcome is unknown (Google may have made it and not show it yet): it
    /// keeps waiting, and is not made again before Google's reads had time to show it.
    Unsure,
    /// The record's own failure: shown on it (`last_error`), and the pass goes on.
    Failed(String),
    /// Nothing to record: saved as it is.
    Kept,
}

/// What follows an answer for the pair. Pure: `None` when the pair is not saved here
/// (read again, or left waiting as it is), else whether it stays waiting.
pub fn answered<I>(pair: &mut PairStatus, answer: &Answer<I>, now: OffsetDateTime) -> Option<bool> {
    match answer {
        Answer::Written(_) | Answer::Fresh | Answer::Wait => return None,
        Answer::Removed => pair.deleted_at = Some(now),
        Answer::Unsure => {
            pair.create_unsure_since = Some(now);
            return Some(true);
        }
        Answer::Failed(message) => pair.last_error = Some(message.clone()),
        Answer::Kept => {}
    }
    pair.last_synced_at = Some(now);
    Some(false)
}

/// Settles Google's answer to one batched write of a waiting pair (`loaded`: as planned
/// from, `pair`: with what planning set), committing what Google applied.
pub(crate) async fn finish<R: Records>(
    r: &mut R,
    loaded: PairStatus,
    mut pair: PairStatus,
    version: u64,
    answer: Answer<R::Item>,
) -> Result<(), SyncError> {
    let now = r.pass().now();
    match &answer {
        Answer::Removed => r.report().removed += 1,
        Answer::Wait | Answer::Unsure => r.report().waiting += 1,
        _ => {}
    }
    let dirty = match answered(&mut pair, &answer, now) {
        Some(dirty) => dirty,
        None => match answer {
            Answer::Written(item) => match R::stored(&pair) {
                Some(content) => return written(r, loaded, pair, version, item, content).await,
                None => {
                    pair.last_synced_at = Some(now);
                    false
                }
            },
            Answer::Fresh => {
                return decide_fresh(
                    r,
                    Versioned {
                        value: pair,
                        version,
                    },
                )
                .await
            }
            _ => return Ok(()),
        },
    };
    r.pass().commit(&loaded, pair, Some(version), dirty).await
}

/// Records a write Google applied and commits the pair (still waiting when a part of it
/// could not be written yet).
async fn written<R: Records>(
    r: &mut R,
    loaded: PairStatus,
    mut pair: PairStatus,
    version: u64,
    item: R::Item,
    content: R::Content,
) -> Result<(), SyncError> {
    let dirty = r.written(&mut pair, &item, &content).await;
    r.report().pushed += 1;
    if dirty {
        // A part could not be written yet (a series' exceptions, paced): the rest follows
        // in a continuation.
        let report = r.report();
        report.waiting += 1;
        report.more_waiting = true;
    } else {
        pair.last_synced_at = Some(r.pass().now());
    }
    r.pass().commit(&loaded, pair, Some(version), dirty).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Collection, CrmId};

    fn pair() -> PairStatus {
        let mut p = PairStatus::new(
            AccountId::generate(),
            Collection::Calendar,
            CrmId::parse("MTG-1").unwrap(),
        );
        p.google_etag = Some("\"1\"".into());
        p
    }

    #[test]
    fn nothing_to_copy_saves_only_what_is_news() {
        let mut p = pair();
        assert!(
            !worth_saving(&mut p, Some("\"1\"".into()), false, false),
            "same etag, nothing learned: no write"
        );
        assert!(!worth_saving(&mut p, None, false, false));
        assert!(worth_saving(&mut p, Some("\"2\"".into()), false, false));
        assert_eq!(
            p.google_etag.as_deref(),
            Some("\"2\""),
            "the newer etag is kept"
        );
        assert!(
            worth_saving(&mut p, None, true, false),
            "a link learned is saved"
        );
        assert!(
            worth_saving(&mut p, None, false, true),
            "a full read marks what it saw"
        );
    }

    #[test]
    fn a_record_read_again_is_present_absent_or_deleted() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let mut p = pair();
        p.google_id = Some("g1".into());
        let synced = Found::Synced {
            hash: "h",
            modified: now,
        };
        assert_eq!(
            fresh_side(&mut p, synced, now),
            Side::Present {
                hash: "h",
                modified: now
            }
        );
        assert_eq!(
            fresh_side(&mut p, Found::OutOfScope, now),
            Side::Absent,
            "out of the scope: the CRM's record puts the same one back"
        );
        assert_eq!(p.google_id.as_deref(), Some("g1"), "kept: the same record");
        p.google_hash = Some("h".into());
        assert_eq!(
            fresh_side(&mut p, Found::Gone, now),
            Side::Deleted { at: now },
            "gone after it was synced: a deletion"
        );
        p.google_hash = None;
        assert_eq!(fresh_side(&mut p, Found::Gone, now), Side::Absent);
        assert_eq!(
            p.google_id, None,
            "a link to a record never read that is not there: dropped"
        );
    }

    #[test]
    fn an_answer_commits_what_google_applied_and_keeps_the_rest_waiting() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let answer = |a: Answer<()>| {
            let mut p = pair();
            let next = answered(&mut p, &a, now);
            (next, p)
        };
        let (next, p) = answer(Answer::Removed);
        assert_eq!(next, Some(false));
        assert_eq!((p.deleted_at, p.last_synced_at), (Some(now), Some(now)));
        let (next, p) = answer(Answer::Failed("refused".into()));
        assert_eq!(next, Some(false), "the record's own failure is settled");
        assert_eq!(p.last_error.as_deref(), Some("refused"));
        assert_eq!(p.last_synced_at, Some(now));
        let (next, p) = answer(Answer::Unsure);
        assert_eq!(next, Some(true), "an unknown create stays waiting");
        assert_eq!((p.create_unsure_since, p.last_synced_at), (Some(now), None));
        let (next, p) = answer(Answer::Kept);
        assert_eq!((next, p.last_synced_at), (Some(false), Some(now)));
        for a in [Answer::Wait, Answer::Fresh, Answer::Written(())] {
            let (next, p) = answer(a);
            assert_eq!(next, None, "not saved by the answer alone");
            assert_eq!((p.last_synced_at, p.deleted_at), (None, None));
        }
    }

    #[test]
    fn a_carried_out_pair_is_stamped_and_marked_seen() {
        let mut p = pair();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        stamp(&mut p, now, None);
        assert_eq!(p.last_synced_at, Some(now));
        assert_eq!(p.seen_in_read, None, "outside a full read: no mark");
        stamp(&mut p, now, Some("R"));
        assert_eq!(p.seen_in_read.as_deref(), Some("R"));
    }
}
