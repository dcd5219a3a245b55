//! Hosted user settings: the signed link the CRM asks for (`POST
//! /v1/users/{user}/settings-link`) and the short-lived session it opens in the user's
//! browser. No server-side state and no new key material: both are HMAC-SHA256 tokens under
//! a key derived from the deployment's `token-key` secret (as the admin console's session
//! is), with different labels, so a link is never a session and neither is a console
//! session.
//!
//! * Link: `{public_base_url}/settings/open?link=<base64url(claims)>.<base64url(mac)>`,
//!   valid [`LINK_TTL`]; names the tenant, the user, the CRM's return URL (checked against
//!   the tenant's allow-list, as connect links are), the page language and the Google account
//!   to connect (`login_hint`), if the CRM gave them.
//! * Session: the cookie [`COOKIE`] with the same claims and a fresh nonce, valid
//!   [`SESSION_TTL`] from the opening (absolute), `HttpOnly; SameSite=Strict;
//!   Path=/settings`, `Secure` unless the deployment is on loopback. Every form carries the
//!   session's CSRF token: HMAC("csrf." + nonce).
//!
//! The tenant and user of every page come from the verified claims only: there is no user
//! in any settings URL or form, so a link for one user can neither read nor change another.

use super::validate::email;
use crate::app::App;
use crate::crypto::{constant_time_eq, random_token};
use crate::domain::{TenantId, UserId};
use crate::http::ApiError;
use crate::pages::signed::Signer;
use crate::pages::Lang;
use serde::{Deserialize, Serialize};

/// How long a settings link can be opened.
pub const LINK_TTL: time::Duration = time::Duration::minutes(15);
/// How long a session lasts once the link is opened (absolute, not sliding).
pub const SESSION_TTL: time::Duration = time::Duration::minutes(30);
/// The session cookie.
pub const COOKIE: &str = "cgs_settings";
/// Where the settings pages live (the cookie's `Path`).
pub const PATH: &str = "/settings";

/// What the CRM asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Where "Back to the CRM" leads: one of the tenant's allowed return URLs (or below one).
    #[serde(default)]
    pub return_url: Option<String>,
    /// The page language (`en`, `vi`, `ja`, `ru`, `cs`); the browser's otherwise.
    #[serde(default)]
    pub language: Option<String>,
    /// The e-mail of the Google account the user should connect, enforced as connect links'
    /// `login_hint` is.
    #[serde(default)]
    pub login_hint: Option<String>,
}

/// The answer: the URL to open for the user, and until when it can be opened.
#[derive(Debug, Serialize)]
pub struct SettingsLink {
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    t: TenantId,
    u: UserId,
    /// Expiry, Unix seconds.
    e: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    /// Random: makes every token distinct; a session's CSRF token derives from it.
    n: String,
}

/// A user's open settings session.
#[derive(Debug, Clone)]
pub struct UserSession {
    pub tenant: TenantId,
    pub user: UserId,
    pub return_url: Option<String>,
    pub lang: Option<Lang>,
    pub login_hint: Option<String>,
    pub expires_at: i64,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    claims: Claims,
}

