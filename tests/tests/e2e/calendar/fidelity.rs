//! A corpus of tricky events survives both round trips unchanged: CRM → Google → CRM and
//! Google → CRM → Google (compared in the normalized form, and with no write caused by the
//! echo).

use crate::world::Env;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::calendar::model::CrmEvent;
use shared::calendar::normal::{instance_suffix, Normalized};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;

const USER: &str = "u-fid";
const ALICE: &str = "alice@example.com";

fn corpus() -> Vec<(&'static str, Value)> {
    let many: Vec<Value> = (0..60)
        .map(|i| {
            let response = ["accepted", "declined", "tentative", "needsAction"][i % 4];
            json!({
                "email": format!("person{i}@example.org"),
                "name": format!("Person {i}"),
                "response": response,
                "optional": i % 7 == 0,
            })
        })
        .collect();
    vec![
        (
            "all-day west of UTC",
            json!({"title": "Offsite (Los Angeles)", "start": {"date": "2027-03-01"}, "end": {"date": "2027-03-03"}}),
        ),
        (
            "all-day east of UTC",
            json!({"title": "Holiday (Tokyo)", "start": {"date": "2027-12-31"}, "end": {"date": "2028-01-01"}}),
        ),
        (
            "timed, negative offset",
            json!({"title": "Standup", "start": {"date_time": "2027-03-01T09:30:00-08:00"}, "end": {"date_time": "2027-03-01T09:45:00-08:00"}, "time_zone": "America/Los_Angeles"}),
        ),
        (
            "timed, +13:45",
            json!({"title": "Chatham", "start": {"date_time": "2027-06-01T08:00:00+13:45"}, "end": {"date_time": "2027-06-01T09:00:00+13:45"}, "time_zone": "Pacific/Chatham"}),
        ),
        (
            "across midnight",
            json!({"title": "Night shift", "start": {"date_time": "2027-04-01T22:00:00+02:00"}, "end": {"date_time": "2027-04-02T06:00:00+02:00"}, "time_zone": "Europe/Berlin"}),
        ),
        (
            "weekly series across DST",
            json!({"title": "Weekly 1:1", "start": {"date_time": "2027-03-08T10:00:00-08:00"}, "end": {"date_time": "2027-03-08T10:30:00-08:00"}, "time_zone": "America/Los_Angeles", "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"]}),
        ),
        (
            "series with an excluded date",
            json!({"title": "Daily sync", "start": {"date_time": "2027-10-25T09:00:00+02:00"}, "end": {"date_time": "2027-10-25T09:15:00+02:00"}, "time_zone": "Europe/Paris", "recurrence": ["RRULE:FREQ=DAILY;COUNT=10", "EXDATE;TZID=Europe/Paris:20271027T090000"]}),
        ),
        (
            "all-day yearly series",
            json!({"title": "Contract renewal", "start": {"date": "2027-02-28"}, "end": {"date": "2027-03-01"}, "recurrence": ["RRULE:FREQ=YEARLY;COUNT=3"]}),
        ),
        (
            "60 attendees, mixed answers",
            json!({"title": "All hands", "start": {"date_time": "2027-05-05T16:00:00Z"}, "end": {"date_time": "2027-05-05T17:00:00Z"}, "time_zone": "UTC", "attendees": many}),
        ),
        (
            "unicode everywhere",
            json!({"type": "call", "title": "Appel — Zoë Ørsted 東京 🚀", "description": "Ligne 1\nLigne 2 — «citation»\n\tindentée", "location": "Straße 5, München", "start": {"date_time": "2027-07-01T10:00:00+02:00"}, "end": {"date_time": "2027-07-01T10:30:00+02:00"}, "time_zone": "Europe/Berlin", "attendees": [{"email": "zoë@example.org", "name": "Zoë Ørsted"}]}),
        ),
        (
            "long description",
            json!({"title": "Contract review", "description": "Clause. ".repeat(900), "start": {"date_time": "2027-08-01T10:00:00Z"}, "end": {"date_time": "2027-08-01T12:00:00Z"}, "time_zone": "UTC"}),
        ),
        (
            "series with moved, edited and cancelled occurrences",
            json!({"title": "Weekly review", "start": {"date_time": "2027-03-22T16:00:00+01:00"}, "end": {"date_time": "2027-03-22T17:00:00+01:00"}, "time_zone": "Europe/Amsterdam",
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6"],
            "attendees": [{"email": "bo@example.org", "response": "accepted"}, {"email": "cy@example.org", "response": "needsAction"}],
            "exceptions": [
                // Across the DST change: the rule keeps 16:00 local, the move is to 18:00 local.
                {"original_start": {"date_time": "2027-03-29T16:00:00+02:00"}, "start": {"date_time": "2027-03-29T18:00:00+02:00"}, "end": {"date_time": "2027-03-29T19:30:00+02:00"}},
                {"original_start": {"date_time": "2027-04-05T14:00:00Z"}, "cancelled": true},
                {"original_start": {"date_time": "2027-04-12T16:00:00+02:00"}, "title": "Weekly review — Q2 kick-off", "location": "Zaal 3",
                 "attendees": [{"email": "bo@example.org", "response": "declined"}, {"email": "cy@example.org", "response": "accepted"}, {"email": "di@example.org"}]}
            ]}),
        ),
        (
            "all-day series with a cancelled day",
            json!({"title": "Conference", "start": {"date": "2027-05-10"}, "end": {"date": "2027-05-11"}, "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
                   "exceptions": [{"original_start": {"date": "2027-05-11"}, "cancelled": true}]}),
        ),
        (
            "private",
            json!({"title": "Doctor", "visibility": "private", "start": {"date_time": "2027-09-01T08:00:00+01:00"}, "end": {"date_time": "2027-09-01T08:30:00+01:00"}, "time_zone": "Europe/London"}),
        ),
    ]
}

