//! The calendar sync passes: read Google's changes (incremental `events.list` per calendar,
//! checkpointed page by page) and push the CRM's waiting changes (through the batch endpoint),
//! deciding every pair with [`crate::calendar::decide`] and committing a pair's status row
//! only after the remote write succeeded.

use crate::app::App;
use crate::calendar::decide::{decide, Action, Baseline, Decision, Policy, Reason, Side};
use crate::calendar::normal::{
    instance_suffix, NException, Normalized, When, PROP_CRM_ID, PROP_TENANT, PROP_TYPE, PROP_USER,
};
use crate::domain::{
    Account, ChangeKind, ChangeRecord, Collection, CrmId, Cursor, Direction, GuestNotifications,
    PairStatus, PrivateEventPolicy, Tenant, TenantId, UserId,
};
use crate::google::batch::{BatchResponse, MAX_PARTS};
use crate::google::calendar::{CalendarRequest, Event, ListEvents, SendUpdates};
use crate::google::{pacing, GoogleError};
use crate::http::ApiError;
use crate::services::records;
use crate::services::tokens::{access_token, TokenError};
use crate::store::repo::Versioned;
use crate::store::StoreError;
use crate::sync::plan::{fits, WriteCost};
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A pass stops deleting and reports when it would delete at least this many of a calendar's
/// pairs…
pub const MASS_DELETION_MIN: usize = 25;
/// …and at least this share of them.
pub const MASS_DELETION_SHARE: f64 = 0.3;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl SyncError {
    /// Worth trying again later (the worker leaves the message for SQS to redeliver).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Google(e) => e.is_transient(),
            SyncError::Token(TokenError::Google(e)) => e.is_transient(),
            SyncError::Token(TokenError::Api(e)) | SyncError::Api(e) => e.status.is_server_error(),
            SyncError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// About the pass as a whole, not one record (see [`GoogleError::is_pass_level`]).
    pub fn is_pass_level(&self) -> bool {
        match self {
            SyncError::Google(e) => e.is_pass_level(),
            SyncError::Token(_) => true,
            SyncError::Store(e) => e.is_retryable(),
            SyncError::Api(e) => e.status.is_server_error(),
        }
    }

    /// What may be shown to the CRM (the account's `last_error`): no backend detail.
    pub fn public_message(&self) -> String {
        match self {
            SyncError::Token(e) => e.to_string(),
            SyncError::Google(e) => e.to_string(),
            SyncError::Store(_) => "the store was unavailable; the sync will be retried".into(),
            SyncError::Api(e) => e.message.clone(),
        }
    }
}

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
    /// Calendars skipped for a failure of their own (shown on the account's `last_error`).
    pub calendar_errors: Vec<String>,
    /// CRM changes still wait after this pass (they did not fit in the job's Google calls,
    /// or the pass stopped): a continuation is due.
    pub push_incomplete: bool,
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
    app: &'a App,
    tenant: Tenant,
    account: Account,
    token: SecretString,
    policy: Policy,
    main_calendar: String,
    send_updates: SendUpdates,
    confirm_mass_deletion: bool,
    /// While a full read is applied: its id (the pairs it sees are marked with it, so that a
    /// read resumed across runs knows what it saw before).
    full_read: Option<String>,
    /// Series with news of an occurrence on the page being read (an exception item): read
    /// again whatever their master's etag says.
    series_news: HashSet<String>,
    /// A failure of the pass as a whole met by one answer (a 401 for one part means the
    /// token is refused for all): the push stops after the chunk and the pass ends with it.
    pass_error: Option<SyncError>,
    report: Report,
}

