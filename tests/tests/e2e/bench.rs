//! The benchmark (not a timed test: every case is `#[ignore]`d and only prints figures).
//! Run it with `infra/scripts/bench.sh` (moto, DynamoDB Local and the Google sandbox, as the
//! tests); the figures and how they were obtained are in `docs/benchmarks.md`.
//!
//! * Google requests per idle calendar per simulated day: push (the product) against plain
//!   10-minute polling, counted from the sandbox's request log, both clocks moved by hand.
//! * Sandbox change → CRM webhook latency, p50/p95, through the real chain: sandbox push →
//!   google-webhook → SQS (moto) → worker (polling the queue) → signed webhook.
//! * Sixteen events edited in Google within one second: how many reach the CRM feed by push
//!   alone (no scheduler, no manual sync) and how long after the last edit the last one
//!   does, on the AWS adapters (SQS FIFO on moto) and on the local server's.
//! * Scheduler time to plan and enqueue 10,000 and 100,000 due accounts (embedded store,
//!   in-process queue) and 10,000 on DynamoDB Local + moto SQS.
//! * The worker's peak memory (VmHWM) during a 10,000-event initial sync, in a child
//!   process that runs only the worker.
//! * Feed appends per second for one tenant with 1, 4 and 16 concurrent writers on
//!   DynamoDB Local (and pages of 10, and plain conditional puts as the emulator's floor).
//! * A 10,000-meeting backlog for one user (the CRM loads it while the user's sync is
//!   paused, then resumes): batch requests against ⌈N/50⌉, inserts, 409s, jobs and time, on
//!   the embedded adapters with the queue run as SQS would.
//! * Embedded store writes/s (puts, conditional puts, 2-item transactions) with 100,000
//!   items, in memory and on file (log + compaction), and the time to reopen the file.

use crate::world::{Backend, Env};
use serde_json::json;
use shared::app::{App, AppState};
use shared::clock::{Clock, ManualClock, SharedClock};
use shared::config::{Config, GoogleEndpoints};
use shared::domain::{
    Account, AccountId, AccountSettings, AccountStatus, Product, Products, TenantId, UserId,
};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::{SyncJob, SyncReason};
use shared::services::schedule;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";

