//! `sync-scheduler`: invoked by EventBridge Scheduler every minute; queues the accounts the
//! due index says are due (`shared::services::schedule`), spread over the 10-minute window,
//! and stops before its deadline (the next tick resumes where it stopped).

use serde::Serialize;
use shared::app::App;
use shared::services::schedule::{self, RunReport};
use std::time::{Duration, Instant};

/// Time kept in hand before the invocation's deadline.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);

/// What one run did (returned to the invoker and logged).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SchedulerReport {
    pub accounts_enqueued: usize,
    #[serde(flatten)]
    pub run: RunReport,
    pub elapsed_ms: u64,
}

/// Handles one scheduled invocation before `deadline`. The event's payload is ignored: the
/// schedule itself is the trigger.
pub async fn handle(
    app: &App,
    _event: serde_json::Value,
    deadline: Instant,
) -> Result<SchedulerReport, shared::http::ApiError> {
    let started = Instant::now();
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    let run = schedule::run(app, stop).await.map_err(|e| {
        tracing::error!(error = %e, "scheduler run failed");
        shared::http::ApiError::internal(&e, true)
    })?;
    let report = SchedulerReport {
        accounts_enqueued: run.enqueued,
        run,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    app.metrics
        .count("AccountsEnqueued", &[], report.run.enqueued as u64);
    app.metrics
        .count("AccountsSpread", &[], report.run.spread as u64);
    app.metrics.count(
        "SchedulerStoppedEarly",
        &[],
        u64::from(report.run.stopped_early),
    );
    app.metrics
        .millis("SchedulerRunTime", &[], report.elapsed_ms as f64);
    app.metrics.flush();
    tracing::info!(
        enqueued = report.run.enqueued,
        found = report.run.found,
        spread = report.run.spread,
        skipped = report.run.skipped,
        stopped_early = report.run.stopped_early,
        elapsed_ms = report.elapsed_ms,
        "scheduler run finished"
    );
    Ok(report)
}
