//! Carrying out one pair's decision, whatever the collection: decide (the pure
//! [`crate::calendar::decide::decide`], through the collection's inputs), write to Google or
//! tell the CRM, record what was written, and commit the pair after the write (with the
//! feed record it needs, see [`Pass::feed`]). What differs between events and contacts is
//! behind [`Records`]: the Google calls and their bodies, the feed records' kinds and data,
//! what a pair keeps of Google's answer.

use super::{conflict_data, Pass, SyncError};
use crate::calendar::decide::{Action, Decision, Side};
use crate::domain::{ChangeKind, PairStatus};
use serde_json::Value;
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

/// Counts a collection reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Conflict,
    Pushed,
}

/// A collection's part of carrying out a decision. Everything else is [`execute`]'s.
pub(crate) trait Records: Send {
    /// Google's record (an event, a person).
    type Item: Send + Sync;
    /// The normalized content both sides are compared by.
    type Content: Send + Sync;

    fn pass(&self) -> &Pass<'_>;

    fn etag(item: &Self::Item) -> Option<String>;
    /// Whether Google still has it (not cancelled, not deleted).
    fn live(item: &Self::Item) -> bool;
    fn hash(content: &Self::Content) -> String;
    /// The CRM's content as the pair stores it.
    fn stored(pair: &PairStatus) -> Option<Self::Content>;

    fn count(&mut self, what: Tally);

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

    /// Tells the CRM of a pair ([`Pass::feed`]).
    fn feed(
        &mut self,
        kind: ChangeKind,
        pair: &PairStatus,
        data: Value,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// Saves the pair after its decision was carried out ([`Pass::commit`]).
    fn commit(
        &mut self,
        loaded: &PairStatus,
        pair: PairStatus,
        version: Option<u64>,
        dirty: bool,
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
        r.count(Tally::Conflict);
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
                Pulled::Kept => return r.commit(&loaded, pair, version, false).await,
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
            if d.conflict {
                r.feed(
                    ChangeKind::ConflictResolved,
                    &pair,
                    conflict_data(&d, "crm"),
                )
                .await?;
            }
            dirty = r.written(&mut pair, &written, &content).await;
            r.count(Tally::Pushed);
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
    let read = r.pass().full_read.clone();
    stamp(&mut pair, now, read.as_deref());
    r.commit(&loaded, pair, version, dirty).await
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
