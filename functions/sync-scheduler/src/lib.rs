//! `sync-scheduler`: invoked by EventBridge Scheduler every 10 minutes; fans due accounts out
//! to the sync queue.

use serde::Serialize;
use shared::app::App;

/// What one run did (returned to the invoker and logged).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SchedulerReport {
    pub accounts_enqueued: usize,
}

/// Handles one scheduled invocation. The event's payload is ignored: the schedule itself is
/// the trigger.
pub async fn handle(
    _app: &App,
    _event: serde_json::Value,
) -> Result<SchedulerReport, shared::http::ApiError> {
    // The due-account index and the fan-out come with push notifications and the worker
    // (issue 6); until then there is nothing to enqueue on a schedule.
    let report = SchedulerReport::default();
    tracing::info!(
        enqueued = report.accounts_enqueued,
        "scheduler run finished"
    );
    Ok(report)
}
