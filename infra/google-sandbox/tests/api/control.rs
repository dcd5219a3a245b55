//! The control API: faults, request log, clock, seeding, reset; plus the schema validator's
//! own checks.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

async fn control(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn faults_per_user_global_count_and_retry_after() {
    let app = spawn().await;
    let alice = app.token_all(ALICE).await;
    let bob = app.token_all(BOB).await;
    let (status, _) = control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"kind": "user_rate_limit_exceeded", "user": ALICE, "count": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, err) = app
        .call(Method::GET, "/calendar/v3/colors", &bob, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "other users unaffected: {err}");
    let (status, _, err) = app
        .call(Method::GET, "/calendar/v3/colors", &alice, None, &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reason(&err), "userRateLimitExceeded");
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", &alice, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "count exhausted");

    control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"kind": "too_many_requests", "retry_after_secs": 7, "count": 1})),
    )
    .await;
    let (status, headers, err) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            &bob,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");

    for (kind, code) in [
        ("internal_error", 500),
        ("unavailable", 503),
        ("rate_limit_exceeded", 403),
    ] {
        control(
            &app,
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"kind": kind, "count": 1, "path_prefix": "/calendar/v3/calendars"})),
        )
        .await;
        let (status, _, _) = app
            .call(Method::GET, "/calendar/v3/colors", &alice, None, &[])
            .await;
        assert_eq!(status, StatusCode::OK, "path_prefix limits the fault");
        let (status, _, err) = app
            .call(
                Method::GET,
                "/calendar/v3/calendars/primary/events",
                &alice,
                None,
                &[],
            )
            .await;
        assert_eq!(status.as_u16(), code, "{kind}: {err}");
    }

    // probability 1.0 always fires, 0.0 never
    control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"kind": "unavailable", "probability": 0.0})),
    )
    .await;
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", &alice, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = control(&app, Method::GET, "/_sandbox/faults", None).await;
    assert_eq!(listed["faults"].as_array().unwrap().len(), 1);
    control(&app, Method::DELETE, "/_sandbox/faults", None).await;
    control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"kind": "unavailable", "probability": 1.0, "user": BOB})),
    )
    .await;
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", &bob, None, &[])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"kind": "nonsense"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn latency_fault_delays_without_failing() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::Latency)
            .latency_ms(150)
            .count(1),
    );
    let started = std::time::Instant::now();
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn request_log_counts_exact_calls_and_clears() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (status, _) = control(&app, Method::DELETE, "/_sandbox/requests", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.call(
        Method::GET,
        "/calendar/v3/calendars/primary/events?maxResults=5",
        &token,
        None,
        &[],
    )
    .await;
    app.call(
        Method::GET,
        "/calendar/v3/calendars/primary/events/nope",
        &token,
        None,
        &[],
    )
    .await;
    app.call(
        Method::GET,
        "/v1/people/me/connections?personFields=names",
        &token,
        None,
        &[],
    )
    .await;
    let (_, log) = control(&app, Method::GET, "/_sandbox/requests", None).await;
    let rows = log["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "control calls are not logged: {rows:?}");
    assert_eq!(rows[0]["method"], "GET");
    assert_eq!(rows[0]["path"], "/calendar/v3/calendars/primary/events");
    assert_eq!(rows[0]["query"], "maxResults=5");
    assert_eq!(rows[0]["status"], 200);
    assert_eq!(rows[0]["user"], ALICE);
    assert_eq!(rows[1]["status"], 404);
    app.sandbox.clear_request_log();
    assert!(app.sandbox.request_log().is_empty());
}

#[tokio::test]
async fn seeding_clock_config_and_reset_over_http() {
    let app = spawn().await;
    let (status, _) = control(&app, Method::POST, "/_sandbox/clients", Some(json!({"client_id": "c2", "client_secret": "s2", "redirect_uris": ["http://127.0.0.1:1/cb"]}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = control(
        &app,
        Method::POST,
        "/_sandbox/users",
        Some(
            json!({"email": "carol@example.com", "name": "Carol", "time_zone": "America/New_York"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, users) = control(&app, Method::GET, "/_sandbox/users", None).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
    // the new client and user work end to end
    let url = format!("{}/o/oauth2/v2/auth?client_id=c2&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&response_type=code&scope={}&login_hint=carol@example.com&sandbox_auto=approve", app.base, google_sandbox_encode(CAL));
    let resp = app.http.get(url).send().await.unwrap();
    let code = query_param(resp.headers()["location"].to_str().unwrap(), "code").unwrap();
    let resp = app
        .http
        .post(app.url("/token"))
        .basic_auth("c2", Some("s2"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let cal = app
        .ok(
            "calendar.calendars.get",
            Method::GET,
            "/calendar/v3/calendars/primary",
            &token,
            None,
        )
        .await;
    assert_eq!(cal["timeZone"], "America/New_York");
    let (status, created) = control(
        &app,
        Method::POST,
        "/_sandbox/calendars",
        Some(json!({"owner": "carol@example.com", "summary": "Team"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let list = app
        .ok(
            "calendar.calendarList.list",
            Method::GET,
            "/calendar/v3/users/me/calendarList",
            &token,
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let id = created["id"].as_str().unwrap();
    let entry = app
        .ok(
            "calendar.calendarList.get",
            Method::GET,
            &format!(
                "/calendar/v3/users/me/calendarList/{}",
                google_sandbox_encode(id)
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(entry["summary"], "Team");

    let (_, before) = control(&app, Method::GET, "/_sandbox/clock", None).await;
    let (_, after) = control(
        &app,
        Method::POST,
        "/_sandbox/clock/advance",
        Some(json!({"seconds": 86400})),
    )
    .await;
    let b: jiff::Timestamp = before["now"].as_str().unwrap().parse().unwrap();
    let a: jiff::Timestamp = after["now"].as_str().unwrap().parse().unwrap();
    assert!(a.duration_since(b).as_secs() >= 86400);
    let (status, cfg) = control(
        &app,
        Method::PUT,
        "/_sandbox/config",
        Some(json!({"access_token_ttl_secs": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cfg["access_token_ttl_secs"], 5);

    let (status, _) = control(&app, Method::POST, "/_sandbox/reset", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, users) = control(&app, Method::GET, "/_sandbox/users", None).await;
    assert!(users["users"].as_array().unwrap().is_empty());
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn schema_validator_rejects_what_google_would_not_send() {
    let d = crate::schema::discovery();
    let good = json!({"kind": "calendar#event", "id": "abcde", "start": {"date": "2026-01-01"}, "sequence": 1, "attendees": [{"email": "a@b.c"}]});
    assert!(d.validate_response("calendar.events.get", &good).is_empty());
    let unknown = json!({"kind": "calendar#event", "bogus": 1});
    assert!(!d
        .validate_response("calendar.events.get", &unknown)
        .is_empty());
    let nested = json!({"start": {"date": "2026-01-01", "extra": true}});
    assert!(!d
        .validate_response("calendar.events.get", &nested)
        .is_empty());
    let wrong_type = json!({"sequence": "1"});
    assert!(!d
        .validate_response("calendar.events.get", &wrong_type)
        .is_empty());
    let bad_array = json!({"attendees": [{"email": 5}]});
    assert!(!d
        .validate_response("calendar.events.get", &bad_array)
        .is_empty());
    let int64 = json!({"kind": "api#channel", "expiration": 5});
    assert!(!d
        .validate_response("calendar.events.watch", &int64)
        .is_empty());
    let map = json!({"updateResult": {"people/c1": {"httpStatusCode": 200, "nope": 1}}});
    assert!(!d
        .validate_response("people.people.batchUpdateContacts", &map)
        .is_empty());
    let enum_bad = json!({"metadata": {"objectType": "ROBOT"}});
    assert!(!d
        .validate_response("people.people.get", &enum_bad)
        .is_empty());
    assert!(d
        .validate_response(
            "oauth2.userinfo.get",
            &json!({"email": "a@b.c", "verified_email": true})
        )
        .is_empty());
    assert!(d
        .validate_schema("Userinfo", &json!({"id": "1"}))
        .is_empty());
    assert!(!d
        .validate_schema("Userinfo", &json!({"sub": "1"}))
        .is_empty());
    assert!(!d.validate_schema("NoSuchSchema", &json!({})).is_empty());
}

#[tokio::test]
async fn an_applied_then_failed_fault_does_the_write_and_answers_the_error() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let (status, _) = control(
        &app,
        Method::POST,
        "/_sandbox/faults",
        Some(
            json!({"kind": "internal_error", "count": 1, "applied": true,
                    "path_prefix": "/v1/people:createContact"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let body = json!({"names": [{"givenName": "Once"}],
                      "clientData": [{"key": "crmId", "value": "c-9"}]});
    let (status, _, answer) = app
        .call(
            Method::POST,
            "/v1/people:createContact?personFields=names",
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    // The client was told it failed, yet Google holds the contact.
    let listed = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            "/v1/people/me/connections?personFields=names,clientData",
            &token,
            None,
        )
        .await;
    let people = listed["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(people.len(), 1, "{listed}");
    assert_eq!(people[0]["clientData"][0]["value"], "c-9");
    // Without `applied`, a fault answers instead of the handler: nothing is written.
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::InternalError)
            .path_prefix("/v1/people:createContact")
            .count(1),
    );
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/people:createContact?personFields=names",
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let listed = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            &token,
            None,
        )
        .await;
    assert_eq!(listed["connections"].as_array().map_or(0, Vec::len), 1);
}

#[tokio::test]
async fn quota_faults_answer_as_google_does_for_each_quota() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let path = "/calendar/v3/calendars/primary/events";
    for (kind, reason) in [
        (google_sandbox::FaultKind::QuotaExceeded, "quotaExceeded"),
        (
            google_sandbox::FaultKind::DailyLimitExceeded,
            "dailyLimitExceeded",
        ),
        (
            google_sandbox::FaultKind::RateLimitExceeded,
            "rateLimitExceeded",
        ),
    ] {
        app.sandbox
            .inject_fault(google_sandbox::FaultSpec::new(kind).count(1));
        let (status, _, v) = app.call(Method::GET, path, &token, None, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(reason_of(&v), reason);
        assert_eq!(v["error"]["errors"][0]["domain"], "usageLimits");
    }
    assert_eq!(
        reason_of(&json!({"error": {"errors": [{"reason": "x"}]}})),
        "x"
    );
    // People's quotas are 429 RESOURCE_EXHAUSTED.
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::DailyLimitExceeded).count(1),
    );
    let (status, _, v) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
}

fn reason_of(v: &Value) -> &str {
    v["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}
