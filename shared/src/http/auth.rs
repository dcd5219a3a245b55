//! API-key authentication, shared by every HTTP function.
//!
//! A key reads `cgs_<key id>_<secret>`. The store keeps SHA-256 of `<key id>:<secret>`; a
//! presented key is looked up by its id and its hash compared in constant time. Scopes:
//! `admin` (everything of its tenant) and `sync` (the CRM data plane). The operator key
//! (secret `operator-key`) only creates tenants.

use super::ApiError;
use crate::app::AppState;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::domain::{ApiKeyId, ApiKeyScope, TenantId};
use crate::secrets::names;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::ExposeSecret;

const KEY_PREFIX: &str = "cgs_";

/// A freshly minted key: the plaintext (shown once) and what the store keeps.
pub struct MintedKey {
    pub id: ApiKeyId,
    pub plaintext: String,
    pub hash: String,
}

pub fn mint_key() -> MintedKey {
    let id = ApiKeyId::generate();
    let secret = random_token(32);
    MintedKey {
        hash: key_hash(&id, &secret),
        plaintext: format!("{KEY_PREFIX}{id}_{secret}"),
        id,
    }
}

fn key_hash(id: &ApiKeyId, secret: &str) -> String {
    sha256_hex(format!("{id}:{secret}").as_bytes())
}

/// Splits a presented key into its id and secret; `None` if it is not shaped like one.
fn parse_key(token: &str) -> Option<(ApiKeyId, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = (rest.get(..26)?, rest.get(26..)?.strip_prefix('_')?);
    if secret.len() < 16 {
        return None;
    }
    Some((ApiKeyId::parse(id).ok()?, secret))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <API key>"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthenticated("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthenticated(
            "use Authorization: Bearer <API key>",
        ));
    }
    Ok(token.trim())
}

/// An authenticated tenant key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub scope: ApiKeyScope,
}

impl Caller {
    async fn authenticate(parts: &Parts, app: &AppState) -> Result<Self, ApiError> {
        Self::authenticate_key(app, bearer(parts)?).await
    }

    /// Authenticates a presented API key (a bearer token, or the one an admin typed into the
    /// console's sign-in form): the same checks, the same throttle.
    pub async fn authenticate_key(app: &crate::app::App, token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::unauthenticated("invalid API key");
        let (id, secret) = parse_key(token).ok_or_else(invalid)?;
        let key = app.store.get_api_key(&id).await?.ok_or_else(invalid)?;
        if !constant_time_eq(key.hash.as_bytes(), key_hash(&id, secret).as_bytes()) {
            return Err(invalid());
        }
        app.throttle.admit(&key.tenant, &app.metrics)?;
        Ok(Caller {
            tenant: key.tenant,
            key_id: key.id,
            scope: key.scope,
        })
    }

    /// This caller if its key has `scope`.
    pub fn require(self, scope: ApiKeyScope) -> Result<Self, ApiError> {
        if self.scope.allows(scope) {
            Ok(self)
        } else {
            Err(ApiError::forbidden(format!(
                "this endpoint needs a key with the {} scope",
                match scope {
                    ApiKeyScope::Admin => "admin",
                    ApiKeyScope::Sync => "sync",
                }
            )))
        }
    }
}

/// A caller holding an `admin` key.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

/// A caller holding a `sync` (or `admin`) key.
#[derive(Debug, Clone)]
pub struct SyncCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::authenticate(parts, app).await?;
        Ok(Self(caller.require(ApiKeyScope::Admin)?))
    }
}

impl FromRequestParts<AppState> for SyncCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::authenticate(parts, app).await?;
        Ok(Self(caller.require(ApiKeyScope::Sync)?))
    }
}

/// The operator (whoever holds the `operator-key` secret).
#[derive(Debug, Clone)]
pub struct OperatorCaller;

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let Some(expected) = app.secrets.get(names::OPERATOR_KEY).await? else {
            tracing::error!("the operator-key secret is missing; tenants cannot be created");
            return Err(ApiError::unauthenticated("invalid operator key"));
        };
        // Compare digests: constant time and independent of the lengths.
        let a = sha256_hex(token.as_bytes());
        let b = sha256_hex(expected.expose_secret().as_bytes());
        if constant_time_eq(a.as_bytes(), b.as_bytes()) {
            Ok(OperatorCaller)
        } else {
            Err(ApiError::unauthenticated("invalid operator key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_hash() {
        let k = mint_key();
        let (id, secret) = parse_key(&k.plaintext).unwrap();
        assert_eq!(id, k.id);
        assert_eq!(key_hash(&id, secret), k.hash);
        assert!(!k.hash.contains(secret));
        for bad in [
            "",
            "cgs_",
            "cgs_short_x",
            "xyz_01ARZ3NDEKTSV4RRFFQ69G5FAV_aaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }
}
