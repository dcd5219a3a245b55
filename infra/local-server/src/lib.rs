//! The local server: every function's handler in one process behind one router with the
//! same routes as the deployed HTTP API, the sync worker fed by the queue, the scheduler
//! ticking on its own, and (in sandbox mode) the Google sandbox.

pub mod banner;
pub mod seed;
pub mod settings;
pub mod worker;

use axum::Router;
use shared::app::AppState;

/// The deployed HTTP API's routes, all in one router.
pub fn router(state: AppState) -> Router {
    let routes = admin_config::routes()
        .merge(crm_api::routes())
        .merge(oauth_callback::routes())
        .merge(google_webhook::routes());
    shared::http::finish(routes, state)
}
