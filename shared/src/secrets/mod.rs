//! The secrets port: tenant Google client secrets, the token-encryption keys, webhook
//! signing secrets, the operator key. Values are [`SecretString`]s: they never print.

pub mod aws;
pub mod embedded;

use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("invalid secret name {0}")]
    InvalidName(String),
    #[error("secrets backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SecretsError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type SecretsResult<T> = Result<T, SecretsError>;

/// Names are relative to the deployment's prefix (`{stack}/`): e.g. `operator-key`,
/// `token-key`, `tenants/{tenant}/google-client`.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The current value, or `None` if there is no such secret.
    async fn get(&self, name: &str) -> SecretsResult<Option<SecretString>>;
    /// Create or replace.
    async fn put(&self, name: &str, value: SecretString) -> SecretsResult<()>;
    /// Remove (no error if absent).
    async fn delete(&self, name: &str) -> SecretsResult<()>;
    /// Drops this process's cached copy, so the next `get` reads the current value (after
    /// Google refused a client secret that may have been rotated meanwhile). Adapters
    /// without a cache have nothing to do.
    async fn forget(&self, _name: &str) {}
}

pub type SharedSecrets = Arc<dyn Secrets>;

/// Secret names the product uses.
pub mod names {
    use crate::domain::TenantId;

    pub const OPERATOR_KEY: &str = "operator-key";
    pub const TOKEN_KEY: &str = "token-key";

    pub fn google_client(t: &TenantId) -> String {
        format!("tenants/{t}/google-client")
    }

    pub fn webhook_signing(t: &TenantId) -> String {
        format!("tenants/{t}/webhook-signing")
    }
}

pub(crate) fn validate_name(name: &str) -> SecretsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('/')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SecretsError::InvalidName(name.to_owned()))
    }
}
