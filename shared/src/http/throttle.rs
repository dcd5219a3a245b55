//! Per-tenant request throttling of the authenticated API (review finding 31): a token
//! bucket per tenant in each function instance (its [`App`](crate::app::App)'s [`Throttle`]). API Gateway's stage and route limits are
//! shared by every tenant; this keeps one tenant's bulk traffic from taking them (and the
//! functions' concurrency) from the others. An instance serves one request at a time, so a
//! tenant gets at most `rate` × (the instances serving it) — a bound per instance, not a
//! global quota: API Gateway's limits stay the global one.
//!
//! `TENANT_API_RATE` = `<requests per second>/<burst>` (default `50/200`); `off` disables it.
//! Local deployments (a loopback `PUBLIC_BASE_URL`) are not throttled unless it is set. It is
//! read when the App is built.

use super::ApiError;
use crate::domain::TenantId;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The default: 50 requests a second per tenant and instance, bursts of 200.
pub const DEFAULT_RATE: (f64, f64) = (50.0, 200.0);

/// How many tenants' buckets an instance keeps before dropping the full ones.
const MAX_TENANTS: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

fn parse(value: &str) -> Option<Option<(f64, f64)>> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let (rate, burst) = value.trim().split_once('/')?;
    let (rate, burst): (f64, f64) = (rate.trim().parse().ok()?, burst.trim().parse().ok()?);
    (rate > 0.0 && burst >= 1.0 && rate.is_finite() && burst.is_finite())
        .then_some(Some((rate, burst)))
}

/// The limits in force: `TENANT_API_RATE` (`setting`), else the default outside local
/// deployments.
fn limits(setting: Option<&str>, local: bool) -> Option<(f64, f64)> {
    match setting {
        Some(v) => parse(v).unwrap_or_else(|| {
            tracing::error!(value = %v, "TENANT_API_RATE is not <rate>/<burst> or off; the default applies");
            Some(DEFAULT_RATE)
        }),
        None if local => None,
        None => Some(DEFAULT_RATE),
    }
}

/// The tenants' buckets of one App, and the limits they refill by.
#[derive(Debug)]
pub struct Throttle {
    limits: Option<(f64, f64)>,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl Throttle {
    /// `TENANT_API_RATE` from the environment, for a deployment that is `local` or not.
    pub fn from_env(local: bool) -> Self {
        Self::new(limits(
            std::env::var("TENANT_API_RATE").ok().as_deref(),
            local,
        ))
    }

    /// At most `rate` requests a second per tenant, bursts of `burst` (`None`: no limit).
    pub fn new(limits: Option<(f64, f64)>) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from the tenant's bucket, or answers 429 with the seconds until one
    /// is free (and counts `TenantRequestsThrottled`).
    pub fn admit(&self, tenant: &TenantId, metrics: &Metrics) -> Result<(), ApiError> {
        let Some((rate, burst)) = self.limits else {
            return Ok(());
        };
        let Err(wait) = self.take(tenant, rate, burst) else {
            return Ok(());
        };
        metrics.count("TenantRequestsThrottled", &[], 1);
        Err(ApiError::new(
            http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this tenant; retry in {wait} s (Retry-After)"),
        )
        .with_retry_after(wait))
    }

    /// One token from the tenant's bucket, or the whole seconds until there is one.
    fn take(&self, tenant: &TenantId, rate: f64, burst: f64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if buckets.len() >= MAX_TENANTS && !buckets.contains_key(tenant) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(parse("50/200"), Some(Some((50.0, 200.0))));
        assert_eq!(parse(" 2.5 / 10 "), Some(Some((2.5, 10.0))));
        assert_eq!(parse("off"), Some(None));
        for bad in ["", "50", "0/10", "5/0", "x/y", "-1/5"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_in_force() {
        assert_eq!(limits(None, true), None, "local: unthrottled unless set");
        assert_eq!(limits(None, false), Some(DEFAULT_RATE));
        assert_eq!(limits(Some("off"), false), None);
        assert_eq!(limits(Some("5/10"), true), Some((5.0, 10.0)));
        assert_eq!(limits(Some("nonsense"), true), Some(DEFAULT_RATE));
    }

    #[test]
    fn each_throttle_keeps_its_own_buckets() {
        let metrics = Metrics::new();
        let tenant = TenantId::parse("t-one").unwrap();
        let (one, other) = (
            Throttle::new(Some((1.0, 2.0))),
            Throttle::new(Some((1.0, 2.0))),
        );
        assert!(one.admit(&tenant, &metrics).is_ok());
        assert!(one.admit(&tenant, &metrics).is_ok());
        let refused = one.admit(&tenant, &metrics).unwrap_err();
        assert_eq!(refused.code, "rate_limited");
        assert_eq!(metrics.take().count("TenantRequestsThrottled", &[]), 1.0);
        // The same tenant in another App (another instance, another test) has its own bucket.
        assert!(other.admit(&tenant, &metrics).is_ok());
        assert!(Throttle::new(None).admit(&tenant, &metrics).is_ok());
    }
}
