//! Calendar v3 events (list with sync and page tokens, get, insert, patch, delete,
//! instances, watch) and `freebusy.query`, shaped after Google's discovery document
//! (`infra/google-sandbox/discovery/calendar.v3.json`). Every call goes through the one retry policy
//! ([`super::retry`]); every request is a [`CalendarRequest`], so the same request can be sent
//! alone or as a part of a batch ([`super::batch`]).

use super::api::classify_status;
use super::retry::{self, with_retry, RetryPolicy};
use super::{Google, GoogleError};
use reqwest::header::{HeaderMap, CONTENT_TYPE, IF_MATCH};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Google's `Event` resource. Only `id` is always present in Google's answers (a cancelled
/// event in an incremental list may carry little else); everything else is optional. Fields
/// the product does not model are kept in `other`, so reading and writing an event back loses
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    /// Client-chosen (base32hex, 5–1024 chars) on insert, or empty to let Google choose.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `confirmed`, `tentative` or `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    /// Exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    /// RRULE, EXRULE, RDATE and EXDATE lines (RFC 5545).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Vec<String>>,
    /// For an instance of a recurring event: the series master's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
    /// For an instance: its start according to the recurrence rule (identifies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<EventDateTime>,
    /// `opaque` or `transparent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparency: Option<String>,
    /// `default`, `public`, `private` or `confidential`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(rename = "iCalUID", skip_serializing_if = "Option::is_none")]
    pub i_cal_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<Attendee>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizer: Option<EventPerson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator: Option<EventPerson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_properties: Option<ExtendedProperties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Reminders>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Every field not modelled above, as Google sent it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Event {
    pub fn is_cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }
}

/// `EventDateTime`: `date` (all-day, `yyyy-mm-dd`) or `dateTime` (RFC 3339), and the IANA
/// time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventDateTime {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// `EventAttendee`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attendee {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `needsAction`, `declined`, `tentative` or `accepted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizer: Option<bool>,
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_guests: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<bool>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The `organizer` and `creator` objects of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventPerson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_: Option<bool>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `extendedProperties`: string properties private to this calendar's copy, or shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtendedProperties {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub private: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, String>,
}

/// `reminders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reminders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Vec<Reminder>>,
}

/// `EventReminder`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reminder {
    /// `email` or `popup`.
    pub method: String,
    pub minutes: i64,
}

/// Who Google notifies about a write (`sendUpdates`). Sync writes use `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SendUpdates {
    #[default]
    None,
    All,
    ExternalOnly,
}

impl SendUpdates {
    pub fn as_str(self) -> &'static str {
        match self {
            SendUpdates::None => "none",
            SendUpdates::All => "all",
            SendUpdates::ExternalOnly => "externalOnly",
        }
    }
}

/// Parameters of `events.list`. With `sync_token`, the parameters Google forbids next to it
/// (`timeMin`, `privateExtendedProperty`, `iCalUID`, and `showDeleted=false`) are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListEvents {
    pub sync_token: Option<String>,
    pub page_token: Option<String>,
    /// RFC 3339 lower bound on an event's end (the "sync since" window of a full sync).
    pub time_min: Option<String>,
    pub show_deleted: bool,
    pub single_events: bool,
    /// 1..=2500 (Google's default 250).
    pub max_results: Option<u32>,
    /// `privateExtendedProperty=key=value` filters (all must match).
    pub private_extended_property: Vec<(String, String)>,
    pub i_cal_uid: Option<String>,
}

/// One page of `events.list` / `events.instances`. `next_sync_token` comes on the last page
/// of a list only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventsPage {
    pub items: Vec<Event>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
    /// The calendar's time zone (for all-day events).
    pub time_zone: Option<String>,
}

/// An `events.watch` request: a web-hook channel.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Our channel id (unique per channel; a renewal uses a new one).
    pub id: String,
    /// Echoed in `X-Goog-Channel-Token` of every notification; compared in constant time.
    pub token: SecretString,
    /// HTTPS address Google posts notifications to.
    pub address: String,
    /// Requested lifetime (`params.ttl`); Google's default when `None`.
    pub ttl_secs: Option<u64>,
}

/// A watch channel as Google created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    /// Google's id of the watched resource (needed by `channels.stop`).
    pub resource_id: String,
    /// Expiry in Unix milliseconds.
    pub expiration_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelAnswer {
    id: String,
    resource_id: String,
    #[serde(default)]
    expiration: Option<String>,
}