async fn setup() -> (Env, SecretString) {
    let env = Env::new().await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    (env, alice)
}

async fn run(env: &Env, reason: SyncReason) {
    env.run_job(USER, reason).await;
}

async fn events(env: &Env, alice: &SecretString) -> Vec<Event> {
    env.google_events(alice).await
}

/// Google's picture of one event: a series with its exceptions (the other items of the list).
fn normalized_google(g: &Event, all: &[Event]) -> Normalized {
    let all: Vec<Value> = all
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    Normalized::from_google_series(&serde_json::to_value(g).unwrap(), &all)
}

/// The series masters and single events (not the instances of series).
fn masters(all: &[Event]) -> Vec<&Event> {
    all.iter()
        .filter(|e| e.recurring_event_id.is_none())
        .collect()
}

fn normalized_crm(v: &Value) -> Normalized {
    Normalized::from_crm(&serde_json::from_value::<CrmEvent>(v.clone()).unwrap())
}

#[tokio::test]
async fn crm_to_google_to_crm() {
    let (env, alice) = setup().await;
    run(&env, SyncReason::Scheduled).await;
    for (i, (name, e)) in corpus().into_iter().enumerate() {
        let (s, v) = env.put_event(USER, &format!("FID-{i}"), e).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{name}: {v}");
    }
    run(&env, SyncReason::RecordChange).await;
    let all = events(&env, &alice).await;
    let google = masters(&all);
    assert_eq!(google.len(), corpus().len());
    for (i, (name, e)) in corpus().into_iter().enumerate() {
        let g = google
            .iter()
            .find(|g| {
                g.extended_properties
                    .as_ref()
                    .and_then(|p| p.private.get("crmId"))
                    .map(String::as_str)
                    == Some(&format!("FID-{i}"))
            })
            .unwrap_or_else(|| panic!("{name} not in Google"));
        // Attendees' responses are theirs to give in Google: the CRM's copy of them is not
        // written (the user's own would be); everything else arrives as the CRM made it.
        assert_eq!(
            normalized_google(g, &all).without_responses(),
            normalized_crm(&e).without_responses(),
            "{name}: CRM → Google"
        );
        if e.get("recurrence").is_some() {
            let tz = e["time_zone"].as_str();
            assert_eq!(
                g.start.as_ref().unwrap().time_zone.as_deref(),
                tz,
                "{name}: the series keeps its zone"
            );
        }
    }
    // Google → CRM: a pass reads them back and finds nothing to tell the CRM (no echo).
    let before = env.changes().await.len();
    run(&env, SyncReason::Scheduled).await;
    assert_eq!(
        env.changes().await.len(),
        before,
        "reading our own writes creates no feed records"
    );
    // And the CRM pushing the same records again writes nothing to Google.
    env.sandbox.clear_request_log();
    for (i, (_, e)) in corpus().into_iter().enumerate() {
        env.put_event(USER, &format!("FID-{i}"), e).await;
    }
    run(&env, SyncReason::RecordChange).await;
    let writes = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "an unchanged push is no write");
}

