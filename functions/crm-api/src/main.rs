//! Lambda entry point: set-up only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    shared::metrics::set_function("crm-api");
    let app = shared::app::App::from_env().await?;
    app.config.require_queue_url()?;
    lambda_http::run(crm_api::router(std::sync::Arc::new(app))).await
}
