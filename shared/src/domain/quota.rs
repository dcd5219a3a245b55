//! A tenant's Google call budget, as stored (a token bucket; the pacing is
//! [`crate::services::quota`]'s).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The stored bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    /// When `tokens` was computed, Unix milliseconds.
    pub at_ms: i64,
}

impl Bucket {
    /// Pure: the bucket refilled to `now_ms` at `rate` per second, capped at `burst`.
    pub fn refilled(self, now_ms: i64, rate: f64, burst: u32) -> Bucket {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        Bucket {
            tokens: (self.tokens + elapsed * rate).min(f64::from(burst)),
            at_ms: now_ms.max(self.at_ms),
        }
    }

    /// Pure: how long until one whole token is there.
    pub fn wait_for_one(self, rate: f64) -> Duration {
        if self.tokens >= 1.0 || rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / rate)
    }
}
