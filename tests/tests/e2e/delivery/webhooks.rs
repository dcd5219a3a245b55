//! Outbound webhooks to the CRM (`shared::delivery`) end to end, on the production adapters
//! (DynamoDB Local; Secrets Manager and SQS on moto), against a CRM receiver on 127.0.0.1:
//! order, Standard Webhooks signatures checked independently (HMAC computed here), retries,
//! blocking and resuming, at-least-once duplicates, the delivery lease, secret rotation,
//! tenant isolation and "no webhook, nothing sent".

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shared::app::AppState;
use shared::delivery::{
    self, AttemptError, DeliveryCursor, DeliveryOptions, DeliveryOutcome, DeliveryReport, Lease,
};
use shared::domain::{ChangeKind, ChangeRecord, TenantId, UserId};
use shared::services::settings::{self, SettingsPatch};
use shared::services::tenants::{self, NewTenant};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(20);

/// Tiny backoff so retries cost milliseconds.
fn fast() -> DeliveryOptions {
    DeliveryOptions {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        request_timeout: Duration::from_secs(3),
        // Small pages: runs cross several feed queries.
        batch_size: 2,
        // Parking is its own test's.
        park_after_runs: u32::MAX,
        park_after: Duration::ZERO,
    }
}

// ---- a CRM receiver ----------------------------------------------------------------------

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Bytes,
    status: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer first, in order; then 200.
    script: Arc<Mutex<VecDeque<u16>>>,
    /// A webhook id answered 500 for as long as it is set.
    fail_id: Arc<Mutex<Option<String>>>,
    /// Requests to answer only after this delay (front of the queue first).
    delays: Arc<Mutex<VecDeque<Duration>>>,
    /// Delay on every request.
    slow: Arc<Mutex<Duration>>,
    url: String,
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = header(&headers, "webhook-id");
    let failing = r.fail_id.lock().unwrap().as_deref() == Some(id.as_str());
    let status = if failing {
        500
    } else {
        r.script.lock().unwrap().pop_front().unwrap_or(200)
    };
    r.hits.lock().unwrap().push(Hit {
        id,
        timestamp: header(&headers, "webhook-timestamp"),
        signature: header(&headers, "webhook-signature"),
        content_type: header(&headers, "content-type"),
        body,
        status,
    });
    let delay = r.delays.lock().unwrap().pop_front();
    let slow = *r.slow.lock().unwrap();
    tokio::time::sleep(delay.unwrap_or_default() + slow).await;
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start() -> Self {
        let (listener, base) = crate::world::bind().await;
        let r = Receiver {
            url: format!("{base}/crm/webhooks"),
            ..Default::default()
        };
        let router = axum::Router::new()
            .route("/crm/webhooks", axum::routing::post(hook))
            .with_state(r.clone());
        crate::world::serve_on(listener, router);
        r
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Ids of the requests answered 2xx, in arrival order.
    fn acknowledged(&self) -> Vec<String> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(|h| h.id)
            .collect()
    }

    fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    fn fail(&self, id: Option<&str>) {
        *self.fail_id.lock().unwrap() = id.map(str::to_owned);
    }
}

// ---- the independent check ---------------------------------------------------------------

