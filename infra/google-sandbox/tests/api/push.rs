//! events.watch / channels.stop and real webhook deliveries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, usize)>>>,
    fail_first: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

impl Receiver {
    fn count(&self) -> usize {
        self.got.lock().map(|g| g.len()).unwrap_or(0)
    }
    fn header(&self, i: usize, name: &str) -> String {
        let g = self.got.lock().unwrap();
        g[i].0
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// A tiny webhook receiver on 127.0.0.1:0; answers 503 to the first `fail_first` calls.
async fn receiver(fail_first: usize) -> (Receiver, String) {
    let r = Receiver::default();
    r.fail_first.store(fail_first, Ordering::SeqCst);
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                state.attempts.fetch_add(1, Ordering::SeqCst);
                if state.fail_first.load(Ordering::SeqCst) > 0 {
                    state.fail_first.fetch_sub(1, Ordering::SeqCst);
                    return AxStatus::SERVICE_UNAVAILABLE;
                }
                state.got.lock().unwrap().push((headers, body.len()));
                AxStatus::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (r, format!("http://{addr}/hook"))
}

async fn watch(app: &TestApp, token: &str, id: &str, address: &str, ttl: Option<&str>) -> Value {
    let mut body =
        json!({"id": id, "type": "web_hook", "address": address, "token": "secret-token"});
    if let Some(t) = ttl {
        body["params"] = json!({"ttl": t});
    }
    app.ok(
        "calendar.events.watch",
        Method::POST,
        &format!("{EVENTS}/watch"),
        token,
        Some(&body),
    )
    .await
}

fn event() -> Value {
    json!({"summary": "pushy", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}})
}

async fn wait_for(r: &Receiver, n: usize) -> bool {
    let r = r.clone();
    eventually(3000, move || r.count() >= n).await
}

#[tokio::test]
async fn watch_sends_sync_then_exists_with_google_headers() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(0).await;
    let ch = watch(&app, &token, "chan-1", &address, Some("3600")).await;
    assert_eq!(ch["kind"], "api#channel");
    assert_eq!(ch["id"], "chan-1");
    assert_eq!(ch["token"], "secret-token");
    let resource_id = ch["resourceId"].as_str().unwrap().to_string();
    let expiration: i64 = ch["expiration"].as_str().unwrap().parse().unwrap();
    assert!(expiration > 0);
    assert!(ch["resourceUri"]
        .as_str()
        .unwrap()
        .contains("/calendar/v3/calendars/"));

    assert!(wait_for(&r, 1).await, "sync message");
    assert_eq!(r.header(0, "x-goog-resource-state"), "sync");
    assert_eq!(r.header(0, "x-goog-message-number"), "1");

    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        &token,
        Some(&event()),
    )
    .await;
    assert!(wait_for(&r, 2).await, "exists message");
    assert_eq!(r.header(1, "x-goog-channel-id"), "chan-1");
    assert_eq!(r.header(1, "x-goog-channel-token"), "secret-token");
    assert_eq!(r.header(1, "x-goog-resource-id"), resource_id);
    assert_eq!(
        r.header(1, "x-goog-resource-uri"),
        ch["resourceUri"].as_str().unwrap()
    );
    assert_eq!(r.header(1, "x-goog-resource-state"), "exists");
    assert_eq!(r.header(1, "x-goog-message-number"), "2");
    let exp = r.header(1, "x-goog-channel-expiration");
    assert!(exp.ends_with(" GMT") && exp.contains(", "), "{exp}");
    assert_eq!(r.got.lock().unwrap()[1].1, 0, "empty body");

    // a channel on Bob's calendar is not notified by Alice's changes
    let bob = app.token_all(BOB).await;
    let (rb, address_b) = receiver(0).await;
    watch(&app, &bob, "chan-bob", &address_b, None).await;
    assert!(wait_for(&rb, 1).await);
    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        &token,
        Some(&event()),
    )
    .await;
    assert!(wait_for(&r, 3).await);
    assert_eq!(rb.count(), 1);

    // duplicate channel id
    let (status, _, err) = app
        .call(
            Method::POST,
            &format!("{EVENTS}/watch"),
            &token,
            Some(&json!({"id": "chan-1", "type": "web_hook", "address": address})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&err), "channelIdNotUnique");
    let (status, _, _) = app
        .call(
            Method::POST,
            &format!("{EVENTS}/watch"),
            &token,
            Some(&json!({"id": "chan-x", "type": "carrier_pigeon", "address": address})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stopped_and_expired_channels_stop_sending() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(0).await;
    let ch = watch(&app, &token, "chan-stop", &address, None).await;
    assert!(wait_for(&r, 1).await);
    let stop = json!({"id": "chan-stop", "resourceId": ch["resourceId"]});
    let (status, _, _) = app
        .call(
            Method::POST,
            "/calendar/v3/channels/stop",
            &token,
            Some(&stop),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, err) = app
        .call(
            Method::POST,
            "/calendar/v3/channels/stop",
            &token,
            Some(&stop),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reason(&err), "notFound");

    let (r2, address2) = receiver(0).await;
    watch(&app, &token, "chan-exp", &address2, Some("60")).await;
    assert!(wait_for(&r2, 1).await);
    app.sandbox.advance_clock(61);
    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        &token,
        Some(&event()),
    )
    .await;
    // the UI path also notifies; give deliveries a moment, then check nothing arrived
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(r.count(), 1, "stopped channel got a message");
    assert_eq!(r2.count(), 1, "expired channel got a message");
}

