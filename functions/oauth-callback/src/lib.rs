//! `oauth-callback`: where Google sends the user's browser back after consent
//! (`GET /oauth/callback`). It completes the connection and sends the browser back to the
//! CRM's return URL with the outcome, or shows a plain page when the CRM gave none.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use shared::app::AppState;
use shared::services::connect::{self, CallbackParams, Outcome};

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/callback", get(callback))
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

fn page(status: http::StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\">\
         <h1>{title}</h1><p>{message}</p></body></html>",
        title = html_escape(title),
        message = html_escape(message),
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn callback(
    State(app): State<AppState>,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let finished = match connect::finish(&app, params).await {
        Ok(f) => f,
        Err(e) => {
            return page(
                http::StatusCode::BAD_REQUEST,
                "Sign-in link expired",
                &e.to_string(),
            )
        }
    };
    if let Some(to) = finished.redirect {
        return Redirect::to(&to).into_response();
    }
    match finished.outcome {
        Outcome::Connected { missing } if missing.is_empty() => page(
            http::StatusCode::OK,
            "Google account connected",
            "Your Google account is connected. You can close this window.",
        ),
        Outcome::Connected { .. } => page(
            http::StatusCode::OK,
            "Google account partly connected",
            "Your Google account is connected, but not every permission was granted. Connect again from the CRM to grant the rest.",
        ),
        Outcome::Denied => page(
            http::StatusCode::OK,
            "Not connected",
            "You declined access to your Google account. Nothing was connected.",
        ),
        Outcome::Failed(connect::WRONG_ACCOUNT) => page(
            http::StatusCode::FORBIDDEN,
            "Wrong Google account",
            "This sign-in link is for a different Google account than the one you chose. Nothing was connected, and any existing connection is unchanged. If someone sent you this link, do not use it: connect your own account from your own CRM user.",
        ),
        Outcome::Failed(connect::EMAIL_NOT_VERIFIED) => page(
            http::StatusCode::FORBIDDEN,
            "Google account not verified",
            "Google has not verified the e-mail address of this Google account. Verify it in your Google account, then connect again from the CRM. Nothing was connected.",
        ),
        Outcome::Failed(connect::ACCOUNT_IN_USE) => page(
            http::StatusCode::CONFLICT,
            "Google account already connected",
            "This Google account is already connected to another user of this CRM. A Google account can be connected to one CRM user only. Nothing was connected.",
        ),
        Outcome::Failed(reason) => page(
            http::StatusCode::BAD_GATEWAY,
            "Could not connect",
            &format!("Connecting your Google account failed ({reason}). Please try again from the CRM."),
        ),
    }
}
