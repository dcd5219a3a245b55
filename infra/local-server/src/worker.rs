//! The background parts of the local server: the worker fed by the in-process queue (or by
//! polling a real SQS queue) and the scheduler's ticker.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::app::AppState;
use shared::queue::SyncJob;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Runs every job of the in-process queue, one at a time, as the worker Lambda would.
pub async fn run_in_process(app: AppState, mut jobs: UnboundedReceiver<SyncJob>) {
    while let Some(job) = jobs.recv().await {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        if let Err(error) = sync_worker::run(&app, &job, deadline).await {
            tracing::warn!(%error, tenant = %job.tenant, user = %job.user, "sync job failed");
        }
    }
}

/// Long-polls a real SQS queue and hands batches to the worker's Lambda handler, deleting
/// the messages it did not report as failed.
pub async fn poll_sqs(app: AppState, client: aws_sdk_sqs::Client, url: String) {
    loop {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(5)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e.into_service_error(), "receiving from SQS failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for m in &messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.body = m.body.clone();
            record.receipt_handle = m.receipt_handle.clone();
            event.records.push(record);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let response = sync_worker::handle(&app, event, deadline).await;
        let failed: HashSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        for m in messages {
            if m.message_id.as_ref().is_some_and(|id| failed.contains(id)) {
                continue;
            }
            if let Some(handle) = m.receipt_handle {
                let deleted = client
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await;
                if let Err(e) = deleted {
                    tracing::warn!(error = %e.into_service_error(), "deleting an SQS message failed");
                }
            }
        }
    }
}

/// Invokes the scheduler every `every`, as EventBridge Scheduler does in AWS.
pub async fn tick_scheduler(app: AppState, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let event = serde_json::json!({"trigger": "local-schedule"});
        let deadline = std::time::Instant::now() + every;
        if let Err(e) = sync_scheduler::handle(&app, event, deadline).await {
            tracing::warn!(error = %e, "scheduler run failed");
        }
    }
}
