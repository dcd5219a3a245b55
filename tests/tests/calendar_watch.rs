//! Google may send a channel's `sync` message before the watch call returns (push guide,
//! "Sync message"), so before the product has stored the channel: the handshake is still
//! answered as one (embedded store).

mod common;

use common::world::{Backend, Env};
use shared::queue::SyncReason;

#[tokio::test]
async fn the_sync_message_that_beats_the_watch_answer_is_acknowledged() {
    let env = Env::new_on(Backend::Embedded).await;
    let q = env
        .connect("u-watch", &["calendar"], "alice@example.com", "")
        .await;
    assert_eq!(q["google_connect"], "connected");
    env.run_job("u-watch", SyncReason::Scheduled).await;
    let log = env.sandbox.push_log();
    let sync: Vec<_> = log.iter().filter(|d| d.state == "sync").collect();
    assert_eq!(sync.len(), 1, "{log:?}");
    assert!(sync[0].channel_id.starts_with("cgs-"));
    assert!(
        (200..300).contains(&sync[0].status),
        "answered {} (the channel was not stored yet)",
        sync[0].status
    );
    // A sync message for a channel that is not ours is still refused.
    let answer = reqwest::Client::new()
        .post(format!("{}/webhooks/google/calendar", env.api))
        .header("X-Goog-Channel-ID", "someone-else")
        .header("X-Goog-Resource-ID", "r")
        .header("X-Goog-Resource-State", "sync")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND);
}
