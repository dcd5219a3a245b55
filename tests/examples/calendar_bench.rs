//! Calendar sync throughput: events per second through the engine and the store, and Google
//! calls per pass, on DynamoDB Local + moto and the Google sandbox (a benchmark, not a test:
//! it prints figures).
//!
//!     CGS_COMMAND="cargo run --release --offline -p e2e-tests --example calendar_bench" \
//!         infra/scripts/test.sh
//!
//! `BENCH_EVENTS` (default 1000) sets how many events each direction moves.

#[path = "../tests/e2e/world/mod.rs"]
mod world;

use secrecy::SecretString;
use serde_json::json;
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;
use std::time::Instant;
use world::{Env, CLIENT_ID};

const USER: &str = "u-bench";

fn requests(env: &Env) -> (usize, usize) {
    let log = env.sandbox.request_log();
    let batches = log.iter().filter(|r| r.path.starts_with("/batch")).count();
    (log.len(), batches)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let env = Env::new().await;
    env.connect(USER, &["calendar"], "alice@example.com", "")
        .await;
    env.run_job(USER, SyncReason::Scheduled).await;
    println!("calendar sync benchmark: {n} events each way; store DynamoDB Local, queue and secrets moto, Google the sandbox (all on 127.0.0.1)");

    // CRM → Google: N PUTs through the HTTP API, then one pass pushes them all.
    let started = Instant::now();
    for i in 0..n {
        let day = 1 + i % 28;
        let (s, v) = env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/events/B-{i}"),
                &env.sync,
                Some(json!({
                    "type": if i % 3 == 0 { "call" } else { "meeting" },
                    "title": format!("Bench meeting {i}"),
                    "description": "Agenda:\n1. Numbers\n2. Next steps",
                    "start": {"date_time": format!("2027-02-{day:02}T09:00:00+01:00")},
                    "end": {"date_time": format!("2027-02-{day:02}T10:00:00+01:00")},
                    "time_zone": "Europe/Paris",
                    "attendees": [{"email": format!("guest{i}@example.org"), "response": "accepted"}],
                })),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let put = started.elapsed();
    env.sandbox.clear_request_log();
    let started = Instant::now();
    env.run_job(USER, SyncReason::RecordChange).await;
    let push = started.elapsed();
    let (calls, batches) = requests(&env);
    println!(
        "CRM → Google: {n} PUTs in {:.2} s ({:.0}/s through the API and the store); one pass pushed them in {:.2} s ({:.0} events/s), {batches} batch requests (⌈{n}/50⌉ = {}), {} Google HTTP requests in all incl. batch parts",
        put.as_secs_f64(),
        n as f64 / put.as_secs_f64(),
        push.as_secs_f64(),
        n as f64 / push.as_secs_f64(),
        n.div_ceil(50),
        calls
    );

    // The echo of our own writes: one incremental pass reads them back, decides nothing.
    env.sandbox.clear_request_log();
    let started = Instant::now();
    env.run_job(USER, SyncReason::Scheduled).await;
    let echo = started.elapsed();
    let (calls, _) = requests(&env);
    println!(
        "Reading our own {n} writes back: {:.2} s ({:.0} events/s), {calls} Google requests (events.list pages of 250)",
        echo.as_secs_f64(),
        n as f64 / echo.as_secs_f64()
    );

    // Idle.
    env.sandbox.clear_request_log();
    let started = Instant::now();
    env.run_job(USER, SyncReason::Scheduled).await;
    let (calls, _) = requests(&env);
    println!(
        "Idle incremental pass: {calls} Google request(s), {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Google → CRM: N events made in Google, one pass brings them into the feed.
    let alice = SecretString::from(env.sandbox.issue_access_token(
        CLIENT_ID,
        "alice@example.com",
        &["https://www.googleapis.com/auth/calendar"],
    ));
    for i in 0..n {
        let day = 1 + i % 28;
        let event: Event = serde_json::from_value(json!({
            "summary": format!("Made in Google {i}"),
            "start": {"dateTime": format!("2027-03-{day:02}T14:00:00+01:00"), "timeZone": "Europe/Paris"},
            "end": {"dateTime": format!("2027-03-{day:02}T15:00:00+01:00"), "timeZone": "Europe/Paris"},
            "attendees": [{"email": format!("other{i}@example.org"), "responseStatus": "needsAction"}],
        }))
        .unwrap();
        env.app
            .google
            .insert_event(&alice, "primary", &event, SendUpdates::None)
            .await
            .unwrap();
    }
    let before = env.changes().await.len();
    env.sandbox.clear_request_log();
    let started = Instant::now();
    env.run_job(USER, SyncReason::Push).await;
    let pull = started.elapsed();
    let (calls, _) = requests(&env);
    let after = env.changes().await.len();
    println!(
        "Google → CRM: {} feed records from {n} new Google events in {:.2} s ({:.0} events/s), {calls} Google requests",
        after - before,
        pull.as_secs_f64(),
        n as f64 / pull.as_secs_f64()
    );
}
