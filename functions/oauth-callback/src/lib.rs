//! `oauth-callback`: where Google sends the user's browser back after consent
//! (`GET /oauth/callback`).

use axum::routing::get;
use axum::Router;
use shared::app::AppState;
use shared::http::ApiError;

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/callback", get(callback))
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

async fn callback() -> ApiError {
    ApiError::not_implemented("connecting a Google account")
}
