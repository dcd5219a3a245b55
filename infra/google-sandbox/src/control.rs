//! The control API under `/_sandbox/` (not a Google surface): seeding, faults, clock,
//! revocation, sync-token invalidation, the request log and reset. JSON in and out.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::FaultSpec;
use crate::Sandbox;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/_sandbox/clients", post(add_client))
        .route("/_sandbox/clients/{id}/status", put(set_client_status))
        .route("/_sandbox/users", post(add_user).get(list_users))
        .route("/_sandbox/calendars", post(add_calendar))
        .route("/_sandbox/users/{email}/revoke", post(revoke_user))
        .route(
            "/_sandbox/users/{email}/invalidate-sync-tokens",
            post(invalidate_sync_tokens),
        )
        .route("/_sandbox/users/{email}/link-profile", post(link_profile))
        .route(
            "/_sandbox/users/{email}/rename-contact",
            post(rename_contact),
        )
        .route(
            "/_sandbox/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/_sandbox/faults/{id}", delete(remove_fault))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/config", put(set_config))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/channels", get(channels))
        .route("/_sandbox/reset", post(reset))
}

fn bad(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "bad_request", "message": message}})),
    )
        .into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(&format!("invalid JSON body: {e}"))))
}

#[derive(Deserialize)]
struct ClientBody {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

async fn add_client(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<ClientBody>(&body) {
        Ok(c) => {
            let uris: Vec<&str> = c.redirect_uris.iter().map(String::as_str).collect();
            sandbox.add_client(&c.client_id, &c.client_secret, &uris);
            (StatusCode::CREATED, Json(json!({"client_id": c.client_id}))).into_response()
        }
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
struct ClientStatusBody {
    status: String,
}

async fn set_client_status(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let status = match parse::<ClientStatusBody>(&body) {
        Ok(b) => match b.status.as_str() {
            "enabled" => crate::state::ClientStatus::Enabled,
            "disabled" => crate::state::ClientStatus::Disabled,
            "deleted" => crate::state::ClientStatus::Deleted,
            _ => return bad("status must be enabled, disabled or deleted"),
        },
        Err(r) => return *r,
    };
    if sandbox.set_client_status(&id, status) {
        Json(json!({"client_id": id})).into_response()
    } else {
        bad("unknown client")
    }
}

#[derive(Deserialize)]
struct UserBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    time_zone: Option<String>,
}

async fn add_user(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<UserBody>(&body) {
        Ok(u) if u.email.contains('@') => {
            let name = u.name.unwrap_or_else(|| u.email.clone());
            sandbox.add_user(&u.email, &name);
            if let Some(verified) = u.email_verified {
                sandbox.set_email_verified(&u.email, verified);
            }
            if let Some(tz) = u.time_zone {
                sandbox.set_calendar_time_zone(&u.email, &tz);
            }
            (StatusCode::CREATED, Json(json!({"email": u.email}))).into_response()
        }
        Ok(_) => bad("email must contain @"),
        Err(r) => *r,
    }
}

async fn list_users(State(sandbox): State<Sandbox>) -> Json<Value> {
    let st = sandbox.state();
    let users: Vec<Value> = st
        .users
        .values()
        .map(|u| json!({"email": u.email, "name": u.name, "sub": u.sub, "email_verified": u.email_verified}))
        .collect();
    Json(json!({ "users": users }))
}

#[derive(Deserialize)]
struct CalendarBody {
    owner: String,
    summary: String,
    #[serde(default)]
    time_zone: Option<String>,
    /// `false`: `events.watch` answers 400 `pushNotSupportedForRequestedResource`.
    #[serde(default)]
    push_supported: Option<bool>,
}

async fn add_calendar(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<CalendarBody>(&body) {
        Ok(c) => {
            if !sandbox.state().users.contains_key(&c.owner) {
                return bad("unknown owner");
            }
            let id = sandbox.add_calendar(
                &c.owner,
                &c.summary,
                c.time_zone.as_deref().unwrap_or("UTC"),
            );
            if let Some(supported) = c.push_supported {
                sandbox.set_push_supported(&id, supported);
            }
            (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
        }
        Err(r) => *r,
    }
}

async fn revoke_user(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Json<Value> {
    sandbox.revoke_user_grants(&email);
    Json(json!({"revoked": email}))
}

async fn invalidate_sync_tokens(
    State(sandbox): State<Sandbox>,
    Path(email): Path<String>,
) -> Json<Value> {
    sandbox.invalidate_sync_tokens(&email);
    Json(json!({"invalidated": email}))
}

async fn add_fault(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<FaultSpec>(&body) {
        Ok(spec) => {
            if spec.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
                return bad("probability must be within 0..=1");
            }
            let id = sandbox.inject_fault(spec);
            (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
        }
        Err(r) => *r,
    }
}

async fn list_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    let faults = sandbox.state().faults.clone();
    Json(json!({ "faults": faults }))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(sandbox): State<Sandbox>, Path(id): Path<u64>) -> StatusCode {
    let mut st = sandbox.state();
    let before = st.faults.len();
    st.faults.retain(|f| f.id != id);
    if st.faults.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn clock(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({"now": sandbox.now_rfc3339()}))
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: i64,
}

async fn advance_clock(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<AdvanceBody>(&body) {
        Ok(a) => {
            sandbox.advance_clock(a.seconds);
            Json(json!({"now": sandbox.now_rfc3339()})).into_response()
        }
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
struct ConfigBody {
    access_token_ttl_secs: Option<i64>,
    #[serde(default)]
    people_propagation_delay_secs: Option<i64>,
}

async fn set_config(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    match parse::<ConfigBody>(&body) {
        Ok(c) => {
            if let Some(ttl) = c.access_token_ttl_secs {
                sandbox.set_access_token_ttl(ttl);
            }
            if let Some(delay) = c.people_propagation_delay_secs {
                sandbox.set_people_propagation_delay(delay);
            }
            let st = sandbox.state();
            Json(json!({
                "access_token_ttl_secs": st.access_token_ttl_secs,
                "people_propagation_delay_secs": st.people_propagation_delay_secs,
            }))
            .into_response()
        }
        Err(r) => *r,
    }
}

async fn requests(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({ "requests": sandbox.request_log() }))
}

async fn clear_requests(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_request_log();
    StatusCode::NO_CONTENT
}

async fn channels(State(sandbox): State<Sandbox>) -> Json<Value> {
    let st = sandbox.state();
    let list: Vec<Value> = st
        .channels
        .values()
        .map(|c| {
            json!({
                "id": c.id,
                "resource_id": c.resource_id,
                "calendar_id": c.calendar_id,
                "owner": c.owner,
                "address": c.address,
                "expiration": crate::clock::rfc3339_millis(c.expiration),
                "message_number": c.message_number,
            })
        })
        .collect();
    Json(json!({ "channels": list }))
}

async fn reset(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LinkProfileBody {
    resource_name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    fields: Value,
}

async fn link_profile(
    State(sandbox): State<Sandbox>,
    Path(email): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<LinkProfileBody>(&body) {
        Ok(b) => {
            let kind = b.kind.unwrap_or_else(|| "PROFILE".to_string());
            if !matches!(kind.as_str(), "PROFILE" | "DOMAIN_PROFILE") {
                return bad("kind must be PROFILE or DOMAIN_PROFILE");
            }
            if sandbox.link_profile(&email, &b.resource_name, &kind, b.fields) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                bad("no such contact")
            }
        }
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
struct RenameBody {
    resource_name: String,
}

async fn rename_contact(
    State(sandbox): State<Sandbox>,
    Path(email): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<RenameBody>(&body) {
        Ok(b) => match sandbox.rename_contact(&email, &b.resource_name) {
            Some(new) => Json(json!({"resource_name": new})).into_response(),
            None => bad("no such contact"),
        },
        Err(r) => *r,
    }
}
