//! The HTTP functions as Lambda runs them: real API Gateway HTTP API (payload 2.0) events
//! through `lambda_http`'s request conversion into each function's router, and an SQS event
//! into the worker's handler.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};
use tower::ServiceExt;

fn apigw_v2_event(method: &str, path: &str, auth: &str, body: Option<&str>) -> String {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {auth}"),
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "crm"},
            "requestId": "req-1",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "22/Nov/2026:02:00:00 +0000",
            "timeEpoch": 1795312800000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

async fn invoke(router: axum::Router, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(event).expect("API Gateway v2 event");
    assert!(request.request_context_ref().is_some());
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Text(t) => axum::body::Body::from(t),
        Body::Binary(b) => axum::body::Body::from(b),
        _ => axum::body::Body::empty(),
    };
    let response = router
        .oneshot(http::Request::from_parts(parts, body))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn admin_config_handles_api_gateway_events() {
    let app = crate::world::aws_app().await;
    let event = apigw_v2_event(
        "POST",
        "/v1/tenants",
        crate::world::OPERATOR_KEY,
        Some(r#"{"id":"lambda-t","name":"From Lambda"}"#),
    );
    let (status, v) = invoke(admin_config::router(app.clone()), &event).await;
    assert_eq!(status, 201, "{v}");
    let admin = v["admin_key"]["key_secret"].as_str().unwrap();

    let event = apigw_v2_event("GET", "/v1/admin/api-keys", admin, None);
    let (status, v) = invoke(admin_config::router(app.clone()), &event).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // Each function answers only its own routes, with a JSON 404 for the rest.
    let event = apigw_v2_event("GET", "/v1/admin/api-keys", admin, None);
    let (status, v) = invoke(crm_api::router(app.clone()), &event).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");

    let event = apigw_v2_event("GET", "/v1/users/u1/google", "cgs_bad", None);
    let (status, v) = invoke(crm_api::router(app), &event).await;
    assert_eq!(status, 401, "{v}");
}

#[tokio::test]
/// SQS FIFO: a failed message and the later ones of its group (the same account) go back to
/// the queue, in order; other accounts' messages are worked on all the same.
async fn worker_fails_a_failed_message_and_its_groups_later_ones_only() {
    let app = crate::world::aws_app().await;
    let mut event = SqsEvent::default();
    for (id, group, body) in [
        (
            "m1",
            "acme:u1",
            r#"{"tenant":"acme","user":"u1","reason":"scheduled"}"#,
        ),
        ("m2", "acme:u3", "not json"),
        (
            "m3",
            "acme:u3",
            r#"{"tenant":"acme","user":"u3","reason":"scheduled"}"#,
        ),
        (
            "m4",
            "acme:u2",
            r#"{"tenant":"acme","user":"u2","calendar":"primary","reason":"push"}"#,
        ),
        (
            "m5",
            "BAD#",
            r#"{"tenant":"BAD#","user":"u1","reason":"scheduled"}"#,
        ),
    ] {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.attributes.insert("MessageGroupId".into(), group.into());
        m.body = Some(body.into());
        event.records.push(m);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let response = sync_worker::handle(&app, event, deadline).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // m2 is not a job; m3 waits behind it (same account); m1 and m4 (accounts with nothing
    // to sync) are done; m5 is not a job either.
    assert_eq!(failed, ["m2", "m3", "m5"]);
}

#[tokio::test]
/// Messages the invocation has no time for come back at once (their visibility is reset
/// over SQS's wire protocol), not after the queue's 30-minute visibility timeout.
async fn messages_left_for_lack_of_time_come_back_at_once() {
    let app = crate::world::aws_app().await;
    let sqs = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let url = app.config.queue_url.clone().unwrap();
    for user in ["u1", "u2"] {
        sqs.send_message()
            .queue_url(&url)
            .message_group_id(format!("acme:{user}"))
            .message_deduplication_id(user)
            .message_body(format!(
                r#"{{"tenant":"acme","user":"{user}","reason":"scheduled"}}"#
            ))
            .send()
            .await
            .unwrap();
    }
    let receive = || async {
        sqs.receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(1800)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    let got = receive().await;
    assert_eq!(got.len(), 2);
    let mut event = SqsEvent::default();
    for m in &got {
        let mut e = SqsMessage::default();
        e.message_id = m.message_id.clone();
        e.receipt_handle = m.receipt_handle.clone();
        e.body = m.body.clone();
        event.records.push(e);
    }
    // An invocation already at its deadline.
    let response = sync_worker::handle(&app, event, std::time::Instant::now()).await;
    assert_eq!(response.batch_item_failures.len(), 2);
    assert_eq!(receive().await.len(), 2, "both visible again at once");
}

#[test]
fn failed_jobs_back_off_by_their_receive_count() {
    let minutes = |n| sync_worker::backoff(n).as_secs() / 60;
    assert_eq!([1, 2, 3, 4, 5, 6, 9].map(minutes), [1, 2, 4, 8, 15, 15, 15]);
}
