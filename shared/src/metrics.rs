//! Metrics as CloudWatch Embedded Metric Format (EMF) lines: the functions count into their
//! [`App`](crate::app::App)'s registry ([`Metrics`], built once with it) and
//! [`Metrics::flush`] at the end of each invocation writes one JSON line per dimension set to
//! stdout, which Lambda sends to CloudWatch Logs, where CloudWatch turns it into metrics (no
//! SDK call, no extra latency, no extra crate). Two Apps in one process (tests) count apart.
//!
//! Namespace `CrmGoogleSync` (or `METRICS_NAMESPACE`); every metric has the dimension
//! `Function` (the function's logical name, set once by its `main` with
//! [`Metrics::set_function`]), plus its own:
//!
//! | metric | unit | dimensions | from |
//! |---|---|---|---|
//! | `SyncsRun` | Count | `Outcome` (`complete`, `partial`, `failed`, `retry`, `paced`, `deferred`, `busy`, `dropped`) | worker |
//! | `GoogleCalls` | Count | `Method` (`events.list`, …), `Outcome` (`ok`, `rate_limited`, `server_error`, `client_error`, `paced`); also rolled up without `Method` | every function calling Google |
//! | `NotificationsReceived` | Count | `Outcome` (`queued`, `handshake`) | google-webhook |
//! | `NotificationsDropped` | Count | `Reason` (`unknown`, `forged`, `malformed`) | google-webhook |
//! | `ChangesDelivered` | Count | | worker (CRM webhook deliveries) |
//! | `QueueLag` | Milliseconds | | worker (message sent → picked up) |
//! | `ChannelRenewals`, `ChannelsOpened` | Count | | worker |
//! | `AccountsNeedsReauth` | Count | | any function that finds a grant gone (accounts entering `needs_reauth`) |
//! | `TokensResealed` | Count | | any function refreshing a token sealed with a key that is no longer current |
//! | `TenantRequestsThrottled` | Count | | HTTP functions (a tenant over `TENANT_API_RATE`) |
//! | `GoogleClientRefused`, `GoogleClientHealed` | Count | | any function whose token call finds a tenant's OAuth client refused by Google (`invalid_client`, …), or accepted again |
//! | `AccountsEnqueued`, `AccountsSpread`, `SchedulerStoppedEarly`, `SchedulerRunTime` | Count / Milliseconds | | scheduler |
//!
//! Lines are written only in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) or with
//! `CGS_METRICS=emf`; elsewhere [`Metrics::flush`] just empties the registry.

use crate::google::GoogleError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

type Dims = Vec<(&'static str, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Sample {
    Count(f64),
    Millis(Vec<f64>),
}

/// What was recorded since the last flush: per dimension set, per metric.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot(BTreeMap<Dims, BTreeMap<&'static str, Sample>>);

impl Snapshot {
    /// The count of `name` with exactly these dimensions (tests, benchmarks).
    pub fn count(&self, name: &str, dims: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(d, _)| {
                d.len() == dims.len()
                    && d.iter()
                        .zip(dims)
                        .all(|((k, v), (k2, v2))| k == k2 && v == v2)
            })
            .filter_map(|(_, m)| match m.get(name) {
                Some(Sample::Count(n)) => Some(*n),
                _ => None,
            })
            .sum()
    }
}

/// A registry of what was counted since the last flush, and the function it is attributed to.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Snapshot>,
    function: OnceLock<String>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the function every flushed line is attributed to (once, in `main`).
    pub fn set_function(&self, name: &str) {
        let _ = self.function.set(name.to_owned());
    }

    fn record(&self, name: &'static str, dims: &[(&'static str, &str)], sample: Sample) {
        let dims: Dims = dims.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let metrics = reg.0.entry(dims).or_default();
        match (metrics.get_mut(name), sample) {
            (Some(Sample::Count(n)), Sample::Count(m)) => *n += m,
            (Some(Sample::Millis(v)), Sample::Millis(m)) => v.extend(m),
            (_, sample) => {
                metrics.insert(name, sample);
            }
        }
    }

    /// Adds `n` to a counter.
    pub fn count(&self, name: &'static str, dims: &[(&'static str, &str)], n: u64) {
        self.record(name, dims, Sample::Count(n as f64));
    }

    /// Records one duration, in milliseconds.
    pub fn millis(&self, name: &'static str, dims: &[(&'static str, &str)], ms: f64) {
        self.record(name, dims, Sample::Millis(vec![ms]));
    }

    /// Empties the registry, returning what it held.
    pub fn take(&self) -> Snapshot {
        std::mem::take(&mut *self.registry.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes what was recorded as EMF lines to stdout (in Lambda) and empties the registry.
    pub fn flush(&self) {
        let snapshot = self.take();
        if snapshot.0.is_empty() || !enabled() {
            return;
        }
        let namespace =
            std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "CrmGoogleSync".to_owned());
        let function = self.function.get().map(String::as_str).unwrap_or("local");
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let lines = render(&namespace, function, now_ms, &snapshot);
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }

    /// Counts one Google request and how it ended.
    pub fn google_call(&self, method: &'static str, result: &Result<(), &GoogleError>) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(GoogleError::Paced(_)) => "paced",
            Err(GoogleError::Transient(m))
                if m.contains("429") || m.contains("RateLimit") || m.contains("rateLimit") =>
            {
                "rate_limited"
            }
            Err(GoogleError::Transient(_)) => "server_error",
            Err(_) => "client_error",
        };
        self.count(
            "GoogleCalls",
            &[("Method", method), ("Outcome", outcome)],
            1,
        );
    }
}

