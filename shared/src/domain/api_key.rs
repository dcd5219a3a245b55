use super::{ApiKeyId, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a key may do. `admin` includes everything `sync` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// Tenant administration: Google client, settings, keys, accounts.
    Admin,
    /// The CRM backend's data plane: connect, status, record pushes, change feed.
    Sync,
}

impl ApiKeyScope {
    /// Whether a key of this scope may call an endpoint that requires `required`.
    pub fn allows(self, required: ApiKeyScope) -> bool {
        matches!(
            (self, required),
            (ApiKeyScope::Admin, _) | (ApiKeyScope::Sync, ApiKeyScope::Sync)
        )
    }
}

/// A stored API key: never the key itself, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub scope: ApiKeyScope,
    pub name: String,
    /// Hex SHA-256 of the key's secret part, bound to the key id.
    pub hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// First characters of the key, to tell keys apart in a list.
    pub prefix: String,
}

#[cfg(test)]
mod tests {
    use super::ApiKeyScope::*;

    #[test]
    fn scopes() {
        assert!(Admin.allows(Admin));
        assert!(Admin.allows(Sync));
        assert!(Sync.allows(Sync));
        assert!(!Sync.allows(Admin));
    }
}