#[tokio::test]
async fn deliveries_retry_on_5xx_and_faults_can_drop_pushes() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(2).await;
    watch(&app, &token, "chan-retry", &address, None).await;
    assert!(wait_for(&r, 1).await, "sync delivered after two 503s");
    assert_eq!(r.attempts.load(Ordering::SeqCst), 3);

    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::DropPush)
            .user(ALICE)
            .count(1),
    );
    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        &token,
        Some(&event()),
    )
    .await;
    app.ok(
        "calendar.events.insert",
        Method::POST,
        EVENTS,
        &token,
        Some(&event()),
    )
    .await;
    assert!(wait_for(&r, 2).await);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(r.count(), 2, "one of two notifications dropped");
    assert_eq!(
        r.header(1, "x-goog-message-number"),
        "3",
        "dropped message still used a number"
    );
}

#[tokio::test]
async fn faults_can_duplicate_and_reorder_pushes() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(0).await;
    watch(&app, &token, "chan-chaos", &address, None).await;
    assert!(wait_for(&r, 1).await);
    let insert = async || {
        app.ok(
            "calendar.events.insert",
            Method::POST,
            EVENTS,
            &token,
            Some(&event()),
        )
        .await;
    };
    // Redelivered: the same message twice.
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::DuplicatePush)
            .user(ALICE)
            .count(1),
    );
    insert().await;
    assert!(
        wait_for(&r, 3).await,
        "a duplicated notification arrives twice"
    );
    assert_eq!(r.header(1, "x-goog-message-number"), "2");
    assert_eq!(r.header(2, "x-goog-message-number"), "2");
    // Held back: the next change's message overtakes it.
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::DelayPush)
            .user(ALICE)
            .count(1)
            .latency_ms(300),
    );
    insert().await;
    insert().await;
    assert!(wait_for(&r, 5).await);
    assert_eq!(
        r.header(3, "x-goog-message-number"),
        "4",
        "the later message first"
    );
    assert_eq!(
        r.header(4, "x-goog-message-number"),
        "3",
        "the held-back one after"
    );
}