impl UserSession {
    /// Whether a submitted CSRF token is this session's.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| constant_time_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

pub use crate::pages::signed::Refused;

/// The key of links and sessions.
async fn signing_key(app: &App) -> Result<Signer, ApiError> {
    Signer::load(app, b"cgs user settings v1").await
}

const LINK: &[u8] = b"link.";
const SESSION: &[u8] = b"session.";

fn verify(app: &App, key: &Signer, label: &[u8], token: &str) -> Result<Claims, Refused> {
    let claims: Claims = key.open(label, token)?;
    if claims.e <= app.clock.now().unix_timestamp() {
        return Err(Refused::Expired);
    }
    Ok(claims)
}

fn link_url(app: &App, token: &str) -> String {
    format!("{}{PATH}/open?link={token}", app.config.public_base_url)
}

fn expires(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .map(crate::clock::rfc3339)
        .unwrap_or_default()
}

/// A settings link for one user of the caller's tenant (the CRM opens it for the user).
pub async fn issue(
    app: &App,
    t: &TenantId,
    u: &UserId,
    req: LinkRequest,
) -> Result<SettingsLink, ApiError> {
    let tenant = super::tenants::get(app, t).await?;
    let return_url = req
        .return_url
        .as_deref()
        .map(|r| super::connect::allowed_return_url(&tenant.settings, r))
        .transpose()?;
    let lang = match req.language.as_deref() {
        None => None,
        Some(tag) => Some(
            Lang::from_tag(tag)
                .ok_or_else(|| {
                    ApiError::invalid("language: one of en, vi, ja, ru, cs (or leave it out)")
                })?
                .tag()
                .to_owned(),
        ),
    };
    let login_hint = req
        .login_hint
        .as_deref()
        .map(|h| email("login_hint", h))
        .transpose()?;
    let key = signing_key(app).await?;
    let claims = Claims {
        t: t.clone(),
        u: u.clone(),
        e: (app.clock.now() + LINK_TTL).unix_timestamp(),
        r: return_url,
        l: lang,
        h: login_hint,
        n: random_token(16),
    };
    let token = key.seal(LINK, &claims)?;
    tracing::info!(tenant = %t, user = %u, "settings link issued");
    Ok(SettingsLink {
        url: link_url(app, &token),
        expires_at: expires(claims.e),
    })
}

fn session_of(key: &Signer, claims: Claims) -> Result<UserSession, ApiError> {
    Ok(UserSession {
        tenant: claims.t.clone(),
        user: claims.u.clone(),
        return_url: claims.r.clone(),
        lang: claims.l.as_deref().and_then(Lang::from_tag),
        login_hint: claims.h.clone(),
        expires_at: claims.e,
        csrf: key.tag(b"csrf.", claims.n.as_bytes())?,
        claims,
    })
}

/// Opens a link: a new session (the cookie's value, and the session), or why not.
pub async fn open(
    app: &App,
    link: &str,
) -> Result<Result<(String, UserSession), Refused>, ApiError> {
    let key = signing_key(app).await?;
    let claims = match verify(app, &key, LINK, link) {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    let claims = Claims {
        e: (app.clock.now() + SESSION_TTL).unix_timestamp(),
        n: random_token(16),
        ..claims
    };
    let cookie = key.seal(SESSION, &claims)?;
    tracing::info!(tenant = %claims.t, user = %claims.u, "settings session opened");
    Ok(Ok((cookie, session_of(&key, claims)?)))
}

/// The session a request's cookie carries, checked (signature, expiry).
pub async fn read(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Result<UserSession, Refused>, ApiError> {
    let Some(value) = crate::pages::post::cookie(headers, COOKIE) else {
        return Ok(Err(Refused::Missing));
    };
    let key = signing_key(app).await?;
    match verify(app, &key, SESSION, value) {
        Ok(claims) => Ok(Ok(session_of(&key, claims)?)),
        Err(why) => Ok(Err(why)),
    }
}

/// A fresh link for the same user, tenant, return URL and language: where Google's consent
/// sends the browser back to (via the callback). A `SameSite=Strict` cookie is not sent on a
/// redirect chain that started at Google, so the way back opens a session again instead.
pub async fn relink(app: &App, s: &UserSession) -> Result<String, ApiError> {
    let key = signing_key(app).await?;
    let claims = Claims {
        e: (app.clock.now() + LINK_TTL).unix_timestamp(),
        n: random_token(16),
        ..s.claims.clone()
    };
    Ok(link_url(app, &key.seal(LINK, &claims)?))
}

/// The `Set-Cookie` value that carries a session (or, with `None`, ends it).
pub fn set_cookie(app: &App, value: Option<&str>) -> String {
    crate::pages::signed::set_cookie(app, COOKIE, PATH, value, SESSION_TTL)
}
