//! Google may send a channel's `sync` message before the watch call returns (push guide,
//! "Sync message"), so before the product has stored the channel: the handshake is still
//! answered as one (embedded store).

use crate::world::{Backend, Env};
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

/// A calendar Google cannot watch (holiday and other subscribed calendars answer 400
/// `pushNotSupportedForRequestedResource`): the pass still reads it and opens the other
/// calendars' channels, the account shows it as polled, its changes still reach the CRM by
/// polling, and watch is not asked again every pass — only once a day, and a calendar that
/// becomes watchable gets its channel then.
#[tokio::test]
async fn a_calendar_without_push_is_polled_and_not_rewatched_every_pass() {
    use shared::google::calendar::{Event, SendUpdates};

    const USER: &str = "u-nopush";
    const ALICE: &str = "alice@example.com";
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let holidays = env.sandbox.add_calendar(ALICE, "Holidays", "UTC");
    env.sandbox.set_push_supported(&holidays, false);
    let (s, v) = env
        .patch_account(USER, serde_json::json!({"monitored_calendars": [holidays]}))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    let watches = |env: &Env, calendar: &str| {
        let name = format!(
            "/calendars/{}",
            calendar.split('@').next().unwrap_or(calendar)
        );
        env.sandbox
            .request_log()
            .iter()
            .filter(|r| {
                r.method == "POST" && r.path.ends_with("/events/watch") && r.path.contains(&name)
            })
            .count()
    };

    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(watches(&env, &holidays), 1, "watch was tried once");
    assert_eq!(watches(&env, "primary"), 1);
    let (_, account) = env.account(USER).await;
    assert_eq!(
        account["calendars_without_push"],
        serde_json::json!([holidays]),
        "{account}"
    );
    assert_eq!(account["last_error"], serde_json::Value::Null, "{account}");

    // A holiday appears: the next (polling) pass brings it, and does not ask to watch again.
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    let e: Event = serde_json::from_value(serde_json::json!({"summary": "Founders' day", "start": {"date": "2027-03-01"}, "end": {"date": "2027-03-02"}})).unwrap();
    let made = env
        .app
        .google
        .insert_event(&alice, &holidays, &e, SendUpdates::None)
        .await
        .unwrap();
    env.clock.advance(time::Duration::minutes(10));
    env.run_job(USER, SyncReason::Scheduled).await;
    env.clock.advance(time::Duration::minutes(10));
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(watches(&env, &holidays), 1, "not re-watched every pass");
    let feed = env.changes().await;
    assert!(
        feed.iter()
            .any(|c| c["kind"] == "event_created" && c["google_id"] == made.id.as_str()),
        "the polled calendar's event reached the CRM: {feed:?}"
    );

    // A day later watch is tried again; once the calendar supports push it gets a channel
    // and is no longer shown as polled.
    env.sandbox.set_push_supported(&holidays, true);
    env.clock.advance(time::Duration::hours(25));
    env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(watches(&env, &holidays), 2, "rechecked after a day");
    let (_, account) = env.account(USER).await;
    assert_eq!(
        account["calendars_without_push"],
        serde_json::json!([]),
        "{account}"
    );
    let user = shared::domain::UserId::parse(USER).unwrap();
    let open: Vec<_> = env
        .app
        .store
        .list_channels(&env.tenant, &user, 10, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.calendar_id == holidays && c.state == shared::domain::ChannelState::Active)
        .collect();
    assert_eq!(open.len(), 1, "the holiday calendar is watched now");
}
