//! The calendar sync passes: read Google's changes (incremental `events.list` per calendar)
//! and push the CRM's waiting changes (through the batch endpoint), both through the sync
//! core ([`crate::sync`]: the cursor, the mass-deletion guard, the reconcile after a full
//! read, the plan within the job's calls, commit after write). What is the calendar's own is
//! here: the calendars read (main and monitored, with their channels), series and their
//! exceptions, private events, event bodies and the derived event ids.

use crate::app::App;
use crate::calendar::decide::{Action, Decision, Policy, Reason, Side};
use crate::calendar::normal::{Normalized, When, PROP_CRM_ID, PROP_TENANT, PROP_TYPE, PROP_USER};
use crate::domain::{
    ChangeKind, Collection, CrmId, Cursor, Direction, GuestNotifications, PairStatus,
    PrivateEventPolicy, TenantId, UserId,
};
use crate::google::batch::{BatchResponse, MAX_PARTS};
use crate::google::calendar::{CalendarRequest, Event, ListEvents, SendUpdates};
use crate::google::GoogleError;
use crate::http::ApiError;
use crate::services::records;
use crate::store::repo::Versioned;
use crate::store::StoreError;
use crate::sync::execute::{self, Answer, Pulled, Records, Tally, Wrote};
use crate::sync::plan::{BatchKind, WriteCost};
use crate::sync::push::{self, Sink};
use crate::sync::read::{self, Page, Read, Source};
use crate::sync::{conflict_data, decide_pair, Noted, Part, Pass};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use crate::sync::guard::{MASS_DELETION_MIN, MASS_DELETION_SHARE};
pub use crate::sync::SyncError;

mod series;
use series::{baseline_of, google_content, occurrences_changed, write_exceptions};

/// What one pass covers.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions<'a> {
    /// Only this calendar (a push notification), or all of the account's.
    pub calendar: Option<&'a str>,
    /// Read Google's changes (not needed when only the CRM's waiting changes are pushed).
    pub read_google: bool,
    pub confirm_mass_deletion: bool,
    /// A pair known to be waiting (read directly, in case the index has not caught up).
    pub record: Option<&'a CrmId>,
    pub deadline: Instant,
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub google_events_read: usize,
    pub pushed_to_google: usize,
    pub deleted_in_google: usize,
    pub changes_for_crm: usize,
    pub conflicts: usize,
    /// Calendars whose pass stopped before the end (deadline); a continuation is due.
    pub incomplete: Vec<String>,
    /// Calendars whose deletions were held back by the mass-deletion guard.
    pub blocked: Vec<String>,
    /// Deletions made in the CRM that the mass-deletion guard held back (until confirmed).
    pub crm_deletions_held: usize,
    /// Calendars skipped for a failure of their own (shown on the account's `last_error`).
    pub calendar_errors: Vec<String>,
    /// CRM changes still wait after this pass (they did not fit in the job's Google calls,
    /// or the pass stopped): a continuation is due.
    pub push_incomplete: bool,
    /// What the pass leaves on the account (written by the worker with the next due time).
    #[serde(skip)]
    pub noted: Noted,
}

/// The CRM's content as the pair stores it.
fn stored(pair: &PairStatus) -> Option<Normalized> {
    pair.crm_content
        .clone()
        .and_then(|v| serde_json::from_value::<Normalized>(v).ok())
}

/// The hash of stored normalized content (`None` if unreadable).
pub fn content_hash(v: &Value) -> Option<String> {
    serde_json::from_value::<Normalized>(v.clone())
        .ok()
        .map(|n| n.hash())
}

/// The Google event id of a CRM record: base32hex (Google's alphabet for client ids) of a
/// hash of tenant, user, CRM id and generation — the same every time, so a retried insert can
/// only answer 409, never duplicate.
pub fn google_event_id(t: &TenantId, u: &UserId, crm_id: &CrmId, generation: u32) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let digest = sha2::Sha256::digest(format!(
        "crm-google-sync/event/{t}/{u}/{crm_id}/{generation}"
    ));
    let mut out = String::with_capacity(32);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in &digest[..20] {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    out
}

