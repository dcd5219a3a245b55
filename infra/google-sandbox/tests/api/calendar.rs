use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn calendar_list_calendar_get_and_colors() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let list = app
        .ok(
            "calendar.calendarList.list",
            Method::GET,
            "/calendar/v3/users/me/calendarList",
            &token,
            None,
        )
        .await;
    assert_eq!(list["kind"], "calendar#calendarList");
    assert_eq!(list["items"][0]["id"], ALICE);
    assert_eq!(list["items"][0]["primary"], true);
    let cal = app
        .ok(
            "calendar.calendars.get",
            Method::GET,
            "/calendar/v3/calendars/primary",
            &token,
            None,
        )
        .await;
    assert_eq!(cal["id"], ALICE);
    let cal2 = app
        .ok(
            "calendar.calendars.get",
            Method::GET,
            &format!("/calendar/v3/calendars/{ALICE}"),
            &token,
            None,
        )
        .await;
    assert_eq!(cal2["id"], ALICE);
    let colors = app
        .ok(
            "calendar.colors.get",
            Method::GET,
            "/calendar/v3/colors",
            &token,
            None,
        )
        .await;
    assert_eq!(colors["event"]["11"]["background"], "#dc2127");
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("/calendar/v3/calendars/{BOB}"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reason(&err), "notFound");
}

