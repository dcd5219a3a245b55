//! `crm-api`: the CRM backend's data plane (sync-scoped keys). Connect links, account
//! status and settings, record pushes, the change feed, Gmail tokens.

use axum::routing::{get, post, put};
use axum::Router;
use shared::app::AppState;
use shared::domain::UserId;
use shared::http::{ApiError, ApiPath, SyncCaller};

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{user}/google/connect", post(user_not_yet))
        .route(
            "/v1/users/{user}/google",
            get(user_not_yet).patch(user_not_yet).delete(user_not_yet),
        )
        .route("/v1/users/{user}/google/calendars", get(user_not_yet))
        .route("/v1/users/{user}/google/contact-groups", get(user_not_yet))
        .route("/v1/users/{user}/sync", post(user_not_yet))
        .route(
            "/v1/users/{user}/events/{crm_id}",
            get(record_not_yet)
                .put(record_not_yet)
                .delete(record_not_yet),
        )
        .route(
            "/v1/users/{user}/contacts/{crm_id}",
            put(record_not_yet).delete(record_not_yet),
        )
        .route("/v1/users/{user}/contacts:push", post(user_not_yet))
        .route("/v1/users/{user}/gmail/token", post(user_not_yet))
        .route("/v1/changes", get(tenant_not_yet))
        .route("/v1/changes/ack", post(tenant_not_yet))
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

// The data plane arrives with the connection, calendar and contacts work; until then every
// route authenticates, validates its path and answers 501.

async fn user_not_yet(_: SyncCaller, ApiPath(_user): ApiPath<UserId>) -> ApiError {
    ApiError::not_implemented("this endpoint")
}

async fn record_not_yet(
    _: SyncCaller,
    ApiPath((_user, _crm_id)): ApiPath<(UserId, shared::domain::CrmId)>,
) -> ApiError {
    ApiError::not_implemented("this endpoint")
}

async fn tenant_not_yet(_: SyncCaller) -> ApiError {
    ApiError::not_implemented("this endpoint")
}