/// Verifies a hit the way a CRM following the Standard Webhooks spec would, without using
/// `shared::delivery`: key = base64 of the secret after `whsec_`, HMAC-SHA256 over
/// `id.timestamp.body`, one of the space-separated `v1,` entries must match.
fn independently_signed(secret: &str, hit: &Hit) -> bool {
    let key = B64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    assert_eq!(key.len(), 32, "32 random bytes");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", hit.id, hit.timestamp).as_bytes());
    mac.update(&hit.body);
    let expected = B64.encode(mac.finalize().into_bytes());
    hit.signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

/// Everything a good hit has: headers, a fresh timestamp, a valid signature, the payload
/// wrapping the feed record whose id is the `webhook-id`.
fn assert_well_formed(secret: &str, hit: &Hit, feed: &[ChangeRecord]) {
    assert_eq!(hit.content_type, "application/json");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ts: i64 = hit.timestamp.parse().expect("integer webhook-timestamp");
    assert!((now - ts).abs() < 120, "timestamp {ts} vs now {now}");
    assert!(hit.signature.starts_with("v1,"), "{}", hit.signature);
    assert!(
        independently_signed(secret, hit),
        "signature of {} does not verify",
        hit.id
    );
    // The library's own verify agrees (it is what the CRM docs point at).
    delivery::verify(
        secret,
        &hit.id,
        &hit.timestamp,
        &hit.body,
        &hit.signature,
        now,
        delivery::DEFAULT_TOLERANCE,
    )
    .expect("delivery::verify");

    let payload: Value = serde_json::from_slice(&hit.body).expect("JSON body");
    let record = feed
        .iter()
        .find(|r| r.id == hit.id)
        .expect("webhook-id is a record of this tenant's feed");
    assert_eq!(payload["data"], serde_json::to_value(record).unwrap());
    assert_eq!(payload["data"]["id"], hit.id.as_str());
    assert_eq!(
        payload["type"],
        delivery::event_type(record.kind),
        "event type"
    );
    let at = time::OffsetDateTime::parse(
        payload["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 timestamp");
    assert_eq!(at, record.created_at);
}

// ---- set-up ------------------------------------------------------------------------------

/// A tenant; with `webhook`, its webhook set to that URL. Returns the signing secret.
async fn tenant(app: &AppState, webhook: Option<&str>) -> (TenantId, Option<String>) {
    let (t, _key) = tenants::create(
        app,
        NewTenant {
            id: None,
            name: "Acme CRM".into(),
        },
    )
    .await
    .unwrap();
    let secret = match webhook {
        Some(url) => {
            let view = settings::patch(
                app,
                &t.id,
                SettingsPatch {
                    webhook_url: Some(Some(url.to_owned())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            Some(view.webhook_signing_secret.expect("secret shown once"))
        }
        None => None,
    };
    (t.id, secret)
}

/// Appends `n` records; returns the tenant's whole feed, in feed order.
async fn append(app: &AppState, t: &TenantId, n: usize) -> Vec<ChangeRecord> {
    let user = UserId::parse("u-1").unwrap();
    let kinds = [
        ChangeKind::AccountStatusChanged,
        ChangeKind::EventCreated,
        ChangeKind::ContactUpdated,
        ChangeKind::EventDeleted,
    ];
    for i in 0..n {
        shared::services::feed::append(
            app,
            t,
            &user,
            kinds[i % kinds.len()],
            json!({"n": i, "note": "päyload ✓"}),
        )
        .await
        .unwrap();
    }
    feed(app, t).await
}

async fn feed(app: &AppState, t: &TenantId) -> Vec<ChangeRecord> {
    app.store.list_changes(t, None, 1000).await.unwrap()
}

fn ids(records: &[ChangeRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

async fn run(app: &AppState, t: &TenantId) -> DeliveryReport {
    delivery::deliver_pending_with(app, t, BUDGET, &fast())
        .await
        .unwrap()
}

async fn cursor(app: &AppState, t: &TenantId) -> Option<DeliveryCursor> {
    app.store
        .get_delivery_cursor(t)
        .await
        .unwrap()
        .map(|v| v.value)
}

// ---- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn records_arrive_in_order_with_valid_signatures() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, secret) = tenant(&app, Some(&crm.url)).await;
    let secret = secret.unwrap();
    let records = append(&app, &t, 5).await;
    assert_eq!(records.len(), 5);

    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!(report.delivered, 5);
    assert_eq!(report.failures, 0);
    assert_eq!(report.last_error, None);
    assert_eq!(report.cursor.as_deref(), Some(records[4].id.as_str()));

    assert_eq!(crm.acknowledged(), ids(&records), "feed order, each once");
    for hit in crm.hits() {
        assert_well_formed(&secret, &hit, &records);
    }
    let c = cursor(&app, &t).await.unwrap();
    assert_eq!(c.last_delivered.as_deref(), Some(records[4].id.as_str()));
    assert_eq!(c.lease, None, "the lease is released after the run");

    // Nothing new: nothing sent. New records: only those.
    let again = run(&app, &t).await;
    assert_eq!(
        (again.outcome, again.delivered),
        (DeliveryOutcome::Drained, 0)
    );
    assert_eq!(crm.hits().len(), 5);
    let records = append(&app, &t, 2).await;
    let report = run(&app, &t).await;
    assert_eq!(report.delivered, 2);
    assert_eq!(crm.acknowledged(), ids(&records));

    // The production entry point (default options) works the same.
    let records = append(&app, &t, 1).await;
    let report = delivery::deliver_pending(&app, &t, BUDGET).await.unwrap();
    assert_eq!(
        (report.outcome, report.delivered),
        (DeliveryOutcome::Drained, 1)
    );
    assert_eq!(crm.acknowledged(), ids(&records));
}

/// A writer that took its feed number and died before writing: the run waits out the feed's
/// grace (instead of calling the feed drained) and then delivers the records behind the gap,
/// in order, each once.
#[tokio::test]
async fn a_number_never_written_delays_the_records_behind_it_only_for_the_grace() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, _) = tenant(&app, Some(&crm.url)).await;
    let first = append(&app, &t, 1).await;
    assert_eq!(run(&app, &t).await.delivered, 1);
    app.store
        .table()
        .add(&shared::store::keys::feed_counter(&t), 1)
        .await
        .unwrap();
    // (Within the grace even a full read stops at the gap.)
    assert_eq!(append(&app, &t, 2).await, first);
    let started = std::time::Instant::now();
    let report = run(&app, &t).await;
    assert_eq!(
        (report.outcome, report.delivered),
        (DeliveryOutcome::Drained, 2),
        "{report:?}"
    );
    assert!(started.elapsed() >= app.store.feed_timing().grace / 2);
    let records = feed(&app, &t).await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0], first[0]);
    assert_eq!(crm.acknowledged(), ids(&records));
}

#[tokio::test]
async fn a_record_failing_twice_with_500_is_retried_and_nothing_is_skipped() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 3).await;
    crm.script(&[500, 500]);

    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!(report.delivered, 3);
    assert_eq!(report.failures, 2);
    assert_eq!(
        report.last_error,
        Some(AttemptError::Status { status: 500 })
    );

    let hits = crm.hits();
    let seen: Vec<(&str, u16)> = hits.iter().map(|h| (h.id.as_str(), h.status)).collect();
    assert_eq!(
        seen,
        vec![
            (records[0].id.as_str(), 500),
            (records[0].id.as_str(), 500),
            (records[0].id.as_str(), 200),
            (records[1].id.as_str(), 200),
            (records[2].id.as_str(), 200),
        ]
    );
    // Every attempt, retries included, is signed (a retry re-signs with its own timestamp).
    for hit in &hits {
        assert_well_formed(secret.as_deref().unwrap(), hit, &records);
    }
    assert_eq!(crm.acknowledged(), ids(&records));
}

