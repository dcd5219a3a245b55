//! Deciding and carrying out, for one calendar ([`crate::sync::execute::Records`]):
//! Google's calls and bodies for an event, the feed records the CRM is told, and the insert
//! under the derived event id.

use super::{
    baseline_of, content_hash, google_content, google_event_id, google_json, parse_time,
    resources_of, stored, write_exceptions, Ctx, SyncError,
};
use crate::calendar::normal::Normalized;
use crate::domain::PairStatus;
use crate::google::calendar::Event;
use crate::google::GoogleError;
use crate::sync::decide::{Action, Decision, Reason, Side};
use crate::sync::execute::{Pulled, Records, Wrote};
use crate::sync::feed::{Change, Conflict, EndReason, EventChanged, EventEnded, Winner};
use crate::sync::{decide_pair, Part, Pass, Report};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A calendar's part in carrying out a decision.
pub(super) struct On<'c, 'a> {
    pub(super) ctx: &'c mut Ctx<'a>,
    pub(super) calendar: &'c str,
}

impl Part for On<'_, '_> {
    fn pass(&self) -> &Pass<'_> {
        &self.ctx.pass
    }
    fn report(&mut self) -> &mut Report {
        &mut self.ctx.pass.report
    }
}

impl Records for On<'_, '_> {
    type Item = Event;
    type Content = Normalized;

    fn etag(e: &Event) -> Option<String> {
        e.etag.clone()
    }

    fn modified(e: &Event) -> Option<OffsetDateTime> {
        parse_time(e.updated.as_deref())
    }

    fn live(e: &Event) -> bool {
        !e.is_cancelled()
    }

    fn hash(c: &Normalized) -> String {
        c.hash()
    }

    fn stored(pair: &PairStatus) -> Option<Normalized> {
        stored(pair)
    }

    async fn fetch(
        &mut self,
        pair: &PairStatus,
    ) -> Result<(Option<Event>, Option<Normalized>), SyncError> {
        let (ctx, calendar) = (&*self.ctx, self.calendar);
        let gid = pair.google_id.clone().unwrap_or_default();
        let event = ctx.app.google.get_event(&ctx.token, calendar, &gid).await?;
        let content = match event.as_ref().filter(|e| !e.is_cancelled()) {
            Some(e) => Some(google_content(ctx, calendar, e).await?),
            None => None,
        };
        Ok((event, content))
    }

    /// An RSVP is not an edit: a meeting the CRM deleted whose Google copy changed only in
    /// attendees' responses since (the CRM's last content and Google's agree but for them) is
    /// not brought back by "edit beats delete".
    fn decide(
        &self,
        pair: &mut PairStatus,
        google: Side<'_>,
        event: Option<&Event>,
        google_content: Option<&Normalized>,
    ) -> Decision {
        if let Some(e) = event.filter(|e| !e.is_cancelled()) {
            pair.google_resources = resources_of(e);
        }
        let crm_hash_now = pair.crm_content.as_ref().and_then(content_hash);
        let rsvp_only = match (
            pair.crm_deleted_at,
            &google,
            google_content,
            &pair.crm_content,
        ) {
            (Some(_), Side::Present { .. }, Some(g), Some(c)) => {
                serde_json::from_value::<Normalized>(c.clone())
                    .is_ok_and(|c| c.without_responses() == g.without_responses())
            }
            _ => false,
        };
        let google = match (rsvp_only, pair.google_hash.as_deref(), google) {
            (true, Some(unchanged), Side::Present { modified, .. }) => Side::Present {
                hash: unchanged,
                modified,
            },
            (_, _, google) => google,
        };
        let d = decide_pair(
            pair,
            crm_hash_now.as_deref(),
            google,
            self.ctx.policy_for(self.calendar),
        );
        pair.last_error = None;
        d
    }

    /// The event read is the pair's: its id and calendar are recorded whatever the decision
    /// (a pair whose insert was applied but not committed is found by the CRM id it carries,
    /// and only the Google-id index finds it again when Google later reports it deleted,
    /// with nothing but its id).
    fn link(&self, pair: &mut PairStatus, event: Option<&Event>, d: &Decision) -> bool {
        match event.filter(|e| !e.is_cancelled()) {
            Some(e) if !matches!(d.action, Action::DeleteInCrm | Action::Unlink) => {
                let learned = pair.google_id.as_deref() != Some(e.id.as_str())
                    || pair.container.as_deref() != Some(self.calendar);
                pair.google_id = Some(e.id.clone());
                pair.container = Some(self.calendar.to_owned());
                learned
            }
            _ => false,
        }
    }

