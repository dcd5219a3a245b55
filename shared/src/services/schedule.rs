//! The scheduled safety net: which accounts are due, when they are due next, and the
//! scheduler's run over the due index (`store::keys`, access pattern 15).
//!
//! * **Cadence.** An account whose calendars all have a healthy push channel is polled every
//!   [`SAFETY_INTERVAL`] (6 h): Google's notifications are not guaranteed, so a lost one
//!   delays a change by at most that long, for 4 `events.list` calls a day per calendar
//!   instead of 144. Without a healthy channel (none could be made, or one expires before the
//!   next safety poll would renew it) the account is polled every [`POLL_INTERVAL`]
//!   (10 minutes, the product's promise). A failed run is retried sooner, backing off
//!   ([`failure_backoff`]: 1, 2, 4 … minutes, at most an hour). The worker writes the next due
//!   time after each run ([`after_success`], [`after_failure`]).
//! * **Spread.** Each account has a phase in the 10-minute window (a hash of tenant and user)
//!   and its due times land on that phase, so every scheduler tick finds about a tenth of the
//!   accounts polled every 10 minutes, not all of them at once. A backlog (accounts found long
//!   overdue, e.g. after an outage or on first deployment) is spread the same way: each is
//!   moved to its next phase slot instead of being queued at once. This is the FIFO queue's
//!   equivalent of per-message `DelaySeconds`, which SQS FIFO queues do not accept (only a
//!   queue-wide delay); the scheduler therefore ticks every minute ([`TICK`]).
//! * **Exactly once.** An account is claimed (its due time moved forward by [`CLAIM`]) with a
//!   conditional write on the version it was indexed at, and only claimed accounts are
//!   queued: two overlapping runs can never queue it twice, and the FIFO deduplication id
//!   (account + the version claimed) covers a retried send. The id is the claim's, not a time
//!   slot's: an account due again minutes after its last run (a spent tenant budget, a failure
//!   backing off) is a new claim, and a slot's id would have SQS drop its job as a duplicate
//!   within the five-minute window, leaving the account to wait out the claim. A claim the worker never replaces (the
//!   job was lost) makes the account due again after [`CLAIM`].
//! * **Deadline.** The run stops before its deadline; what it did not move forward is still
//!   due and the next tick resumes there.

use crate::app::App;
use crate::domain::{Account, ChannelState, Product, TenantId, UserId, WatchChannel};
use crate::queue::{dedup_id, Message, SyncJob, SyncReason};
use crate::store::keys::DUE_SHARDS;
use crate::store::repo::Versioned;
use crate::store::{PageToken, StoreError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

/// How often an account without a healthy push channel is polled (the product's 10 minutes),
/// and the window the accounts' phases spread over.
pub const POLL_INTERVAL: Duration = Duration::minutes(10);
/// How often an account whose calendars all have a healthy push channel is polled anyway.
pub const SAFETY_INTERVAL: Duration = Duration::hours(6);
/// How often EventBridge Scheduler invokes the scheduler.
pub const TICK: Duration = Duration::minutes(1);
/// How far a queued account's due time is moved; the worker replaces it with the real next
/// due time. If the job is lost, the account is due again after this.
pub const CLAIM: Duration = Duration::minutes(20);
/// An account found due later than this after its due time is spread to its next phase slot
/// rather than queued at once (a missed tick or two is not a backlog).
pub const ON_TIME: Duration = Duration::minutes(3);
/// Backoff of failed runs: the first retry after this, doubling…
pub const BACKOFF_BASE: Duration = Duration::minutes(1);
/// …up to this.
pub const BACKOFF_CAP: Duration = Duration::hours(1);
/// Accounts read per due-index page and claimed concurrently per step (one SQS batch).
const PAGE: u32 = 500;
const BATCH: usize = 10;

/// The account's phase in the polling window, in seconds (a stable hash of tenant and user).
pub fn phase(t: &TenantId, u: &UserId) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("phase\u{1f}{t}\u{1f}{u}").as_bytes());
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    (n % POLL_INTERVAL.whole_seconds() as u64) as i64
}

/// The first instant at or after `at` (whole seconds) that falls on `phase` in the window.
pub fn on_phase(at: OffsetDateTime, phase: i64) -> OffsetDateTime {
    let window = POLL_INTERVAL.whole_seconds();
    let secs = at.unix_timestamp() + i64::from(at.nanosecond() > 0);
    let wait = (phase - secs).rem_euclid(window);
    OffsetDateTime::from_unix_timestamp(secs + wait).unwrap_or(at)
}

