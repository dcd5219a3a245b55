//! Google → CRM: one calendar's read through the sync core ([`crate::sync::read`]), and
//! which pair each event read is news of (our own events by the CRM id they carry, the
//! others by their id in the calendar; Google-born records claimed before the CRM hears).

use super::{google_content, parse_time, Ctx, SyncError};
use crate::calendar::normal::{Normalized, When, PROP_CRM_ID, PROP_TENANT, PROP_USER};
use crate::domain::{Collection, CrmId, Cursor, PairStatus, PrivateEventPolicy};
use crate::google::calendar::{Event, ListEvents};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use crate::store::StoreError;
use crate::sync::execute;
use crate::sync::read::{self, Page, Source};
use crate::sync::{Held, Part, Pass, Report};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One calendar's read (see [`crate::sync::read`]).
struct CalendarRead<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    calendar: &'c str,
    /// The start of a full read's window.
    since: OffsetDateTime,
}

pub(super) async fn read_calendar(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    deadline: Instant,
) -> Result<(), SyncError> {
    let since = ctx.account.settings.sync_since.unwrap_or_else(|| {
        ctx.now() - time::Duration::days(i64::from(ctx.tenant.settings.defaults.sync_since_days))
    });
    let mut src = CalendarRead {
        ctx,
        calendar,
        since,
    };
    read::read(&mut src, deadline).await?;
    Ok(())
}

impl Part for CalendarRead<'_, '_> {
    fn pass(&self) -> &Pass<'_> {
        &self.ctx.pass
    }
    fn report(&mut self) -> &mut Report {
        &mut self.ctx.pass.report
    }
}

impl Source for CalendarRead<'_, '_> {
    type Item = Event;

    fn scope(&self) -> String {
        format!("calendar:{}", self.calendar)
    }

    async fn list(&mut self, cursor: &Cursor) -> Result<Page<Event>, GoogleError> {
        let full = cursor.sync_token.is_none();
        let params = ListEvents {
            sync_token: cursor.sync_token.clone(),
            page_token: cursor.page_token.clone(),
            time_min: full.then(|| self.since.format(&Rfc3339).unwrap_or_default()),
            show_deleted: !full,
            max_results: Some(250),
            ..ListEvents::default()
        };
        let ctx = &*self.ctx;
        let page = ctx
            .app
            .google
            .list_events(&ctx.token, self.calendar, &params)
            .await?;
        Ok(Page {
            items: page.items,
            next_page_token: page.next_page_token,
            next_sync_token: page.next_sync_token,
        })
    }

    fn id(e: &Event) -> &str {
        &e.id
    }

    /// The cancellations that would end a live pair of this calendar.
    async fn ending(&mut self, items: &[Event]) -> Result<usize, SyncError> {
        let (t, u) = (self.ctx.t().clone(), self.ctx.u().clone());
        let cancelled: Vec<&Event> = items
            .iter()
            .filter(|e| e.is_cancelled() && e.recurring_event_id.is_none())
            .collect();
        let mut n = 0;
        for e in cancelled {
            // The same lookup the page's apply makes (consistent reads, then every index hit
            // of this calendar): an event id also in another calendar never hides this one.
            let found =
                crate::calendar::born::find(self.ctx.app, &t, &u, self.calendar, &e.id).await?;
            if matches!(found, crate::calendar::born::Lookup::Pair(p) if p.value.deleted_at.is_none())
            {
                n += 1;
            }
        }
        Ok(n)
    }

    fn in_scope(&self, pair: &PairStatus) -> bool {
        pair.container.as_deref() == Some(self.calendar)
    }

    /// Pairs whose event ended before the read's window are left alone (the window hides
    /// them, it did not delete them).
    fn may_be_gone(&self, pair: &PairStatus) -> bool {
        ends_after(pair, self.since)
    }

    fn held(&self) -> Held {
        Held {
            what: format!("calendar {}", self.calendar),
            noun: "events",
            scope: crate::sync::feed::HeldScope::Calendar {
                calendar_id: self.calendar.to_owned(),
            },
        }
    }

