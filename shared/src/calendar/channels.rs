//! Push channels (`events.watch`): one per calendar the product reads, so Google tells us
//! of changes within seconds; renewed before expiry (the new channel first, the old one
//! stopped only after the new one works); polling stays the safety net when one cannot be
//! made.
//!
//! Notifications collapse per calendar on its *listing generation* (a fresh id the worker
//! writes right before a push job lists the calendar, see [`listing_starts`]): the webhook
//! names the job it queues after the generation it reads, so the queue's deduplication folds
//! every notification that arrives before the next listing starts into the one job about to
//! list — which will see their changes — and the first notification after that listing began
//! gets a new id, hence a job of its own. One job queued per calendar at a time, and no
//! notification whose change a listing might have missed is dropped.

use super::sync::SyncError;
use crate::app::App;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::domain::{AccountId, CalendarListing, ChannelState, TenantId, UserId, WatchChannel};
use crate::google::calendar::WatchRequest;
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::store::StoreError;
use secrecy::SecretString;
use time::OffsetDateTime;

/// The prefix of every channel id the product opens.
const CHANNEL_PREFIX: &str = "cgs-";

/// How long a channel is asked to live. Google caps Calendar channels at about a month; a
/// week keeps renewals rare while a lost channel is replaced within days even without the
/// scheduler's safety polling.
pub const CHANNEL_TTL_SECS: u64 = 7 * 24 * 3600;
/// A channel with less life than this left is renewed.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(1);
/// How long Google's `pushNotSupportedForRequestedResource` for a calendar is trusted: the
/// calendar is polled, and watch is tried again only after this (one call a day, not one a
/// pass).
pub const PUSH_RECHECK: time::Duration = time::Duration::days(1);
/// Google's reason for a calendar that cannot be watched (holiday and other subscribed
/// calendars, some other users' calendars).
const PUSH_NOT_SUPPORTED: &str = "pushNotSupportedForRequestedResource";

/// The id of the record that says `calendar` cannot be watched (one per user and calendar;
/// it never names a real channel, so no notification can match it).
fn unsupported_id(t: &TenantId, u: &UserId, calendar: &str) -> String {
    let digest = sha256_hex(format!("nopush\u{1f}{t}\u{1f}{u}\u{1f}{calendar}").as_bytes());
    format!("nopush-{}", &digest[..32])
}