/// One Calendar v3 request: sent alone by the methods on [`Google`], or as a batch part.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarRequest {
    pub method: Method,
    /// Absolute path with its query, e.g. `/calendar/v3/calendars/{id}/events?sendUpdates=none`.
    pub target: String,
    pub body: Option<Value>,
    pub if_match: Option<String>,
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters (as
/// Google's URI templates expand `{calendarId}`), so `@`, `#`, `/` and `%` are safe.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn events_path(calendar_id: &str, event_id: Option<&str>, tail: &str) -> String {
    let mut path = format!(
        "/calendar/v3/calendars/{}/events",
        encode_segment(calendar_id)
    );
    if let Some(id) = event_id {
        path.push('/');
        path.push_str(&encode_segment(id));
    }
    path.push_str(tail);
    path
}

fn with_query(path: String, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path;
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    format!("{path}?{q}")
}

impl CalendarRequest {
    /// `events.insert`.
    pub fn insert_event(
        calendar_id: &str,
        event: &Event,
        send_updates: SendUpdates,
    ) -> Result<Self, GoogleError> {
        let body = serde_json::to_value(event).map_err(|e| GoogleError::Rejected {
            status: 0,
            reason: format!("event not serializable: {e}"),
        })?;
        Ok(Self {
            method: Method::POST,
            target: with_query(
                events_path(calendar_id, None, ""),
                &[("sendUpdates", send_updates.as_str())],
            ),
            body: Some(body),
            if_match: None,
        })
    }

    /// `events.patch` with a partial body (JSON merge semantics; `null` clears a field).
    pub fn patch_event(
        calendar_id: &str,
        event_id: &str,
        body: &Value,
        if_match: Option<&str>,
        send_updates: SendUpdates,
    ) -> Self {
        Self {
            method: Method::PATCH,
            target: with_query(
                events_path(calendar_id, Some(event_id), ""),
                &[("sendUpdates", send_updates.as_str())],
            ),
            body: Some(body.clone()),
            if_match: if_match.map(str::to_owned),
        }
    }

    /// `events.delete`.
    pub fn delete_event(
        calendar_id: &str,
        event_id: &str,
        if_match: Option<&str>,
        send_updates: SendUpdates,
    ) -> Self {
        Self {
            method: Method::DELETE,
            target: with_query(
                events_path(calendar_id, Some(event_id), ""),
                &[("sendUpdates", send_updates.as_str())],
            ),
            body: None,
            if_match: if_match.map(str::to_owned),
        }
    }

    /// `events.move`: the event (a series with its exceptions) goes to `destination` under
    /// the same id, and that calendar becomes its organizer.
    pub fn move_event(
        calendar_id: &str,
        event_id: &str,
        destination: &str,
        send_updates: SendUpdates,
    ) -> Self {
        Self {
            method: Method::POST,
            target: with_query(
                events_path(calendar_id, Some(event_id), "/move"),
                &[
                    ("destination", destination),
                    ("sendUpdates", send_updates.as_str()),
                ],
            ),
            body: None,
            if_match: None,
        }
    }

    /// `events.get`.
    pub fn get_event(calendar_id: &str, event_id: &str) -> Self {
        Self {
            method: Method::GET,
            target: events_path(calendar_id, Some(event_id), ""),
            body: None,
            if_match: None,
        }
    }

    /// `events.list`.
    pub fn list_events(calendar_id: &str, params: &ListEvents) -> Self {
        let max = params.max_results.map(|n| n.to_string());
        let filters: Vec<String> = params
            .private_extended_property
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &params.page_token {
            query.push(("pageToken", t));
        }
        if let Some(n) = &max {
            query.push(("maxResults", n));
        }
        if params.single_events {
            query.push(("singleEvents", "true"));
        }
        match &params.sync_token {
            Some(sync) => {
                query.push(("syncToken", sync));
                // Deleted events always come with a sync token; `false` is refused.
                if params.show_deleted {
                    query.push(("showDeleted", "true"));
                }
            }
            None => {
                query.push(("showDeleted", bool_str(params.show_deleted)));
                if let Some(t) = &params.time_min {
                    query.push(("timeMin", t));
                }
                if let Some(uid) = &params.i_cal_uid {
                    query.push(("iCalUID", uid));
                }
                for f in &filters {
                    query.push(("privateExtendedProperty", f));
                }
            }
        }
        Self {
            method: Method::GET,
            target: with_query(events_path(calendar_id, None, ""), &query),
            body: None,
            if_match: None,
        }
    }

