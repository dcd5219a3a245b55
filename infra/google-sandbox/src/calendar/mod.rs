//! Calendar v3 under `/calendar/v3/`: calendarList, calendars, colors, events, watch,
//! freeBusy.

pub mod events;
pub mod freebusy;
pub mod recurrence;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::auth::{authorize, Caller};
use crate::errors::{ApiError, Surface};
use crate::params::Params;
use crate::state::{Calendar, State as SandboxState};
use crate::{push, scopes, Sandbox};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/calendar/v3/users/me/calendarList", get(calendar_list))
        .route(
            "/calendar/v3/users/me/calendarList/{calendar_id}",
            get(calendar_list_get),
        )
        .route("/calendar/v3/calendars/{calendar_id}", get(calendar_get))
        .route("/calendar/v3/colors", get(colors))
        .route(
            "/calendar/v3/calendars/{calendar_id}/events",
            get(events_list).post(events_insert),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/watch",
            post(events_watch),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}",
            get(events_get)
                .patch(events_patch)
                .put(events_update)
                .delete(events_delete),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}/instances",
            get(events_instances),
        )
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/{event_id}/move",
            post(events_move),
        )
        .route("/calendar/v3/channels/stop", post(channels_stop))
        .route("/calendar/v3/freeBusy", post(free_busy))
}

/// Creates a calendar (primary calendars use the owner's email as id).
pub fn create_calendar(
    st: &mut SandboxState,
    id: &str,
    owner: &str,
    summary: &str,
    time_zone: &str,
    now: Timestamp,
) {
    st.calendars.insert(
        id.to_string(),
        Calendar {
            id: id.to_string(),
            owner: owner.to_string(),
            summary: summary.to_string(),
            time_zone: time_zone.to_string(),
            resource_id: crate::ids::token(20),
            etag: events::etag_for(now, 0),
            updated: now,
            events: BTreeMap::new(),
            seq: 0,
            sync_epoch: 0,
            next_order: 0,
            push_supported: true,
        },
    );
}

fn caller(sandbox: &Sandbox, headers: &HeaderMap, accepted: &[&str]) -> Result<Caller, ApiError> {
    authorize(sandbox, headers, Surface::Calendar, accepted)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn send_updates_ok(p: &Params) -> Result<(), ApiError> {
    match p.get("sendUpdates") {
        None | Some("all" | "externalOnly" | "none") => Ok(()),
        Some(_) => Err(events::invalid("Invalid value for: sendUpdates")
            .with_location("parameter", "sendUpdates")),
    }
}

fn reply(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn list_entry(cal: &Calendar) -> Value {
    let mut v = json!({
        "kind": "calendar#calendarListEntry",
        "etag": cal.etag,
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
        "colorId": "14",
        "backgroundColor": "#9fe1e7",
        "foregroundColor": "#000000",
        "selected": true,
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 30}],
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    });
    if cal.id == cal.owner {
        v["primary"] = json!(true);
        v["notificationSettings"] = json!({"notifications": [
            {"type": "eventCreation", "method": "email"},
            {"type": "eventChange", "method": "email"},
            {"type": "eventCancellation", "method": "email"},
            {"type": "eventResponse", "method": "email"}
        ]});
    }
    v
}

async fn calendar_list(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let c = match caller(&sandbox, &headers, scopes::CALENDAR_LIST) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let st = sandbox.state();
    let items: Vec<Value> = st
        .calendars
        .values()
        .filter(|cal| cal.owner == c.user)
        .map(list_entry)
        .collect();
    let etag = format!("\"p3{}\"", sandbox.now().as_millisecond());
    Json(json!({
        "kind": "calendar#calendarList",
        "etag": etag,
        "nextSyncToken": crate::ids::token(12),
        "items": items,
    }))
    .into_response()
}

async fn calendar_list_get(
    State(sandbox): State<Sandbox>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = match caller(&sandbox, &headers, scopes::CALENDAR_LIST) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let st = sandbox.state();
    reply(
        events::resolve_calendar(&st, &c.user, &calendar_id).and_then(|id| {
            st.calendars
                .get(&id)
                .map(list_entry)
                .ok_or_else(events::not_found)
        }),
    )
}

async fn calendar_get(
    State(sandbox): State<Sandbox>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = match caller(&sandbox, &headers, scopes::CALENDARS_GET) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let st = sandbox.state();
    reply(
        events::resolve_calendar(&st, &c.user, &calendar_id).and_then(|id| {
            st.calendars
                .get(&id)
                .map(|cal| {
                    json!({
                        "kind": "calendar#calendar",
                        "etag": cal.etag,
                        "id": cal.id,
                        "summary": cal.summary,
                        "timeZone": cal.time_zone,
                        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                    })
                })
                .ok_or_else(events::not_found)
        }),
    )
}

const EVENT_COLORS: &[&str] = &[
    "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
    "#5484ed", "#51b749", "#dc2127",
];
const CALENDAR_COLORS: &[&str] = &[
    "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765",
    "#7bd148", "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7",
    "#9a9cff", "#b99aff", "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
];

