//! The tenant's Google OAuth client: set from fields or from the `client_secret.json` file
//! Google's console downloads; the secret goes to the secrets port, the store keeps only its
//! name.

use crate::app::App;
use crate::domain::{ClientRefusal, TenantId};
use crate::google::oauth::OAuthClient;
use crate::http::ApiError;
use crate::secrets::names;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the admin sees (never the secret).
#[derive(Debug, Serialize)]
pub struct GoogleClientView {
    pub client_id: Option<String>,
    pub secret_set: bool,
    /// Register exactly this as an "Authorized redirect URI" of the OAuth client.
    pub redirect_uri: String,
    /// Register this as an "Authorized JavaScript origin".
    pub javascript_origin: String,
    /// `ok`, or `refused` while Google's token endpoint refuses the client itself.
    pub status: &'static str,
    /// While refused: what Google said and since when; the users' connections are kept and
    /// resume once the client is fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusalView>,
}

/// Google's refusal of the client, as the admin sees it.
#[derive(Debug, Serialize)]
pub struct RefusalView {
    pub error: String,
    pub since: String,
    pub last_refused_at: String,
    pub message: String,
}

/// How long calls for a tenant whose client Google refused wait before one tries again (the
/// admin may have fixed the client in Google's console rather than here).
pub const RECHECK: time::Duration = time::Duration::minutes(5);

fn what_to_do(error: &str) -> &'static str {
    match error {
        "invalid_client" => {
            "Google does not accept the client secret (wrong, or rotated in Google Cloud \
             console): upload the current one with PUT /v1/admin/google-client"
        }
        "deleted_client" => {
            "the OAuth client was deleted in Google Cloud console: restore it there (within \
             30 days), or register a new client with PUT /v1/admin/google-client (users then \
             reconnect)"
        }
        "disabled_client" => "the OAuth client is disabled in Google Cloud console: enable it",
        _ => {
            "Google does not let this client use the users' grants (unauthorized_client: \
             usually another client id than the one the users consented to): register the \
             original client again with PUT /v1/admin/google-client"
        }
    }
}

fn refusal_view(r: &ClientRefusal) -> RefusalView {
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    RefusalView {
        error: r.error.clone(),
        since: at(r.since),
        last_refused_at: at(r.last_refused_at),
        message: what_to_do(&r.error).to_owned(),
    }
}

/// The error calls get while the tenant's client is refused.
pub fn refused_error(error: &str) -> ApiError {
    ApiError::conflict(
        "google_client_invalid",
        format!(
            "Google refused the tenant's OAuth client ({error}); the tenant's admin must fix \
             it (GET /v1/admin/google-client says how). The users' connections are kept."
        ),
    )
}

/// Records that Google's token endpoint refused the tenant's client (a client-level OAuth
/// error): shown to the admin, counted, and calls for the tenant wait [`RECHECK`]. The
/// accounts are not touched. Best effort: a failed write is logged.
pub async fn client_refused(app: &App, tenant: &TenantId, error: &str) {
    let now = app.clock.now();
    let result = super::tenants::update(app, tenant, |t| {
        let first = t.google_client_refused.is_none();
        let since = t.google_client_refused.as_ref().map_or(now, |r| r.since);
        t.google_client_refused = Some(ClientRefusal {
            error: error.to_owned(),
            since,
            last_refused_at: now,
        });
        Ok(first)
    })
    .await;
    match result {
        Ok((_, first)) => {
            if first {
                tracing::error!(tenant = %tenant, error, "Google refuses the tenant's OAuth client; the admin must fix it");
                app.metrics.count("GoogleClientRefused", &[], 1);
            }
        }
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e.message, "could not record the refused OAuth client")
        }
    }
}

/// Clears a recorded refusal after Google accepted the client again.
pub async fn client_accepted(app: &App, tenant: &TenantId) {
    let result = super::tenants::update(app, tenant, |t| {
        Ok(t.google_client_refused.take().is_some())
    })
    .await;
    match result {
        Ok((_, true)) => {
            tracing::info!(tenant = %tenant, "Google accepts the tenant's OAuth client again");
            app.metrics.count("GoogleClientHealed", &[], 1);
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e.message, "could not clear the refused OAuth client")
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    client_id: String,
    client_secret: String,
}

/// The `web` object of a downloaded `client_secret.json` (other keys Google adds are ignored).
#[derive(Deserialize)]
struct WebFile {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

fn check_client_id(id: &str) -> Result<(), ApiError> {
    let prefix = id.strip_suffix(".apps.googleusercontent.com");
    let ok = prefix.is_some_and(|p| {
        !p.is_empty() && p.len() <= 200 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "client_id must be a Google OAuth client id such as \
             123456789012-abc123.apps.googleusercontent.com (Google Cloud console, APIs & \
             Services, Credentials)",
        ))
    }
}

fn check_secret(secret: &str) -> Result<(), ApiError> {
    if secret.is_empty()
        || secret.len() > 256
        || secret.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid(
            "client_secret must be the OAuth client's secret (1 to 256 characters, no spaces)",
        ));
    }
    Ok(())
}

fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned())
}

pub fn view(
    app: &App,
    client_id: Option<String>,
    secret_set: bool,
    refused: Option<&ClientRefusal>,
) -> GoogleClientView {
    GoogleClientView {
        client_id,
        secret_set,
        redirect_uri: app.config.oauth_callback_url(),
        javascript_origin: origin(&app.config.public_base_url),
        status: if refused.is_some() { "refused" } else { "ok" },
        refused: refused.map(refusal_view),
    }
}