impl Ctx<'_> {
    fn t(&self) -> &TenantId {
        &self.tenant.id
    }

    fn u(&self) -> &UserId {
        &self.account.user
    }

    fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }

    /// The policy for a calendar: monitored calendars are read into the CRM, never written.
    fn policy_for(&self, calendar: &str) -> Policy {
        if calendar == self.main_calendar {
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

    async fn feed(
        &mut self,
        kind: ChangeKind,
        pair: &PairStatus,
        data: Value,
    ) -> Result<(), SyncError> {
        let mut record =
            ChangeRecord::new(self.t().clone(), self.u().clone(), kind, data, self.now());
        record.crm_id = (!pair.crm_id.is_google_born()).then(|| pair.crm_id.to_string());
        record.google_id = pair.google_id.clone();
        self.app.store.append_change(&mut record).await?;
        self.report.changes_for_crm += 1;
        Ok(())
    }
}

async fn context<'a>(
    app: &'a App,
    t: &TenantId,
    u: &UserId,
    confirm: bool,
) -> Result<Ctx<'a>, SyncError> {
    let token = access_token(app, t, u).await?;
    let tenant = super::super::tenants::get(app, t).await?;
    let account = token.account.clone();
    let defaults = &tenant.settings.defaults;
    let policy = Policy {
        direction: account.settings.direction.unwrap_or(defaults.direction),
        conflicts: defaults.conflict_policy,
        deletions: defaults.deletion_policy,
    };
    let send_updates = match defaults.guest_notifications {
        GuestNotifications::None => SendUpdates::None,
        GuestNotifications::All => SendUpdates::All,
        GuestNotifications::ExternalOnly => SendUpdates::ExternalOnly,
    };
    Ok(Ctx {
        app,
        main_calendar: account
            .settings
            .main_calendar
            .clone()
            .unwrap_or_else(|| "primary".to_owned()),
        token: token.token,
        tenant,
        account,
        policy,
        send_updates,
        confirm_mass_deletion: confirm,
        full_read: None,
        series_news: HashSet::new(),
        pass_error: None,
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
    if let Err(SyncError::Google(e)) = &pass {
        if e.is_unauthorized() {
            // The token was refused: the next job refreshes it (and learns whether the grant
            // is gone); what waits keeps waiting until then.
            super::super::tokens::forget_access_token(app, t, u, &ctx.token).await?;
        }
    }
    pass?;
    let now = ctx.now();
    let blocked = !ctx.report.blocked.is_empty();
    let errors =
        (!ctx.report.calendar_errors.is_empty()).then(|| ctx.report.calendar_errors.join("; "));
    super::super::accounts::update(app, t, u, |a| {
        a.last_sync_at = Some(now);
        if !blocked {
            a.last_error.clone_from(&errors);
        }
        Ok(())
    })
    .await?;
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
            ctx.full_read = None;
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

async fn read_calendar(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    deadline: Instant,
) -> Result<(), SyncError> {
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    let scope = format!("calendar:{calendar}");
    let stored = ctx.app.store.get_cursor(&t, &u, &scope).await?;
    let (mut cursor, mut version) = match stored {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (
            Cursor::new(ctx.account.id.clone(), scope.clone(), ctx.now()),
            None,
        ),
    };
    let since = ctx.account.settings.sync_since.unwrap_or_else(|| {
        ctx.now() - time::Duration::days(i64::from(ctx.tenant.settings.defaults.sync_since_days))
    });
    let mut deletions = 0usize;
    // One full resync per pass at most: a second 410 in a row fails the pass.
    let mut reset = false;
    // What a full read returned (a full read reports no deletions: see `reconcile_missing`).
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let full = cursor.sync_token.is_none();
        ctx.full_read = cursor.start_page();
        let params = ListEvents {
            sync_token: cursor.sync_token.clone(),
            page_token: cursor.page_token.clone(),
            time_min: full.then(|| since.format(&Rfc3339).unwrap_or_default()),
            show_deleted: !full,
            max_results: Some(250),
            ..ListEvents::default()
        };
        let page = match ctx
            .app
            .google
            .list_events(&ctx.token, calendar, &params)
            .await
        {
            Ok(page) => page,
            Err(e) if e.is_full_sync_required() && !reset => {
                reset = true;
                tracing::info!(tenant = %t, user = %u, calendar, "sync token expired; full resync");
                cursor.sync_token = None;
                cursor.page_token = None;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        ctx.report.google_events_read += page.items.len();
        if full {
            seen.extend(page.items.iter().map(|e| e.id.clone()));
        }

        // The mass-deletion guard looks at the whole page before anything is deleted: it
        // counts the cancellations that would end a live pair of this calendar.
        let mut page_deletions = 0usize;
        if !ctx.confirm_mass_deletion {
            for e in page
                .items
                .iter()
                .filter(|e| e.is_cancelled() && e.recurring_event_id.is_none())
            {
                let pair = ctx
                    .app
                    .store
                    .find_pair_by_google_id(&t, &u, Collection::Calendar, &e.id)
                    .await?;
                if pair.is_some_and(|p| {
                    p.value.deleted_at.is_none() && p.value.container.as_deref() == Some(calendar)
                }) {
                    page_deletions += 1;
                }
            }
        }
        if page_deletions > 0 {
            let total = deletions + page_deletions;
            if total >= MASS_DELETION_MIN {
                let pairs = live_pairs(ctx, calendar).await?;
                if total as f64 >= MASS_DELETION_SHARE * pairs as f64 {
                    return block_mass_deletion(ctx, calendar, total, pairs).await;
                }
            }
        }
        deletions += page_deletions;

        // An exception of a series (a moved, edited or cancelled occurrence) is news of the
        // series: it is read again with its exceptions, once per page, unless its master is on
        // the page anyway.
        let masters: HashSet<&str> = page
            .items
            .iter()
            .filter(|e| e.recurring_event_id.is_none())
            .map(|e| e.id.as_str())
            .collect();
        ctx.series_news = page
            .items
            .iter()
            .filter_map(|e| e.recurring_event_id.clone())
            .collect();
        let mut series_read = HashSet::new();
        for event in &page.items {
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
        if cursor.idle_page(
            !page.items.is_empty() || page.next_page_token.is_some(),
            ctx.now(),
        ) {
            // Nothing changed: the stored sync token still says where the read stands, and an
            // idle pass writes nothing.
            return Ok(());
        }
        cursor.updated_at = ctx.now();
        match page.next_page_token {
            Some(next) => cursor.page_token = Some(next),
            None => {
                if ctx.full_read.is_some() && reconcile_missing(ctx, calendar, &seen, since).await?
                {
                    return Ok(());
                }
                cursor.full_read = None;
                cursor.page_token = None;
                cursor.sync_token = page.next_sync_token.or(cursor.sync_token.take());
            }
        }
        version = Some(ctx.app.store.put_cursor(&t, &u, &cursor, version).await?);
        if cursor.page_token.is_none() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            ctx.report.incomplete.push(calendar.to_owned());
            return Ok(());
        }
    }
}

/// After a full read (the first one, or after Google expired the sync token): a full list
/// shows no deletions, so an event deleted while the token was stale would never be heard
/// of. Each live, synced pair of the calendar the read did not return is checked with
/// `events.get` (a read resumed across runs knows what its earlier runs saw: they marked the
/// pairs with the read's id) and, if gone, handled as a Google-side deletion — under the
/// mass-deletion guard. Pairs whose event ended before the read's window are left alone (the
/// window hides them, it did not delete them). Returns whether the guard held the deletions
/// back.
async fn reconcile_missing(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    seen: &HashSet<String>,
    since: OffsetDateTime,
) -> Result<bool, SyncError> {
    let mut page: Option<String> = None;
    let mut unseen = Vec::new();
    let mut live = 0usize;
    loop {
        let records = ctx
            .app
            .store
            .list_pairs(
                ctx.t(),
                ctx.u(),
                Collection::Calendar,
                1000,
                page.as_deref(),
            )
            .await?;
        for pair in records.items {
            if pair.deleted_at.is_some() || pair.container.as_deref() != Some(calendar) {
                continue;
            }
            live += 1;
            let Some(gid) = pair.google_id.clone().filter(|g| !seen.contains(g)) else {
                continue;
            };
            if !unseen_by_full_read(ctx.full_read.as_deref(), &pair) {
                // Seen by an earlier run of this read.
                continue;
            }
            if pair.google_hash.is_some() && ends_after(&pair, since) {
                unseen.push(gid);
            }
        }
        match records.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    let mut gone = Vec::new();
    for gid in unseen {
        match ctx.app.google.get_event(&ctx.token, calendar, &gid).await? {
            // Still there (outside what the list showed): applied like a listed event, which
            // also marks it seen should this check be cut short and run again.
            Some(e) if !e.is_cancelled() => apply_google_event(ctx, calendar, &e).await?,
            found => gone.push(found.unwrap_or_else(|| Event {
                id: gid,
                status: Some("cancelled".into()),
                ..Event::default()
            })),
        }
    }
    if !ctx.confirm_mass_deletion
        && gone.len() >= MASS_DELETION_MIN
        && gone.len() as f64 >= MASS_DELETION_SHARE * live as f64
    {
        block_mass_deletion(ctx, calendar, gone.len(), live).await?;
        return Ok(true);
    }
    for event in &gone {
        apply_google_event(ctx, calendar, event).await?;
    }
    Ok(false)
}

/// Whether the full read `read` has not yet seen the pair; `false` outside a full read.
pub(crate) fn unseen_by_full_read(read: Option<&str>, pair: &PairStatus) -> bool {
    read.is_some_and(|r| pair.seen_in_read.as_deref() != Some(r))
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

/// How many live pairs the calendar has.
async fn live_pairs(ctx: &Ctx<'_>, calendar: &str) -> Result<usize, SyncError> {
    let mut page: Option<String> = None;
    let mut n = 0;
    loop {
        let records = ctx
            .app
            .store
            .list_pairs(
                ctx.t(),
                ctx.u(),
                Collection::Calendar,
                1000,
                page.as_deref(),
            )
            .await?;
        n += records
            .items
            .iter()
            .filter(|p| p.deleted_at.is_none() && p.container.as_deref() == Some(calendar))
            .count();
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(n),
        }
    }
}

async fn block_mass_deletion(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    deletions: usize,
    pairs: usize,
) -> Result<(), SyncError> {
    tracing::warn!(tenant = %ctx.t(), user = %ctx.u(), calendar, deletions, pairs, "mass deletion held back");
    ctx.report.blocked.push(calendar.to_owned());
    let message = format!("calendar {calendar}: {deletions} deletions held back (of {pairs} events); confirm to carry them out");
    // Told once: later passes that hit the same block do not repeat the record.
    let already_told = ctx.account.last_error.as_deref().is_some_and(|e| {
        e.starts_with(&format!("calendar {calendar}: ")) && e.contains("held back")
    });
    if already_told {
        return Ok(());
    }
    let mut record = ChangeRecord::new(
        ctx.t().clone(),
        ctx.u().clone(),
        ChangeKind::MassDeletionBlocked,
        json!({
            "calendar_id": calendar,
            "deletions": deletions,
            "pairs": pairs,
            "resume": "POST /v1/users/{user}/sync with {\"confirm_mass_deletion\": true}",
        }),
        ctx.now(),
    );
    ctx.app.store.append_change(&mut record).await?;
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    super::super::accounts::update(ctx.app, &t, &u, |a| {
        a.last_error = Some(message.clone());
        Ok(())
    })
    .await?;
    Ok(())
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
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    // Out-of-office, focus time, working location, birthdays, events made from Gmail: the
    // user's status and Google's own entries, not meetings or calls of the CRM's.
    if event
        .other
        .get("eventType")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "default")
    {
        return Ok(());
    }
    let ours = event
        .extended_properties
        .as_ref()
        .filter(|p| p.private.get(PROP_TENANT).map(String::as_str) == Some(t.as_str()))
        .filter(|p| p.private.get(PROP_USER).map(String::as_str) == Some(u.as_str()))
        .and_then(|p| p.private.get(PROP_CRM_ID))
        .and_then(|id| CrmId::parse(id).ok());
    let mut found = match &ours {
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
    if found.is_none() {
        found = ctx
            .app
            .store
            .find_pair_by_google_id(&t, &u, Collection::Calendar, &event.id)
            .await?;
    }
    // The same event id appears in every attendee's calendar: a pair belongs to one calendar.
    let found = found.filter(|p| p.value.container.as_deref().is_none_or(|c| c == calendar));
    if let Some(p) = found
        .as_ref()
        .filter(|p| already_applied(ctx, calendar, event, &p.value))
    {
        // This very version of the series was applied before (a page read again after a
        // paced or time-limited run): no need to read its occurrences again, which is what
        // lets a page heavy with series finish under any per-job cap.
        if unseen_by_full_read(ctx.full_read.as_deref(), &p.value) {
            let loaded = p.value.clone();
            let mut pair = p.value.clone();
            pair.seen_in_read.clone_from(&ctx.full_read);
            return commit(ctx, &loaded, pair, Some(p.version), false).await;
        }
        return Ok(());
    }
    let is_main = calendar == ctx.main_calendar;
    let content = if event.is_cancelled() {
        None
    } else {
        let n = google_content(ctx, calendar, event).await?;
        if is_main {
            Some(n)
        } else {
            match apply_privacy(ctx.tenant.settings.defaults.private_events, event, n) {
                Some(n) => Some(n),
                None => return Ok(()),
            }
        }
    };
    let (pair, version) = match found {
        Some(Versioned { value, version }) => (value, Some(version)),
        None if event.is_cancelled() => return Ok(()),
        None => {
            let mut pair = PairStatus::new(
                ctx.account.id.clone(),
                Collection::Calendar,
                CrmId::google_born(&event.id),
            );
            pair.google_born = true;
            pair.google_id = Some(event.id.clone());
            pair.container = Some(calendar.to_owned());
            (pair, None)
        }
    };
    if pair.deleted_at.is_some() {
        // A tombstone: late news of a deleted pair neither resurrects nor re-deletes it.
        return Ok(());
    }
    let google_hash = content.as_ref().map(Normalized::hash);
    let modified = parse_time(event.updated.as_deref()).unwrap_or_else(|| ctx.now());
    let google = match &google_hash {
        Some(h) => Side::Present { hash: h, modified },
        None => Side::Deleted { at: modified },
    };
    execute(ctx, calendar, pair, version, google, Some(event), content).await
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

fn crm_side<'p>(pair: &'p PairStatus, hash: &'p Option<String>) -> Side<'p> {
    if let Some(at) = pair.crm_deleted_at {
        return Side::Deleted { at };
    }
    match hash {
        Some(h) => Side::Present {
            hash: h,
            modified: pair.crm_modified.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        None => Side::Absent,
    }
}

fn conflict_data(d: &Decision, winner: &str) -> Value {
    json!({
        "winner": winner,
        "policy": match d.reason {
            Reason::ConflictCrmWins => "crm_wins",
            Reason::ConflictGoogleWins => "google_wins",
            _ => "latest_wins",
        },
    })
}

/// Decides one pair against a known Google state and carries the decision out.
async fn execute(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    mut pair: PairStatus,
    version: Option<u64>,
    google: Side<'_>,
    event: Option<&Event>,
    google_content: Option<Normalized>,
) -> Result<(), SyncError> {
    let loaded = pair.clone();
    if let Some(e) = event.filter(|e| !e.is_cancelled()) {
        pair.google_resources = resources_of(e);
    }
    let crm_hash_now = pair.crm_content.as_ref().and_then(content_hash);
    let crm = crm_side(&pair, &crm_hash_now);
    let base = Baseline {
        crm_hash: pair.crm_hash.as_deref(),
        google_hash: pair.google_hash.as_deref(),
    };
    // An RSVP is not an edit: a meeting the CRM deleted whose Google copy changed only in
    // attendees' responses since (the CRM's last content and Google's agree but for them) is
    // not brought back by "edit beats delete".
    let rsvp_only = match (&crm, &google, &google_content, &pair.crm_content) {
        (Side::Deleted { .. }, Side::Present { .. }, Some(g), Some(c)) => {
            serde_json::from_value::<Normalized>(c.clone())
                .is_ok_and(|c| c.without_responses() == g.without_responses())
        }
        _ => false,
    };
    let d = match (rsvp_only, base.google_hash, &google) {
        (true, Some(unchanged), Side::Present { modified, .. }) => decide(
            base,
            crm,
            Side::Present {
                hash: unchanged,
                modified: *modified,
            },
            ctx.policy_for(calendar),
        ),
        _ => decide(base, crm, google, ctx.policy_for(calendar)),
    };
    if d.conflict {
        ctx.report.conflicts += 1;
    }
    let now = ctx.now();
    let google_hash = google_content.as_ref().map(Normalized::hash);
    let mut still_waiting = false;
    pair.last_error = None;
    // The event read is the pair's: its id and calendar are recorded whatever the decision
    // (a pair whose insert was applied but not committed is found by the CRM id it carries,
    // and only the Google-id index finds it again when Google later reports it deleted,
    // with nothing but its id).
    let link_learned = match event.filter(|e| !e.is_cancelled()) {
        Some(e) if !matches!(d.action, Action::DeleteInCrm | Action::Unlink) => {
            let learned = pair.google_id.as_deref() != Some(e.id.as_str())
                || pair.container.as_deref() != Some(calendar);
            pair.google_id = Some(e.id.clone());
            pair.container = Some(calendar.to_owned());
            learned
        }
        _ => false,
    };
    match d.action {
        Action::Nothing => {
            // Nothing to copy, but remember Google's latest etag (a change outside the fields
            // we sync, such as a reminder), or the next conditional write would fail.
            let etag = event.and_then(|e| e.etag.clone());
            if etag.is_some() && etag != pair.google_etag {
                pair.google_etag = etag;
            } else if !link_learned && !unseen_by_full_read(ctx.full_read.as_deref(), &pair) {
                return Ok(());
            }
        }
        Action::Baseline => {
            pair.crm_hash = google_hash.clone();
            pair.google_hash = google_hash;
            pair.google_etag = event.and_then(|e| e.etag.clone()).or(pair.google_etag);
        }
        Action::PullToCrm => {
            let Some(content) = google_content else {
                return Ok(());
            };
            let stored = serde_json::to_value(&content).unwrap_or(Value::Null);
            if let Some(bytes) = records::oversize(&stored) {
                // Larger than the product keeps (a huge series with many per-occurrence
                // attendee lists): reported on the pair, which keeps its last content; the
                // pass goes on, and a later, smaller version of the event syncs again.
                tracing::warn!(tenant = %ctx.t(), user = %ctx.u(), calendar, bytes, "Google event too large to sync");
                pair.google_hash = google_hash;
                pair.google_etag = event.and_then(|e| e.etag.clone());
                pair.last_error = Some(format!(
                    "the Google event is {} KB once normalized; at most {} KB is synced",
                    bytes.div_ceil(1024),
                    records::MAX_RECORD_BYTES / 1024
                ));
                return commit(ctx, &loaded, pair, version, false).await;
            }
            let created = pair.crm_content.is_none();
            pair.google_id = event.map(|e| e.id.clone()).or(pair.google_id);
            pair.container = Some(calendar.to_owned());
            let data = json!({
                "calendar_id": calendar,
                "event": content.to_crm(),
                "html_link": event.and_then(|e| e.html_link.clone()),
                "google_updated": event.and_then(|e| e.updated.clone()),
                "conflict": d.conflict.then(|| conflict_data(&d, "google")),
                "edit_beat_delete": d.reason == Reason::EditBeatsDelete,
            });
            let kind = if created || d.reason == Reason::EditBeatsDelete {
                ChangeKind::EventCreated
            } else {
                ChangeKind::EventUpdated
            };
            if d.reason == Reason::EditBeatsDelete {
                pair.crm_deleted_at = None;
            }
            ctx.feed(kind, &pair, data).await?;
            pair.crm_content = serde_json::to_value(&content).ok();
            pair.crm_hash = google_hash.clone();
            pair.google_hash = google_hash;
            pair.crm_modified = event
                .and_then(|e| parse_time(e.updated.as_deref()))
                .or(Some(now));
            pair.google_etag = event.and_then(|e| e.etag.clone());
        }
        Action::PushToGoogle => {
            let Some(content) = pair
                .crm_content
                .clone()
                .and_then(|v| serde_json::from_value::<Normalized>(v).ok())
            else {
                return Ok(());
            };
            let live = event.filter(|e| !e.is_cancelled());
            let written = match live {
                Some(e) => {
                    let body = Value::Object(ctx.google_body(&pair, &content));
                    let etag = e.etag.as_deref();
                    match ctx
                        .app
                        .google
                        .patch_event(&ctx.token, calendar, &e.id, &body, etag, ctx.send_updates)
                        .await
                    {
                        Ok(w) => w,
                        // Changed again since we read it: the next pass reads and decides anew.
                        Err(GoogleError::PreconditionFailed(_)) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    if pair.google_id.is_some() {
                        // Deleted in Google, edited in the CRM: the edit wins with a new event.
                        pair.generation += 1;
                    }
                    insert(ctx, calendar, &mut pair, &content).await?
                }
            };
            if d.conflict {
                ctx.feed(
                    ChangeKind::ConflictResolved,
                    &pair,
                    conflict_data(&d, "crm"),
                )
                .await?;
            }
            still_waiting = record_written(ctx, &mut pair, &written, &content, calendar).await;
            ctx.report.pushed_to_google += 1;
        }
        Action::DeleteInGoogle => {
            if let (Some(gid), Some(e)) = (pair.google_id.clone(), event) {
                let etag = e.etag.as_deref();
                match ctx
                    .app
                    .google
                    .delete_event(&ctx.token, calendar, &gid, etag, ctx.send_updates)
                    .await
                {
                    Ok(()) => ctx.report.deleted_in_google += 1,
                    Err(GoogleError::PreconditionFailed(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            pair.deleted_at = Some(now);
        }
        Action::DeleteInCrm => {
            ctx.feed(
                ChangeKind::EventDeleted,
                &pair,
                json!({"calendar_id": calendar}),
            )
            .await?;
            pair.deleted_at = Some(now);
        }
        Action::Unlink => {
            if pair.crm_deleted_at.is_none() {
                ctx.feed(
                    ChangeKind::EventUnlinked,
                    &pair,
                    json!({"calendar_id": calendar, "reason": "deleted_in_google"}),
                )
                .await?;
            }
            pair.deleted_at = Some(now);
        }
        Action::Tombstone => {
            pair.deleted_at.get_or_insert(now);
        }
    }
    pair.last_synced_at = Some(now);
    if ctx.full_read.is_some() {
        pair.seen_in_read.clone_from(&ctx.full_read);
    }
    commit(ctx, &loaded, pair, version, still_waiting).await
}

/// Saves a pair after its decision was carried out (see [`records::commit`]).
async fn commit(
    ctx: &Ctx<'_>,
    loaded: &PairStatus,
    pair: PairStatus,
    version: Option<u64>,
    dirty: bool,
) -> Result<(), SyncError> {
    Ok(records::commit(ctx.app, ctx.t(), ctx.u(), loaded, pair, version, dirty).await?)
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
        pair.google_hash = Some(baseline_of(
            &Normalized::from_google(&google_json(written)),
            content,
        ));
        return false;
    }
    let outcome = write_exceptions(ctx, calendar, written, content).await;
    pair.google_hash = Some(baseline_of(&outcome.actual, content));
    pair.last_error = outcome.error;
    if outcome.retry {
        pair.crm_hash = None;
    }
    outcome.retry
}

/// The Google baseline after a write: the hash of what Google holds — except when it differs
/// from what was written only in attendees' responses someone gave in Google (the write left
/// them to Google, and the CRM had not heard): then the CRM's picture, so the next read sees
/// those responses as news and brings them to the CRM.
fn baseline_of(actual: &Normalized, written: &Normalized) -> String {
    if actual != written
        && actual.without_responses() == written.without_responses()
        && actual.answered_since(written)
    {
        written.hash()
    } else {
        actual.hash()
    }
}

/// Google's picture of an event: for a recurring series, the master with its exceptions.
async fn google_content(
    ctx: &Ctx<'_>,
    calendar: &str,
    event: &Event,
) -> Result<Normalized, SyncError> {
    let json = google_json(event);
    Ok(match series_instances(ctx, calendar, event).await? {
        Some(instances) => Normalized::from_google_series(&json, &instances),
        None => Normalized::from_google(&json),
    })
}

/// The instances of a series that differ from its rule (`None` for a single event): one
/// `events.list` by iCalUID, which answers the series and its exceptions, cancelled ones too.
async fn series_instances(
    ctx: &Ctx<'_>,
    calendar: &str,
    master: &Event,
) -> Result<Option<Vec<Value>>, SyncError> {
    let recurring = master.recurrence.as_ref().is_some_and(|r| !r.is_empty());
    let Some(uid) = master
        .i_cal_uid
        .clone()
        .filter(|_| recurring && !master.is_cancelled())
    else {
        return Ok(None);
    };
    let mut params = ListEvents {
        i_cal_uid: Some(uid),
        show_deleted: true,
        max_results: Some(2500),
        ..ListEvents::default()
    };
    let mut out = Vec::new();
    loop {
        let page = ctx
            .app
            .google
            .list_events(&ctx.token, calendar, &params)
            .await?;
        out.extend(
            page.items
                .iter()
                .filter(|e| e.recurring_event_id.as_deref() == Some(master.id.as_str()))
                .map(google_json),
        );
        match page.next_page_token {
            Some(next) => params.page_token = Some(next),
            None => return Ok(Some(out)),
        }
    }
}

/// What writing a series' exceptions left.
struct ExceptionsWritten {
    /// Google's series as it now is.
    actual: Normalized,
    /// A passing failure: write the series again on the next pass.
    retry: bool,
    /// For the pair's `last_error`.
    error: Option<String>,
}

/// Brings a just-written series' exceptions in line with the CRM's: each occurrence that
/// differs is patched (moved or edited), deleted (cancelled) or put back to the rule (an
/// exception the CRM no longer has). Instances are addressed by Google's instance ids
/// (`{series id}_{original start}`), so nothing needs listing the occurrences.
async fn write_exceptions(
    ctx: &Ctx<'_>,
    calendar: &str,
    master: &Event,
    content: &Normalized,
) -> ExceptionsWritten {
    let master_json = google_json(master);
    let mut instances = match series_instances(ctx, calendar, master).await {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => {
            return ExceptionsWritten {
                actual: Normalized::from_google(&master_json),
                retry: e.is_pass_level(),
                error: Some(e.public_message()),
            }
        }
    };
    let current = Normalized::from_google_series(&master_json, &instances);
    let mut starts: Vec<&When> = content
        .exceptions
        .iter()
        .chain(&current.exceptions)
        .map(|x| &x.original_start)
        .collect();
    starts.sort();
    starts.dedup();
    let (mut retry, mut error) = (false, None);
    for original_start in starts {
        let want = content
            .exceptions
            .iter()
            .find(|x| &x.original_start == original_start);
        let have = current
            .exceptions
            .iter()
            .find(|x| &x.original_start == original_start);
        let Some(suffix) = instance_suffix(original_start) else {
            continue;
        };
        if want == have {
            continue;
        }
        let id = format!("{}_{suffix}", master.id);
        let written = match want {
            Some(x) if x.cancelled => ctx
                .app
                .google
                .delete_event(&ctx.token, calendar, &id, None, ctx.send_updates)
                .await
                .map(|()| cancelled_instance(&master.id, &id, original_start)),
            _ => {
                let back_to_rule = NException::plain(original_start.clone());
                let mut body = content
                    .occurrence(want.unwrap_or(&back_to_rule))
                    .to_google();
                Normalized::leave_rsvps_to_google(&mut body, ctx.account.google_email.as_deref());
                body.remove("recurrence");
                body.insert("status".into(), json!("confirmed"));
                ctx.app
                    .google
                    .patch_event(
                        &ctx.token,
                        calendar,
                        &id,
                        &Value::Object(body),
                        None,
                        ctx.send_updates,
                    )
                    .await
                    .map(|e| google_json(&e))
            }
        };
        match written {
            Ok(instance) => {
                instances.retain(|i| i["id"].as_str() != Some(id.as_str()));
                instances.push(instance);
            }
            Err(GoogleError::NotFound(_)) => {
                error = Some(format!(
                    "exception {}: not an occurrence of the series",
                    when_text(original_start)
                ));
            }
            // Held back or refused for the whole pass (pacing, the grant, Google down): the
            // series stays waiting and the next pass goes on from here (occurrences already
            // in line are not written again).
            Err(e) if e.is_pass_level() => {
                error = Some(e.to_string());
                retry = true;
                break;
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    ExceptionsWritten {
        actual: Normalized::from_google_series(&master_json, &instances),
        retry,
        error,
    }
}

fn when_text(w: &When) -> &str {
    match w {
        When::Date(s) | When::Instant(s) => s,
    }
}

/// The instance Google keeps for a deleted occurrence.
fn cancelled_instance(series: &str, id: &str, original_start: &When) -> Value {
    let start = match original_start {
        When::Date(d) => json!({"date": d}),
        When::Instant(i) => json!({"dateTime": i}),
    };
    json!({"id": id, "recurringEventId": series, "originalStartTime": start, "status": "cancelled"})
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
    request: Option<CalendarRequest>,
}

/// Pushes the CRM's waiting changes: as many as fit in the job's remaining Google calls
/// ([`crate::sync::plan::fits`]), in batch requests of [`MAX_PARTS`], each chunk's answers
/// committed before the next chunk is sent. What does not fit stays waiting and the report
/// says so (`push_incomplete`: the worker queues the rest). A failure of the pass as a
/// whole (pacing, the grant, Google unavailable) stops it after the chunk it hit, and so
/// does the deadline: what Google applied is committed, the rest keeps waiting.
async fn push_waiting(
    ctx: &mut Ctx<'_>,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<(), SyncError> {
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    let allowance = pacing::remaining().unwrap_or(u32::MAX);
    let mut planned: Vec<Planned> = Vec::new();
    let mut costs: Vec<WriteCost> = Vec::new();
    let mut planned_calls = 0u64;
    let mut more = false;
    // The pair the job was queued for comes first, read directly (the dirty index is
    // eventually consistent and may not list it yet); then the index, each entry read again
    // consistently (the index may still list a pair an earlier job has just committed, and
    // its write must not be sent twice).
    let mut seen = HashSet::new();
    let mut candidates: Vec<String> = record.map(|r| r.to_string()).into_iter().collect();
    let mut page: Option<String> = None;
    let mut listed_all = false;
    'collect: loop {
        for id in std::mem::take(&mut candidates) {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(Versioned { value, version }) = ctx
                .app
                .store
                .get_pair(&t, &u, Collection::Calendar, &id)
                .await?
            else {
                continue;
            };
            if !super::waiting(&value) {
                continue;
            }
            let Some(p) = plan(ctx, value, version).await? else {
                continue;
            };
            if p.request.is_none() {
                finish(ctx, p, None).await?;
                continue;
            }
            let cost = write_cost(&p);
            planned_calls += cost.total();
            costs.push(cost);
            planned.push(p);
            if planned_calls > u64::from(allowance) {
                more = true;
                break 'collect;
            }
        }
        if listed_all {
            break;
        }
        let records = ctx
            .app
            .store
            .list_dirty_pairs(&t, &u, Collection::Calendar, 200, page.as_deref())
            .await?;
        candidates = records
            .items
            .into_iter()
            .map(|p| p.value.crm_id.to_string())
            .collect();
        match records.next {
            Some(next) => page = Some(next),
            None => listed_all = true,
        }
    }
    // The plan: what fits in the calls left now (deciding may itself have read Google).
    let left = pacing::remaining().unwrap_or(u32::MAX);
    let n = fits(&costs, left, MAX_PARTS);
    if n < planned.len() {
        more = true;
        planned.truncate(n);
    }
    let mut planned = planned.into_iter().peekable();
    let mut stopped: Option<SyncError> = None;
    while stopped.is_none() && planned.peek().is_some() && Instant::now() < deadline {
        let chunk: Vec<Planned> = planned.by_ref().take(MAX_PARTS).collect();
        let requests: Vec<CalendarRequest> =
            chunk.iter().filter_map(|p| p.request.clone()).collect();
        let answers = match ctx.app.google.batch(&ctx.token, requests).await {
            Ok(answers) => answers,
            Err(e) => {
                stopped = Some(e.into());
                break;
            }
        };
        for (p, answer) in chunk.into_iter().zip(answers) {
            match finish(ctx, p, Some(answer)).await {
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
        if let Some(e) = ctx.pass_error.take() {
            stopped.get_or_insert(e);
        }
    }
    if more || planned.peek().is_some() {
        ctx.report.push_incomplete = true;
    }
    match stopped {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What a planned write costs: its batch part, and for a series the read of its occurrences
/// and a write per occurrence the CRM changed.
fn write_cost(p: &Planned) -> WriteCost {
    let followups = match (&p.content, p.decision.action) {
        (Some(c), Action::PushToGoogle) if !c.recurrence.is_empty() => {
            1 + u32::try_from(c.exceptions.len()).unwrap_or(u32::MAX)
        }
        _ => 0,
    };
    WriteCost {
        parts: 1,
        followups,
    }
}

/// Decides a waiting pair, assuming Google still holds what the last sync saw (the read pass
/// just brought any newer Google change in).
async fn plan(
    ctx: &mut Ctx<'_>,
    mut pair: PairStatus,
    version: u64,
) -> Result<Option<Planned>, SyncError> {
    let loaded = pair.clone();
    let calendar = pair
        .container
        .clone()
        .unwrap_or_else(|| ctx.main_calendar.clone());
    if pair.deleted_at.is_some() {
        return Ok(Some(Planned {
            loaded,
            pair,
            version,
            content: None,
            decision: decide(Baseline::default(), Side::Absent, Side::Absent, ctx.policy),
            request: None,
        }));
    }
    if pair.google_id.is_some() && pair.google_hash.is_none() {
        // Linked by the CRM to an existing Google event we have not read yet: read it.
        decide_fresh(ctx, &calendar, pair, version).await?;
        return Ok(None);
    }
    let crm_hash_now = pair.crm_content.as_ref().and_then(content_hash);
    let google = match (&pair.google_id, &pair.google_hash) {
        (Some(_), Some(h)) => Side::Present {
            hash: h,
            modified: OffsetDateTime::UNIX_EPOCH,
        },
        _ => Side::Absent,
    };
    let d = decide(
        Baseline {
            crm_hash: pair.crm_hash.as_deref(),
            google_hash: pair.google_hash.as_deref(),
        },
        crm_side(&pair, &crm_hash_now),
        google,
        ctx.policy_for(&calendar),
    );
    let content = pair
        .crm_content
        .clone()
        .and_then(|v| serde_json::from_value::<Normalized>(v).ok());
    let request = match (d.action, &content, &pair.google_id) {
        (Action::PushToGoogle, Some(c), Some(gid)) => Some(CalendarRequest::patch_event(
            &calendar,
            gid,
            &Value::Object(ctx.google_body(&pair, c)),
            pair.google_etag.as_deref(),
            ctx.send_updates,
        )),
        (Action::PushToGoogle, Some(c), None) => {
            pair.container = Some(calendar.clone());
            let mut body = ctx.google_body(&pair, c);
            body.insert(
                "id".into(),
                json!(google_event_id(
                    ctx.t(),
                    ctx.u(),
                    &pair.crm_id,
                    pair.generation
                )),
            );
            let event: Event = serde_json::from_value(Value::Object(body))
                .map_err(|e| ApiError::internal(&e, false))?;
            Some(CalendarRequest::insert_event(
                &calendar,
                &event,
                ctx.send_updates,
            )?)
        }
        (Action::DeleteInGoogle, _, Some(gid)) => Some(CalendarRequest::delete_event(
            &calendar,
            gid,
            pair.google_etag.as_deref(),
            ctx.send_updates,
        )),
        _ => None,
    };
    Ok(Some(Planned {
        loaded,
        pair,
        version,
        content,
        decision: d,
        request,
    }))
}

/// Reads the pair's Google event now and decides with it.
async fn decide_fresh(
    ctx: &mut Ctx<'_>,
    calendar: &str,
    mut pair: PairStatus,
    version: u64,
) -> Result<(), SyncError> {
    let gid = pair.google_id.clone().unwrap_or_default();
    let event = ctx.app.google.get_event(&ctx.token, calendar, &gid).await?;
    let content = match event.as_ref().filter(|e| !e.is_cancelled()) {
        Some(e) => Some(google_content(ctx, calendar, e).await?),
        None => None,
    };
    let hash = content.as_ref().map(Normalized::hash);
    let google = match (&hash, &event) {
        (Some(h), Some(e)) => Side::Present {
            hash: h,
            modified: parse_time(e.updated.as_deref()).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        // Gone from Google after we synced it.
        _ if pair.google_hash.is_some() => Side::Deleted { at: ctx.now() },
        // A link to an event that does not exist: nothing is linked.
        _ => {
            pair.google_id = None;
            Side::Absent
        }
    };
    execute(
        ctx,
        calendar,
        pair,
        Some(version),
        google,
        event.as_ref(),
        content,
    )
    .await
}

/// Records the outcome of one planned change.
async fn finish(
    ctx: &mut Ctx<'_>,
    p: Planned,
    answer: Option<BatchResponse>,
) -> Result<(), SyncError> {
    let Planned {
        loaded,
        mut pair,
        version,
        content,
        decision,
        ..
    } = p;
    let calendar = pair
        .container
        .clone()
        .unwrap_or_else(|| ctx.main_calendar.clone());
    let now = ctx.now();
    let mut still_waiting = false;
    match (decision.action, answer) {
        (Action::PushToGoogle, Some(a)) if a.is_success() => {
            if let (Ok(written), Some(c)) = (serde_json::from_value::<Event>(a.body), &content) {
                still_waiting = record_written(ctx, &mut pair, &written, c, &calendar).await;
                ctx.report.pushed_to_google += 1;
            }
        }
        (Action::PushToGoogle, Some(a)) if a.status == 409 => {
            // A retried insert: the event is there (or its id is spent) — settle it alone.
            if let Some(c) = &content {
                let written = insert(ctx, &calendar, &mut pair, c).await?;
                still_waiting = record_written(ctx, &mut pair, &written, c, &calendar).await;
                ctx.report.pushed_to_google += 1;
            }
        }
        (Action::DeleteInGoogle, Some(a))
            if a.is_success() || a.status == 404 || a.status == 410 =>
        {
            pair.deleted_at = Some(now);
            ctx.report.deleted_in_google += 1;
        }
        (Action::PushToGoogle | Action::DeleteInGoogle, Some(a)) => match a.error() {
            // Google changed it since our last read (and no incremental read will bring the
            // change again): read it now and decide with what Google really holds.
            Some(GoogleError::PreconditionFailed(_)) => {
                return decide_fresh(ctx, &calendar, pair, version).await;
            }
            // A failure of the pass, not of the record (Google unavailable, the token
            // refused): the pair stays waiting for the next pass — after a reconnect, if
            // the grant is gone.
            Some(e) if e.is_pass_level() => {
                still_waiting = true;
                ctx.pass_error.get_or_insert(SyncError::Google(e));
            }
            // The record's own failure: shown on it, and the pass goes on.
            Some(e) => pair.last_error = Some(e.to_string()),
            None => {}
        },
        (Action::Unlink | Action::Tombstone, _) => {
            pair.deleted_at.get_or_insert(now);
        }
        (Action::Baseline, _) => {
            pair.crm_hash = pair.crm_content.as_ref().and_then(content_hash);
        }
        (Action::Nothing, _) if decision.reason == Reason::DirectionForbids => {
            pair.last_error = Some(
                "this calendar is not written by the sync (direction or monitored calendar)".into(),
            );
        }
        _ => {}
    }
    if still_waiting {
        ctx.report.push_incomplete = true;
    } else {
        pair.last_synced_at = Some(now);
    }
    commit(ctx, &loaded, pair, Some(version), still_waiting).await
}

/// Gives a Google-born pair of `collection` the CRM id the CRM created for it.
pub async fn link_google_born(
    app: &App,
    t: &TenantId,
    u: &UserId,
    collection: Collection,
    google_id: &str,
    crm_id: &CrmId,
) -> Result<&'static str, ApiError> {
    if let Some(existing) = app
        .store
        .get_pair(t, u, collection, crm_id.as_str())
        .await?
    {
        return Ok(if existing.value.google_id.as_deref() == Some(google_id) {
            "already_linked"
        } else {
            "conflict"
        });
    }
    let Some(born) = app
        .store
        .get_pair(t, u, collection, CrmId::google_born(google_id).as_str())
        .await?
    else {
        return Ok("unknown");
    };
    // Gone from Google (or out of the contact group) before the CRM named it: the name is
    // kept all the same, so that should the record come back (put back into the group,
    // restored) it reaches the CRM under the CRM's id, not as a stranger.
    let deleted = born.value.deleted_at.is_some();
    let mut linked = born.value.clone();
    linked.crm_id = crm_id.clone();
    linked.google_born = false;
    match app.store.rekey_pair(t, u, &born, &linked).await {
        Ok(()) if deleted => Ok("deleted"),
        Ok(()) => Ok("linked"),
        Err(StoreError::ConditionFailed) => Ok("conflict"),
        Err(e) => Err(e.into()),
    }
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
