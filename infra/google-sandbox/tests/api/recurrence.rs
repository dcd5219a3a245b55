//! Recurring events: expansion in the event's time zone, instances, exceptions.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn insert(app: &TestApp, token: &str, body: Value) -> Value {
    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        token,
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn weekly_byday_expands_in_the_event_time_zone_across_dst() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    // 10:00 Berlin; DST ends 2026-10-25, so UTC hour moves from 08 to 09
    insert(
        &app,
        &token,
        json!({
            "id": "standup001",
            "summary": "standup",
            "start": {"dateTime": "2026-10-19T10:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-10-19T10:15:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"],
        }),
    )
    .await;
    let inst = app
        .ok(
            "calendar.events.instances",
            Method::GET,
            &format!("{EVENTS}/standup001/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        ids(&inst),
        vec![
            "standup001_20261019T080000Z",
            "standup001_20261021T080000Z",
            "standup001_20261026T090000Z",
            "standup001_20261028T090000Z",
        ]
    );
    let third = &inst["items"][2];
    assert_eq!(third["recurringEventId"], "standup001");
    assert_eq!(third["start"]["dateTime"], "2026-10-26T10:00:00+01:00");
    assert_eq!(third["start"]["timeZone"], "Europe/Berlin");
    assert_eq!(third["end"]["dateTime"], "2026-10-26T10:15:00+01:00");
    assert_eq!(
        third["originalStartTime"]["dateTime"],
        "2026-10-26T10:00:00+01:00"
    );
    assert!(third.get("recurrence").is_none());

    // singleEvents=true expands, default returns the master only
    let single = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?singleEvents=true&orderBy=startTime"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&single).len(), 4);
    let masters = app
        .ok("calendar.events.list", Method::GET, EVENTS, &token, None)
        .await;
    assert_eq!(ids(&masters), vec!["standup001"]);
    assert!(masters["items"][0]["recurrence"].is_array());
}

