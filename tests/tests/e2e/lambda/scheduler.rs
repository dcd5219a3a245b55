//! The scheduled safety net on DynamoDB Local (the due index, GSI2) and moto (SQS FIFO),
//! through the real `sync-scheduler` and `sync-worker` handlers with Lambda event payloads:
//! exactly the due accounts are queued (once, with their own tenant, none paused or needing
//! reauthorization), due times move forward, a run stopped at its deadline resumes, a backlog
//! is spread over the window, healthy push channels earn the long safety interval, failures
//! back off.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Value};
use shared::app::AppState;
use shared::clock::{Clock, ManualClock};
use shared::config::GoogleEndpoints;
use shared::domain::{
    Account, AccountId, AccountSettings, AccountStatus, Product, Products, TenantId, UserId,
};
use shared::queue::{SyncJob, SyncReason};
use shared::services::schedule::{self, CLAIM, POLL_INTERVAL, SAFETY_INTERVAL};
use shared::services::tenants::{self, NewTenant};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

struct World {
    app: AppState,
    clock: ManualClock,
    sqs: aws_sdk_sqs::Client,
    url: String,
}

async fn world() -> World {
    let clock = crate::world::manual_clock();
    let app = crate::world::aws_app_with(
        "http://127.0.0.1:9",
        GoogleEndpoints::single_host("http://127.0.0.1:9"),
        Arc::new(clock.clone()),
    )
    .await;
    let sqs = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let url = app.config.queue_url.clone().unwrap();
    World {
        app,
        clock,
        sqs,
        url,
    }
}

/// The scheduled event EventBridge delivers (the shape `aws_lambda_events` parses).
fn scheduled_event(at: OffsetDateTime) -> Value {
    let event = json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": shared::clock::rfc3339(at),
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/cgs-sync-sweep"],
        "detail": {}
    });
    let parsed: EventBridgeEvent = serde_json::from_value(event).expect("a scheduled event");
    serde_json::to_value(parsed).unwrap()
}

async fn tick(w: &World) -> sync_scheduler::SchedulerReport {
    let deadline = Instant::now() + Duration::from_secs(110);
    sync_scheduler::handle(&w.app, scheduled_event(w.clock.now()), deadline)
        .await
        .expect("scheduler run")
}

