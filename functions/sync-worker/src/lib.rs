//! `sync-worker`: consumes the sync queue (SQS FIFO, partial batch responses). Each message
//! is one account's sync job; only the messages that failed transiently are reported, so SQS
//! retries just those (and moves them to the dead-letter queue after the redrive count).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::app::App;
use shared::calendar::channels;
use shared::calendar::rehome;
use shared::calendar::sync::{self as engine, SyncError};
use shared::domain::Product;
use shared::google::pacing::{self, Pace};
use shared::google::GoogleError;
use shared::queue::{SyncJob, SyncReason};
use shared::services::quota;
use shared::services::schedule::{self, RunOutcome};
use shared::services::tokens::TokenError;
use shared::sync::Noted;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Why a message could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a sync job: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] shared::store::StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Another worker holds the account's lease; the message comes back later.
    #[error("another worker is syncing this account")]
    Busy,
}

/// Time kept in hand before the invocation's deadline (to record state and answer).
const SAFETY_MARGIN: Duration = Duration::from_secs(10);
/// How long a worker's lease on an account lasts (longer than the worker's timeout, so a
/// crashed run's lease frees itself).
const LEASE_SECS: i64 = 360;
/// At most this long delivering webhooks after a job.
const DELIVERY_BUDGET: Duration = Duration::from_secs(20);

