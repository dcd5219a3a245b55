//! `sync-worker`: consumes the sync queue (SQS FIFO, partial batch responses).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use shared::app::App;
use shared::queue::SyncJob;

/// Why a message could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a sync job: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] shared::store::StoreError),
}

/// Processes a batch; only the messages that failed are reported, so SQS retries just those
/// (and moves them to the dead-letter queue after the redrive count).
pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let result = match serde_json::from_str::<SyncJob>(message.body.as_deref().unwrap_or("")) {
            Ok(job) => run(app, &job).await,
            Err(e) => Err(JobError::Malformed(e)),
        };
        if let Err(error) = result {
            tracing::warn!(message_id = %id, %error, "sync job failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Runs one job. Accounts that are gone or not active are skipped: their jobs are done.
pub async fn run(app: &App, job: &SyncJob) -> Result<(), JobError> {
    let Some(account) = app.store.get_account(&job.tenant, &job.user).await? else {
        tracing::info!(tenant = %job.tenant, user = %job.user, "no account; job dropped");
        return Ok(());
    };
    if !account.value.status.syncs() {
        tracing::info!(tenant = %job.tenant, user = %job.user, status = ?account.value.status, "account not active; job dropped");
        return Ok(());
    }
    // Calendar and contacts collections plug in here (issues 5 and 7).
    tracing::info!(tenant = %job.tenant, user = %job.user, reason = ?job.reason, "sync job processed");
    Ok(())
}
