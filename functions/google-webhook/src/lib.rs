//! `google-webhook`: Google Calendar push notifications (`POST /webhooks/google/calendar`).

use axum::routing::post;
use axum::Router;
use shared::app::AppState;
use shared::http::ApiError;

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/google/calendar", post(notification))
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

async fn notification() -> ApiError {
    ApiError::not_implemented("Calendar push notifications")
}
