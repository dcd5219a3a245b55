//! The Calendar batch endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn part(id: &str, request: &str) -> String {
    format!(
        "--BOUNDARY\r\nContent-Type: application/http\r\nContent-ID: <{id}>\r\n\r\n{request}\r\n"
    )
}

/// Parses a multipart/mixed batch response into (content-id, status, JSON body).
fn parse_response(content_type: &str, body: &str) -> Vec<(String, u16, Value)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim()
        .to_string();
    let mut out = Vec::new();
    for chunk in body.split(&format!("--{boundary}")).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let id = chunk
            .lines()
            .find_map(|l| l.strip_prefix("Content-ID: "))
            .unwrap_or("")
            .trim()
            .to_string();
        let http = chunk
            .split_once("\r\n\r\n")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        let status_line = http.lines().next().unwrap_or("");
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let body = http
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.trim())
            .unwrap_or("");
        out.push((
            id,
            status,
            serde_json::from_str(body).unwrap_or(Value::Null),
        ));
    }
    out
}

async fn send(app: &TestApp, token: &str, body: String) -> reqwest::Response {
    app.http
        .post(app.url("/batch/calendar/v3"))
        .bearer_auth(token)
        .header("Content-Type", "multipart/mixed; boundary=BOUNDARY")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn batch_round_trip_with_mixed_results() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let insert = json!({"id": "batch00001", "summary": "from batch", "start": {"date": "2026-12-24"}, "end": {"date": "2026-12-25"}});
    let mut body = String::new();
    body.push_str(&part("item1", &format!("POST /calendar/v3/calendars/primary/events?sendUpdates=none HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{insert}")));
    body.push_str(&part(
        "item2",
        "GET https://www.googleapis.com/calendar/v3/calendars/primary/events/batch00001\r\n",
    ));
    body.push_str(&part(
        "item3",
        "GET /calendar/v3/calendars/primary/events/nosuchevent HTTP/1.1\r\n",
    ));
    body.push_str(&part("item4", &format!("POST /calendar/v3/calendars/primary/events HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{insert}")));
    body.push_str(&part("item5", "PATCH /calendar/v3/calendars/primary/events/batch00001 HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: \"stale\"\r\n\r\n{\"summary\":\"x\"}"));
    body.push_str(&part("item6", "GET /calendar/v3/calendars/primary/events HTTP/1.1\r\nAuthorization: Bearer not-a-token\r\n"));
    body.push_str("--BOUNDARY--\r\n");
    app.sandbox.clear_request_log();
    let resp = send(&app, &token, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("multipart/mixed; boundary="));
    let text = resp.text().await.unwrap();
    let parts = parse_response(&ct, &text);
    let summary: Vec<(&str, u16)> = parts.iter().map(|(id, s, _)| (id.as_str(), *s)).collect();
    assert_eq!(
        summary,
        vec![
            ("<response-item1>", 200),
            ("<response-item2>", 200),
            ("<response-item3>", 404),
            ("<response-item4>", 409),
            ("<response-item5>", 412),
            ("<response-item6>", 401),
        ]
    );
    record("calendar.events.insert", StatusCode::OK, &parts[0].2);
    record("calendar.events.get", StatusCode::OK, &parts[1].2);
    assert_eq!(parts[1].2["summary"], "from batch");
    assert_eq!(parts[3].2["error"]["errors"][0]["reason"], "duplicate");

    // every part is in the request log, plus the batch itself
    let log = app.sandbox.request_log();
    assert_eq!(log.len(), 7, "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|l| l.path == "/batch/calendar/v3")
            .count(),
        1
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.user.as_deref() == Some(ALICE))
            .count(),
        6
    );
}

#[tokio::test]
async fn batch_limits_and_format_errors() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let mut body = String::new();
    for i in 0..1001 {
        body.push_str(&part(
            &format!("i{i}"),
            "GET /calendar/v3/colors HTTP/1.1\r\n",
        ));
    }
    body.push_str("--BOUNDARY--\r\n");
    let resp = send(&app, &token, body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = app
        .http
        .post(app.url("/batch/calendar/v3"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = send(&app, &token, "--BOUNDARY--\r\n".to_string()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_parts_count_against_injected_rate_limits() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::RateLimitExceeded).count(2),
    );
    let mut body = String::new();
    for i in 0..3 {
        body.push_str(&part(
            &format!("c{i}"),
            "GET /calendar/v3/colors HTTP/1.1\r\n",
        ));
    }
    body.push_str("--BOUNDARY--\r\n");
    let resp = send(&app, &token, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let parts = parse_response(&ct, &resp.text().await.unwrap());
    let statuses: Vec<u16> = parts.iter().map(|p| p.1).collect();
    assert_eq!(statuses, vec![403, 403, 200]);
    assert_eq!(
        parts[0].2["error"]["errors"][0]["reason"],
        "rateLimitExceeded"
    );
    assert_eq!(parts[0].2["error"]["errors"][0]["domain"], "usageLimits");
    let (status, _) = app
        .api(
            "calendar.colors.get",
            Method::GET,
            "/calendar/v3/colors",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
