//! A faithful local Google: OAuth2, Calendar v3 (with push and batch) and People v1 on one
//! base URL with Google's real paths, plus fault injection and a control API under
//! `/_sandbox/`. Built for tests and for the local server's sandbox mode.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use google_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default());
//! sandbox.add_client("cid", "secret", &["http://127.0.0.1:8080/cb"]);
//! sandbox.add_user("alice@example.com", "Alice");
//! let running = sandbox.serve(([127, 0, 0, 1], 0).into()).await?;
//! println!("{}", running.base_url);
//! # Ok(()) }
//! ```

mod auth;
mod batch;
mod calendar;
mod clock;
mod control;
mod discovery;
mod errors;
mod faults;
mod fields;
mod ids;
mod oauth;
mod paging;
mod params;
mod people;
mod push;
mod scopes;
mod state;
mod ui;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;

pub use faults::{FaultKind, FaultSpec};
pub use state::{ClientStatus, LoggedRequest, PushDelivery};

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Lifetime of access tokens (Google: 3600 s).
    pub access_token_ttl_secs: i64,
    /// Lifetime of authorization codes (Google: 10 min).
    pub auth_code_ttl_secs: i64,
    /// People sync tokens expire this long after the full sync that began their chain, however
    /// often it was followed incrementally since (Google: "7 days after the full sync").
    pub people_sync_token_ttl_secs: i64,
    /// Default watch-channel lifetime when the request sets no `params.ttl` (Google: 7 days).
    pub channel_default_ttl_secs: i64,
    /// Push delivery: attempts per notification (first try included).
    pub push_max_attempts: u32,
    /// Push delivery: first retry delay, doubled on each further retry.
    pub push_retry_base_ms: u64,
    /// Horizon for expanding open-ended recurring events.
    pub recurrence_horizon_days: i64,
    /// Accept plain `http://` watch addresses (the local server, tests on loopback). Google
    /// requires HTTPS: off by default, an `http` address is refused with 400
    /// `push.webhookUrlNotHttps`.
    pub allow_http_push: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            access_token_ttl_secs: 3600,
            auth_code_ttl_secs: 600,
            people_sync_token_ttl_secs: 7 * 24 * 3600,
            channel_default_ttl_secs: 7 * 24 * 3600,
            push_max_attempts: 4,
            push_retry_base_ms: 50,
            recurrence_horizon_days: 730,
            allow_http_push: false,
        }
    }
}

pub(crate) struct Inner {
    pub config: SandboxConfig,
    pub state: Mutex<state::State>,
    pub clock: clock::Clock,
    pub http: reqwest::Client,
}

/// The sandbox: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

/// A sandbox serving HTTP on a bound address.
pub struct RunningSandbox {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    pub addr: SocketAddr,
    pub sandbox: Sandbox,
    pub handle: tokio::task::JoinHandle<()>,
}

