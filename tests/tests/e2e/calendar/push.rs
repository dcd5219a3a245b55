//! Push first: a pass opens a watch channel per calendar; Google's notifications reach the
//! webhook, which checks the channel and its token and queues a sync of that one calendar
//! (on SQS FIFO, moto) without calling Google; forged and unknown notifications are refused
//! and queue nothing; disconnecting stops the channel.

use crate::world::push::{
    alice_token, feed_until, pushed, sixteen_edits_within_a_second, timed, titled, PUSH_WAIT,
};
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::domain::{ChannelState, UserId};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::{SyncJob, SyncReason};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const USER: &str = "u-push";
const ALICE: &str = "alice@example.com";

async fn sqs(env: &Env) -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    (client, env.app.config.queue_url.clone().unwrap())
}

/// The sync jobs on the queue (received and deleted), waiting up to `wait` for at least one.
async fn drain(client: &aws_sdk_sqs::Client, url: &str, wait: Duration) -> Vec<SyncJob> {
    drain_with_ids(client, url, wait)
        .await
        .into_iter()
        .map(|(job, _)| job)
        .collect()
}

async fn channels(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_sandbox/channels", env.sandbox_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["channels"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_change_in_google_is_pushed_queued_and_synced() {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let (client, url) = sqs(&env).await;
    // Connecting queued the account's first pass (its initial read opens the channels).
    let first = drain(&client, &url, Duration::from_secs(5)).await;
    assert_eq!(
        first
            .iter()
            .map(|j| (j.user.as_str(), j.reason))
            .collect::<Vec<_>>(),
        vec![(USER, SyncReason::Scheduled)]
    );
    env.run_job(USER, SyncReason::Scheduled).await;

    // The pass opened a channel to our webhook.
    let open = channels(&env).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        open[0]["address"],
        format!("{}/webhooks/google/calendar", env.api)
    );
    let stored = env
        .app
        .store
        .list_channels(&env.tenant, &UserId::parse(USER).unwrap(), 10, None)
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    assert_eq!(stored.items[0].state, ChannelState::Active);
    // A second pass keeps it (no renewal while it is healthy).
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(channels(&env).await.len(), 1);
    drain(&client, &url, Duration::from_millis(200)).await;

    // The user adds an event in Google: Google posts to the webhook, which queues a sync of
    // that calendar.
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    let e: Event = serde_json::from_value(json!({"summary": "Pushed", "start": {"date": "2027-02-01"}, "end": {"date": "2027-02-02"}})).unwrap();
    let e = env
        .app
        .google
        .insert_event(&alice, "primary", &e, SendUpdates::None)
        .await
        .unwrap();
    let jobs = drain(&client, &url, Duration::from_secs(10)).await;
    assert!(!jobs.is_empty(), "the notification queued nothing");
    assert!(
        jobs.iter()
            .all(|j| j.reason == SyncReason::Push && j.calendar.as_deref() == Some("primary")),
        "{jobs:?}"
    );
    // The worker runs the job: the CRM hears of the event.
    let deadline = Instant::now() + Duration::from_secs(60);
    sync_worker::run(&env.app, &jobs[0], deadline)
        .await
        .unwrap();
    let feed = env.changes().await;
    assert!(
        feed.iter()
            .any(|r| r["kind"] == "event_created" && r["google_id"] == e.id.as_str()),
        "{feed:?}"
    );

    // Disconnecting stops the channel, at Google and in the store.
    let (s, _) = env
        .call(
            "DELETE",
            &format!("/v1/users/{USER}/google"),
            &env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(channels(&env).await.is_empty());
    let stored = env
        .app
        .store
        .list_channels(&env.tenant, &UserId::parse(USER).unwrap(), 10, None)
        .await
        .unwrap();
    assert!(stored
        .items
        .iter()
        .all(|c| c.state == ChannelState::Stopped));
}

