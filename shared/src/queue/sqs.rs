//! SQS FIFO adapter: `SendMessageBatch` in tens, message group = account.

use super::{Message, Queue, QueueError};
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let total = messages.len();
        let mut failed = 0;
        for chunk in messages.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let body = serde_json::to_string(&m.job).map_err(QueueError::backend)?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(m.job.group_id())
                        .message_deduplication_id(&m.dedup_id)
                        .build()
                        .map_err(QueueError::backend)?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::backend(e.into_service_error()))?;
            failed += out.failed.len();
        }
        if failed > 0 {
            return Err(QueueError::Partial { failed, total });
        }
        Ok(())
    }

    async fn retry_after(
        &self,
        receipt: &str,
        after: std::time::Duration,
    ) -> Result<(), QueueError> {
        // SQS takes 0 to 43,200 seconds.
        let secs = i32::try_from(after.as_secs().min(43_200)).unwrap_or(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(|e| QueueError::backend(e.into_service_error()))?;
        Ok(())
    }
}
