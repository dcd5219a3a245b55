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

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::app::App;
use shared::crypto::{constant_time_eq, random_token};
use shared::domain::{ApiKeyId, ApiKeyScope, TenantId};
use shared::http::ApiError;
use shared::pages::signed::Signer;
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

/// Why a request has no session (a revoked API key counts as `Invalid`).
pub use shared::pages::signed::Refused as NoSession;

/// The signing key: derived from the `token-key` secret, so it rotates with it.
async fn signing_key(app: &App) -> Result<Signer, ApiError> {
    Signer::load(app, b"cgs console session v1").await
}

const SESSION: &[u8] = b"session.";

fn csrf_of(key: &Signer, nonce: &str) -> Result<String, ApiError> {
    key.tag(b"csrf.", nonce.as_bytes())
}

/// The claims of the cookie `name`, if it is one of ours and of this kind (shape); expiry
/// is the caller's to check.
fn open<T: serde::de::DeserializeOwned>(
    key: &Signer,
    headers: &http::HeaderMap,
    name: &str,
) -> Result<T, NoSession> {
    key.open(
        SESSION,
        shared::pages::post::cookie(headers, name).unwrap_or(""),
    )
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
    let cookie = key.seal(SESSION, &payload)?;
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
    let payload = match open::<Payload>(&key, headers, COOKIE) {
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

async fn operator_mark(app: &App, key: &Signer) -> Result<Option<String>, ApiError> {
    let Some(operator) = app.secrets.get(names::OPERATOR_KEY).await? else {
        return Ok(None);
    };
    Ok(Some(
        key.tag(b"operator.", operator.expose_secret().as_bytes())?,
    ))
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
    key.seal(SESSION, &payload)
}

/// The operator session a request carries, checked: signature, expiry, and that the
/// operator key is still the one it signed in with.
pub async fn read_operator(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Result<OperatorSession, NoSession>, ApiError> {
    let key = signing_key(app).await?;
    let payload = match open::<OperatorPayload>(&key, headers, OPERATOR_COOKIE) {
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

/// A kind of console session: how a request's is read, how it is ended, its CSRF token.
pub trait Kind: Sized + Send {
    fn read(
        app: &App,
        headers: &http::HeaderMap,
    ) -> impl std::future::Future<Output = Result<Result<Self, NoSession>, ApiError>> + Send;
    /// The `Set-Cookie` value that ends it.
    fn ended(app: &App) -> String;
    fn csrf(&self) -> &str;
    /// Whether a submitted CSRF token is this session's.
    fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf().as_bytes()))
    }
}

impl Kind for Session {
    async fn read(
        app: &App,
        headers: &http::HeaderMap,
    ) -> Result<Result<Self, NoSession>, ApiError> {
        read(app, headers).await
    }
    fn ended(app: &App) -> String {
        set_cookie(app, None)
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl Kind for OperatorSession {
    async fn read(
        app: &App,
        headers: &http::HeaderMap,
    ) -> Result<Result<Self, NoSession>, ApiError> {
        read_operator(app, headers).await
    }
    fn ended(app: &App) -> String {
        set_operator_cookie(app, None)
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The `Set-Cookie` value that carries a session (or, with `None`, ends it).
pub fn set_cookie(app: &App, value: Option<&str>) -> String {
    shared::pages::signed::set_cookie(app, COOKIE, "/admin", value, TTL)
}

/// [`set_cookie`] for the operator's session.
pub fn set_operator_cookie(app: &App, value: Option<&str>) -> String {
    shared::pages::signed::set_cookie(app, OPERATOR_COOKIE, "/admin", value, TTL)
}