impl RunningSandbox {
    /// Stops serving.
    pub fn shutdown(&self) {
        self.handle.abort();
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Sandbox {
            inner: Arc::new(Inner {
                state: Mutex::new(state::State::new(config.access_token_ttl_secs)),
                config,
                clock: clock::Clock::default(),
                http,
            }),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, state::State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// All routes (Google surfaces, control API and UI), for mounting.
    pub fn router(&self) -> Router {
        let google = Router::new()
            .merge(oauth::routes())
            .merge(calendar::routes())
            .merge(people::routes())
            .merge(batch::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                faults::log_and_faults,
            ));
        google
            .merge(control::routes())
            .merge(ui::routes())
            .with_state(self.clone())
    }

    /// Binds `addr` (use `127.0.0.1:0` in tests), serves in a background task.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let handle = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "google sandbox server stopped");
            }
        });
        Ok(RunningSandbox {
            base_url: format!("http://{addr}"),
            addr,
            sandbox: self,
            handle,
        })
    }

    /// Registers (or replaces) an OAuth client.
    pub fn add_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str]) {
        let client = state::OAuthClient {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            status: state::ClientStatus::Enabled,
        };
        self.state().clients.insert(client_id.to_string(), client);
    }

    /// Disables, deletes or re-enables an OAuth client (its owner's Cloud console action):
    /// the token endpoint then answers `disabled_client` or `deleted_client`. False if the
    /// client is unknown.
    pub fn set_client_status(&self, client_id: &str, status: state::ClientStatus) -> bool {
        match self.state().clients.get_mut(client_id) {
            Some(c) => {
                c.status = status;
                true
            }
            None => false,
        }
    }

    /// Marks a user's e-mail address as verified or not (`email_verified` in ID tokens and
    /// userinfo).
    pub fn set_email_verified(&self, email: &str, verified: bool) {
        if let Some(u) = self.state().users.get_mut(email) {
            u.email_verified = verified;
        }
    }

    /// Creates a user with a primary calendar (id = email) and an empty address book.
    pub fn add_user(&self, email: &str, name: &str) {
        let now = self.now();
        let mut st = self.state();
        if st.users.contains_key(email) {
            return;
        }
        st.users.insert(
            email.to_string(),
            state::User {
                email: email.to_string(),
                name: name.to_string(),
                sub: ids::digits(21),
                email_verified: true,
            },
        );
        calendar::create_calendar(&mut st, email, email, email, "UTC", now);
        people::create_address_book(&mut st, email, now);
    }

    /// Adds a secondary calendar owned by `owner`; returns its id.
    pub fn add_calendar(&self, owner: &str, summary: &str, time_zone: &str) -> String {
        let now = self.now();
        let id = format!("{}@group.calendar.google.com", ids::base32hex(26));
        let mut st = self.state();
        calendar::create_calendar(&mut st, &id, owner, summary, time_zone, now);
        id
    }

    /// Deletes a secondary calendar, as its owner would (`calendars.delete`): its events go
    /// with it, and reading it answers 404 `notFound`.
    pub fn delete_calendar(&self, calendar_id: &str) {
        self.state().calendars.remove(calendar_id);
    }

    /// People's write-propagation delay ("Writes may have a propagation delay of several
    /// minutes for sync requests", `people.connections.list`): from now on a write shows in
    /// `connections.list` (full and incremental) only `secs` after it was made, on the
    /// sandbox clock; `get` and `getBatchGet` show it at once. 0 turns it off.
    pub fn set_people_propagation_delay(&self, secs: i64) {
        self.state().people_propagation_delay_secs = secs.max(0);
    }

    /// Makes `events.watch` on a calendar answer as Google does for calendars that do not
    /// support push (holiday and other subscribed calendars): 400
    /// `pushNotSupportedForRequestedResource`. `true` makes it watchable again.
    pub fn set_push_supported(&self, calendar_id: &str, supported: bool) {
        if let Some(cal) = self.state().calendars.get_mut(calendar_id) {
            cal.push_supported = supported;
        }
    }

    /// Sets the time zone of a calendar (e.g. a user's primary).
    pub fn set_calendar_time_zone(&self, calendar_id: &str, time_zone: &str) {
        if let Some(cal) = self.state().calendars.get_mut(calendar_id) {
            cal.time_zone = time_zone.to_string();
        }
    }

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state().log.clone()
    }

    /// Every push delivery attempt so far, with the receiver's answer.
    pub fn push_log(&self) -> Vec<state::PushDelivery> {
        self.state().push_log.clone()
    }

    pub fn clear_request_log(&self) {
        self.state().log.clear();
    }

    /// Injects a fault; returns its id.
    pub fn inject_fault(&self, spec: FaultSpec) -> u64 {
        faults::inject(&mut self.state(), spec)
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Moves the sandbox clock forward (token expiry, `updated`, channel expiry).
    pub fn advance_clock(&self, secs: i64) {
        self.inner.clock.advance(secs);
    }

    /// The sandbox clock, RFC 3339.
    pub fn now_rfc3339(&self) -> String {
        clock::rfc3339_millis(self.now())
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, secs: i64) {
        self.state().access_token_ttl_secs = secs;
    }

    /// Mints an access token directly (no consent round trip) for tests that only need a
    /// bearer token; scopes are full URLs or the short names `email` / `profile` / `openid`.
    pub fn issue_access_token(&self, client_id: &str, email: &str, scopes: &[&str]) -> String {
        let scopes: std::collections::BTreeSet<String> =
            scopes.iter().map(|s| crate::scopes::normalize(s)).collect();
        let mut st = self.state();
        oauth::issue_access(self, &mut st, email, client_id, &scopes).0
    }

    /// Revokes every grant of `email` (all clients): its access and refresh tokens die.
    pub fn revoke_user_grants(&self, email: &str) {
        oauth::revoke_user(&mut self.state(), email, None);
    }

    /// Invalidates every Calendar and People sync token of `email` (→ 410 / EXPIRED_SYNC_TOKEN).
    pub fn invalidate_sync_tokens(&self, email: &str) {
        let mut st = self.state();
        for cal in st.calendars.values_mut().filter(|c| c.owner == email) {
            cal.sync_epoch += 1;
        }
        if let Some(book) = st.address_books.get_mut(email) {
            book.sync_epoch += 1;
        }
    }

    /// Google links `user`'s contact `resource_name` to a profile (the person's Google
    /// profile, or with `kind` `DOMAIN_PROFILE` a Workspace directory entry), as it does when
    /// the contact gets a verified e-mail or phone of that person: reads whose `sources`
    /// include PROFILE (Google's default) merge the profile's `fields` (`names`,
    /// `emailAddresses`, `organizations`, ...) in. The contact itself is not changed. False
    /// when there is no such live contact.
    pub fn link_profile(
        &self,
        user: &str,
        resource_name: &str,
        kind: &str,
        fields: serde_json::Value,
    ) -> bool {
        let now = self.now();
        let mut st = self.state();
        let Some(book) = st.address_books.get_mut(user) else {
            return false;
        };
        let Some(p) = book.persons.get_mut(resource_name).filter(|p| !p.deleted) else {
            return false;
        };
        p.profile = Some(state::LinkedProfile {
            id: ids::digits(21),
            kind: kind.to_string(),
            fields: fields.as_object().cloned().unwrap_or_default(),
            updated: now,
        });
        true
    }

    /// Google gives `user`'s contact a new resource name (what linking a contact to a profile
    /// does): incremental lists report it under the new name with the old one in
    /// `metadata.previousResourceNames`; `people.get` / `batchGet` of the old name answer the
    /// person under its new name. Returns the new name.
    pub fn rename_contact(&self, user: &str, resource_name: &str) -> Option<String> {
        let now = self.now();
        let mut st = self.state();
        let book = st.address_books.get_mut(user)?;
        let mut p = book.persons.remove(resource_name).filter(|p| !p.deleted)?;
        let (new_name, _) = people::model::new_ids();
        p.previous.push(resource_name.to_string());
        p.resource_name = new_name.clone();
        book.persons.insert(new_name.clone(), p);
        people::touch(book, &new_name, now);
        Some(new_name)
    }

    /// Forgets everything (clients, users, data, channels, faults, log, clock offset).
    pub fn reset(&self) {
        let mut st = self.state();
        let ttl = self.inner.config.access_token_ttl_secs;
        *st = state::State::new(ttl);
        drop(st);
        self.inner.clock.reset();
    }
}
