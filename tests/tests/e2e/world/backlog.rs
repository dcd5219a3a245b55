//! A user's backlog of CRM meetings and what draining it costs in Google requests (shared by
//! the progress tests and the benchmark).
#![allow(dead_code)]

use super::Env;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::clock::Clock;
use shared::domain::Collection;
use std::time::{Duration, Instant};

pub fn meeting(i: usize) -> Value {
    json!({
        "type": "meeting",
        "title": format!("Backlog meeting {i}"),
        "start": {"date_time": format!("2027-03-{:02}T{:02}:00:00Z", 1 + i % 28, 8 + i % 10)},
        "end": {"date_time": format!("2027-03-{:02}T{:02}:30:00Z", 1 + i % 28, 8 + i % 10)},
        "time_zone": "UTC",
    })
}

pub async fn put_meetings(env: &Env, user: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let (s, v) = env
            .call(
                "PUT",
                &format!("/v1/users/{user}/events/{prefix}-{i}"),
                &env.sync,
                Some(meeting(i)),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
}

/// Runs every queued job, then lets the scheduler queue what is due (a minute later each
/// round, so the tenant's budget refills), until `done` or the bound.
pub async fn drain_until(env: &Env, rounds: usize, done: impl AsyncFn() -> bool) -> usize {
    let mut jobs = 0;
    for _ in 0..rounds {
        let ran = env.drain_jobs(10_000).await;
        jobs += ran;
        // `BACKLOG_DEBUG=user` (e.g. u-alice) follows that user's backlog round by round.
        if let Ok(user) = std::env::var("BACKLOG_DEBUG") {
            let a = env.stored_account(&user).await;
            eprintln!(
                "ran {ran}: {user} waiting {} status {:?} err {:?} due {:?} (clock {})",
                waiting(env, &user).await,
                a.status,
                a.last_error,
                a.next_sync_at,
                env.clock.now()
            );
        }
        if done().await {
            return jobs;
        }
        env.clock.advance(time::Duration::seconds(61));
        let deadline = Instant::now() + Duration::from_secs(30);
        shared::services::schedule::run(&env.app, deadline)
            .await
            .unwrap();
    }
    jobs
}

pub async fn waiting(env: &Env, user: &str) -> usize {
    waiting_in(env, user, Collection::Calendar).await
}

/// The user's records of `collection` waiting for the worker.
pub async fn waiting_in(env: &Env, user: &str, collection: Collection) -> usize {
    let u = shared::domain::UserId::parse(user).unwrap();
    let mut n = 0;
    let mut page = None;
    loop {
        let got = env
            .app
            .store
            .list_dirty_pairs(&env.tenant, &u, collection, 500, page.as_deref())
            .await
            .unwrap();
        n += got.items.len();
        match got.next {
            Some(p) => page = Some(p),
            None => return n,
        }
    }
}

/// What holds the user's waiting records of `collection`: the account's state and the first
/// few waiting pairs (for a failing simulation's message).
pub async fn describe_waiting(env: &Env, user: &str, collection: Collection) -> String {
    let u = shared::domain::UserId::parse(user).unwrap();
    let a = env.stored_account(user).await;
    let got = env
        .app
        .store
        .list_dirty_pairs(&env.tenant, &u, collection, 5, None)
        .await
        .unwrap();
    let pairs: Vec<String> = got
        .items
        .iter()
        .map(|p| &p.value)
        .map(|p| {
            format!(
                "{} (google {:?}, deleted {:?}, last_error {:?})",
                p.crm_id.as_str(),
                p.google_id,
                p.deleted_at.is_some(),
                p.last_error
            )
        })
        .collect();
    format!(
        "account {:?}, next sync {:?}, failures {}, last_error {:?}; waiting: {}",
        a.status,
        a.next_sync_at,
        a.sync_failures,
        a.last_error,
        pairs.join(", ")
    )
}

pub fn token(env: &Env, email: &str) -> SecretString {
    env.google_token(email, super::CALENDAR_SCOPE)
}

pub struct Calls {
    pub batches: usize,
    pub inserts: usize,
    pub conflicts: usize,
}

pub fn calls(env: &Env) -> Calls {
    let log = env.sandbox.request_log();
    let inserts: Vec<_> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/events"))
        .collect();
    Calls {
        batches: log
            .iter()
            .filter(|r| r.path.starts_with("/batch/calendar/v3"))
            .count(),
        inserts: inserts.len(),
        conflicts: inserts.iter().filter(|r| r.status == 409).count(),
    }
}

/// Asserts the CRM meetings `{prefix}-0` … `{prefix}-{n-1}` of `user` are synced.
pub async fn assert_synced(env: &Env, user: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let (_, v) = env
            .call(
                "GET",
                &format!("/v1/users/{user}/events/{prefix}-{i}"),
                &env.sync,
                None,
            )
            .await;
        assert_eq!(v["state"], "synced", "{prefix}-{i}: {v}");
    }
}
