//! Google's quotas as Google answers them: a rate limit is retried with backoff, the user's
//! Calendar usage limits (`quotaExceeded`) and the project's daily quota
//! (`dailyLimitExceeded`) pause the account until they can have lifted — one call, no retry
//! storm (embedded store).

use crate::world::{Backend, Env};
use google_sandbox::{FaultKind, FaultSpec};
use serde_json::json;
use shared::clock::Clock;
use shared::queue::SyncReason;

const USER: &str = "u-quota";
const ALICE: &str = "alice@example.com";

async fn env() -> Env {
    let env = Env::new_on(Backend::Embedded).await;
    let q = env.connect(USER, &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
    env.run_job(USER, SyncReason::Scheduled).await;
    env
}

fn calendar_calls(env: &Env) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.path.starts_with("/calendar/v3/calendars/"))
        .count()
}

async fn meeting(env: &Env) {
    let (s, v) = env
        .put_event(
            USER,
            "MTG-1",
            json!({"title": "Kick-off",
                        "start": {"date_time": "2026-06-10T09:00:00Z"},
                        "end": {"date_time": "2026-06-10T10:00:00Z"}, "time_zone": "UTC"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
}

#[tokio::test]
async fn calendar_usage_limits_pause_the_account_for_an_hour() {
    let env = env().await;
    meeting(&env).await;
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::QuotaExceeded).path_prefix("/calendar/v3/calendars/"),
    );
    env.sandbox.clear_request_log();
    let now = env.clock.now();
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(calendar_calls(&env), 1, "refused once, not retried");
    let account = env.stored_account(USER).await;
    assert_eq!(account.next_sync_at, Some(now + time::Duration::hours(1)));
    // The CRM's meeting still waits (nothing lost).
    let (_, v) = env.event(USER, "MTG-1").await;
    assert_eq!(v["state"], "pending", "{v}");
    // Lifted: the next run carries it.
    env.sandbox.clear_faults();
    env.run_job(USER, SyncReason::Scheduled).await;
    let (_, v) = env.event(USER, "MTG-1").await;
    assert_eq!(v["state"], "synced", "{v}");
}

#[tokio::test]
async fn the_daily_quota_pauses_the_account_until_midnight_pacific() {
    let env = env().await;
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::DailyLimitExceeded).path_prefix("/calendar/v3/calendars/"),
    );
    env.sandbox.clear_request_log();
    let now = env.clock.now();
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(calendar_calls(&env), 1, "refused once, not retried");
    let wait = shared::google::api::until_daily_reset(std::time::SystemTime::now());
    let due = env.stored_account(USER).await.next_sync_at.unwrap();
    let waited = (due - now).whole_seconds();
    assert!(
        (waited - wait.as_secs() as i64).abs() <= 5,
        "due in {waited} s, the reset is in {} s",
        wait.as_secs()
    );
}

#[tokio::test]
async fn a_rate_limit_is_retried_with_backoff() {
    let env = env().await;
    meeting(&env).await;
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::RateLimitExceeded)
            .path_prefix("/calendar/v3/calendars/")
            .count(2),
    );
    env.run_job(USER, SyncReason::Scheduled).await;
    let (_, v) = env.event(USER, "MTG-1").await;
    assert_eq!(v["state"], "synced", "{v}");
}
