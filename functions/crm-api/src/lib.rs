//! `crm-api`: the CRM backend's data plane (sync-scoped keys). Connect links, account
//! status and settings, record pushes, the change feed, Gmail tokens, availability.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared::app::AppState;
use shared::calendar::api as calendar;
use shared::calendar::availability;
use shared::calendar::model::CrmEvent;
use shared::contacts::api as contacts;
use shared::contacts::model::CrmContact;
use shared::domain::{CrmId, UserId};
use shared::http::{ApiError, ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery, SyncCaller};
use shared::services::{accounts, connect, feed, gmail, settings_link};

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{user}/google/connect", post(start_connect))
        .route(
            "/v1/users/{user}/google",
            get(get_account).patch(patch_account).delete(disconnect),
        )
        .route("/v1/users/{user}/google/calendars", get(list_calendars))
        .route(
            "/v1/users/{user}/google/contact-groups",
            get(list_contact_groups),
        )
        .route("/v1/users/{user}/gmail/token", post(gmail_token))
        .route("/v1/users/{user}/settings-link", post(settings_link))
        .route("/v1/changes", get(list_changes))
        .route("/v1/users/{user}/sync", post(sync_now))
        .route("/v1/users/{user}/availability", post(availability))
        .route("/v1/availability", post(team_availability))
        .route(
            "/v1/users/{user}/events/{crm_id}",
            get(get_event).put(put_event).delete(delete_event),
        )
        .route(
            "/v1/users/{user}/contacts/{crm_id}",
            get(get_contact).put(put_contact).delete(delete_contact),
        )
        .route("/v1/users/{user}/contacts:push", post(push_contacts))
        .route("/v1/changes/ack", post(ack_changes))
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

async fn start_connect(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<connect::ConnectRequest>,
) -> Result<(http::StatusCode, Json<connect::ConnectLink>), ApiError> {
    let link = connect::start(&app, &caller.tenant, &user, req).await?;
    Ok((http::StatusCode::CREATED, Json(link)))
}

/// A signed, short-lived link to the hosted settings page of one user, for the CRM to open.
async fn settings_link(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJsonOrEmpty(req): ApiJsonOrEmpty<settings_link::LinkRequest>,
) -> Result<(http::StatusCode, Json<settings_link::SettingsLink>), ApiError> {
    let link = settings_link::issue(&app, &caller.tenant, &user, req).await?;
    Ok((http::StatusCode::CREATED, Json(link)))
}

async fn get_account(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<accounts::AccountView>, ApiError> {
    let account = accounts::get(&app, &caller.tenant, &user).await?;
    Ok(Json(accounts::live_view(&app, &account).await?))
}

async fn patch_account(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(patch): ApiJson<accounts::AccountPatch>,
) -> Result<Json<accounts::AccountView>, ApiError> {
    let account = accounts::patch(&app, &caller.tenant, &user, patch).await?;
    Ok(Json(accounts::live_view(&app, &account).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectParams {
    /// Keep the sync pairs so a later reconnect resumes without duplicates (default true).
    #[serde(default)]
    keep_pairs: Option<bool>,
}

async fn disconnect(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiQuery(params): ApiQuery<DisconnectParams>,
) -> Result<Json<accounts::Disconnected>, ApiError> {
    let keep = params.keep_pairs.unwrap_or(true);
    Ok(Json(
        accounts::disconnect(&app, &caller.tenant, &user, keep).await?,
    ))
}

async fn list_calendars(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = accounts::calendars(&app, &caller.tenant, &user).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn list_contact_groups(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = accounts::contact_groups(&app, &caller.tenant, &user).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn gmail_token(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<gmail::GmailToken>, ApiError> {
    Ok(Json(gmail::gmail_token(&app, &caller.tenant, &user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesParams {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_changes(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<ChangesParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = match params.limit {
        None => 100,
        Some(l @ 1..=500) => l,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit must be between 1 and 500",
            ))
        }
    };
    let items = feed::list(&app, &caller.tenant, params.after.as_deref(), limit).await?;
    let next = items.last().map(|r| r.id.clone()).or(params.after);
    Ok(Json(
        serde_json::json!({ "items": items, "next_cursor": next }),
    ))
}

/// The busy intervals of the user's calendars over a window (Google's `freebusy.query`).
async fn availability(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<availability::AvailabilityRequest>,
) -> Result<Json<availability::Availability>, ApiError> {
    Ok(Json(
        availability::query(&app, &caller.tenant, &user, req).await?,
    ))
}

/// The busy intervals of several of the tenant's users and e-mail addresses at once.
async fn team_availability(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiJson(req): ApiJson<availability::team::TeamRequest>,
) -> Result<Json<availability::team::TeamAvailability>, ApiError> {
    Ok(Json(
        availability::team::query(&app, &caller.tenant, req).await?,
    ))
}

async fn put_event(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
    ApiJson(event): ApiJson<CrmEvent>,
) -> Result<(http::StatusCode, Json<calendar::PairView>), ApiError> {
    let (queued, view) = calendar::put(&app, &caller.tenant, &user, &crm_id, event).await?;
    let status = if queued {
        http::StatusCode::ACCEPTED
    } else {
        http::StatusCode::OK
    };
    Ok((status, Json(view)))
}

async fn delete_event(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
) -> Result<(http::StatusCode, Json<calendar::PairView>), ApiError> {
    let view = calendar::delete(&app, &caller.tenant, &user, &crm_id).await?;
    Ok((http::StatusCode::ACCEPTED, Json(view)))
}

async fn get_event(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
) -> Result<Json<calendar::PairView>, ApiError> {
    Ok(Json(
        calendar::get(&app, &caller.tenant, &user, &crm_id).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncNow {
    /// Carry out deletions the mass-deletion guard held back.
    #[serde(default)]
    confirm_mass_deletion: bool,
}

async fn sync_now(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<SyncNow>,
) -> Result<(http::StatusCode, Json<serde_json::Value>), ApiError> {
    calendar::sync_now(&app, &caller.tenant, &user, request.confirm_mass_deletion).await?;
    Ok((
        http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"queued": true})),
    ))
}

async fn ack_changes(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiJson(ack): ApiJson<calendar::Ack>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = calendar::ack(&app, &caller.tenant, ack).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn put_contact(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
    ApiJson(contact): ApiJson<CrmContact>,
) -> Result<(http::StatusCode, Json<contacts::ContactView>), ApiError> {
    let (queued, view) = contacts::put(&app, &caller.tenant, &user, &crm_id, contact).await?;
    let status = if queued {
        http::StatusCode::ACCEPTED
    } else {
        http::StatusCode::OK
    };
    Ok((status, Json(view)))
}

async fn delete_contact(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
) -> Result<(http::StatusCode, Json<contacts::ContactView>), ApiError> {
    let view = contacts::delete(&app, &caller.tenant, &user, &crm_id).await?;
    Ok((http::StatusCode::ACCEPTED, Json(view)))
}

async fn get_contact(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath((user, crm_id)): ApiPath<(UserId, CrmId)>,
) -> Result<Json<contacts::ContactView>, ApiError> {
    Ok(Json(
        contacts::get(&app, &caller.tenant, &user, &crm_id).await?,
    ))
}

async fn push_contacts(
    SyncCaller(caller): SyncCaller,
    State(app): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(request): ApiJson<contacts::PushRequest>,
) -> Result<(http::StatusCode, Json<contacts::PushOutcome>), ApiError> {
    let outcome = contacts::push(&app, &caller.tenant, &user, request).await?;
    Ok((http::StatusCode::ACCEPTED, Json(outcome)))
}