/// Processes a batch of messages before `deadline`. Only what must come back is reported
/// failed, each with the visibility it needs (not the queue's 30-minute timeout):
///
/// * a job that failed transiently comes back after its backoff (1, 2, 4 … 15 minutes by
///   its receive count), and the later messages of the same account (FIFO group) with it,
///   in order;
/// * messages the deadline leaves no time for come back at once, for another invocation;
/// * messages of other accounts never wait for a failed one.
///
/// An account busy with another worker (outside FIFO order: a redelivery racing a slow run)
/// comes back the same way; its lease lasts at most [`LEASE_SECS`], well inside the
/// backoffs before the dead-letter queue.
pub async fn handle(app: &App, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    let mut failed_groups: HashSet<String> = HashSet::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let group = message
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        if let Some(lag) = queue_lag_ms(&message) {
            app.metrics.millis("QueueLag", &[], lag);
        }
        let retry_in = if failed_groups.contains(&group) {
            // Behind a failed job of the same account: comes back with it, in order.
            Some(Duration::ZERO)
        } else if Instant::now() >= stop {
            tracing::info!(message_id = %id, "no time left in this invocation; the message returns to the queue");
            Some(Duration::ZERO)
        } else {
            let result =
                match serde_json::from_str::<SyncJob>(message.body.as_deref().unwrap_or("")) {
                    Ok(job) => run(app, &job, stop).await,
                    Err(e) => Err(JobError::Malformed(e.to_string())),
                };
            match result {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(message_id = %id, %error, "sync job failed");
                    Some(backoff(receive_count(&message)))
                }
            }
        };
        if let Some(after) = retry_in {
            failed_groups.insert(group);
            if let Some(receipt) = &message.receipt_handle {
                if let Err(e) = app.queue.retry_after(receipt, after).await {
                    tracing::warn!(message_id = %id, error = %e, "visibility not changed; the message returns after the queue's timeout");
                }
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    app.metrics.flush();
    response
}

/// How long a failed job waits before it is tried again: 1, 2, 4, 8 minutes, then 15.
pub fn backoff(receive_count: u32) -> Duration {
    let minutes = 1u64 << receive_count.saturating_sub(1).min(4);
    Duration::from_secs((60 * minutes).min(900))
}

/// SQS's `ApproximateReceiveCount` (1 on the first delivery).
fn receive_count(message: &aws_lambda_events::event::sqs::SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// How long the message waited in the queue (SQS's `SentTimestamp`, epoch milliseconds).
fn queue_lag_ms(message: &aws_lambda_events::event::sqs::SqsMessage) -> Option<f64> {
    let sent: u64 = message.attributes.get("SentTimestamp")?.parse().ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(now.saturating_sub(sent) as f64)
}

/// Runs one job. Accounts that are gone or not active are skipped: their jobs are done.
/// Permanent problems (the grant refused: the account is now `needs_reauth`) end the job;
/// transient ones fail it so the queue retries.
pub async fn run(app: &App, job: &SyncJob, deadline: Instant) -> Result<(), JobError> {
    if job.reason == SyncReason::Deliver {
        // Whatever the account's state (a disconnect's record is for a gone account).
        deliver(app, job, deadline).await;
        return Ok(());
    }
    let Some(account) = app.store.get_account(&job.tenant, &job.user).await? else {
        tracing::info!(tenant = %job.tenant, user = %job.user, "no account; job dropped");
        return Ok(());
    };
    if !account.value.status.syncs() {
        tracing::info!(tenant = %job.tenant, user = %job.user, status = ?account.value.status, "account not active; job dropped");
        app.metrics.count("SyncsRun", &[("Outcome", "dropped")], 1);
        return Ok(());
    }
    let tenant = app.store.get_tenant(&job.tenant).await?;
    let Some(tenant) = tenant.filter(|t| !t.value.settings.sync_paused) else {
        tracing::info!(tenant = %job.tenant, "sync paused for the tenant; job dropped");
        app.metrics.count("SyncsRun", &[("Outcome", "dropped")], 1);
        return Ok(());
    };
    // One worker per account at a time, even outside FIFO ordering (a redelivery racing a
    // slow run, the local server next to a Lambda): a lease in the store, released after.
    let holder = shared::crypto::random_token(12);
    let until = app.clock.now_unix() + LEASE_SECS;
    if !app
        .store
        .acquire_lease(&job.tenant, &job.user, &holder, until)
        .await?
    {
        app.metrics.count("SyncsRun", &[("Outcome", "busy")], 1);
        return Err(JobError::Busy);
    }
    let mut noted = Noted::default();
    let result = passes(
        app,
        job,
        &account.value,
        &tenant.value,
        deadline,
        &mut noted,
    )
    .await;
    if let Err(e) = app
        .store
        .release_lease(&job.tenant, &job.user, &holder)
        .await
    {
        tracing::warn!(error = %e, "could not release the lease; it expires by itself");
    }
    let poll = tenant.value.settings.defaults.poll_interval();
    record(app, &account.value, &result, poll, &noted).await;
    result.map(|_| ())
}

/// The job's passes, every Google call paced (a cap for this account, the tenant's budget),
/// then the tenant's webhook deliveries. What each pass leaves on the account is `noted`.
async fn passes(
    app: &App,
    job: &SyncJob,
    account: &shared::domain::Account,
    tenant: &shared::domain::Tenant,
    deadline: Instant,
    noted: &mut Noted,
) -> Result<Done, JobError> {
    let pacer = quota::pacer(app, tenant, idle_calls(account, job));
    // Boxed: the pass's future is large, and a task-local scope would hold it inline.
    let result = pacing::paced(
        pacer.clone(),
        Box::pin(async {
            let products = &account.products;
            let mut done = Vec::new();
            if products.contains(Product::Calendar) {
                done.push(calendar(app, job, account, deadline, noted).await?);
            }
            // A push notification names one calendar: contacts wait for their own jobs.
            if products.contains(Product::Contacts) && job.calendar.is_none() {
                done.push(sync_contacts(app, job, deadline, noted).await?);
            }
            let done = Done::combine(done);
            deliver(app, job, deadline).await;
            Ok::<_, JobError>(done)
        }),
    )
    .await;
    pacer.finish().await;
    result
}

/// The Google calls a job makes when nothing changed: a list per calendar it reads (one for
/// a push, one batch request for a record change), one for the contacts.
fn idle_calls(account: &shared::domain::Account, job: &SyncJob) -> u32 {
    let mut n = 0;
    if account.products.contains(Product::Calendar) {
        n += match (job.reason, &job.calendar) {
            (SyncReason::RecordChange, _) | (_, Some(_)) => 1,
            _ => schedule::read_calendars(account).len() as u32,
        };
    }
    if account.products.contains(Product::Contacts) && job.calendar.is_none() {
        n += 1;
    }
    n.max(1)
}

/// The schedule: a complete run sets the next due time, a failed one backs off; written with
/// what the passes noted, in one account write.
async fn record(
    app: &App,
    account: &shared::domain::Account,
    result: &Result<Done, JobError>,
    poll: time::Duration,
    noted: &Noted,
) {
    let (outcome, label) = match result {
        Ok(Done::Complete) => (Some(RunOutcome::Complete { poll }), "complete"),
        Ok(Done::Partial) => (Some(RunOutcome::Partial), "partial"),
        Ok(Done::Continued) => (Some(RunOutcome::Partial), "paced"),
        Ok(Done::Deferred(until)) => (Some(RunOutcome::Deferred(*until)), "deferred"),
        Ok(Done::Failed(message)) => (Some(RunOutcome::Failed(Some(message))), "failed"),
        Err(JobError::Busy | JobError::Malformed(_)) => (None, "busy"),
        Err(_) => (Some(RunOutcome::Failed(None)), "retry"),
    };
    app.metrics.count("SyncsRun", &[("Outcome", label)], 1);
    if let Some(outcome) = outcome {
        if let Err(e) = schedule::record_run(app, account, outcome, noted).await {
            let (t, u) = (&account.tenant, &account.user);
            tracing::warn!(tenant = %t, user = %u, error = %e.message, "could not record the run on the account");
        }
    }
}

/// How a job ended for the account (transient failures are `Err`: the queue retries them).
#[derive(Debug)]
enum Done {
    /// Every calendar read to the end (a scheduled, manual or continued full pass).
    Complete,
    /// Less than the whole account (one calendar, a record change, or the rest continues).
    Partial,
    /// The account used its Google calls for this job; the rest is queued behind the other
    /// accounts' jobs.
    Continued,
    /// A Google quota is spent (the tenant's budget, the project's daily quota, the user's
    /// Calendar usage limits): the account is due again at this time.
    Deferred(time::OffsetDateTime),
    /// A failure retrying will not fix now: shown on the account, retried on the schedule.
    Failed(String),
}

/// Sends the tenant's change feed to its webhook, within what is left of the invocation
/// (the pull feed stays the source of truth; what is not delivered now is next time).
async fn deliver(app: &App, job: &SyncJob, deadline: Instant) {
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .min(DELIVERY_BUDGET);
    if budget.is_zero() {
        return;
    }
    match shared::delivery::deliver_pending(app, &job.tenant, budget).await {
        Ok(report) if report.delivered > 0 || report.failures > 0 => {
            app.metrics
                .count("ChangesDelivered", &[], report.delivered as u64);
            tracing::info!(tenant = %job.tenant, delivered = report.delivered, failures = report.failures, outcome = ?report.outcome, "webhook delivery");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(tenant = %job.tenant, error = %e, "webhook delivery failed"),
    }
}

impl Done {
    /// The job's outcome from its passes' (the worst one counts; complete only if all are).
    fn combine(all: Vec<Done>) -> Done {
        let rank = |d: &Done| match d {
            Done::Failed(_) => 0,
            Done::Deferred(_) => 1,
            Done::Continued => 2,
            Done::Partial => 3,
            Done::Complete => 4,
        };
        all.into_iter().min_by_key(rank).unwrap_or(Done::Partial)
    }
}

async fn sync_contacts(
    app: &App,
    job: &SyncJob,
    deadline: Instant,
    noted: &mut Noted,
) -> Result<Done, JobError> {
    let result = shared::contacts::sync::sync_contacts(
        app,
        &job.tenant,
        &job.user,
        job.confirm_mass_deletion,
        deadline,
    )
    .await;
    match result {
        Ok(mut report) => {
            noted.add(std::mem::take(&mut report.noted));
            tracing::info!(tenant = %job.tenant, user = %job.user, reason = ?job.reason, ?report, "contacts synced");
            if report.continuation_due() {
                continue_later(app, job).await;
                return Ok(Done::Partial);
            }
            Ok(if job.reason == SyncReason::RecordChange {
                Done::Partial
            } else {
                Done::Complete
            })
        }
        Err(e) => pass_failed(app, job, "contacts", e).await,
    }
}

/// How a pass that ended in an error ends the job.
async fn pass_failed(app: &App, job: &SyncJob, what: &str, e: SyncError) -> Result<Done, JobError> {
    match e {
        SyncError::Google(GoogleError::Paced(Pace::Account)) => {
            tracing::info!(tenant = %job.tenant, user = %job.user, what, "Google calls for this run used up; the rest continues later");
            continue_later(app, job).await;
            Ok(Done::Continued)
        }
        SyncError::Google(GoogleError::Paced(
            pace @ (Pace::Tenant { retry_in } | Pace::Quota { retry_in, .. }),
        )) => {
            let wait = time::Duration::try_from(retry_in)
                .unwrap_or(schedule::TICK)
                .max(schedule::TICK);
            tracing::info!(tenant = %job.tenant, user = %job.user, what, wait_s = wait.whole_seconds(), %pace, "the account waits for Google's quota");
            Ok(Done::Deferred(app.clock.now() + wait))
        }
        SyncError::Token(TokenError::ClientRefused(error)) => {
            // The tenant's OAuth client, not this account: no failure counted, no status
            // change; the account waits, and tries again once the admin may have fixed it.
            tracing::warn!(tenant = %job.tenant, user = %job.user, what, error, "Google refuses the tenant's OAuth client; the account waits");
            Ok(Done::Deferred(
                app.clock.now() + shared::services::oauth_client_settings::RECHECK,
            ))
        }
        e if e.is_transient() => Err(e.into()),
        e => {
            tracing::warn!(tenant = %job.tenant, user = %job.user, what, error = %e, "sync failed");
            Ok(Done::Failed(e.public_message()))
        }
    }
}

/// The calendar's part of a job: a move into a new main calendar under way goes first (see
/// `rehome`), then the pass.
async fn calendar(
    app: &App,
    job: &SyncJob,
    account: &shared::domain::Account,
    deadline: Instant,
    noted: &mut Noted,
) -> Result<Done, JobError> {
    if account.settings.rehome.is_some() {
        match rehome::carry_on(app, &job.tenant, &job.user, deadline).await {
            Ok(true) => {}
            Ok(false) => {
                continue_later(app, job).await;
                return Ok(Done::Partial);
            }
            Err(e) => return pass_failed(app, job, "calendar", e).await,
        }
    }
    sync_calendar(app, job, deadline, noted).await
}

async fn sync_calendar(
    app: &App,
    job: &SyncJob,
    deadline: Instant,
    noted: &mut Noted,
) -> Result<Done, JobError> {
    // A record change only needs the CRM's waiting changes pushed; everything else reads
    // Google's changes first.
    let read_google = job.reason != SyncReason::RecordChange;
    // A job queued by push takes the notifications that came before it: from here on they
    // queue the next job (this one's listing starts after this write, see `channels`).
    if let (SyncReason::Push, Some(calendar)) = (job.reason, job.calendar.as_deref()) {
        channels::listing_starts(app, &job.tenant, &job.user, calendar).await?;
    }
    let result = engine::sync_account(
        app,
        &job.tenant,
        &job.user,
        engine::PassOptions {
            calendar: job.calendar.as_deref(),
            read_google,
            confirm_mass_deletion: job.confirm_mass_deletion,
            record: job.record.as_ref(),
            deadline,
        },
    )
    .await;
    match result {
        Ok(mut report) => {
            noted.add(std::mem::take(&mut report.noted));
            tracing::info!(tenant = %job.tenant, user = %job.user, reason = ?job.reason, ?report, "calendar synced");
            if report.continuation_due() {
                continue_later(app, job).await;
                return Ok(Done::Partial);
            }
            Ok(if read_google && job.calendar.is_none() {
                Done::Complete
            } else {
                Done::Partial
            })
        }
        Err(e) => pass_failed(app, job, "calendar", e).await,
    }
}

/// Queues the rest of a pass that hit the deadline (the cursor kept its page).
async fn continue_later(app: &App, job: &SyncJob) {
    let mut next = job.clone();
    next.reason = SyncReason::Continuation;
    let message = shared::queue::Message {
        // Each continuation is its own job (a clock reading could repeat).
        dedup_id: shared::queue::dedup_id(&[
            &job.group_id(),
            "continue",
            &shared::crypto::random_token(12),
        ]),
        job: next,
    };
    if let Err(e) = app.queue.send(vec![message]).await {
        tracing::error!(error = %e, "could not queue the continuation");
    }
}
