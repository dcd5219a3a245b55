//! Lambda entry point: set-up only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::app::App::from_env().await?;
    app.metrics.set_function("admin-config");
    lambda_http::run(admin_config::router(std::sync::Arc::new(app))).await
}
