//! Pushing the CRM's waiting changes to Google, whatever the collection: the waiting
//! collection (the job's own record first, read directly since the dirty index is eventually
//! consistent; then the index, whose entries are read again consistently, so a pair an
//! earlier job has just committed is not sent twice), the plan within the calls the job has
//! left ([`super::plan::batches`]), then batch by batch, each batch's answers committed
//! before the next is sent. What is in no batch, or meets a failure of the pass as a whole,
//! stays waiting, and the outcome says so: the worker queues a continuation.

use super::guard::{Guard, Window};
use super::plan::{batches, BatchKind, WriteCost};
use super::{Pass, SyncError};
use crate::domain::{CrmId, Cursor, PairStatus};
use crate::google::{pacing, GoogleError};
use crate::services::records;
use crate::store::repo::Versioned;
use serde_json::json;
use std::collections::HashSet;
use std::future::Future;
use std::time::Instant;

/// The most waiting pairs one pass decides (its store reads); the rest waits for the next
/// job. A multiple of every batch size, so a cut leaves whole batches.
pub const MAX_PLANNED: usize = 5000;

/// Waiting pairs listed from the dirty index at a time.
const LIST_PAGE: u64 = 200;

/// What a collection's push needs: how a waiting pair is decided, which batch it goes in,
/// how a batch is sent. Everything else is [`push`]'s.
pub(crate) trait Sink: Send {
    /// A waiting pair and what will be done with it.
    type Planned: Send;

    /// The batch requests the collection sends, in the order they go.
    const KINDS: &'static [BatchKind];

    /// What the collection's records are called ("events", "contacts").
    const NOUN: &'static str;

    /// Whether a planned write deletes a record in Google (under the mass-deletion guard).
    fn deletes(p: &Self::Planned) -> bool;

    fn pass(&self) -> &Pass<'_>;

    /// Decides a waiting pair (assuming Google still holds what the last sync saw: the read
    /// just brought any newer change in). `None`: handled at once, nothing to send (settled,
    /// or read again and decided with what Google holds).
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

/// Pushes what waits. A failure of the pass as a whole stops it after the batch it hit
/// (what Google applied is committed, the rest keeps waiting) and is returned; so does the
/// deadline, between batches.
pub(crate) async fn push<S: Sink>(
    sink: &mut S,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<Pushed, SyncError> {
    let allowance = pacing::remaining().unwrap_or(u32::MAX);
    let pass = sink.pass();
    let (t, u, collection) = (pass.t().clone(), pass.u().clone(), pass.collection);
    let mut planned: Vec<S::Planned> = Vec::new();
    let mut writes: Vec<(usize, WriteCost)> = Vec::new();
    let mut estimate = Estimate::new(S::KINDS);
    let mut out = Pushed::default();
    let mut seen = HashSet::new();
    if let Some(id) = record {
        seen.insert(id.to_string());
        if let Some(v) = sink
            .pass()
            .app
            .store
            .get_pair(&t, &u, collection, id.as_str())
            .await?
        {
            // Committed by an earlier job already: nothing to send.
            if records::waiting(&v.value) {
                if let Some(p) = sink.plan(v.value, v.version).await? {
                    let w = S::batch_of(&p);
                    estimate.add(w);
                    writes.push(w);
                    planned.push(p);
                }
            }
        }
    }
    let mut page: Option<String> = None;
    'collect: while !estimate.over(allowance) {
        // No more of the index than the calls left can use (each listed pair is read again):
        // where every write is a call of its own, one more than the calls left (to learn that
        // more wait); a job short of calls (a low cap, a spent tenant budget) reads a few
        // pairs, not a page of 200.
        let room = u64::from(allowance).saturating_sub(estimate.calls);
        let size = match S::KINDS.iter().all(|k| k.per_part) {
            true => room.min(LIST_PAGE - 1) as u32 + 1,
            false => LIST_PAGE as u32,
        };
        let listed = sink
            .pass()
            .app
            .store
            .list_dirty_pairs(&t, &u, collection, size, page.as_deref())
            .await?;
        for Versioned { value, version } in listed.items {
            if !seen.insert(value.crm_id.to_string()) {
                continue;
            }
            if estimate.over(allowance) || planned.len() >= MAX_PLANNED {
                out.more = true;
                break 'collect;
            }
            if let Some(p) = sink.plan(value, version).await? {
                let w = S::batch_of(&p);
                estimate.add(w);
                writes.push(w);
                planned.push(p);
            }
        }
        match listed.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    if estimate.over(allowance) {
        out.more = true;
    }
    // The CRM's deletions go through the mass-deletion guard like Google's.
    let mut window = CrmDeletions::open(sink, &planned).await?;
    if window.as_ref().is_some_and(|w| w.held) {
        let keep: Vec<bool> = planned.iter().map(|p| !S::deletes(p)).collect();
        out.held = keep.iter().filter(|k| !**k).count();
        let mut k = keep.iter();
        planned.retain(|_| k.next().copied().unwrap_or(true));
        let mut k = keep.iter();
        writes.retain(|_| k.next().copied().unwrap_or(true));
    }
    // The plan: what fits in the calls left now (deciding may itself have read Google).
    let left = pacing::remaining().unwrap_or(u32::MAX);
    let plan = batches(&writes, S::KINDS, left);
    let mut slots: Vec<Option<S::Planned>> = planned.into_iter().map(Some).collect();
    let mut stopped = None;
    let mut deleted = 0;
    for b in plan {
        if stopped.is_some() || Instant::now() >= deadline {
            break;
        }
        let batch: Vec<S::Planned> = b.items.iter().filter_map(|&i| slots[i].take()).collect();
        out.sent += batch.len();
        deleted += batch.iter().filter(|p| S::deletes(p)).count();
        stopped = sink.send(b.kind, batch).await?;
    }
    if let Some(w) = window.as_mut() {
        w.close(sink.pass(), deleted).await?;
    }
    out.left = slots.iter().filter(|s| s.is_some()).count();
    match stopped {
        Some(e) => Err(e),
        None => Ok(out),
    }
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
                let data = json!({"collection": pass.collection.as_str(), "deleted_in": "crm"});
                let scope = format!("CRM deletions of {}", S::NOUN);
                let tell = !cursor.block_told;
                pass.block(&scope, S::NOUN, data, guard.total(deleting), live, tell)
                    .await?;
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
