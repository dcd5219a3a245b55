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

/// `events.move`: same id in the destination, organized by it, private properties kept; the
/// source's incremental sync reports it cancelled, the destination's reports it; the errors
/// Google documents (an instance, a missing destination, a calendar the caller cannot see, an
/// event no longer in the source).
#[tokio::test]
async fn events_move_changes_calendar_and_organizer_under_the_same_id() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let team = app.sandbox.add_calendar(ALICE, "Team", "UTC");
    let list = async |cal: &str, sync: Option<&str>| {
        let path = match sync {
            Some(t) => format!(
                "/calendar/v3/calendars/{}/events?syncToken={}",
                google_sandbox_encode(cal),
                google_sandbox_encode(t)
            ),
            None => format!(
                "/calendar/v3/calendars/{}/events",
                google_sandbox_encode(cal)
            ),
        };
        app.ok("calendar.events.list", Method::GET, &path, &token, None)
            .await
    };
    let body = json!({
        "id": "moveme0001",
        "summary": "Quarterly review",
        "start": {"dateTime": "2027-01-10T10:00:00Z"},
        "end": {"dateTime": "2027-01-10T11:00:00Z"},
        "extendedProperties": {"private": {"crmId": "MTG-1"}},
    });
    app.ok(
        "calendar.events.insert",
        Method::POST,
        "/calendar/v3/calendars/primary/events",
        &token,
        Some(&body),
    )
    .await;
    let series = json!({
        "id": "series0001",
        "summary": "Weekly",
        "start": {"dateTime": "2027-01-04T09:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2027-01-04T09:30:00Z", "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    });
    app.ok(
        "calendar.events.insert",
        Method::POST,
        "/calendar/v3/calendars/primary/events",
        &token,
        Some(&series),
    )
    .await;
    let exception = "/calendar/v3/calendars/primary/events/series0001_20270111T090000Z";
    let (status, _, v) = app
        .call(
            Method::PATCH,
            exception,
            &token,
            Some(&json!({"summary": "Weekly (moved room)"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let primary_token = list("primary", None).await["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let team_token = list(&team, None).await["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let move_path = |cal: &str, id: &str, dest: &str| {
        format!(
            "/calendar/v3/calendars/{cal}/events/{id}/move?destination={}&sendUpdates=none",
            google_sandbox_encode(dest)
        )
    };
    let moved = app
        .ok(
            "calendar.events.move",
            Method::POST,
            &move_path("primary", "moveme0001", &team),
            &token,
            None,
        )
        .await;
    assert_eq!(moved["id"], "moveme0001");
    assert_eq!(moved["organizer"]["email"], team.as_str());
    assert_eq!(moved["extendedProperties"]["private"]["crmId"], "MTG-1");
    assert_eq!(moved["summary"], "Quarterly review");

    // The series moves with its exception.
    app.ok(
        "calendar.events.move",
        Method::POST,
        &move_path("primary", "series0001", &team),
        &token,
        None,
    )
    .await;
    let got = app
        .ok(
            "calendar.events.get",
            Method::GET,
            &format!(
                "/calendar/v3/calendars/{}/events/series0001_20270111T090000Z",
                google_sandbox_encode(&team)
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(got["summary"], "Weekly (moved room)");

    // Each calendar's incremental sync tells it.
    let primary_news = list("primary", Some(&primary_token)).await;
    let gone: Vec<&str> = primary_news["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "cancelled")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(
        gone.contains(&"moveme0001") && gone.contains(&"series0001"),
        "{primary_news}"
    );
    let team_news = list(&team, Some(&team_token)).await;
    let arrived: Vec<&str> = team_news["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "confirmed")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(
        arrived.contains(&"moveme0001") && arrived.contains(&"series0001"),
        "{team_news}"
    );

    // No longer in the source: 404.
    let (status, _, err) = app
        .call(
            Method::POST,
            &move_path("primary", "moveme0001", &team),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(reason(&err), "notFound");
    // An instance cannot change organizer on its own.
    let (status, _, err) = app
        .call(
            Method::POST,
            &format!(
                "/calendar/v3/calendars/{}/events/series0001_20270118T090000Z/move?destination=primary",
                google_sandbox_encode(&team)
            ),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(reason(&err), "cannotChangeOrganizerOfInstance");
    // The destination is required, and must be a calendar the caller can see.
    let (status, _, err) = app
        .call(
            Method::POST,
            &format!(
                "/calendar/v3/calendars/{}/events/moveme0001/move",
                google_sandbox_encode(&team)
            ),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(reason(&err), "required");
    let (status, _, err) = app
        .call(
            Method::POST,
            &move_path(&google_sandbox_encode(&team), "moveme0001", BOB),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    // And back: the source's cancelled entry does not hold the id.
    let back = app
        .ok(
            "calendar.events.move",
            Method::POST,
            &move_path(&google_sandbox_encode(&team), "moveme0001", "primary"),
            &token,
            None,
        )
        .await;
    assert_eq!(back["organizer"]["email"], ALICE);
}

/// Attendee copies, as Google makes them: an event whose attendees are other users is in
/// each attendee's primary calendar under the same id; private extended properties are per
/// copy (the organizer's never show on the attendee's copy, the attendee's own survive the
/// organizer's edits), shared ones travel; the copy names the organizer; taking the attendee
/// off the list cancels their copy; an attendee cannot move their copy.
#[tokio::test]
async fn attendees_get_a_copy_under_the_same_id_with_their_own_private_properties() {
    let app = spawn().await;
    let alice = app.token_all(ALICE).await;
    let bob = app.token_all(BOB).await;
    let bob_list = async |sync: Option<&str>| {
        let path = match sync {
            Some(t) => format!(
                "/calendar/v3/calendars/primary/events?syncToken={}",
                google_sandbox_encode(t)
            ),
            None => "/calendar/v3/calendars/primary/events".to_owned(),
        };
        app.ok("calendar.events.list", Method::GET, &path, &bob, None)
            .await
    };
    let bob_token = bob_list(None).await["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({
        "id": "invite0001",
        "summary": "Pipeline review",
        "start": {"dateTime": "2027-02-01T10:00:00Z"},
        "end": {"dateTime": "2027-02-01T11:00:00Z"},
        "attendees": [{"email": ALICE}, {"email": BOB}, {"email": "carol@example.com"}],
        "extendedProperties": {"private": {"crmId": "MTG-9"}, "shared": {"team": "sales"}},
    });
    app.ok(
        "calendar.events.insert",
        Method::POST,
        "/calendar/v3/calendars/primary/events",
        &alice,
        Some(&body),
    )
    .await;
    let copy_path = "/calendar/v3/calendars/primary/events/invite0001";
    let copy = app
        .ok("calendar.events.get", Method::GET, copy_path, &bob, None)
        .await;
    assert_eq!(copy["id"], "invite0001");
    assert_eq!(copy["summary"], "Pipeline review");
    assert_eq!(copy["organizer"]["email"], ALICE);
    assert!(copy["organizer"].get("self").is_none(), "{copy}");
    assert!(
        copy["extendedProperties"].get("private").is_none(),
        "the organizer's private properties stay on the organizer's copy: {copy}"
    );
    assert_eq!(copy["extendedProperties"]["shared"]["team"], "sales");
    let me: Vec<&serde_json::Value> = copy["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["self"] == true)
        .collect();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0]["email"], BOB);
    let news = bob_list(Some(&bob_token)).await;
    assert!(news["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == "invite0001"));
    let bob_token = news["nextSyncToken"].as_str().unwrap().to_owned();

    // Bob marks his copy; Alice edits hers: Bob's copy follows, his marker stays his.
    let (status, _, v) = app
        .call(
            Method::PATCH,
            copy_path,
            &bob,
            Some(&json!({"extendedProperties": {"private": {"crmId": "BOB-1"}}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["organizer"]["email"], ALICE, "still Alice's event: {v}");
    let (status, _, v) = app
        .call(
            Method::PATCH,
            copy_path,
            &alice,
            Some(&json!({"summary": "Pipeline review (moved room)"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["extendedProperties"]["private"]["crmId"], "MTG-9");
    let copy = app
        .ok("calendar.events.get", Method::GET, copy_path, &bob, None)
        .await;
    assert_eq!(copy["summary"], "Pipeline review (moved room)");
    assert_eq!(copy["extendedProperties"]["private"]["crmId"], "BOB-1");

    // An attendee cannot change the organizer.
    let (status, _, err) = app
        .call(
            Method::POST,
            &format!("{copy_path}/move?destination=primary"),
            &bob,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");

    // Taken off the list: Bob's copy is cancelled, and his sync says so.
    let (status, _, v) = app
        .call(
            Method::PATCH,
            copy_path,
            &alice,
            Some(&json!({"attendees": [{"email": ALICE}, {"email": "carol@example.com"}]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let news = bob_list(Some(&bob_token)).await;
    let item = news["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "invite0001")
        .cloned()
        .unwrap();
    assert_eq!(item["status"], "cancelled");
    // Alice's own event is untouched by all of this.
    let own = app
        .ok("calendar.events.get", Method::GET, copy_path, &alice, None)
        .await;
    assert_eq!(own["status"], "confirmed");
    assert_eq!(own["organizer"]["self"], true);
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

/// An attendee's answer on their copy reaches the organizer's event (Google shows the
/// organizer every guest's response) and the other attendees' copies: the organizer's sync
/// reports the change, with a new etag but the same `sequence` (a response is not a change
/// of the meeting); the attendee's other edits of their copy stay on it.
#[tokio::test]
async fn an_attendees_response_on_their_copy_reaches_the_organizers_event() {
    let app = spawn().await;
    app.sandbox.add_user("carol@example.com", "Carol");
    let alice = app.token_all(ALICE).await;
    let bob = app.token_all(BOB).await;
    let carol = app.token_all("carol@example.com").await;
    let body = json!({
        "id": "decide0001",
        "summary": "Forecast",
        "start": {"dateTime": "2027-03-01T10:00:00Z"},
        "end": {"dateTime": "2027-03-01T11:00:00Z"},
        "attendees": [{"email": BOB}, {"email": "carol@example.com"}],
    });
    let made = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            &alice,
            Some(&body),
        )
        .await;
    let path = "/calendar/v3/calendars/primary/events/decide0001";
    let alice_sync = app
        .ok(
            "calendar.events.list",
            Method::GET,
            "/calendar/v3/calendars/primary/events",
            &alice,
            None,
        )
        .await["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let response_of = |ev: &serde_json::Value, email: &str| {
        ev["attendees"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["email"] == email))
            .map(|a| a["responseStatus"].clone())
            .unwrap_or(serde_json::Value::Null)
    };
    // Bob accepts on his copy (his client sends his whole copy back, as patch or update).
    let mut copy = app
        .ok("calendar.events.get", Method::GET, path, &bob, None)
        .await;
    for a in copy["attendees"].as_array_mut().unwrap() {
        if a["email"] == BOB {
            a["responseStatus"] = json!("accepted");
        }
    }
    app.ok(
        "calendar.events.patch",
        Method::PATCH,
        path,
        &bob,
        Some(&json!({"attendees": copy["attendees"]})),
    )
    .await;
    let own = app
        .ok("calendar.events.get", Method::GET, path, &alice, None)
        .await;
    assert_eq!(response_of(&own, BOB), "accepted", "{own}");
    assert_eq!(response_of(&own, "carol@example.com"), "needsAction");
    assert_ne!(own["etag"], made["etag"], "a new etag");
    assert_eq!(
        own["sequence"], made["sequence"],
        "not a change of the meeting"
    );
    let news = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!(
                "/calendar/v3/calendars/primary/events?syncToken={}",
                google_sandbox_encode(&alice_sync)
            ),
            &alice,
            None,
        )
        .await;
    assert!(
        news["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "decide0001"),
        "the organizer's sync reports it: {news}"
    );
    // Carol's copy shows Bob's answer, and keeps hers.
    let theirs = app
        .ok("calendar.events.get", Method::GET, path, &carol, None)
        .await;
    assert_eq!(response_of(&theirs, BOB), "accepted", "{theirs}");
    assert_eq!(response_of(&theirs, "carol@example.com"), "needsAction");
    // Carol declines: Alice's event and Bob's copy show it, Bob's answer stands.
    app.ok(
        "calendar.events.patch",
        Method::PATCH,
        path,
        &carol,
        Some(&json!({"attendees": [{"email": BOB}, {"email": "carol@example.com", "responseStatus": "declined"}]})),
    )
    .await;
    let own = app
        .ok("calendar.events.get", Method::GET, path, &alice, None)
        .await;
    assert_eq!(response_of(&own, "carol@example.com"), "declined", "{own}");
    assert_eq!(response_of(&own, BOB), "accepted");
    let bobs = app
        .ok("calendar.events.get", Method::GET, path, &bob, None)
        .await;
    assert_eq!(response_of(&bobs, "carol@example.com"), "declined");
    assert_eq!(response_of(&bobs, BOB), "accepted");
}

/// Another domain's calendar: not shared with alice (her own domain's primary calendars are,
/// free/busy only, as Workspace's internal sharing has it).
const OUTSIDER: &str = "bob@elsewhere.org";

#[tokio::test]
async fn free_busy_takes_the_free_busy_scopes_and_answers_the_discovery_schema() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let event = json!({
        "summary": "Busy",
        "start": {"dateTime": "2030-03-04T10:00:00+01:00"},
        "end": {"dateTime": "2030-03-04T11:00:00+01:00"},
    });
    app.ok(
        "calendar.events.insert",
        Method::POST,
        "/calendar/v3/calendars/primary/events",
        &token,
        Some(&event),
    )
    .await;
    let query = json!({
        "timeMin": "2030-03-04T00:00:00Z",
        "timeMax": "2030-03-05T00:00:00Z",
        "items": [{"id": "primary"}, {"id": OUTSIDER}],
    });
    for scope in [
        "calendar.freebusy",
        "calendar.events.freebusy",
        "calendar.readonly",
    ] {
        let t = app
            .token(ALICE, &format!("https://www.googleapis.com/auth/{scope}"))
            .await;
        let got = app
            .ok(
                "calendar.freebusy.query",
                Method::POST,
                "/calendar/v3/freeBusy",
                &t,
                Some(&query),
            )
            .await;
        assert_eq!(got["kind"], "calendar#freeBusy");
        assert_eq!(
            got["calendars"]["primary"]["busy"],
            json!([{"start": "2030-03-04T09:00:00Z", "end": "2030-03-04T10:00:00Z"}])
        );
        assert_eq!(
            got["calendars"][OUTSIDER]["errors"][0]["reason"],
            "notFound"
        );
    }
    let events_only = app
        .token(
            ALICE,
            "https://www.googleapis.com/auth/calendar.events.owned",
        )
        .await;
    let (status, body) = app
        .api(
            "calendar.freebusy.query",
            Method::POST,
            "/calendar/v3/freeBusy",
            &events_only,
            Some(&query),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reason(&body), "insufficientPermissions");
    let too_long = json!({"timeMin": "2030-01-01T00:00:00Z", "timeMax": "2030-04-02T00:00:00Z"});
    let (status, body) = app
        .api(
            "calendar.freebusy.query",
            Method::POST,
            "/calendar/v3/freeBusy",
            &token,
            Some(&too_long),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&body), "timeRangeTooLong");
    assert_eq!(
        body["error"]["message"],
        "The requested time range is too long."
    );
}
