//! CRM → Google: the waiting changes, planned within the job's calls and sent in batch
//! requests ([`crate::sync::push::Sink`]); each answer settled and committed.

use super::{content_hash, google_event_id, insert, occurrences_changed, stored, Ctx, SyncError};
use crate::calendar::normal::Normalized;
use crate::domain::PairStatus;
use crate::google::batch::{BatchResponse, MAX_PARTS};
use crate::google::calendar::{CalendarRequest, Event};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use crate::sync::decide::{Action, Decision, Policy, Side};
use crate::sync::execute::{self, Answer};
use crate::sync::plan::{BatchKind, WriteCost};
use crate::sync::push::{self, Sink};
use serde_json::{json, Value};

/// One waiting pair and what will be done with it.
pub(super) struct Planned {
    /// The pair as read (to merge into if the CRM changes it meanwhile).
    loaded: PairStatus,
    pair: PairStatus,
    version: u64,
    content: Option<Normalized>,
    decision: Decision,
    request: CalendarRequest,
}

impl Sink for Ctx<'_> {
    type Planned = Planned;

    const KINDS: &'static [BatchKind] = &[BatchKind {
        limit: MAX_PARTS,
        per_part: true,
    }];

    const NOUN: &'static str = "events";

    const FORBIDDEN: Option<&'static str> =
        Some("this calendar is not written by the sync (direction or monitored calendar)");

    fn deletes(p: &Planned) -> bool {
        p.decision.action == Action::DeleteInGoogle
    }

    fn crm_hash(pair: &PairStatus) -> Option<String> {
        pair.crm_content.as_ref().and_then(content_hash)
    }

    fn policy(&self, pair: &PairStatus) -> Policy {
        self.policy_for(&self.calendar_of(pair))
    }

    async fn fresh(&mut self, v: Versioned<PairStatus>) -> Result<(), SyncError> {
        let calendar = self.calendar_of(&v.value);
        execute::decide_fresh(&mut self.on(&calendar), v).await
    }

    /// Decides a waiting pair (see [`push::decide_waiting`]); a series edit first checks
    /// Google's occurrences.
    async fn plan(&mut self, pair: PairStatus, version: u64) -> Result<Option<Planned>, SyncError> {
        let Some((v, d)) = push::decide_waiting(
            self,
            Versioned {
                value: pair,
                version,
            },
        )
        .await?
        else {
            return Ok(None);
        };
        let calendar = self.calendar_of(&v.value);
        let content = stored(&v.value);
        if let Some(fresh) =
            occurrences_changed(self, &calendar, &v.value, &d, content.as_ref()).await?
        {
            // Read, then decide: Google's occurrences changed since the last sync (an edit not
            // read yet), so the CRM's series would overwrite them — a conflict for the policy.
            let google = Side::Present {
                hash: &fresh.content.hash(),
                modified: fresh.modified,
            };
            let (event, content) = (fresh.event, Some(fresh.content));
            let mut on = self.on(&calendar);
            execute::execute(
                &mut on,
                v.value,
                Some(version),
                google,
                Some(&event),
                content,
            )
            .await?;
            return Ok(None);
        }
        let mut pair = v.value.clone();
        let Some(request) = request_for(self, &calendar, &mut pair, &d, content.as_ref())? else {
            push::settle_decided(self, v, &d).await?;
            return Ok(None);
        };
        Ok(Some(Planned {
            loaded: v.value,
            pair,
            version,
            content,
            decision: d,
            request,
        }))
    }

    fn batch_of(p: &Planned) -> (usize, WriteCost) {
        (0, write_cost(p))
    }

    async fn send(
        &mut self,
        _kind: usize,
        chunk: Vec<Planned>,
    ) -> Result<Option<SyncError>, SyncError> {
        let requests: Vec<CalendarRequest> = chunk.iter().map(|p| p.request.clone()).collect();
        let answers = match self.app.google.batch(&self.token, requests).await {
            Ok(answers) => answers,
            Err(e) => return Ok(Some(e.into())),
        };
        let mut stopped = None;
        for (p, answer) in chunk.into_iter().zip(answers) {
            match finish(self, p, answer).await {
                Ok(()) => {}
                // A follow-up call of one pair met a pass-level failure: that pair keeps
                // waiting (it was not committed); the chunk's other answers are still
                // committed, and nothing more is sent.
                Err(SyncError::Google(e)) if e.is_pass_level() => {
                    stopped.get_or_insert(SyncError::Google(e));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = self.pass_error.take() {
            stopped.get_or_insert(e);
        }
        Ok(stopped)
    }
}

/// What a planned write costs: its batch part, and for a series the read of its occurrences
/// and a write per occurrence the CRM changed (and, for an edit, the check made while
/// planning it).
fn write_cost(p: &Planned) -> WriteCost {
    let (followups, planning) = match (&p.content, p.decision.action) {
        (Some(c), Action::PushToGoogle) if !c.recurrence.is_empty() => (
            1 + u32::try_from(c.exceptions.len()).unwrap_or(u32::MAX),
            // The check of Google's occurrences before an edit of a synced series.
            if p.pair.google_id.is_some() && p.pair.google_occurrences.is_some() {
                2
            } else {
                0
            },
        ),
        _ => (0, 0),
    };
    WriteCost {
        parts: 1,
        followups,
        planning,
    }
}

/// The batch part a decided waiting pair needs: a patch of its event, an insert under its
/// derived id (the pair is then in `calendar`), a delete; `None`: nothing to send.
fn request_for(
    ctx: &Ctx<'_>,
    calendar: &str,
    pair: &mut PairStatus,
    d: &Decision,
    content: Option<&Normalized>,
) -> Result<Option<CalendarRequest>, SyncError> {
    let send = ctx.send_updates;
    Ok(match (d.action, content, pair.google_id.clone()) {
        (Action::PushToGoogle, Some(c), Some(gid)) => {
            let body = Value::Object(ctx.google_body(pair, c));
            let etag = pair.google_etag.as_deref();
            Some(CalendarRequest::patch_event(
                calendar, &gid, &body, etag, send,
            ))
        }
        (Action::PushToGoogle, Some(c), None) => {
            pair.container = Some(calendar.to_owned());
            let mut body = ctx.google_body(pair, c);
            let id = google_event_id(ctx.t(), ctx.u(), &pair.crm_id, pair.generation);
            body.insert("id".into(), json!(id));
            let event: Event = serde_json::from_value(Value::Object(body))
                .map_err(|e| SyncError::Body(e.to_string()))?;
            Some(CalendarRequest::insert_event(calendar, &event, send)?)
        }
        (Action::DeleteInGoogle, _, Some(gid)) => {
            let etag = pair.google_etag.as_deref();
            Some(CalendarRequest::delete_event(calendar, &gid, etag, send))
        }
        _ => None,
    })
}

/// Settles Google's answer for one planned change (see [`execute::finish`]).
async fn finish(ctx: &mut Ctx<'_>, p: Planned, answer: BatchResponse) -> Result<(), SyncError> {
    let Planned {
        loaded,
        mut pair,
        version,
        content,
        decision,
        ..
    } = p;
    let calendar = ctx.calendar_of(&pair);
    let answer = match (decision.action, answer) {
        (Action::PushToGoogle, a) if a.is_success() => {
            serde_json::from_value::<Event>(a.body).map_or(Answer::Kept, Answer::Written)
        }
        // A retried insert: the event is there (or its id is spent) — settle it alone.
        (Action::PushToGoogle, a) if a.status == 409 => match &content {
            Some(c) => Answer::Written(insert(ctx, &calendar, &mut pair, c).await?),
            None => Answer::Kept,
        },
        (Action::DeleteInGoogle, a) if a.is_success() || a.status == 404 || a.status == 410 => {
            Answer::Removed
        }
        (_, a) => match a.error() {
            // Google changed it since our last read (and no incremental read will bring the
            // change again): read it now and decide with what Google really holds.
            Some(GoogleError::PreconditionFailed(_)) => Answer::Fresh,
            // A failure of the pass, not of the record (Google unavailable, the token
            // refused): the pair stays waiting for the next pass — after a reconnect, if
            // the grant is gone.
            Some(e) if e.is_pass_level() => {
                ctx.pass_error.get_or_insert(SyncError::Google(e));
                Answer::Wait
            }
            // The record's own failure: shown on it, and the pass goes on.
            Some(e) => Answer::Failed(e.to_string()),
            None => Answer::Kept,
        },
    };
    execute::finish(&mut ctx.on(&calendar), loaded, pair, version, answer).await
}
