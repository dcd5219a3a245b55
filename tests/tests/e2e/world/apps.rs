//! Shared test plumbing: real AWS wire endpoints (started by `infra/scripts/test.sh`), fresh
//! tables, the product's App on real adapters, and an HTTP server on 127.0.0.1.
#![allow(dead_code)]

use shared::app::{App, AppState};
use shared::clock::{ManualClock, SharedClock};
use shared::config::{Config, GoogleEndpoints};
use shared::queue::sqs::SqsQueue;
use shared::secrets::{aws::SecretsManager, Secrets};
use shared::store::{dynamo, SharedTable, Store};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An endpoint the test command exports; a test that needs it fails loudly without it.
pub fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with infra/scripts/test.sh, which starts moto and DynamoDB Local")
    })
}

pub fn dynamodb_local() -> String {
    endpoint("CGS_DYNAMODB_ENDPOINT")
}

pub fn moto() -> String {
    endpoint("CGS_MOTO_ENDPOINT")
}

pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    shared::aws::static_config(endpoint, "us-east-1").await
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
    )
}

pub fn manual_clock() -> ManualClock {
    ManualClock::new(time::macros::datetime!(2026-06-01 12:00 UTC))
}

/// A fresh DynamoDB table at `endpoint`, created with the product's schema.
pub async fn fresh_dynamo_table(endpoint: &str, clock: SharedClock) -> SharedTable {
    fresh_named_dynamo_table(endpoint, clock).await.0
}

/// [`fresh_dynamo_table`] and its name (for a child process that opens the same table).
pub async fn fresh_named_dynamo_table(endpoint: &str, clock: SharedClock) -> (SharedTable, String) {
    let client = aws_sdk_dynamodb::Client::new(&sdk(endpoint).await);
    let name = unique("cgs-test");
    dynamo::create_table_if_missing(&client, &name)
        .await
        .expect("create table");
    (
        Arc::new(dynamo::DynamoTable::new(client, name.clone(), clock)),
        name,
    )
}

/// A fresh FIFO queue on moto; returns its URL.
pub async fn fresh_fifo_queue(client: &aws_sdk_sqs::Client) -> String {
    client
        .create_queue()
        .queue_name(format!("{}.fifo", unique("cgs-q")))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

/// Every message waiting on the SQS queue at `url`, each received and then deleted (as
/// Lambda's event source takes them).
pub async fn sqs_take_all(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in &got {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        out.extend(got);
    }
    out
}

/// Runs the ignored test `name` (its full path) alone in a process of its own — this test
/// binary, started again with `vars` set — and asserts it ran and passed: for a test that needs
/// process-wide state of its own (an environment variable the product reads once, the global
/// log subscriber) while the other tests share this process.
pub fn run_in_own_process(name: &str, vars: &[(&str, &str)]) {
    let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args([name, "--exact", "--ignored", "--nocapture"])
        .envs(vars.iter().copied())
        .output()
        .expect("start this test binary");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("test {name} ... ok")) && stdout.contains("1 passed"),
        "{name} ran: {stdout}\n{stderr}"
    );
}

/// The operator key the test apps are seeded with.
pub const OPERATOR_KEY: &str = "op_test_operator_key_0123456789abcdef";

/// The product on its production adapters: DynamoDB Local for the table, moto for Secrets
/// Manager and SQS.
pub async fn aws_app() -> AppState {
    aws_app_with(
        "http://127.0.0.1:9",
        GoogleEndpoints::single_host("http://127.0.0.1:9"),
        Arc::new(shared::clock::SystemClock),
    )
    .await
}

/// What every test app's secrets start with: the operator key and a token-encryption key.
async fn seed_secrets(secrets: &dyn Secrets) {
    secrets
        .put(
            shared::secrets::names::OPERATOR_KEY,
            OPERATOR_KEY.to_owned().into(),
        )
        .await
        .expect("seed operator key");
    secrets
        .put(
            shared::secrets::names::TOKEN_KEY,
            shared::crypto::TokenCipher::generate_secret(),
        )
        .await
        .expect("seed token key");
}