    /// `events.instances`.
    pub fn instances(calendar_id: &str, event_id: &str, page_token: Option<&str>) -> Self {
        let mut query = vec![("showDeleted", "true")];
        if let Some(t) = page_token {
            query.push(("pageToken", t));
        }
        Self {
            method: Method::GET,
            target: with_query(
                events_path(calendar_id, Some(event_id), "/instances"),
                &query,
            ),
            body: None,
            if_match: None,
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// A successful (2xx) HTTP answer.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// How long a batch request may take (the client's 20 s is for one call): 50 Calendar parts
/// or 200 contacts are many writes on Google's side, and a People create cut off by the
/// client's timeout has an unknown outcome.
pub const BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Calendar's batch endpoint and People's `…:batch…` methods.
fn is_batch(url: &str) -> bool {
    url.contains("/batch/") || url.contains(":batch")
}

fn transport(e: reqwest::Error) -> GoogleError {
    if e.is_builder() {
        GoogleError::Rejected {
            status: 0,
            reason: "invalid request".into(),
        }
    } else {
        GoogleError::Transient(format!("request failed: {}", e.without_url()))
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(answer: &Answer) -> Result<T, GoogleError> {
    serde_json::from_slice(&answer.body).map_err(|e| GoogleError::Rejected {
        status: answer.status,
        reason: format!("unexpected answer: {e}"),
    })
}

impl Google {
    /// One HTTP attempt: 2xx → the answer; otherwise the error `classify_status` sorts, with
    /// `Retry-After` noted for the retry loop.
    pub(crate) async fn send_once(
        &self,
        token: &SecretString,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, GoogleError> {
        self.send_weighted(1, token, method, url, headers, body)
            .await
    }

    /// [`Self::send_once`] counting as `weight` calls of Google's quota (a batch request
    /// counts each part): paced first ([`super::pacing`]), counted in the metrics after.
    pub(crate) async fn send_weighted(
        &self,
        weight: u32,
        token: &SecretString,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, GoogleError> {
        let label = crate::metrics::google_method(&method, url);
        if let Err(e) = super::pacing::admit(weight).await {
            self.metrics.google_call(label, &Err(&e));
            return Err(e);
        }
        let result = self.send_unpaced(token, method, url, headers, body).await;
        self.metrics
            .google_call(label, &result.as_ref().map(|_| ()));
        result
    }

    async fn send_unpaced(
        &self,
        token: &SecretString,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, GoogleError> {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.expose_secret());
        if is_batch(url) {
            req = req.timeout(BATCH_TIMEOUT);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes.to_vec());
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| {
            GoogleError::Transient(format!("reading the answer: {}", e.without_url()))
        })?;
        if !(200..300).contains(&status) {
            if let Some(wait) = retry::retry_after(status, &headers) {
                retry::note_retry_after(wait);
            }
            return Err(classify_status(status, &body));
        }
        Ok(Answer {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// Sends one Calendar request under the ambient retry policy.
    pub(crate) async fn execute(
        &self,
        token: &SecretString,
        request: &CalendarRequest,
    ) -> Result<Answer, GoogleError> {
        let url = format!("{}{}", self.endpoints.calendar_base, request.target);
        let body = match &request.body {
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| GoogleError::Rejected {
                status: 0,
                reason: format!("body not serializable: {e}"),
            })?),
            None => None,
        };
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(etag) = &request.if_match {
            headers.push((IF_MATCH.as_str(), etag));
        }
        with_retry(&RetryPolicy::current(), || {
            self.send_once(
                token,
                request.method.clone(),
                &url,
                &headers,
                body.as_deref().map(|b| ("application/json", b)),
            )
        })
        .await
    }

    async fn execute_json<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        request: &CalendarRequest,
    ) -> Result<T, GoogleError> {
        parse_json(&self.execute(token, request).await?)
    }

    /// `events.list`: one page. Loop on `next_page_token`; keep `next_sync_token` of the
    /// last page for the next incremental list. A stale sync token answers
    /// [`GoogleError::Gone`] (`fullSyncRequired`).
    pub async fn list_events(
        &self,
        token: &SecretString,
        calendar_id: &str,
        params: &ListEvents,
    ) -> Result<EventsPage, GoogleError> {
        self.execute_json(token, &CalendarRequest::list_events(calendar_id, params))
            .await
    }

    /// `events.get`; `None` when the event does not exist.
    pub async fn get_event(
        &self,
        token: &SecretString,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<Option<Event>, GoogleError> {
        match self
            .execute_json(token, &CalendarRequest::get_event(calendar_id, event_id))
            .await
        {
            Ok(event) => Ok(Some(event)),
            // 410: deleted (and purged); either way there is no event to read.
            Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `events.insert`. With a client-chosen `id`, a retried insert answers
    /// [`GoogleError::Conflict`] instead of duplicating.
    pub async fn insert_event(
        &self,
        token: &SecretString,
        calendar_id: &str,
        event: &Event,
        send_updates: SendUpdates,
    ) -> Result<Event, GoogleError> {
        let request = CalendarRequest::insert_event(calendar_id, event, send_updates)?;
        self.execute_json(token, &request).await
    }

    /// `events.patch` of the given fields only; with `if_match`, a changed event answers
    /// [`GoogleError::PreconditionFailed`].
    pub async fn patch_event(
        &self,
        token: &SecretString,
        calendar_id: &str,
        event_id: &str,
        body: &Value,
        if_match: Option<&str>,
        send_updates: SendUpdates,
    ) -> Result<Event, GoogleError> {
        let request =
            CalendarRequest::patch_event(calendar_id, event_id, body, if_match, send_updates);
        self.execute_json(token, &request).await
    }

    /// `events.delete`. Already deleted (410) or unknown (404) counts as deleted.
    pub async fn delete_event(
        &self,
        token: &SecretString,
        calendar_id: &str,
        event_id: &str,
        if_match: Option<&str>,
        send_updates: SendUpdates,
    ) -> Result<(), GoogleError> {
        let request = CalendarRequest::delete_event(calendar_id, event_id, if_match, send_updates);
        match self.execute(token, &request).await {
            Ok(_) | Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `events.instances` of a recurring event (cancelled instances included), one page.
    pub async fn instances(
        &self,
        token: &SecretString,
        calendar_id: &str,
        event_id: &str,
        page_token: Option<&str>,
    ) -> Result<EventsPage, GoogleError> {
        let request = CalendarRequest::instances(calendar_id, event_id, page_token);
        self.execute_json(token, &request).await
    }

    /// `events.watch`: opens a web-hook channel on the calendar's events.
    pub async fn watch_events(
        &self,
        token: &SecretString,
        calendar_id: &str,
        watch: &WatchRequest,
    ) -> Result<Channel, GoogleError> {
        let mut body = serde_json::json!({
            "id": watch.id,
            "type": "web_hook",
            "address": watch.address,
            "token": watch.token.expose_secret(),
        });
        if let Some(ttl) = watch.ttl_secs {
            body["params"] = serde_json::json!({ "ttl": ttl.to_string() });
        }
        let request = CalendarRequest {
            method: Method::POST,
            target: events_path(calendar_id, None, "/watch"),
            body: Some(body),
            if_match: None,
        };
        let got: ChannelAnswer = self.execute_json(token, &request).await?;
        Ok(Channel {
            id: got.id,
            resource_id: got.resource_id,
            expiration_ms: got.expiration.and_then(|e| e.parse().ok()),
        })
    }
}

/// `FreeBusyRequest` (groups are not asked for: the product names calendars).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeBusyRequest {
    /// RFC 3339 with an offset.
    pub time_min: String,
    /// RFC 3339 with an offset; exclusive.
    pub time_max: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_expansion_max: Option<u32>,
    pub items: Vec<FreeBusyRequestItem>,
}

/// `FreeBusyRequestItem`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FreeBusyRequestItem {
    pub id: String,
}

/// `FreeBusyResponse`: one `FreeBusyCalendar` per id asked for, keyed by that id.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FreeBusyResponse {
    pub time_min: Option<String>,
    pub time_max: Option<String>,
    pub calendars: BTreeMap<String, FreeBusyCalendar>,
}

/// `FreeBusyCalendar`: busy periods, or the errors of a calendar Google could not answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FreeBusyCalendar {
    pub busy: Vec<TimePeriod>,
    pub errors: Vec<FreeBusyError>,
}

/// `TimePeriod`: `start` inclusive, `end` exclusive (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimePeriod {
    pub start: String,
    pub end: String,
}

/// `Error` of a `FreeBusyCalendar` (`notFound`, `tooManyCalendarsRequested`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FreeBusyError {
    pub domain: String,
    pub reason: String,
}

impl Google {
    /// `freebusy.query`, through the same retry and pacing as every Calendar call. A
    /// calendar Google cannot answer comes back with `errors`, not as a failed call.
    pub async fn free_busy(
        &self,
        token: &SecretString,
        request: &FreeBusyRequest,
    ) -> Result<FreeBusyResponse, GoogleError> {
        let body = serde_json::to_value(request).map_err(|e| GoogleError::Rejected {
            status: 0,
            reason: format!("request not serializable: {e}"),
        })?;
        let request = CalendarRequest {
            method: Method::POST,
            target: "/calendar/v3/freeBusy".to_owned(),
            body: Some(body),
            if_match: None,
        };
        self.execute_json(token, &request).await
    }
}

impl GoogleError {
    /// A sync token Google no longer honours: list again without it (a full sync).
    pub fn is_full_sync_required(&self) -> bool {
        matches!(self, GoogleError::Gone(reason) if reason != "deleted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            encode_segment("en.usa#holiday@group.v.calendar.google.com"),
            "en.usa%23holiday%40group.v.calendar.google.com"
        );
        assert_eq!(encode_segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(encode_segment("ü"), "%C3%BC");
        assert_eq!(
            CalendarRequest::get_event("me@x.com", "abc_20240101T100000Z").target,
            "/calendar/v3/calendars/me%40x.com/events/abc_20240101T100000Z"
        );
    }

    #[test]
    fn a_sync_token_drops_the_forbidden_parameters() {
        let full = ListEvents {
            time_min: Some("2024-01-01T00:00:00Z".into()),
            show_deleted: false,
            single_events: true,
            max_results: Some(10),
            private_extended_property: vec![("crm".into(), "a b&c".into())],
            i_cal_uid: Some("x@google.com".into()),
            ..Default::default()
        };
        let t = CalendarRequest::list_events("primary", &full).target;
        assert_eq!(
            t,
            "/calendar/v3/calendars/primary/events?maxResults=10&singleEvents=true&showDeleted=false\
             &timeMin=2024-01-01T00%3A00%3A00Z&iCalUID=x%40google.com\
             &privateExtendedProperty=crm%3Da+b%26c"
        );
        let incremental = ListEvents {
            sync_token: Some("tok".into()),
            page_token: Some("pg".into()),
            ..full
        };
        let t = CalendarRequest::list_events("primary", &incremental).target;
        assert_eq!(
            t,
            "/calendar/v3/calendars/primary/events?pageToken=pg&maxResults=10&singleEvents=true&syncToken=tok"
        );
    }

    #[test]
    fn events_round_trip_without_loss() {
        let google = json!({
            "kind": "calendar#event",
            "etag": "\"3181161784712000\"",
            "id": "abc123",
            "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid=x",
            "created": "2024-05-01T10:00:00.000Z",
            "updated": "2024-05-01T10:00:00.000Z",
            "summary": "Review",
            "colorId": "5",
            "start": {"dateTime": "2024-05-02T09:00:00+02:00", "timeZone": "Europe/Berlin"},
            "end": {"date": "2024-05-03"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
            "originalStartTime": {"dateTime": "2024-05-02T09:00:00+02:00"},
            "recurringEventId": "abc",
            "iCalUID": "abc123@google.com",
            "sequence": 2,
            "attendees": [{"email": "a@x.com", "self": true, "responseStatus": "accepted",
                           "additionalGuests": 1, "id": "future"}],
            "organizer": {"email": "me@x.com", "self": true},
            "creator": {"email": "me@x.com", "displayName": "Me"},
            "extendedProperties": {"private": {"crmId": "42"}},
            "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 10}]},
            "conferenceData": {"entryPoints": []},
            "eventType": "default"
        });
        let event: Event = serde_json::from_value(google.clone()).unwrap();
        assert_eq!(event.i_cal_uid.as_deref(), Some("abc123@google.com"));
        assert_eq!(event.attendees.as_ref().unwrap()[0].self_, Some(true));
        assert_eq!(
            event.extended_properties.as_ref().unwrap().private["crmId"],
            "42"
        );
        assert!(event.other.contains_key("conferenceData"));
        assert_eq!(serde_json::to_value(&event).unwrap(), google);

        let cancelled: Event =
            serde_json::from_value(json!({"id": "x", "status": "cancelled"})).unwrap();
        assert!(cancelled.is_cancelled());
        assert_eq!(
            serde_json::to_value(Event::default()).unwrap(),
            json!({}),
            "an empty event sends nothing"
        );
    }

    #[test]
    fn full_sync_required_is_told_apart() {
        assert!(GoogleError::Gone("fullSyncRequired".into()).is_full_sync_required());
        assert!(!GoogleError::Gone("deleted".into()).is_full_sync_required());
        assert!(!GoogleError::NotFound("notFound".into()).is_full_sync_required());
    }
}
