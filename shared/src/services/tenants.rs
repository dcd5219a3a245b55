//! Creating and listing tenants (operator), and changing a tenant's record safely.

use crate::app::App;
use crate::domain::{ApiKeyScope, Tenant, TenantId, TenantSettings};
use crate::http::ApiError;
use crate::services::api_keys::{self, CreatedKey};
use crate::store::StoreError;

pub struct NewTenant {
    pub id: Option<TenantId>,
    pub name: String,
}

/// Creates a tenant with default settings and its first admin key (shown once).
pub async fn create(app: &App, new: NewTenant) -> Result<(Tenant, CreatedKey), ApiError> {
    let name = crate::domain::validate::name("name", &new.name)?;
    let tenant = Tenant {
        id: new.id.unwrap_or_else(TenantId::generate),
        name,
        created_at: app.clock.now(),
        settings: TenantSettings::default(),
        google_client_id: None,
        google_client_secret_ref: None,
        google_client_refused: None,
        admin_keys: 1,
    };
    let created = api_keys::build(app, &tenant.id, "initial admin key", ApiKeyScope::Admin);
    match app.store.create_tenant(&tenant, &created.key).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant.id, "tenant created");
            Ok((tenant, created))
        }
        Err(StoreError::ConditionFailed) => Err(ApiError::conflict(
            "tenant_exists",
            format!("a tenant with id {} already exists", tenant.id),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The caller's tenant (it exists: its key was just checked, but it could be mid-deletion).
pub async fn get(app: &App, id: &TenantId) -> Result<Tenant, ApiError> {
    Ok(app
        .store
        .get_tenant(id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant not found"))?
        .value)
}

/// Read-modify-write of a tenant under optimistic concurrency, retried on a lost race.
pub async fn update<T>(
    app: &App,
    id: &TenantId,
    mut change: impl FnMut(&mut Tenant) -> Result<T, ApiError>,
) -> Result<(Tenant, T), ApiError> {
    for _ in 0..5 {
        let current = app
            .store
            .get_tenant(id)
            .await?
            .ok_or_else(|| ApiError::not_found("tenant not found"))?;
        let mut tenant = current.value;
        let out = change(&mut tenant)?;
        match app.store.update_tenant(&tenant, current.version).await {
            Ok(_) => return Ok((tenant, out)),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the tenant was changed concurrently; retry",
    ))
}

/// What the operator sees of a tenant (never its settings' secrets).
#[derive(Debug, serde::Serialize)]
pub struct TenantSummary {
    pub id: TenantId,
    pub name: String,
    pub created_at: String,
    /// The tenant's Google OAuth client is set (its users can connect).
    pub google_client_set: bool,
}

/// A page of tenants for the operator, by id.
pub async fn list(
    app: &App,
    limit: u32,
    page: Option<&str>,
) -> Result<(Vec<TenantSummary>, Option<String>), ApiError> {
    let found = app.store.list_tenants(limit.clamp(1, 200), page).await?;
    let items = found
        .items
        .into_iter()
        .map(|t| TenantSummary {
            google_client_set: t.google_client_id.is_some(),
            created_at: crate::clock::rfc3339(t.created_at),
            id: t.id,
            name: t.name,
        })
        .collect();
    Ok((items, found.next))
}