/// `aws_app` with a public URL, Google endpoints and a clock of the test's choosing.
pub async fn aws_app_with(
    public_base_url: &str,
    google: GoogleEndpoints,
    clock: SharedClock,
) -> AppState {
    let (table, table_name) = fresh_named_dynamo_table(&dynamodb_local(), clock.clone()).await;
    let moto_sdk = sdk(&moto()).await;
    let prefix = format!("{}/", unique("stack"));
    let secrets = SecretsManager::new(
        aws_sdk_secretsmanager::Client::new(&moto_sdk),
        prefix.clone(),
        Duration::from_secs(60),
    );
    seed_secrets(&secrets).await;
    let sqs = aws_sdk_sqs::Client::new(&moto_sdk);
    let queue_url = fresh_fifo_queue(&sqs).await;
    Arc::new(App::new(
        Config {
            // The table's own name, as a deployment's config holds it.
            table_name,
            secrets_prefix: prefix,
            queue_url: Some(queue_url.clone()),
            public_base_url: public_base_url.into(),
            google,
        },
        Store::new(table),
        Arc::new(secrets),
        Arc::new(SqsQueue::new(sqs, queue_url)),
        clock,
    ))
}

/// The product on its embedded adapters (the in-memory store, embedded secrets, the
/// in-process queue, whose receiving end is returned): the fast world for property tests
/// and backlogs, held to the production adapters' behaviour by the conformance suite.
pub async fn embedded_app_with(
    public_base_url: &str,
    google: GoogleEndpoints,
    clock: SharedClock,
) -> (
    AppState,
    tokio::sync::mpsc::UnboundedReceiver<shared::queue::SyncJob>,
    Arc<StoreOps>,
) {
    let secrets = shared::secrets::embedded::EmbeddedSecrets::in_memory();
    seed_secrets(&secrets).await;
    let table = CountingTable {
        inner: Arc::new(shared::store::embedded::EmbeddedTable::in_memory(
            clock.clone(),
        )),
        ops: Arc::new(StoreOps::default()),
    };
    let ops = table.ops.clone();
    let (queue, jobs) = shared::queue::inprocess::InProcessQueue::new();
    let app: AppState = Arc::new(App::new(
        Config {
            table_name: "embedded".into(),
            secrets_prefix: "embedded/".into(),
            queue_url: None,
            public_base_url: public_base_url.into(),
            google,
        },
        Store::new(Arc::new(table)),
        Arc::new(secrets),
        Arc::new(queue),
        clock,
    ));
    (app, jobs, ops)
}

/// The product on the local server's adapters: [`embedded_app_with`], with the local
/// server's worker loop running its queue (spawned here, as `local-server` does at start).
pub async fn local_app_with(
    public_base_url: &str,
    google: GoogleEndpoints,
    clock: SharedClock,
) -> AppState {
    let (app, jobs, _) = embedded_app_with(public_base_url, google, clock).await;
    tokio::spawn(local_server::worker::run_in_process(app.clone(), jobs));
    app
}

/// Serves `router` on 127.0.0.1 (random port); returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let (listener, base) = bind().await;
    serve_on(listener, router);
    base
}

/// A listener on 127.0.0.1 and its base URL (to know the public URL before building the app).
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, format!("http://{addr}"))
}

pub fn serve_on(listener: tokio::net::TcpListener, router: axum::Router) {
    tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
}

/// Whether a feed record is older than the CRM's own last edit of its record (`local`, the
/// record as the CRM holds it, with its `updated_at`): the documented contract is that the
/// CRM skips such a record (its edit is on its way to Google and wins as the later one).
pub fn superseded(local: Option<&serde_json::Value>, record: &serde_json::Value) -> bool {
    let parse = |v: &serde_json::Value| {
        v.as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    match (
        local.and_then(|c| parse(&c["updated_at"])),
        parse(&record["data"]["google_updated"]),
    ) {
        (Some(local), Some(google)) => google < local,
        _ => false,
    }
}

/// Store operations counted by kind (what one pass costs in DynamoDB requests: each read
/// and each write item is one request; a transaction counts its items).
#[derive(Default, Debug)]
pub struct StoreOps {
    pub gets: std::sync::atomic::AtomicU64,
    pub queries: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
    /// Counter adds (each feed append takes its records' numbers in one).
    pub adds: std::sync::atomic::AtomicU64,
}

impl StoreOps {
    /// (gets, queries, writes) so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.gets.load(SeqCst),
            self.queries.load(SeqCst),
            self.writes.load(SeqCst),
        )
    }
}

/// A table that counts what goes through it to another.
pub struct CountingTable {
    pub inner: SharedTable,
    pub ops: Arc<StoreOps>,
}

