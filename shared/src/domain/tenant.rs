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
    /// How many admin keys the tenant has (kept with the keys in one transaction, so the last
    /// one can never be deleted, even by two concurrent requests). 0 means "not counted yet".
    #[serde(default)]
    pub admin_keys: u32,
}
