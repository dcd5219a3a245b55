//! A tenant-level OAuth client error (`invalid_client`, `deleted_client`, …) is the admin's to
//! fix, not the users' (review finding 10, audit F21): it is shown on the tenant's Google
//! client, calls for the tenant wait, the accounts keep their status, and everything resumes
//! once the client is fixed. And a worker whose refresh failed with the old grant while the
//! user reconnected does not undo the reconnection. Embedded adapters, Google sandbox.

use crate::world::{Backend, Env, CLIENT_ID, CLIENT_SECRET};
use google_sandbox::{ClientStatus, FaultKind, FaultSpec};
use reqwest::StatusCode;
use serde_json::json;

const ALICE: &str = "alice@example.com";

fn token_calls(env: &Env) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.path == "/token")
        .count()
}

/// Both clocks forward (the product's and Google's): cached access tokens run out.
fn advance(env: &Env, minutes: i64) {
    env.clock.advance(time::Duration::minutes(minutes));
    env.sandbox.advance_clock(minutes * 60);
}

async fn gmail_token(env: &Env, user: &str) -> (StatusCode, serde_json::Value) {
    env.call(
        "POST",
        &format!("/v1/users/{user}/gmail/token"),
        &env.sync,
        None,
    )
    .await
}

#[tokio::test]
async fn a_wrong_client_secret_is_the_admins_to_fix_and_users_stay_connected() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["gmail"], ALICE, "").await;
    env.connect("u2", &["gmail"], "bob@example.com", "").await;
    let feed_before = env.changes().await.len();

    // The admin uploads a wrong secret; the cached access tokens run out.
    let (s, v) = env.put_google_client(CLIENT_ID, "GOCSPX-wrong").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    advance(&env, 120);

    let (s, v) = gmail_token(&env, "u1").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "google_client_invalid");
    let (_, client) = env
        .call("GET", "/v1/admin/google-client", &env.admin, None)
        .await;
    assert_eq!(client["status"], "refused", "{client}");
    assert_eq!(client["refused"]["error"], "invalid_client");
    assert!(client["refused"]["message"]
        .as_str()
        .unwrap()
        .contains("client secret"));
    assert!(!client.to_string().contains("GOCSPX-wrong"));

    // The other user's call does not even reach Google, and nobody needs to reconnect.
    let calls = token_calls(&env);
    let (s, v) = gmail_token(&env, "u2").await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("google_client_invalid"))
    );
    assert_eq!(token_calls(&env), calls, "calls for the tenant wait");
    for user in ["u1", "u2"] {
        let (_, a) = env.account(user).await;
        assert_eq!(a["status"], "active", "{a}");
    }
    assert_eq!(
        env.changes().await.len(),
        feed_before,
        "no account_status_changed"
    );

    // The admin fixes the secret: both users work again at once, without reconnecting.
    let (s, v) = env.put_google_client(CLIENT_ID, CLIENT_SECRET).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ok");
    for user in ["u1", "u2"] {
        let (s, v) = gmail_token(&env, user).await;
        assert_eq!(s, StatusCode::OK, "{user}: {v}");
    }
}

#[tokio::test]
async fn a_deleted_client_pauses_the_tenant_and_heals_when_restored() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], ALICE, "").await;
    env.drain_jobs(20).await;
    env.sandbox
        .set_client_status(CLIENT_ID, ClientStatus::Deleted);
    advance(&env, 120);

    // The worker's pass: Google answers deleted_client; the account waits, untouched.
    env.run_job("u1", shared::queue::SyncReason::Manual).await;
    let account = env.stored_account("u1").await;
    assert_eq!(account.status, shared::domain::AccountStatus::Active);
    assert_eq!(account.sync_failures, 0, "not the account's failure");
    assert!(account.refresh_token_ciphertext.is_some());
    let due = account.next_sync_at.unwrap();
    assert!(due > env.app.clock.now(), "it waits before trying again");
    let (_, client) = env
        .call("GET", "/v1/admin/google-client", &env.admin, None)
        .await;
    assert_eq!(client["refused"]["error"], "deleted_client", "{client}");
    let reauth = env
        .changes()
        .await
        .into_iter()
        .filter(|c| c["data"]["status"] == "needs_reauth")
        .count();
    assert_eq!(reauth, 0);

    // Within the wait: no call to Google at all.
    let calls = token_calls(&env);
    env.run_job("u1", shared::queue::SyncReason::Manual).await;
    assert_eq!(token_calls(&env), calls);

    // The owner restores the client in Google's console (nothing changes here): after the
    // wait, the next pass finds it working and clears the refusal.
    env.sandbox
        .set_client_status(CLIENT_ID, ClientStatus::Enabled);
    advance(&env, 6);
    env.run_job("u1", shared::queue::SyncReason::Manual).await;
    let (_, client) = env
        .call("GET", "/v1/admin/google-client", &env.admin, None)
        .await;
    assert_eq!(client["status"], "ok", "{client}");
    let account = env.stored_account("u1").await;
    assert_eq!(account.status, shared::domain::AccountStatus::Active);
    assert!(account.last_sync_at.is_some());
}

#[tokio::test]
async fn a_reconnect_during_a_failing_refresh_is_kept() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["gmail"], ALICE, "").await;
    // The user revokes the app, the cached token runs out, and a refresh with the dead grant
    // is slow at Google while the user reconnects.
    env.sandbox.revoke_user_grants(ALICE);
    advance(&env, 120);
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::Latency)
            .path_prefix("/token")
            .latency_ms(1500)
            .count(1),
    );
    let stale = gmail_token(&env, "u1");
    let reconnect = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        env.connect("u1", &["gmail"], ALICE, "").await
    };
    let ((s, v), q) = tokio::join!(stale, reconnect);
    assert_eq!(q["google_connect"], "connected");
    assert_eq!(s, StatusCode::CONFLICT, "the old grant is gone: {v}");
    // The refresh that failed with the old grant does not undo the reconnection.
    let (_, a) = env.account("u1").await;
    assert_eq!(a["status"], "active", "{a}");
    let (s, v) = gmail_token(&env, "u1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
