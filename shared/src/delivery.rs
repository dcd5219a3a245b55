//! Outbound webhooks to the CRM: the tenant's change feed, POSTed to the tenant's webhook URL
//! in the [Standard Webhooks](https://www.standardwebhooks.com/) style, at-least-once and in
//! order. The pull feed (`GET /v1/changes`) stays the source of truth; this is a push of the
//! very same records.
//!
//! # What the CRM receives
//!
//! One `POST` per change record, `content-type: application/json`, with these headers:
//!
//! * `webhook-id`: the change record's id (a ULID). It is the same on every retry of that
//!   record: the CRM's idempotency key.
//! * `webhook-timestamp`: Unix seconds of *this attempt* (fresh on every retry).
//! * `webhook-signature`: `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>` where
//!   `key` is the base64-decoded part of the tenant's `whsec_…` signing secret after the
//!   prefix. The header is a space-separated list (the spec's provision for rotation); we
//!   send one signature, signed with the current secret.
//!
//! The body (minified JSON, signed exactly as sent):
//!
//! ```json
//! {"type":"account.status_changed","timestamp":"2026-06-01T12:00:00Z","data":{ …the change record… }}
//! ```
//!
//! * `type`: the record's kind as a full-stop delimited event type (see [`event_type`]):
//!   `event.created`, `event.updated`, `event.deleted`, `contact.created`,
//!   `contact.updated`, `contact.deleted`, `contact.untag`, `conflict.resolved`,
//!   `account.status_changed`, … (the kind with its first `_` made a `.`).
//! * `timestamp`: when the change was recorded (the record's `created_at`), RFC 3339 — not the
//!   time of the attempt, which is the `webhook-timestamp` header.
//! * `data`: the [`ChangeRecord`] exactly as `GET /v1/changes` lists it (its `kind` is the
//!   snake_case form of `type`), so one parser serves both.
//!
//! A `2xx` answer acknowledges the record. Anything else (3xx — redirects are not followed —
//! 4xx, 5xx, a timeout, a refused connection) is a failure: the record is retried, and the
//! records after it wait (order is kept). 408, 429, 5xx and transport errors are retried
//! within the same run with exponential backoff and full jitter (`Retry-After` honoured);
//! other 3xx/4xx mean the CRM endpoint is misconfigured: logged as such, retried on the next
//! run rather than hammered now.
//!
//! # State and concurrency
//!
//! One item per tenant ([`DeliveryCursor`], key `TENANT#{t}` / `DELIVERY`) holds the id of
//! the last acknowledged record and a *lease*, under the item's optimistic version. A run
//! first takes the lease (a versioned write that only succeeds if nobody else holds an
//! unexpired lease), then advances the cursor after each `2xx` with a write conditioned on
//! the version it last wrote — so a run whose lease was taken over (it outlived its lease)
//! notices at its next write and stops. Two callers for one tenant therefore never send the
//! same record concurrently in the common case; the rare case (a run that overran its lease,
//! or a crash between the `2xx` and the cursor write) re-sends a record with the same
//! `webhook-id`, which the at-least-once contract allows. The lease lasts the run's budget
//! plus [`LEASE_SLACK`] and is released at the end of the run, so a crashed run blocks its
//! tenant for at most that long. The lease lives in the cursor item (rather than in a
//! separate TTL item) so that one conditional write both moves the cursor and proves the
//! lease is still ours.
//!
//! Secrets: the signing secret and the signatures never reach a log line, an error or the
//! report; nor does a body. A failure is reported by its status code or transport class.
//!
//! For the CRM's side, [`verify`] checks a received webhook (constant-time, several
//! signatures accepted, timestamp tolerance).

use crate::app::App;
use crate::domain::{ChangeKind, ChangeRecord, TenantId};
use crate::secrets::{names, SecretsError};
use crate::services::validate::{server_url, PublicOnly};
use crate::store::StoreError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

type HmacSha256 = Hmac<Sha256>;

/// How a symmetric Standard Webhooks secret is presented: `whsec_<base64 of the key>`.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec's minimum key length for HMAC-SHA256 secrets (192 bits).
pub const MIN_KEY_BYTES: usize = 24;
/// A sensible `verify` tolerance for `webhook-timestamp` (both directions).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// How much longer than its budget a run's lease lasts (store calls after the deadline).
pub const LEASE_SLACK: Duration = Duration::from_secs(30);