fn parse_time(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// Everything a pass needs about the account.
struct Ctx<'a> {
    pass: Pass<'a>,
    main_calendar: String,
    send_updates: SendUpdates,
    /// Series with news of an occurrence on the page being read (an exception item): read
    /// again whatever their master's etag says.
    series_news: HashSet<String>,
    /// A failure of the pass as a whole met by one answer (a 401 for one part means the
    /// token is refused for all): the push stops after the chunk and the pass ends with it.
    pass_error: Option<SyncError>,
    /// The Google addresses of the tenant's other users (read once a pass, when an
    /// invitation first needs them; see `born`).
    colleagues: Option<HashSet<String>>,
    /// The CRM id named by the private properties of the Google event being read, when its
    /// pair is another event's: a new Google-born record made of it says so (`from_crm_id`).
    born_from: Option<String>,
    report: Report,
}

impl<'a> Deref for Ctx<'a> {
    type Target = Pass<'a>;
    fn deref(&self) -> &Pass<'a> {
        &self.pass
    }
}

impl DerefMut for Ctx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.pass
    }
}

impl Part for Ctx<'_> {
    fn pass(&self) -> &Pass<'_> {
        &self.pass
    }
}

impl<'a> Ctx<'a> {
    /// The calendar a pair's event is in (the main calendar for one not in Google yet).
    fn calendar_of(&self, pair: &PairStatus) -> String {
        pair.container
            .clone()
            .unwrap_or_else(|| self.main_calendar.clone())
    }

    /// The pass's part in one calendar's records.
    fn on<'c>(&'c mut self, calendar: &'c str) -> On<'c, 'a> {
        On {
            ctx: self,
            calendar,
        }
    }

    /// The policy for a calendar: monitored calendars are read into the CRM, never written;
    /// a former main calendar is still written for the meetings left there (see `rehome`).
    fn policy_for(&self, calendar: &str) -> Policy {
        let settings = &self.account.settings;
        let former = settings.former_main_calendars.iter().any(|c| c == calendar)
            && !settings.monitored_calendars.iter().any(|c| c == calendar);
        if calendar == self.main_calendar || former {
            self.policy
        } else {
            Policy {
                direction: Direction::GoogleToCrm,
                ..self.policy
            }
        }
    }

    /// The body the product writes to Google for a pair: the fields it owns, its private
    /// extended properties, and the tenant's colour for the event type.
    fn google_body(&self, pair: &PairStatus, content: &Normalized) -> Map<String, Value> {
        let mut body = content.to_google();
        Normalized::leave_rsvps_to_google(&mut body, self.account.google_email.as_deref());
        if let Some(Value::Array(attendees)) = body.get_mut("attendees") {
            for resource in &pair.google_resources {
                let email = resource["email"].as_str();
                if !attendees.iter().any(|a| a["email"].as_str() == email) {
                    attendees.push(resource.clone());
                }
            }
        }
        body.insert(
            "extendedProperties".into(),
            json!({"private": {
                PROP_TENANT: self.t().as_str(),
                PROP_USER: self.u().as_str(),
                PROP_CRM_ID: pair.crm_id.as_str(),
                PROP_TYPE: content.kind.as_str(),
            }}),
        );
        if let Some(color) = self
            .tenant
            .settings
            .defaults
            .event_colors
            .get(content.kind.as_str())
        {
            body.insert("colorId".into(), json!(color));
        }
        body
    }
}

async fn context<'a>(
    app: &'a App,
    t: &TenantId,
    u: &UserId,
    confirm: bool,
) -> Result<Ctx<'a>, SyncError> {
    let pass = Pass::open(app, t, u, Collection::Calendar, confirm).await?;
    let send_updates = match pass.tenant.settings.defaults.guest_notifications {
        GuestNotifications::None => SendUpdates::None,
        GuestNotifications::All => SendUpdates::All,
        GuestNotifications::ExternalOnly => SendUpdates::ExternalOnly,
    };
    Ok(Ctx {
        main_calendar: pass
            .account
            .settings
            .main_calendar
            .clone()
            .unwrap_or_else(|| "primary".to_owned()),
        pass,
        send_updates,
        series_news: HashSet::new(),
        pass_error: None,
        colleagues: None,
        born_from: None,
        report: Report::default(),
    })
}

