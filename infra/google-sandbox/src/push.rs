//! Push notifications: events.watch channels, channels.stop, and delivery of Google's
//! webhook POSTs (`X-Goog-*` headers, empty body) in background tasks with retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::clock::rfc1123;
use crate::errors::{ApiError, Surface};
use crate::Sandbox;

/// A live watch channel.
#[derive(Debug)]
pub struct ChannelState {
    pub id: String,
    pub resource_id: String,
    pub resource_uri: String,
    pub token: Option<String>,
    pub address: String,
    pub expiration: Timestamp,
    pub calendar_id: String,
    pub owner: String,
    pub message_number: u64,
    sender: mpsc::UnboundedSender<Notification>,
    stopped: Arc<AtomicBool>,
}

impl Drop for ChannelState {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// One webhook POST to make.
#[derive(Debug, Clone)]
struct Notification {
    address: String,
    channel_id: String,
    token: Option<String>,
    expiration: Timestamp,
    resource_id: String,
    resource_uri: String,
    state: &'static str,
    number: u64,
}

fn bad(reason: &str, message: &str) -> ApiError {
    ApiError::new(Surface::Calendar, StatusCode::BAD_REQUEST, reason, message)
}

/// events.watch. The channel's `sync` message goes out at once; the caller answers the watch
/// call only after its first delivery attempt (the returned [`tokio::sync::Notify`]), as
/// Google warns can happen: "it's possible to receive the sync message even before you
/// receive the watch method response".
pub fn watch(
    sandbox: &Sandbox,
    user: &str,
    calendar_id: &str,
    body: &[u8],
) -> Result<(Value, Arc<tokio::sync::Notify>), ApiError> {
    let req = WatchRequest::parse(sandbox, body)?;
    let now = sandbox.now();
    let expiration = now
        .checked_add(SignedDuration::from_secs(req.ttl))
        .unwrap_or(Timestamp::MAX);
    let mut st = sandbox.state();
    if st.channels.contains_key(&req.id) {
        return Err(bad(
            "channelIdNotUnique",
            &format!("Channel id {} not unique", req.id),
        ));
    }
    let cal = st
        .calendars
        .get(calendar_id)
        .ok_or_else(crate::calendar::events::not_found)?;
    if !cal.push_supported {
        return Err(bad(
            "pushNotSupportedForRequestedResource",
            "Push notifications are not supported by this resource.",
        ));
    }
    let resource_id = cal.resource_id.clone();
    let resource_uri = format!(
        "https://www.googleapis.com/calendar/v3/calendars/{}/events?alt=json",
        crate::params::encode(calendar_id)
    );
    let (sender, rx) = mpsc::unbounded_channel();
    let stopped = Arc::new(AtomicBool::new(false));
    let first = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(deliver_loop(
        rx,
        sandbox.clone(),
        stopped.clone(),
        first.clone(),
    ));
    let channel = ChannelState {
        id: req.id.clone(),
        resource_id,
        resource_uri,
        token: req.token,
        address: req.address,
        expiration,
        calendar_id: calendar_id.to_string(),
        owner: user.to_string(),
        message_number: 1,
        sender,
        stopped,
    };
    let sync = notification(&channel, "sync");
    let _ = channel.sender.send(sync);
    let out = channel_resource(&channel);
    st.channels.insert(req.id, channel);
    Ok((out, first))
}

/// What an events.watch body asks for, checked as Google checks it.
struct WatchRequest {
    id: String,
    address: String,
    token: Option<String>,
    /// Seconds the channel lives (`params.ttl`, at most 30 days).
    ttl: i64,
}

impl WatchRequest {
    fn parse(sandbox: &Sandbox, body: &[u8]) -> Result<Self, ApiError> {
        let req = crate::calendar::events::parse_body(body)?;
        let id = req
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("required", "Required channel id"))?
            .to_string();
        match req.get("type").and_then(Value::as_str) {
            Some("web_hook" | "webhook") => {}
            _ => return Err(bad("invalid", "Invalid value for: type")),
        }
        let address = req
            .get("address")
            .and_then(Value::as_str)
            .filter(|a| {
                a.starts_with("https://")
                    || (a.starts_with("http://") && sandbox.config().allow_http_push)
            })
            .ok_or_else(|| bad("push.webhookUrlNotHttps", "WebHook callback must be HTTPS."))?
            .to_string();
        let token = req.get("token").and_then(Value::as_str).map(str::to_string);
        let ttl = match req.get("params").and_then(|p| p.get("ttl")) {
            None => sandbox.config().channel_default_ttl_secs,
            Some(v) => v
                .as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| v.as_i64())
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("invalid", "Invalid value for: params.ttl"))?
                .min(30 * 24 * 3600),
        };
        Ok(Self {
            id,
            address,
            token,
            ttl,
        })
    }
}