#[tokio::test]
async fn daily_monthly_yearly_interval_until_exdate_rdate() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let cases = [
        (
            "dai0000001",
            vec!["RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20260107T235959Z"],
            vec![
                "20260101T090000Z",
                "20260103T090000Z",
                "20260105T090000Z",
                "20260107T090000Z",
            ],
        ),
        (
            "month00001",
            vec!["RRULE:FREQ=MONTHLY;COUNT=3"],
            vec!["20260101T090000Z", "20260201T090000Z", "20260301T090000Z"],
        ),
        (
            "annual0001",
            vec!["RRULE:FREQ=YEARLY;COUNT=2"],
            vec!["20260101T090000Z", "20270101T090000Z"],
        ),
        (
            "skip000001",
            vec![
                "RRULE:FREQ=DAILY;COUNT=3",
                "EXDATE:20260102T090000Z",
                "RDATE:20260110T090000Z",
            ],
            vec!["20260101T090000Z", "20260103T090000Z", "20260110T090000Z"],
        ),
    ];
    for (id, rec, expected) in cases {
        insert(
            &app,
            &token,
            json!({
                "id": id,
                "start": {"dateTime": "2026-01-01T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-01-01T10:00:00Z", "timeZone": "UTC"},
                "recurrence": rec,
            }),
        )
        .await;
        let inst = app
            .ok(
                "calendar.events.instances",
                Method::GET,
                &format!("{EVENTS}/{id}/instances"),
                &token,
                None,
            )
            .await;
        let want: Vec<String> = expected.iter().map(|s| format!("{id}_{s}")).collect();
        assert_eq!(ids(&inst), want, "{id}");
    }
    // monthly by ordinal weekday: 2nd Tuesday
    insert(
        &app,
        &token,
        json!({
            "id": "secondtue1",
            "start": {"dateTime": "2026-01-13T09:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-13T10:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=3"],
        }),
    )
    .await;
    let inst = app
        .ok(
            "calendar.events.instances",
            Method::GET,
            &format!("{EVENTS}/secondtue1/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        ids(&inst),
        vec![
            "secondtue1_20260113T090000Z",
            "secondtue1_20260210T090000Z",
            "secondtue1_20260310T090000Z"
        ]
    );
    // open-ended series are bounded by timeMax
    insert(
        &app,
        &token,
        json!({
            "id": "forever001",
            "start": {"dateTime": "2026-01-01T09:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-01T10:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY"],
        }),
    )
    .await;
    let inst = app.ok("calendar.events.instances", Method::GET, &format!("{EVENTS}/forever001/instances?timeMin=2026-01-05T00:00:00Z&timeMax=2026-01-08T00:00:00Z"), &token, None).await;
    assert_eq!(ids(&inst).len(), 3);
    // invalid rules and missing time zone
    let (status, _, err) = app
        .call(
            Method::POST,
            EVENTS,
            &token,
            Some(&json!({
                "start": {"dateTime": "2026-01-01T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-01-01T10:00:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=SOMETIMES"],
            })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "invalid");
    let (status, _, err) = app
        .call(
            Method::POST,
            EVENTS,
            &token,
            Some(&json!({
                "start": {"dateTime": "2026-01-01T09:00:00Z"},
                "end": {"dateTime": "2026-01-01T10:00:00Z"},
                "recurrence": ["RRULE:FREQ=DAILY"],
            })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "required");
}

#[tokio::test]
async fn all_day_recurring_instances_use_date_ids() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    insert(
        &app,
        &token,
        json!({
            "id": "anniv00001",
            "start": {"date": "2026-03-10"},
            "end": {"date": "2026-03-11"},
            "recurrence": ["RRULE:FREQ=YEARLY;COUNT=3"],
        }),
    )
    .await;
    let inst = app
        .ok(
            "calendar.events.instances",
            Method::GET,
            &format!("{EVENTS}/anniv00001/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        ids(&inst),
        vec![
            "anniv00001_20260310",
            "anniv00001_20270310",
            "anniv00001_20280310"
        ]
    );
    assert_eq!(inst["items"][1]["start"]["date"], "2027-03-10");
    assert_eq!(inst["items"][1]["end"]["date"], "2027-03-11");
    assert_eq!(inst["items"][1]["originalStartTime"]["date"], "2027-03-10");
    let one = app
        .ok(
            "calendar.events.get",
            Method::GET,
            &format!("{EVENTS}/anniv00001_20270310"),
            &token,
            None,
        )
        .await;
    assert_eq!(one["recurringEventId"], "anniv00001");
}

#[tokio::test]
async fn patching_and_deleting_instances_create_exceptions() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    insert(
        &app,
        &token,
        json!({
            "id": "series0001",
            "summary": "series",
            "start": {"dateTime": "2026-05-04T09:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-04T10:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
        }),
    )
    .await;
    let (_, _, full) = app.call(Method::GET, EVENTS, &token, None, &[]).await;
    let sync = full["nextSyncToken"].as_str().unwrap().to_string();

    let moved = app
        .ok(
            "calendar.events.patch",
            Method::PATCH,
            &format!("{EVENTS}/series0001_20260505T090000Z"),
            &token,
            Some(&json!({
                "summary": "moved",
                "start": {"dateTime": "2026-05-05T15:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-05-05T16:00:00Z", "timeZone": "UTC"},
            })),
        )
        .await;
    assert_eq!(moved["id"], "series0001_20260505T090000Z");
    assert_eq!(moved["recurringEventId"], "series0001");
    assert_eq!(
        moved["originalStartTime"]["dateTime"],
        "2026-05-05T09:00:00Z"
    );
    let (status, _, _) = app
        .call(
            Method::DELETE,
            &format!("{EVENTS}/series0001_20260506T090000Z"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let inst = app
        .ok(
            "calendar.events.instances",
            Method::GET,
            &format!("{EVENTS}/series0001/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&inst).len(), 3);
    assert_eq!(inst["items"][1]["summary"], "moved");
    let with_deleted = app
        .ok(
            "calendar.events.instances",
            Method::GET,
            &format!("{EVENTS}/series0001/instances?showDeleted=true"),
            &token,
            None,
        )
        .await;
    assert_eq!(with_deleted["items"][2]["status"], "cancelled");

    // singleEvents=false, showDeleted=false: master + exceptions, cancelled ones included
    let flat = app
        .ok("calendar.events.list", Method::GET, EVENTS, &token, None)
        .await;
    let flat_ids = ids(&flat);
    assert_eq!(flat_ids.len(), 3, "{flat_ids:?}");
    let cancelled = flat["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "series0001_20260506T090000Z")
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    // singleEvents=true without showDeleted hides the cancelled instance
    let single = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?singleEvents=true&orderBy=startTime"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&single).len(), 3);
    assert_eq!(single["items"][1]["summary"], "moved");

    // incremental sync shows both exceptions
    let changes = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?syncToken={}", google_sandbox_encode(&sync)),
            &token,
            None,
        )
        .await;
    let mut changed = ids(&changes);
    changed.sort();
    assert_eq!(
        changed,
        vec!["series0001_20260505T090000Z", "series0001_20260506T090000Z"]
    );

    // deleting the master cancels the series
    let (status, _, _) = app
        .call(
            Method::DELETE,
            &format!("{EVENTS}/series0001"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = app
        .ok("calendar.events.list", Method::GET, EVENTS, &token, None)
        .await;
    assert!(ids(&after).is_empty());
}
