//! Standard Webhooks signatures: [`sign`] what is sent, [`verify`] what a CRM receives.

use super::MIN_KEY_BYTES;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing secret is not whsec_<base64> of at least {MIN_KEY_BYTES} bytes")]
    MalformedSecret,
    #[error("the webhook id must be non-empty and must not contain '.'")]
    InvalidId,
    #[error("webhook-timestamp is not a Unix time in seconds")]
    MalformedTimestamp,
    #[error("webhook-timestamp is too far from now (replay protection)")]
    TimestampOutOfTolerance,
    #[error("no v1 signature matches")]
    NoMatch,
}

/// The HMAC key of a `whsec_…` secret (the prefix is optional, as in the reference
/// libraries).
pub(super) fn signing_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(super::SECRET_PREFIX).unwrap_or(secret);
    let key = B64
        .decode(encoded.trim())
        .map_err(|_| SignatureError::MalformedSecret)?;
    if key.len() < MIN_KEY_BYTES {
        return Err(SignatureError::MalformedSecret);
    }
    Ok(key)
}

/// The MAC over `{id}.{timestamp}.{body}` (the timestamp as the header carries it).
fn mac_of(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<HmacSha256, SignatureError> {
    if id.is_empty() || id.contains('.') {
        return Err(SignatureError::InvalidId);
    }
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| SignatureError::MalformedSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value for one message: `v1,<base64 HMAC-SHA256>`.
///
/// `secret` is the `whsec_…` signing secret; `id` must not contain `.`; `body` is the exact
/// bytes sent.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let key = signing_key(secret)?;
    let mac = mac_of(&key, id, &timestamp.to_string(), body)?;
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Checks a received webhook as a CRM would: `id`, `timestamp` and `signatures` are the
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` header values, `body` the raw
/// request body (not re-serialized), `now_unix` the receiver's clock.
///
/// The timestamp must be within `tolerance` of `now_unix` (either way); at least one of the
/// space-separated `v1,<base64>` entries must match, compared in constant time. Entries of
/// other schemes (`v1a,…`) and malformed entries are skipped.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let key = signing_key(secret)?;
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if now_unix.abs_diff(sent) > tolerance.as_secs() {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    let mac = mac_of(&key, id, timestamp, body)?;
    let matched = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        // `verify_slice` compares in constant time.
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{DEFAULT_TOLERANCE, SECRET_PREFIX};

    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(
            sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY).unwrap(),
            VECTOR_SIG
        );
        // The prefix is optional, as in the reference libraries.
        assert_eq!(
            sign(
                VECTOR_SECRET.trim_start_matches(SECRET_PREFIX),
                VECTOR_ID,
                VECTOR_TS,
                VECTOR_BODY
            )
            .unwrap(),
            VECTOR_SIG
        );
        verify(
            VECTOR_SECRET,
            VECTOR_ID,
            "1614265330",
            VECTOR_BODY,
            VECTOR_SIG,
            VECTOR_TS + 10,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn verify_accepts_any_matching_signature_and_rejects_the_rest() {
        let ts = "1614265330";
        let check = |sigs: &str, body: &[u8], now: i64| {
            verify(
                VECTOR_SECRET,
                VECTOR_ID,
                ts,
                body,
                sigs,
                now,
                DEFAULT_TOLERANCE,
            )
        };
        let several = format!("v1,bm9wZQ== v1a,AAAA garbage {VECTOR_SIG}");
        assert_eq!(check(&several, VECTOR_BODY, VECTOR_TS), Ok(()));
        assert_eq!(
            check("v1,bm9wZQ==", VECTOR_BODY, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            check(VECTOR_SIG, br#"{"test": 2432232315}"#, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        // The signature of another scheme with the right bytes is not a v1 signature.
        let v1a = VECTOR_SIG.replacen("v1,", "v1a,", 1);
        assert_eq!(
            check(&v1a, VECTOR_BODY, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        // Replay protection, both directions.
        assert_eq!(
            check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS + 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS - 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS + 300), Ok(()));
        for bad_ts in ["", "-1", "16142653e0", "1614265330.5"] {
            assert_eq!(
                verify(
                    VECTOR_SECRET,
                    VECTOR_ID,
                    bad_ts,
                    VECTOR_BODY,
                    VECTOR_SIG,
                    VECTOR_TS,
                    DEFAULT_TOLERANCE
                ),
                Err(SignatureError::MalformedTimestamp),
                "{bad_ts:?}"
            );
        }
        // Another secret does not verify.
        let other = format!("whsec_{}", B64.encode([7u8; 32]));
        assert_eq!(
            verify(
                &other,
                VECTOR_ID,
                ts,
                VECTOR_BODY,
                VECTOR_SIG,
                VECTOR_TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn bad_secrets_and_ids_are_refused() {
        assert_eq!(
            sign("whsec_short", "id", 1, b"{}"),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(
            sign("whsec_!!!", "id", 1, b"{}"),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(
            sign(VECTOR_SECRET, "a.b", 1, b"{}"),
            Err(SignatureError::InvalidId)
        );
        assert_eq!(
            sign(VECTOR_SECRET, "", 1, b"{}"),
            Err(SignatureError::InvalidId)
        );
    }
}
