//! A delivery run: the tenant's pending records, in order, each retried with backoff, the
//! cursor moved after each `2xx`, a record refused for too long parked.

use super::lease::Held;
use super::target::Target;
use super::{body, AttemptError, DeliveryError, LEASE_SLACK};
use crate::app::App;
use crate::domain::{ChangeRecord, TenantId};
use rand::Rng as _;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How often a run looks again at a feed gap it waits on (a record still being written).
const FEED_GAP_POLL: Duration = Duration::from_millis(100);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The tenant has no webhook: nothing sent, the cursor untouched.
    NoWebhook,
    /// Another run holds the tenant's lease: nothing sent.
    Busy,
    /// Every record of the feed is delivered.
    Drained,
    /// A record still fails after its retries; it and the records after it wait for the
    /// next run (see `blocked_on`).
    Blocked,
    /// The budget ran out with records still pending (none failing).
    OutOfBudget,
    /// Another run took the lease over (ours expired): stopped at once.
    LeaseLost,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub outcome: DeliveryOutcome,
    /// Records acknowledged (cursor advanced) in this run.
    pub delivered: u32,
    /// Failed attempts in this run (each retry counts).
    pub failures: u32,
    /// The last failed attempt.
    pub last_error: Option<AttemptError>,
    /// The cursor after the run: the last acknowledged record id.
    pub cursor: Option<String>,
    /// The record that still fails, when `outcome` is `Blocked`.
    pub blocked_on: Option<String>,
    /// Records parked in this run (refused for too long: skipped, still in the pull feed).
    pub parked: u32,
}

impl DeliveryReport {
    fn new(outcome: DeliveryOutcome, cursor: Option<String>) -> Self {
        Self {
            outcome,
            delivered: 0,
            failures: 0,
            last_error: None,
            cursor,
            blocked_on: None,
            parked: 0,
        }
    }
}

/// Knobs of a run; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Attempts per record within one run (the first one included).
    pub max_attempts: u32,
    /// Backoff before retry `n` is uniform in `[0, min(max_delay, base_delay * 2^(n-1))]`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per request (also capped by what is left of the budget).
    pub request_timeout: Duration,
    /// Records read from the feed per query.
    pub batch_size: u32,
    /// A record still refused after failing in this many runs, over at least
    /// `park_after`, is parked: the records after it go on.
    pub park_after_runs: u32,
    pub park_after: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            batch_size: 50,
            park_after_runs: 8,
            park_after: Duration::from_secs(3600),
        }
    }
}

/// Delivers the tenant's pending change records to its webhook with the default options.
/// See the [module documentation](super).
pub async fn deliver_pending(
    app: &App,
    tenant: &TenantId,
    budget: Duration,
) -> Result<DeliveryReport, DeliveryError> {
    deliver_pending_with(app, tenant, budget, &DeliveryOptions::default()).await
}

/// [`deliver_pending`] with explicit options (tests use a tiny backoff).
pub async fn deliver_pending_with(
    app: &App,
    tenant: &TenantId,
    budget: Duration,
    options: &DeliveryOptions,
) -> Result<DeliveryReport, DeliveryError> {
    let deadline = Instant::now() + budget;
    let Some(target) = Target::of(app, tenant).await? else {
        return Ok(DeliveryReport::new(DeliveryOutcome::NoWebhook, None));
    };

    let holder = ulid::Ulid::new().to_string();
    let Some(mut lease) = Held::acquire(app, tenant, &holder, budget + LEASE_SLACK).await? else {
        tracing::debug!(tenant = %tenant, "webhook delivery already running elsewhere");
        return Ok(DeliveryReport::new(DeliveryOutcome::Busy, None));
    };
    let mut report = DeliveryReport::new(
        DeliveryOutcome::Drained,
        lease.cursor.last_delivered.clone(),
    );
    let result = run(
        app,
        tenant,
        &target,
        &mut lease,
        deadline,
        options,
        &mut report,
    )
    .await;
    if report.outcome != DeliveryOutcome::LeaseLost {
        lease.release(app).await;
    }
    report.cursor = lease.cursor.last_delivered.clone();
    result?;
    if report.delivered > 0 || report.failures > 0 {
        tracing::info!(
            tenant = %tenant,
            outcome = ?report.outcome,
            delivered = report.delivered,
            failures = report.failures,
            last_error = report.last_error.as_ref().map(tracing::field::display),
            "webhook delivery run"
        );
    }
    Ok(report)
}

/// How one record's attempts ended.
enum Sent {
    Delivered,
    /// Still failing (retries spent, a non-retryable status, or no time for another try).
    Failed,
    /// The budget ran out before a first attempt.
    NoTime,
}

