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
    let name = crate::domain::validate::name("name", name)?;
    let created = build(app, tenant, &name, scope);
    for _ in 0..5 {
        let result = if scope == ApiKeyScope::Admin {
            let current = app
                .store
                .get_tenant(tenant)
                .await?
                .ok_or_else(|| ApiError::not_found("tenant not found"))?;
            let mut t = current.value;
            t.admin_keys = admin_keys(app, &t).await? + 1;
            app.store
                .create_api_key(&created.key, Some((&t, current.version)))
                .await
        } else {
            app.store.create_api_key(&created.key, None).await
        };
        match result {
            Ok(()) => {
                tracing::info!(tenant = %tenant, key_id = %created.key.id, "API key created");
                return Ok(created);
            }
            // The tenant changed meanwhile (admin keys), or it does not exist.
            Err(StoreError::ConditionFailed) if scope == ApiKeyScope::Admin => continue,
            Err(StoreError::ConditionFailed) => {
                return Err(ApiError::not_found("tenant not found"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the tenant was changed concurrently; retry",
    ))
}

/// The tenant's admin-key count (counted once for records from before the count existed).
async fn admin_keys(app: &App, t: &crate::domain::Tenant) -> Result<u32, ApiError> {
    if t.admin_keys > 0 {
        return Ok(t.admin_keys);
    }
    Ok(count_admin_keys(app, &t.id).await? as u32)
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
    if key.scope != ApiKeyScope::Admin {
        return if app.store.delete_api_key(tenant, id).await? {
            tracing::info!(tenant = %tenant, key_id = %id, "API key deleted");
            Ok(())
        } else {
            Err(ApiError::not_found("no such API key"))
        };
    }
    // An admin key: the count and the key change together, so two concurrent deletes cannot
    // both pass the "not the last one" check.
    for _ in 0..5 {
        let current = app
            .store
            .get_tenant(tenant)
            .await?
            .ok_or_else(|| ApiError::not_found("tenant not found"))?;
        let mut t = current.value;
        let count = admin_keys(app, &t).await?;
        if count <= 1 {
            return Err(ApiError::conflict(
                "last_admin_key",
                "this is the tenant's last admin key; create another admin key first",
            ));
        }
        t.admin_keys = count - 1;
        match app
            .store
            .delete_api_key_with_tenant(id, &t, current.version)
            .await
        {
            Ok(()) => {
                tracing::info!(tenant = %tenant, key_id = %id, "API key deleted");
                return Ok(());
            }
            Err(StoreError::ConditionFailed) => {
                if app.store.get_api_key(id).await?.is_none() {
                    return Err(ApiError::not_found("no such API key"));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the tenant was changed concurrently; retry",
    ))
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