/// Every message on the queue (received and deleted) with its FIFO group.
async fn drain(w: &World, wait: Duration) -> Vec<(SyncJob, String, SqsMessage)> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let got = w
            .sqs
            .receive_message()
            .queue_url(&w.url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        for m in &messages {
            let attrs = m.attributes.clone().unwrap_or_default();
            let group = attrs
                .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                .cloned()
                .unwrap_or_default();
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.body = m.body.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.attributes = attrs
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            out.push((
                serde_json::from_str(m.body().unwrap()).unwrap(),
                group,
                record,
            ));
            w.sqs
                .delete_message()
                .queue_url(&w.url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if (messages.is_empty() && !out.is_empty()) || Instant::now() >= deadline {
            return out;
        }
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn tenant(w: &World, id: &str, paused: bool) -> TenantId {
    let t = TenantId::parse(id).unwrap();
    tenants::create(
        &w.app,
        NewTenant {
            id: Some(t.clone()),
            name: id.to_owned(),
        },
    )
    .await
    .unwrap();
    if paused {
        let mut found = w.app.store.get_tenant(&t).await.unwrap().unwrap();
        found.value.settings.sync_paused = true;
        w.app
            .store
            .update_tenant(&found.value, found.version)
            .await
            .unwrap();
    }
    t
}

async fn account(
    w: &World,
    t: &TenantId,
    user: &str,
    status: AccountStatus,
    products: &[Product],
    due: OffsetDateTime,
) -> UserId {
    let u = UserId::parse(user).unwrap();
    let now = w.clock.now();
    let a = Account {
        id: AccountId::generate(),
        tenant: t.clone(),
        user: u.clone(),
        status,
        google_email: Some(format!("{user}@example.com")),
        google_subject: None,
        products: Products::from(products.to_vec()),
        scopes: Vec::new(),
        refresh_token_ciphertext: None,
        access_token_ciphertext: None,
        access_token_expires_at: None,
        reauth_reason: None,
        settings: AccountSettings::default(),
        created_at: now,
        updated_at: now,
        last_sync_at: None,
        last_error: None,
        next_sync_at: Some(due),
        sync_failures: 0,
        contacts_progress: None,
    };
    w.app.store.put_account(&a, None).await.unwrap();
    u
}

async fn next_sync(w: &World, t: &TenantId, u: &UserId) -> OffsetDateTime {
    w.app
        .store
        .get_account(t, u)
        .await
        .unwrap()
        .unwrap()
        .value
        .next_sync_at
        .unwrap()
}

fn names(jobs: &[(SyncJob, String, SqsMessage)]) -> Vec<String> {
    let mut v: Vec<String> = jobs
        .iter()
        .map(|(j, _, _)| format!("{}:{}", j.tenant, j.user))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_scheduler_queues_exactly_the_due_accounts_once() {
    let w = world().await;
    let now = w.clock.now();
    let acme = tenant(&w, "acme", false).await;
    let globex = tenant(&w, "globex", false).await;
    let paused = tenant(&w, "initech", true).await;
    let cal = [Product::Calendar];
    let mut expected = Vec::new();
    for i in 0..25 {
        let due = now - time::Duration::seconds(i * 5);
        let u = account(
            &w,
            &acme,
            &format!("due-{i:02}"),
            AccountStatus::Active,
            &cal,
            due,
        )
        .await;
        expected.push(format!("acme:{u}"));
    }
    for i in 0..5 {
        // The same user ids in another tenant: separate accounts, separate jobs.
        let u = account(
            &w,
            &globex,
            &format!("due-{i:02}"),
            AccountStatus::Active,
            &cal,
            now,
        )
        .await;
        expected.push(format!("globex:{u}"));
    }
    let later = now + time::Duration::minutes(5);
    let not_yet = account(&w, &acme, "later", AccountStatus::Active, &cal, later).await;
    for (user, status) in [
        ("paused", AccountStatus::Paused),
        ("reauth", AccountStatus::NeedsReauth),
        ("gone", AccountStatus::Disconnected),
    ] {
        account(&w, &acme, user, status, &cal, now).await;
    }
    account(
        &w,
        &acme,
        "gmail-only",
        AccountStatus::Active,
        &[Product::Gmail],
        now,
    )
    .await;
    let in_paused_tenant = account(&w, &paused, "due-00", AccountStatus::Active, &cal, now).await;

    let report = tick(&w).await;
    assert_eq!(report.accounts_enqueued, 30, "{report:?}");
    assert!(!report.run.stopped_early);
    let jobs = drain(&w, Duration::from_secs(3)).await;
    expected.sort();
    assert_eq!(names(&jobs), expected);
    for (job, group, _) in &jobs {
        assert_eq!(job.reason, SyncReason::Scheduled);
        assert_eq!(job.calendar, None);
        assert_eq!(
            group,
            &format!("{}:{}", job.tenant, job.user),
            "group = account"
        );
    }

    // Due times moved forward: a run a minute later queues nothing again.
    let acme_first = UserId::parse("due-00").unwrap();
    assert_eq!(next_sync(&w, &acme, &acme_first).await, now + CLAIM);
    // The paused tenant's account is not queued; it is looked at again a window later.
    assert_eq!(
        next_sync(&w, &paused, &in_paused_tenant).await,
        now + POLL_INTERVAL
    );
    w.clock.advance(time::Duration::minutes(1));
    let again = tick(&w).await;
    assert_eq!(again.accounts_enqueued, 0, "{again:?}");
    assert!(drain(&w, Duration::from_millis(400)).await.is_empty());

    // The account due later is queued when its time comes, alone.
    w.clock.advance(time::Duration::minutes(4));
    let report = tick(&w).await;
    assert_eq!(report.accounts_enqueued, 1, "{report:?}");
    let jobs = drain(&w, Duration::from_secs(2)).await;
    assert_eq!(names(&jobs), [format!("acme:{not_yet}")]);
}

#[tokio::test]
async fn a_run_stopped_at_its_deadline_resumes_at_the_next_tick() {
    let w = world().await;
    let now = w.clock.now();
    let acme = tenant(&w, "acme", false).await;
    for i in 0..40 {
        account(
            &w,
            &acme,
            &format!("u{i:02}"),
            AccountStatus::Active,
            &[Product::Calendar],
            now,
        )
        .await;
    }
    // No time left: the run stops before claiming anything, and says so.
    let spent = Instant::now();
    let report = sync_scheduler::handle(&w.app, scheduled_event(now), spent)
        .await
        .unwrap();
    assert!(report.run.stopped_early);
    assert_eq!(report.accounts_enqueued, 0);
    // A run stopped part-way (by the shard's deadline check between batches).
    let partial = schedule::run(&w.app, Instant::now() + Duration::from_millis(1))
        .await
        .unwrap();
    w.clock.advance(time::Duration::minutes(1));
    let report = tick(&w).await;
    assert!(!report.run.stopped_early);
    assert_eq!(
        partial.enqueued + report.accounts_enqueued,
        40,
        "{partial:?} {report:?}"
    );
    let jobs = drain(&w, Duration::from_secs(3)).await;
    let distinct: HashSet<String> = names(&jobs).into_iter().collect();
    assert_eq!(jobs.len(), 40, "none twice");
    assert_eq!(distinct.len(), 40);
}

#[tokio::test]
async fn a_backlog_is_spread_over_the_window() {
    let w = world().await;
    let start = w.clock.now();
    let acme = tenant(&w, "acme", false).await;
    // 120 accounts five hours overdue (the scheduler was down, or the index is new).
    for i in 0..120 {
        account(
            &w,
            &acme,
            &format!("u{i:03}"),
            AccountStatus::Active,
            &[Product::Calendar],
            start - time::Duration::hours(5),
        )
        .await;
    }
    let mut per_tick = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for minute in 0..11 {
        let report = tick(&w).await;
        per_tick.push(report.accounts_enqueued);
        if minute == 0 {
            // Spread, not dropped: everything is due again within the window.
            assert_eq!(report.run.spread + report.accounts_enqueued, 120);
        }
        for name in names(&drain(&w, Duration::from_millis(1500)).await) {
            *seen.entry(name).or_default() += 1;
        }
        w.clock.advance(time::Duration::minutes(1));
    }
    assert_eq!(
        seen.len(),
        120,
        "every account queued within the window: {per_tick:?}"
    );
    assert!(seen.values().all(|n| *n == 1), "none twice: {per_tick:?}");
    assert!(
        per_tick.iter().all(|n| *n <= 30),
        "no tick takes the whole backlog: {per_tick:?}"
    );
    assert!(
        per_tick.iter().filter(|n| **n > 0).count() >= 8,
        "the backlog is spread over the window: {per_tick:?}"
    );
}

mod with_google {
    use super::*;
    use crate::world::Env;
    use google_sandbox::{FaultKind, FaultSpec};
    use shared::google::retry::{with_policy, RetryPolicy};
    use shared::services::quota::{with_limits, Limits};

    const ALICE: &str = "alice@example.com";

    async fn w(env: &Env) -> World {
        World {
            app: env.app.clone(),
            clock: env.clock.clone(),
            sqs: aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await),
            url: env.app.config.queue_url.clone().unwrap(),
        }
    }

    /// Runs queued messages through the worker's Lambda handler as SQS would deliver them
    /// (with short Google retry delays); returns how many it reported failed.
    async fn work(w: &World, jobs: Vec<(SyncJob, String, SqsMessage)>) -> usize {
        let mut event = SqsEvent::default();
        event.records = jobs.into_iter().map(|(_, _, m)| m).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let response = with_policy(
            RetryPolicy::for_tests(2),
            sync_worker::handle(&w.app, event, deadline),
        )
        .await;
        response.batch_item_failures.len()
    }

    #[tokio::test]
    async fn healthy_channels_are_polled_at_the_safety_interval_and_failures_back_off() {
        let env = Env::new().await;
        env.connect("jane", &["calendar"], ALICE, "").await;
        let w = w(&env).await;
        let user = UserId::parse("jane").unwrap();
        // Connecting queues the first pass and claims the account for it: a tick meanwhile
        // queues nothing more; the worker runs it (opening the push channel) and sets the next
        // due time.
        let report = tick(&w).await;
        assert_eq!(report.accounts_enqueued, 0, "{report:?}");
        let jobs = drain(&w, Duration::from_secs(3)).await;
        assert_eq!(names(&jobs), [format!("{}:jane", env.tenant)]);
        assert_eq!(work(&w, jobs).await, 0);
        let after_first = w.clock.now();
        let next = next_sync(&w, &env.tenant, &user).await;
        assert!(
            next >= after_first + SAFETY_INTERVAL
                && next < after_first + SAFETY_INTERVAL + POLL_INTERVAL,
            "a calendar with a healthy channel waits the safety interval: {next}"
        );

        // Ticks through the next hour queue nothing: push covers the calendar.
        for _ in 0..6 {
            w.clock.advance(time::Duration::minutes(10));
            assert_eq!(tick(&w).await.accounts_enqueued, 0);
        }
        // At the safety interval the account is polled again.
        w.clock.advance(next - w.clock.now());
        assert_eq!(tick(&w).await.accounts_enqueued, 1);
        let jobs = drain(&w, Duration::from_secs(3)).await;

        // Google fails the read (a 503 storm outlasting the retries): the queue will retry
        // the message, and the schedule tries again sooner than the poll, then later and later.
        env.sandbox.inject_fault(FaultSpec {
            path_prefix: Some("/calendar/v3/calendars/".into()),
            ..FaultSpec::new(FaultKind::Unavailable)
        });
        assert_eq!(work(&w, jobs).await, 1);
        let failed_at = w.clock.now();
        let stored = env.stored_account("jane").await;
        assert_eq!(stored.sync_failures, 1);
        assert_eq!(
            stored.next_sync_at,
            Some(failed_at + time::Duration::minutes(1))
        );
        w.clock.advance(time::Duration::minutes(1));
        assert_eq!(tick(&w).await.accounts_enqueued, 1);
        assert_eq!(work(&w, drain(&w, Duration::from_secs(3)).await).await, 1);
        let stored = env.stored_account("jane").await;
        assert_eq!(stored.sync_failures, 2);
        assert_eq!(
            stored.next_sync_at,
            Some(w.clock.now() + time::Duration::minutes(2))
        );

        // Google recovers, but the channel can no longer be trusted (it was stopped): the
        // account is polled every 10 minutes until a new one is open.
        env.sandbox.clear_faults();
        let channels = env
            .app
            .store
            .list_channels(&env.tenant, &user, 10, None)
            .await
            .unwrap();
        for ch in channels.items {
            shared::calendar::channels::stop(&env.app, None, &ch).await;
        }
        env.sandbox.inject_fault(FaultSpec {
            path_prefix: Some("/calendar/v3/calendars/primary/events/watch".into()),
            ..FaultSpec::new(FaultKind::Unavailable)
        });
        w.clock.advance(time::Duration::minutes(2));
        assert_eq!(tick(&w).await.accounts_enqueued, 1);
        assert_eq!(work(&w, drain(&w, Duration::from_secs(3)).await).await, 0);
        let stored = env.stored_account("jane").await;
        assert_eq!(stored.sync_failures, 0);
        assert_eq!(stored.last_error, None);
        let next = stored.next_sync_at.unwrap();
        let now = w.clock.now();
        assert!(
            next >= now + POLL_INTERVAL && next < now + POLL_INTERVAL * 2,
            "no healthy channel: polled every 10 minutes ({next})"
        );
    }

    /// Calendar API requests the sandbox saw for `email` since the log was cleared.
    fn calendar_calls(env: &Env, email: &str) -> usize {
        env.sandbox
            .request_log()
            .iter()
            .filter(|r| r.user.as_deref() == Some(email) && r.path.contains("/calendar/v3/"))
            .count()
    }

    /// `event_created` records in the tenant's feed.
    async fn created(env: &Env) -> usize {
        env.app
            .store
            .list_changes(&env.tenant, None, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.kind == shared::domain::ChangeKind::EventCreated)
            .count()
    }

    #[tokio::test]
    async fn contacts_are_polled_at_the_polling_interval_even_with_healthy_channels() {
        let env = Env::new().await;
        env.connect("jane", &["calendar", "contacts"], ALICE, "")
            .await;
        let w = w(&env).await;
        let user = UserId::parse("jane").unwrap();
        let jobs = drain(&w, Duration::from_secs(3)).await;
        assert_eq!(names(&jobs), [format!("{}:jane", env.tenant)]);
        assert_eq!(work(&w, jobs).await, 0);
        let after = w.clock.now();
        let next = next_sync(&w, &env.tenant, &user).await;
        assert!(
            // (on the account's phase: within one more polling interval)
            next < after + POLL_INTERVAL * 2,
            "People has no push: the contacts are read again within the polling interval ({next})"
        );

        // A tenant that polls hourly (out-of-range values are refused).
        let set_poll = |minutes: u32| {
            env.call(
                "PATCH",
                "/v1/admin/settings",
                &env.admin,
                Some(json!({"defaults": {"poll_interval_minutes": minutes}})),
            )
        };
        let (s, v) = set_poll(5).await;
        assert_eq!(s.as_u16(), 422, "{v}");
        let (s, v) = set_poll(60).await;
        assert_eq!(s.as_u16(), 200, "{v}");
        assert_eq!(v["defaults"]["poll_interval_minutes"], 60);
        w.clock.advance(next - w.clock.now());
        assert_eq!(tick(&w).await.accounts_enqueued, 1);
        assert_eq!(work(&w, drain(&w, Duration::from_secs(3)).await).await, 0);
        let after = w.clock.now();
        let next = next_sync(&w, &env.tenant, &user).await;
        assert!(
            next >= after + time::Duration::hours(1)
                && next < after + time::Duration::hours(1) + POLL_INTERVAL,
            "{next}"
        );
    }

    #[tokio::test]
    async fn pacing_caps_one_busy_account_and_the_tenant_budget_defers() {
        let env = Env::new().await;
        env.connect("jane", &["calendar"], ALICE, "").await;
        env.connect("john", &["calendar"], "bob@example.com", "")
            .await;
        let w = w(&env).await;
        // Jane's calendar is busy: 600 events, three pages for the first read.
        let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
        for i in 0..600 {
            let e: shared::google::calendar::Event = serde_json::from_value(json!({
                "summary": format!("Busy {i}"),
                "start": {"dateTime": "2030-01-01T10:00:00Z"},
                "end": {"dateTime": "2030-01-01T11:00:00Z"},
            }))
            .unwrap();
            env.app
                .google
                .insert_event(
                    &alice,
                    "primary",
                    &e,
                    shared::google::calendar::SendUpdates::None,
                )
                .await
                .unwrap();
        }
        let limits = Limits {
            calls_per_job: 2,
            ..Limits::default()
        };
        // Both first passes were queued when they connected.
        assert_eq!(tick(&w).await.accounts_enqueued, 0);
        let mut jobs = drain(&w, Duration::from_secs(3)).await;
        assert_eq!(jobs.len(), 2);
        // Jane's job first in the batch: it must not hold John's back.
        jobs.sort_by_key(|(j, _, _)| j.user.as_str() != "jane");
        env.sandbox.clear_request_log();
        assert_eq!(with_limits(limits, work(&w, jobs)).await, 0);
        assert_eq!(
            calendar_calls(&env, ALICE),
            2,
            "jane: two calls, then paced"
        );
        assert!(calendar_calls(&env, "bob@example.com") <= 2);
        let john = env.stored_account("john").await;
        assert!(
            john.last_sync_at.is_some(),
            "john's sync ran in the same batch"
        );
        assert!(john.next_sync_at.unwrap() > w.clock.now() + POLL_INTERVAL);
        // The rest of Jane's read is a continuation job, queued behind other accounts' jobs.
        let rest = drain(&w, Duration::from_secs(3)).await;
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0.reason, SyncReason::Continuation);
        assert_eq!(rest[0].0.user.as_str(), "jane");
        let read_so_far = created(&env).await;
        assert_eq!(read_so_far, 500, "two pages of 250 are read and kept");
        env.sandbox.clear_request_log();
        assert_eq!(with_limits(limits, work(&w, rest)).await, 0);
        assert!(calendar_calls(&env, ALICE) <= 2);
        // The read resumed across runs knows what its first run saw: nothing is fetched
        // again one by one, and nothing is left for a further run.
        assert!(!env
            .sandbox
            .request_log()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/events/")));
        assert!(drain(&w, Duration::from_secs(3)).await.is_empty());
        let created = created(&env).await;
        assert_eq!(
            created, 600,
            "the continuation finished the read, nothing twice"
        );
        let jane = env.stored_account("jane").await;
        assert_eq!(jane.sync_failures, 0);
        assert!(jane.next_sync_at.unwrap() > w.clock.now() + POLL_INTERVAL);

        // The tenant's budget: one call left and a slow refill. Jane's next run takes it;
        // John's waits for the budget (no Google call, no error, due again when it refills).
        let tight = Limits {
            tenant_burst: 1,
            tenant_rate: 0.01,
            reserve: 1,
            ..Limits::default()
        };
        w.clock
            .advance(SAFETY_INTERVAL - time::Duration::minutes(1));
        let mut jobs = Vec::new();
        for _ in 0..12 {
            w.clock.advance(time::Duration::minutes(1));
            if tick(&w).await.accounts_enqueued > 0 {
                jobs.extend(drain(&w, Duration::from_secs(3)).await);
            }
        }
        assert_eq!(
            jobs.len(),
            2,
            "both safety polls come due within the window: {:?}",
            jobs.iter()
                .map(|(j, _, _)| (j.user.as_str(), j.reason))
                .collect::<Vec<_>>()
        );
        jobs.sort_by_key(|(j, _, _)| j.user.as_str() != "jane");
        env.sandbox.clear_request_log();
        assert_eq!(with_limits(tight, work(&w, jobs)).await, 0);
        assert_eq!(calendar_calls(&env, ALICE), 1);
        assert_eq!(calendar_calls(&env, "bob@example.com"), 0);
        let john = env.stored_account("john").await;
        assert_eq!(john.sync_failures, 0);
        assert_eq!(john.last_error, None);
        assert_eq!(
            john.next_sync_at,
            Some(w.clock.now() + time::Duration::seconds(100))
        );
    }
}