#[async_trait::async_trait]
impl shared::store::Table for CountingTable {
    async fn get(
        &self,
        key: &shared::store::Key,
    ) -> shared::store::StoreResult<Option<shared::store::Item>> {
        self.ops.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(
        &self,
        item: shared::store::Item,
        c: shared::store::Condition,
    ) -> shared::store::StoreResult<()> {
        self.ops.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, c).await
    }
    async fn delete(
        &self,
        key: &shared::store::Key,
        c: shared::store::Condition,
    ) -> shared::store::StoreResult<Option<shared::store::Item>> {
        self.ops.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, c).await
    }
    async fn query(
        &self,
        q: shared::store::Query,
    ) -> shared::store::StoreResult<shared::store::Page> {
        self.ops.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.query(q).await
    }
    async fn transact(&self, ops: Vec<shared::store::WriteOp>) -> shared::store::StoreResult<()> {
        self.ops
            .writes
            .fetch_add(ops.len() as u64, Ordering::SeqCst);
        self.inner.transact(ops).await
    }
    async fn add(&self, key: &shared::store::Key, by: u64) -> shared::store::StoreResult<u64> {
        self.ops.writes.fetch_add(1, Ordering::SeqCst);
        self.ops.adds.fetch_add(1, Ordering::SeqCst);
        self.inner.add(key, by).await
    }
}

/// Runs a property test's seeds: `SEEDS=n` for more than `default`, `SEED=n` (or `a-b`) to
/// replay one (or a range);
/// each seed under a per-job Google call cap of 20, 50 or 200 (by seed).
pub async fn for_each_seed(default: u64, run: impl AsyncFn(u64)) {
    // `SEED=n` or `SEED=a-b` (inclusive).
    let only: Option<(u64, u64)> = std::env::var("SEED").ok().and_then(|s| {
        let (a, b) = s.split_once('-').unwrap_or((&s, &s));
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    // `SEED` replays those seeds, whatever `SEEDS` says.
    let chosen: Vec<u64> = match only {
        Some((a, b)) => (a..=b).collect(),
        None => (0..seeds).collect(),
    };
    for seed in chosen {
        // Shown with a failure (the test harness prints a failing test's output).
        eprintln!("seed {seed}");
        let limits = shared::services::quota::Limits {
            calls_per_job: [20, 50, 200][(seed % 3) as usize],
            ..Default::default()
        };
        shared::services::quota::with_limits(limits, run(seed)).await;
    }
}

/// Every pair row of `user`'s `collection`, all pages.
pub async fn all_pairs(
    env: &super::Env,
    user: &str,
    collection: shared::domain::Collection,
) -> Vec<shared::domain::PairStatus> {
    let u = shared::domain::UserId::parse(user).unwrap();
    let mut out = Vec::new();
    let mut page = None;
    loop {
        let got = env
            .app
            .store
            .list_pairs(&env.tenant, &u, collection, 1000, page.as_deref())
            .await
            .unwrap();
        out.extend(got.items);
        match got.next {
            Some(p) => page = Some(p),
            None => return out,
        }
    }
}

/// A weekly all-hands with 300 attendees and `k` occurrences whose attendee lists differ.
pub fn all_hands(k: usize) -> serde_json::Value {
    let attendees = |shift: usize| -> Vec<serde_json::Value> {
        (0..300)
            .map(|i| {
                serde_json::json!({
                    "email": format!("colleague.number{i:03}@example.org"),
                    "name": format!("Colleague {i}"),
                    "response": if (i + shift).is_multiple_of(3) { "accepted" } else { "needsAction" },
                })
            })
            .collect()
    };
    let first = time::macros::datetime!(2027-01-04 09:00 UTC);
    let exceptions: Vec<serde_json::Value> = (0..k)
        .map(|w| {
            serde_json::json!({
                "original_start": {"date_time": (first + time::Duration::weeks(w as i64 + 1))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()},
                "attendees": attendees(1 + w % 2),
            })
        })
        .collect();
    serde_json::json!({
        "type": "meeting", "title": "All hands",
        "start": {"date_time": "2027-01-04T09:00:00Z"},
        "end": {"date_time": "2027-01-04T10:00:00Z"},
        "time_zone": "UTC",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=100"],
        "attendees": attendees(0),
        "exceptions": exceptions,
    })
}

/// For one seed in 25 (`seed % 25 == 3`, so the default 50 seeds hold two): the size of a
/// large backlog the simulation starts with, log-uniform in 200..5,000.
pub fn large_backlog(seed: u64, rng: &mut impl rand::Rng) -> Option<usize> {
    (seed % 25 == 3).then(|| (200f64 * 25f64.powf(rng.gen::<f64>())) as usize)
}
