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