#[tokio::test]
async fn forged_unknown_and_malformed_notifications_queue_nothing() {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let (client, url) = sqs(&env).await;
    env.run_job(USER, SyncReason::Scheduled).await;
    drain(&client, &url, Duration::from_millis(300)).await;
    let channel = env
        .app
        .store
        .list_channels(&env.tenant, &UserId::parse(USER).unwrap(), 10, None)
        .await
        .unwrap()
        .items
        .remove(0);
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = env
            .http
            .post(format!("{}/webhooks/google/calendar", env.api));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let goog = |id: &str, token: &str, resource: &str, state: &str| {
        vec![
            ("X-Goog-Channel-ID", id.to_owned()),
            ("X-Goog-Channel-Token", token.to_owned()),
            ("X-Goog-Resource-ID", resource.to_owned()),
            ("X-Goog-Resource-State", state.to_owned()),
            ("X-Goog-Message-Number", "7".to_owned()),
        ]
    };
    let forged = post(goog(
        &channel.id,
        "not-the-token",
        &channel.resource_id,
        "exists",
    ))
    .await
    .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let unknown = post(goog("cgs-nosuchchannel", "x", "r", "exists"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let malformed = post(vec![("X-Goog-Channel-ID", channel.id.clone())])
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(
        drain(&client, &url, Duration::from_millis(500))
            .await
            .is_empty(),
        "nothing may be queued"
    );
}

#[tokio::test]
async fn one_worker_per_account_and_channels_stop_when_the_grant_dies() {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    env.run_job(USER, SyncReason::Scheduled).await;
    let user = UserId::parse(USER).unwrap();

    // Another worker holds the account: this one hands the message back.
    assert!(env
        .app
        .store
        .acquire_lease(
            &env.tenant,
            &user,
            "other-worker",
            env.app.clock.now_unix() + 60
        )
        .await
        .unwrap());
    let job = SyncJob {
        tenant: env.tenant.clone(),
        user: user.clone(),
        calendar: None,
        reason: SyncReason::Manual,
        confirm_mass_deletion: false,
        record: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    assert!(matches!(
        sync_worker::run(&env.app, &job, deadline).await,
        Err(sync_worker::JobError::Busy)
    ));
    env.app
        .store
        .release_lease(&env.tenant, &user, "other-worker")
        .await
        .unwrap();
    sync_worker::run(&env.app, &job, deadline).await.unwrap();
    // A lease that ran out (a crashed worker) does not block.
    assert!(env
        .app
        .store
        .acquire_lease(&env.tenant, &user, "crashed", env.app.clock.now_unix() + 1)
        .await
        .unwrap());
    env.clock.advance(time::Duration::seconds(2));
    sync_worker::run(&env.app, &job, deadline).await.unwrap();

    // The user revokes access: the next pass finds the grant gone, the account needs
    // reauthorization, and its channel no longer takes notifications.
    let channel = env
        .app
        .store
        .list_channels(&env.tenant, &user, 10, None)
        .await
        .unwrap()
        .items
        .remove(0);
    env.sandbox.revoke_user_grants(ALICE);
    env.clock.advance(time::Duration::hours(2));
    sync_worker::run(&env.app, &job, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let (_, account) = env.account(USER).await;
    assert_eq!(account["status"], "needs_reauth");
    let stored = env
        .app
        .store
        .get_channel(&channel.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value.state, ChannelState::Stopped);
}

#[tokio::test]
async fn a_calendar_dropped_from_the_settings_has_its_channel_stopped() {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let team = env.sandbox.add_calendar(ALICE, "Team", "Europe/Paris");
    let (s, v) = env
        .patch_account(USER, json!({"monitored_calendars": [team]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(
        channels(&env).await.len(),
        2,
        "primary and team are watched"
    );
    let user = UserId::parse(USER).unwrap();
    let state_of = |calendar: String| {
        let env = &env;
        let user = user.clone();
        async move {
            env.app
                .store
                .list_channels(&env.tenant, &user, 10, None)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|c| c.calendar_id == calendar)
                .map(|c| c.state)
                .collect::<Vec<_>>()
        }
    };

    // The user stops monitoring the team calendar: its channel is stopped at Google and in
    // the store at once (its notifications are refused from now on); primary's stays.
    let (s, v) = env
        .patch_account(USER, json!({"monitored_calendars": []}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let open = channels(&env).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(state_of(team.clone()).await, [ChannelState::Stopped]);
    assert_eq!(state_of("primary".into()).await, [ChannelState::Active]);

    // The main calendar moves to the team calendar: primary is no longer read.
    let (s, v) = env
        .patch_account(USER, json!({"main_calendar": team}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(channels(&env).await.is_empty());
    assert_eq!(state_of("primary".into()).await, [ChannelState::Stopped]);
    // The next pass watches the new main calendar.
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(channels(&env).await.len(), 1);
    assert!(state_of(team).await.contains(&ChannelState::Active));
}

// ---- no notification dropped ------------------------------------------------------------

/// Waits (at most `wait`) until the webhook has answered `n` notifications in all.
async fn notifications_answered(env: &Env, n: usize, wait: Duration) {
    let deadline = Instant::now() + wait;
    while env.notifications.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "the webhook answered {} notifications, expected {n}",
            env.notifications.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sync jobs on the queue with their deduplication ids (received and deleted), waiting up
/// to `wait` for at least one.
async fn drain_with_ids(
    client: &aws_sdk_sqs::Client,
    url: &str,
    wait: Duration,
) -> Vec<(SyncJob, String)> {
    let deadline = Instant::now() + wait;
    let mut jobs = Vec::new();
    loop {
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId,
            )
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        for m in &messages {
            let dedup = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId)
                })
                .cloned()
                .unwrap_or_default();
            jobs.push((serde_json::from_str(m.body().unwrap()).unwrap(), dedup));
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if (messages.is_empty() && !jobs.is_empty()) || Instant::now() >= deadline {
            return jobs;
        }
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_burst_queues_one_job_and_a_notification_after_its_listing_began_queues_another() {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let (client, url) = sqs(&env).await;
    env.run_job(USER, SyncReason::Scheduled).await;
    drain(&client, &url, Duration::from_millis(300)).await;
    let alice = alice_token(&env);
    // The channel's handshake is in.
    notifications_answered(&env, 1, PUSH_WAIT).await;

    // Eight events made in Google before any worker runs: eight notifications, one job.
    let before = env.notifications.load(Ordering::SeqCst);
    let mut made = Vec::new();
    for i in 0..8 {
        let e = env
            .app
            .google
            .insert_event(
                &alice,
                "primary",
                &timed(&format!("Burst {i}"), 1 + i),
                SendUpdates::None,
            )
            .await
            .unwrap();
        made.push(e.id);
    }
    notifications_answered(&env, before + 8, PUSH_WAIT).await;
    let jobs = drain_with_ids(&client, &url, Duration::from_secs(2)).await;
    assert_eq!(jobs.len(), 1, "a burst is one job: {jobs:?}");
    let (job, first_id) = jobs.into_iter().next().unwrap();
    assert_eq!(job.reason, SyncReason::Push);
    assert_eq!(job.calendar.as_deref(), Some("primary"));

    // The worker runs it: its listing sees all eight.
    sync_worker::run(&env.app, &job, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let feed = env.changes().await;
    for id in &made {
        assert!(
            feed.iter()
                .any(|r| r["kind"] == "event_created" && r["google_id"] == id.as_str()),
            "{id} missing: {feed:?}"
        );
    }

    // A change after that job began listing (seconds later, well inside SQS's five-minute
    // deduplication window, and a job already consumed): its notification is a new job, under
    // a new deduplication id — SQS would drop a message that reused the first one's.
    let before = env.notifications.load(Ordering::SeqCst);
    env.app
        .google
        .patch_event(
            &alice,
            "primary",
            &made[0],
            &json!({"summary": "Burst 0 (renamed)"}),
            None,
            SendUpdates::None,
        )
        .await
        .unwrap();
    notifications_answered(&env, before + 1, PUSH_WAIT).await;
    let jobs = drain_with_ids(&client, &url, Duration::from_secs(2)).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_ne!(
        jobs[0].1, first_id,
        "the second job reuses the first one's dedup id"
    );
    sync_worker::run(
        &env.app,
        &jobs[0].0,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(env
        .changes()
        .await
        .iter()
        .any(|r| r["kind"] == "event_updated"
            && r["google_id"] == made[0].as_str()
            && r["data"]["event"]["title"] == "Burst 0 (renamed)"));
}

async fn two_saves_a_tenth_of_a_second_apart(backend: Backend) {
    let (env, alice) = pushed(backend).await;
    let e = env
        .app
        .google
        .insert_event(&alice, "primary", &timed("Draft", 3), SendUpdates::None)
        .await
        .unwrap();
    feed_until(&env, "the new event", |f| {
        titled(f, "event_created", &e.id, "Draft")
    })
    .await;
    for title in ["Review", "Review (final)"] {
        env.app
            .google
            .patch_event(
                &alice,
                "primary",
                &e.id,
                &json!({"summary": title}),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    feed_until(&env, "the second save", |f| {
        titled(f, "event_updated", &e.id, "Review (final)")
    })
    .await;
}

#[tokio::test]
async fn two_saves_a_tenth_of_a_second_apart_both_arrive_by_push() {
    two_saves_a_tenth_of_a_second_apart(Backend::Aws).await;
}

#[tokio::test]
async fn two_saves_a_tenth_of_a_second_apart_both_arrive_by_push_on_the_local_server() {
    two_saves_a_tenth_of_a_second_apart(Backend::Local).await;
}

#[tokio::test]
async fn sixteen_edits_within_a_second_all_arrive_by_push() {
    let (env, alice) = pushed(Backend::Aws).await;
    let burst = sixteen_edits_within_a_second(&env, &alice).await;
    assert_eq!(burst.arrived, 16, "{burst:?}");
}

#[tokio::test]
async fn sixteen_edits_within_a_second_all_arrive_by_push_on_the_local_server() {
    let (env, alice) = pushed(Backend::Local).await;
    let burst = sixteen_edits_within_a_second(&env, &alice).await;
    assert_eq!(burst.arrived, 16, "{burst:?}");
}

async fn a_delete_right_after_a_create(backend: Backend) {
    let (env, alice) = pushed(backend).await;
    let e = env
        .app
        .google
        .insert_event(
            &alice,
            "primary",
            &timed("Booked by mistake", 5),
            SendUpdates::None,
        )
        .await
        .unwrap();
    // The create's job has run (and listed) when the user deletes the event.
    feed_until(&env, "the create", |f| {
        titled(f, "event_created", &e.id, "Booked by mistake")
    })
    .await;
    env.app
        .google
        .delete_event(&alice, "primary", &e.id, None, SendUpdates::None)
        .await
        .unwrap();
    feed_until(&env, "the delete", |f| {
        f.iter().any(|r| {
            r["google_id"] == e.id.as_str()
                && (r["kind"] == "event_deleted" || r["kind"] == "event_unlinked")
        })
    })
    .await;
}

#[tokio::test]
async fn a_delete_right_after_a_create_arrives_by_push() {
    a_delete_right_after_a_create(Backend::Aws).await;
}

#[tokio::test]
async fn a_delete_right_after_a_create_arrives_by_push_on_the_local_server() {
    a_delete_right_after_a_create(Backend::Local).await;
}