/// Until when an account's push channels keep it informed: the earliest moment one of its
/// read calendars loses its healthy channel (the renewal point, a day before expiry), or
/// `None` if a read calendar has no live channel now.
pub fn channels_healthy_until(
    calendars: &[String],
    channels: &[WatchChannel],
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let renew_before = crate::calendar::channels::RENEW_BEFORE;
    let mut until: Option<OffsetDateTime> = None;
    for calendar in calendars {
        let best = channels
            .iter()
            .filter(|c| &c.calendar_id == calendar && c.state == ChannelState::Active)
            .map(|c| c.expires_at - renew_before)
            .max()?;
        if best <= now {
            return None;
        }
        until = Some(until.map_or(best, |u| u.min(best)));
    }
    until
}

/// The calendars a pass of `account` reads (the names channels are stored under).
pub fn read_calendars(account: &Account) -> Vec<String> {
    let mut out = vec![account
        .settings
        .main_calendar
        .clone()
        .unwrap_or_else(|| "primary".to_owned())];
    for c in &account.settings.monitored_calendars {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// The next due time after a complete run: the safety interval while every read calendar has
/// a healthy channel (but no later than the first renewal point, so the run that renews it
/// comes in time), else the polling interval (the tenant's, [`POLL_INTERVAL`] at least); on
/// the account's phase.
pub fn after_success(
    now: OffsetDateTime,
    phase: i64,
    healthy_until: Option<OffsetDateTime>,
    poll: Duration,
) -> OffsetDateTime {
    let poll = poll.max(POLL_INTERVAL);
    let next = match healthy_until {
        Some(until) => (now + SAFETY_INTERVAL.max(poll))
            .min(until)
            .max(now + POLL_INTERVAL),
        None => now + poll,
    };
    on_phase(next, phase)
}

/// The wait after the `failures`-th failed run in a row (1 = the first).
pub fn failure_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let wait = BACKOFF_BASE * (1u32 << doublings);
    wait.min(BACKOFF_CAP)
}

pub fn after_failure(now: OffsetDateTime, failures: u32) -> OffsetDateTime {
    now + failure_backoff(failures)
}

/// What a run does with an account it found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Queue a sync now.
    Enqueue,
    /// Part of a backlog: move it to its next phase slot (within the window).
    Spread(OffsetDateTime),
}

/// Pure: queue an account found due at `now` if it is on time or its phase slot has come,
/// else spread it to its next slot.
pub fn plan(now: OffsetDateTime, due: OffsetDateTime, phase: i64) -> Plan {
    if now - due <= ON_TIME {
        return Plan::Enqueue;
    }
    let window = POLL_INTERVAL.whole_seconds();
    let since_slot = (now.unix_timestamp() - phase).rem_euclid(window);
    if since_slot < TICK.whole_seconds() {
        Plan::Enqueue
    } else {
        Plan::Spread(on_phase(now, phase))
    }
}

/// What one scheduler run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Due entries read.
    pub found: usize,
    /// Accounts queued for a sync.
    pub enqueued: usize,
    /// Backlog accounts moved to their phase slot.
    pub spread: usize,
    /// Accounts of paused or missing tenants, moved a window forward.
    pub paused: usize,
    /// Entries another writer changed first (stale index entries; skipped).
    pub skipped: usize,
    /// Claimed accounts whose message could not be sent (due again after the claim).
    pub send_failures: usize,
    /// The run stopped at its deadline; the next tick resumes.
    pub stopped_early: bool,
}

