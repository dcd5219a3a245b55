//! The one backoff policy for every Google call: exponential backoff with full jitter
//! (AWS Architecture Blog, "Exponential Backoff And Jitter"; Google's own guidance for
//! `rateLimitExceeded` / 429 / 5xx), retrying only [`GoogleError::Transient`] and honouring
//! `Retry-After`.
//!
//! `Retry-After` travels in a side channel rather than in the error: `with_retry` opens a
//! task-local slot around each attempt and the HTTP layer calls [`note_retry_after`] when a
//! 429/503 carries the header. `GoogleError::Transient` keeps its shape, so nothing that
//! already matches on it changes.
//!
//! The ambient policy is [`RetryPolicy::current`]: the default in production, replaceable for
//! a scope with [`with_policy`] (tests use tiny delays that way).

use super::GoogleError;
use rand::Rng;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

/// How a failed Google call is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the first backoff; doubled per retry.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Longest `Retry-After` the policy waits out; a longer one ends the retries and the
    /// error goes to the caller (the job queue retries later, Lambda time is not burnt).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(32),
            max_attempts: 5,
            max_retry_after: Duration::from_secs(32),
        }
    }
}

impl RetryPolicy {
    /// Tiny delays for tests (1 ms base, 4 ms cap); `Retry-After` up to 2 s is still honoured.
    pub fn for_tests(max_attempts: u32) -> Self {
        Self {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            max_attempts,
            max_retry_after: Duration::from_secs(2),
        }
    }

    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The ambient policy: the one set by [`with_policy`] around this task, else the default.
    pub fn current() -> Self {
        POLICY.try_with(Clone::clone).unwrap_or_default()
    }

    /// Upper bound of the wait before retry number `retry` (0 = the first retry):
    /// `min(cap, base · 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `retry`, given `unit` drawn uniformly from `[0, 1)`:
    /// full jitter (`unit · ceiling`), but never shorter than Google's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let jittered = self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(at_least) => jittered.max(at_least),
            None => jittered,
        }
    }
}

tokio::task_local! {
    static POLICY: RetryPolicy;
    static RETRY_AFTER: Cell<Option<Duration>>;
}

/// Runs `fut` with `policy` as the ambient [`RetryPolicy::current`].
pub async fn with_policy<F: Future>(policy: RetryPolicy, fut: F) -> F::Output {
    POLICY.scope(policy, fut).await
}

/// Records Google's `Retry-After` for the attempt in progress (no-op outside `with_retry`).
pub fn note_retry_after(wait: Duration) {
    let _ = RETRY_AFTER.try_with(|slot| slot.set(Some(wait)));
}