#[tokio::test]
async fn google_to_crm_to_google() {
    let (env, alice) = setup().await;
    run(&env, SyncReason::Scheduled).await;
    // The same corpus, created in Google by the user: each event, then each exception on its
    // occurrence's instance (moved or edited: a patch; cancelled: a delete).
    for (_, e) in corpus() {
        let n = normalized_crm(&e);
        let mut body = Value::Object(n.to_google());
        body.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        let event: Event = serde_json::from_value(body).unwrap();
        let master = env
            .app
            .google
            .insert_event(&alice, "primary", &event, SendUpdates::None)
            .await
            .unwrap();
        for x in &n.exceptions {
            let id = format!(
                "{}_{}",
                master.id,
                instance_suffix(&x.original_start).unwrap()
            );
            if x.cancelled {
                env.app
                    .google
                    .delete_event(&alice, "primary", &id, None, SendUpdates::None)
                    .await
                    .unwrap();
            } else {
                let mut fields = n.occurrence(x).to_google();
                fields.remove("recurrence");
                env.app
                    .google
                    .patch_event(
                        &alice,
                        "primary",
                        &id,
                        &Value::Object(fields),
                        None,
                        SendUpdates::None,
                    )
                    .await
                    .unwrap();
            }
        }
    }
    run(&env, SyncReason::Push).await;
    let feed = env.changes().await;
    let created: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "event_created")
        .collect();
    assert_eq!(created.len(), corpus().len());
    // What the CRM receives normalizes to what Google holds, and is what the user made.
    let google = events(&env, &alice).await;
    for r in &created {
        let g = google
            .iter()
            .find(|g| r["google_id"] == g.id.as_str())
            .unwrap();
        let received = normalized_crm(&r["data"]["event"]);
        assert_eq!(
            received,
            normalized_google(g, &google),
            "Google → CRM: {}",
            r["data"]["event"]["title"]
        );
        let made = corpus()
            .into_iter()
            .map(|(_, e)| normalized_crm(&e))
            .find(|n| n.title == received.title)
            .unwrap();
        assert_eq!(received.exceptions, made.exceptions, "{}", made.title);
    }
    // The CRM stores them, acknowledges, and pushes them back as they came: Google is not
    // written to, and nothing changes there.
    for (i, r) in created.iter().enumerate() {
        let gid = r["google_id"].as_str().unwrap();
        let (s, v) = env
            .call("POST", "/v1/changes/ack", &env.sync, Some(json!({"items": [{"user": USER, "google_event_id": gid, "crm_id": format!("G-{i}")}]})))
            .await;
        assert_eq!(
            (s, v["items"][0]["result"].clone()),
            (StatusCode::OK, json!("linked"))
        );
    }
    env.sandbox.clear_request_log();
    for (i, r) in created.iter().enumerate() {
        let (s, v) = env
            .put_event(USER, &format!("G-{i}"), r["data"]["event"].clone())
            .await;
        assert!(s.is_success(), "{v}");
    }
    run(&env, SyncReason::RecordChange).await;
    let writes = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "the echo of Google's own content is no write");
    let after = events(&env, &alice).await;
    assert_eq!(after.len(), google.len());
    for g in &google {
        let now = after.iter().find(|a| a.id == g.id).unwrap();
        assert_eq!(now.etag, g.etag, "{:?} was rewritten", g.summary);
    }
}
