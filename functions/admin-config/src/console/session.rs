//! The console's session: a short-lived cookie signed with a key derived from the
//! deployment's `token-key` secret (HMAC-SHA256; no new key material, no server-side
//! session store). It names the tenant and the admin API key that signed in — never the key
//! itself — and every request checks that this key still exists with the admin scope, so
//! revoking the key ends its sessions at once. The CSRF token of every form is an HMAC of
//! the session's random nonce under the same key: a page can only post with the token of
//! the session that rendered it.
//!
//! Cookie: `cgs_console=<base64url(payload)>.<base64url(mac)>`, `HttpOnly`,
//! `SameSite=Strict`, `Path=/admin`, `Secure` unless the deployment is on loopback,
//! `Max-Age` = [`TTL`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use shared::app::App;
use shared::crypto::{constant_time_eq, random_token};
use shared::domain::{ApiKeyId, ApiKeyScope, TenantId};
use shared::http::ApiError;
use shared::secrets::names;

pub const COOKIE: &str = "cgs_console";
/// How long a sign-in lasts (absolute, not sliding).
pub const TTL: time::Duration = time::Duration::minutes(30);

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub expires_at: i64,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    t: TenantId,
    k: ApiKeyId,
    e: i64,
    n: String,
}

/// Why a request has no session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie (never signed in, or signed out).
    Missing,
    /// Signed in, but past [`TTL`].
    Expired,
    /// Not one of ours (tampered, another deployment's key), or its API key was revoked.
    Invalid,
}

type HmacSha256 = Hmac<Sha256>;

/// The signing key: derived from the `token-key` secret, so it rotates with it.
async fn signing_key(app: &App) -> Result<Vec<u8>, ApiError> {
    let secret = app
        .secrets
        .get(names::TOKEN_KEY)
        .await?
        .ok_or_else(|| ApiError::internal(&shared::crypto::CryptoError::MissingKey, false))?;
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|e| ApiError::internal(&e, false))?;
    mac.update(b"cgs console session v1");
    Ok(mac.finalize().into_bytes().to_vec())
}

fn mac(key: &[u8], label: &[u8], data: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| ApiError::internal(&e, false))?;
    mac.update(label);
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn csrf_of(key: &[u8], nonce: &str) -> Result<String, ApiError> {
    Ok(B64.encode(mac(key, b"csrf.", nonce.as_bytes())?))
}

/// A new session for this admin key: the cookie's value, and the session.
pub async fn issue(
    app: &App,
    tenant: &TenantId,
    key_id: &ApiKeyId,
) -> Result<(String, Session), ApiError> {
    let key = signing_key(app).await?;
    let expires_at = (app.clock.now() + TTL).unix_timestamp();
    let payload = Payload {
        t: tenant.clone(),
        k: key_id.clone(),
        e: expires_at,
        n: random_token(16),
    };
    let body = B64.encode(serde_json::to_vec(&payload).map_err(|e| ApiError::internal(&e, false))?);
    let sig = B64.encode(mac(&key, b"session.", body.as_bytes())?);
    let session = Session {
        tenant: payload.t,
        key_id: payload.k,
        expires_at,
        csrf: csrf_of(&key, &payload.n)?,
    };
    Ok((format!("{body}.{sig}"), session))
}

/// The session a request's `Cookie` header carries, checked: signature, expiry, and that
/// its API key still exists, belongs to the tenant and has the admin scope.
pub async fn read(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Result<Session, NoSession>, ApiError> {
    let Some(value) = cookie(headers, COOKIE) else {
        return Ok(Err(NoSession::Missing));
    };
    let Some((body, sig)) = value.split_once('.') else {
        return Ok(Err(NoSession::Invalid));
    };
    let key = signing_key(app).await?;
    let expected = mac(&key, b"session.", body.as_bytes())?;
    let Ok(sig) = B64.decode(sig) else {
        return Ok(Err(NoSession::Invalid));
    };
    if !constant_time_eq(&expected, &sig) {
        return Ok(Err(NoSession::Invalid));
    }
    let Some(payload) = B64
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice::<Payload>(&b).ok())
    else {
        return Ok(Err(NoSession::Invalid));
    };
    if payload.e <= app.clock.now().unix_timestamp() {
        return Ok(Err(NoSession::Expired));
    }
    match app.store.get_api_key(&payload.k).await? {
        Some(k) if k.tenant == payload.t && k.scope.allows(ApiKeyScope::Admin) => {}
        _ => return Ok(Err(NoSession::Invalid)),
    }
    Ok(Ok(Session {
        csrf: csrf_of(&key, &payload.n)?,
        tenant: payload.t,
        key_id: payload.k,
        expires_at: payload.e,
    }))
}

impl Session {
    /// Whether a submitted CSRF token is this session's.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

/// One cookie's value from the `Cookie` header(s).
fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that carries a session (or, with `None`, ends it).
pub fn set_cookie(app: &App, value: Option<&str>) -> String {
    let secure = if shared::services::validate::is_loopback(&app.config.public_base_url) {
        ""
    } else {
        "; Secure"
    };
    match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            TTL.whole_seconds()
        ),
        None => format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}
