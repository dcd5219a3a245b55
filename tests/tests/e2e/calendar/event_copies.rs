//! One Google event id in several places (review findings 6 and 19, audit F5): an invitation
//! between two connected users of a tenant is in both users' calendars under one id, and an
//! event can be in two calendars one user reads. The CRM gets one record per meeting: the
//! organizer's; one per user and Google event in two calendars, with no flapping and no
//! second `event_created`.
//!
//! On the embedded adapters with the project's Google sandbox, whose attendee copies are
//! Google's (same id, private extended properties per copy).

use crate::world::backlog::token;
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

fn event(id: Option<&str>, summary: &str, attendees: &[&str]) -> Event {
    let mut v = json!({
        "summary": summary,
        "start": {"dateTime": "2030-04-02T10:00:00Z"},
        "end": {"dateTime": "2030-04-02T11:00:00Z"},
        "attendees": attendees.iter().map(|a| json!({"email": a})).collect::<Vec<_>>(),
    });
    if let Some(id) = id {
        v["id"] = json!(id);
    }
    serde_json::from_value(v).unwrap()
}

fn of_kind<'a>(feed: &'a [Value], kind: &str, user: &str) -> Vec<&'a Value> {
    feed.iter()
        .filter(|r| r["kind"] == kind && r["user"] == user)
        .collect()
}

async fn both_connected() -> Env {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.connect("u-bob", &["calendar"], BOB, "").await;
    env.drain_jobs(100).await;
    env
}

