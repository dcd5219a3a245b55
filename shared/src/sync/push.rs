//! Pushing the CRM's waiting changes to Google, whatever the collection: the waiting
//! collection (the job's own record first, read directly since the dirty index is eventually
//! consistent; then the index, whose entries are read again consistently, so a pair an
//! earlier job has just committed is not sent twice), the plan within the calls the job has
//! left ([`super::plan::batches`]), then batch by batch, each batch's answers committed
//! before the next is sent. What is in no batch, or meets a failure of the pass as a whole,
//! stays waiting, and the outcome says so: the worker queues a continuation.

use super::guard::{Guard, Window};
use super::plan::{batches, BatchKind, WriteCost};
use super::{decide_pair, Held, Part, Pass, SyncError};
use crate::domain::{CrmId, Cursor, PairStatus};
use crate::google::{pacing, GoogleError};
use crate::store::repo::Versioned;
use crate::sync::decide::{Action, Decision, Policy, Reason, Side};
use std::collections::HashSet;
use std::future::Future;
use std::time::Instant;
use time::OffsetDateTime;

/// The most waiting pairs one pass decides (its store reads); the rest waits for the next
/// job. A multiple of every batch size, so a cut leaves whole batches.
pub const MAX_PLANNED: usize = 5000;

/// Waiting pairs listed from the dirty index at a time.
const LIST_PAGE: u64 = 200;

/// What a collection's push needs: which write a decided waiting pair needs, which batch it
/// goes in, how a batch is sent. Everything else is [`push`]'s (and [`decide_waiting`]'s).
pub(crate) trait Sink: Part {
    /// A waiting pair and what will be done with it.
    type Planned: Send;

    /// The batch requests the collection sends, in the order they go.
    const KINDS: &'static [BatchKind];

    /// What the collection's records are called ("events", "contacts").
    const NOUN: &'static str;

    /// What a waiting pair the direction keeps out of Google shows (`None`: nothing).
    const FORBIDDEN: Option<&'static str> = None;

    /// Whether a planned write deletes a record in Google (under the mass-deletion guard).
    fn deletes(p: &Self::Planned) -> bool;

    /// The hash of the CRM's content as the pair stores it.
    fn crm_hash(pair: &PairStatus) -> Option<String>;

    /// The policy a waiting pair is decided under.
    fn policy(&self, pair: &PairStatus) -> Policy;

    /// When a pair settled while planning ended (its tombstone's time).
    fn ended_at(&self) -> OffsetDateTime {
        self.pass().now()
    }

    /// Reads the pair's record in Google now and decides with it (see
    /// [`super::execute::decide_fresh`]).
    fn fresh(
        &mut self,
        v: Versioned<PairStatus>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// Plans a waiting pair: [`decide_waiting`], then the write it needs. `None`: handled at
    /// once, nothing to send.
    fn plan(
        &mut self,
        pair: PairStatus,
        version: u64,
    ) -> impl Future<Output = Result<Option<Self::Planned>, SyncError>> + Send;

    /// Its batch kind (an index into [`Self::KINDS`]) and what it costs.
    fn batch_of(p: &Self::Planned) -> (usize, WriteCost);

    /// Sends one batch request and commits its answers. `Some`: a failure of the pass as a
    /// whole met on the way (pacing, the grant, Google unavailable): the batch's pairs not
    /// committed keep waiting, and nothing more is sent.
    fn send(
        &mut self,
        kind: usize,
        batch: Vec<Self::Planned>,
    ) -> impl Future<Output = Result<Option<SyncError>, SyncError>> + Send;
}

/// How planning a waiting pair starts, whatever the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening<'p> {
    /// Ended already: saved as it is, out of the waiting set.
    Ended,
    /// Linked by the CRM to a Google record not read yet: read it, then decide.
    Fresh,
    /// Decided against this side: what Google held at the last sync (the read just brought
    /// any newer change in).
    Decide(Side<'p>),
}

/// Pure: how planning `pair` starts.
pub fn opening(pair: &PairStatus) -> Opening<'_> {
    if pair.deleted_at.is_some() {
        return Opening::Ended;
    }
    match (&pair.google_id, &pair.google_hash) {
        (Some(_), None) => Opening::Fresh,
        (Some(_), Some(hash)) => Opening::Decide(Side::Present {
            hash,
            modified: OffsetDateTime::UNIX_EPOCH,
        }),
        (None, _) => Opening::Decide(Side::Absent),
    }
}