fn job(t: &TenantId, user: &str) -> SyncJob {
    SyncJob {
        tenant: t.clone(),
        user: UserId::parse(user).unwrap(),
        calendar: None,
        reason: SyncReason::Scheduled,
        confirm_mass_deletion: false,
        record: None,
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// (Calendar API requests, OAuth token requests) in the sandbox's log.
fn counts(env: &Env) -> (usize, usize) {
    let log = env.sandbox.request_log();
    let calendar = log
        .iter()
        .filter(|r| r.path.contains("/calendar/v3/"))
        .count();
    let token = log.iter().filter(|r| r.path.contains("token")).count();
    (calendar, token)
}

fn advance(env: &Env, by: time::Duration) {
    env.clock.advance(by);
    env.sandbox.advance_clock(by.whole_seconds());
}

#[tokio::test]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_google_calls_per_idle_calendar_per_day() {
    // Push: the worker runs whenever the account comes due (what the scheduler queues).
    let env = Env::new().await;
    env.connect("idle", &["calendar"], ALICE, "").await;
    let user = UserId::parse("idle").unwrap();
    sync_worker::run(&env.app, &job(&env.tenant, "idle"), far())
        .await
        .unwrap();
    env.sandbox.clear_request_log();
    let end = env.clock.now() + time::Duration::days(1);
    let mut runs = 0;
    loop {
        let due = env
            .app
            .store
            .get_account(&env.tenant, &user)
            .await
            .unwrap()
            .unwrap()
            .value
            .next_sync_at
            .unwrap();
        if due > end {
            break;
        }
        advance(&env, due - env.clock.now());
        sync_worker::run(&env.app, &job(&env.tenant, "idle"), far())
            .await
            .unwrap();
        runs += 1;
    }
    let (push_calendar, push_token) = counts(&env);

    // Plain polling: a pass every 10 minutes whatever the channels say.
    let env = Env::new().await;
    env.connect("idle", &["calendar"], ALICE, "").await;
    sync_worker::run(&env.app, &job(&env.tenant, "idle"), far())
        .await
        .unwrap();
    env.sandbox.clear_request_log();
    for _ in 0..144 {
        advance(&env, time::Duration::minutes(10));
        sync_worker::run(&env.app, &job(&env.tenant, "idle"), far())
            .await
            .unwrap();
    }
    let (poll_calendar, poll_token) = counts(&env);
    println!("BENCH idle calendar, one simulated day:");
    println!(
        "BENCH   push + {} h safety poll: {runs} passes, {push_calendar} Calendar API requests, {push_token} OAuth token refreshes",
        schedule::SAFETY_INTERVAL.whole_hours()
    );
    println!(
        "BENCH   plain 10-minute polling: 144 passes, {poll_calendar} Calendar API requests, {poll_token} OAuth token refreshes"
    );
    println!(
        "BENCH   channel renewal adds a watch + a stop every {} days",
        shared::calendar::channels::CHANNEL_TTL_SECS / 86_400
            - shared::calendar::channels::RENEW_BEFORE.whole_days() as u64
    );
}

/// A CRM webhook receiver on 127.0.0.1: when each body arrived.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<(Instant, String)>>>);

impl Receiver {
    async fn start(&self) -> String {
        let hits = self.0.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let hits = hits.clone();
                async move {
                    hits.lock().unwrap().push((Instant::now(), body));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        format!("{}/hook", crate::world::serve(router).await)
    }

    fn arrived(&self, google_id: &str) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(_, b)| b.contains(google_id))
            .map(|(at, _)| *at)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_change_to_crm_webhook_latency() {
    let env = Env::new().await;
    let crm = Receiver::default();
    let url = crm.start().await;
    shared::services::settings::patch(
        &env.app,
        &env.tenant,
        shared::services::settings::SettingsPatch {
            webhook_url: Some(Some(url)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    env.connect("jane", &["calendar"], ALICE, "").await;
    sync_worker::run(&env.app, &job(&env.tenant, "jane"), far())
        .await
        .unwrap();
    // The worker, as Lambda's SQS event source would run it.
    let sqs = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let queue = env.app.config.queue_url.clone().unwrap();
    tokio::spawn(local_server::worker::poll_sqs(env.app.clone(), sqs, queue));
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    let mut samples = Vec::new();
    for i in 0..20 {
        let e: Event = serde_json::from_value(json!({"summary": format!("Latency {i}"),
            "start": {"dateTime": "2030-01-01T10:00:00Z"}, "end": {"dateTime": "2030-01-01T11:00:00Z"}}))
        .unwrap();
        let started = Instant::now();
        let e = env
            .app
            .google
            .insert_event(&alice, "primary", &e, SendUpdates::None)
            .await
            .unwrap();
        let arrived = loop {
            if let Some(at) = crm.arrived(&e.id) {
                break at;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no webhook");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        samples.push(arrived.duration_since(started));
    }
    samples.sort();
    println!(
        "BENCH change in Google -> CRM webhook ({} changes): p50 {} ms, p95 {} ms, max {} ms",
        samples.len(),
        percentile(&samples, 0.5).as_millis(),
        percentile(&samples, 0.95).as_millis(),
        samples.last().unwrap().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_sixteen_edits_in_one_second_by_push() {
    for (backend, label) in [
        (
            Backend::Aws,
            "google-webhook -> SQS FIFO (moto) -> worker, DynamoDB Local",
        ),
        (
            Backend::Local,
            "local server: embedded store, in-process queue",
        ),
    ] {
        for run in 1..=3 {
            let (env, alice) = crate::world::push::pushed(backend).await;
            let burst = crate::world::push::sixteen_edits_within_a_second(&env, &alice).await;
            println!(
                "BENCH sixteen edits in one second, run {run} ({label}): {}/16 reached the CRM feed by push; the last {} after the last edit (the edits took {} ms)",
                burst.arrived,
                burst
                    .last_after
                    .map_or("never".to_owned(), |d| format!("{} ms", d.as_millis())),
                burst.edits_took.as_millis()
            );
        }
    }
}

async fn seed_accounts(app: &AppState, t: &TenantId, n: usize, due: time::OffsetDateTime) {
    let mut set = tokio::task::JoinSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(32)) {
        let (app, t, chunk) = (app.clone(), t.clone(), chunk.to_vec());
        set.spawn(async move {
            for i in chunk {
                let a = Account {
                    id: AccountId::generate(),
                    tenant: t.clone(),
                    user: UserId::parse(&format!("user-{i:06}")).unwrap(),
                    status: AccountStatus::Active,
                    google_email: Some(format!("user-{i}@example.com")),
                    google_subject: None,
                    products: Products::from(vec![Product::Calendar]),
                    scopes: Vec::new(),
                    refresh_token_ciphertext: Some("v1.k1.sealed".into()),
                    access_token_ciphertext: None,
                    access_token_expires_at: None,
                    reauth_reason: None,
                    settings: AccountSettings::default(),
                    created_at: due,
                    updated_at: due,
                    last_sync_at: None,
                    last_error: None,
                    next_sync_at: Some(due),
                    sync_failures: 0,
                    contacts_progress: None,
                };
                app.store.put_account(&a, None).await.unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

async fn time_scheduler(app: &AppState, n: usize, label: &str) {
    let t = TenantId::parse("bench").unwrap();
    shared::services::tenants::create(
        app,
        shared::services::tenants::NewTenant {
            id: Some(t.clone()),
            name: "Bench".into(),
        },
    )
    .await
    .unwrap();
    let seeding = Instant::now();
    seed_accounts(app, &t, n, app.clock.now()).await;
    println!(
        "BENCH   ({label}: {n} accounts written in {:.1} s)",
        seeding.elapsed().as_secs_f64()
    );
    // One invocation's budget (120 s timeout less the margin); a run that stops resumes at
    // the next invocation, as in production.
    let started = Instant::now();
    let (mut enqueued, mut runs) = (0, 0);
    while enqueued < n && runs < 10 {
        let report = schedule::run(app, Instant::now() + Duration::from_secs(110))
            .await
            .unwrap();
        enqueued += report.enqueued;
        runs += 1;
    }
    let took = started.elapsed();
    assert_eq!(enqueued, n);
    println!(
        "BENCH scheduler, {label}: {n} due accounts planned, claimed and enqueued in {:.2} s ({:.0} accounts/s, {runs} invocation(s))",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

fn embedded_app() -> (AppState, tokio::sync::mpsc::UnboundedReceiver<SyncJob>) {
    let clock: SharedClock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let table = shared::store::embedded::EmbeddedTable::in_memory(clock.clone());
    let (queue, rx) = shared::queue::inprocess::InProcessQueue::new();
    let app = App::new(
        Config {
            table_name: "bench".into(),
            secrets_prefix: "bench/".into(),
            queue_url: None,
            public_base_url: "http://127.0.0.1:9".into(),
            google: GoogleEndpoints::single_host("http://127.0.0.1:9"),
        },
        shared::store::Store::new(Arc::new(table)),
        Arc::new(shared::secrets::embedded::EmbeddedSecrets::in_memory()),
        Arc::new(queue),
        clock,
    );
    (Arc::new(app), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_scheduler_plans_and_enqueues() {
    if std::env::var_os("CGS_BENCH_AWS_ONLY").is_none() {
        for n in [10_000, 100_000] {
            let (app, _rx) = embedded_app();
            time_scheduler(&app, n, "embedded store + in-process queue").await;
        }
    }
    // DynamoDB Local with the in-process queue, then with moto's SQS FIFO (both local
    // emulators on the same two cores: an upper bound on what AWS takes).
    let aws = crate::world::aws_app().await;
    let (queue, _rx) = shared::queue::inprocess::InProcessQueue::new();
    let ddb_only: AppState = Arc::new(App::new(
        aws.config.clone(),
        aws.store.clone(),
        aws.secrets.clone(),
        Arc::new(queue),
        aws.clock.clone(),
    ));
    time_scheduler(&ddb_only, 10_000, "DynamoDB Local + in-process queue").await;
    let aws = crate::world::aws_app().await;
    time_scheduler(&aws, 500, "DynamoDB Local + moto SQS FIFO").await;
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child half of the memory benchmark: only the worker, on the parent's table, secrets,
/// queue and sandbox (all named in the environment).
#[tokio::test]
#[ignore = "benchmark child: run by bench_worker_peak_memory"]
async fn bench_child_worker_initial_sync() {
    let Ok(table) = std::env::var("CGS_BENCH_TABLE") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let before = vm_hwm_kb().unwrap_or(0);
    let clock: SharedClock = Arc::new(shared::clock::SystemClock);
    let ddb = crate::world::sdk(&crate::world::dynamodb_local()).await;
    let moto = crate::world::sdk(&crate::world::moto()).await;
    let app = App::new(
        Config {
            table_name: table.clone(),
            secrets_prefix: var("CGS_BENCH_PREFIX"),
            queue_url: Some(var("CGS_BENCH_QUEUE")),
            public_base_url: var("CGS_BENCH_PUBLIC"),
            google: GoogleEndpoints::single_host(&var("CGS_BENCH_GOOGLE")),
        },
        shared::store::Store::new(Arc::new(shared::store::dynamo::DynamoTable::new(
            aws_sdk_dynamodb::Client::new(&ddb),
            table,
            clock.clone(),
        ))),
        Arc::new(shared::secrets::aws::SecretsManager::new(
            aws_sdk_secretsmanager::Client::new(&moto),
            var("CGS_BENCH_PREFIX"),
            Duration::from_secs(300),
        )),
        Arc::new(shared::queue::sqs::SqsQueue::new(
            aws_sdk_sqs::Client::new(&moto),
            var("CGS_BENCH_QUEUE"),
        )),
        clock,
    );
    let t = TenantId::parse(&var("CGS_BENCH_TENANT")).unwrap();
    let started = Instant::now();
    sync_worker::run(&app, &job(&t, "big"), far())
        .await
        .unwrap();
    println!(
        "CHILD hwm_kb_before={before} hwm_kb_after={} secs={:.2}",
        vm_hwm_kb().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_worker_peak_memory() {
    let env = Env::new().await;
    env.connect("big", &["calendar"], ALICE, "").await;
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    // 10,000 events in Google, a few with attendees and descriptions.
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (app, alice) = (env.app.clone(), alice.clone());
        set.spawn(async move {
            for i in (w..10_000).step_by(8) {
                let day = 1 + (i % 28);
                let e: Event = serde_json::from_value(json!({
                    "summary": format!("Meeting {i}"),
                    "description": "Agenda: quarterly review, numbers, next steps.",
                    "location": "Room 4",
                    "attendees": [{"email": format!("guest{i}@example.org")}],
                    "start": {"dateTime": format!("2030-03-{day:02}T10:00:00Z")},
                    "end": {"dateTime": format!("2030-03-{day:02}T11:00:00Z")},
                }))
                .unwrap();
                app.google
                    .insert_event(&alice, "primary", &e, SendUpdates::None)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let config = &env.app.config;
    let mut child = std::process::Command::new(exe);
    child
        .args([
            "bench::bench_child_worker_initial_sync",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("CGS_BENCH_TABLE", &config.table_name)
        .env("CGS_BENCH_PREFIX", &config.secrets_prefix)
        .env("CGS_BENCH_QUEUE", config.queue_url.clone().unwrap())
        .env("CGS_BENCH_PUBLIC", &config.public_base_url)
        .env("CGS_BENCH_GOOGLE", &env.sandbox_url)
        .env("CGS_BENCH_TENANT", env.tenant.as_str());
    let out = tokio::task::spawn_blocking(move || child.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("CHILD"))
        .unwrap_or_else(|| {
            panic!(
                "child said nothing: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let created = env
        .app
        .store
        .list_changes(&env.tenant, None, 1000)
        .await
        .unwrap()
        .len();
    println!(
        "BENCH worker, 10,000-event initial sync in a child process: peak RSS (VmHWM) {:.1} MB ({:.1} MB before the sync: the test binary and its runtime), {:.1} s; feed has records: {}",
        field("hwm_kb_after") / 1024.0,
        field("hwm_kb_before") / 1024.0,
        field("secs"),
        created > 0
    );
}

/// How one run of the feed benchmark appends.
#[derive(Clone, Copy)]
enum FeedLoad {
    /// One record per `append_change` (what the engines do today).
    Single,
    /// Pages of ten through `append_changes` (ten numbers taken at once).
    Pages,
    /// No feed: conditional puts of one item each (the floor for any design that writes an
    /// item per record, on this machine).
    BarePuts,
}

/// Feed appends per second for one tenant on DynamoDB Local, with 1, 4 and 16 concurrent
/// writers (each its own task, as concurrent worker Lambdas would be), and how many appends
/// gave up. Afterwards the feed is read whole: every appended record once, ids increasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_feed_appends_per_tenant() {
    use shared::domain::{ChangeKind, ChangeRecord};
    use shared::store::{Condition, Item, Key};
    let total: usize = std::env::var("CGS_BENCH_FEED_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let runs = [
        (1usize, FeedLoad::Single),
        (4, FeedLoad::Single),
        (16, FeedLoad::Single),
        (16, FeedLoad::Pages),
        (16, FeedLoad::BarePuts),
    ];
    for (writers, load) in runs {
        let table = crate::world::fresh_dynamo_table(
            &crate::world::dynamodb_local(),
            Arc::new(shared::clock::SystemClock),
        )
        .await;
        let store = shared::store::Store::new(table.clone());
        let tenant = TenantId::parse("benchfeed").unwrap();
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for w in 0..writers {
            let (store, table, tenant) = (store.clone(), table.clone(), tenant.clone());
            let each = total / writers + usize::from(w < total % writers);
            set.spawn(async move {
                let user = UserId::parse(&format!("u{w}")).unwrap();
                let record = |i: usize| {
                    ChangeRecord::new(
                        tenant.clone(),
                        user.clone(),
                        ChangeKind::EventUpdated,
                        json!({"w": w, "i": i}),
                        time::OffsetDateTime::now_utc(),
                    )
                };
                let (mut ok, mut gave_up) = (0usize, 0usize);
                let mut i = 0;
                while i < each {
                    let n = match load {
                        FeedLoad::Pages => 10.min(each - i),
                        _ => 1,
                    };
                    let result = match load {
                        FeedLoad::Single => store.append_change(&mut record(i)).await,
                        FeedLoad::Pages => {
                            let mut page: Vec<ChangeRecord> = (i..i + n).map(record).collect();
                            store.append_changes(&mut page).await
                        }
                        FeedLoad::BarePuts => {
                            let r = record(i);
                            let key = Key::new(format!("BARE#{w}"), format!("{i:08}"));
                            table
                                .put(
                                    Item::new(key, serde_json::to_value(&r).unwrap()),
                                    Condition::NotExists,
                                )
                                .await
                        }
                    };
                    match result {
                        Ok(()) => ok += n,
                        Err(_) => gave_up += n,
                    }
                    i += n;
                }
                (ok, gave_up)
            });
        }
        let (mut ok, mut gave_up) = (0, 0);
        while let Some(r) = set.join_next().await {
            let (o, g) = r.unwrap();
            ok += o;
            gave_up += g;
        }
        let took = started.elapsed();
        let rate = ok as f64 / took.as_secs_f64();
        if let FeedLoad::BarePuts = load {
            println!(
                "BENCH feed appends, baseline: {writers} concurrent writers of plain conditional puts (no feed), DynamoDB Local: {ok} in {:.2} s ({rate:.0} puts/s)",
                took.as_secs_f64()
            );
            continue;
        }
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_changes(&tenant, after.as_deref(), 500)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.id.clone());
            ids.extend(page.into_iter().map(|r| r.id));
        }
        assert_eq!(ids.len(), ok, "every appended record is in the feed once");
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "ids increase");
        let how = match load {
            FeedLoad::Pages => "appending pages of 10",
            _ => "appending one record at a time",
        };
        println!(
            "BENCH feed appends, one tenant, {writers} concurrent writer(s) {how}, DynamoDB Local: {ok} appended in {:.2} s ({rate:.0} appends/s), {gave_up} given up",
            took.as_secs_f64()
        );
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_backlog_drains_in_n_over_50_batches() {
    use crate::world::backlog::{calls, drain_until, put_meetings, waiting};
    let n: usize = std::env::var("BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    let pause = async |paused: bool| {
        env.patch_account("u-alice", json!({ "paused": paused }))
            .await
    };
    pause(true).await;
    let started = Instant::now();
    put_meetings(&env, "u-alice", "MTG", n).await;
    let accepted = started.elapsed();
    env.drain_jobs(1_000_000).await;
    env.sandbox.clear_request_log();
    pause(false).await;
    let started = Instant::now();
    let jobs = drain_until(&env, 10_000, async || waiting(&env, "u-alice").await == 0).await;
    let took = started.elapsed();
    let c = calls(&env);
    println!(
        "BENCH backlog {n} waiting meetings: {} batch requests (⌈N/50⌉ = {}, ratio {:.3}), {} inserts, {} answered 409, {jobs} jobs, drained in {:.1} s (accepting the {n} PUTs took {:.1} s), {} still waiting",
        c.batches,
        n.div_ceil(50),
        c.batches as f64 / n.div_ceil(50) as f64,
        c.inserts,
        c.conflicts,
        took.as_secs_f64(),
        accepted.as_secs_f64(),
        waiting(&env, "u-alice").await
    );
}
/// A pair-row-sized item (about 400 bytes of JSON), indexed in GSI1 like a pair's Google id.
fn bench_item(i: usize, version: u64) -> shared::store::Item {
    use shared::store::{Item, Key};
    Item::new(
        Key::new(
            format!("TENANT#bench#USER#u{:03}", i % 200),
            format!("PAIR#calendar#{i:08}"),
        ),
        json!({
            "crm_id": format!("C-{i}"),
            "google_id": format!("g{i:016x}"),
            "calendar": "primary",
            "etag": format!("\"{}\"", 3_000_000_000u64 + i as u64 * 7 + version),
            "state": "synced",
            "hash": format!("{:064x}", (i as u128) * 0x9E37_79B9_7F4A_7C15),
            "updated_at": "2026-06-01T12:00:00Z",
            "summary": format!("Meeting {i} with the customer about the quarterly review"),
            "version_seen": version,
        }),
    )
    .with_gsi1(Key::new("TENANT#bench#GOOGLE", format!("g{i:016x}")))
    .with_version(version)
}

/// CPU time this thread has used (user + system), from `/proc/thread-self/stat`.
fn thread_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which is in parentheses): state is the 3rd
            // field, utime the 14th, stime the 15th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Sequential writes `write(made(i))` for `i` in `0..n`, timing only the writes (what they
/// write is made beforehand, 10,000 at a time).
struct Rate {
    /// Writes per second of wall time.
    wall: f64,
    /// Writes per second of this thread's CPU time (what an idle core would do: the machine
    /// is shared).
    cpu: f64,
    longest: Duration,
}

async fn rate<T, M, F, Fut>(n: usize, made: M, mut write: F) -> Rate
where
    M: Fn(usize) -> T,
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = shared::store::StoreResult<()>>,
{
    let (mut took, mut cpu, mut longest) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let inputs: Vec<T> = chunk.iter().map(|i| made(*i)).collect();
        let cpu_before = thread_cpu();
        for input in inputs {
            let started = Instant::now();
            write(input).await.unwrap();
            let one = started.elapsed();
            took += one;
            longest = longest.max(one);
        }
        cpu += thread_cpu().saturating_sub(cpu_before);
    }
    Rate {
        wall: n as f64 / took.as_secs_f64(),
        cpu: n as f64 / cpu.as_secs_f64().max(0.01),
        longest,
    }
}

/// What one table does with 100,000 items: puts of new items, conditional (versioned) updates
/// of each, then 2-item transactions (an update and a new feed-like item).
async fn bench_embedded_table(label: &str, table: &shared::store::SharedTable) {
    use shared::store::{Condition, Item, Key, WriteOp};
    const N: usize = 100_000;
    let puts = rate(N, |i| bench_item(i, 1), |it| table.put(it, Condition::None)).await;
    let conditional = rate(
        N,
        |i| bench_item(i, 2),
        |it| table.put(it, Condition::Version(1)),
    )
    .await;
    let tx = rate(
        N / 2,
        |i| {
            vec![
                WriteOp::Put(bench_item(i, 3), Condition::Version(2)),
                WriteOp::Put(
                    Item::new(
                        Key::new("TENANT#bench#FEED", format!("{i:012}")),
                        json!({"kind": "event_updated", "crm_id": format!("C-{i}")}),
                    ),
                    Condition::NotExists,
                ),
            ]
        },
        |ops| table.transact(ops),
    )
    .await;
    let longest = puts.longest.max(conditional.longest).max(tx.longest);
    println!(
        "BENCH embedded store, {label}, {N} items: puts {:.0}/s, conditional puts {:.0}/s, 2-item transactions {:.0}/s ({:.0} writes/s); longest write {:.0} ms",
        puts.wall,
        conditional.wall,
        tx.wall,
        tx.wall * 2.0,
        longest.as_secs_f64() * 1000.0
    );
    println!(
        "BENCH embedded store, {label}, per CPU-second of the writing thread: puts {:.0}/s, conditional puts {:.0}/s, 2-item transactions {:.0}/s ({:.0} writes/s)",
        puts.cpu,
        conditional.cpu,
        tx.cpu,
        tx.cpu * 2.0
    );
}

#[tokio::test]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_embedded_store_writes() {
    use shared::store::embedded::EmbeddedTable;
    use shared::store::{Index, Query, SharedTable};
    let clock: SharedClock = Arc::new(shared::clock::SystemClock);
    let memory: SharedTable = Arc::new(EmbeddedTable::in_memory(clock.clone()));
    bench_embedded_table("in memory", &memory).await;

    let dir = std::env::temp_dir().join(crate::world::unique("cgs-bench-store"));
    let file = dir.join("store.json");
    let table = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
    let shared_table: SharedTable = table.clone();
    bench_embedded_table("file (log + compaction)", &shared_table).await;
    let log = table.log_file().unwrap();
    let size =
        |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let (snapshot_mb, log_mb) = (size(&file), size(&log));
    drop((shared_table, table));
    let started = Instant::now();
    let reopened: SharedTable = Arc::new(EmbeddedTable::open(&file, clock).unwrap());
    let load = started.elapsed();
    let page = reopened
        .query(Query::partition(Index::Primary, "TENANT#bench#USER#u007").limit(1000))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 500);
    assert!(page.items.iter().all(|i| i.version == 3 || i.version == 2));
    println!(
        "BENCH embedded store, file: snapshot {snapshot_mb:.1} MB + log {log_mb:.1} MB after 250,000 writes of 150,000 items; reopened (snapshot + log replay) in {:.2} s",
        load.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: infra/scripts/bench.sh"]
async fn bench_store_operations_per_pass() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-cal", &["calendar"], ALICE, "").await;
    env.connect("u-both", &["calendar", "contacts"], "bob@example.com", "")
        .await;
    env.drain_jobs(100).await;
    let ops = env.store_ops.clone().unwrap();
    let pass = async |user: &str, reason: SyncReason| {
        let before = ops.snapshot();
        env.run_job(user, reason).await;
        let after = ops.snapshot();
        (after.0 - before.0, after.1 - before.1, after.2 - before.2)
    };
    // Settle: first passes (channels, initial reads), then measure steady state.
    for user in ["u-cal", "u-both"] {
        pass(user, SyncReason::Scheduled).await;
        pass(user, SyncReason::Scheduled).await;
    }
    let print = |what: &str, (gets, queries, writes): (u64, u64, u64)| {
        println!("BENCH store operations, {what}: {gets} gets, {queries} queries, {writes} writes");
    };
    print(
        "idle calendar pass (scheduled)",
        pass("u-cal", SyncReason::Scheduled).await,
    );
    print(
        "idle calendar + contacts pass (scheduled)",
        pass("u-both", SyncReason::Scheduled).await,
    );
    print("idle push job (one calendar)", {
        let before = ops.snapshot();
        let job = SyncJob {
            calendar: Some("primary".into()),
            reason: SyncReason::Push,
            ..job(&env.tenant, "u-cal")
        };
        sync_worker::run(&env.app, &job, far()).await.unwrap();
        let after = ops.snapshot();
        (after.0 - before.0, after.1 - before.1, after.2 - before.2)
    });
    // Busy: ten events changed in Google, read by one pass (ten pairs and feed records).
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    for i in 0..10 {
        let e: Event = serde_json::from_value(json!({
            "summary": format!("Busy {i}"),
            "start": {"dateTime": "2027-05-03T10:00:00Z"},
            "end": {"dateTime": "2027-05-03T11:00:00Z"},
        }))
        .unwrap();
        env.app
            .google
            .insert_event(&alice, "primary", &e, SendUpdates::None)
            .await
            .unwrap();
    }
    print(
        "busy calendar pass (10 Google-born events)",
        pass("u-cal", SyncReason::Scheduled).await,
    );
}
