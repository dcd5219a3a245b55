//! Availability for scheduling (`POST /v1/users/{user}/availability`) against the sandbox's
//! `freebusy.query`: busy from meetings synced from the CRM and events made in Google, a
//! series expanded, transparent and cancelled events free, the asked time zone, each 422,
//! a calendar the user cannot see, tenant isolation and the calendar product.

use crate::world::{Backend, Env};
use serde_json::{json, Value};
use shared::google::calendar::{Event, EventDateTime, SendUpdates};
use shared::queue::SyncReason;

const USER: &str = "u-avail";
const ALICE: &str = "alice.avail@example.com";
const DAY: (&str, &str) = ("2027-01-11T00:00:00Z", "2027-01-12T00:00:00Z");

async fn connected() -> Env {
    let env = Env::new_on(Backend::Embedded).await;
    env.sandbox.add_user(ALICE, "Alice");
    let q = env.connect(USER, &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
    env
}

async fn ask(env: &Env, body: Value) -> (http::StatusCode, Value) {
    env.call(
        "POST",
        &format!("/v1/users/{USER}/availability"),
        &env.sync,
        Some(body),
    )
    .await
}

fn at(t: &str) -> EventDateTime {
    EventDateTime {
        date_time: Some(t.into()),
        ..Default::default()
    }
}

fn google_event(start: &str, end: &str, extra: Value) -> Event {
    let mut v = serde_json::to_value(Event {
        summary: Some("made in Google".into()),
        start: Some(at(start)),
        end: Some(at(end)),
        ..Default::default()
    })
    .unwrap();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

async fn insert(env: &Env, event: Event) -> Event {
    let alice = crate::world::backlog::token(env, ALICE);
    env.app
        .google
        .insert_event(&alice, "primary", &event, SendUpdates::None)
        .await
        .unwrap()
}

fn periods(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_owned(),
                p["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(s: &str, e: &str) -> (String, String) {
    (s.to_owned(), e.to_owned())
}

#[tokio::test]
async fn busy_comes_from_crm_meetings_google_events_and_series_not_free_ones() {
    let env = connected().await;
    let (s, v) = env
        .call(
            "PUT",
            &format!("/v1/users/{USER}/events/MTG-AV-1"),
            &env.sync,
            Some(json!({
                "type": "meeting", "title": "Customer call",
                "start": {"date_time": "2027-01-11T09:00:00+01:00"},
                "end": {"date_time": "2027-01-11T10:00:00+01:00"},
                "time_zone": "Europe/Berlin",
            })),
        )
        .await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::Scheduled).await;
    // Overlaps the CRM meeting's end: merged with it.
    insert(
        &env,
        google_event("2027-01-11T08:30:00Z", "2027-01-11T09:30:00Z", json!({})),
    )
    .await;
    insert(
        &env,
        google_event(
            "2027-01-11T12:00:00Z",
            "2027-01-11T13:00:00Z",
            json!({"transparency": "transparent"}),
        ),
    )
    .await;
    let cancelled = insert(
        &env,
        google_event("2027-01-11T14:00:00Z", "2027-01-11T15:00:00Z", json!({})),
    )
    .await;
    let alice = crate::world::backlog::token(&env, ALICE);
    env.app
        .google
        .delete_event(&alice, "primary", &cancelled.id, None, SendUpdates::None)
        .await
        .unwrap();
    insert(
        &env,
        google_event(
            "2027-01-10T16:00:00Z",
            "2027-01-10T16:30:00Z",
            json!({"recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
                   "start": {"dateTime": "2027-01-10T17:00:00+01:00", "timeZone": "Europe/Berlin"},
                   "end": {"dateTime": "2027-01-10T17:30:00+01:00", "timeZone": "Europe/Berlin"}}),
        ),
    )
    .await;

    let (s, v) = ask(&env, json!({"time_min": DAY.0, "time_max": DAY.1})).await;
    assert_eq!(s, 200, "{v}");
    let expected = vec![
        pair("2027-01-11T08:00:00Z", "2027-01-11T09:30:00Z"),
        pair("2027-01-11T16:00:00Z", "2027-01-11T16:30:00Z"),
    ];
    assert_eq!(periods(&v["busy"]), expected, "{v}");
    assert_eq!(v["time_zone"], "UTC");
    assert_eq!(periods(&v["calendars"]["primary"]["busy"]), expected);
    assert!(v["calendars"]["primary"].get("error").is_none());

    // The same window asked in Berlin time: the same instants in Berlin's offset.
    let (s, v) = ask(
        &env,
        json!({"time_min": "2027-01-11T01:00:00+01:00", "time_max": "2027-01-12T01:00:00+01:00",
               "time_zone": "Europe/Berlin", "calendars": ["primary"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["time_zone"], "Europe/Berlin");
    assert_eq!(v["time_min"], "2027-01-11T01:00:00+01:00");
    assert_eq!(
        periods(&v["busy"]),
        vec![
            pair("2027-01-11T09:00:00+01:00", "2027-01-11T10:30:00+01:00"),
            pair("2027-01-11T17:00:00+01:00", "2027-01-11T17:30:00+01:00"),
        ]
    );
}

#[tokio::test]
async fn refusals_are_422_naming_the_field_and_unseen_calendars_an_error_of_their_own() {
    let env = connected().await;
    let refused = [
        (json!({"time_max": DAY.1}), "time_min"),
        (
            json!({"time_min": DAY.0, "time_max": "2027-01-12T00:00:00"}),
            "time_max",
        ),
        (json!({"time_min": DAY.1, "time_max": DAY.0}), "time_max"),
        (
            json!({"time_min": "2027-01-01T00:00:00Z", "time_max": "2027-04-02T00:00:00Z"}),
            "90 days",
        ),
        (
            json!({"time_min": DAY.0, "time_max": DAY.1, "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"time_min": DAY.0, "time_max": DAY.1,
                   "calendars": (0..51).map(|i| format!("c{i}")).collect::<Vec<_>>()}),
            "calendars",
        ),
    ];
    for (body, field) in refused {
        let (s, v) = ask(&env, body.clone()).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }

    env.sandbox.add_user("bob.avail@example.com", "Bob");
    let (s, v) = ask(
        &env,
        json!({"time_min": DAY.0, "time_max": DAY.1,
               "calendars": ["primary", "bob.avail@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["calendars"]["bob.avail@example.com"],
        json!({"busy": [], "error": "not_found"})
    );
    assert_eq!(v["calendars"]["primary"], json!({"busy": []}));
}

#[tokio::test]
async fn another_tenants_user_is_404_and_an_account_without_the_calendar_is_409() {
    let env = connected().await;
    let (_, other_admin) = env.other_tenant("Other availability").await;
    let (s, key) = env
        .call(
            "POST",
            "/v1/admin/api-keys",
            &other_admin,
            Some(json!({"name": "other sync", "scope": "sync"})),
        )
        .await;
    assert!(s.is_success(), "{key}");
    let other_sync = key["key_secret"].as_str().unwrap();
    let window = json!({"time_min": DAY.0, "time_max": DAY.1});
    let (s, v) = env
        .call(
            "POST",
            &format!("/v1/users/{USER}/availability"),
            other_sync,
            Some(window.clone()),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");

    env.sandbox.add_user("carol.avail@example.com", "Carol");
    let q = env
        .connect(
            "u-avail-contacts",
            &["contacts"],
            "carol.avail@example.com",
            "",
        )
        .await;
    assert_eq!(q["google_connect"], "connected");
    let (s, v) = env
        .call(
            "POST",
            "/v1/users/u-avail-contacts/availability",
            &env.sync,
            Some(window),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "product_not_connected");
}