    fn baseline(
        &self,
        pair: &mut PairStatus,
        event: Option<&Event>,
        content: Option<&Normalized>,
        hash: Option<String>,
    ) {
        pair.google_occurrences = content.and_then(Normalized::occurrences_hash);
        pair.crm_hash.clone_from(&hash);
        pair.google_hash = hash;
        pair.google_etag = event
            .and_then(|e| e.etag.clone())
            .or(pair.google_etag.take());
    }

    async fn pull(
        &mut self,
        pair: &mut PairStatus,
        d: &Decision,
        event: Option<&Event>,
        content: Normalized,
    ) -> Result<Pulled, SyncError> {
        let (calendar, now) = (self.calendar, self.ctx.now());
        let google_hash = Some(content.hash());
        let stored = serde_json::to_value(&content).unwrap_or(Value::Null);
        if let Some(bytes) = crate::sync::pair::oversize(&stored) {
            // Larger than the product keeps (a huge series with many per-occurrence
            // attendee lists): reported on the pair, which keeps its last content; the
            // pass goes on, and a later, smaller version of the event syncs again.
            tracing::warn!(tenant = %self.ctx.t(), user = %self.ctx.u(), calendar, bytes, "Google event too large to sync");
            pair.google_hash = google_hash;
            pair.google_occurrences = content.occurrences_hash();
            pair.google_etag = event.and_then(|e| e.etag.clone());
            pair.last_error = Some(format!(
                "the Google event is {} KB once normalized; at most {} KB is synced",
                bytes.div_ceil(1024),
                crate::sync::pair::MAX_RECORD_BYTES / 1024
            ));
            return Ok(Pulled::Kept);
        }
        let created = pair.crm_content.is_none();
        pair.google_id = event.map(|e| e.id.clone()).or(pair.google_id.take());
        pair.container = Some(calendar.to_owned());
        let data = EventChanged {
            calendar_id: calendar.to_owned(),
            event: content.to_crm(),
            html_link: event.and_then(|e| e.html_link.clone()),
            google_updated: event.and_then(|e| e.updated.clone()),
            conflict: Conflict::of(d, Winner::Google),
            edit_beat_delete: d.reason == Reason::EditBeatsDelete,
            from_crm_id: self
                .ctx
                .born_from
                .take()
                .filter(|_| created && pair.google_born),
        };
        let change = if created || d.reason == Reason::EditBeatsDelete {
            Change::EventCreated(data)
        } else {
            Change::EventUpdated(data)
        };
        if d.reason == Reason::EditBeatsDelete {
            pair.crm_deleted_at = None;
        }
        self.ctx.pass.feed(change, pair).await?;
        pair.google_occurrences = content.occurrences_hash();
        pair.crm_content = serde_json::to_value(&content).ok();
        pair.crm_hash.clone_from(&google_hash);
        pair.google_hash = google_hash;
        pair.crm_modified = event
            .and_then(|e| parse_time(e.updated.as_deref()))
            .or(Some(now));
        pair.google_etag = event.and_then(|e| e.etag.clone());
        Ok(Pulled::Told { dirty: false })
    }

    async fn update(
        &mut self,
        pair: &PairStatus,
        e: &Event,
        content: &Normalized,
    ) -> Result<Wrote<Event>, SyncError> {
        let ctx = &*self.ctx;
        let body = Value::Object(ctx.google_body(pair, content));
        let etag = e.etag.as_deref();
        match ctx
            .app
            .google
            .patch_event(
                &ctx.token,
                self.calendar,
                &e.id,
                &body,
                etag,
                ctx.send_updates,
            )
            .await
        {
            Ok(w) => Ok(Wrote::Done(w)),
            // Changed again since we read it: the next pass reads and decides anew.
            Err(GoogleError::PreconditionFailed(_)) => Ok(Wrote::Stale),
            Err(e) => Err(e.into()),
        }
    }

    async fn create(
        &mut self,
        pair: &mut PairStatus,
        content: &Normalized,
    ) -> Result<Event, SyncError> {
        if pair.google_id.is_some() {
            // Deleted in Google, edited in the CRM: the edit wins with a new event.
            pair.generation += 1;
        }
        insert(self.ctx, self.calendar, pair, content).await
    }

