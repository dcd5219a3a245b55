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
//!
//! The operator signs in with the operator key to a session of its own (`cgs_operator`, same
//! form and attributes): it names no tenant and opens only the tenant list; it holds a MAC of
//! the operator key it signed in with, so a new `operator-key` secret ends it at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// A signed cookie value for `payload`: `<base64url(json)>.<base64url(mac)>`.
fn seal(key: &[u8], payload: &impl Serialize) -> Result<String, ApiError> {
    let body = B64.encode(serde_json::to_vec(payload).map_err(|e| ApiError::internal(&e, false))?);
    let sig = B64.encode(mac(key, b"session.", body.as_bytes())?);
    Ok(format!("{body}.{sig}"))
}

/// The payload of the cookie `name`, if it is one of ours (signature) and of this kind
/// (shape); expiry is the caller's to check.
fn open<T: serde::de::DeserializeOwned>(
    key: &[u8],
    headers: &http::HeaderMap,
    name: &str,
) -> Result<Result<T, NoSession>, ApiError> {
    let Some(value) = shared::pages::post::cookie(headers, name) else {
        return Ok(Err(NoSession::Missing));
    };
    let Some((body, sig)) = value.split_once('.') else {
        return Ok(Err(NoSession::Invalid));
    };
    let expected = mac(key, b"session.", body.as_bytes())?;
    let Ok(sig) = B64.decode(sig) else {
        return Ok(Err(NoSession::Invalid));
    };
    if !constant_time_eq(&expected, &sig) {
        return Ok(Err(NoSession::Invalid));
    }
    Ok(B64
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice::<T>(&b).ok())
        .ok_or(NoSession::Invalid))
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
    let cookie = seal(&key, &payload)?;
    let session = Session {
        tenant: payload.t,
        key_id: payload.k,
        expires_at,
        csrf: csrf_of(&key, &payload.n)?,
    };
    Ok((cookie, session))
}

/// The session a request's `Cookie` header carries, checked: signature, expiry, and that
/// its API key still exists, belongs to the tenant and has the admin scope.
pub async fn read(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Result<Session, NoSession>, ApiError> {
    let key = signing_key(app).await?;
    let payload = match open::<Payload>(&key, headers, COOKIE)? {
        Ok(p) => p,
        Err(no) => return Ok(Err(no)),
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

// ---- the operator's session ----------------------------------------------------------------

/// The operator's session cookie (its own name: an operator is no tenant's admin).
pub const OPERATOR_COOKIE: &str = "cgs_operator";

/// A signed-in operator: sees the tenant list and creates tenants, nothing of any tenant.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub expires_at: i64,
    pub csrf: String,
}

#[derive(Serialize, Deserialize)]
struct OperatorPayload {
    /// A MAC of the operator key the session signed in with (never the key): rotating the
    /// `operator-key` secret ends every operator session at once.
    o: String,
    e: i64,
    n: String,
}

/// Whether `key` is the operator key (digests compared in constant time).
pub async fn is_operator_key(app: &App, key: &str) -> Result<bool, ApiError> {
    let Some(expected) = app.secrets.get(names::OPERATOR_KEY).await? else {
        return Ok(false);
    };
    let a = Sha256::digest(key.as_bytes());
    let b = Sha256::digest(expected.expose_secret().as_bytes());
    Ok(constant_time_eq(&a, &b))
}

async fn operator_mark(app: &App, key: &[u8]) -> Result<Option<String>, ApiError> {
    let Some(operator) = app.secrets.get(names::OPERATOR_KEY).await? else {
        return Ok(None);
    };
    Ok(Some(B64.encode(mac(
        key,
        b"operator.",
        operator.expose_secret().as_bytes(),
    )?)))
}

/// A new operator session (call only after [`is_operator_key`]).
pub async fn issue_operator(app: &App) -> Result<String, ApiError> {
    let key = signing_key(app).await?;
    let o = operator_mark(app, &key)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid operator key"))?;
    let payload = OperatorPayload {
        o,
        e: (app.clock.now() + TTL).unix_timestamp(),
        n: random_token(16),
    };
    seal(&key, &payload)
}

/// The operator session a request carries, checked: signature, expiry, and that the
/// operator key is still the one it signed in with.
pub async fn read_operator(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Result<OperatorSession, NoSession>, ApiError> {
    let key = signing_key(app).await?;
    let payload = match open::<OperatorPayload>(&key, headers, OPERATOR_COOKIE)? {
        Ok(p) => p,
        Err(no) => return Ok(Err(no)),
    };
    if payload.e <= app.clock.now().unix_timestamp() {
        return Ok(Err(NoSession::Expired));
    }
    let current = operator_mark(app, &key).await?;
    if !current.is_some_and(|m| constant_time_eq(m.as_bytes(), payload.o.as_bytes())) {
        return Ok(Err(NoSession::Invalid));
    }
    Ok(Ok(OperatorSession {
        expires_at: payload.e,
        csrf: csrf_of(&key, &payload.n)?,
    }))
}

impl OperatorSession {
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

impl Session {
    /// Whether a submitted CSRF token is this session's.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The `Set-Cookie` value that carries a session (or, with `None`, ends it).
pub fn set_cookie(app: &App, value: Option<&str>) -> String {
    set_named_cookie(app, COOKIE, value)
}

/// [`set_cookie`] for the operator's session.
pub fn set_operator_cookie(app: &App, value: Option<&str>) -> String {
    set_named_cookie(app, OPERATOR_COOKIE, value)
}

fn set_named_cookie(app: &App, name: &str, value: Option<&str>) -> String {
    let secure = if shared::services::validate::is_loopback(&app.config.public_base_url) {
        ""
    } else {
        "; Secure"
    };
    match value {
        Some(v) => format!(
            "{name}={v}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            TTL.whole_seconds()
        ),
        None => format!("{name}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}
