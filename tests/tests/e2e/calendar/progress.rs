//! Bounded progress, no stalled account: a user's waiting CRM meetings drain through the
//! queue in about ⌈N/50⌉ batch requests, every write sent once (no 409 from our own
//! retries), under per-job caps as low as 20 calls and with the tenant's budget shared with
//! another user; a meeting written while the grant was dead is pushed after the user
//! reconnects; a monitored calendar that disappears is reported and skipped.
//!
//! Runs the worker as SQS would (each queued job in turn, continuations included) on the
//! embedded adapters, with the scheduler's ticks and a clock moved by hand for what the
//! budget defers.

use crate::world::backlog::{
    assert_synced, calls, drain_until, put_meetings, token, waiting, Calls,
};
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::domain::AccountStatus;
use shared::services::quota::{with_limits, Limits};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// Bob (same tenant) pushes 300 meetings, then the CRM loads `n` of Alice's — with her sync
/// paused then resumed, or live (one record-change job per PUT) — and the queue drains.
async fn backlog_drains(n: usize, limits: Limits, paused: bool) -> (Calls, usize) {
    with_limits(limits, async {
        let env = Env::new_on(Backend::Embedded).await;
        env.connect("u-bob", &["calendar"], BOB, "").await;
        env.connect("u-alice", &["calendar"], ALICE, "").await;
        env.drain_jobs(100).await;
        // Another user of the tenant syncs first and takes from the same budget.
        put_meetings(&env, "u-bob", "BOB", 300).await;
        env.drain_jobs(10_000).await;
        env.sandbox.clear_request_log();
        let pause = async |paused: bool| {
            let (s, v) = env
                .patch_account("u-alice", json!({ "paused": paused }))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        };
        if paused {
            // Alice's sync is paused while the CRM loads her existing meetings.
            pause(true).await;
            put_meetings(&env, "u-alice", "MTG", n).await;
            env.drain_jobs(10_000).await;
            pause(false).await;
        } else {
            put_meetings(&env, "u-alice", "MTG", n).await;
        }
        let jobs = drain_until(&env, 400, async || {
            waiting(&env, "u-alice").await == 0 && waiting(&env, "u-bob").await == 0
        })
        .await;
        assert_eq!(waiting(&env, "u-alice").await, 0, "alice's backlog drained");
        let events = env.google_events(&token(&env, ALICE)).await;
        let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(events.len(), n, "one Google event per CRM meeting");
        assert_eq!(ids.len(), n);
        for i in (0..n).step_by(97) {
            let (_, v) = env.event("u-alice", &format!("MTG-{i}")).await;
            assert_eq!(v["state"], "synced", "MTG-{i}: {v}");
        }
        (calls(&env), jobs)
    })
    .await
}

