//! Lambda entry point: set-up only.

use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let app = Arc::new(shared::app::App::from_env().await?);
    app.metrics.set_function("sync-scheduler");
    app.config.require_queue_url()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        let deadline = shared::clock::instant_at_epoch_ms(event.context.deadline);
        async move { sync_scheduler::handle(&app, event.payload, deadline).await }
    }))
    .await
}
