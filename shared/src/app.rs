//! The application: every port, built once per process and shared by the handlers.

use crate::aws;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::google::Google;
use crate::queue::{sqs::SqsQueue, SharedQueue};
use crate::secrets::{aws::SecretsManager, SharedSecrets};
use crate::store::{dynamo::DynamoTable, Store};
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    pub config: Config,
    pub google: Google,
    pub store: Store,
    pub secrets: SharedSecrets,
    pub queue: SharedQueue,
    pub clock: SharedClock,
}

pub type AppState = Arc<App>;

/// How long Secrets Manager values are cached in a Lambda instance.
pub const SECRETS_CACHE_TTL: Duration = Duration::from_secs(300);

impl App {
    /// Wires the ports together; the Google client is built from the configuration.
    pub fn new(
        config: Config,
        store: Store,
        secrets: SharedSecrets,
        queue: SharedQueue,
        clock: SharedClock,
    ) -> Self {
        Self {
            google: Google::new(config.google.clone()),
            config,
            store,
            secrets,
            queue,
            clock,
        }
    }

    /// The production wiring: DynamoDB, Secrets Manager and SQS from the SDK configuration.
    /// A function that never enqueues may run without `QUEUE_URL`; its queue then refuses.
    pub fn on_aws(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let clock: SharedClock = Arc::new(SystemClock);
        let table = DynamoTable::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table_name.clone(),
            clock.clone(),
        );
        let secrets = SecretsManager::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            config.secrets_prefix.clone(),
            SECRETS_CACHE_TTL,
        );
        let queue = SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk),
            config.queue_url.clone().unwrap_or_default(),
        );
        Self::new(
            config,
            Store::new(Arc::new(table)),
            Arc::new(secrets),
            Arc::new(queue),
            clock,
        )
    }

    /// `on_aws` with the SDK configuration from the environment.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws::from_env().await;
        Ok(Self::on_aws(config, &sdk))
    }
}
