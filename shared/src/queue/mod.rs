//! The work-queue port: sync jobs, one FIFO message group per account, so one account's
//! jobs are never worked on in parallel and accounts never wait for each other.

pub mod inprocess;
pub mod sqs;

use crate::domain::{TenantId, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a sync was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncReason {
    Scheduled,
    Push,
    Manual,
    RecordChange,
    Continuation,
    /// Only the tenant's webhook deliveries: a feed record was written outside a sync job
    /// (a connect, a disconnect, a pause), and the CRM should hear of it now.
    Deliver,
}

/// What a queue message asks the worker to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJob {
    pub tenant: TenantId,
    pub user: UserId,
    /// One calendar only (after a push notification); all of the account's collections when
    /// absent.
    #[serde(default)]
    pub calendar: Option<String>,
    pub reason: SyncReason,
    /// Carry out a pass's deletions even above the mass-deletion threshold (the user or the
    /// CRM confirmed them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_mass_deletion: bool,
    /// The record whose change queued the job (read directly by the worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<crate::domain::CrmId>,
}

impl SyncJob {
    /// The FIFO message group: the account.
    pub fn group_id(&self) -> String {
        format!("{}:{}", self.tenant, self.user)
    }
}

/// A message to send, with its deduplication id (same id within 5 minutes = sent once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub job: SyncJob,
    pub dedup_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{failed} of {total} messages were not queued")]
    Partial { failed: usize, total: usize },
    #[error("queue backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl QueueError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends every message (in batches of at most 10 where the backend batches).
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError>;

    /// Makes a received message (by its receipt) visible again after `after` (SQS's
    /// `ChangeMessageVisibility`): a job that failed comes back after its backoff, and one
    /// not attempted at once, instead of after the queue's visibility timeout. Backends that
    /// hand out no receipts (the in-process queue) have nothing to do.
    async fn retry_after(
        &self,
        _receipt: &str,
        _after: std::time::Duration,
    ) -> Result<(), QueueError> {
        Ok(())
    }
}

pub type SharedQueue = Arc<dyn Queue>;

/// A deduplication id safe for SQS (at most 128 characters of `[A-Za-z0-9!-~]`).
pub fn dedup_id(parts: &[&str]) -> String {
    use sha2::Digest;
    let joined = parts.join("\u{1f}");
    let digest = sha2::Sha256::digest(joined.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