#[tokio::test]
async fn a_record_that_keeps_failing_blocks_the_rest_and_the_next_run_resumes() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, _secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 4).await;
    crm.fail(Some(&records[1].id));

    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Blocked, "{report:?}");
    assert_eq!(report.delivered, 1);
    assert_eq!(report.failures, fast().max_attempts);
    assert_eq!(report.blocked_on.as_deref(), Some(records[1].id.as_str()));
    assert_eq!(report.cursor.as_deref(), Some(records[0].id.as_str()));
    assert_eq!(
        report.last_error,
        Some(AttemptError::Status { status: 500 })
    );
    assert!(
        !crm.hits()
            .iter()
            .any(|h| h.id == records[2].id || h.id == records[3].id),
        "nothing after the failing record is sent"
    );

    // Still failing: the next run starts at the same record and stops there again.
    let report = run(&app, &t).await;
    assert_eq!(
        (report.outcome, report.delivered),
        (DeliveryOutcome::Blocked, 0)
    );
    assert_eq!(crm.hits()[5].id, records[1].id);

    // The CRM is fixed: the next run resumes where it stopped, in order.
    crm.fail(None);
    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!(report.delivered, 3);
    assert_eq!(crm.acknowledged(), ids(&records));
}

#[tokio::test]
async fn a_4xx_is_not_retried_in_the_same_run_but_is_on_the_next() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, _secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 2).await;
    crm.script(&[404]);

    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Blocked);
    assert_eq!((report.delivered, report.failures), (0, 1));
    assert_eq!(
        report.last_error,
        Some(AttemptError::Status { status: 404 })
    );
    assert_eq!(crm.hits().len(), 1, "no retry of a 404 within the run");
    assert_eq!(cursor(&app, &t).await.unwrap().last_delivered, None);

    // 429 and 408 are retried at once, like 5xx.
    crm.script(&[429, 408]);
    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!((report.delivered, report.failures), (2, 2));
    assert_eq!(crm.acknowledged(), ids(&records));
}