/// Alice's CRM meeting with Bob: Bob's calendar holds Google's copy, under the same id and
/// without Alice's private properties. Bob's sync does not import it as a Google-born
/// meeting of his (the CRM has it, as Alice's, with Bob on it), neither at first nor after
/// edits; a meeting Bob makes in Google with Alice reaches the CRM once, as Bob's.
#[tokio::test]
async fn a_meeting_between_two_connected_users_reaches_the_crm_once() {
    let env = both_connected().await;
    let (s, v) = env
        .put_event(
            "u-alice",
            "MTG-1",
            json!({
                "type": "meeting",
                "title": "Pipeline review",
                "start": {"date_time": "2030-04-01T09:00:00Z"},
                "end": {"date_time": "2030-04-01T10:00:00Z"},
                "time_zone": "UTC",
                "attendees": [{"email": BOB}],
            }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let (_, v) = env.event("u-alice", "MTG-1").await;
    let gid = v["google_event_id"].as_str().unwrap().to_owned();
    // Google put the invitation into Bob's calendar, under the same id.
    let copy = env
        .app
        .google
        .get_event(&token(&env, BOB), "primary", &gid)
        .await
        .unwrap()
        .expect("Bob's copy");
    assert_eq!(
        copy.organizer.as_ref().and_then(|o| o.email.as_deref()),
        Some(ALICE)
    );
    env.run_job("u-bob", SyncReason::Manual).await;
    env.drain_jobs(100).await;
    // Alice edits the meeting in the CRM; Bob's copy follows; Bob's sync reads it again.
    let (s, v) = env
        .put_event(
            "u-alice",
            "MTG-1",
            json!({
                "type": "meeting",
                "title": "Pipeline review (room 2)",
                "start": {"date_time": "2030-04-01T09:00:00Z"},
                "end": {"date_time": "2030-04-01T10:00:00Z"},
                "time_zone": "UTC",
                "attendees": [{"email": BOB}],
            }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    env.run_job("u-bob", SyncReason::Manual).await;
    env.drain_jobs(100).await;
    let feed = env.changes().await;
    let bobs: Vec<&Value> = feed
        .iter()
        .filter(|r| r["user"] == "u-bob" && r["google_id"] == gid.as_str())
        .collect();
    assert!(
        bobs.is_empty(),
        "Alice's meeting came back to the CRM as Bob's: {bobs:?}"
    );

    // Bob makes a meeting in Google and invites Alice: the CRM hears of it once, as Bob's.
    let bobs_own = env
        .app
        .google
        .insert_event(
            &token(&env, BOB),
            "primary",
            &event(None, "Bob's lunch & learn", &[ALICE]),
            SendUpdates::None,
        )
        .await
        .unwrap();
    env.run_job("u-bob", SyncReason::Manual).await;
    env.run_job("u-alice", SyncReason::Manual).await;
    env.drain_jobs(100).await;
    let feed = env.changes().await;
    let created: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "event_created" && r["google_id"] == bobs_own.id.as_str())
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["user"], "u-bob");
}

/// One user reads two calendars holding the same event id (an invitation in the primary
/// calendar and in a monitored team calendar): one Google-born record, edits announced as
/// updates, the pair stays in the calendar it was first read in. The user's own CRM meeting
/// seen in the team calendar is not imported at all. The CRM acknowledges the record naming
/// its calendar.
#[tokio::test]
async fn one_event_in_two_calendars_of_a_user_is_one_record() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let team = env.sandbox.add_calendar(ALICE, "Team", "UTC");
    let (s, v) = env
        .patch_account("u-alice", json!({ "monitored_calendars": [team] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let alice = token(&env, ALICE);
    let id = "sharedinvite0001";
    for cal in ["primary", team.as_str()] {
        env.app
            .google
            .insert_event(
                &alice,
                cal,
                &event(Some(id), "Offsite", &[]),
                SendUpdates::None,
            )
            .await
            .unwrap();
    }
    // Alice's own CRM meeting, whose id also shows up in the team calendar.
    let (s, v) = env
        .put_event(
            "u-alice",
            "MTG-7",
            json!({
                "type": "meeting", "title": "Board prep",
                "start": {"date_time": "2030-04-03T09:00:00Z"},
                "end": {"date_time": "2030-04-03T10:00:00Z"}, "time_zone": "UTC",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let (_, v) = env.event("u-alice", "MTG-7").await;
    let own = v["google_event_id"].as_str().unwrap().to_owned();
    env.app
        .google
        .insert_event(
            &alice,
            &team,
            &event(Some(&own), "Board prep", &[]),
            SendUpdates::None,
        )
        .await
        .unwrap();
    for _ in 0..3 {
        env.run_job("u-alice", SyncReason::Manual).await;
    }
    // An edit in each calendar.
    for (cal, title) in [
        ("primary", "Offsite (primary edit)"),
        (team.as_str(), "Offsite (team edit)"),
    ] {
        env.app
            .google
            .patch_event(
                &alice,
                cal,
                id,
                &json!({"summary": title}),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
        env.run_job("u-alice", SyncReason::Manual).await;
        env.run_job("u-alice", SyncReason::Manual).await;
    }
    env.drain_jobs(100).await;
    let feed = env.changes().await;
    let created: Vec<&Value> = of_kind(&feed, "event_created", "u-alice")
        .into_iter()
        .filter(|r| r["google_id"] == id || r["google_id"] == own.as_str())
        .collect();
    assert_eq!(
        created.len(),
        1,
        "one record for the invitation, none for MTG-7: {created:?}"
    );
    let calendar = created[0]["data"]["calendar_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let updates: Vec<&Value> = of_kind(&feed, "event_updated", "u-alice")
        .into_iter()
        .filter(|r| r["google_id"] == id)
        .collect();
    assert!(
        updates
            .iter()
            .all(|r| r["data"]["calendar_id"] == calendar.as_str()),
        "the pair does not flip calendars: {updates:?}"
    );
    assert!(!updates.is_empty());

    // The CRM names the record, with the calendar from the feed.
    let (s, v) = env
        .call(
            "POST",
            "/v1/changes/ack",
            &env.sync,
            Some(json!({"items": [{"user": "u-alice", "google_event_id": id, "calendar_id": calendar, "crm_id": "OFF-1"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["result"], "linked", "{v}");
    let (_, v) = env.event("u-alice", "OFF-1").await;
    assert_eq!(v["google_event_id"], id, "{v}");
}

/// An event the user deletes in Google and then restores from Google's trash comes back
/// under its id: the CRM hears of it again (finding 28), while a late copy of the deleted
/// version is still ignored.
#[tokio::test]
async fn an_event_restored_from_googles_trash_reaches_the_crm_again() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let alice = token(&env, ALICE);
    let made = env
        .app
        .google
        .insert_event(
            &alice,
            "primary",
            &event(None, "Dentist", &[]),
            SendUpdates::None,
        )
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    env.app
        .google
        .delete_event(&alice, "primary", &made.id, None, SendUpdates::None)
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    env.run_job("u-alice", SyncReason::Manual).await;
    let about = |feed: &[Value]| -> Vec<String> {
        feed.iter()
            .filter(|r| r["google_id"] == made.id.as_str())
            .map(|r| r["kind"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let before = about(&env.changes().await);
    assert_eq!(
        before.first().map(String::as_str),
        Some("event_created"),
        "{before:?}"
    );
    assert_eq!(before.len(), 2, "created, then gone: {before:?}");
    // Restored from the trash (on the organizer's calendar a deleted event keeps its
    // details so that it can be undeleted).
    env.app
        .google
        .patch_event(
            &alice,
            "primary",
            &made.id,
            &json!({"status": "confirmed"}),
            None,
            SendUpdates::None,
        )
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    env.run_job("u-alice", SyncReason::Manual).await;
    let after = about(&env.changes().await);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[2], "event_created", "{after:?}");
}

/// A Google event that carries the private properties of a CRM meeting whose pair is another
/// event (the rest of a series the user split in Google with "this and following events": a
/// new series under a new id with the original's properties; or a copy of the meeting)
/// reaches the CRM as a new record that names the meeting it came from (audit F22).
#[tokio::test]
async fn a_series_split_in_google_names_the_crm_meeting_it_came_from() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let (s, v) = env
        .put_event(
            "u-alice",
            "MTG-S",
            json!({
                "type": "meeting", "title": "Weekly sync",
                "start": {"date_time": "2030-04-01T09:00:00Z"},
                "end": {"date_time": "2030-04-01T09:30:00Z"}, "time_zone": "UTC",
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"],
            }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let alice = token(&env, ALICE);
    let (_, v) = env.event("u-alice", "MTG-S").await;
    let gid = v["google_event_id"].as_str().unwrap().to_owned();
    let original = env
        .app
        .google
        .get_event(&alice, "primary", &gid)
        .await
        .unwrap()
        .unwrap();
    // What Google Calendar does on "this and following": the series ends, and a new one
    // starts under a new id with the original's properties.
    env.app
        .google
        .patch_event(
            &alice,
            "primary",
            &gid,
            &json!({"recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20300415T000000Z"]}),
            None,
            SendUpdates::None,
        )
        .await
        .unwrap();
    let mut rest: Event = serde_json::from_value(json!({
        "summary": "Weekly sync (new room)",
        "start": {"dateTime": "2030-04-22T09:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2030-04-22T09:30:00Z", "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=7"],
    }))
    .unwrap();
    rest.extended_properties = original.extended_properties.clone();
    let rest = env
        .app
        .google
        .insert_event(&alice, "primary", &rest, SendUpdates::None)
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    env.drain_jobs(100).await;
    let feed = env.changes().await;
    let created: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "event_created" && r["google_id"] == rest.id.as_str())
        .collect();
    assert_eq!(created.len(), 1, "{feed:?}");
    assert_eq!(
        created[0]["data"]["from_crm_id"], "MTG-S",
        "{:?}",
        created[0]
    );
    // The CRM meeting itself stays paired with the original series.
    let (_, v) = env.event("u-alice", "MTG-S").await;
    assert_eq!(v["google_event_id"], gid.as_str(), "{v}");
}

/// A tombstone (a pair deleted on either side) is kept 90 days, then the store forgets it
/// (finding 28): listings of the user's pairs no longer carry every pair ever deleted.
#[tokio::test]
async fn tombstones_are_forgotten_after_ninety_days() {
    use shared::domain::{Collection, UserId};
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let alice = token(&env, ALICE);
    let made = env
        .app
        .google
        .insert_event(
            &alice,
            "primary",
            &event(None, "Gone soon", &[]),
            SendUpdates::None,
        )
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    env.app
        .google
        .delete_event(&alice, "primary", &made.id, None, SendUpdates::None)
        .await
        .unwrap();
    env.run_job("u-alice", SyncReason::Manual).await;
    let u = UserId::parse("u-alice").unwrap();
    let pairs = async || {
        env.app
            .store
            .find_pairs_by_google_id(&env.tenant, &u, Collection::Calendar, &made.id)
            .await
            .unwrap()
    };
    let kept = pairs().await;
    assert_eq!(kept.len(), 1);
    assert!(kept[0].value.deleted_at.is_some(), "a tombstone");
    env.clock.advance(time::Duration::days(89));
    assert_eq!(pairs().await.len(), 1, "kept for late news");
    env.clock.advance(time::Duration::days(2));
    assert!(pairs().await.is_empty(), "forgotten after 90 days");
}