fn enabled() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("CGS_METRICS").is_ok_and(|v| v.eq_ignore_ascii_case("emf"))
}

/// Pure: the EMF lines of a snapshot, one per dimension set. A set with a `Method` dimension
/// is also published without it (alarms read the roll-up; metric math cannot sum over a
/// dimension).
pub fn render(namespace: &str, function: &str, now_ms: i64, snapshot: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for (dims, metrics) in &snapshot.0 {
        let mut keys: Vec<&str> = vec!["Function"];
        keys.extend(dims.iter().map(|(k, _)| *k));
        let mut sets = vec![keys.clone()];
        if keys.contains(&"Method") {
            sets.push(keys.iter().copied().filter(|k| *k != "Method").collect());
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, sample)| {
                let unit = match sample {
                    Sample::Count(_) => "Count",
                    Sample::Millis(_) => "Milliseconds",
                };
                json!({"Name": name, "Unit": unit})
            })
            .collect();
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": sets,
                    "Metrics": definitions,
                }]
            }),
        );
        line.insert("Function".into(), json!(function));
        for (k, v) in dims {
            line.insert((*k).into(), json!(v));
        }
        for (name, sample) in metrics {
            let value = match sample {
                Sample::Count(n) => json!(n),
                Sample::Millis(v) => json!(v),
            };
            line.insert((*name).into(), value);
        }
        lines.push(Value::Object(line).to_string());
    }
    lines
}

/// The Google API method a request calls, from its HTTP method and URL (a fixed set of
/// labels: ids never become dimension values).
pub fn google_method(method: &reqwest::Method, url: &str) -> &'static str {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = method.as_str();
    let after = |name: &str| {
        segments
            .iter()
            .position(|s| *s == name)
            .map(|i| &segments[i + 1..])
    };
    if path.contains("/batch/") {
        return "batch";
    }
    if path.ends_with("/channels/stop") {
        return "channels.stop";
    }
    if path.contains("/calendarList") {
        return "calendarList.list";
    }
    if path.ends_with("/freeBusy") {
        return "freebusy.query";
    }
    if let Some(rest) = after("events") {
        return match (m, rest) {
            ("GET", []) => "events.list",
            ("POST", []) => "events.insert",
            ("POST", ["watch"]) => "events.watch",
            (_, [_, "instances"]) => "events.instances",
            ("GET", [_]) => "events.get",
            ("PATCH", [_]) => "events.patch",
            ("PUT", [_]) => "events.update",
            ("DELETE", [_]) => "events.delete",
            _ => "events.other",
        };
    }
    if path.contains("contactGroups") {
        return "contactGroups";
    }
    if path.contains("/people") {
        return "people";
    }
    if path.contains("userinfo") {
        return "userinfo";
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    #[test]
    fn method_labels() {
        let base = "https://www.googleapis.com/calendar/v3/calendars/primary/events";
        assert_eq!(google_method(&Method::GET, base), "events.list");
        assert_eq!(google_method(&Method::POST, base), "events.insert");
        assert_eq!(
            google_method(&Method::POST, &format!("{base}/watch")),
            "events.watch"
        );
        assert_eq!(
            google_method(&Method::PATCH, &format!("{base}/abc123")),
            "events.patch"
        );
        assert_eq!(
            google_method(&Method::GET, &format!("{base}/abc123/instances?x=1")),
            "events.instances"
        );
        assert_eq!(
            google_method(
                &Method::POST,
                "https://www.googleapis.com/calendar/v3/channels/stop"
            ),
            "channels.stop"
        );
        assert_eq!(
            google_method(
                &Method::POST,
                "https://www.googleapis.com/batch/calendar/v3"
            ),
            "batch"
        );
    }

    #[test]
    fn registries_count_apart_and_flush_empties_them() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.count("SyncsRun", &[("Outcome", "complete")], 2);
        one.count("SyncsRun", &[("Outcome", "complete")], 1);
        other.millis("QueueLag", &[], 5.0);
        let got = one.take();
        assert_eq!(got.count("SyncsRun", &[("Outcome", "complete")]), 3.0);
        assert_eq!(got.count("QueueLag", &[]), 0.0);
        assert_eq!(one.take(), Snapshot::default(), "taken once");
        other.flush();
        assert_eq!(other.take(), Snapshot::default(), "flushed, so empty");
    }

    #[test]
    fn emf_lines() {
        let mut snap = Snapshot::default();
        snap.0
            .entry(vec![
                ("Method", "events.list".into()),
                ("Outcome", "ok".into()),
            ])
            .or_default()
            .insert("GoogleCalls", Sample::Count(3.0));
        snap.0
            .entry(vec![])
            .or_default()
            .insert("QueueLag", Sample::Millis(vec![12.0, 40.0]));
        let lines = render("CrmGoogleSync", "sync-worker", 1_700_000_000_000, &snap);
        assert_eq!(lines.len(), 2);
        let plain: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(plain["Function"], "sync-worker");
        assert_eq!(plain["QueueLag"], json!([12.0, 40.0]));
        let directive = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "CrmGoogleSync");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "QueueLag", "Unit": "Milliseconds"}])
        );
        assert_eq!(plain["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let calls: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(calls["GoogleCalls"], 3.0);
        assert_eq!(calls["Method"], "events.list");
        assert_eq!(
            calls["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Method", "Outcome"], ["Function", "Outcome"]])
        );
        assert_eq!(
            snap.count(
                "GoogleCalls",
                &[("Method", "events.list"), ("Outcome", "ok")]
            ),
            3.0
        );
    }
}