/// Pure: a waiting pair decided `d` with nothing to send, as it is saved: ended
/// (`ended_at`), the CRM's content as the new baseline (`crm_hash`), or `forbidden` shown on
/// it; out of the waiting set.
pub fn settled(
    pair: &mut PairStatus,
    d: &Decision,
    ended_at: OffsetDateTime,
    crm_hash: Option<String>,
    forbidden: Option<&str>,
) {
    match d.action {
        Action::Unlink | Action::Tombstone => {
            pair.deleted_at.get_or_insert(ended_at);
        }
        Action::Baseline => pair.crm_hash = crm_hash,
        Action::Nothing if d.reason == Reason::DirectionForbids => {
            if let Some(message) = forbidden {
                pair.last_error = Some(message.to_owned());
            }
        }
        _ => {}
    }
}

/// The start of every waiting pair's plan: one that ended is saved as it is; one linked to a
/// record not read yet is read and decided at once; the others are decided against what
/// Google held at the last sync. `None`: handled already.
pub(crate) async fn decide_waiting<S: Sink>(
    sink: &mut S,
    v: Versioned<PairStatus>,
) -> Result<Option<(Versioned<PairStatus>, Decision)>, SyncError> {
    let google = match opening(&v.value) {
        Opening::Ended => {
            sink.pass().settle(v, |_| {}).await?;
            return Ok(None);
        }
        Opening::Fresh => {
            sink.fresh(v).await?;
            return Ok(None);
        }
        Opening::Decide(google) => google,
    };
    let crm_hash = S::crm_hash(&v.value);
    let d = decide_pair(&v.value, crm_hash.as_deref(), google, sink.policy(&v.value));
    Ok(Some((v, d)))
}

/// Saves a waiting pair whose decision needs no Google write (see [`settled`]).
pub(crate) async fn settle_decided<S: Sink>(
    sink: &mut S,
    v: Versioned<PairStatus>,
    d: &Decision,
) -> Result<(), SyncError> {
    let (ended_at, crm_hash) = (sink.ended_at(), S::crm_hash(&v.value));
    sink.pass()
        .settle(v, |p| settled(p, d, ended_at, crm_hash, S::FORBIDDEN))
        .await
}

/// What follows when Google refused a request of `n` records, or one record's part of an
/// answered request — what goes on, what stays waiting. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A failure of the pass as a whole: everything not committed keeps waiting, nothing more
    /// is sent this pass.
    Stop,
    /// A request refused as a whole for one of its records (a People batch is checked
    /// whole, every contact and every etag, before anything is written): sent again in halves, until the record it
    /// refuses is alone.
    Split,
    /// Changed (or deleted) in Google since we read it: read it and decide anew.
    Fresh,
    /// The record's own failure: shown on it (`last_error`).
    Failed,
}

/// Pure: what follows a refusal of `n` records.
pub fn after_refusal(e: &GoogleError, n: usize) -> Next {
    if e.is_pass_level() {
        Next::Stop
    } else if n > 1 {
        Next::Split
    } else if e.is_etag_conflict() || matches!(e, GoogleError::NotFound(_)) {
        Next::Fresh
    } else {
        Next::Failed
    }
}

/// Pure: what follows a record's own failure inside an answered request.
pub fn after_answer(e: &GoogleError) -> Option<Next> {
    match after_refusal(e, 1) {
        // A passing failure of this record alone: it keeps waiting, the others go on.
        Next::Stop => None,
        next => Some(next),
    }
}