#[tokio::test]
async fn a_duplicate_is_only_an_at_least_once_retry_with_the_same_webhook_id() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 3).await;
    // The CRM processes the first request but answers too late: the sender cannot know it
    // arrived, and sends it again — with the same webhook-id, for the CRM to deduplicate.
    crm.delays
        .lock()
        .unwrap()
        .push_back(Duration::from_millis(700));
    let options = DeliveryOptions {
        request_timeout: Duration::from_millis(300),
        ..fast()
    };
    let report = delivery::deliver_pending_with(&app, &t, BUDGET, &options)
        .await
        .unwrap();
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!(report.delivered, 3);
    assert_eq!(report.last_error, Some(AttemptError::Timeout));

    let hits = crm.hits();
    let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(
        got,
        vec![
            records[0].id.as_str(),
            records[0].id.as_str(),
            records[1].id.as_str(),
            records[2].id.as_str(),
        ]
    );
    // The duplicate carries the same id and the same body (signed afresh).
    assert_eq!(hits[0].body, hits[1].body);
    for hit in &hits {
        assert_well_formed(secret.as_deref().unwrap(), hit, &records);
    }
    // Deduplicating by webhook-id gives the feed exactly.
    let mut seen = HashSet::new();
    let deduped: Vec<String> = got
        .iter()
        .filter(|id| seen.insert(**id))
        .map(|id| id.to_string())
        .collect();
    assert_eq!(deduped, ids(&records));
}

#[tokio::test]
async fn concurrent_runs_for_one_tenant_do_not_send_a_record_twice() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    *crm.slow.lock().unwrap() = Duration::from_millis(40);
    let (t, _secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 5).await;

    let (a, b) = tokio::join!(run(&app, &t), run(&app, &t));
    let mut outcomes = [a.outcome, b.outcome];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [DeliveryOutcome::Busy, DeliveryOutcome::Drained],
        "{a:?} {b:?}"
    );
    assert_eq!(a.delivered + b.delivered, 5);
    assert_eq!(
        crm.hits().iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        ids(&records),
        "each record sent exactly once"
    );

    // A live lease held by someone else: busy, nothing sent, the lease untouched.
    let now = time::OffsetDateTime::now_utc();
    let held = DeliveryCursor {
        tenant: t.clone(),
        last_delivered: Some(records[4].id.clone()),
        lease: Some(Lease {
            holder: "another-run".into(),
            until: now + time::Duration::minutes(5),
        }),
        updated_at: now,
        failing: None,
        parked: Vec::new(),
    };
    let v = app.store.get_delivery_cursor(&t).await.unwrap().unwrap();
    let v = app
        .store
        .put_delivery_cursor(&held, Some(v.version))
        .await
        .unwrap();
    let more = append(&app, &t, 1).await;
    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::Busy);
    assert_eq!(crm.hits().len(), 5);
    assert_eq!(cursor(&app, &t).await.unwrap(), held);

    // An expired one (its run crashed) is taken over.
    let stale = DeliveryCursor {
        lease: Some(Lease {
            holder: "crashed-run".into(),
            until: now - time::Duration::seconds(1),
        }),
        ..held
    };
    app.store
        .put_delivery_cursor(&stale, Some(v))
        .await
        .unwrap();
    let report = run(&app, &t).await;
    assert_eq!(
        (report.outcome, report.delivered),
        (DeliveryOutcome::Drained, 1)
    );
    assert_eq!(crm.acknowledged(), ids(&more));
}

