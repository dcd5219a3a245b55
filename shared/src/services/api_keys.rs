//! A tenant's API keys (admin).

use crate::app::App;
use crate::domain::{ApiKey, ApiKeyId, ApiKeyScope, TenantId};
use crate::http::auth::mint_key;
use crate::http::ApiError;
use crate::store::repo::Records;
use crate::store::StoreError;

/// A key as created: the stored record and the plaintext, which is never stored or shown
/// again.
pub struct CreatedKey {
    pub key: ApiKey,
    pub plaintext: String,
}

pub(crate) fn build(app: &App, tenant: &TenantId, name: &str, scope: ApiKeyScope) -> CreatedKey {
    let minted = mint_key();
    let key = ApiKey {
        id: minted.id,
        tenant: tenant.clone(),
        scope,
        name: name.to_owned(),
        hash: minted.hash,
        created_at: app.clock.now(),
        prefix: minted.plaintext.chars().take(12).collect(),
    };
    CreatedKey {
        key,
        plaintext: minted.plaintext,
    }
}

pub async fn create(
    app: &App,
    tenant: &TenantId,
    name: &str,
    scope: ApiKeyScope,
) -> Result<CreatedKey, ApiError> {
    let name = crate::services::tenants::validate_name("name", name)?;
    let created = build(app, tenant, &name, scope);
    match app.store.create_api_key(&created.key).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant, key_id = %created.key.id, "API key created");
            Ok(created)
        }
        Err(StoreError::ConditionFailed) => Err(ApiError::not_found("tenant not found")),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(
    app: &App,
    tenant: &TenantId,
    limit: u32,
    page: Option<&str>,
) -> Result<Records<ApiKey>, ApiError> {
    Ok(app.store.list_api_keys(tenant, limit, page).await?)
}

/// Deletes a key of the tenant (any key, the caller's own included), except the tenant's
/// last admin key, so a tenant is never locked out.
pub async fn delete(app: &App, tenant: &TenantId, id: &ApiKeyId) -> Result<(), ApiError> {
    let Some(key) = app.store.get_api_key(id).await? else {
        return Err(ApiError::not_found("no such API key"));
    };
    if &key.tenant != tenant {
        return Err(ApiError::not_found("no such API key"));
    }
    if key.scope == ApiKeyScope::Admin && count_admin_keys(app, tenant).await? <= 1 {
        return Err(ApiError::conflict(
            "last_admin_key",
            "this is the tenant's last admin key; create another admin key first",
        ));
    }
    if app.store.delete_api_key(tenant, id).await? {
        tracing::info!(tenant = %tenant, key_id = %id, "API key deleted");
        Ok(())
    } else {
        Err(ApiError::not_found("no such API key"))
    }
}

async fn count_admin_keys(app: &App, tenant: &TenantId) -> Result<usize, ApiError> {
    let mut count = 0;
    let mut page: Option<String> = None;
    loop {
        let records = app
            .store
            .list_api_keys(tenant, 100, page.as_deref())
            .await?;
        count += records
            .items
            .iter()
            .filter(|k| k.scope == ApiKeyScope::Admin)
            .count();
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(count),
        }
    }
}