/// Writes a calendar's "cannot be watched" record over the one it may have (a lost race
/// means another job wrote the same thing).
async fn put_marker(app: &App, marker: &WatchChannel) -> Result<(), StoreError> {
    let version = app.store.get_channel(&marker.id).await?.map(|c| c.version);
    match app.store.put_channel(marker, version).await {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether Google refused to watch a calendar because it does not support push.
fn is_push_unsupported(e: &crate::google::GoogleError) -> bool {
    matches!(e, crate::google::GoogleError::Rejected { reason, .. } if reason == PUSH_NOT_SUPPORTED)
}

/// The calendars of `calendars` Google said it cannot watch (they are polled), for the
/// account's health.
pub async fn without_push(
    app: &App,
    t: &TenantId,
    u: &UserId,
    calendars: &[String],
) -> Result<Vec<String>, StoreError> {
    let now = app.clock.now();
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let records = app.store.list_channels(t, u, 100, page.as_deref()).await?;
        for c in records.items {
            if c.state == ChannelState::PushUnsupported
                && c.expires_at > now
                && calendars.contains(&c.calendar_id)
                && !out.contains(&c.calendar_id)
            {
                out.push(c.calendar_id);
            }
        }
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

/// Called by the worker right before a job queued by push lists `calendar`: a new listing
/// generation (one write, no read). From here on notifications queue a new job; the ones
/// before it are deduplicated into this job, whose listing starts after this write.
pub async fn listing_starts(
    app: &App,
    t: &TenantId,
    u: &UserId,
    calendar: &str,
) -> Result<(), StoreError> {
    app.store
        .put_listing(t, u, &new_listing(app, calendar), false)
        .await
        .map(|_| ())
}

fn new_listing(app: &App, calendar: &str) -> CalendarListing {
    CalendarListing {
        calendar_id: calendar.to_owned(),
        generation: ulid::Ulid::new().to_string(),
        started_at: app.clock.now(),
    }
}

/// Makes sure `calendar` has a live channel; creates or renews it. Failures are logged and
/// leave the calendar to polling (they never fail the pass). A calendar Google cannot watch
/// (`pushNotSupportedForRequestedResource`) is remembered as such for [`PUSH_RECHECK`]:
/// polled, shown on the account, and not asked again until then.
pub async fn ensure(
    app: &App,
    token: &SecretString,
    t: &TenantId,
    u: &UserId,
    account: &AccountId,
    calendar: &str,
) -> Result<(), SyncError> {
    let now = app.clock.now();
    let (current, unsupported) = channels_of(app, t, u, calendar).await?;
    if current.iter().any(|c| c.expires_at - now > RENEW_BEFORE) {
        return Ok(());
    }
    if unsupported.as_ref().is_some_and(|c| c.expires_at > now) {
        // Google said it cannot watch this calendar: polled until the recheck.
        return Ok(());
    }
    let secret = random_token(32);
    let request = WatchRequest {
        id: format!("{CHANNEL_PREFIX}{}", random_token(18)),
        token: SecretString::from(secret.clone()),
        address: app.config.google_webhook_url(),
        ttl_secs: Some(CHANNEL_TTL_SECS),
    };
    let mut channel = WatchChannel {
        id: unsupported_id(t, u, calendar),
        tenant: t.clone(),
        user: u.clone(),
        account: account.clone(),
        calendar_id: calendar.to_owned(),
        resource_id: String::new(),
        token_hash: String::new(),
        expires_at: now + PUSH_RECHECK,
        state: ChannelState::PushUnsupported,
    };
    let made = match app.google.watch_events(token, calendar, &request).await {
        Ok(made) => made,
        Err(e) if is_push_unsupported(&e) => {
            tracing::info!(tenant = %t, user = %u, calendar, "Google does not support push for this calendar; it is polled");
            app.metrics.count("ChannelsUnsupported", &[], 1);
            put_marker(app, &channel).await?;
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(tenant = %t, user = %u, calendar, error = %e, "no push channel; the calendar is polled");
            return Ok(());
        }
    };
    channel.id = made.id;
    channel.resource_id = made.resource_id;
    channel.token_hash = sha256_hex(secret.as_bytes());
    channel.state = ChannelState::Active;
    channel.expires_at = made
        .expiration_ms
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .unwrap_or(now + time::Duration::seconds(CHANNEL_TTL_SECS as i64));
    opened(app, token, channel, current, unsupported).await
}

/// The calendar's active channels, and its "push unsupported" marker if any.
async fn channels_of(
    app: &App,
    t: &TenantId,
    u: &UserId,
    calendar: &str,
) -> Result<(Vec<WatchChannel>, Option<WatchChannel>), SyncError> {
    let (mut current, mut unsupported) = (Vec::new(), None);
    let mut page: Option<String> = None;
    loop {
        let records = app.store.list_channels(t, u, 100, page.as_deref()).await?;
        for c in records
            .items
            .into_iter()
            .filter(|c| c.calendar_id == calendar)
        {
            match c.state {
                ChannelState::Active => current.push(c),
                ChannelState::PushUnsupported => unsupported = Some(c),
                ChannelState::Stopped => {}
            }
        }
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok((current, unsupported)),
        }
    }
}

/// Records a channel Google just opened; the channels it replaces are stopped.
async fn opened(
    app: &App,
    token: &SecretString,
    channel: WatchChannel,
    current: Vec<WatchChannel>,
    unsupported: Option<WatchChannel>,
) -> Result<(), SyncError> {
    let (t, u, calendar) = (&channel.tenant, &channel.user, channel.calendar_id.as_str());
    // The calendar was just read: its notifications may collapse from here on (a generation
    // it already has is kept). Without one nothing collapses and nothing is lost, so a
    // failure here only costs jobs.
    if let Err(e) = app
        .store
        .put_listing(t, u, &new_listing(app, calendar), true)
        .await
    {
        tracing::warn!(tenant = %t, user = %u, calendar, error = %e, "no listing generation; the channel's notifications queue a job each until a push job sets one");
    }
    app.store.put_channel(&channel, None).await?;
    if let Some(mut marker) = unsupported {
        // Google watches it now: no longer shown as polled.
        marker.state = ChannelState::Stopped;
        put_marker(app, &marker).await?;
    }
    tracing::info!(tenant = %t, user = %u, calendar, "push channel opened");
    app.metrics.count("ChannelsOpened", &[], 1);
    if !current.is_empty() {
        app.metrics.count("ChannelRenewals", &[], 1);
    }
    // The new channel works: the old ones can go.
    for old in current {
        stop(app, Some(token), &old).await;
    }
    Ok(())
}

/// Stops every active channel of the user (at Google too when a token is given).
pub async fn stop_all(
    app: &App,
    t: &TenantId,
    u: &UserId,
    token: Option<&SecretString>,
) -> Result<(), StoreError> {
    let mut page: Option<String> = None;
    loop {
        let records = app.store.list_channels(t, u, 100, page.as_deref()).await?;
        for ch in records
            .items
            .iter()
            .filter(|c| c.state == ChannelState::Active)
        {
            stop(app, token, ch).await;
        }
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(()),
        }
    }
}

/// Stops a channel at Google (best effort; skipped without a token, e.g. once the grant is
/// gone — the channel then simply expires) and marks it stopped.
pub async fn stop(app: &App, token: Option<&SecretString>, channel: &WatchChannel) {
    if let Some(token) = token {
        if let Err(e) = app
            .google
            .stop_channel(token, &channel.id, &channel.resource_id)
            .await
        {
            tracing::warn!(channel = %channel.id, error = %e, "stopping a channel at Google failed");
        }
    }
    match app.store.get_channel(&channel.id).await {
        Ok(Some(current)) => {
            let mut stopped = current.value;
            stopped.state = ChannelState::Stopped;
            match app.store.put_channel(&stopped, Some(current.version)).await {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(e) => {
                    tracing::warn!(channel = %channel.id, error = %e, "could not mark a channel stopped")
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(channel = %channel.id, error = %e, "could not read a channel"),
    }
}

/// A Google notification, as its headers carry it.
pub struct Notification<'a> {
    pub channel_id: &'a str,
    pub token: Option<&'a str>,
    pub resource_id: &'a str,
    pub state: &'a str,
}

/// What a notification came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The channel's first message.
    Handshake,
    /// A sync of the channel's calendar is queued (or one is, that has not started listing).
    Queued,
    /// Not ours, stopped, expired, or forged: nothing done.
    Unknown,
    Forged,
}

/// Checks a notification against its channel and queues a sync of that one calendar, named
/// after the calendar's listing generation (see the module's note). Does not call Google.
pub async fn notify(app: &App, n: Notification<'_>) -> Result<Outcome, crate::http::ApiError> {
    let Some(channel) = app.store.get_channel(n.channel_id).await? else {
        // Google may send a channel's `sync` message before the watch call has returned (push
        // guide, "Sync message"), so before the channel is stored: one of ours, it is the
        // handshake, answered as such (it asks for nothing).
        if n.state == "sync" && n.channel_id.starts_with(CHANNEL_PREFIX) {
            return Ok(Outcome::Handshake);
        }
        return Ok(Outcome::Unknown);
    };
    let c = channel.value;
    let now = app.clock.now();
    if c.state != ChannelState::Active || c.expires_at <= now {
        return Ok(Outcome::Unknown);
    }
    let presented = sha256_hex(n.token.unwrap_or("").as_bytes());
    if !constant_time_eq(presented.as_bytes(), c.token_hash.as_bytes())
        || !constant_time_eq(n.resource_id.as_bytes(), c.resource_id.as_bytes())
    {
        return Ok(Outcome::Forged);
    }
    match n.state {
        "sync" => return Ok(Outcome::Handshake),
        "exists" | "not_exists" => {}
        _ => return Ok(Outcome::Unknown),
    }
    let job = SyncJob {
        tenant: c.tenant.clone(),
        user: c.user.clone(),
        calendar: Some(c.calendar_id.clone()),
        reason: SyncReason::Push,
        confirm_mass_deletion: false,
        record: None,
    };
    // Without a generation (a channel opened before generations existed, or state purged)
    // nothing may collapse: every notification queues its job until the first one has run.
    let generation = match app
        .store
        .get_listing(&c.tenant, &c.user, &c.calendar_id)
        .await?
    {
        Some(listing) => listing.generation,
        None => format!("unlisted-{}", ulid::Ulid::new()),
    };
    let message = Message {
        dedup_id: dedup_id(&[&job.group_id(), "push", &c.calendar_id, &generation]),
        job,
    };
    app.queue.send(vec![message]).await?;
    Ok(Outcome::Queued)
}
