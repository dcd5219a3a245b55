//! events.list: pagination, sync tokens across pages, 410 recovery, filters.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

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

fn timed(summary: &str, day: u32, hour: u32) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": format!("2026-12-{day:02}T{hour:02}:00:00Z")},
        "end": {"dateTime": format!("2026-12-{day:02}T{:02}:30:00Z", hour)},
    })
}

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

/// Follows nextPageToken; returns all items and the final nextSyncToken.
async fn list_all(app: &TestApp, token: &str, query: &str) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 50, "too many pages");
        let mut path = format!("{EVENTS}?{query}");
        if let Some(t) = &page_token {
            path.push_str(&format!("&pageToken={}", google_sandbox_encode(t)));
        }
        let page = app
            .ok("calendar.events.list", Method::GET, &path, token, None)
            .await;
        assert_eq!(page["kind"], "calendar#events");
        assert_eq!(page["accessRole"], "owner");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(t) => {
                assert!(
                    page.get("nextSyncToken").is_none(),
                    "sync token only on the last page"
                );
                page_token = Some(t.to_string());
            }
            None => {
                let sync = page["nextSyncToken"]
                    .as_str()
                    .expect("nextSyncToken on last page");
                return (items, sync.to_string(), pages);
            }
        }
    }
}

#[tokio::test]
async fn full_sync_pages_then_incremental_sync_across_pages() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    for i in 0..7 {
        insert(&app, &token, timed(&format!("e{i}"), 1 + i, 9)).await;
    }
    let (items, sync, pages) = list_all(&app, &token, "maxResults=3").await;
    assert_eq!(items.len(), 7);
    assert_eq!(pages, 3);

    // changes: 2 inserts, 1 patch, 1 delete
    let first = items[0]["id"].as_str().unwrap().to_string();
    let second = items[1]["id"].as_str().unwrap().to_string();
    insert(&app, &token, timed("new1", 20, 9)).await;
    insert(&app, &token, timed("new2", 21, 9)).await;
    app.ok(
        "calendar.events.patch",
        Method::PATCH,
        &format!("{EVENTS}/{first}"),
        &token,
        Some(&json!({"summary": "changed"})),
    )
    .await;
    let (status, _, _) = app
        .call(
            Method::DELETE,
            &format!("{EVENTS}/{second}"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (changes, sync2, pages) = list_all(
        &app,
        &token,
        &format!("maxResults=2&syncToken={}", google_sandbox_encode(&sync)),
    )
    .await;
    assert_eq!(pages, 2);
    assert_eq!(changes.len(), 4);
    let deleted = changes.iter().find(|e| e["id"] == second.as_str()).unwrap();
    assert_eq!(
        deleted["status"], "cancelled",
        "incremental sync includes cancelled events"
    );
    assert!(changes.iter().any(|e| e["summary"] == "changed"));

    // nothing changed since: empty page with a new sync token
    let (none, _, _) = list_all(
        &app,
        &token,
        &format!("syncToken={}", google_sandbox_encode(&sync2)),
    )
    .await;
    assert!(none.is_empty());

    // full list without showDeleted hides the deleted event; with showDeleted it is there
    let (visible, _, _) = list_all(&app, &token, "").await;
    assert_eq!(visible.len(), 8);
    let (all, _, _) = list_all(&app, &token, "showDeleted=true").await;
    assert_eq!(all.len(), 9);
}

#[tokio::test]
async fn invalidated_sync_token_answers_410_and_full_sync_recovers() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    insert(&app, &token, timed("a", 1, 9)).await;
    let (_, sync, _) = list_all(&app, &token, "").await;
    let resp = app
        .http
        .post(app.url(&format!("/_sandbox/users/{ALICE}/invalidate-sync-tokens")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let path = format!("{EVENTS}?syncToken={}", google_sandbox_encode(&sync));
    let (status, _, err) = app.call(Method::GET, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(reason(&err), "fullSyncRequired");
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("{EVENTS}?syncToken=garbage"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{err}");
    // recovery: full sync gives a working token
    let (items, sync, _) = list_all(&app, &token, "").await;
    assert_eq!(items.len(), 1);
    let (changes, _, _) = list_all(
        &app,
        &token,
        &format!("syncToken={}", google_sandbox_encode(&sync)),
    )
    .await;
    assert!(changes.is_empty());
}

#[tokio::test]
async fn sync_token_rejects_filtering_parameters() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (_, sync, _) = list_all(&app, &token, "").await;
    let sync = google_sandbox_encode(&sync);
    for extra in [
        "timeMin=2026-01-01T00:00:00Z",
        "timeMax=2026-01-01T00:00:00Z",
        "q=x",
        "iCalUID=x@google.com",
        "orderBy=updated",
        "privateExtendedProperty=a%3Db",
        "sharedExtendedProperty=a%3Db",
        "updatedMin=2026-01-01T00:00:00Z",
    ] {
        let (status, _, err) = app
            .call(
                Method::GET,
                &format!("{EVENTS}?syncToken={sync}&{extra}"),
                &token,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}");
        assert_eq!(reason(&err), "invalid", "{extra}");
    }
}

/// A page token is good only with the parameters of the call that minted it (as People
/// documents for its lists): a changed `timeMin`, `showDeleted`, `maxResults` or sync token
/// is refused with 400, the same parameters go on from where the page ended.
#[tokio::test]
async fn page_tokens_are_bound_to_the_call_that_minted_them() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    for i in 0..5 {
        insert(&app, &token, timed(&format!("e{i}"), 1 + i, 9)).await;
    }
    let query = "maxResults=2&timeMin=2026-11-01T00:00:00Z";
    let first = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?{query}"),
            &token,
            None,
        )
        .await;
    let page = google_sandbox_encode(first["nextPageToken"].as_str().expect("a second page"));
    for changed in [
        "maxResults=2&timeMin=2026-11-02T00:00:00Z",
        "maxResults=3&timeMin=2026-11-01T00:00:00Z",
        "maxResults=2&timeMin=2026-11-01T00:00:00Z&showDeleted=true",
        "maxResults=2",
    ] {
        let (status, _, err) = app
            .call(
                Method::GET,
                &format!("{EVENTS}?{changed}&pageToken={page}"),
                &token,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{changed}: {err}");
        assert_eq!(reason(&err), "invalid", "{changed}");
    }
    // The same parameters, in another order and with a `fields` selection, go on.
    let second = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?timeMin=2026-11-01T00:00:00Z&pageToken={page}&maxResults=2&fields=items(id),nextPageToken"),
            &token,
            None,
        )
        .await;
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "the second page follows the first");

    // An incremental read's page token is bound to its sync token too.
    let (_, sync, _) = list_all(&app, &token, "").await;
    for i in 0..3 {
        insert(&app, &token, timed(&format!("n{i}"), 10 + i, 9)).await;
    }
    let sync = google_sandbox_encode(&sync);
    let inc = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?maxResults=1&syncToken={sync}"),
            &token,
            None,
        )
        .await;
    let page = google_sandbox_encode(inc["nextPageToken"].as_str().expect("more changes"));
    let (status, _, _) = app
        .call(
            Method::GET,
            &format!("{EVENTS}?maxResults=1&pageToken={page}"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the sync token was dropped"
    );
}

