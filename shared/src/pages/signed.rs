//! The signed tokens pages hand out (the console's sessions, the settings links and their
//! sessions): `<base64url(JSON claims)>.<base64url(HMAC-SHA256)>` under a key derived from
//! the deployment's `token-key` secret and a purpose (no new key material, no server-side
//! state; rotating the token key ends them all), and the cookies that carry them.
//! A label per kind of token goes into every MAC, so one kind never passes for another.

use crate::app::App;
use crate::crypto::{constant_time_eq, CryptoError};
use crate::http::ApiError;
use crate::secrets::names;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token (a link, a cookie) opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// None given (never signed in, signed out, no link).
    Missing,
    /// Ours, but past its time.
    Expired,
    /// Not ours: tampered with, truncated, signed under another deployment's (or a rotated)
    /// key — or no longer backed by what signed it in (a revoked key).
    Invalid,
}

/// A signing key for one purpose.
pub struct Signer(Vec<u8>);

fn mac(key: &[u8], label: &[u8], data: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| ApiError::internal(&e, false))?;
    mac.update(label);
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

impl Signer {
    /// The key for `purpose` (say `b"cgs console session v1"`).
    pub async fn load(app: &App, purpose: &[u8]) -> Result<Self, ApiError> {
        let secret = app
            .secrets
            .get(names::TOKEN_KEY)
            .await?
            .ok_or_else(|| ApiError::internal(&CryptoError::MissingKey, false))?;
        Ok(Self(mac(secret.expose_secret().as_bytes(), b"", purpose)?))
    }

    /// base64url(HMAC(key, label ‖ data)): a CSRF token of a nonce, a mark of a key.
    pub fn tag(&self, label: &[u8], data: &[u8]) -> Result<String, ApiError> {
        Ok(B64.encode(mac(&self.0, label, data)?))
    }

    /// `claims` signed under `label`.
    pub fn seal(&self, label: &[u8], claims: &impl Serialize) -> Result<String, ApiError> {
        let body =
            B64.encode(serde_json::to_vec(claims).map_err(|e| ApiError::internal(&e, false))?);
        let sig = self.tag(label, body.as_bytes())?;
        Ok(format!("{body}.{sig}"))
    }

    /// The claims of a token signed under `label`, if it is one of ours and of this shape
    /// (expiry is the caller's to check, against the app's clock).
    pub fn open<T: DeserializeOwned>(&self, label: &[u8], token: &str) -> Result<T, Refused> {
        if token.is_empty() {
            return Err(Refused::Missing);
        }
        let (body, sig) = token.split_once('.').ok_or(Refused::Invalid)?;
        let expected = mac(&self.0, label, body.as_bytes()).map_err(|_| Refused::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| Refused::Invalid)?;
        if !constant_time_eq(&expected, &sig) {
            return Err(Refused::Invalid);
        }
        B64.decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Refused::Invalid)
    }
}

/// The `Set-Cookie` value that carries a session token (or, with `None`, ends it):
/// `HttpOnly; SameSite=Strict`, scoped to `path`, `Secure` unless the deployment is on
/// loopback.
pub fn set_cookie(
    app: &App,
    name: &str,
    path: &str,
    value: Option<&str>,
    ttl: time::Duration,
) -> String {
    let secure = if app.local { "" } else { "; Secure" };
    let (value, age) = match value {
        Some(v) => (v, ttl.whole_seconds()),
        None => ("", 0),
    };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_under_its_own_key_and_label() {
        let a = Signer(vec![1; 32]);
        let b = Signer(vec![2; 32]);
        let token = a.seal(b"link.", &serde_json::json!({"u": "jane"})).unwrap();
        let claims: serde_json::Value = a.open(b"link.", &token).unwrap();
        assert_eq!(claims["u"], "jane");
        assert_eq!(
            a.open::<serde_json::Value>(b"session.", &token),
            Err(Refused::Invalid)
        );
        assert_eq!(
            b.open::<serde_json::Value>(b"link.", &token),
            Err(Refused::Invalid)
        );
        assert_eq!(
            a.open::<serde_json::Value>(b"link.", ""),
            Err(Refused::Missing)
        );
        let (body, sig) = token.split_once('.').unwrap();
        let forged = format!("{}.{sig}", B64.encode(br#"{"u":"bob"}"#));
        assert_eq!(
            a.open::<serde_json::Value>(b"link.", &forged),
            Err(Refused::Invalid)
        );
        assert_eq!(
            a.open::<serde_json::Value>(b"link.", body),
            Err(Refused::Invalid)
        );
    }
}