async fn colors(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    if let Err(e) = caller(&sandbox, &headers, scopes::COLORS) {
        return e.into_response();
    }
    let palette = |colors: &[&str], fg: &str| -> Value {
        let mut m = serde_json::Map::new();
        for (i, c) in colors.iter().enumerate() {
            m.insert(
                (i + 1).to_string(),
                json!({"background": c, "foreground": fg}),
            );
        }
        Value::Object(m)
    };
    Json(json!({
        "kind": "calendar#colors",
        "updated": "2012-02-14T00:00:00.000Z",
        "calendar": palette(CALENDAR_COLORS, "#1d1d1d"),
        "event": palette(EVENT_COLORS, "#1d1d1d"),
    }))
    .into_response()
}

/// Authorizes and resolves the calendar of an events request.
fn events_target(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    calendar_id: &str,
    accepted: &[&str],
) -> Result<(Caller, String), ApiError> {
    let c = caller(sandbox, headers, accepted)?;
    let id = events::resolve_calendar(&sandbox.state(), &c.user, calendar_id)?;
    Ok((c, id))
}

async fn events_list(
    State(sandbox): State<Sandbox>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_READ) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let now = sandbox.now();
    let horizon = sandbox.config().recurrence_horizon_days;
    reply(events::list(&mut sandbox.state(), now, horizon, &cal, &p))
}

async fn events_instances(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_READ) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let now = sandbox.now();
    let horizon = sandbox.config().recurrence_horizon_days;
    reply(events::instances(
        &mut sandbox.state(),
        now,
        horizon,
        &cal,
        &event_id,
        &p,
    ))
}

async fn events_insert(
    State(sandbox): State<Sandbox>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_WRITE) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = send_updates_ok(&p) {
        return e.into_response();
    }
    let now = sandbox.now();
    let result = events::insert(&mut sandbox.state(), now, &cal, &body);
    match result {
        Ok((v, changed)) => {
            for cal in changed.calendars() {
                push::calendar_changed(&sandbox, cal);
            }
            Json(v).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn events_get(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_READ) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let result = events::get(&sandbox.state(), &cal, &event_id);
    match result {
        Ok(v) => {
            let etag = v.get("etag").and_then(Value::as_str).unwrap_or("");
            if header_str(&headers, header::IF_NONE_MATCH).is_some_and(|m| m == etag) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            Json(v).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn modify(
    sandbox: Sandbox,
    calendar_id: String,
    event_id: String,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
    replace: bool,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_WRITE) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = send_updates_ok(&p) {
        return e.into_response();
    }
    let now = sandbox.now();
    let if_match = header_str(&headers, header::IF_MATCH);
    let result = events::modify(
        &mut sandbox.state(),
        now,
        &cal,
        &event_id,
        &body,
        if_match,
        replace,
    );
    match result {
        Ok((v, changed)) => {
            for cal in changed.calendars() {
                push::calendar_changed(&sandbox, cal);
            }
            Json(v).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn events_patch(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
) -> Response {
    modify(sandbox, calendar_id, event_id, headers, p, body, false).await
}

async fn events_update(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
) -> Response {
    modify(sandbox, calendar_id, event_id, headers, p, body, true).await
}

async fn events_delete(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let (_, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_WRITE) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = send_updates_ok(&p) {
        return e.into_response();
    }
    let now = sandbox.now();
    let if_match = header_str(&headers, header::IF_MATCH);
    let result = events::delete(&mut sandbox.state(), now, &cal, &event_id, if_match);
    match result {
        Ok(changed) => {
            for cal in changed.calendars() {
                push::calendar_changed(&sandbox, cal);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `events.move?destination=…`: the destination must be a calendar the caller can write
/// (404 otherwise, as for any calendar the caller cannot see).
async fn events_move(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let (c, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_MOVE) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = send_updates_ok(&p) {
        return e.into_response();
    }
    let Some(destination) = p.non_empty("destination").map(str::to_owned) else {
        return events::required_parameter("destination").into_response();
    };
    let now = sandbox.now();
    let result = {
        let mut st = sandbox.state();
        events::resolve_calendar(&st, &c.user, &destination)
            .and_then(|dest| events::move_event(&mut st, now, &cal, &event_id, &dest))
    };
    match result {
        Ok((v, changed)) => {
            for ch in changed {
                for cal in ch.calendars() {
                    push::calendar_changed(&sandbox, cal);
                }
            }
            Json(v).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn events_watch(
    State(sandbox): State<Sandbox>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (c, cal) = match events_target(&sandbox, &headers, &calendar_id, scopes::EVENTS_READ) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match push::watch(&sandbox, &c.user, &cal, &body) {
        Ok((channel, sync_sent)) => {
            // The `sync` message reaches the receiver before this answer does.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), sync_sent.notified()).await;
            reply(Ok(channel))
        }
        Err(e) => reply(Err(e)),
    }
}

async fn channels_stop(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = match caller(&sandbox, &headers, scopes::CHANNELS_STOP) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match push::stop(&sandbox, &c.user, &body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `freebusy.query` (see [`freebusy`]).
async fn free_busy(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match caller(&sandbox, &headers, scopes::FREEBUSY) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    reply(freebusy::query(&sandbox.state(), &c.user, &body))
}
