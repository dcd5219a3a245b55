//! `google-webhook`: Google Calendar push notifications (`POST /webhooks/google/calendar`).
//! Checks the channel and its token, queues a sync of that one calendar, answers at once; it
//! never calls Google itself.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use shared::app::AppState;
use shared::calendar::channels::{self, Notification, Outcome};
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

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// Google retries only 5xx answers: everything we refuse gets a 4xx, so a forged or stale
/// notification is never retried.
async fn notification(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<http::StatusCode, ApiError> {
    let (Some(channel_id), Some(resource_id), Some(state)) = (
        header(&headers, "x-goog-channel-id"),
        header(&headers, "x-goog-resource-id"),
        header(&headers, "x-goog-resource-state"),
    ) else {
        app.metrics
            .count("NotificationsDropped", &[("Reason", "malformed")], 1);
        return Err(ApiError::bad_request(
            "invalid_notification",
            "missing X-Goog-Channel-ID, X-Goog-Resource-ID or X-Goog-Resource-State",
        ));
    };
    let outcome = channels::notify(
        &app,
        Notification {
            channel_id,
            token: header(&headers, "x-goog-channel-token"),
            resource_id,
            state,
        },
    )
    .await?;
    let (metric, dim, value) = match outcome {
        Outcome::Handshake => ("NotificationsReceived", "Outcome", "handshake"),
        Outcome::Queued => ("NotificationsReceived", "Outcome", "queued"),
        Outcome::Unknown => ("NotificationsDropped", "Reason", "unknown"),
        Outcome::Forged => ("NotificationsDropped", "Reason", "forged"),
    };
    app.metrics.count(metric, &[(dim, value)], 1);
    match outcome {
        Outcome::Handshake | Outcome::Queued => Ok(http::StatusCode::NO_CONTENT),
        Outcome::Unknown => Err(ApiError::not_found("unknown or stopped channel")),
        Outcome::Forged => Err(ApiError::forbidden("the channel token does not match")),
    }
}
