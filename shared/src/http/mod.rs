//! What every HTTP function shares: the application state, JSON errors, extractors that
//! answer bad input with JSON errors, and the API-key auth layer.

pub mod auth;
pub mod error;
pub mod extract;
pub mod throttle;

pub use auth::{AdminCaller, Caller, OperatorCaller, SyncCaller};
pub use error::ApiError;
pub use extract::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};

use crate::app::AppState;
use axum::Router;

/// The finishing touches every function's router gets: JSON 404 and 405 answers.
pub fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            flush_metrics,
        ))
        .with_state(state)
}

/// One Lambda invocation is one request: its metrics are flushed with the answer.
async fn flush_metrics(
    axum::extract::State(app): axum::extract::State<AppState>,
    response: axum::response::Response,
) -> axum::response::Response {
    app.metrics.flush();
    response
}
