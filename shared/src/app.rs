//! The application: every port, and the state a process keeps between requests, built once
//! in each function's `main` (and once in the local server) and shared by the handlers.
//!
//! Nothing of the product lives in a process global: two Apps in one process (tests) share
//! nothing but what they are given. What stays out of `App`, on purpose:
//! * per-unit-of-work context, scoped to a task: the worker's Google [`Pacer`] (one per job,
//!   set around its passes with [`pacing::paced`]) and the `Retry-After` slot of one Google
//!   attempt ([`retry`]);
//! * the test and benchmark overrides [`retry::with_policy`] and
//!   [`quota::with_limits`](crate::services::quota::with_limits): scoped to a future, holding
//!   no state (production runs with the defaults and the tenants' settings);
//! * pure values: the CSP hashes of constant scripts and styles, the parsed discovery
//!   documents of the sandbox;
//! * the change feed's ULID generator (`domain::feed`): ids must increase across every App
//!   writing to one store from one process, within a millisecond too, so it is process-wide.
//!
//! [`Pacer`]: crate::google::pacing::Pacer
//! [`pacing::paced`]: crate::google::pacing::paced
//! [`retry`]: crate::google::retry
//! [`retry::with_policy`]: crate::google::retry::with_policy

use crate::aws;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::delivery::WebhookClient;
use crate::google::Google;
use crate::http::throttle::Throttle;
use crate::metrics::Metrics;
use crate::queue::{sqs::SqsQueue, SharedQueue};
use crate::secrets::{aws::SecretsManager, SharedSecrets};
use crate::services::tokens::RefreshLocks;
use crate::services::validate::is_loopback;
use crate::store::{dynamo::DynamoTable, Store};
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    pub config: Config,
    /// Counts its REST calls into [`Self::metrics`].
    pub google: Google,
    pub store: Store,
    pub secrets: SharedSecrets,
    pub queue: SharedQueue,
    pub clock: SharedClock,
    /// What was counted since the last flush (EMF metrics), and the function's name.
    pub metrics: Arc<Metrics>,
    /// One token refresh at a time per account ([`crate::services::tokens`]).
    pub refresh_locks: RefreshLocks,
    /// The outbound webhooks' HTTP client ([`crate::delivery`]).
    pub webhooks: WebhookClient,
    /// The per-tenant API throttle (`TENANT_API_RATE`, [`crate::http::throttle`]).
    pub throttle: Throttle,
    /// The deployment runs on this machine (its public URL is on loopback: the local server):
    /// webhooks to loopback are allowed and cookies are not `Secure`.
    pub local: bool,
}

pub type AppState = Arc<App>;

/// How long Secrets Manager values are cached in a Lambda instance.
pub const SECRETS_CACHE_TTL: Duration = Duration::from_secs(300);

impl App {
    /// Wires the ports together; the Google client, the metrics registry, the refresh locks,
    /// the webhook client and the throttle are built here, from the configuration (and
    /// `TENANT_API_RATE`), fresh for this App.
    pub fn new(
        config: Config,
        store: Store,
        secrets: SharedSecrets,
        queue: SharedQueue,
        clock: SharedClock,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let local = is_loopback(&config.public_base_url);
        Self {
            google: Google::new(config.google.clone(), metrics.clone()),
            webhooks: WebhookClient::for_deployment(local),
            throttle: Throttle::from_env(local),
            refresh_locks: RefreshLocks::default(),
            local,
            metrics,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::GoogleEndpoints;
    use crate::queue::inprocess::InProcessQueue;
    use crate::secrets::embedded::EmbeddedSecrets;
    use crate::store::embedded::EmbeddedTable;

    fn app() -> App {
        let clock: SharedClock = Arc::new(SystemClock);
        let config = Config {
            table_name: "embedded".into(),
            secrets_prefix: "embedded/".into(),
            queue_url: None,
            public_base_url: "http://127.0.0.1:1".into(),
            google: GoogleEndpoints::single_host("http://127.0.0.1:1"),
        };
        let (queue, _) = InProcessQueue::new();
        App::new(
            config,
            Store::new(Arc::new(EmbeddedTable::in_memory(clock.clone()))),
            Arc::new(EmbeddedSecrets::in_memory()),
            Arc::new(queue),
            clock,
        )
    }

    /// Two Apps in one process (two tests, two simulated instances) share no state: what one
    /// counts, the other does not flush; a refresh one holds does not block the other's.
    #[tokio::test]
    async fn two_apps_in_one_process_share_nothing() {
        let (one, other) = (app(), app());
        assert!(
            Arc::ptr_eq(&one.google.metrics, &one.metrics),
            "Google counts into its App"
        );
        assert!(!Arc::ptr_eq(&one.metrics, &other.metrics));
        one.metrics.count("SyncsRun", &[("Outcome", "complete")], 1);
        assert_eq!(other.metrics.take(), crate::metrics::Snapshot::default());
        assert_eq!(
            one.metrics
                .take()
                .count("SyncsRun", &[("Outcome", "complete")]),
            1.0
        );

        let held = one.refresh_locks.lock_for("t/u".into());
        let _guard = held.lock().await;
        assert!(one.refresh_locks.lock_for("t/u".into()).try_lock().is_err());
        assert!(other
            .refresh_locks
            .lock_for("t/u".into())
            .try_lock()
            .is_ok());
    }
}