#[tokio::test]
async fn a_rotated_secret_signs_the_next_deliveries() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, old) = tenant(&app, Some(&crm.url)).await;
    let old = old.unwrap();
    append(&app, &t, 1).await;
    assert_eq!(run(&app, &t).await.delivered, 1);

    let view = settings::patch(
        &app,
        &t,
        SettingsPatch {
            rotate_webhook_secret: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let new = view
        .webhook_signing_secret
        .expect("the new secret, shown once");
    assert_ne!(new, old);
    let records = append(&app, &t, 2).await;
    assert_eq!(run(&app, &t).await.delivered, 2);

    let hits = crm.hits();
    assert_eq!(hits.len(), 3);
    assert!(independently_signed(&old, &hits[0]));
    assert!(!independently_signed(&new, &hits[0]));
    for hit in &hits[1..] {
        assert_well_formed(&new, hit, &records);
        assert!(
            !independently_signed(&old, hit),
            "old secret no longer signs"
        );
    }
}

#[tokio::test]
async fn a_tenant_never_receives_another_tenants_records() {
    let app = crate::world::aws_app().await;
    let crm_a = Receiver::start().await;
    let crm_b = Receiver::start().await;
    let (a, secret_a) = tenant(&app, Some(&crm_a.url)).await;
    let (b, secret_b) = tenant(&app, Some(&crm_b.url)).await;
    let records_a = append(&app, &a, 3).await;
    let records_b = append(&app, &b, 2).await;

    let report = run(&app, &a).await;
    assert_eq!(report.delivered, 3);
    assert!(crm_b.hits().is_empty(), "B's webhook got nothing of A's");
    assert_eq!(crm_a.acknowledged(), ids(&records_a));
    assert_eq!(cursor(&app, &b).await, None, "B's cursor untouched");

    let report = run(&app, &b).await;
    assert_eq!(report.delivered, 2);
    assert_eq!(crm_b.acknowledged(), ids(&records_b));
    assert_eq!(crm_a.hits().len(), 3);
    for hit in crm_a.hits() {
        assert_well_formed(secret_a.as_deref().unwrap(), &hit, &records_a);
        assert!(!independently_signed(secret_b.as_deref().unwrap(), &hit));
        let p: Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(p["data"]["tenant"], a.as_str());
    }
    for hit in crm_b.hits() {
        assert_well_formed(secret_b.as_deref().unwrap(), &hit, &records_b);
    }
}

#[tokio::test]
async fn without_a_webhook_nothing_is_sent_and_the_cursor_is_left_alone() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, _) = tenant(&app, None).await;
    let records = append(&app, &t, 2).await;

    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::NoWebhook);
    assert_eq!((report.delivered, report.failures), (0, 0));
    assert_eq!(cursor(&app, &t).await, None);
    assert!(crm.hits().is_empty());

    // Setting one later delivers the feed from its start.
    settings::patch(
        &app,
        &t,
        SettingsPatch {
            webhook_url: Some(Some(crm.url.clone())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(run(&app, &t).await.delivered, 2);
    assert_eq!(crm.acknowledged(), ids(&records));

    // Removing it stops deliveries; the cursor stays where it was.
    settings::patch(
        &app,
        &t,
        SettingsPatch {
            webhook_url: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let before = cursor(&app, &t).await;
    append(&app, &t, 1).await;
    let report = run(&app, &t).await;
    assert_eq!(report.outcome, DeliveryOutcome::NoWebhook);
    assert_eq!(cursor(&app, &t).await, before);
    assert_eq!(crm.hits().len(), 2);
}

#[tokio::test]
/// A record written outside a sync job (here: the disconnect's `account_status_changed`)
/// reaches the CRM's webhook at once, with no sync job to carry it.
async fn a_record_written_outside_a_sync_job_is_delivered_at_once() {
    use crate::world::{Backend, Env};
    let env = Env::new_on(Backend::Local).await;
    let receiver = Receiver::start().await;
    let (s, v) = env
        .patch_settings(json!({ "webhook_url": receiver.url }))
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    env.connect("u-dana", &["calendar"], "alice@example.com", "")
        .await;
    let (s, v) = env
        .call("DELETE", "/v1/users/u-dana/google", &env.sync, None)
        .await;
    assert!(s.is_success(), "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let disconnected = receiver.hits().iter().any(|h| {
            let body: Value = serde_json::from_slice(&h.body).unwrap_or(Value::Null);
            let record = &body["data"];
            record["kind"] == "account_status_changed" && record["data"]["status"] == "disconnected"
        });
        if disconnected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the disconnect never reached the webhook: {:?}",
            receiver
                .hits()
                .iter()
                .map(|h| String::from_utf8_lossy(&h.body).into_owned())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
/// A record the CRM keeps refusing, run after run, is parked once it has failed in enough
/// runs over long enough: the records after it are delivered, the parked one is kept on the
/// cursor for the admin (and stays in the pull feed).
async fn a_record_refused_run_after_run_is_parked_and_the_rest_go_on() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, _secret) = tenant(&app, Some(&crm.url)).await;
    let records = append(&app, &t, 3).await;
    crm.fail(Some(&records[1].id));
    let options = DeliveryOptions {
        park_after_runs: 3,
        ..fast()
    };
    let run = || delivery::deliver_pending_with(&app, &t, BUDGET, &options);
    for _ in 0..2 {
        let report = run().await.unwrap();
        assert_eq!(report.outcome, DeliveryOutcome::Blocked, "{report:?}");
        assert_eq!(report.parked, 0);
    }
    let report = run().await.unwrap();
    assert_eq!(report.parked, 1, "{report:?}");
    assert_eq!(report.outcome, DeliveryOutcome::Drained, "{report:?}");
    assert_eq!(
        crm.acknowledged(),
        vec![records[0].id.clone(), records[2].id.clone()]
    );
    let cursor = cursor(&app, &t).await.unwrap();
    assert_eq!(cursor.parked, vec![records[1].id.clone()]);
    assert_eq!(cursor.failing, None);
    // Still in the pull feed.
    assert!(feed(&app, &t).await.iter().any(|r| r.id == records[1].id));
}

/// "Send a test delivery": one signed `webhook.test` POST, now, that a Standard Webhooks
/// receiver verifies; the feed's cursor does not move and the records still go out after.
#[tokio::test]
async fn a_test_delivery_is_signed_and_leaves_the_feed_alone() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, secret) = tenant(&app, Some(&crm.url)).await;
    let secret = secret.unwrap();
    let records = append(&app, &t, 2).await;

    let sent = delivery::send_test(&app, &t)
        .await
        .unwrap()
        .expect("a webhook");
    assert!(sent.delivered, "{sent:?}");
    assert_eq!(sent.error, None);
    let hits = crm.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.id, sent.webhook_id);
    assert!(hit.id.starts_with("test_"), "{}", hit.id);
    assert!(independently_signed(&secret, hit));
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["type"], delivery::TEST_TYPE);
    assert_eq!(body["data"]["tenant"], t.as_str());
    assert_eq!(cursor(&app, &t).await, None, "the cursor is untouched");

    // A CRM that refuses it: the answer says how.
    crm.script(&[503]);
    let sent = delivery::send_test(&app, &t).await.unwrap().unwrap();
    assert!(!sent.delivered);
    assert_eq!(sent.error, Some(AttemptError::Status { status: 503 }));

    // The records were not touched by the tests.
    assert_eq!(run(&app, &t).await.delivered, 2);
    assert!(ids(&records)
        .iter()
        .all(|id| crm.acknowledged().contains(id)));

    // No webhook: nothing to test.
    let (bare, _) = tenant(&app, None).await;
    assert!(delivery::send_test(&app, &bare).await.unwrap().is_none());
}

