//! First-start seeding: the operator key, the token-encryption key and a demo tenant with an
//! admin key. The demo credentials are kept in the data folder (local use only) so every
//! start can print them.

use anyhow::{Context, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use shared::app::App;
use shared::crypto::{random_token, TokenCipher};
use shared::domain::{ApiKeyScope, TenantId};
use shared::secrets::names;
use shared::services::{api_keys, oauth_client_settings, tenants};
use std::path::Path;

pub const DEMO_TENANT: &str = "demo";

#[derive(Serialize, Deserialize)]
pub struct DemoCredentials {
    pub operator_key: String,
    pub tenant: String,
    pub admin_key: String,
}

impl std::fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCredentials")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

async fn secret_or_create(
    app: &App,
    name: &str,
    make: impl FnOnce() -> SecretString,
) -> Result<SecretString> {
    if let Some(v) = app.secrets.get(name).await? {
        return Ok(v);
    }
    let value = make();
    app.secrets.put(name, value.clone()).await?;
    Ok(value)
}

/// Seeds what is missing and returns the demo credentials. In sandbox mode the demo tenant
/// also gets the sandbox's OAuth client and may return users to the local server's pages.
pub async fn seed(app: &App, data_dir: &Path, sandbox: bool) -> Result<DemoCredentials> {
    let creds = seed_tenant(app, data_dir).await?;
    if sandbox {
        let tenant = TenantId::parse(&creds.tenant)?;
        let t = tenants::get(app, &tenant)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if t.google_client_id.is_none() {
            let body = serde_json::json!({
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
            });
            oauth_client_settings::put(app, &tenant, body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    Ok(creds)
}

async fn seed_tenant(app: &App, data_dir: &Path) -> Result<DemoCredentials> {
    let operator = secret_or_create(app, names::OPERATOR_KEY, || {
        SecretString::from(format!("op_{}", random_token(32)))
    })
    .await?;
    secret_or_create(app, names::TOKEN_KEY, TokenCipher::generate_secret).await?;

    let file = data_dir.join("demo-credentials.json");
    if let Ok(bytes) = std::fs::read(&file) {
        if let Ok(saved) = serde_json::from_slice::<DemoCredentials>(&bytes) {
            let tenant = TenantId::parse(&saved.tenant)?;
            if app.store.get_tenant(&tenant).await?.is_some() {
                return Ok(DemoCredentials {
                    operator_key: operator.expose_secret().to_owned(),
                    ..saved
                });
            }
        }
    }

    let tenant = TenantId::parse(DEMO_TENANT)?;
    let admin_key = if app.store.get_tenant(&tenant).await?.is_some() {
        // The tenant exists (e.g. a shared DynamoDB table) but we lost its key: mint another.
        api_keys::create(app, &tenant, "local demo admin key", ApiKeyScope::Admin)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .plaintext
    } else {
        let (_, key) = tenants::create(
            app,
            tenants::NewTenant {
                id: Some(tenant.clone()),
                name: "Demo CRM customer".into(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        key.plaintext
    };
    let creds = DemoCredentials {
        operator_key: operator.expose_secret().to_owned(),
        tenant: tenant.to_string(),
        admin_key,
    };
    std::fs::create_dir_all(data_dir).context("creating the data folder")?;
    let saved = DemoCredentials {
        operator_key: String::new(),
        tenant: creds.tenant.clone(),
        admin_key: creds.admin_key.clone(),
    };
    write_private(&file, &serde_json::to_vec_pretty(&saved)?).context("saving demo credentials")?;
    Ok(creds)
}

/// The OAuth client the local server registers in the Google sandbox.
pub const SANDBOX_CLIENT_ID: &str = "demo-client.apps.googleusercontent.com";
pub const SANDBOX_CLIENT_SECRET: &str = "demo-secret";

/// Writes a file only its owner may read (it holds an admin key).
#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A file left by an older version keeps its mode on open: narrow it too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
