//! Availability for scheduling (`POST /v1/users/{user}/availability`) against the sandbox's
//! `freebusy.query`: busy from meetings synced from the CRM and events made in Google, a
//! series expanded, transparent and cancelled events free, the asked time zone, each 422,
//! a calendar the user cannot see, tenant isolation and the calendar product; the
//! tenant-level form (`POST /v1/availability`: several users and e-mails); a dead grant.

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

    // Outside alice's Workspace domain: not shared with her.
    env.sandbox.add_user("bob.avail@elsewhere.org", "Bob");
    let (s, v) = ask(
        &env,
        json!({"time_min": DAY.0, "time_max": DAY.1,
               "calendars": ["primary", "bob.avail@elsewhere.org"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["calendars"]["bob.avail@elsewhere.org"],
        json!({"busy": [], "error": "not_found"})
    );
    assert_eq!(v["calendars"]["primary"], json!({"busy": []}));
}

#[tokio::test]
async fn another_tenants_user_is_404_and_an_account_without_the_calendar_is_409() {
    let env = connected().await;
    let other_sync = &env.other_tenant_sync_key("Other availability").await;
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

async fn ask_team(env: &Env, key: &str, body: Value) -> (http::StatusCode, Value) {
    env.call("POST", "/v1/availability", key, Some(body)).await
}

/// One timed event in `email`'s primary calendar, made in Google by its owner.
async fn busy_in_google(env: &Env, email: &str, start: &str, end: &str) {
    let token = env.google_token(email, "https://www.googleapis.com/auth/calendar");
    env.app
        .google
        .insert_event(
            &token,
            "primary",
            &google_event(start, end, json!({})),
            SendUpdates::None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_team_is_asked_at_once_each_user_with_their_own_grant_and_emails_as_one_of_them() {
    let env = connected().await;
    env.sandbox.add_user("dave.avail@example.com", "Dave");
    let q = env
        .connect("u-avail-dave", &["calendar"], "dave.avail@example.com", "")
        .await;
    assert_eq!(q["google_connect"], "connected");
    // A colleague of theirs the CRM does not know, and someone outside the domain.
    env.sandbox.add_user("erin.avail@example.com", "Erin");
    env.sandbox.add_user("finn.avail@elsewhere.org", "Finn");
    busy_in_google(&env, ALICE, "2027-01-11T09:00:00Z", "2027-01-11T10:00:00Z").await;
    busy_in_google(
        &env,
        "dave.avail@example.com",
        "2027-01-11T09:30:00Z",
        "2027-01-11T11:00:00Z",
    )
    .await;
    busy_in_google(
        &env,
        "erin.avail@example.com",
        "2027-01-11T14:00:00Z",
        "2027-01-11T15:00:00Z",
    )
    .await;
    busy_in_google(
        &env,
        "finn.avail@elsewhere.org",
        "2027-01-11T16:00:00Z",
        "2027-01-11T17:00:00Z",
    )
    .await;
    let (s, v) = ask_team(
        &env,
        &env.sync,
        json!({"time_min": DAY.0, "time_max": DAY.1, "time_zone": "Europe/Berlin",
               "users": [USER, "u-avail-dave", "u-avail-nobody"],
               "emails": ["Erin.Avail@example.com", "finn.avail@elsewhere.org"],
               "emails_as": USER}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["time_zone"], "Europe/Berlin");
    assert_eq!(
        periods(&v["users"][USER]["busy"]),
        vec![pair(
            "2027-01-11T10:00:00+01:00",
            "2027-01-11T11:00:00+01:00"
        )],
        "{v}"
    );
    assert_eq!(
        periods(&v["users"]["u-avail-dave"]["calendars"]["primary"]["busy"]),
        vec![pair(
            "2027-01-11T10:30:00+01:00",
            "2027-01-11T12:00:00+01:00"
        )]
    );
    assert_eq!(
        v["users"]["u-avail-nobody"],
        json!({"busy": [], "error": "not_found"})
    );
    assert_eq!(
        periods(&v["emails"]["erin.avail@example.com"]["busy"]),
        vec![pair(
            "2027-01-11T15:00:00+01:00",
            "2027-01-11T16:00:00+01:00"
        )]
    );
    assert_eq!(
        v["emails"]["finn.avail@elsewhere.org"],
        json!({"busy": [], "error": "not_found"})
    );
    // Everyone's busy time, merged: when nobody asked is free.
    assert_eq!(
        periods(&v["busy"]),
        vec![
            pair("2027-01-11T10:00:00+01:00", "2027-01-11T12:00:00+01:00"),
            pair("2027-01-11T15:00:00+01:00", "2027-01-11T16:00:00+01:00"),
        ]
    );

    for (body, field) in [
        (
            json!({"time_min": DAY.0, "time_max": DAY.1}),
            "users or emails",
        ),
        (
            json!({"time_min": DAY.0, "time_max": DAY.1, "emails": ["erin.avail@example.com"]}),
            "emails_as",
        ),
        (
            json!({"time_min": DAY.0, "time_max": DAY.1,
                   "users": (0..21).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
            "users",
        ),
        (json!({"time_min": DAY.0, "users": [USER]}), "time_max"),
    ] {
        let (s, v) = ask_team(&env, &env.sync, body.clone()).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
}

#[tokio::test]
async fn another_tenants_key_sees_none_of_this_tenants_users() {
    let env = connected().await;
    let other_sync = &env.other_tenant_sync_key("Other team").await;
    busy_in_google(&env, ALICE, "2027-01-11T09:00:00Z", "2027-01-11T10:00:00Z").await;
    let (s, v) = ask_team(
        &env,
        other_sync,
        json!({"time_min": DAY.0, "time_max": DAY.1, "users": [USER],
               "emails": [ALICE], "emails_as": USER}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["users"][USER], json!({"busy": [], "error": "not_found"}));
    assert_eq!(
        v["emails"][ALICE],
        json!({"busy": [], "error": "not_found"})
    );
    assert_eq!(v["busy"], json!([]));
}

#[tokio::test]
async fn a_dead_grant_is_409_needs_reauth_alone_and_the_users_own_error_in_a_team() {
    let env = connected().await;
    let window = json!({"time_min": DAY.0, "time_max": DAY.1});
    let (s, v) = ask(&env, window.clone()).await;
    assert_eq!(s, 200, "{v}");
    env.revoke_grants(ALICE, "https://www.googleapis.com/auth/calendar");
    let (s, v) = ask(&env, window).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "needs_reauth", "{v}");
    let (s, v) = ask_team(
        &env,
        &env.sync,
        json!({"time_min": DAY.0, "time_max": DAY.1, "users": [USER],
               "emails": ["erin.avail@example.com"], "emails_as": USER}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["users"][USER],
        json!({"busy": [], "error": "needs_reauth"})
    );
    assert_eq!(
        v["emails"]["erin.avail@example.com"],
        json!({"busy": [], "error": "needs_reauth"})
    );
}

#[tokio::test]
async fn listing_calendars_on_a_dead_grant_is_409_needs_reauth_not_googles_401() {
    let env = connected().await;
    let path = format!("/v1/users/{USER}/google/calendars");
    let (s, v) = env.call("GET", &path, &env.sync, None).await;
    assert_eq!(s, 200, "{v}");
    // The access token the product holds is still within its hour: Google refuses it.
    env.revoke_grants(ALICE, "https://www.googleapis.com/auth/calendar");
    let (s, v) = env.call("GET", &path, &env.sync, None).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "needs_reauth", "{v}");
    let (_, account) = env.account(USER).await;
    assert_eq!(account["status"], "needs_reauth", "{account}");
}