#[tokio::test]
async fn insert_get_patch_update_delete_with_etags() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let body = json!({
        "id": "crm0001abc",
        "summary": "Kickoff",
        "description": "first",
        "location": "Room 1",
        "colorId": "5",
        "visibility": "private",
        "start": {"dateTime": "2026-12-01T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-12-01T11:00:00+01:00", "timeZone": "Europe/Berlin"},
        "attendees": [{"email": "carol@example.com"}, {"email": ALICE, "responseStatus": "accepted"}],
        "extendedProperties": {"private": {"crmId": "42"}, "shared": {"k": "v"}},
        "unknownField": 1
    });
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            "/calendar/v3/calendars/primary/events?sendUpdates=none",
            &token,
            Some(&body),
        )
        .await;
    assert_eq!(ev["kind"], "calendar#event");
    assert_eq!(ev["id"], "crm0001abc");
    assert_eq!(ev["status"], "confirmed");
    assert_eq!(ev["iCalUID"], "crm0001abc@google.com");
    assert_eq!(ev["sequence"], 0);
    assert_eq!(ev["creator"]["email"], ALICE);
    assert_eq!(ev["organizer"]["email"], ALICE);
    assert_eq!(ev["attendees"][0]["responseStatus"], "needsAction");
    assert_eq!(ev["attendees"][1]["self"], true);
    assert!(ev["htmlLink"]
        .as_str()
        .unwrap()
        .starts_with("https://www.google.com/calendar/event?eid="));
    let updated = ev["updated"].as_str().unwrap();
    assert!(updated.ends_with('Z') && updated.len() == 24, "{updated}");
    assert!(ev.get("unknownField").is_none());
    let etag = ev["etag"].as_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    // GET with If-None-Match → 304
    let path = "/calendar/v3/calendars/primary/events/crm0001abc";
    let (status, _, _) = app
        .call(Method::GET, path, &token, None, &[("If-None-Match", &etag)])
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let got = app
        .ok("calendar.events.get", Method::GET, path, &token, None)
        .await;
    assert_eq!(got, ev);

    // patch with matching If-Match
    let (status, _, patched) = app.call(Method::PATCH, path, &token, Some(&json!({"summary": "Kickoff v2", "extendedProperties": {"private": {"extra": "1"}}})), &[("If-Match", &etag)]).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    crate::common::record("calendar.events.patch", status, &patched);
    assert_eq!(patched["summary"], "Kickoff v2");
    assert_eq!(patched["description"], "first");
    assert_eq!(patched["extendedProperties"]["private"]["crmId"], "42");
    assert_eq!(patched["extendedProperties"]["private"]["extra"], "1");
    assert_ne!(patched["etag"], ev["etag"]);
    assert_eq!(patched["sequence"], 1);

    // stale If-Match → 412
    let (status, _, err) = app
        .call(
            Method::PATCH,
            path,
            &token,
            Some(&json!({"summary": "x"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(reason(&err), "conditionNotMet");

    // update replaces the resource
    let full = json!({
        "summary": "Replaced",
        "start": {"dateTime": "2026-12-02T10:00:00Z"},
        "end": {"dateTime": "2026-12-02T10:30:00Z"}
    });
    let upd = app
        .ok(
            "calendar.events.update",
            Method::PUT,
            path,
            &token,
            Some(&full),
        )
        .await;
    assert_eq!(upd["summary"], "Replaced");
    assert!(upd.get("description").is_none());
    assert!(upd.get("extendedProperties").is_none());
    assert_eq!(upd["id"], "crm0001abc");

    // delete with stale etag → 412, then delete → 204, again → 410
    let (status, _, _) = app
        .call(Method::DELETE, path, &token, None, &[("If-Match", &etag)])
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _, _) = app.call(Method::DELETE, path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, err) = app.call(Method::DELETE, path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(reason(&err), "deleted");
    let gone = app
        .ok("calendar.events.get", Method::GET, path, &token, None)
        .await;
    assert_eq!(gone["status"], "cancelled");

    // ids of deleted events cannot be reused
    let (status, _, err) = app
        .call(
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(reason(&err), "duplicate");

    let (status, _, err) = app
        .call(
            Method::GET,
            "/calendar/v3/calendars/primary/events/nosuchevent",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reason(&err), "notFound");
}

#[tokio::test]
async fn insert_validation_errors() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let path = "/calendar/v3/calendars/primary/events";
    let ok_times = json!({"start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}});
    for bad_id in ["abc", "UPPERCASE1", "with-dash-1", "wxyz12345"] {
        let mut b = ok_times.clone();
        b["id"] = json!(bad_id);
        let (status, _, err) = app.call(Method::POST, path, &token, Some(&b), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad_id}");
        assert_eq!(reason(&err), "invalid", "{bad_id}");
    }
    let long: String = "a".repeat(1025);
    let mut b = ok_times.clone();
    b["id"] = json!(long);
    let (status, _, _) = app.call(Method::POST, path, &token, Some(&b), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _, err) = app
        .call(
            Method::POST,
            path,
            &token,
            Some(&json!({"start": {"date": "2026-12-24"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "required");
    let (status, _, err) = app
        .call(
            Method::POST,
            path,
            &token,
            Some(&json!({"start": {"date": "2026-12-24"}, "end": {"date": "2026-12-23"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "timeRangeEmpty");
    let (status, _, _) = app
        .call(
            Method::POST,
            &format!("{path}?sendUpdates=sometimes"),
            &token,
            Some(&ok_times),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let resp = app
        .http
        .post(app.url(path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            path,
            &token,
            Some(&ok_times),
        )
        .await;
    assert_eq!(ev["start"]["date"], "2026-12-24");
    let id = ev["id"].as_str().unwrap();
    assert!(
        id.len() >= 5
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
    );
}

#[tokio::test]
async fn fields_partial_response_and_etag_header() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let body = json!({"summary": "s", "description": "d", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}});
    let (status, headers, ev) = app
        .call(
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        ev["etag"].as_str().unwrap()
    );
    let path = "/calendar/v3/calendars/primary/events?fields=nextSyncToken,items(id,start/date)";
    let list = app
        .ok("calendar.events.list", Method::GET, path, &token, None)
        .await;
    assert_eq!(list.as_object().unwrap().len(), 2, "{list}");
    assert_eq!(
        list["items"][0],
        json!({"id": ev["id"], "start": {"date": "2026-12-24"}})
    );
    let (status, _, err) = app
        .call(
            Method::GET,
            "/calendar/v3/calendars/primary/events?fields=items(id",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "invalidParameter");
    let person = app
        .ok(
            "people.people.createContact",
            Method::POST,
            "/v1/people:createContact?fields=resourceName",
            &token,
            Some(&json!({"names": [{"givenName": "F"}]})),
        )
        .await;
    assert_eq!(person.as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn ical_uid_is_unique_per_calendar() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let path = "/calendar/v3/calendars/primary/events";
    let mut body = json!({"iCalUID": "meeting-1@crm.example", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}});
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            path,
            &token,
            Some(&body),
        )
        .await;
    assert_eq!(ev["iCalUID"], "meeting-1@crm.example");
    let (status, _, err) = app.call(Method::POST, path, &token, Some(&body), &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(reason(&err), "duplicate");
    body["iCalUID"] = json!("meeting-2@crm.example");
    let (status, _, _) = app.call(Method::POST, path, &token, Some(&body), &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Bob's calendar is separate
    let bob = app.token_all(BOB).await;
    let (status, _, _) = app.call(Method::POST, path, &bob, Some(&body), &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_write_that_leaves_out_a_response_keeps_the_attendees_answer() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let body = json!({
        "id": "rsvp0001abc", "summary": "Kickoff",
        "start": {"dateTime": "2026-12-01T10:00:00Z"}, "end": {"dateTime": "2026-12-01T11:00:00Z"},
        "attendees": [{"email": "carol@example.com"}]
    });
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            &token,
            Some(&body),
        )
        .await;
    assert_eq!(ev["attendees"][0]["responseStatus"], "needsAction");
    // Carol declines (her answer reaches the organiser's copy).
    let path = "/calendar/v3/calendars/primary/events/rsvp0001abc";
    app.ok(
        "calendar.events.patch",
        Method::PATCH,
        path,
        &token,
        Some(&json!({"attendees": [{"email": "carol@example.com", "responseStatus": "declined"}]})),
    )
    .await;
    // The organiser's next write names her without a response, and adds Dan.
    let after = app
        .ok(
            "calendar.events.patch",
            Method::PATCH,
            path,
            &token,
            Some(&json!({"summary": "Kickoff (moved)",
                         "attendees": [{"email": "Carol@example.com"}, {"email": "dan@example.com"}]})),
        )
        .await;
    assert_eq!(
        after["attendees"][0]["responseStatus"], "declined",
        "{after}"
    );
    assert_eq!(after["attendees"][1]["responseStatus"], "needsAction");
}
