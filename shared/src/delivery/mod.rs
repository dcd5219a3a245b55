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
//! * `data`: the [`ChangeRecord`](crate::domain::ChangeRecord) exactly as `GET /v1/changes`
//!   lists it (its `kind` is the snake_case form of `type`), so one parser serves both.
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

mod by_hand;
mod client;
mod error;
mod lease;
mod payload;
mod run;
mod sign;
mod target;

pub use crate::domain::delivery::{DeliveryCursor, Failing, Lease, PARKED_KEPT};
pub use by_hand::{redeliver, send_test, Attempt, RedeliverError, TEST_TYPE};
pub use client::{webhook_client, WebhookClient};
pub use error::{AttemptError, DeliveryError};
pub use payload::{body, event_type, Payload};
pub use run::{
    deliver_pending, deliver_pending_with, DeliveryOptions, DeliveryOutcome, DeliveryReport,
};
pub use sign::{sign, verify, SignatureError};

use std::time::Duration;

/// How a symmetric Standard Webhooks secret is presented: `whsec_<base64 of the key>`.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec's minimum key length for HMAC-SHA256 secrets (192 bits).
pub const MIN_KEY_BYTES: usize = 24;
/// A sensible `verify` tolerance for `webhook-timestamp` (both directions).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// How much longer than its budget a run's lease lasts (store calls after the deadline).
pub const LEASE_SLACK: Duration = Duration::from_secs(30);
