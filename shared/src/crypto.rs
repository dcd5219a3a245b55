//! Token encryption at rest, key hashing, constant-time comparison, random tokens.
//!
//! Refresh tokens are sealed with AES-256-GCM. The keys live in the secrets port under
//! `token-key` as JSON: `{"current": "k1", "k1": "<key material>", "k2": "…"}`; each key is
//! SHA-256 of its material (so a generated random string of any length ≥ 32 is a fine key).
//! A ciphertext names its key (`v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`), so
//! rotating is: add `k2`, wait past the instances' 5-minute secrets cache, point `current`
//! at it; old ciphertexts still open with `k1`, and are re-sealed with `k2` at the account's
//! next token refresh (README, "Operate": rotating the token key). An instance that meets a
//! key it does not know yet reloads the set once ([`TokenCipher::reload`]).
//! The associated data binds a ciphertext to its tenant and account: a token copied to
//! another account does not decrypt.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

use crate::domain::{AccountId, TenantId};
use crate::secrets::{names, Secrets};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the token-key secret is missing")]
    MissingKey,
    #[error("the token-key secret is malformed: {0}")]
    MalformedKey(&'static str),
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext uses unknown key {0}")]
    UnknownKey(String),
    #[error("ciphertext does not open (wrong key or associated data, or tampered)")]
    Open,
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// Seals and opens refresh tokens.
pub struct TokenCipher {
    current: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl TokenCipher {
    /// Parses the `token-key` secret.
    pub fn from_secret(secret: &SecretString) -> Result<Self, CryptoError> {
        let map: BTreeMap<String, String> = serde_json::from_str(secret.expose_secret())
            .map_err(|_| CryptoError::MalformedKey("not a JSON object of strings"))?;
        let current = map
            .get("current")
            .cloned()
            .ok_or(CryptoError::MalformedKey("no \"current\" key id"))?;
        let mut keys = BTreeMap::new();
        for (id, material) in map.iter().filter(|(k, _)| k.as_str() != "current") {
            if material.len() < 32 {
                return Err(CryptoError::MalformedKey(
                    "key material must be at least 32 characters",
                ));
            }
            if id.is_empty() || id.contains('.') {
                return Err(CryptoError::MalformedKey(
                    "key ids must be non-empty, without '.'",
                ));
            }
            let key = Sha256::digest(material.as_bytes());
            let cipher = Aes256Gcm::new_from_slice(&key)
                .map_err(|_| CryptoError::MalformedKey("bad key length"))?;
            keys.insert(id.clone(), cipher);
        }
        if !keys.contains_key(&current) {
            return Err(CryptoError::MalformedKey("\"current\" names no key"));
        }
        Ok(Self { current, keys })
    }

    /// Loads the keys from the secrets port.
    pub async fn load(secrets: &dyn Secrets) -> Result<Self, CryptoError> {
        let secret = secrets
            .get(names::TOKEN_KEY)
            .await?
            .ok_or(CryptoError::MissingKey)?;
        Self::from_secret(&secret)
    }

    /// The keys as they are now, past this process's secrets cache: after a ciphertext named
    /// a key this instance does not know yet (another instance already seals with a key
    /// added since this one loaded the set).
    pub async fn reload(secrets: &dyn Secrets) -> Result<Self, CryptoError> {
        secrets.forget(names::TOKEN_KEY).await;
        Self::load(secrets).await
    }

    /// Whether `sealed` was sealed with the current key (else re-seal it when it is next
    /// written, so old keys can be retired).
    pub fn is_current(&self, sealed: &str) -> bool {
        let mut parts = sealed.splitn(3, '.');
        matches!((parts.next(), parts.next()), (Some("v1"), Some(kid)) if kid == self.current)
    }

    /// A fresh `token-key` secret value with one random key.
    pub fn generate_secret() -> SecretString {
        let value = serde_json::json!({"current": "k1", "k1": random_token(32)});
        SecretString::from(value.to_string())
    }

    fn aad(tenant: &TenantId, account: &AccountId) -> Vec<u8> {
        format!("crm-google-sync/token/{tenant}/{account}").into_bytes()
    }

    pub fn seal(
        &self,
        plaintext: &SecretString,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<String, CryptoError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or_else(|| CryptoError::UnknownKey(self.current.clone()))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = Self::aad(tenant, account);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("v1.{}.{}", self.current, B64.encode(blob)))
    }

    pub fn open(
        &self,
        sealed: &str,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<SecretString, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let cipher = self
            .keys
            .get(kid)
            .ok_or_else(|| CryptoError::UnknownKey(kid.to_owned()))?;
        let blob = B64.decode(body).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let aad = Self::aad(tenant, account);
        let pt = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| CryptoError::Open)?;
        let text = String::from_utf8(pt).map_err(|_| CryptoError::Malformed)?;
        Ok(SecretString::from(text))
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, AccountId) {
        (TenantId::parse("acme").unwrap(), AccountId::generate())
    }

    #[test]
    fn ciphertexts_tell_whether_they_use_the_current_key() {
        let k1 = random_token(32);
        let one = TokenCipher::from_secret(&SecretString::from(
            serde_json::json!({"current": "k1", "k1": k1}).to_string(),
        ))
        .unwrap();
        let two = TokenCipher::from_secret(&SecretString::from(
            serde_json::json!({"current": "k2", "k1": k1, "k2": random_token(32)}).to_string(),
        ))
        .unwrap();
        let (t, a) = ids();
        let old = one.seal(&SecretString::from("x"), &t, &a).unwrap();
        assert!(one.is_current(&old) && !two.is_current(&old));
        assert_eq!(two.open(&old, &t, &a).unwrap().expose_secret(), "x");
        assert!(two.is_current(&two.seal(&SecretString::from("x"), &t, &a).unwrap()));
        assert!(!two.is_current("garbage"));
    }

    #[test]
    fn seal_and_open() {
        let c = TokenCipher::from_secret(&TokenCipher::generate_secret()).unwrap();
        let (t, a) = ids();
        let token = SecretString::from("1//refresh-token-value");
        let sealed = c.seal(&token, &t, &a).unwrap();
        assert!(!sealed.contains("refresh-token-value"));
        assert!(sealed.starts_with("v1.k1."));
        assert_eq!(
            c.open(&sealed, &t, &a).unwrap().expose_secret(),
            "1//refresh-token-value"
        );
        // Another account or tenant cannot open it.
        assert!(matches!(
            c.open(&sealed, &t, &AccountId::generate()),
            Err(CryptoError::Open)
        ));
        let other = TenantId::parse("other").unwrap();
        assert!(matches!(
            c.open(&sealed, &other, &a),
            Err(CryptoError::Open)
        ));
        // Tampering is detected.
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(c.open(&bad, &t, &a).is_err());
        assert!(matches!(
            c.open("v2.k1.xx", &t, &a),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let k1 = "a".repeat(40);
        let old = TokenCipher::from_secret(&SecretString::from(
            serde_json::json!({"current": "k1", "k1": k1}).to_string(),
        ))
        .unwrap();
        let (t, a) = ids();
        let sealed = old.seal(&SecretString::from("tok"), &t, &a).unwrap();
        let new = TokenCipher::from_secret(&SecretString::from(
            serde_json::json!({"current": "k2", "k1": k1, "k2": "b".repeat(40)}).to_string(),
        ))
        .unwrap();
        assert_eq!(new.open(&sealed, &t, &a).unwrap().expose_secret(), "tok");
        assert!(new
            .seal(&SecretString::from("tok"), &t, &a)
            .unwrap()
            .starts_with("v1.k2."));
    }

    #[test]
    fn malformed_key_secrets_are_rejected() {
        for bad in [
            "not json",
            r#"{"k1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            r#"{"current": "k2", "k1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
            r#"{"current": "k1", "k1": "short"}"#,
        ] {
            assert!(
                TokenCipher::from_secret(&SecretString::from(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(random_token(32).len(), 43);
        assert_ne!(random_token(16), random_token(16));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