/// A full pass for an account: Google's changes on every synced calendar (or only
/// `calendar`), then the CRM's waiting changes. Stops between pages at `deadline`.
pub async fn sync_account(
    app: &App,
    t: &TenantId,
    u: &UserId,
    options: PassOptions<'_>,
) -> Result<Report, SyncError> {
    let PassOptions {
        calendar,
        read_google,
        confirm_mass_deletion,
        record,
        deadline,
    } = options;
    let mut ctx = context(app, t, u, confirm_mass_deletion).await?;
    let pass = run_pass(&mut ctx, calendar, read_google, record, deadline).await;
    ctx.report.changes_for_crm = ctx.pass.fed();
    ctx.pass.forget_refused_token(&pass).await?;
    pass?;
    let blocked = !ctx.report.blocked.is_empty() || ctx.report.crm_deletions_held > 0;
    let errors =
        (!ctx.report.calendar_errors.is_empty()).then(|| ctx.report.calendar_errors.join("; "));
    ctx.report.noted = Noted {
        synced_at: Some(ctx.now()),
        last_error: Some(errors),
        held: blocked,
        contacts: None,
    };
    Ok(ctx.report)
}

async fn run_pass(
    ctx: &mut Ctx<'_>,
    calendar: Option<&str>,
    read_google: bool,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<(), SyncError> {
    let (app, t, u) = (ctx.app, ctx.t().clone(), ctx.u().clone());
    if read_google {
        let mut calendars = vec![ctx.main_calendar.clone()];
        for c in &ctx.account.settings.monitored_calendars {
            if !calendars.contains(c) {
                calendars.push(c.clone());
            }
        }
        if let Some(only) = calendar {
            calendars.retain(|c| c == only || (only == "primary" && *c == ctx.main_calendar));
        }
        for cal in calendars {
            let read = read_calendar(ctx, &cal, deadline).await;
            ctx.pass.set_full_read(None);
            match read {
                Ok(()) => {}
                Err(e) if e.is_pass_level() => return Err(e),
                // This calendar's own failure (a monitored calendar the user can no longer
                // see, one Google refuses to list): reported on the account, and the other
                // calendars and the CRM's waiting changes go on.
                Err(e) => {
                    tracing::warn!(tenant = %t, user = %u, calendar = %cal, error = %e, "calendar skipped");
                    ctx.report
                        .calendar_errors
                        .push(format!("calendar {cal}: {}", e.public_message()));
                    continue;
                }
            }
            let account = ctx.account.id.clone();
            super::channels::ensure(app, &ctx.token, &t, &u, &account, &cal).await?;
        }
    }
    push_waiting(ctx, record, deadline).await
}

// ---- Google → CRM ------------------------------------------------------------------------

/// One calendar's read (see [`crate::sync::read`]).
struct CalendarRead<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    calendar: &'c str,
    /// The start of a full read's window.
    since: OffsetDateTime,
}

async fn read_calendar(
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
    if read::read(&mut src, deadline).await? == Read::Incomplete {
        src.ctx.report.incomplete.push(calendar.to_owned());
    }
    Ok(())
}

