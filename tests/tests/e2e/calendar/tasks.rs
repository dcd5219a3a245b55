//! CRM tasks on the calendar: a due date or time, a title, notes, done or not, synced two
//! ways as calendar items of their own type and colour that do not make the user busy; a
//! task ticked or unticked in Google (the `✓` at the start of its title) reaches the CRM;
//! a retried PUT makes one item; deletions follow the tenant's policy as meetings' do.

use crate::world::{Backend, Env, CALENDAR_SCOPE};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;

const USER: &str = "u-tasks";
const ALICE: &str = "alice.tasks@example.com";

async fn connected(defaults: Value) -> (Env, SecretString) {
    let env = Env::new_on(Backend::Embedded).await;
    env.set_defaults(defaults).await;
    env.sandbox.add_user(ALICE, "Alice");
    let q = env.connect(USER, &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
    env.run_job(USER, SyncReason::Scheduled).await;
    let alice = env.google_token(ALICE, CALENDAR_SCOPE);
    (env, alice)
}

fn task(title: &str, due: Value, done: bool) -> Value {
    json!({"type": "task", "title": title, "description": "Notes: price list v2",
           "start": due, "done": done})
}

async fn only_event(env: &Env, alice: &SecretString) -> Event {
    let mut events = env.google_events(alice).await;
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn updates(feed: &[Value], crm_id: &str) -> Vec<Value> {
    feed.iter()
        .filter(|r| r["kind"] == "event_updated" && r["crm_id"] == crm_id)
        .map(|r| r["data"]["event"].clone())
        .collect()
}

#[tokio::test]
async fn a_crm_task_is_a_free_calendar_item_of_its_own_colour_ticked_when_done() {
    let (env, alice) = connected(json!({"event_colors": {"task": "5", "meeting": "9"}})).await;
    let due = json!({"date": "2027-02-03"});
    for _ in 0..2 {
        // The CRM retries its PUT: one item in Google all the same.
        let (s, v) = env
            .put_event(USER, "TSK-1", task("Send the quote", due.clone(), false))
            .await;
        assert!(s.is_success(), "{v}");
    }
    env.run_job(USER, SyncReason::RecordChange).await;
    let e = only_event(&env, &alice).await;
    assert_eq!(e.summary.as_deref(), Some("Send the quote"));
    assert_eq!(e.color_id.as_deref(), Some("5"));
    assert_eq!(
        e.start.as_ref().unwrap().date.as_deref(),
        Some("2027-02-03")
    );
    assert_eq!(e.end.as_ref().unwrap().date.as_deref(), Some("2027-02-04"));
    assert_eq!(e.description.as_deref(), Some("Notes: price list v2"));
    assert_eq!(
        e.extended_properties.as_ref().unwrap().private["crmType"],
        "task"
    );
    let raw = serde_json::to_value(&e).unwrap();
    assert_eq!(raw["transparency"], "transparent", "{raw}");
    let (_, view) = env.event(USER, "TSK-1").await;
    assert_eq!(view["state"], "synced", "{view}");

    // Done in the CRM: ticked in Google.
    let (s, v) = env
        .put_event(USER, "TSK-1", task("Send the quote", due.clone(), true))
        .await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::RecordChange).await;
    let e = only_event(&env, &alice).await;
    assert_eq!(e.summary.as_deref(), Some("\u{2713} Send the quote"));
    let (_, view) = env.event(USER, "TSK-1").await;
    assert_eq!(view["state"], "synced", "{view}");
    // Nothing came back to the CRM of its own write.
    assert!(updates(&env.changes().await, "TSK-1").is_empty());

    // A task keeps the user free for scheduling screens.
    let (s, v) = env
        .call(
            "POST",
            &format!("/v1/users/{USER}/availability"),
            &env.sync,
            Some(json!({"time_min": "2027-02-03T00:00:00Z", "time_max": "2027-02-04T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["busy"], json!([]), "{v}");
}

#[tokio::test]
async fn a_task_ticked_or_unticked_in_google_reaches_the_crm() {
    let (env, alice) = connected(json!({})).await;
    let due = json!({"date_time": "2027-02-03T15:00:00+01:00"});
    let (s, v) = env
        .put_event(USER, "TSK-2", task("Call back", due, false))
        .await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::RecordChange).await;
    let e = only_event(&env, &alice).await;
    // Due at a time: an item of no length, at that time.
    assert_eq!(
        e.start.as_ref().unwrap().date_time,
        e.end.as_ref().unwrap().date_time
    );

    let rename = |summary: &str| json!({ "summary": summary });
    for (summary, done) in [("\u{2714} Call back", true), ("Call back (moved)", false)] {
        env.app
            .google
            .patch_event(
                &alice,
                "primary",
                &e.id,
                &rename(summary),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
        env.run_job(USER, SyncReason::Push).await;
        let got = updates(&env.changes().await, "TSK-2");
        let last = got.last().expect("the edit reached the feed");
        assert_eq!(last["type"], "task", "{last}");
        assert_eq!(last["done"].as_bool().unwrap_or(false), done, "{last}");
        assert!(!last["title"]
            .as_str()
            .unwrap()
            .starts_with(['\u{2713}', '\u{2714}']));
        let (_, view) = env.event(USER, "TSK-2").await;
        assert_eq!(view["state"], "synced", "{view}");
    }
    // Ticking and unticking are Google's edits the CRM had not touched: no conflict.
    let feed = env.changes().await;
    assert!(
        feed.iter().all(|r| r["data"]["conflict"].is_null()),
        "{feed:?}"
    );
}

#[tokio::test]
async fn tasks_are_checked_at_the_edge_and_deleted_like_meetings() {
    let (env, alice) = connected(json!({"deletion_policy": "propagate"})).await;
    for (body, field) in [
        (json!({"type": "task", "title": "x"}), "start"),
        (
            json!({"type": "task", "title": "x", "start": {"date": "2027-02-03"},
                   "end": {"date": "2027-02-02"}}),
            "end",
        ),
        (
            json!({"type": "meeting", "title": "x", "done": true,
                   "start": {"date": "2027-02-03"}, "end": {"date": "2027-02-04"}}),
            "done",
        ),
        (
            json!({"type": "meeting", "title": "x", "start": {"date": "2027-02-03"}}),
            "end",
        ),
    ] {
        let (s, v) = env.put_event(USER, "TSK-BAD", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let (s, _) = env
        .put_event(
            USER,
            "TSK-3",
            task("Renew", json!({"date": "2027-02-05"}), false),
        )
        .await;
    assert!(s.is_success());
    env.run_job(USER, SyncReason::RecordChange).await;
    only_event(&env, &alice).await;
    let (s, v) = env
        .call(
            "DELETE",
            &format!("/v1/users/{USER}/events/TSK-3"),
            &env.sync,
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::RecordChange).await;
    assert!(env.google_events(&alice).await.is_empty());
}