    async fn written(
        &mut self,
        pair: &mut PairStatus,
        written: &Event,
        content: &Normalized,
    ) -> bool {
        record_written(self.ctx, pair, written, content, self.calendar).await
    }

    async fn delete(
        &mut self,
        pair: &PairStatus,
        event: Option<&Event>,
    ) -> Result<Wrote<()>, SyncError> {
        let (Some(gid), Some(e)) = (pair.google_id.as_deref(), event) else {
            return Ok(Wrote::Done(()));
        };
        let ctx = &mut *self.ctx;
        let etag = e.etag.as_deref();
        match ctx
            .app
            .google
            .delete_event(&ctx.token, self.calendar, gid, etag, ctx.send_updates)
            .await
        {
            Ok(()) => {
                ctx.report.removed += 1;
                Ok(Wrote::Done(()))
            }
            Err(GoogleError::PreconditionFailed(_)) => Ok(Wrote::Stale),
            Err(e) => Err(e.into()),
        }
    }

    async fn end(
        &mut self,
        pair: &mut PairStatus,
        action: Action,
        _event: Option<&Event>,
    ) -> Result<(), SyncError> {
        let calendar_id = self.calendar.to_owned();
        let change = if action == Action::DeleteInCrm {
            Change::EventDeleted(EventEnded {
                calendar_id,
                reason: None,
            })
        } else if pair.crm_deleted_at.is_none() {
            Change::EventUnlinked(EventEnded {
                calendar_id,
                reason: Some(EndReason::DeletedInGoogle),
            })
        } else {
            return Ok(());
        };
        self.ctx.pass.feed(change, pair).await
    }
}

/// Records a write of the pair's event; a series then gets its exceptions brought in line.
/// Returns whether the pair must stay waiting (some exceptions could not be written yet: the
/// CRM side is marked unsynced, so the next pass writes the series again).
async fn record_written(
    ctx: &Ctx<'_>,
    pair: &mut PairStatus,
    written: &Event,
    content: &Normalized,
    calendar: &str,
) -> bool {
    pair.google_id = Some(written.id.clone());
    pair.container = Some(calendar.to_owned());
    pair.google_etag = written.etag.clone();
    pair.google_resources = resources_of(written);
    pair.crm_hash = Some(content.hash());
    pair.deleted_at = None;
    pair.last_error = None;
    if content.recurrence.is_empty() {
        let actual = Normalized::from_google(&google_json(written));
        pair.google_hash = Some(baseline_of(&actual, content));
        pair.google_occurrences = actual.occurrences_hash();
        return false;
    }
    let outcome = write_exceptions(ctx, calendar, written, content).await;
    pair.google_hash = Some(baseline_of(&outcome.actual, content));
    pair.google_occurrences = outcome.actual.occurrences_hash();
    pair.last_error = outcome.error;
    if outcome.retry {
        pair.crm_hash = None;
    }
    outcome.retry
}

/// Inserts the pair's event under its derived id. A 409 means an earlier attempt got there
/// (or the id was used before): reuse the live event, or move to the next generation.
pub(super) async fn insert(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    pair: &mut PairStatus,
    content: &Normalized,
) -> Result<Event, SyncError> {
    for _ in 0..3 {
        let id = google_event_id(ctx.t(), ctx.u(), &pair.crm_id, pair.generation);
        let mut body = ctx.google_body(pair, content);
        body.insert("id".into(), json!(id));
        let event: Event = serde_json::from_value(Value::Object(body.clone()))
            .map_err(|e| SyncError::Body(e.to_string()))?;
        match ctx
            .app
            .google
            .insert_event(&ctx.token, calendar, &event, ctx.send_updates)
            .await
        {
            Ok(e) => return Ok(e),
            Err(GoogleError::Conflict(_)) => {
                match ctx.app.google.get_event(&ctx.token, calendar, &id).await? {
                    Some(existing) if !existing.is_cancelled() => {
                        let etag = existing.etag.as_deref();
                        body.remove("id");
                        let written = ctx
                            .app
                            .google
                            .patch_event(
                                &ctx.token,
                                calendar,
                                &id,
                                &Value::Object(body),
                                etag,
                                ctx.send_updates,
                            )
                            .await?;
                        return Ok(written);
                    }
                    _ => pair.generation += 1,
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(SyncError::NoFreeId)
}