#[tokio::test]
async fn ui_edits_fire_push_notifications() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            EVENTS,
            &token,
            Some(&event()),
        )
        .await;
    let id = ev["id"].as_str().unwrap();
    let (r, address) = receiver(0).await;
    watch(&app, &token, "chan-ui", &address, None).await;
    assert!(wait_for(&r, 1).await);

    let html = app.page("/_sandbox/ui").await;
    assert!(html.contains(ALICE));
    let html = app.page(&format!("/_sandbox/ui/users/{ALICE}")).await;
    assert!(html.contains("pushy"));
    let form_url = format!("/_sandbox/ui/calendars/{ALICE}/events/{id}");
    let html = app.page(&form_url).await;
    assert!(html.contains("name=\"summary\""));
    let status = app
        .submit(
            &form_url,
            &[
                ("summary", "edited in ui"),
                ("description", "d"),
                ("start", "2026-12-26"),
                ("end", "2026-12-27"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(wait_for(&r, 2).await, "UI edit notifies");
    let got = app
        .ok(
            "calendar.events.get",
            Method::GET,
            &format!("{EVENTS}/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["summary"], "edited in ui");
    assert_eq!(got["start"]["date"], "2026-12-26");
    let status = app.submit(&format!("{form_url}/delete"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(wait_for(&r, 3).await, "UI delete notifies");
    let got = app
        .ok(
            "calendar.events.get",
            Method::GET,
            &format!("{EVENTS}/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["status"], "cancelled");
}

#[tokio::test]
async fn a_watch_address_must_be_https_as_google_requires() {
    let app = spawn_with(google_sandbox::SandboxConfig::default()).await;
    let token = app.token_all(ALICE).await;
    let (status, v) = app
        .api(
            "calendar.events.watch",
            Method::POST,
            &format!("{EVENTS}/watch"),
            &token,
            Some(&json!({"id": "ch-http", "type": "web_hook",
                         "address": "http://127.0.0.1:9/webhooks/google/calendar"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(reason(&v), "push.webhookUrlNotHttps");
    let channel = watch(
        &app,
        &token,
        "ch-https",
        "https://127.0.0.1:9/webhooks/google/calendar",
        None,
    )
    .await;
    assert_eq!(channel["id"], "ch-https");
}

#[tokio::test]
async fn the_ui_saves_descriptions_as_html_like_google_calendar() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let ev = app
        .ok(
            "calendar.events.insert",
            Method::POST,
            EVENTS,
            &token,
            Some(&event()),
        )
        .await;
    let id = ev["id"].as_str().unwrap();
    let form_url = format!("/_sandbox/ui/calendars/{ALICE}/events/{id}");
    let status = app
        .submit(
            &form_url,
            &[
                ("summary", "pushy"),
                ("description", "Agenda:\n1. Q&A <demo>"),
                ("start", "2026-12-24"),
                ("end", "2026-12-25"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let got = app
        .ok(
            "calendar.events.get",
            Method::GET,
            &format!("{EVENTS}/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["description"], "Agenda:<br>1. Q&amp;A &lt;demo&gt;");
    // The form shows it as text again (saving it unchanged keeps it).
    let html = app.page(&form_url).await;
    assert!(html.contains("Agenda:\n1. Q&amp;A &lt;demo&gt;"), "{html}");
}

#[tokio::test]
async fn the_sync_message_can_arrive_before_the_watch_answer() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(0).await;
    watch(&app, &token, "ch-early", &address, None).await;
    // Already there when the watch call answers: no waiting.
    assert_eq!(r.count(), 1);
    assert_eq!(r.header(0, "x-goog-resource-state"), "sync");
    let log = app.sandbox.push_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].state.as_str(), log[0].status), ("sync", 200));
}

/// Some calendars cannot be watched (holiday and other subscribed calendars): Google answers
/// 400 `pushNotSupportedForRequestedResource`, opens no channel and sends no `sync` message;
/// the calendar can still be listed.
#[tokio::test]
async fn a_calendar_without_push_refuses_watch() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (r, address) = receiver(0).await;
    let resp = app
        .http
        .post(app.url("/_sandbox/calendars"))
        .json(&json!({"owner": ALICE, "summary": "Holidays", "push_supported": false}))
        .send()
        .await
        .expect("add calendar");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let events = format!(
        "/calendar/v3/calendars/{}/events",
        google_sandbox_encode(&id)
    );
    let (status, v) = app
        .api(
            "calendar.events.watch",
            Method::POST,
            &format!("{events}/watch"),
            &token,
            Some(&json!({"id": "ch-holidays", "type": "web_hook", "address": address})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(reason(&v), "pushNotSupportedForRequestedResource");
    assert!(app.sandbox.push_log().is_empty(), "no sync message");
    let listed = app
        .ok("calendar.events.list", Method::GET, &events, &token, None)
        .await;
    assert!(listed["items"].is_array(), "still listed: {listed}");
    // The primary calendar is watched as before.
    watch(&app, &token, "ch-primary", &address, None).await;
    assert!(wait_for(&r, 1).await, "the primary's sync message");
}