/// How often a run looks again at a feed gap it waits on (a record still being written).
const FEED_GAP_POLL: Duration = Duration::from_millis(100);

// ---- signing ------------------------------------------------------------------------------

/// Why a signature could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing secret is not whsec_<base64> of at least {MIN_KEY_BYTES} bytes")]
    MalformedSecret,
    #[error("the webhook id must be non-empty and must not contain '.'")]
    InvalidId,
    #[error("webhook-timestamp is not a Unix time in seconds")]
    MalformedTimestamp,
    #[error("webhook-timestamp is too far from now (replay protection)")]
    TimestampOutOfTolerance,
    #[error("no v1 signature matches")]
    NoMatch,
}

/// The HMAC key of a `whsec_…` secret (the prefix is optional, as in the reference
/// libraries).
fn signing_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = B64
        .decode(encoded.trim())
        .map_err(|_| SignatureError::MalformedSecret)?;
    if key.len() < MIN_KEY_BYTES {
        return Err(SignatureError::MalformedSecret);
    }
    Ok(key)
}

/// The MAC over `{id}.{timestamp}.{body}` (the timestamp as the header carries it).
fn mac_of(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<HmacSha256, SignatureError> {
    if id.is_empty() || id.contains('.') {
        return Err(SignatureError::InvalidId);
    }
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| SignatureError::MalformedSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value for one message: `v1,<base64 HMAC-SHA256>`.
///
/// `secret` is the `whsec_…` signing secret; `id` must not contain `.`; `body` is the exact
/// bytes sent.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let key = signing_key(secret)?;
    let mac = mac_of(&key, id, &timestamp.to_string(), body)?;
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Checks a received webhook as a CRM would: `id`, `timestamp` and `signatures` are the
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` header values, `body` the raw
/// request body (not re-serialized), `now_unix` the receiver's clock.
///
/// The timestamp must be within `tolerance` of `now_unix` (either way); at least one of the
/// space-separated `v1,<base64>` entries must match, compared in constant time. Entries of
/// other schemes (`v1a,…`) and malformed entries are skipped.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let key = signing_key(secret)?;
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if now_unix.abs_diff(sent) > tolerance.as_secs() {
        return Err(SignatureError::TimestampOutOfTolerance);
    }
    let mac = mac_of(&key, id, timestamp, body)?;
    let matched = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        // `verify_slice` compares in constant time.
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

// ---- payload ------------------------------------------------------------------------------

/// The Standard Webhooks event type of a change kind: its snake_case name (as the feed
/// spells it) with the first `_` made a `.` — `event_created` → `event.created`,
/// `account_status_changed` → `account.status_changed`, `contact_untag` → `contact.untag`.
/// Derived rather than listed, so a new kind always has a type.
pub fn event_type(kind: ChangeKind) -> String {
    let snake = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match snake.split_once('_') {
        Some((noun, rest)) => format!("{noun}.{rest}"),
        None => snake,
    }
}

/// The body POSTed for a record.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub data: &'a ChangeRecord,
}

impl<'a> Payload<'a> {
    pub fn of(record: &'a ChangeRecord) -> Self {
        Self {
            event_type: event_type(record.kind),
            timestamp: record.created_at,
            data: record,
        }
    }
}

/// The exact bytes sent (and signed) for a record: minified JSON.
pub fn body(record: &ChangeRecord) -> Result<Vec<u8>, DeliveryError> {
    Ok(serde_json::to_vec(&Payload::of(record))?)
}

// ---- state --------------------------------------------------------------------------------

pub use crate::domain::delivery::{DeliveryCursor, Failing, Lease, PARKED_KEPT};

// ---- report and errors --------------------------------------------------------------------

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The tenant has no webhook: nothing sent, the cursor untouched.
    NoWebhook,
    /// Another run holds the tenant's lease: nothing sent.
    Busy,
    /// Every record of the feed is delivered.
    Drained,
    /// A record still fails after its retries; it and the records after it wait for the
    /// next run (see `blocked_on`).
    Blocked,
    /// The budget ran out with records still pending (none failing).
    OutOfBudget,
    /// Another run took the lease over (ours expired): stopped at once.
    LeaseLost,
}

/// What one failed attempt looked like — never the body, the URL, the secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptError {
    /// The CRM answered with a non-2xx status (3xx included: redirects are not followed).
    Status { status: u16 },
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Another transport failure (reset, protocol error, …).
    Transport,
}

impl AttemptError {
    /// Worth another attempt in the same run: 408, 429, 5xx and transport errors. Other
    /// statuses mean a misconfigured endpoint; they wait for the next run.
    pub fn retry_now(&self) -> bool {
        match self {
            AttemptError::Status { status } => matches!(status, 408 | 429 | 500..=599),
            AttemptError::Timeout | AttemptError::Connect | AttemptError::Transport => true,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Status { status } => write!(f, "HTTP {status}"),
            AttemptError::Timeout => f.write_str("timeout"),
            AttemptError::Connect => f.write_str("connection failed"),
            AttemptError::Transport => f.write_str("transport error"),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub outcome: DeliveryOutcome,
    /// Records acknowledged (cursor advanced) in this run.
    pub delivered: u32,
    /// Failed attempts in this run (each retry counts).
    pub failures: u32,
    /// The last failed attempt.
    pub last_error: Option<AttemptError>,
    /// The cursor after the run: the last acknowledged record id.
    pub cursor: Option<String>,
    /// The record that still fails, when `outcome` is `Blocked`.
    pub blocked_on: Option<String>,
    /// Records parked in this run (refused for too long: skipped, still in the pull feed).
    pub parked: u32,
}

impl DeliveryReport {
    fn new(outcome: DeliveryOutcome, cursor: Option<String>) -> Self {
        Self {
            outcome,
            delivered: 0,
            failures: 0,
            last_error: None,
            cursor,
            blocked_on: None,
            parked: 0,
        }
    }
}

/// Why a run could not be carried out (webhook failures are not errors: they are in the
/// report).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("tenant not found")]
    TenantNotFound,
    #[error("the tenant has a webhook URL but no signing secret")]
    MissingSecret,
    #[error("the tenant's webhook URL is not a valid URL, or not a public address")]
    InvalidUrl,
    #[error("webhook signing failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("cannot encode a webhook payload: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
}

impl DeliveryError {
    /// Whether running again later may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Store(e) => e.is_retryable(),
            DeliveryError::Secrets(SecretsError::Backend(_)) => true,
            _ => false,
        }
    }
}

// ---- delivery -----------------------------------------------------------------------------

/// Knobs of a run; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Attempts per record within one run (the first one included).
    pub max_attempts: u32,
    /// Backoff before retry `n` is uniform in `[0, min(max_delay, base_delay * 2^(n-1))]`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per request (also capped by what is left of the budget).
    pub request_timeout: Duration,
    /// Records read from the feed per query.
    pub batch_size: u32,
    /// A record still refused after failing in this many runs, over at least
    /// `park_after`, is parked: the records after it go on.
    pub park_after_runs: u32,
    pub park_after: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            batch_size: 50,
            park_after_runs: 8,
            park_after: Duration::from_secs(3600),
        }
    }
}

/// A webhook HTTP client: redirects off, no proxy, short connect timeout; with `resolver`
/// (outside local runs: [`PublicOnly`] over the system's resolver), every name is resolved
/// through it, so a connection to an internal address is refused when it is made.
pub fn webhook_client(
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
) -> Result<reqwest::Client, DeliveryError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!(
            "crm-google-sync-webhooks/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(r) = resolver {
        builder = builder.dns_resolver2(r);
    }
    builder.build().map_err(DeliveryError::Client)
}

/// The deployment's webhook HTTP client, held by the [`App`]: public addresses only, unless
/// the deployment itself is local (its CRM then runs on this machine too). Built at the first
/// delivery (functions that never deliver never build it), then reused by every run of that
/// App.
#[derive(Debug)]
pub struct WebhookClient {
    local: bool,
    client: OnceLock<reqwest::Client>,
}

impl WebhookClient {
    /// The client for a deployment; `local`: it runs on loopback (the local server), so
    /// webhooks to this machine are allowed.
    pub fn for_deployment(local: bool) -> Self {
        Self {
            local,
            client: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<reqwest::Client, DeliveryError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let resolver: Option<Arc<dyn reqwest::dns::Resolve>> = if self.local {
            None
        } else {
            Some(Arc::new(PublicOnly::system()))
        };
        let client = webhook_client(resolver)?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}

/// Delivers the tenant's pending change records to its webhook with the default options.
/// See the [module documentation](self).
pub async fn deliver_pending(
    app: &App,
    tenant: &TenantId,
    budget: Duration,
) -> Result<DeliveryReport, DeliveryError> {
    deliver_pending_with(app, tenant, budget, &DeliveryOptions::default()).await
}

/// [`deliver_pending`] with explicit options (tests use a tiny backoff).
pub async fn deliver_pending_with(
    app: &App,
    tenant: &TenantId,
    budget: Duration,
    options: &DeliveryOptions,
) -> Result<DeliveryReport, DeliveryError> {
    let deadline = Instant::now() + budget;
    let Some(target) = Target::of(app, tenant).await? else {
        return Ok(DeliveryReport::new(DeliveryOutcome::NoWebhook, None));
    };

    let holder = ulid::Ulid::new().to_string();
    let Some(mut lease) = Held::acquire(app, tenant, &holder, budget + LEASE_SLACK).await? else {
        tracing::debug!(tenant = %tenant, "webhook delivery already running elsewhere");
        return Ok(DeliveryReport::new(DeliveryOutcome::Busy, None));
    };
    let mut report = DeliveryReport::new(
        DeliveryOutcome::Drained,
        lease.cursor.last_delivered.clone(),
    );
    let result = run(
        app,
        tenant,
        &target,
        &mut lease,
        deadline,
        options,
        &mut report,
    )
    .await;
    if report.outcome != DeliveryOutcome::LeaseLost {
        lease.release(app).await;
    }
    report.cursor = lease.cursor.last_delivered.clone();
    result?;
    if report.delivered > 0 || report.failures > 0 {
        tracing::info!(
            tenant = %tenant,
            outcome = ?report.outcome,
            delivered = report.delivered,
            failures = report.failures,
            last_error = report.last_error.as_ref().map(tracing::field::display),
            "webhook delivery run"
        );
    }
    Ok(report)
}

// ---- by hand: a test delivery, a redelivery ------------------------------------------------

/// The `type` of a test delivery (`POST /v1/admin/webhook/test`): not a change record, so a
/// CRM that dispatches on `type` can answer it with a `2xx` and do nothing.
pub const TEST_TYPE: &str = "webhook.test";

/// How one delivery made by hand went (a test, or a redelivery of a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The `webhook-id` sent.
    pub webhook_id: String,
    /// The CRM answered with a `2xx`.
    pub delivered: bool,
    /// What went wrong, when it did not.
    pub error: Option<AttemptError>,
    /// A redelivered record was parked and is not any more.
    pub unparked: bool,
}

/// The body of a test delivery, in the shape of every delivery.
fn test_body(tenant: &TenantId, now: OffsetDateTime) -> Result<Vec<u8>, DeliveryError> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "type": TEST_TYPE,
        "timestamp": crate::clock::rfc3339(now),
        "data": {
            "tenant": tenant,
            "message": "A test delivery from crm-google-sync: answer 2xx to acknowledge it.",
        },
    }))?)
}

/// Sends one signed test delivery to the tenant's webhook now, once (no retry), outside the
/// feed: the cursor and the records waiting are untouched. `None`: the tenant has no webhook.
pub async fn send_test(app: &App, tenant: &TenantId) -> Result<Option<Attempt>, DeliveryError> {
    let Some(target) = Target::of(app, tenant).await? else {
        return Ok(None);
    };
    let webhook_id = format!("test_{}", ulid::Ulid::new());
    let body = test_body(tenant, app.clock.now())?;
    let timeout = DeliveryOptions::default().request_timeout;
    let sent = target.post(app, &webhook_id, &body, timeout).await?;
    Ok(Some(Attempt {
        webhook_id,
        delivered: sent.is_ok(),
        error: sent.err().map(|(e, _)| e),
        unparked: false,
    }))
}

/// Why a record could not be redelivered.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("the tenant has no webhook URL")]
    NoWebhook,
    #[error("no such record in the tenant's feed (records are kept 30 days)")]
    NoRecord,
    #[error("a delivery run is in progress; try again in a minute")]
    Busy,
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// Sends one record of the tenant's feed again, now, once, under its own `webhook-id` (the
/// CRM's idempotency key, as on every delivery), holding the tenant's delivery lease so no
/// run sends beside it. A parked record the CRM now takes is unparked; the cursor does not
/// move (the records after it were delivered already, or wait for the next run).
pub async fn redeliver(app: &App, tenant: &TenantId, id: &str) -> Result<Attempt, RedeliverError> {
    let target = Target::of(app, tenant)
        .await?
        .ok_or(RedeliverError::NoWebhook)?;
    let record = app
        .store
        .get_change(tenant, id)
        .await
        .map_err(DeliveryError::from)?
        .ok_or(RedeliverError::NoRecord)?;
    let timeout = DeliveryOptions::default().request_timeout;
    let holder = ulid::Ulid::new().to_string();
    let Some(mut lease) = Held::acquire(app, tenant, &holder, timeout + LEASE_SLACK).await? else {
        return Err(RedeliverError::Busy);
    };
    let sent = target.post(app, &record.id, &body(&record)?, timeout).await;
    let mut unparked = false;
    if matches!(sent, Ok(Ok(()))) && lease.cursor.parked.contains(&record.id) {
        let mut next = lease.cursor.clone();
        next.parked.retain(|p| *p != record.id);
        next.updated_at = app.clock.now();
        unparked = lease.save(app, next).await?;
    }
    lease.release(app).await;
    let sent = sent?;
    Ok(Attempt {
        webhook_id: record.id,
        delivered: sent.is_ok(),
        error: sent.err().map(|(e, _)| e),
        unparked,
    })
}

/// Where and how a tenant's records are sent: its webhook URL, its signing secret, and the
/// client for its kind of deployment.
pub(crate) struct Target {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
}

impl Target {
    /// The tenant's webhook (`None`: it has none).
    pub(crate) async fn of(app: &App, tenant: &TenantId) -> Result<Option<Self>, DeliveryError> {
        let settings = app
            .store
            .get_tenant(tenant)
            .await?
            .ok_or(DeliveryError::TenantNotFound)?
            .value
            .settings;
        let Some(url) = settings.webhook_url else {
            return Ok(None);
        };
        // The address is checked again here (a URL stored before today's rules, an IP
        // literal, which no resolver sees); names are checked at connect time by the
        // client's resolver.
        let local = app.webhooks.local;
        server_url("webhook_url", &url, local).map_err(|_| DeliveryError::InvalidUrl)?;
        let url = reqwest::Url::parse(&url).map_err(|_| DeliveryError::InvalidUrl)?;
        let secret = app
            .secrets
            .get(&names::webhook_signing(tenant))
            .await?
            .ok_or(DeliveryError::MissingSecret)?;
        signing_key(secret.expose_secret())?;
        Ok(Some(Self {
            client: app.webhooks.get()?,
            url,
            secret,
        }))
    }

    /// One signed POST of `payload` under `id`: `Ok` on a `2xx`; otherwise what went wrong
    /// and the `Retry-After` the CRM asked for.
    pub(crate) async fn post(
        &self,
        app: &App,
        id: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Result<(), (AttemptError, Option<Duration>)>, DeliveryError> {
        let timestamp = app.clock.now_unix();
        let signature = sign(self.secret.expose_secret(), id, timestamp, payload)?;
        let sent = self
            .client
            .post(self.url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.to_vec())
            .send()
            .await;
        Ok(match sent {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err((
                AttemptError::Status {
                    status: resp.status().as_u16(),
                },
                retry_after(&resp),
            )),
            Err(e) => {
                let class = if e.is_timeout() {
                    AttemptError::Timeout
                } else if e.is_connect() {
                    AttemptError::Connect
                } else {
                    AttemptError::Transport
                };
                tracing::debug!(webhook_id = %id, cause = %cause_chain(e), "webhook transport error");
                Err((class, None))
            }
        })
    }
}

/// The cursor item as this run last wrote it (lease held).
struct Held {
    cursor: DeliveryCursor,
    version: u64,
    holder: String,
}

impl Held {
    /// Takes the tenant's lease unless another run holds an unexpired one.
    async fn acquire(
        app: &App,
        tenant: &TenantId,
        holder: &str,
        lease_for: Duration,
    ) -> Result<Option<Self>, DeliveryError> {
        for _ in 0..3 {
            let now = app.clock.now();
            let (mut cursor, expected) = match app.store.get_delivery_cursor(tenant).await? {
                Some(found) => (found.value, Some(found.version)),
                None => (
                    DeliveryCursor {
                        tenant: tenant.clone(),
                        last_delivered: None,
                        lease: None,
                        updated_at: now,
                        failing: None,
                        parked: Vec::new(),
                    },
                    None,
                ),
            };
            if cursor.lease.as_ref().is_some_and(|l| l.until > now) {
                return Ok(None);
            }
            cursor.lease = Some(Lease {
                holder: holder.to_owned(),
                until: now + lease_for,
            });
            cursor.updated_at = now;
            match app.store.put_delivery_cursor(&cursor, expected).await {
                Ok(version) => {
                    return Ok(Some(Self {
                        cursor,
                        version,
                        holder: holder.to_owned(),
                    }))
                }
                // Someone wrote in between: look again (they may hold the lease now).
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Moves the cursor past `id` (and extends the lease); `Ok(false)` if the lease was lost.
    async fn advance(
        &mut self,
        app: &App,
        id: &str,
        lease_for: Duration,
    ) -> Result<bool, DeliveryError> {
        let now = app.clock.now();
        let mut next = self.cursor.clone();
        next.last_delivered = Some(id.to_owned());
        next.failing = None;
        next.lease = Some(Lease {
            holder: self.holder.clone(),
            until: now + lease_for,
        });
        next.updated_at = now;
        self.save(app, next).await
    }

    /// Records that `id` failed in this run; parks it (moves the cursor past it) once it has
    /// failed in `park_after_runs` runs over at least `park_after`. Returns whether it was
    /// parked, `None` if the lease was lost.
    async fn fail(
        &mut self,
        app: &App,
        id: &str,
        options: &DeliveryOptions,
    ) -> Result<Option<bool>, DeliveryError> {
        let now = app.clock.now();
        let mut next = self.cursor.clone();
        let failing = match next.failing.take() {
            Some(f) if f.id == id => Failing {
                runs: f.runs.saturating_add(1),
                ..f
            },
            _ => Failing {
                id: id.to_owned(),
                runs: 1,
                since: now,
            },
        };
        let long_enough = time::Duration::try_from(options.park_after)
            .is_ok_and(|after| now - failing.since >= after);
        let park = failing.runs >= options.park_after_runs && long_enough;
        if park {
            next.last_delivered = Some(id.to_owned());
            next.parked.push(id.to_owned());
            let excess = next.parked.len().saturating_sub(PARKED_KEPT);
            next.parked.drain(..excess);
        } else {
            next.failing = Some(failing);
        }
        next.updated_at = now;
        Ok(self.save(app, next).await?.then_some(park))
    }

    /// Writes the cursor on the version this run holds; `Ok(false)` if the lease was lost.
    async fn save(&mut self, app: &App, next: DeliveryCursor) -> Result<bool, DeliveryError> {
        match app
            .store
            .put_delivery_cursor(&next, Some(self.version))
            .await
        {
            Ok(version) => {
                self.cursor = next;
                self.version = version;
                Ok(true)
            }
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Frees the lease (best effort: an unreleased lease expires by itself).
    async fn release(&mut self, app: &App) {
        let mut next = self.cursor.clone();
        next.lease = None;
        next.updated_at = app.clock.now();
        match app
            .store
            .put_delivery_cursor(&next, Some(self.version))
            .await
        {
            Ok(version) => {
                self.cursor = next;
                self.version = version;
            }
            Err(StoreError::ConditionFailed) => {}
            Err(e) => {
                tracing::warn!(tenant = %self.cursor.tenant, error = %e, "could not release the webhook delivery lease")
            }
        }
    }
}

/// How one record's attempts ended.
enum Sent {
    Delivered,
    /// Still failing (retries spent, a non-retryable status, or no time for another try).
    Failed,
    /// The budget ran out before a first attempt.
    NoTime,
}

async fn run(
    app: &App,
    tenant: &TenantId,
    target: &Target,
    lease: &mut Held,
    deadline: Instant,
    options: &DeliveryOptions,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    // How long this run waits, at most, for a record whose number was taken but which has
    // not landed yet (see `Store::list_changes`): just past the feed's grace, after which
    // the gap is closed and the records behind it are read.
    let mut may_wait = app.store.feed_timing().grace + FEED_GAP_POLL;
    loop {
        if Instant::now() >= deadline {
            report.outcome = DeliveryOutcome::OutOfBudget;
            return Ok(());
        }
        let page = app
            .store
            .read_changes(
                tenant,
                lease.cursor.last_delivered.as_deref(),
                options.batch_size.max(1),
            )
            .await?;
        let batch = page.records;
        if batch.is_empty() {
            if page.waiting && !may_wait.is_zero() && Instant::now() + FEED_GAP_POLL < deadline {
                tokio::time::sleep(FEED_GAP_POLL).await;
                may_wait = may_wait.saturating_sub(FEED_GAP_POLL);
                continue;
            }
            report.outcome = DeliveryOutcome::Drained;
            return Ok(());
        }
        for record in &batch {
            match send_with_retries(app, target, record, deadline, options, report).await? {
                Sent::Delivered => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !lease.advance(app, &record.id, left + LEASE_SLACK).await? {
                        tracing::warn!(tenant = %tenant, record = %record.id, "webhook delivery lease taken over; stopping");
                        report.outcome = DeliveryOutcome::LeaseLost;
                        return Ok(());
                    }
                    report.delivered += 1;
                }
                Sent::Failed => match lease.fail(app, &record.id, options).await? {
                    // Refused for too long: parked, and the records after it go on.
                    Some(true) => {
                        tracing::warn!(tenant = %tenant, record = %record.id, "webhook record parked after repeated refusals (it stays in the pull feed)");
                        app.metrics.count("DeliveriesParked", &[], 1);
                        report.parked += 1;
                    }
                    Some(false) => {
                        report.outcome = DeliveryOutcome::Blocked;
                        report.blocked_on = Some(record.id.clone());
                        return Ok(());
                    }
                    None => {
                        report.outcome = DeliveryOutcome::LeaseLost;
                        return Ok(());
                    }
                },
                Sent::NoTime => {
                    report.outcome = DeliveryOutcome::OutOfBudget;
                    return Ok(());
                }
            }
        }
    }
}

/// Full-jitter exponential backoff before retry number `retry` (1-based).
fn backoff(options: &DeliveryOptions, retry: u32) -> Duration {
    let exp = options
        .base_delay
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
    let cap = exp.min(options.max_delay);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

/// A transport error's causes, without the URL (which the tenant chose and may carry a
/// token in its query).
fn cause_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn send_with_retries(
    app: &App,
    target: &Target,
    record: &ChangeRecord,
    deadline: Instant,
    options: &DeliveryOptions,
    report: &mut DeliveryReport,
) -> Result<Sent, DeliveryError> {
    let payload = body(record)?;
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(if attempt == 0 {
                Sent::NoTime
            } else {
                Sent::Failed
            });
        }
        attempt += 1;
        let timeout = options.request_timeout.min(left);
        let (error, wait_at_least) = match target.post(app, &record.id, &payload, timeout).await? {
            Ok(()) => return Ok(Sent::Delivered),
            Err(failed) => failed,
        };
        report.failures += 1;
        report.last_error = Some(error.clone());
        if !error.retry_now() {
            tracing::warn!(
                tenant = %record.tenant,
                record = %record.id,
                attempt,
                error = %error,
                "the CRM rejected a webhook: its endpoint looks misconfigured; retried on the next run"
            );
            return Ok(Sent::Failed);
        }
        tracing::warn!(
            tenant = %record.tenant,
            record = %record.id,
            attempt,
            error = %error,
            "webhook delivery attempt failed"
        );
        if attempt >= options.max_attempts.max(1) {
            return Ok(Sent::Failed);
        }
        let mut delay = backoff(options, attempt);
        if let Some(at_least) = wait_at_least {
            delay = delay.max(at_least.min(options.max_delay));
        }
        if Instant::now() + delay >= deadline {
            return Ok(Sent::Failed);
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(
            sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY).unwrap(),
            VECTOR_SIG
        );
        // The prefix is optional, as in the reference libraries.
        assert_eq!(
            sign(
                VECTOR_SECRET.trim_start_matches(SECRET_PREFIX),
                VECTOR_ID,
                VECTOR_TS,
                VECTOR_BODY
            )
            .unwrap(),
            VECTOR_SIG
        );
        verify(
            VECTOR_SECRET,
            VECTOR_ID,
            "1614265330",
            VECTOR_BODY,
            VECTOR_SIG,
            VECTOR_TS + 10,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn verify_accepts_any_matching_signature_and_rejects_the_rest() {
        let ts = "1614265330";
        let check = |sigs: &str, body: &[u8], now: i64| {
            verify(
                VECTOR_SECRET,
                VECTOR_ID,
                ts,
                body,
                sigs,
                now,
                DEFAULT_TOLERANCE,
            )
        };
        let several = format!("v1,bm9wZQ== v1a,AAAA garbage {VECTOR_SIG}");
        assert_eq!(check(&several, VECTOR_BODY, VECTOR_TS), Ok(()));
        assert_eq!(
            check("v1,bm9wZQ==", VECTOR_BODY, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            check(VECTOR_SIG, br#"{"test": 2432232315}"#, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        // The signature of another scheme with the right bytes is not a v1 signature.
        let v1a = VECTOR_SIG.replacen("v1,", "v1a,", 1);
        assert_eq!(
            check(&v1a, VECTOR_BODY, VECTOR_TS),
            Err(SignatureError::NoMatch)
        );
        // Replay protection, both directions.
        assert_eq!(
            check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS + 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(
            check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS - 301),
            Err(SignatureError::TimestampOutOfTolerance)
        );
        assert_eq!(check(VECTOR_SIG, VECTOR_BODY, VECTOR_TS + 300), Ok(()));
        for bad_ts in ["", "-1", "16142653e0", "1614265330.5"] {
            assert_eq!(
                verify(
                    VECTOR_SECRET,
                    VECTOR_ID,
                    bad_ts,
                    VECTOR_BODY,
                    VECTOR_SIG,
                    VECTOR_TS,
                    DEFAULT_TOLERANCE
                ),
                Err(SignatureError::MalformedTimestamp),
                "{bad_ts:?}"
            );
        }
        // Another secret does not verify.
        let other = format!("whsec_{}", B64.encode([7u8; 32]));
        assert_eq!(
            verify(
                &other,
                VECTOR_ID,
                ts,
                VECTOR_BODY,
                VECTOR_SIG,
                VECTOR_TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn bad_secrets_and_ids_are_refused() {
        assert_eq!(
            sign("whsec_short", "id", 1, b"{}"),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(
            sign("whsec_!!!", "id", 1, b"{}"),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(
            sign(VECTOR_SECRET, "a.b", 1, b"{}"),
            Err(SignatureError::InvalidId)
        );
        assert_eq!(
            sign(VECTOR_SECRET, "", 1, b"{}"),
            Err(SignatureError::InvalidId)
        );
    }

    #[test]
    fn payload_wraps_the_feed_record() {
        let record = ChangeRecord {
            id: "01J0000000000000000000000A".into(),
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("u1").unwrap(),
            kind: ChangeKind::AccountStatusChanged,
            crm_id: None,
            google_id: None,
            data: serde_json::json!({"status": "needs_reauth"}),
            created_at: time::macros::datetime!(2026-06-01 12:00 UTC),
        };
        let bytes = body(&record).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], "account.status_changed");
        assert_eq!(v["timestamp"], "2026-06-01T12:00:00Z");
        assert_eq!(v["data"], serde_json::to_value(&record).unwrap());
        assert_eq!(v["data"]["kind"], "account_status_changed");
        assert!(!String::from_utf8(bytes).unwrap().contains('\n'));
        assert_eq!(event_type(ChangeKind::EventCreated), "event.created");
        assert_eq!(event_type(ChangeKind::ContactUntag), "contact.untag");
        assert_eq!(
            event_type(ChangeKind::ConflictResolved),
            "conflict.resolved"
        );
    }

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let o = DeliveryOptions {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            ..DeliveryOptions::default()
        };
        for retry in 1..10 {
            let cap = Duration::from_millis((100u64 << (retry - 1)).min(250));
            for _ in 0..50 {
                assert!(backoff(&o, retry) <= cap);
            }
        }
        assert!(AttemptError::Status { status: 503 }.retry_now());
        assert!(AttemptError::Status { status: 429 }.retry_now());
        assert!(AttemptError::Status { status: 408 }.retry_now());
        assert!(!AttemptError::Status { status: 404 }.retry_now());
        assert!(!AttemptError::Status { status: 301 }.retry_now());
        assert!(AttemptError::Timeout.retry_now());
    }
}
