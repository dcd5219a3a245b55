//! Time as a port, so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;

    /// Seconds since the Unix epoch (what DynamoDB's TTL attribute holds).
    fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock tests set and advance by hand (millisecond resolution).
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        let millis = (start.unix_timestamp_nanos() / 1_000_000) as i64;
        Self {
            millis: Arc::new(AtomicI64::new(millis)),
        }
    }

    pub fn advance(&self, by: time::Duration) {
        self.millis
            .fetch_add(by.whole_milliseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let millis = self.millis.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// RFC 3339 text of a time (how the API shows every time).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The monotonic instant of a wall-clock deadline in epoch milliseconds (a Lambda
/// invocation's `context.deadline`); a deadline already past is now.
pub fn instant_at_epoch_ms(deadline_ms: u64) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    let left = std::time::Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX));
    std::time::Instant::now() + left
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    #[test]
    fn a_deadline_in_epoch_milliseconds_becomes_an_instant() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let soon = instant_at_epoch_ms(now_ms + 30_000);
        let left = soon.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(29) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        let past = instant_at_epoch_ms(now_ms.saturating_sub(5_000));
        assert!(past <= Instant::now() + Duration::from_millis(5));
    }
}