/// "Redeliver": a parked record the CRM now takes is sent again under its own id and taken
/// off the parked list; an unknown id, or another tenant's, is not found; a run in progress
/// holds the lease and the redelivery waits its turn.
#[tokio::test]
async fn a_parked_record_redelivered_by_hand_is_unparked() {
    let app = crate::world::aws_app().await;
    let crm = Receiver::start().await;
    let (t, secret) = tenant(&app, Some(&crm.url)).await;
    let secret = secret.unwrap();
    let records = append(&app, &t, 3).await;
    crm.fail(Some(&records[1].id));
    let options = DeliveryOptions {
        park_after_runs: 1,
        ..fast()
    };
    let report = delivery::deliver_pending_with(&app, &t, BUDGET, &options)
        .await
        .unwrap();
    assert_eq!(report.parked, 1, "{report:?}");
    assert_eq!(
        cursor(&app, &t).await.unwrap().parked,
        vec![records[1].id.clone()]
    );

    // Still refused: it stays parked.
    let again = delivery::redeliver(&app, &t, &records[1].id).await.unwrap();
    assert!(!again.delivered && !again.unparked, "{again:?}");
    assert_eq!(again.error, Some(AttemptError::Status { status: 500 }));
    assert_eq!(cursor(&app, &t).await.unwrap().parked.len(), 1);

    // The CRM is mended: delivered, unparked, and well-formed like any delivery.
    crm.fail(None);
    let again = delivery::redeliver(&app, &t, &records[1].id).await.unwrap();
    assert!(again.delivered && again.unparked, "{again:?}");
    let hit = crm.hits().into_iter().last().unwrap();
    assert_well_formed(&secret, &hit, &records);
    let after = cursor(&app, &t).await.unwrap();
    assert!(after.parked.is_empty());
    assert_eq!(
        after.last_delivered.as_deref(),
        Some(records[2].id.as_str())
    );
    assert_eq!(after.lease, None, "the redelivery's lease is released");

    // Any record of the feed can be sent again; it was not parked.
    let again = delivery::redeliver(&app, &t, &records[0].id).await.unwrap();
    assert!(again.delivered && !again.unparked, "{again:?}");

    // Not ours, not there.
    let (other, _) = tenant(&app, Some(&crm.url)).await;
    assert!(matches!(
        delivery::redeliver(&app, &other, &records[0].id).await,
        Err(delivery::RedeliverError::NoRecord)
    ));
    assert!(matches!(
        delivery::redeliver(&app, &t, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ").await,
        Err(delivery::RedeliverError::NoRecord)
    ));

    // A run holding the lease: the redelivery says so and sends nothing.
    let mut held = cursor(&app, &t).await.unwrap();
    let version = app
        .store
        .get_delivery_cursor(&t)
        .await
        .unwrap()
        .unwrap()
        .version;
    held.lease = Some(Lease {
        holder: "another-run".into(),
        until: time::OffsetDateTime::now_utc() + time::Duration::minutes(1),
    });
    app.store
        .put_delivery_cursor(&held, Some(version))
        .await
        .unwrap();
    let before = crm.hits().len();
    assert!(matches!(
        delivery::redeliver(&app, &t, &records[0].id).await,
        Err(delivery::RedeliverError::Busy)
    ));
    assert_eq!(crm.hits().len(), before);
}