/// Parses what the admin sent: `{client_id, client_secret}` or the downloaded file as is.
fn parse(app: &App, body: Value) -> Result<(String, String), ApiError> {
    let Value::Object(map) = &body else {
        return Err(ApiError::invalid(
            "send {\"client_id\": …, \"client_secret\": …} or the client_secret.json file",
        ));
    };
    if let Some(kind) = ["installed", "android", "ios", "chrome"]
        .iter()
        .find(|k| map.contains_key(**k))
    {
        return Err(ApiError::invalid(format!(
            "this file is for a client of type \"{kind}\"; create an OAuth client ID of type \
             \"Web application\" in Google Cloud console and upload its file"
        )));
    }
    if let Some(web) = map.get("web") {
        if map.len() != 1 {
            return Err(ApiError::invalid(
                "upload the client_secret.json file unchanged (one \"web\" object)",
            ));
        }
        let file: WebFile = serde_json::from_value(web.clone()).map_err(|e| {
            ApiError::invalid(format!(
                "the client file's \"web\" object is incomplete: {e}"
            ))
        })?;
        let callback = app.config.oauth_callback_url();
        if !file.redirect_uris.iter().any(|u| u == &callback) {
            return Err(ApiError::invalid(format!(
                "the OAuth client does not list {callback} among its authorized redirect \
                 URIs; add it in Google Cloud console (Credentials, the client, Authorized \
                 redirect URIs), save, download the JSON file again and upload that"
            )));
        }
        return Ok((file.client_id, file.client_secret));
    }
    let fields: Fields =
        serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("{e}")))?;
    Ok((fields.client_id, fields.client_secret))
}

/// Sets (or replaces) the tenant's Google OAuth client.
pub async fn put(app: &App, tenant: &TenantId, body: Value) -> Result<GoogleClientView, ApiError> {
    let (client_id, secret) = parse(app, body)?;
    check_client_id(&client_id)?;
    check_secret(&secret)?;
    let name = names::google_client(tenant);
    app.secrets.put(&name, SecretString::from(secret)).await?;
    let id = client_id.clone();
    super::tenants::update(app, tenant, move |t| {
        t.google_client_id = Some(id.clone());
        t.google_client_secret_ref = Some(name.clone());
        // A new client or secret: the next call tries it at once (and records a refusal
        // again if Google still refuses it).
        t.google_client_refused = None;
        Ok(())
    })
    .await?;
    tracing::info!(tenant = %tenant, "Google OAuth client set");
    Ok(view(app, Some(client_id), true, None))
}

pub async fn get(app: &App, tenant: &TenantId) -> Result<GoogleClientView, ApiError> {
    let t = super::tenants::get(app, tenant).await?;
    Ok(view(
        app,
        t.google_client_id,
        t.google_client_secret_ref.is_some(),
        t.google_client_refused.as_ref(),
    ))
}

/// The tenant's client, ready for OAuth; a clear error when the admin has not set it, or
/// while Google refuses it (until [`RECHECK`] after the last refusal, when one call may try
/// again).
pub async fn oauth_client(app: &App, tenant: &TenantId) -> Result<OAuthClient, ApiError> {
    Ok(tenant_client(app, tenant).await?.0)
}

/// [`oauth_client`], and whether a refusal is recorded (the caller clears it when Google
/// accepts the client again).
pub async fn tenant_client(app: &App, tenant: &TenantId) -> Result<(OAuthClient, bool), ApiError> {
    let t = super::tenants::get(app, tenant).await?;
    if let Some(r) = &t.google_client_refused {
        if app.clock.now() < r.last_refused_at + RECHECK {
            return Err(refused_error(&r.error));
        }
    }
    let refused = t.google_client_refused.is_some();
    let missing = || {
        ApiError::conflict(
            "google_client_missing",
            "the tenant's admin has not set a Google OAuth client yet (PUT /v1/admin/google-client)",
        )
    };
    let (Some(client_id), Some(secret_ref)) = (t.google_client_id, t.google_client_secret_ref)
    else {
        return Err(missing());
    };
    let client_secret = app.secrets.get(&secret_ref).await?.ok_or_else(missing)?;
    Ok((
        OAuthClient {
            client_id,
            client_secret,
        },
        refused,
    ))
}

/// The tenant's client read again from the secrets port, past this process's cache (after
/// Google refused the cached secret, which the admin may have rotated meanwhile).
pub async fn fresh_oauth_client(app: &App, tenant: &TenantId) -> Result<OAuthClient, ApiError> {
    let t = super::tenants::get(app, tenant).await?;
    if let Some(name) = &t.google_client_secret_ref {
        app.secrets.forget(name).await;
    }
    let (Some(client_id), Some(secret_ref)) = (t.google_client_id, t.google_client_secret_ref)
    else {
        return Err(ApiError::conflict(
            "google_client_missing",
            "the tenant's admin has not set a Google OAuth client yet (PUT /v1/admin/google-client)",
        ));
    };
    let client_secret = app.secrets.get(&secret_ref).await?.ok_or_else(|| {
        ApiError::conflict(
            "google_client_missing",
            "the tenant's admin has not set a Google OAuth client yet (PUT /v1/admin/google-client)",
        )
    })?;
    Ok(OAuthClient {
        client_id,
        client_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert!(check_client_id("123456789012-abc123def.apps.googleusercontent.com").is_ok());
        for bad in [
            "",
            "abc",
            ".apps.googleusercontent.com",
            "a b.apps.googleusercontent.com",
            "123.example.com",
        ] {
            assert!(check_client_id(bad).is_err(), "{bad}");
        }
        assert!(check_secret("GOCSPX-abc_DEF-123").is_ok());
        assert!(check_secret("with space").is_err());
        assert!(check_secret("").is_err());
    }
}
