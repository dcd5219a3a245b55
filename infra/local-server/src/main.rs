//! `cargo run -p local-server`: the whole product on 127.0.0.1, no AWS and no Google account
//! needed. See `settings.rs` for the switches to real adapters.

use anyhow::{Context, Result};
use local_server::settings::{Choice, Settings};
use shared::app::{App, AppState, SECRETS_CACHE_TTL};
use shared::aws::SdkConfig;
use shared::clock::{SharedClock, SystemClock};
use shared::config::{Config, GoogleEndpoints};
use shared::queue::{inprocess::InProcessQueue, sqs::SqsQueue, SharedQueue, SyncJob};
use shared::secrets::{aws::SecretsManager, embedded::EmbeddedSecrets, SharedSecrets};
use shared::store::{dynamo, embedded::EmbeddedTable, SharedTable, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

#[tokio::main]
async fn main() -> Result<()> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let clock: SharedClock = Arc::new(SystemClock);
    let sdk = sdk_config(&settings).await;
    let google = google_endpoints(&settings).await?;
    let table = open_table(&settings, sdk.as_ref(), clock.clone()).await?;
    let secrets = open_secrets(&settings, sdk.as_ref())?;
    let (queue, jobs) = open_queue(&settings, sdk.as_ref());
    let config = Config {
        table_name: settings.table_name.clone(),
        secrets_prefix: settings.secrets_prefix.clone(),
        queue_url: settings.queue_url.clone(),
        public_base_url: settings.public_base_url.clone(),
        google,
    };
    // One App for every function, the worker and the scheduler: one metrics registry, one set
    // of token-refresh locks, one webhook client and one throttle for the whole process.
    let app: AppState = Arc::new(App::new(config, Store::new(table), secrets, queue, clock));

    let creds = local_server::seed::seed(&app, &settings.data_dir, settings.sandbox).await?;
    spawn_background(&app, &settings, sdk.as_ref(), jobs)?;

    let addr = SocketAddr::from(([127, 0, 0, 1], settings.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (set CGS_PORT to use another port)"))?;
    local_server::banner::print(&settings, &app.config, &creds);
    axum::serve(listener, local_server::router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The AWS SDK configuration, when an adapter is AWS (or an endpoint is given).
async fn sdk_config(settings: &Settings) -> Option<SdkConfig> {
    match &settings.aws_endpoint {
        Some(endpoint) => Some(shared::aws::static_config(endpoint, "us-east-1").await),
        None if [&settings.store, &settings.secrets, &settings.queue].contains(&&Choice::Aws) => {
            Some(shared::aws::from_env().await)
        }
        None => None,
    }
}

/// Where Google is: the sandbox, started here with its demo client and users, or Google's
/// endpoints from the environment.
async fn google_endpoints(settings: &Settings) -> Result<GoogleEndpoints> {
    if !settings.sandbox {
        let vars = std::env::vars()
            .chain([
                ("TABLE_NAME".into(), "-".into()),
                ("SECRETS_PREFIX".into(), "-".into()),
                ("PUBLIC_BASE_URL".into(), settings.public_base_url.clone()),
            ])
            .collect();
        return Ok(Config::from_vars(&vars)?.google);
    }
    // Its webhook is plain http on loopback: the one place the sandbox accepts it.
    let sandbox = google_sandbox::Sandbox::new(google_sandbox::SandboxConfig {
        allow_http_push: true,
        ..google_sandbox::SandboxConfig::default()
    });
    sandbox.add_client(
        local_server::seed::SANDBOX_CLIENT_ID,
        local_server::seed::SANDBOX_CLIENT_SECRET,
        &[&format!("{}/oauth/callback", settings.public_base_url)],
    );
    sandbox.add_user("alice@example.com", "Alice Example");
    sandbox.add_user("bob@example.com", "Bob Example");
    let running = sandbox
        .serve(SocketAddr::from(([127, 0, 0, 1], settings.sandbox_port)))
        .await
        .with_context(|| {
            format!(
                "starting the Google sandbox on port {}",
                settings.sandbox_port
            )
        })?;
    Ok(GoogleEndpoints::single_host(&running.base_url))
}

/// DynamoDB (the table created if missing), or the embedded store in the data directory.
async fn open_table(
    settings: &Settings,
    sdk: Option<&SdkConfig>,
    clock: SharedClock,
) -> Result<SharedTable> {
    Ok(match (&settings.store, sdk) {
        (Choice::Aws, Some(sdk)) => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            dynamo::create_table_if_missing(&client, &settings.table_name).await?;
            Arc::new(dynamo::DynamoTable::new(
                client,
                &settings.table_name,
                clock,
            ))
        }
        _ => Arc::new(EmbeddedTable::open(
            settings.data_dir.join("store.json"),
            clock,
        )?),
    })
}

/// Secrets Manager, or the embedded secrets file in the data directory.
fn open_secrets(settings: &Settings, sdk: Option<&SdkConfig>) -> Result<SharedSecrets> {
    Ok(match (&settings.secrets, sdk) {
        (Choice::Aws, Some(sdk)) => Arc::new(SecretsManager::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            &settings.secrets_prefix,
            SECRETS_CACHE_TTL,
        )),
        _ => Arc::new(EmbeddedSecrets::open(
            settings.data_dir.join("secrets.json"),
        )?),
    })
}

/// SQS, or the in-process queue (with its receiving end, for the worker loop).
fn open_queue(
    settings: &Settings,
    sdk: Option<&SdkConfig>,
) -> (SharedQueue, Option<UnboundedReceiver<SyncJob>>) {
    match (&settings.queue, sdk, &settings.queue_url) {
        (Choice::Aws, Some(sdk), Some(url)) => (
            Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)),
            None,
        ),
        _ => {
            let (q, rx) = InProcessQueue::new();
            (Arc::new(q), Some(rx))
        }
    }
}

/// The worker (on the in-process queue, or polling SQS) and the scheduler's ticks.
fn spawn_background(
    app: &AppState,
    settings: &Settings,
    sdk: Option<&SdkConfig>,
    jobs: Option<UnboundedReceiver<SyncJob>>,
) -> Result<()> {
    match jobs {
        Some(rx) => {
            tokio::spawn(local_server::worker::run_in_process(app.clone(), rx));
        }
        None => {
            let (Some(sdk), Some(url)) = (sdk, &settings.queue_url) else {
                anyhow::bail!("CGS_QUEUE=sqs needs QUEUE_URL and AWS settings");
            };
            tokio::spawn(local_server::worker::poll_sqs(
                app.clone(),
                aws_sdk_sqs::Client::new(sdk),
                url.clone(),
            ));
        }
    }
    tokio::spawn(local_server::worker::tick_scheduler(
        app.clone(),
        Duration::from_secs(settings.schedule_secs),
    ));
    Ok(())
}
