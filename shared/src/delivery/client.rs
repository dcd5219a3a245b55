//! The webhook HTTP client: redirects off, public addresses only outside local runs.

use super::DeliveryError;
use crate::services::validate::PublicOnly;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A webhook HTTP client: redirects off, no proxy, short connect timeout; with `resolver`
/// (outside local runs: [`PublicOnly`] over the system's resolver), every name is resolved
/// through it, so a connection to an internal address is refused when it is made.
pub fn webhook_client(
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
) -> Result<reqwest::Client, DeliveryError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!(
            "crm-google-sync-webhooks/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(r) = resolver {
        builder = builder.dns_resolver2(r);
    }
    builder.build().map_err(DeliveryError::Client)
}

/// The deployment's webhook HTTP client, held by the [`App`]: public addresses only, unless
/// the deployment itself is local (its CRM then runs on this machine too). Built at the first
/// delivery (functions that never deliver never build it), then reused by every run of that
/// App.
#[derive(Debug)]
pub struct WebhookClient {
    local: bool,
    client: OnceLock<reqwest::Client>,
}

impl WebhookClient {
    /// The client for a deployment; `local`: it runs on loopback (the local server), so
    /// webhooks to this machine are allowed.
    pub fn for_deployment(local: bool) -> Self {
        Self {
            local,
            client: OnceLock::new(),
        }
    }

    pub(super) fn get(&self) -> Result<reqwest::Client, DeliveryError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let resolver: Option<Arc<dyn reqwest::dns::Resolve>> = if self.local {
            None
        } else {
            Some(Arc::new(PublicOnly::system()))
        };
        let client = webhook_client(resolver)?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}
