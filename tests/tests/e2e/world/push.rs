//! Changes that reach the CRM by push alone: the worker running as in production, no
//! scheduler, no manual sync; waits on the feed, each bounded.
#![allow(dead_code)]

use super::{Backend, Env};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::domain::{ChannelState, UserId};
use shared::google::calendar::{Event, SendUpdates};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const USER: &str = "u-push";
pub const ALICE: &str = "alice@example.com";

/// How long any one change may take to reach the CRM feed by push.
pub const PUSH_WAIT: Duration = Duration::from_secs(10);

/// A token of alice's, as Google Calendar's own UI would act.
pub fn alice_token(env: &Env) -> SecretString {
    env.google_token(ALICE, super::CALENDAR_SCOPE)
}

/// A one-hour event on the given day of March 2030.
pub fn timed(summary: &str, day: usize) -> Event {
    serde_json::from_value(json!({"summary": summary,
        "start": {"dateTime": format!("2030-03-{day:02}T10:00:00Z")},
        "end": {"dateTime": format!("2030-03-{day:02}T11:00:00Z")}}))
    .unwrap()
}

/// [`USER`] connected on `backend` with the worker running as in production — on the AWS
/// adapters the local server's SQS poller (what Lambda's event source does), on the local
/// server's the in-process loop — and no scheduler: changes arrive by push or not at all.
/// Returns once the first pass (queued by the connect) has opened the calendar's channel.
pub async fn pushed(backend: Backend) -> (Env, SecretString) {
    let env = Env::new_on(backend).await;
    if backend == Backend::Aws {
        let client = aws_sdk_sqs::Client::new(&super::sdk(&super::moto()).await);
        let url = env.app.config.queue_url.clone().unwrap();
        tokio::spawn(local_server::worker::poll_sqs(env.app.clone(), client, url));
    }
    env.connect(USER, &["calendar"], ALICE, "").await;
    let user = UserId::parse(USER).unwrap();
    let deadline = Instant::now() + PUSH_WAIT;
    loop {
        let open = env
            .app
            .store
            .list_channels(&env.tenant, &user, 10, None)
            .await
            .unwrap()
            .items
            .iter()
            .any(|c| c.state == ChannelState::Active);
        if open {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first pass opened no channel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = alice_token(&env);
    (env, alice)
}

/// Polls the feed (at most [`PUSH_WAIT`]) until `done` holds of it; returns it.
pub async fn feed_until(env: &Env, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PUSH_WAIT;
    loop {
        let feed = env.changes().await;
        if done(&feed) {
            return feed;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not in the feed after {PUSH_WAIT:?} of push: {feed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the feed has a `kind` record of `google_id` with that title.
pub fn titled(feed: &[Value], kind: &str, google_id: &str, title: &str) -> bool {
    feed.iter().any(|r| {
        r["kind"] == kind && r["google_id"] == google_id && r["data"]["event"]["title"] == title
    })
}

/// What became of a burst of edits.
#[derive(Debug)]
pub struct Burst {
    /// How many of the edits reached the feed within [`PUSH_WAIT`] of the last one.
    pub arrived: usize,
    /// How long the burst of edits took, first to last.
    pub edits_took: Duration,
    /// From the last edit to the feed holding the last one that arrived.
    pub last_after: Option<Duration>,
}

/// Sixteen events made in Google (and read by push), then all sixteen edited within one
/// second (one every 60 ms); waits at most [`PUSH_WAIT`] after the last edit for the
/// sixteen edits to reach the feed.
pub async fn sixteen_edits_within_a_second(env: &Env, alice: &SecretString) -> Burst {
    let mut ids = Vec::new();
    for i in 0..16 {
        let e = env
            .app
            .google
            .insert_event(
                alice,
                "primary",
                &timed(&format!("Standup {i}"), 1 + i),
                SendUpdates::None,
            )
            .await
            .unwrap();
        ids.push(e.id);
    }
    feed_until(env, "sixteen new events", |f| {
        ids.iter()
            .enumerate()
            .all(|(i, id)| titled(f, "event_created", id, &format!("Standup {i}")))
    })
    .await;
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        tokio::time::sleep_until((started + Duration::from_millis(60) * i as u32).into()).await;
        env.app
            .google
            .patch_event(
                alice,
                "primary",
                id,
                &json!({"summary": format!("Standup {i} (moved)")}),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
    }
    let last_edit = Instant::now();
    let edits_took = last_edit.duration_since(started);
    let mut seen: HashMap<usize, Duration> = HashMap::new();
    while seen.len() < ids.len() && last_edit.elapsed() < PUSH_WAIT {
        let feed = env.changes().await;
        let at = last_edit.elapsed();
        for (i, id) in ids.iter().enumerate() {
            if titled(&feed, "event_updated", id, &format!("Standup {i} (moved)")) {
                seen.entry(i).or_insert(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Burst {
        arrived: seen.len(),
        edits_took,
        last_after: seen.values().max().copied(),
    }
}