fn check(n: usize, c: &Calls, jobs: usize, batch_bound: usize) {
    eprintln!(
        "{n} waiting meetings: {} batch requests, {} inserts, {} conflicts, {jobs} jobs",
        c.batches, c.inserts, c.conflicts
    );
    assert_eq!(c.conflicts, 0, "no 409 from our own retries");
    assert_eq!(c.inserts, n, "every write sent once");
    assert!(
        c.batches <= batch_bound,
        "{} batch requests > {batch_bound}",
        c.batches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_users_backlog_drains_in_about_n_over_50_batches_after_resuming() {
    let n = 600;
    let (c, jobs) = backlog_drains(n, Limits::default(), true).await;
    check(n, &c, jobs, (n.div_ceil(50) as f64 * 1.05).ceil() as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_backlog_of_one_job_per_put_sends_every_write_once() {
    let n = 300;
    let (c, jobs) = backlog_drains(n, Limits::default(), false).await;
    // Each record-change job pushes what waits: the first ones carry a few records each,
    // then whole batches; never a write twice.
    check(n, &c, jobs, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_under_a_per_job_cap_of_20() {
    let n = 300;
    let limits = Limits {
        calls_per_job: 20,
        ..Limits::default()
    };
    let (c, jobs) = backlog_drains(n, limits, true).await;
    // 20 calls a job, one of them the read: 17 writes per batch request.
    check(n, &c, jobs, n.div_ceil(17) + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_put_while_the_grant_is_dead_is_pushed_after_reconnecting() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    // The user revokes the app's access in their Google account.
    env.sandbox.revoke_user_grants(ALICE);
    put_meetings(&env, "u-alice", "MTG", 3).await;
    env.drain_jobs(100).await;
    let (_, v) = env.event("u-alice", "MTG-1").await;
    assert_ne!(v["state"], "synced", "{v}");
    assert!(
        v["last_error"].is_null(),
        "the record itself did not fail: {v}"
    );
    // The next job finds the grant gone (the cached token was dropped after the 401).
    env.clock.advance(time::Duration::minutes(5));
    shared::services::schedule::run(&env.app, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    env.drain_jobs(100).await;
    assert_eq!(
        env.stored_account("u-alice").await.status,
        AccountStatus::NeedsReauth
    );
    // The user reconnects: what waited is pushed.
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    assert_synced(&env, "u-alice", "MTG", 3).await;
    assert_eq!(env.google_events(&token(&env, ALICE)).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitored_calendar_that_disappears_is_reported_and_skipped() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    let team = env.sandbox.add_calendar(ALICE, "Team", "Europe/Paris");
    let (s, v) = env
        .patch_account("u-alice", json!({ "monitored_calendars": [team] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.drain_jobs(100).await;
    env.run_job("u-alice", shared::queue::SyncReason::Scheduled)
        .await;
    // The team calendar is deleted in Google; the CRM keeps sending meetings.
    env.sandbox.delete_calendar(&team);
    put_meetings(&env, "u-alice", "MTG", 2).await;
    env.run_job("u-alice", shared::queue::SyncReason::Scheduled)
        .await;
    assert_synced(&env, "u-alice", "MTG", 2).await;
    let (_, v) = env
        .call("GET", "/v1/users/u-alice/google", &env.sync, None)
        .await;
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(&team), "the account names the calendar: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenants_google_quota_is_a_setting() {
    let env = Env::new_on(Backend::Embedded).await;
    let patch = |quota: Value| {
        env.call(
            "PATCH",
            "/v1/admin/settings",
            &env.admin,
            Some(json!({ "google_quota": quota })),
        )
    };
    let (s, v) = patch(json!({"calls_per_job": 5})).await;
    assert!(s.is_client_error(), "{s} {v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("google_quota.calls_per_job"));
    let (s, v) = patch(json!({"calls_per_job": 20, "calls_per_second": 50})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["google_quota"],
        json!({"calls_per_second": 50, "burst": 600, "calls_per_job": 20})
    );
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    put_meetings(&env, "u-alice", "MTG", 60).await;
    env.sandbox.clear_request_log();
    let jobs = drain_until(&env, 50, async || waiting(&env, "u-alice").await == 0).await;
    let c = calls(&env);
    // 20 calls a job: 18 writes in each (two kept in hand), so four jobs and four batches
    // for 60, where the default (200 a job) sends them in two batches from one job.
    assert_eq!(c.inserts, 60);
    assert_eq!(c.batches, 4, "{jobs} jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_heavy_with_series_finishes_under_a_low_per_job_cap() {
    let limits = Limits {
        calls_per_job: 20,
        ..Limits::default()
    };
    with_limits(limits, async {
        let env = Env::new_on(Backend::Embedded).await;
        env.connect("u-alice", &["calendar"], ALICE, "").await;
        env.drain_jobs(100).await;
        // The user's calendar holds 60 weekly series (one page of a full read): each costs
        // one more call to read its occurrences, three times what a job may make.
        let alice = token(&env, ALICE);
        for i in 0..60 {
            let e: shared::google::calendar::Event = serde_json::from_value(json!({
                "summary": format!("1:1 number {i}"),
                "start": {"dateTime": format!("2027-02-01T{:02}:00:00Z", 8 + i % 10), "timeZone": "UTC"},
                "end": {"dateTime": format!("2027-02-01T{:02}:30:00Z", 8 + i % 10), "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=20"],
            }))
            .unwrap();
            env.app
                .google
                .insert_event(&alice, "primary", &e, shared::google::calendar::SendUpdates::None)
                .await
                .unwrap();
        }
        // The sync token expires: the next read is a full one, 60 series on its first page.
        env.sandbox.invalidate_sync_tokens(ALICE);
        env.run_job("u-alice", shared::queue::SyncReason::Scheduled)
            .await;
        let created = async || {
            let changes = env.changes().await;
            changes
                .iter()
                .filter(|r| r["kind"] == "event_created")
                .count()
        };
        let mut jobs = 0;
        while created().await < 60 && jobs < 40 {
            jobs += env.drain_jobs(1).await.max(1);
            if env.jobs.as_ref().unwrap().lock().await.is_empty() {
                env.run_job("u-alice", shared::queue::SyncReason::Continuation)
                    .await;
            }
        }
        assert_eq!(created().await, 60, "every series reached the CRM, once");
        assert!(jobs < 40, "{jobs} jobs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_put_racing_a_pull_is_decided_by_the_conflict_policy() {
    use shared::domain::{Collection, UserId};
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let mut first = crate::world::backlog::meeting(0);
    first["updated_at"] = json!("2020-01-01T10:00:00Z");
    let (s, v) = env.put_event("u-alice", "MTG-0", first).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let u = UserId::parse("u-alice").unwrap();
    let loaded = env
        .app
        .store
        .get_pair(&env.tenant, &u, Collection::Calendar, "MTG-0")
        .await
        .unwrap()
        .unwrap();
    // A pass pulls Google's newer edit (its result, as the engine would commit it)…
    let mut pulled = loaded.value.clone();
    let mut content = pulled.crm_content.clone().unwrap();
    content["title"] = json!("Edited in Google at 10:05");
    let google_hash = shared::calendar::normal::content_hash(&content);
    pulled.crm_content = Some(content);
    pulled.crm_hash = google_hash.clone();
    pulled.google_hash = google_hash;
    // …while the CRM's older edit (made at 10:03, delivered late) lands first.
    let mut late = crate::world::backlog::meeting(0);
    late["title"] = json!("Edited in the CRM at 10:03");
    late["updated_at"] = json!("2020-01-01T10:03:00Z");
    let (s, v) = env.put_event("u-alice", "MTG-0", late).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    shared::sync::pair::commit(
        &env.app.store,
        &env.tenant,
        &u,
        &loaded.value,
        pulled,
        Some(loaded.version),
        false,
    )
    .await
    .unwrap();
    // Google's edit, in Google for real.
    let alice = token(&env, ALICE);
    let gid = loaded.value.google_id.clone().unwrap();
    env.app
        .google
        .patch_event(
            &alice,
            "primary",
            &gid,
            &json!({"summary": "Edited in Google at 10:05"}),
            None,
            shared::google::calendar::SendUpdates::None,
        )
        .await
        .unwrap();
    env.drain_jobs(100).await;
    env.run_job("u-alice", shared::queue::SyncReason::RecordChange)
        .await;
    // Latest wins (the default): Google's later edit stays, the CRM is told.
    let events = env.google_events(&alice).await;
    assert_eq!(
        events[0].summary.as_deref(),
        Some("Edited in Google at 10:05"),
        "the CRM's older edit was not pushed over Google's newer one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edits_with_the_same_updated_at_are_two_jobs() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    // A CRM whose times have one-second resolution saves twice within the second.
    for title in ["First save", "Second save"] {
        let mut m = crate::world::backlog::meeting(0);
        m["title"] = json!(title);
        m["updated_at"] = json!("2027-01-01T10:00:00Z");
        let (s, v) = env.put_event("u-alice", "MTG-0", m).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{title}: {v}");
        // (Google's push notifications of our own writes may queue more.)
        assert!(env.drain_jobs(100).await >= 1, "{title}: its own job");
    }
    let events = env.google_events(&token(&env, ALICE)).await;
    assert_eq!(events[0].summary.as_deref(), Some("Second save"));
}

/// A pass stopped by the tenant's spent budget waits about a minute, and the scheduler's
/// next claim of the account reaches the worker: it is not taken for a duplicate of the
/// claim before it (same account, same 10-minute slot) and dropped, which left the account
/// waiting out the 20-minute claim for every budget's worth of writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_held_by_the_tenants_budget_goes_on_each_minute() {
    let limits = Limits {
        tenant_rate: 1.0,
        tenant_burst: 60,
        ..Limits::default()
    };
    with_limits(limits, async {
        let env = Env::new_on(Backend::Embedded).await;
        env.connect("u-alice", &["calendar"], ALICE, "").await;
        env.drain_jobs(100).await;
        put_meetings(&env, "u-alice", "MTG", 240).await;
        let rounds = std::cell::Cell::new(0);
        drain_until(&env, 60, async || {
            rounds.set(rounds.get() + 1);
            waiting(&env, "u-alice").await == 0
        })
        .await;
        assert_eq!(waiting(&env, "u-alice").await, 0, "the backlog drained");
        // 240 writes at 60 a minute: about four minutes of budget, a few more rounds for
        // the reads and the scheduler's minute; a dropped job costs 20 rounds.
        assert!(
            rounds.get() <= 10,
            "{} scheduler minutes for 240 writes at 60 calls a minute",
            rounds.get()
        );
    })
    .await;
}