/// The `api#channel` resource events.watch answers.
fn channel_resource(channel: &ChannelState) -> Value {
    let mut out = json!({
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": channel.expiration.as_millisecond().to_string(),
    });
    if let Some(t) = &channel.token {
        out["token"] = json!(t);
    }
    out
}

fn notification(ch: &ChannelState, state: &'static str) -> Notification {
    Notification {
        address: ch.address.clone(),
        channel_id: ch.id.clone(),
        token: ch.token.clone(),
        expiration: ch.expiration,
        resource_id: ch.resource_id.clone(),
        resource_uri: ch.resource_uri.clone(),
        state,
        number: ch.message_number,
    }
}

/// channels.stop
pub fn stop(sandbox: &Sandbox, user: &str, body: &[u8]) -> Result<(), ApiError> {
    let req = crate::calendar::events::parse_body(body)?;
    let id = req.get("id").and_then(Value::as_str).unwrap_or("");
    let resource_id = req.get("resourceId").and_then(Value::as_str);
    let mut st = sandbox.state();
    let found = st
        .channels
        .get(id)
        .is_some_and(|c| c.owner == user && resource_id.is_none_or(|r| r == c.resource_id));
    if !found {
        return Err(ApiError::new(
            Surface::Calendar,
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("Channel '{id}' not found for project"),
        ));
    }
    st.channels.remove(id);
    Ok(())
}

/// After any change to a calendar: one `exists` message per live channel watching it.
pub fn calendar_changed(sandbox: &Sandbox, calendar_id: &str) {
    let now = sandbox.now();
    let mut st = sandbox.state();
    st.channels
        .retain(|_, c| c.calendar_id != calendar_id || c.expiration > now);
    let ids: Vec<String> = st
        .channels
        .values()
        .filter(|c| c.calendar_id == calendar_id)
        .map(|c| c.id.clone())
        .collect();
    for id in ids {
        let Some(owner) = st.channels.get(&id).map(|c| c.owner.clone()) else {
            continue;
        };
        let fate = crate::faults::push_fate(&mut st, &owner);
        if let Some(ch) = st.channels.get_mut(&id) {
            ch.message_number += 1;
            let n = notification(ch, "exists");
            for _ in 0..fate.copies {
                if fate.delay_ms == 0 {
                    let _ = ch.sender.send(n.clone());
                } else {
                    let (sender, n) = (ch.sender.clone(), n.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(fate.delay_ms)).await;
                        let _ = sender.send(n);
                    });
                }
            }
        }
    }
}

async fn deliver_loop(
    mut rx: mpsc::UnboundedReceiver<Notification>,
    sandbox: Sandbox,
    stopped: Arc<AtomicBool>,
    first: Arc<tokio::sync::Notify>,
) {
    let http = sandbox.inner.http.clone();
    let max_attempts = sandbox.config().push_max_attempts;
    let base_ms = sandbox.config().push_retry_base_ms;
    let mut first = Some(first);
    while let Some(n) = rx.recv().await {
        for attempt in 0..max_attempts.max(1) {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let mut req = http
                .post(&n.address)
                .header("X-Goog-Channel-ID", &n.channel_id)
                .header("X-Goog-Channel-Expiration", rfc1123(n.expiration))
                .header("X-Goog-Resource-ID", &n.resource_id)
                .header("X-Goog-Resource-URI", &n.resource_uri)
                .header("X-Goog-Resource-State", n.state)
                .header("X-Goog-Message-Number", n.number.to_string())
                .header(reqwest::header::CONTENT_LENGTH, "0");
            if let Some(t) = &n.token {
                req = req.header("X-Goog-Channel-Token", t);
            }
            let answered = req.send().await.map(|r| r.status());
            sandbox.state().push_log.push(crate::state::PushDelivery {
                channel_id: n.channel_id.clone(),
                state: n.state.to_string(),
                status: answered.as_ref().map_or(0, |s| s.as_u16()),
            });
            if let Some(f) = first.take() {
                f.notify_one();
            }
            let retry = match answered {
                Ok(s) => s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS,
                Err(_) => true,
            };
            if !retry {
                break;
            }
            if attempt + 1 < max_attempts {
                let delay = base_ms.saturating_mul(1u64 << attempt.min(10));
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
        }
    }
}