async fn run(
    app: &App,
    tenant: &TenantId,
    target: &Target,
    lease: &mut Held,
    deadline: Instant,
    options: &DeliveryOptions,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    // How long this run waits, at most, for a record whose number was taken but which has
    // not landed yet (see `Store::list_changes`): just past the feed's grace, after which
    // the gap is closed and the records behind it are read.
    let mut may_wait = app.store.feed_timing().grace + FEED_GAP_POLL;
    loop {
        if Instant::now() >= deadline {
            report.outcome = DeliveryOutcome::OutOfBudget;
            return Ok(());
        }
        let page = app
            .store
            .read_changes(
                tenant,
                lease.cursor.last_delivered.as_deref(),
                options.batch_size.max(1),
            )
            .await?;
        let batch = page.records;
        if batch.is_empty() {
            if page.waiting && !may_wait.is_zero() && Instant::now() + FEED_GAP_POLL < deadline {
                tokio::time::sleep(FEED_GAP_POLL).await;
                may_wait = may_wait.saturating_sub(FEED_GAP_POLL);
                continue;
            }
            report.outcome = DeliveryOutcome::Drained;
            return Ok(());
        }
        for record in &batch {
            match send_with_retries(app, target, record, deadline, options, report).await? {
                Sent::Delivered => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !lease.advance(app, &record.id, left + LEASE_SLACK).await? {
                        tracing::warn!(tenant = %tenant, record = %record.id, "webhook delivery lease taken over; stopping");
                        report.outcome = DeliveryOutcome::LeaseLost;
                        return Ok(());
                    }
                    report.delivered += 1;
                }
                Sent::Failed => match lease.fail(app, &record.id, options).await? {
                    // Refused for too long: parked, and the records after it go on.
                    Some(true) => {
                        tracing::warn!(tenant = %tenant, record = %record.id, "webhook record parked after repeated refusals (it stays in the pull feed)");
                        app.metrics.count("DeliveriesParked", &[], 1);
                        report.parked += 1;
                    }
                    Some(false) => {
                        report.outcome = DeliveryOutcome::Blocked;
                        report.blocked_on = Some(record.id.clone());
                        return Ok(());
                    }
                    None => {
                        report.outcome = DeliveryOutcome::LeaseLost;
                        return Ok(());
                    }
                },
                Sent::NoTime => {
                    report.outcome = DeliveryOutcome::OutOfBudget;
                    return Ok(());
                }
            }
        }
    }
}

/// Full-jitter exponential backoff before retry number `retry` (1-based).
fn backoff(options: &DeliveryOptions, retry: u32) -> Duration {
    let exp = options
        .base_delay
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
    let cap = exp.min(options.max_delay);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

async fn send_with_retries(
    app: &App,
    target: &Target,
    record: &ChangeRecord,
    deadline: Instant,
    options: &DeliveryOptions,
    report: &mut DeliveryReport,
) -> Result<Sent, DeliveryError> {
    let payload = body(record)?;
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(if attempt == 0 {
                Sent::NoTime
            } else {
                Sent::Failed
            });
        }
        attempt += 1;
        let timeout = options.request_timeout.min(left);
        let (error, wait_at_least) = match target.post(app, &record.id, &payload, timeout).await? {
            Ok(()) => return Ok(Sent::Delivered),
            Err(failed) => failed,
        };
        report.failures += 1;
        report.last_error = Some(error.clone());
        if !error.retry_now() {
            tracing::warn!(
                tenant = %record.tenant,
                record = %record.id,
                attempt,
                error = %error,
                "the CRM rejected a webhook: its endpoint looks misconfigured; retried on the next run"
            );
            return Ok(Sent::Failed);
        }
        tracing::warn!(
            tenant = %record.tenant,
            record = %record.id,
            attempt,
            error = %error,
            "webhook delivery attempt failed"
        );
        if attempt >= options.max_attempts.max(1) {
            return Ok(Sent::Failed);
        }
        let mut delay = backoff(options, attempt);
        if let Some(at_least) = wait_at_least {
            delay = delay.max(at_least.min(options.max_delay));
        }
        if Instant::now() + delay >= deadline {
            return Ok(Sent::Failed);
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let o = DeliveryOptions {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            ..DeliveryOptions::default()
        };
        for retry in 1..10 {
            let cap = Duration::from_millis((100u64 << (retry - 1)).min(250));
            for _ in 0..50 {
                assert!(backoff(&o, retry) <= cap);
            }
        }
        assert!(AttemptError::Status { status: 503 }.retry_now());
        assert!(AttemptError::Status { status: 429 }.retry_now());
        assert!(AttemptError::Status { status: 408 }.retry_now());
        assert!(!AttemptError::Status { status: 404 }.retry_now());
        assert!(!AttemptError::Status { status: 301 }.retry_now());
        assert!(AttemptError::Timeout.retry_now());
    }
}