    /// An exception of a series (a moved, edited or cancelled occurrence) is news of the
    /// series: it is read again with its exceptions, once per page, unless its master is on
    /// the page anyway.
    async fn apply_page(&mut self, items: &[Event]) -> Result<(), SyncError> {
        let (ctx, calendar) = (&mut *self.ctx, self.calendar);
        let masters: HashSet<&str> = items
            .iter()
            .filter(|e| e.recurring_event_id.is_none())
            .map(|e| e.id.as_str())
            .collect();
        ctx.series_news = items
            .iter()
            .filter_map(|e| e.recurring_event_id.clone())
            .collect();
        let mut series_read = HashSet::new();
        for event in items {
            match &event.recurring_event_id {
                None => apply_google_event(ctx, calendar, event).await?,
                Some(m) if masters.contains(m.as_str()) => {}
                Some(m) => {
                    if series_read.insert(m.clone()) {
                        if let Some(master) =
                            ctx.app.google.get_event(&ctx.token, calendar, m).await?
                        {
                            apply_google_event(ctx, calendar, &master).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn apply(&mut self, event: &Event) -> Result<(), SyncError> {
        apply_google_event(self.ctx, self.calendar, event).await
    }

    const LOOK_UP: usize = 1;

    /// `events.get` for each; one Google no longer has comes back cancelled.
    async fn look_up(&mut self, ids: Vec<String>) -> Result<Vec<Event>, SyncError> {
        let mut out = Vec::with_capacity(ids.len());
        for gid in ids {
            let found = self
                .ctx
                .app
                .google
                .get_event(&self.ctx.token, self.calendar, &gid)
                .await?;
            out.push(found.unwrap_or_else(|| Event {
                id: gid,
                status: Some("cancelled".into()),
                ..Event::default()
            }));
        }
        Ok(out)
    }

    fn ends(&self, e: &Event) -> bool {
        e.is_cancelled()
    }
}

/// Whether the pair's event (as last synced) ends after `since` (unknown: yes).
fn ends_after(pair: &PairStatus, since: OffsetDateTime) -> bool {
    let Some(content) = pair
        .crm_content
        .clone()
        .and_then(|v| serde_json::from_value::<Normalized>(v).ok())
    else {
        return true;
    };
    if !content.recurrence.is_empty() {
        // A series may go on past its first occurrence's end.
        return true;
    }
    match &content.end {
        When::Instant(i) => parse_time(Some(i)).is_none_or(|end| end > since),
        When::Date(d) => crate::calendar::model::parse_date(d).is_none_or(|end| end > since.date()),
    }
}

/// What the CRM sees of private events of monitored calendars, per the tenant's policy.
fn apply_privacy(
    policy: PrivateEventPolicy,
    event: &Event,
    mut n: Normalized,
) -> Option<Normalized> {
    let private = matches!(
        event.visibility.as_deref(),
        Some("private" | "confidential")
    );
    if !private {
        return Some(n);
    }
    match policy {
        PrivateEventPolicy::Skip => None,
        PrivateEventPolicy::Full => Some(n),
        PrivateEventPolicy::BusyOnly => {
            n.title = "Busy".to_owned();
            n.description.clear();
            n.location.clear();
            n.attendees.clear();
            for x in &mut n.exceptions {
                x.title = None;
                x.description = None;
                x.location = None;
                x.attendees = None;
            }
            n.exceptions.retain(|x| x.cancelled || x.start.is_some());
            Some(n)
        }
    }
}

pub(super) fn google_json(event: &Event) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// The event's attendees the CRM does not model (rooms and other resources).
pub(super) fn resources_of(event: &Event) -> Vec<Value> {
    event
        .attendees
        .iter()
        .flatten()
        .filter(|a| a.resource == Some(true))
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect()
}

async fn apply_google_event(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    event: &Event,
) -> Result<(), SyncError> {
    let found = match find_pair(ctx, calendar, event).await? {
        Lookup::Skip => return Ok(()),
        Lookup::New => None,
        Lookup::Pair(p) => Some(*p),
    };
    if let Some(p) = found
        .as_ref()
        .filter(|p| already_applied(ctx, calendar, event, &p.value))
    {
        // This very version of the series was applied before (a page read again after a
        // paced or time-limited run): no need to read its occurrences again, which is what
        // lets a page heavy with series finish under any per-job cap.
        if ctx.pass.unseen(&p.value) {
            let loaded = p.value.clone();
            let mut pair = p.value.clone();
            pair.seen_in_read = ctx.pass.full_read();
            return ctx.pass.commit(&loaded, pair, Some(p.version), false).await;
        }
        return Ok(());
    }
    let Some(content) = content_of(ctx, calendar, event).await? else {
        return Ok(());
    };
    let (pair, version) = match found {
        Some(Versioned { value, version }) => (value, Some(version)),
        None if event.is_cancelled() => return Ok(()),
        None => match claim(ctx, calendar, event).await? {
            Some(claimed) => claimed,
            None => return Ok(()),
        },
    };
    let mut pair = pair;
    if pair.deleted_at.is_some() {
        match restored(&pair, calendar, event, content.is_some()) {
            Some(fresh) => pair = fresh,
            None => return Ok(()),
        }
    }
    execute::apply(&mut ctx.on(calendar), pair, version, event, content).await
}

/// Which pair a read event is news of.
enum Lookup {
    /// Not the CRM's business (a status entry, an event of another calendar's pair, a
    /// colleague's invitation).
    Skip,
    /// No pair yet: a Google-born record if it is live.
    New,
    Pair(Box<Versioned<PairStatus>>),
}

/// The pair a read event belongs to: by the CRM id its private properties carry (unless the
/// pair has moved on to another event), else by its id in this calendar (see `born`).
async fn find_pair(ctx: &mut Ctx<'_>, calendar: &str, event: &Event) -> Result<Lookup, SyncError> {
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    // Out-of-office, focus time, working location, birthdays, events made from Gmail: the
    // user's status and Google's own entries, not meetings or calls of the CRM's.
    if event
        .other
        .get("eventType")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "default")
    {
        return Ok(Lookup::Skip);
    }
    let ours = event
        .extended_properties
        .as_ref()
        .filter(|p| p.private.get(PROP_TENANT).map(String::as_str) == Some(t.as_str()))
        .filter(|p| p.private.get(PROP_USER).map(String::as_str) == Some(u.as_str()))
        .and_then(|p| p.private.get(PROP_CRM_ID))
        .and_then(|id| CrmId::parse(id).ok());
    let found = match &ours {
        // Our own event, found by the CRM id it carries — unless the pair has moved on to
        // another event since (a restored copy of an event we replaced is not the pair's).
        Some(crm_id) => ctx
            .app
            .store
            .get_pair(&t, &u, Collection::Calendar, crm_id.as_str())
            .await?
            .filter(|p| p.value.google_id.as_deref().is_none_or(|g| g == event.id)),
        None => None,
    };
    // Our properties on another event than the pair's: the rest of a series the user split
    // in Google ("this and following events": a new series under a new id, with the
    // original's properties), or a copy of the meeting. Should it become a Google-born
    // record, the CRM is told which of its records it came from.
    ctx.born_from = match (&ours, &found) {
        (Some(crm_id), None) => Some(crm_id.to_string()),
        _ => None,
    };
    // Private properties are per copy: only the copy the sync wrote carries them, so the
    // pair found by them is this event's wherever it is now (an event moved to another
    // calendar keeps its id and its properties, and the pair follows it).
    if let Some(found) = found {
        return Ok(Lookup::Pair(Box::new(found)));
    }
    // The same event id can be in several calendars, and in colleagues' (see `born`).
    match crate::calendar::born::find(ctx.app, &t, &u, calendar, &event.id).await? {
        crate::calendar::born::Lookup::Pair(p) => Ok(Lookup::Pair(p)),
        crate::calendar::born::Lookup::Elsewhere => Ok(Lookup::Skip),
        crate::calendar::born::Lookup::New if event.is_cancelled() => Ok(Lookup::New),
        crate::calendar::born::Lookup::New => {
            // An invitation from another connected user of the tenant: their sync brings it.
            if ctx.colleagues.is_none() {
                ctx.colleagues = Some(crate::calendar::born::colleagues(ctx.app, &t, &u).await?);
            }
            let theirs = ctx
                .colleagues
                .as_ref()
                .is_some_and(|c| crate::calendar::born::organized_by(c, event));
            Ok(if theirs { Lookup::Skip } else { Lookup::New })
        }
    }
}

/// What the CRM sees of a read event: `Some(None)` for a cancelled one, `None` for one the
/// tenant's private-events policy keeps from the CRM (monitored calendars only).
async fn content_of(
    ctx: &Ctx<'_>,
    calendar: &str,
    event: &Event,
) -> Result<Option<Option<Normalized>>, SyncError> {
    if event.is_cancelled() {
        return Ok(Some(None));
    }
    let n = google_content(ctx, calendar, event).await?;
    if calendar == ctx.main_calendar {
        return Ok(Some(Some(n)));
    }
    let policy = ctx.tenant.settings.defaults.private_events;
    Ok(apply_privacy(policy, event, n).map(Some))
}

/// A new Google-born pair for a read event, claimed before the CRM hears of it: only the run
/// whose create wins announces the event (one that loses reads the winner's pair and
/// decides with it). `None`: the winner's pair is gone again.
async fn claim(
    ctx: &Ctx<'_>,
    calendar: &str,
    event: &Event,
) -> Result<Option<(PairStatus, Option<u64>)>, SyncError> {
    let (t, u) = (ctx.t(), ctx.u());
    let key = crate::calendar::born::key(calendar, &event.id);
    let mut pair = PairStatus::new(ctx.account.id.clone(), Collection::Calendar, key);
    pair.google_born = true;
    pair.google_id = Some(event.id.clone());
    pair.container = Some(calendar.to_owned());
    match ctx.app.store.put_pair(t, u, &pair, None).await {
        Ok(version) => Ok(Some((pair, Some(version)))),
        Err(StoreError::ConditionFailed) => {
            let found = ctx
                .app
                .store
                .get_pair(t, u, Collection::Calendar, pair.crm_id.as_str());
            Ok(found.await?.map(|v| (v.value, Some(v.version))))
        }
        Err(e) => Err(e.into()),
    }
}

/// A tombstone: late news of a deleted pair neither resurrects nor re-deletes it. But a
/// Google-born event live again in a version the pair never saw (another etag) was restored
/// from Google's trash under its id: the CRM hears of it anew (the contacts rule), as a new
/// pair. A CRM meeting unlinked by a deletion in Google is not linked again by a restore:
/// the CRM decides, and a PUT brings it back. Pure.
fn restored(pair: &PairStatus, calendar: &str, event: &Event, live: bool) -> Option<PairStatus> {
    let restored =
        pair.google_born && live && event.etag.is_some() && event.etag != pair.google_etag;
    if !restored {
        return None;
    }
    let mut fresh = PairStatus::new(
        pair.account.clone(),
        Collection::Calendar,
        pair.crm_id.clone(),
    );
    fresh.google_born = true;
    fresh.google_id = Some(event.id.clone());
    fresh.container = Some(calendar.to_owned());
    Some(fresh)
}

/// Whether `event` is a series master in the very version the pair last synced (same etag,
/// no news of an occurrence on the page) and nothing waits on the CRM side: reading it
/// again would change nothing.
fn already_applied(ctx: &Ctx<'_>, calendar: &str, event: &Event, pair: &PairStatus) -> bool {
    event.recurrence.as_ref().is_some_and(|r| !r.is_empty())
        && !event.is_cancelled()
        && event.etag.is_some()
        && event.etag == pair.google_etag
        && pair.google_hash.is_some()
        && pair.deleted_at.is_none()
        && pair.google_id.as_deref() == Some(event.id.as_str())
        && pair.container.as_deref() == Some(calendar)
        && !ctx.series_news.contains(&event.id)
        && !crate::sync::pair::waiting(pair)
}