impl RunReport {
    fn add(&mut self, o: &RunReport) {
        self.found += o.found;
        self.enqueued += o.enqueued;
        self.spread += o.spread;
        self.paused += o.paused;
        self.skipped += o.skipped;
        self.send_failures += o.send_failures;
        self.stopped_early |= o.stopped_early;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The scheduler's run: every shard (concurrently), every due account (page by page), until
/// done or `deadline`.
pub async fn run(app: &App, deadline: Instant) -> Result<RunReport, ScheduleError> {
    let now = app.clock.now();
    let tenants = TenantCache::default();
    let shards = (0..DUE_SHARDS).map(|s| run_shard(app, s, now, deadline, &tenants));
    let mut report = RunReport::default();
    let mut first_error = None;
    for result in futures_util::future::join_all(shards).await {
        match result {
            Ok(r) => report.add(&r),
            Err(e) => {
                tracing::error!(error = %e, "a due-index shard failed; it is retried next tick");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if report.found == 0 => Err(e),
        _ => Ok(report),
    }
}

async fn run_shard(
    app: &App,
    shard: u32,
    now: OffsetDateTime,
    deadline: Instant,
    tenants: &TenantCache,
) -> Result<RunReport, ScheduleError> {
    let mut report = RunReport::default();
    let mut page: Option<PageToken> = None;
    loop {
        if Instant::now() >= deadline {
            report.stopped_early = true;
            return Ok(report);
        }
        let (accounts, next) = app
            .store
            .list_due_accounts(shard, now, PAGE, page.take())
            .await?;
        report.found += accounts.len();
        for chunk in accounts.chunks(BATCH) {
            if Instant::now() >= deadline {
                report.stopped_early = true;
                return Ok(report);
            }
            step(app, chunk, now, tenants, &mut report).await?;
        }
        match next {
            Some(n) => page = Some(n),
            None => return Ok(report),
        }
    }
}

/// Claims (or spreads) up to ten accounts concurrently, then queues the claimed ones in one
/// batch.
async fn step(
    app: &App,
    chunk: &[Versioned<Account>],
    now: OffsetDateTime,
    tenants: &TenantCache,
    report: &mut RunReport,
) -> Result<(), ScheduleError> {
    let decisions = futures_util::future::join_all(chunk.iter().map(|found| async move {
        let a = &found.value;
        let Some(due) = a.scheduled_at() else {
            return Ok::<_, StoreError>(Step::Skipped);
        };
        if tenants.paused(app, &a.tenant).await? {
            let moved = move_due(app, found, now + POLL_INTERVAL).await?;
            return Ok(if moved { Step::Paused } else { Step::Skipped });
        }
        match plan(now, due, phase(&a.tenant, &a.user)) {
            Plan::Enqueue => Ok(if move_due(app, found, now + CLAIM).await? {
                Step::Claimed
            } else {
                Step::Skipped
            }),
            Plan::Spread(at) => Ok(if move_due(app, found, at).await? {
                Step::Spread
            } else {
                Step::Skipped
            }),
        }
    }))
    .await;
    let mut messages = Vec::new();
    for (found, decision) in chunk.iter().zip(decisions) {
        match decision? {
            Step::Claimed => {
                let job = SyncJob {
                    tenant: found.value.tenant.clone(),
                    user: found.value.user.clone(),
                    calendar: None,
                    reason: SyncReason::Scheduled,
                    confirm_mass_deletion: false,
                    record: None,
                };
                messages.push(Message {
                    dedup_id: dedup_id(&[&job.group_id(), "scheduled", &found.version.to_string()]),
                    job,
                });
            }
            Step::Spread => report.spread += 1,
            Step::Paused => report.paused += 1,
            Step::Skipped => report.skipped += 1,
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    let n = messages.len();
    match app.queue.send(messages).await {
        Ok(()) => report.enqueued += n,
        Err(crate::queue::QueueError::Partial { failed, .. }) => {
            tracing::warn!(
                failed,
                "some scheduled syncs were not queued; due again after the claim"
            );
            report.enqueued += n - failed;
            report.send_failures += failed;
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduled syncs not queued; due again after the claim");
            report.send_failures += n;
        }
    }
    Ok(())
}

enum Step {
    Claimed,
    Spread,
    Paused,
    Skipped,
}

/// Moves an account's due time under the version it was indexed at; `false` if someone wrote
/// it first (the entry was stale, or the worker just set a new due time).
async fn move_due(
    app: &App,
    found: &Versioned<Account>,
    to: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut account = found.value.clone();
    account.next_sync_at = Some(to);
    match app.store.put_account(&account, Some(found.version)).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether each tenant's sync is paused, read once per run.
#[derive(Default)]
struct TenantCache(Mutex<HashMap<TenantId, bool>>);

impl TenantCache {
    async fn paused(&self, app: &App, t: &TenantId) -> Result<bool, StoreError> {
        if let Some(p) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(t) {
            return Ok(*p);
        }
        let paused = app
            .store
            .get_tenant(t)
            .await?
            .is_none_or(|t| t.value.settings.sync_paused);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(t.clone(), paused);
        Ok(paused)
    }
}

/// Queues a pass of the account now (after it connects, or resumes): the initial read and
/// the push channels that make later Google changes arrive in seconds, and the CRM changes
/// that waited. If it cannot be queued the account is made due at once, for the scheduler's
/// next run. `why` and the account's last write name the job (a retried request is one job).
pub async fn queue_pass(app: &App, account: &Account, why: &str) {
    if !account.has_synced_product() {
        return;
    }
    let job = SyncJob {
        tenant: account.tenant.clone(),
        user: account.user.clone(),
        calendar: None,
        reason: SyncReason::Scheduled,
        confirm_mass_deletion: false,
        record: None,
    };
    let message = Message {
        dedup_id: dedup_id(&[
            &job.group_id(),
            why,
            &crate::clock::rfc3339(account.updated_at),
        ]),
        job,
    };
    if let Err(e) = app.queue.send(vec![message]).await {
        tracing::warn!(tenant = %account.tenant, user = %account.user, error = %e, "pass not queued; due at the next scheduler run");
        let now = app.clock.now();
        let due = app
            .store
            .update_account(&account.tenant, &account.user, now, |a| {
                a.next_sync_at = Some(now);
            })
            .await;
        if let Err(e) = due {
            tracing::warn!(tenant = %account.tenant, user = %account.user, error = %e, "account not made due; the claim expires by itself");
        }
    }
}

/// The worker's half: records, in one account write, what the job's passes noted (`noted`:
/// the last sync, its errors, the contacts' progress) with how the run ended and when the
/// account is due next. `complete` is a run that read every calendar of the account to the
/// end; runs that covered less (a push for one calendar, a CRM record change) leave the due
/// time alone on success. `account`: as the job read it (which calendars' channels to
/// check; the write itself is on the account as it is then, conditional on its version, so
/// a scheduler's claim made meanwhile is replaced, never lost).
pub async fn record_run(
    app: &App,
    account: &Account,
    outcome: RunOutcome<'_>,
    noted: &crate::sync::Noted,
) -> Result<(), crate::http::ApiError> {
    let (t, u) = (&account.tenant, &account.user);
    let now = app.clock.now();
    // People has no push: an account with contacts is polled at the polling interval,
    // whatever its calendars' channels.
    let channels = match outcome {
        RunOutcome::Complete { .. } if !account.products.contains(Product::Contacts) => {
            Some(all_channels(app, t, u).await?)
        }
        _ => None,
    };
    let phase = phase(t, u);
    app.store
        .update_account(t, u, now, |a| {
            noted.apply(a);
            let healthy_until = match (&channels, a.products.contains(Product::Contacts)) {
                (Some(channels), false) => {
                    channels_healthy_until(&read_calendars(a), channels, now)
                }
                _ => None,
            };
            record(
                a,
                outcome,
                now,
                after_success(now, phase, healthy_until, outcome.poll()),
            );
        })
        .await?;
    Ok(())
}

/// Pure: how a run that ended in `outcome` at `now` leaves the account's schedule (`next`:
/// its next due time after a complete run).
pub fn record(a: &mut Account, outcome: RunOutcome<'_>, now: OffsetDateTime, next: OffsetDateTime) {
    match outcome {
        RunOutcome::Complete { .. } => {
            a.sync_failures = 0;
            a.next_sync_at = Some(next);
        }
        RunOutcome::Partial => a.sync_failures = 0,
        RunOutcome::Failed(error) => {
            a.sync_failures = a.sync_failures.saturating_add(1);
            a.next_sync_at = Some(after_failure(now, a.sync_failures));
            if let Some(e) = error {
                a.last_error = Some(e.to_owned());
            }
        }
        RunOutcome::Deferred(until) => a.next_sync_at = Some(until),
    }
}

/// How a worker run ended, for the schedule.
#[derive(Debug, Clone, Copy)]
pub enum RunOutcome<'a> {
    /// Every calendar read to the end; `poll`: the tenant's polling interval.
    Complete { poll: Duration },
    /// Part of the account done (one calendar, a record change, or a continuation is queued).
    Partial,
    /// Failed; with the error to show on the account when it is not retried by the queue.
    Failed(Option<&'a str>),
    /// Not run now (the tenant's Google budget is spent): due again at this time.
    Deferred(OffsetDateTime),
}

impl RunOutcome<'_> {
    /// The polling interval a complete run was under ([`POLL_INTERVAL`] otherwise).
    fn poll(&self) -> Duration {
        match self {
            RunOutcome::Complete { poll } => *poll,
            _ => POLL_INTERVAL,
        }
    }
}

async fn all_channels(
    app: &App,
    t: &TenantId,
    u: &UserId,
) -> Result<Vec<WatchChannel>, StoreError> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let records = app.store.list_channels(t, u, 100, page.as_deref()).await?;
        out.extend(records.items);
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ids(i: usize) -> (TenantId, UserId) {
        (
            TenantId::parse("acme").unwrap(),
            UserId::parse(&format!("u{i}")).unwrap(),
        )
    }

    #[test]
    fn phases_spread_over_the_window() {
        let mut per_minute = [0usize; 10];
        for i in 0..1000 {
            let (t, u) = ids(i);
            let p = phase(&t, &u);
            assert!((0..600).contains(&p));
            per_minute[(p / 60) as usize] += 1;
        }
        // About 100 per minute; none empty, none crowded.
        assert!(
            per_minute.iter().all(|n| (60..=140).contains(n)),
            "{per_minute:?}"
        );
    }

    #[test]
    fn due_times_land_on_the_phase() {
        let at = datetime!(2026-06-01 12:00:00 UTC);
        assert_eq!(on_phase(at, 0), at);
        assert_eq!(on_phase(at, 30), at + Duration::seconds(30));
        assert_eq!(
            on_phase(at + Duration::seconds(31), 30),
            at + Duration::seconds(630)
        );
        assert_eq!(
            on_phase(at + Duration::milliseconds(500), 0),
            at + Duration::seconds(600)
        );
    }

    #[test]
    fn healthy_channels_earn_the_safety_interval() {
        let now = datetime!(2026-06-01 12:00:00 UTC);
        assert_eq!(
            after_success(now, 0, None, POLL_INTERVAL),
            now + POLL_INTERVAL
        );
        // A tenant's slower polling interval; never faster than the scheduler's.
        let hour = Duration::hours(1);
        assert_eq!(after_success(now, 0, None, hour), now + hour);
        assert_eq!(
            after_success(now, 0, None, Duration::minutes(1)),
            now + POLL_INTERVAL
        );
        let far = now + Duration::days(6);
        let next = after_success(now, 0, Some(far), POLL_INTERVAL);
        assert_eq!(next, now + SAFETY_INTERVAL);
        // A channel due for renewal in 2 hours: the run that renews it comes then.
        let soon = now + Duration::hours(2);
        assert_eq!(after_success(now, 0, Some(soon), POLL_INTERVAL), soon);
        // Never more often than the polling interval.
        assert_eq!(
            after_success(now, 0, Some(now + Duration::minutes(1)), POLL_INTERVAL),
            now + POLL_INTERVAL
        );
    }

    #[test]
    fn failures_back_off_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9)
            .map(|n| failure_backoff(n).whole_minutes())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(failure_backoff(u32::MAX), BACKOFF_CAP);
        assert!(failure_backoff(1) < POLL_INTERVAL);
    }

    #[test]
    fn on_time_accounts_are_queued_and_a_backlog_is_spread() {
        let now = datetime!(2026-06-01 12:00:00 UTC);
        assert_eq!(plan(now, now - Duration::minutes(2), 300), Plan::Enqueue);
        assert_eq!(plan(now, now - Duration::hours(5), 0), Plan::Enqueue);
        assert_eq!(plan(now, now - Duration::hours(5), 590), Plan::Enqueue);
        assert_eq!(
            plan(now, now - Duration::hours(5), 300),
            Plan::Spread(now + Duration::seconds(300))
        );
    }

    fn channel(calendar: &str, expires_at: OffsetDateTime, state: ChannelState) -> WatchChannel {
        serde_json::from_value(serde_json::json!({
            "id": "c", "tenant": "acme", "user": "u1", "account": "01J00000000000000000000000",
            "calendar_id": calendar, "resource_id": "r", "token_hash": "h",
            "expires_at": crate::clock::rfc3339(expires_at), "state": state,
        }))
        .unwrap()
    }

    #[test]
    fn every_read_calendar_needs_a_live_channel() {
        let now = datetime!(2026-06-01 12:00:00 UTC);
        let cals = vec!["primary".to_owned(), "team".to_owned()];
        let week = now + Duration::days(7);
        let both = [
            channel("primary", week, ChannelState::Active),
            channel("team", now + Duration::days(3), ChannelState::Active),
        ];
        assert_eq!(
            channels_healthy_until(&cals, &both, now),
            Some(now + Duration::days(2))
        );
        let one = [channel("primary", week, ChannelState::Active)];
        assert_eq!(channels_healthy_until(&cals, &one, now), None);
        let stopped = [
            channel("primary", week, ChannelState::Active),
            channel("team", week, ChannelState::Stopped),
        ];
        assert_eq!(channels_healthy_until(&cals, &stopped, now), None);
        let expiring = [
            channel("primary", week, ChannelState::Active),
            channel("team", now + Duration::hours(20), ChannelState::Active),
        ];
        assert_eq!(channels_healthy_until(&cals, &expiring, now), None);
    }
}
