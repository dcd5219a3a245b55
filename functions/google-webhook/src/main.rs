//! Lambda entry point: set-up only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::app::App::from_env().await?;
    app.metrics.set_function("google-webhook");
    app.config.require_queue_url()?;
    lambda_http::run(google_webhook::router(std::sync::Arc::new(app))).await
}
