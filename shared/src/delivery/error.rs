//! What went wrong: one attempt ([`AttemptError`], in the report), or a whole run
//! ([`DeliveryError`]).

use super::SignatureError;
use crate::secrets::SecretsError;
use crate::store::StoreError;
use serde::Serialize;

/// What one failed attempt looked like — never the body, the URL, the secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptError {
    /// The CRM answered with a non-2xx status (3xx included: redirects are not followed).
    Status { status: u16 },
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Another transport failure (reset, protocol error, …).
    Transport,
}

impl AttemptError {
    /// Worth another attempt in the same run: 408, 429, 5xx and transport errors. Other
    /// statuses mean a misconfigured endpoint; they wait for the next run.
    pub fn retry_now(&self) -> bool {
        match self {
            AttemptError::Status { status } => matches!(status, 408 | 429 | 500..=599),
            AttemptError::Timeout | AttemptError::Connect | AttemptError::Transport => true,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Status { status } => write!(f, "HTTP {status}"),
            AttemptError::Timeout => f.write_str("timeout"),
            AttemptError::Connect => f.write_str("connection failed"),
            AttemptError::Transport => f.write_str("transport error"),
        }
    }
}

/// Why a run could not be carried out (webhook failures are not errors: they are in the
/// report).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("tenant not found")]
    TenantNotFound,
    #[error("the tenant has a webhook URL but no signing secret")]
    MissingSecret,
    #[error("the tenant's webhook URL is not a valid URL, or not a public address")]
    InvalidUrl,
    #[error("webhook signing failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("cannot encode a webhook payload: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
}

impl DeliveryError {
    /// Whether running again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Store(e) => e.is_retryable(),
            DeliveryError::Secrets(SecretsError::Backend(_)) => true,
            _ => false,
        }
    }
}
