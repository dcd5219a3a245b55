//! The Google adapter: OAuth2 (through the `oauth2` crate) and the REST calls the product
//! makes, over one shared `reqwest::Client` with redirects off, against configurable base
//! URLs (Google itself, or the Google sandbox — the code cannot tell them apart).

pub mod api;
pub mod batch;
pub mod calendar;
pub mod oauth;
pub mod pacing;
pub mod people;
pub mod retry;

use crate::config::GoogleEndpoints;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// Google, as the product reaches it.
#[derive(Clone)]
pub struct Google {
    pub(crate) http: reqwest::Client,
    pub endpoints: GoogleEndpoints,
    /// Where every REST call is counted (`GoogleCalls`): the App's registry.
    pub(crate) metrics: Arc<Metrics>,
}

impl Google {
    /// A client counting its calls into `metrics` (the App's registry, flushed with the
    /// App's). Redirects are never followed: a client that cannot be built so (no TLS
    /// backend) is a broken deployment, refused at start-up rather than replaced by one that
    /// follows them.
    pub fn new(endpoints: GoogleEndpoints, metrics: Arc<Metrics>) -> Self {
        let http = reqwest::Client::builder()
            // OAuth endpoints must never be followed through redirects (oauth2-rs advice),
            // and no Google API we call redirects.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("crm-google-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the Google HTTP client builds (a TLS backend is available)");
        Self {
            http,
            endpoints,
            metrics,
        }
    }
}

/// What went wrong talking to Google, sorted by what the caller should do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GoogleError {
    /// The grant is gone for good (`invalid_grant`, `invalid_client`, …): the user must
    /// reconnect. Carries Google's error code, never the token.
    #[error("Google refused the grant: {0}")]
    Reauth(String),
    /// Worth retrying later (network, 429, 5xx, rate limits).
    #[error("Google is unavailable: {0}")]
    Transient(String),
    /// Google answered an error that retrying will not fix (a bad request, a missing
    /// permission, an unknown resource).
    #[error("Google answered {status}: {reason}")]
    Rejected { status: u16, reason: String },
    /// 404: the resource does not exist (or the caller may not see it). Carries Google's
    /// reason code.
    #[error("Google has no such resource: {0}")]
    NotFound(String),
    /// 409: the resource already exists (e.g. a client-chosen event id, `duplicate`).
    #[error("Google reports a conflict: {0}")]
    Conflict(String),
    /// 412: an `If-Match` etag no longer matches; re-read and decide again. People says the
    /// same with 400 `FAILED_PRECONDITION` ("person.etag is different…"), sorted here too.
    #[error("Google's copy changed since it was read: {0}")]
    PreconditionFailed(String),
    /// 410: a sync token Google no longer honours (`fullSyncRequired`: list again without
    /// it) or a resource already deleted (`deleted`). People's expired sync token (400
    /// `FAILED_PRECONDITION` with ErrorInfo `EXPIRED_SYNC_TOKEN`) is sorted here as
    /// `Gone("EXPIRED_SYNC_TOKEN")`, so [`GoogleError::is_full_sync_required`] covers both.
    #[error("Google no longer has it: {0}")]
    Gone(String),
    /// Not sent: the account's or the tenant's pacing held the call back
    /// ([`pacing`]). Not retried here: the caller continues or defers the work.
    #[error("Google call held back: {0}")]
    Paced(pacing::Pace),
}

impl GoogleError {
    pub fn is_transient(&self) -> bool {
        matches!(self, GoogleError::Transient(_))
    }

    /// 401: the access token was refused (revoked, or expired early). Nothing about the
    /// record: the whole pass stops, and the next one gets a fresh token (or finds the grant
    /// gone).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, GoogleError::Rejected { status: 401, .. })
    }

    /// Whether the error is about the account's pass as a whole (the grant, pacing, Google
    /// being unavailable), not about one record: a record that meets one keeps waiting.
    pub fn is_pass_level(&self) -> bool {
        matches!(
            self,
            GoogleError::Transient(_) | GoogleError::Paced(_) | GoogleError::Reauth(_)
        ) || self.is_unauthorized()
    }

    /// 400: Google refused the request as malformed or not matching (e.g. a page or sync
    /// token sent with other parameters than the call that gave it).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, GoogleError::Rejected { status: 400, .. })
    }

    /// The resource changed since it was read (Calendar 412, People's stale `person.etag`):
    /// re-read it and decide again.
    pub fn is_etag_conflict(&self) -> bool {
        matches!(self, GoogleError::PreconditionFailed(_))
    }
}
