//! Lambda entry point: set-up only.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::app::App::from_env().await?;
    app.metrics.set_function("oauth-callback");
    lambda_http::run(oauth_callback::router(std::sync::Arc::new(app))).await
}
