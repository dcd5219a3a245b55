//! Per-tenant request throttling of the authenticated API (review finding 31): a token
//! bucket per tenant in each function instance. API Gateway's stage and route limits are
//! shared by every tenant; this keeps one tenant's bulk traffic from taking them (and the
//! functions' concurrency) from the others. An instance serves one request at a time, so a
//! tenant gets at most `rate` × (the instances serving it) — a bound per instance, not a
//! global quota: API Gateway's limits stay the global one.
//!
//! `TENANT_API_RATE` = `<requests per second>/<burst>` (default `50/200`); `off` disables it.
//! Local deployments (a loopback `PUBLIC_BASE_URL`) are not throttled unless it is set.

use super::ApiError;
use crate::domain::TenantId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The default: 50 requests a second per tenant and instance, bursts of 200.
pub const DEFAULT_RATE: (f64, f64) = (50.0, 200.0);

/// How many tenants' buckets an instance keeps before dropping the full ones.
const MAX_TENANTS: usize = 10_000;

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

/// The limits in force: `TENANT_API_RATE`, else the default outside local deployments.
fn limits(local: bool) -> Option<(f64, f64)> {
    static SET: OnceLock<Option<Option<(f64, f64)>>> = OnceLock::new();
    let set = SET.get_or_init(|| {
        std::env::var("TENANT_API_RATE").ok().map(|v| {
            parse(&v).unwrap_or_else(|| {
                tracing::error!(value = %v, "TENANT_API_RATE is not <rate>/<burst> or off; the default applies");
                Some(DEFAULT_RATE)
            })
        })
    });
    match set {
        Some(explicit) => *explicit,
        None if local => None,
        None => Some(DEFAULT_RATE),
    }
}

/// Takes one request from the tenant's bucket, or answers 429 with the seconds until one is
/// free.
pub fn admit(tenant: &TenantId, local: bool) -> Result<(), ApiError> {
    let Some((rate, burst)) = limits(local) else {
        return Ok(());
    };
    static BUCKETS: OnceLock<Mutex<HashMap<TenantId, Bucket>>> = OnceLock::new();
    let mut buckets = BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if buckets.len() >= MAX_TENANTS && !buckets.contains_key(tenant) {
        buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
    }
    let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
        tokens: burst,
        at: now,
    });
    bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
    bucket.at = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        return Ok(());
    }
    let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
    drop(buckets);
    crate::metrics::count("TenantRequestsThrottled", &[], 1);
    Err(ApiError::new(
        http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests for this tenant; retry in {wait} s (Retry-After)"),
    )
    .with_retry_after(wait))
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
}