/// `Retry-After` of a 429 or 503 answer, in delta-seconds (the form Google sends).
pub fn retry_after(status: u16, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if status != 429 && status != 503 {
        return None;
    }
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Runs `op` until it succeeds, fails with a non-transient error, or `policy` gives up.
/// Only [`GoogleError::Transient`] is retried; every other error is returned at once.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, GoogleError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, GoogleError>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut retry = 0u32;
    loop {
        let (result, retry_after) = RETRY_AFTER
            .scope(Cell::new(None), async {
                let result = op().await;
                (result, RETRY_AFTER.with(Cell::get))
            })
            .await;
        let error = match result {
            Err(e) if e.is_transient() => e,
            done => return done,
        };
        if retry + 1 >= attempts {
            tracing::warn!(error = %error, attempts, "Google call failed; giving up");
            return Err(error);
        }
        if retry_after.is_some_and(|wait| wait > policy.max_retry_after) {
            tracing::warn!(error = %error, ?retry_after, "Google asks for a long pause; giving up");
            return Err(error);
        }
        let unit: f64 = rand::thread_rng().gen();
        let wait = policy.delay(retry, retry_after, unit);
        tracing::info!(
            error = %error,
            attempt = retry + 1,
            wait_ms = wait.as_millis() as u64,
            "Google call failed; retrying"
        );
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::api::classify_status;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let ceilings: Vec<Duration> = (0..10).map(|r| p.ceiling(r)).collect();
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000].map(ms)
        );
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(32));
        assert_eq!(p.ceiling(64), Duration::from_secs(32));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(2, None, 0.5), ms(500));
        assert!(p.delay(3, None, 0.999_999) <= ms(2000));
        assert!(p.delay(3, None, 0.999_999) > ms(1990));
        // Out-of-range samples are clamped, never exceed the cap.
        assert_eq!(p.delay(20, None, 7.0), Duration::from_secs(32));
        assert_eq!(p.delay(1, None, -1.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 0.9),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(6, Some(ms(10)), 0.5), Duration::from_secs(8));
    }

    #[test]
    fn retry_after_only_on_429_and_503() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(429, &h), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(503, &h), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(500, &h), None);
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(429, &h), None);
    }

    #[test]
    fn new_statuses_are_classified() {
        assert!(matches!(
            classify_status(404, br#"{"error":{"errors":[{"reason":"notFound"}]}}"#),
            GoogleError::NotFound(ref r) if r == "notFound"
        ));
        assert!(matches!(
            classify_status(409, br#"{"error":{"errors":[{"reason":"duplicate"}]}}"#),
            GoogleError::Conflict(ref r) if r == "duplicate"
        ));
        assert!(matches!(
            classify_status(
                412,
                br#"{"error":{"errors":[{"reason":"conditionNotMet"}]}}"#
            ),
            GoogleError::PreconditionFailed(_)
        ));
        assert!(matches!(
            classify_status(410, br#"{"error":{"errors":[{"reason":"fullSyncRequired"}]}}"#),
            GoogleError::Gone(ref r) if r == "fullSyncRequired"
        ));
        let user_rate = br#"{"error":{"errors":[{"reason":"userRateLimitExceeded"}]}}"#;
        assert!(classify_status(403, user_rate).is_transient());
        // The user's Calendar usage limits last hours: a pause, not a retry.
        let usage = br#"{"error":{"errors":[{"reason":"quotaExceeded"}]}}"#;
        let e = classify_status(403, usage);
        assert!(!e.is_transient() && e.is_pass_level(), "{e:?}");
    }

    async fn run(policy: &RetryPolicy, fail_times: u32, error: fn() -> GoogleError) -> (u32, bool) {
        let calls = AtomicU32::new(0);
        let result = with_retry(policy, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < fail_times {
                Err(error())
            } else {
                Ok(n)
            }
        })
        .await;
        (calls.load(Ordering::SeqCst), result.is_ok())
    }

    #[tokio::test]
    async fn retries_transient_errors_only() {
        let p = RetryPolicy::for_tests(5);
        let transient = || GoogleError::Transient("HTTP 503 backendError".into());
        assert_eq!(run(&p, 2, transient).await, (3, true));
        assert_eq!(run(&p, 10, transient).await, (5, false));
        assert_eq!(
            run(&p.clone().with_max_attempts(0), 10, transient).await,
            (1, false)
        );
        let rejected = || GoogleError::Rejected {
            status: 403,
            reason: "insufficientPermissions".into(),
        };
        assert_eq!(run(&p, 3, rejected).await, (1, false));
        assert_eq!(
            run(&p, 3, || GoogleError::Conflict("duplicate".into())).await,
            (1, false)
        );
        assert_eq!(
            run(&p, 3, || GoogleError::Reauth("invalid_grant".into())).await,
            (1, false)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_gives_up_on_long_ones() {
        let p = RetryPolicy::for_tests(3);
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let got = with_retry(&p, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                note_retry_after(Duration::from_secs(1));
                Err(GoogleError::Transient("HTTP 429".into()))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(got.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(1));

        let calls = AtomicU32::new(0);
        let got: Result<(), _> = with_retry(&p, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            note_retry_after(Duration::from_secs(60));
            Err(GoogleError::Transient("HTTP 429".into()))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ambient_policy_is_scoped() {
        assert_eq!(RetryPolicy::current(), RetryPolicy::default());
        let inner = with_policy(RetryPolicy::for_tests(2), async { RetryPolicy::current() }).await;
        assert_eq!(inner, RetryPolicy::for_tests(2));
    }
}
