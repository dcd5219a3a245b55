//! Random identifiers and tokens.

use base64::Engine;
use rand::Rng;

const BASE32HEX: &[u8] = b"0123456789abcdefghijklmnopqrstuv";

/// A random base32hex id, as Calendar generates for events.
pub fn base32hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| BASE32HEX[rng.gen_range(0..BASE32HEX.len())] as char)
        .collect()
}

/// Whether `id` is a valid client-chosen Calendar event id.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len()) && id.bytes().all(|b| BASE32HEX.contains(&b))
}

/// An opaque url-safe token with `bytes` random bytes.
pub fn token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A random decimal string of `len` digits (no leading zero).
pub fn digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|i| {
            let lo = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.gen_range(lo..10u8))
        })
        .collect()
}

/// A random lowercase hex string.
pub fn hex(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}
