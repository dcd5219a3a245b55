//! Lambda entry point: set-up only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let app = Arc::new(shared::app::App::from_env().await?);
    app.metrics.set_function("sync-worker");
    app.config.require_queue_url()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        let deadline = shared::clock::instant_at_epoch_ms(event.context.deadline);
        // No invocation fails as a whole: a job's failure is its message's, in the partial
        // batch response (so the runtime has no Diagnostic to report).
        async move { Ok::<_, Infallible>(sync_worker::handle(&app, event.payload, deadline).await) }
    }))
    .await
}