/// The answers of a request as a whole: one per record, or the refusal of them all (a
/// request the client reports refused gives each record the same error).
pub fn as_refusal<T>(answers: &[Result<T, GoogleError>]) -> Option<GoogleError> {
    let first = answers.first()?.as_ref().err()?;
    let all_same = answers.len() > 1
        && answers.iter().all(|a| {
            a.as_ref()
                .err()
                .is_some_and(|e| e.to_string() == first.to_string())
        });
    all_same.then(|| first.clone())
}

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Planned writes sent (whatever Google answered).
    pub sent: usize,
    /// Waiting pairs left for a later job (not collected, not planned, or not sent).
    pub left: usize,
    /// More may wait than were collected (the collection stopped early).
    pub more: bool,
    /// CRM deletions the mass-deletion guard held back (they wait for the CRM to confirm,
    /// counted in neither `sent` nor `left`).
    pub held: usize,
}

/// Pushes what waits (the report counts what is left waiting). A failure of the pass as a
/// whole stops it after the batch it hit (what Google applied is committed, the rest keeps
/// waiting) and is returned; so does the deadline, between batches.
pub(crate) async fn push<S: Sink>(
    sink: &mut S,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<Pushed, SyncError> {
    let allowance = pacing::remaining().unwrap_or(u32::MAX);
    let mut w = Waiting::new(S::KINDS);
    if let Some(id) = record {
        collect_record(sink, &mut w, id).await?;
    }
    collect(sink, &mut w, allowance).await?;
    if w.estimate.over(allowance) {
        w.out.more = true;
    }
    // The CRM's deletions go through the mass-deletion guard like Google's.
    let mut window = CrmDeletions::open(sink, &w.planned).await?;
    if window.as_ref().is_some_and(|w| w.held) {
        w.hold_deletions::<S>();
    }
    // The plan: what fits in the calls left now (deciding may itself have read Google).
    let left = pacing::remaining().unwrap_or(u32::MAX);
    let plan = batches(&w.writes, S::KINDS, left);
    let mut slots: Vec<Option<S::Planned>> = w.planned.into_iter().map(Some).collect();
    let (mut stopped, mut deleted, mut failed) = (None, 0, None);
    for b in plan {
        if stopped.is_some() || Instant::now() >= deadline {
            break;
        }
        let batch: Vec<S::Planned> = b.items.iter().filter_map(|&i| slots[i].take()).collect();
        w.out.sent += batch.len();
        deleted += batch.iter().filter(|p| S::deletes(p)).count();
        match sink.send(b.kind, batch).await {
            Ok(s) => stopped = s,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // The deletions sent count in the guard's window even when the pass fails after them
    // (Google may have applied them): a failure must not let a burst through piecemeal.
    if let Some(window) = window.as_mut() {
        window.close(sink.pass(), deleted).await?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    w.out.left = slots.iter().filter(|s| s.is_some()).count();
    let report = sink.report();
    report.waiting += w.out.left;
    report.more_waiting |= w.out.more || w.out.left > 0;
    report.crm_deletions_held += w.out.held;
    match stopped {
        Some(e) => Err(e),
        None => Ok(w.out),
    }
}

/// The waiting writes a push collected, with what they would cost.
struct Waiting<P> {
    planned: Vec<P>,
    writes: Vec<(usize, WriteCost)>,
    estimate: Estimate,
    out: Pushed,
    seen: HashSet<String>,
}

impl<P> Waiting<P> {
    fn new(kinds: &'static [BatchKind]) -> Self {
        Waiting {
            planned: Vec::new(),
            writes: Vec::new(),
            estimate: Estimate::new(kinds),
            out: Pushed::default(),
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, p: P, w: (usize, WriteCost)) {
        self.estimate.add(w);
        self.writes.push(w);
        self.planned.push(p);
    }

    /// Takes the CRM's deletions out of the plan (held back by the guard).
    fn hold_deletions<S: Sink<Planned = P>>(&mut self) {
        let keep: Vec<bool> = self.planned.iter().map(|p| !S::deletes(p)).collect();
        self.out.held = keep.iter().filter(|k| !**k).count();
        let mut k = keep.iter();
        self.planned.retain(|_| k.next().copied().unwrap_or(true));
        let mut k = keep.iter();
        self.writes.retain(|_| k.next().copied().unwrap_or(true));
    }
}

/// The job's own record, read directly (the dirty index is eventually consistent).
async fn collect_record<S: Sink>(
    sink: &mut S,
    w: &mut Waiting<S::Planned>,
    id: &CrmId,
) -> Result<(), SyncError> {
    w.seen.insert(id.to_string());
    let pass = sink.pass();
    let found = pass
        .app
        .store
        .get_pair(pass.t(), pass.u(), pass.collection, id.as_str());
    // Committed by an earlier job already: nothing to send.
    if let Some(v) = found.await?.filter(|v| super::pair::waiting(&v.value)) {
        if let Some(p) = sink.plan(v.value, v.version).await? {
            let cost = S::batch_of(&p);
            w.add(p, cost);
        }
    }
    Ok(())
}

/// The waiting pairs of the dirty index, planned until the calls left are spoken for.
async fn collect<S: Sink>(
    sink: &mut S,
    w: &mut Waiting<S::Planned>,
    allowance: u32,
) -> Result<(), SyncError> {
    let mut page: Option<String> = None;
    while !w.estimate.over(allowance) {
        // No more of the index than the calls left can use (each listed pair is read again):
        // where every write is a call of its own, one more than the calls left (to learn that
        // more wait); a job short of calls (a low cap, a spent tenant budget) reads a few
        // pairs, not a page of 200.
        let room = u64::from(allowance).saturating_sub(w.estimate.calls);
        let size = match S::KINDS.iter().all(|k| k.per_part) {
            true => room.min(LIST_PAGE - 1) as u32 + 1,
            false => LIST_PAGE as u32,
        };
        let pass = sink.pass();
        let (t, u, collection) = (pass.t(), pass.u(), pass.collection);
        let listed = pass
            .app
            .store
            .list_dirty_pairs(t, u, collection, size, page.as_deref());
        let listed = listed.await?;
        for Versioned { value, version } in listed.items {
            if !w.seen.insert(value.crm_id.to_string()) {
                continue;
            }
            if w.estimate.over(allowance) || w.planned.len() >= MAX_PLANNED {
                w.out.more = true;
                return Ok(());
            }
            if let Some(p) = sink.plan(value, version).await? {
                let cost = S::batch_of(&p);
                w.add(p, cost);
            }
        }
        match listed.next {
            Some(next) => page = Some(next),
            None => return Ok(()),
        }
    }
    Ok(())
}

/// The guard over the CRM's deletions of a collection (a CRM bug deleting every record under
/// the `propagate` policy): the same threshold and window as Google's, kept in a cursor of
/// its own (`crm-deletions:<collection>`), the same report, told once, and the same confirm.
struct CrmDeletions {
    cursor: Cursor,
    version: Option<u64>,
    /// The pass's deletions are held back.
    held: bool,
    confirmed: bool,
}

impl CrmDeletions {
    /// `None` when nothing planned deletes.
    async fn open<S: Sink>(sink: &S, planned: &[S::Planned]) -> Result<Option<Self>, SyncError> {
        let deleting = planned.iter().filter(|p| S::deletes(p)).count();
        if deleting == 0 {
            return Ok(None);
        }
        let pass = sink.pass();
        let scope = format!("crm-deletions:{}", pass.collection.as_str());
        let (mut cursor, mut version) = match pass
            .app
            .store
            .get_cursor(pass.t(), pass.u(), &scope)
            .await?
        {
            Some(v) => (v.value, Some(v.version)),
            None => (
                Cursor::new(pass.account.id.clone(), scope, pass.now()),
                None,
            ),
        };
        let confirmed = pass.confirm_mass_deletion;
        let guard = Guard::new(
            confirmed,
            Window::earlier(cursor.deletions.as_ref(), pass.now()),
        );
        let mut held = false;
        if guard.needs_count(deleting) {
            let live = pass
                .all_pairs()
                .await?
                .iter()
                .filter(|p| p.deleted_at.is_none())
                .count();
            held = guard.holds(deleting, live);
            if held {
                let about = Held {
                    what: format!("CRM deletions of {}", S::NOUN),
                    noun: S::NOUN,
                    scope: super::feed::HeldScope::crm(pass.collection),
                };
                let tell = !cursor.block_told;
                pass.block(about, guard.total(deleting), live, tell).await?;
            }
            if held && !cursor.block_told {
                cursor.block_told = true;
                version = Some(
                    pass.app
                        .store
                        .put_cursor(pass.t(), pass.u(), &cursor, version)
                        .await?,
                );
            }
        }
        Ok(Some(CrmDeletions {
            cursor,
            version,
            held,
            confirmed,
        }))
    }

    /// Counts the deletions sent (a confirmed pass starts the count over).
    async fn close(&mut self, pass: &Pass<'_>, deleted: usize) -> Result<(), SyncError> {
        if self.held || (deleted == 0 && !self.confirmed) {
            return Ok(());
        }
        self.cursor.deletions = match self.confirmed {
            true => None,
            false => Window::note(self.cursor.deletions, deleted, pass.now()),
        };
        self.cursor.block_told = false;
        self.version = Some(
            pass.app
                .store
                .put_cursor(pass.t(), pass.u(), &self.cursor, self.version)
                .await?,
        );
        Ok(())
    }
}

/// The calls the writes collected so far would cost, sent in full batches.
struct Estimate {
    kinds: &'static [BatchKind],
    count: Vec<usize>,
    calls: u64,
}

impl Estimate {
    fn new(kinds: &'static [BatchKind]) -> Self {
        Estimate {
            kinds,
            count: vec![0; kinds.len()],
            calls: 0,
        }
    }

    fn add(&mut self, (kind, cost): (usize, WriteCost)) {
        let Some(k) = self.kinds.get(kind) else {
            return;
        };
        self.calls += u64::from(cost.planning);
        if k.per_part {
            self.calls += cost.total();
        } else {
            if self.count[kind].is_multiple_of(k.limit.max(1)) {
                self.calls += 1;
            }
            self.calls += u64::from(cost.followups);
        }
        self.count[kind] += 1;
    }

    fn over(&self, allowance: u32) -> bool {
        self.calls > u64::from(allowance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> PairStatus {
        PairStatus::new(
            crate::domain::AccountId::generate(),
            crate::domain::Collection::Contacts,
            CrmId::parse("C-1").unwrap(),
        )
    }

    #[test]
    fn planning_starts_from_what_the_last_sync_saw() {
        let mut p = pair();
        assert_eq!(
            opening(&p),
            Opening::Decide(Side::Absent),
            "never in Google"
        );
        p.google_id = Some("people/c1".into());
        assert_eq!(
            opening(&p),
            Opening::Fresh,
            "linked by the CRM, not read yet"
        );
        p.google_hash = Some("h".into());
        assert_eq!(
            opening(&p),
            Opening::Decide(Side::Present {
                hash: "h",
                modified: OffsetDateTime::UNIX_EPOCH
            })
        );
        p.deleted_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(opening(&p), Opening::Ended);
    }

    #[test]
    fn a_decision_with_nothing_to_send_is_saved_as_such() {
        use crate::sync::decide::{Action, Decision, Reason};
        let d = |action, reason| Decision {
            action,
            reason,
            conflict: false,
        };
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(2);
        let mut p = pair();
        settled(
            &mut p,
            &d(Action::Tombstone, Reason::BothDeleted),
            at,
            None,
            None,
        );
        assert_eq!(p.deleted_at, Some(at));
        settled(
            &mut p,
            &d(Action::Unlink, Reason::CrmDeleted),
            OffsetDateTime::UNIX_EPOCH,
            None,
            None,
        );
        assert_eq!(p.deleted_at, Some(at), "an ended pair keeps its time");
        let mut p = pair();
        settled(
            &mut p,
            &d(Action::Baseline, Reason::SameContent),
            at,
            Some("c".into()),
            None,
        );
        assert_eq!(p.crm_hash.as_deref(), Some("c"));
        let forbids = d(Action::Nothing, Reason::DirectionForbids);
        settled(&mut p, &forbids, at, None, None);
        assert_eq!(p.last_error, None);
        settled(&mut p, &forbids, at, None, Some("not written"));
        assert_eq!(p.last_error.as_deref(), Some("not written"));
        assert_eq!(p.deleted_at, None);
    }

    #[test]
    fn the_estimate_counts_parts_or_requests() {
        const KINDS: [BatchKind; 2] = [
            BatchKind {
                limit: 50,
                per_part: true,
            },
            BatchKind {
                limit: 200,
                per_part: false,
            },
        ];
        let mut e = Estimate::new(&KINDS);
        let one = WriteCost {
            parts: 1,
            followups: 0,
            planning: 0,
        };
        for _ in 0..400 {
            e.add((1, one));
        }
        assert_eq!(e.calls, 2, "400 People writes: two requests");
        e.add((
            0,
            WriteCost {
                parts: 1,
                followups: 3,
                planning: 0,
            },
        ));
        assert_eq!(e.calls, 6, "a series: its part and its follow-ups");
        assert!(e.over(5) && !e.over(6));
        e.add((
            0,
            WriteCost {
                parts: 1,
                followups: 1,
                planning: 2,
            },
        ));
        assert_eq!(
            e.calls, 10,
            "a series edit: the check made while planning it too"
        );
    }

    #[test]
    fn a_refused_request_is_broken_down_to_the_contact_google_refuses() {
        let invalid = GoogleError::Rejected {
            status: 400,
            reason: "Invalid value at person.names".into(),
        };
        assert_eq!(after_refusal(&invalid, 200), Next::Split);
        assert_eq!(after_refusal(&invalid, 2), Next::Split);
        assert_eq!(after_refusal(&invalid, 1), Next::Failed);
        // One stale etag fails a whole batchUpdateContacts: the others go through, the
        // stale one is read again.
        let stale = GoogleError::PreconditionFailed("etag".into());
        assert_eq!(after_refusal(&stale, 200), Next::Split);
        assert_eq!(after_refusal(&stale, 1), Next::Fresh);
        assert_eq!(
            after_refusal(&GoogleError::NotFound("gone".into()), 1),
            Next::Fresh
        );
    }

    #[test]
    fn a_failure_of_the_pass_keeps_everything_waiting() {
        for e in [
            GoogleError::Transient("503".into()),
            GoogleError::Paced(crate::google::pacing::Pace::Account),
        ] {
            assert_eq!(after_refusal(&e, 200), Next::Stop);
            assert_eq!(after_refusal(&e, 1), Next::Stop);
            assert_eq!(
                after_answer(&e),
                None,
                "one contact's passing failure: it waits"
            );
        }
    }

    #[test]
    fn a_request_refused_as_a_whole_is_told_from_per_contact_answers() {
        let e = GoogleError::Rejected {
            status: 400,
            reason: "bad".into(),
        };
        let ok: Result<(), GoogleError> = Ok(());
        assert!(as_refusal::<()>(&[Err(e.clone()), Err(e.clone())]).is_some());
        assert!(as_refusal(&[Err(e.clone()), ok.clone()]).is_none());
        assert!(
            as_refusal::<()>(&[Err(e.clone())]).is_none(),
            "one contact: its own answer"
        );
        assert!(as_refusal(&[ok]).is_none());
        assert!(as_refusal::<()>(&[]).is_none());
    }
}
