//! `sync-scheduler`: invoked by EventBridge Scheduler every minute; queues the accounts the
//! due index says are due (`shared::services::schedule`), spread over the 10-minute window,
//! and stops before its deadline (the next tick resumes where it stopped).

use lambda_runtime::Diagnostic;
use serde::Serialize;
use shared::app::App;
use shared::services::schedule::{self, RunReport, ScheduleError};
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

/// Why a run failed as a whole (no shard found anything; the next tick tries again).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the scheduler run failed: {0}")]
    Run(#[from] ScheduleError),
}

impl SchedulerError {
    /// Whether trying again may succeed (the store was unavailable or lost a race), rather
    /// than fail the same way (a corrupt or refused item).
    pub fn is_retryable(&self) -> bool {
        match self {
            SchedulerError::Run(ScheduleError::Store(e)) => e.is_retryable(),
        }
    }
}

/// What the runtime reports of a failed invocation: whether it is worth retrying, and why.
impl From<SchedulerError> for Diagnostic {
    fn from(e: SchedulerError) -> Diagnostic {
        let error_type = if e.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one scheduled invocation before `deadline`. The event's payload is ignored: the
/// schedule itself is the trigger.
pub async fn handle(
    app: &App,
    _event: serde_json::Value,
    deadline: Instant,
) -> Result<SchedulerReport, SchedulerError> {
    let started = Instant::now();
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    let run = schedule::run(app, stop).await.inspect_err(|e| {
        tracing::error!(error = %e, "scheduler run failed");
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::store::StoreError;

    fn diagnostic(e: StoreError) -> Diagnostic {
        SchedulerError::from(ScheduleError::Store(e)).into()
    }

    #[test]
    fn a_failed_run_tells_the_runtime_whether_to_retry() {
        let down = diagnostic(StoreError::backend(std::io::Error::other("timed out")));
        assert_eq!(down.error_type, "Retryable");
        assert_eq!(
            down.error_message,
            "the scheduler run failed: store backend error: timed out"
        );
        assert_eq!(diagnostic(StoreError::Conflict).error_type, "Retryable");
        let corrupt = diagnostic(StoreError::Corrupt("ACCOUNT#1".into()));
        assert_eq!(corrupt.error_type, "NonRetryable");
        assert_eq!(
            corrupt.error_message,
            "the scheduler run failed: corrupt item ACCOUNT#1"
        );
    }
}