#[tokio::test]
async fn list_filters_and_limits() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let mut a = timed("alpha meeting", 1, 9);
    a["extendedProperties"] = json!({"private": {"crmId": "1"}, "shared": {"tag": "x"}});
    a["iCalUID"] = json!("custom-uid@example.com");
    let a = insert(&app, &token, a).await;
    insert(&app, &token, timed("beta", 10, 9)).await;
    insert(&app, &token, timed("gamma", 20, 9)).await;

    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?privateExtendedProperty=crmId%3D1"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&l), vec![a["id"].as_str().unwrap()]);
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?sharedExtendedProperty=tag%3Dx"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&l).len(), 1);
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?privateExtendedProperty=crmId%3D2"),
            &token,
            None,
        )
        .await;
    assert!(ids(&l).is_empty());
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?iCalUID=custom-uid%40example.com"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&l).len(), 1);
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?q=ALPHA"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&l).len(), 1);
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?timeMin=2026-12-05T00:00:00Z&timeMax=2026-12-15T00:00:00Z"),
            &token,
            None,
        )
        .await;
    assert_eq!(l["items"][0]["summary"], "beta");
    assert_eq!(ids(&l).len(), 1);
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?singleEvents=true&orderBy=startTime&maxResults=2500"),
            &token,
            None,
        )
        .await;
    let summaries: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, vec!["alpha meeting", "beta", "gamma"]);

    // updatedMin: later than every write → nothing
    app.sandbox.advance_clock(1800);
    let later = app.sandbox.now_rfc3339();
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?updatedMin={}", google_sandbox_encode(&later)),
            &token,
            None,
        )
        .await;
    assert!(ids(&l).is_empty());
    app.ok(
        "calendar.events.patch",
        Method::PATCH,
        &format!("{EVENTS}/{}", a["id"].as_str().unwrap()),
        &token,
        Some(&json!({"summary": "alpha 2"})),
    )
    .await;
    let l = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?updatedMin={}", google_sandbox_encode(&later)),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&l).len(), 1);

    for bad in [
        "maxResults=0",
        "maxResults=abc",
        "orderBy=startTime",
        "orderBy=nope",
        "pageToken=bogus",
        "timeMin=yesterday",
    ] {
        let (status, _, _) = app
            .call(Method::GET, &format!("{EVENTS}?{bad}"), &token, None, &[])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("{EVENTS}?timeMin=2026-12-05T00:00:00Z&timeMax=2026-12-01T00:00:00Z"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "timeRangeEmpty");
    // maxResults above 2500 is capped, not rejected
    let (status, _, _) = app
        .call(
            Method::GET,
            &format!("{EVENTS}?maxResults=5000"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn default_page_size_is_250() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    for i in 0..260u32 {
        let body = json!({
            "summary": format!("bulk {i}"),
            "start": {"date": "2026-12-24"},
            "end": {"date": "2026-12-25"},
        });
        let (status, _, _) = app
            .call(Method::POST, EVENTS, &token, Some(&body), &[])
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let page = app
        .ok("calendar.events.list", Method::GET, EVENTS, &token, None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 250);
    assert!(page["nextPageToken"].is_string());
}

/// `fields` is checked against the method's response schema in the discovery document: a
/// field Google's `Events` / `Event` do not have is refused with 400, as Google does.
#[tokio::test]
async fn a_field_selection_of_an_unknown_field_is_refused() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    insert(&app, &token, timed("e", 1, 9)).await;
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("{EVENTS}?fields=items(id,colour),nextPageToken"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(reason(&err), "invalidParameter");
    assert!(err.to_string().contains("items/colour"), "{err}");
    let ok = app
        .ok(
            "calendar.events.list",
            Method::GET,
            &format!("{EVENTS}?fields=items(id,colorId,start/dateTime),nextSyncToken"),
            &token,
            None,
        )
        .await;
    assert_eq!(ok["items"].as_array().map(Vec::len), Some(1));
}