impl Part for CalendarRead<'_, '_> {
    fn pass(&self) -> &Pass<'_> {
        &self.ctx.pass
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
        let ctx = &mut *self.ctx;
        let page = ctx
            .app
            .google
            .list_events(&ctx.token, self.calendar, &params)
            .await?;
        ctx.report.google_events_read += page.items.len();
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
            let found = super::born::find(self.ctx.app, &t, &u, self.calendar, &e.id).await?;
            if matches!(found, super::born::Lookup::Pair(p) if p.value.deleted_at.is_none()) {
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

    async fn block(&mut self, deletions: usize, live: usize, tell: bool) -> Result<(), SyncError> {
        let calendar = self.calendar;
        self.ctx.report.blocked.push(calendar.to_owned());
        let data = json!({ "calendar_id": calendar });
        self.ctx
            .pass
            .block(
                &format!("calendar {calendar}"),
                "events",
                data,
                deletions,
                live,
                tell,
            )
            .await
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

fn google_json(event: &Event) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

/// The event's attendees the CRM does not model (rooms and other resources).
fn resources_of(event: &Event) -> Vec<Value> {
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
    match super::born::find(ctx.app, &t, &u, calendar, &event.id).await? {
        super::born::Lookup::Pair(p) => Ok(Lookup::Pair(p)),
        super::born::Lookup::Elsewhere => Ok(Lookup::Skip),
        super::born::Lookup::New if event.is_cancelled() => Ok(Lookup::New),
        super::born::Lookup::New => {
            // An invitation from another connected user of the tenant: their sync brings it.
            if ctx.colleagues.is_none() {
                ctx.colleagues = Some(super::born::colleagues(ctx.app, &t, &u).await?);
            }
            let theirs = ctx
                .colleagues
                .as_ref()
                .is_some_and(|c| super::born::organized_by(c, event));
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
    let key = super::born::key(calendar, &event.id);
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
        && !records::waiting(pair)
}

// ---- deciding and carrying out ------------------------------------------------------------

/// A calendar's part in carrying out a decision.
struct On<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    calendar: &'c str,
}

impl Part for On<'_, '_> {
    fn pass(&self) -> &Pass<'_> {
        &self.ctx.pass
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

    fn count(&mut self, what: Tally) {
        match what {
            Tally::Conflict => self.ctx.report.conflicts += 1,
            Tally::Pushed => self.ctx.report.pushed_to_google += 1,
            Tally::Removed => self.ctx.report.deleted_in_google += 1,
            Tally::Waiting => self.ctx.report.push_incomplete = true,
        }
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
        if let Some(bytes) = records::oversize(&stored) {
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
                records::MAX_RECORD_BYTES / 1024
            ));
            return Ok(Pulled::Kept);
        }
        let created = pair.crm_content.is_none();
        pair.google_id = event.map(|e| e.id.clone()).or(pair.google_id.take());
        pair.container = Some(calendar.to_owned());
        let mut data = json!({
            "calendar_id": calendar,
            "event": content.to_crm(),
            "html_link": event.and_then(|e| e.html_link.clone()),
            "google_updated": event.and_then(|e| e.updated.clone()),
            "conflict": d.conflict.then(|| conflict_data(d, "google")),
            "edit_beat_delete": d.reason == Reason::EditBeatsDelete,
        });
        if let Some(from) = self
            .ctx
            .born_from
            .take()
            .filter(|_| created && pair.google_born)
        {
            data["from_crm_id"] = json!(from);
        }
        let kind = if created || d.reason == Reason::EditBeatsDelete {
            ChangeKind::EventCreated
        } else {
            ChangeKind::EventUpdated
        };
        if d.reason == Reason::EditBeatsDelete {
            pair.crm_deleted_at = None;
        }
        self.ctx.pass.feed(kind, pair, data).await?;
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
                ctx.report.deleted_in_google += 1;
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
        let calendar = self.calendar;
        let (kind, data) = if action == Action::DeleteInCrm {
            (ChangeKind::EventDeleted, json!({"calendar_id": calendar}))
        } else if pair.crm_deleted_at.is_none() {
            let data = json!({"calendar_id": calendar, "reason": "deleted_in_google"});
            (ChangeKind::EventUnlinked, data)
        } else {
            return Ok(());
        };
        self.ctx.pass.feed(kind, pair, data).await
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
async fn insert(
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
            .map_err(|e| ApiError::internal(&e, false))?;
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
    Err(SyncError::Api(ApiError::conflict(
        "insert_conflict",
        "could not find a free event id",
    )))
}

// ---- CRM → Google: the waiting changes, in batches ----------------------------------------

/// One waiting pair and what will be done with it.
struct Planned {
    /// The pair as read (to merge into if the CRM changes it meanwhile).
    loaded: PairStatus,
    pair: PairStatus,
    version: u64,
    content: Option<Normalized>,
    decision: Decision,
    request: CalendarRequest,
}

/// Pushes the CRM's waiting changes (see [`crate::sync::push`]): as many as fit in the job's
/// remaining Google calls, in batch requests of [`MAX_PARTS`], each chunk's answers committed
/// before the next chunk is sent. What does not fit stays waiting and the report says so
/// (`push_incomplete`: the worker queues the rest).
async fn push_waiting(
    ctx: &mut Ctx<'_>,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<(), SyncError> {
    let pushed = push::push(ctx, record, deadline).await;
    if !matches!(pushed, Ok(p) if !p.more && p.left == 0) {
        ctx.report.push_incomplete = true;
    }
    if let Ok(p) = &pushed {
        ctx.report.crm_deletions_held += p.held;
    }
    pushed.map(|_| ())
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
                .map_err(|e| ApiError::internal(&e, false))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_base32hex() {
        let t = TenantId::parse("acme").unwrap();
        let u = UserId::parse("u1").unwrap();
        let c = CrmId::parse("MTG-1").unwrap();
        let a = google_event_id(&t, &u, &c, 0);
        assert_eq!(a, google_event_id(&t, &u, &c, 0));
        assert_ne!(a, google_event_id(&t, &u, &c, 1));
        assert_ne!(
            a,
            google_event_id(&TenantId::parse("other").unwrap(), &u, &c, 0)
        );
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='v').contains(&ch)));
    }
}
