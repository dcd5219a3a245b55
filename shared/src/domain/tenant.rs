use super::{TenantId, TenantSettings};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One CRM customer. Everything else belongs to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default)]
    pub settings: TenantSettings,
    /// The Google OAuth client the tenant registered (the secret lives in the secrets port).
    #[serde(default)]
    pub google_client_id: Option<String>,
    /// Name of the secret holding the Google client secret, when one is set.
    #[serde(default)]
    pub google_client_secret_ref: Option<String>,
    /// Set while Google's token endpoint refuses the tenant's OAuth client itself
    /// (`invalid_client`, `unauthorized_client`, `deleted_client`, `disabled_client`): the
    /// admin must fix the client; the accounts keep their status. Cleared by the next
    /// accepted token call or a new client (`PUT /v1/admin/google-client`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_client_refused: Option<ClientRefusal>,
    /// How many admin keys the tenant has (kept with the keys in one transaction, so the last
    /// one can never be deleted, even by two concurrent requests). 0 means "not counted yet".
    #[serde(default)]
    pub admin_keys: u32,
}

/// Google refusing a tenant's OAuth client (see [`Tenant::google_client_refused`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRefusal {
    /// The token endpoint's `error`.
    pub error: String,
    /// When Google first refused it.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// When Google last refused it (calls wait the OAuth client settings' `RECHECK`
    /// after this before one tries again).
    #[serde(with = "time::serde::rfc3339")]
    pub last_refused_at: OffsetDateTime,
}
