use super::{Products, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A pending OAuth authorization: created when the CRM asks for a connect link, consumed
/// exactly once by the callback, gone after its TTL.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthSession {
    /// The `state` parameter (random, URL-safe).
    pub state: String,
    pub tenant: TenantId,
    pub user: UserId,
    pub products: Products,
    #[serde(default)]
    pub return_url: Option<String>,
    /// The Google account the link is for (the CRM's `login_hint`): the callback refuses any
    /// other account that consents.
    #[serde(default)]
    pub expected_email: Option<String>,
    /// PKCE code verifier (secret until the code exchange).
    pub pkce_verifier: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("products", &self.products)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
