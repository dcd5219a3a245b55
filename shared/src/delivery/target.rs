//! Where and how one tenant's records are sent: one signed POST.

use super::sign::{sign, signing_key};
use super::{AttemptError, DeliveryError};
use crate::app::App;
use crate::domain::TenantId;
use crate::secrets::names;
use crate::services::validate::server_url;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Where and how a tenant's records are sent: its webhook URL, its signing secret, and the
/// client for its kind of deployment.
pub(super) struct Target {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
}

impl Target {
    /// The tenant's webhook (`None`: it has none).
    pub(super) async fn of(app: &App, tenant: &TenantId) -> Result<Option<Self>, DeliveryError> {
        let settings = app
            .store
            .get_tenant(tenant)
            .await?
            .ok_or(DeliveryError::TenantNotFound)?
            .value
            .settings;
        let Some(url) = settings.webhook_url else {
            return Ok(None);
        };
        // The address is checked again here (a URL stored before today's rules, an IP
        // literal, which no resolver sees); names are checked at connect time by the
        // client's resolver.
        let local = app.local;
        server_url("webhook_url", &url, local).map_err(|_| DeliveryError::InvalidUrl)?;
        let url = reqwest::Url::parse(&url).map_err(|_| DeliveryError::InvalidUrl)?;
        let secret = app
            .secrets
            .get(&names::webhook_signing(tenant))
            .await?
            .ok_or(DeliveryError::MissingSecret)?;
        signing_key(secret.expose_secret())?;
        Ok(Some(Self {
            client: app.webhooks.get()?,
            url,
            secret,
        }))
    }

    /// One signed POST of `payload` under `id`: `Ok` on a `2xx`; otherwise what went wrong
    /// and the `Retry-After` the CRM asked for.
    pub(super) async fn post(
        &self,
        app: &App,
        id: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Result<(), (AttemptError, Option<Duration>)>, DeliveryError> {
        let timestamp = app.clock.now_unix();
        let signature = sign(self.secret.expose_secret(), id, timestamp, payload)?;
        let sent = self
            .client
            .post(self.url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.to_vec())
            .send()
            .await;
        Ok(match sent {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err((
                AttemptError::Status {
                    status: resp.status().as_u16(),
                },
                retry_after(&resp),
            )),
            Err(e) => {
                let class = if e.is_timeout() {
                    AttemptError::Timeout
                } else if e.is_connect() {
                    AttemptError::Connect
                } else {
                    AttemptError::Transport
                };
                tracing::debug!(webhook_id = %id, cause = %cause_chain(e), "webhook transport error");
                Err((class, None))
            }
        })
    }
}

/// A transport error's causes, without the URL (which the tenant chose and may carry a
/// token in its query).
fn cause_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
