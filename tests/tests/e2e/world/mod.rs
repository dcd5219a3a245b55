//! The one world every end-to-end test starts from: the Google sandbox, the product on the
//! adapters the test chooses (DynamoDB Local and moto, or the embedded ones), a tenant with its
//! Google client and keys ([`Env`]), and typed helpers for what a CRM, an admin or a browser
//! does with it (`requests`: `env.put_event(user, id, body)`, `env.contact(user, id)`,
//! `env.patch_settings(patch)`, `env.google_token(email, scope)`, …). `apps` builds the
//! product on each set of adapters; `backlog` and `push` are the worlds the progress and push
//! tests share.
#![allow(dead_code)]

mod apps;
pub mod backlog;
pub mod google_client;
pub mod push;
mod requests;

pub use apps::*;
pub use requests::*;

use google_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::app::AppState;
use shared::clock::{ManualClock, SharedClock};
use shared::config::GoogleEndpoints;
use shared::domain::{TenantId, UserId};
use shared::queue::SyncJob;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const CLIENT_ID: &str = "123456789012-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-test-secret-value";
pub const RETURN_URL: &str = "https://crm.example.com/settings/google";

pub struct Env {
    pub api: String,
    pub app: AppState,
    pub sandbox: Sandbox,
    pub sandbox_url: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub tenant: TenantId,
    pub admin: String,
    pub sync: String,
    /// On the embedded adapters: the jobs the product queued, for [`Env::drain_jobs`].
    pub jobs: Option<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<SyncJob>>>,
    /// On the embedded adapters: the store operations made so far.
    pub store_ops: Option<Arc<apps::StoreOps>>,
    /// Google notifications our webhook has answered (any outcome).
    pub notifications: Arc<AtomicUsize>,
}

/// Which adapters the product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Production's: DynamoDB Local, moto's Secrets Manager and SQS FIFO (no worker runs
    /// unless the test runs one).
    Aws,
    /// The local server's: embedded store and secrets, the in-process queue with the local
    /// server's worker loop running every job as it is queued.
    Local,
    /// The embedded adapters with the queue held for the test: [`Env::drain_jobs`] runs
    /// what was queued, as SQS would deliver it (fast, deterministic).
    Embedded,
}

impl Env {
    /// A tenant whose admin registered the Google client and allowed the CRM's return URL.
    pub async fn new() -> Self {
        Self::new_on(Backend::Aws).await
    }

    /// [`Env::new`] on the given adapters.
    pub async fn new_on(backend: Backend) -> Self {
        let env = Self::bare_on(backend).await;
        let (s, v) = env.put_google_client(CLIENT_ID, CLIENT_SECRET).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = env
            .patch_settings(json!({"allowed_return_urls": [RETURN_URL]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        env
    }

    /// A tenant with nothing configured.
    pub async fn bare() -> Self {
        Self::bare_on(Backend::Aws).await
    }

    /// [`Env::bare`] on the given adapters.
    pub async fn bare_on(backend: Backend) -> Self {
        // The product's webhook here is plain http on loopback (Google would want HTTPS).
        let sandbox = Sandbox::new(SandboxConfig {
            allow_http_push: true,
            ..SandboxConfig::default()
        })
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
        let (listener, api) = apps::bind().await;
        sandbox.sandbox.add_client(
            CLIENT_ID,
            CLIENT_SECRET,
            &[&format!("{api}/oauth/callback")],
        );
        sandbox
            .sandbox
            .add_user("alice@example.com", "Alice Example");
        sandbox.sandbox.add_user("bob@example.com", "Bob Example");
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let google = GoogleEndpoints::single_host(&sandbox.base_url);
        let mut store_ops = None;
        let (app, jobs) = match backend {
            Backend::Aws => (apps::aws_app_with(&api, google, shared_clock).await, None),
            Backend::Local => (apps::local_app_with(&api, google, shared_clock).await, None),
            Backend::Embedded => {
                let (app, jobs, ops) = apps::embedded_app_with(&api, google, shared_clock).await;
                store_ops = Some(ops);
                (app, Some(tokio::sync::Mutex::new(jobs)))
            }
        };
        let notifications = Arc::new(AtomicUsize::new(0));
        let answered = notifications.clone();
        let router = local_server::router(app.clone()).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let answered = answered.clone();
                async move {
                    let push = req.uri().path() == "/webhooks/google/calendar";
                    let response = next.run(req).await;
                    if push {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    response
                }
            },
        ));
        apps::serve_on(listener, router);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let created: Value = http
            .post(format!("{api}/v1/tenants"))
            .bearer_auth(apps::OPERATOR_KEY)
            .json(&json!({"name": "Acme"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = created["admin_key"]["key_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let tenant = TenantId::parse(created["tenant"]["id"].as_str().unwrap()).unwrap();
        let sync: Value = http
            .post(format!("{api}/v1/admin/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "crm", "scope": "sync"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            api,
            app,
            sandbox_url: sandbox.base_url.clone(),
            sandbox: sandbox.sandbox,
            clock,
            http,
            tenant,
            admin,
            sync: sync["key_secret"].as_str().unwrap().to_owned(),
            jobs,
            store_ops,
            notifications,
        }
    }

    /// The admin sets the tenant's defaults (`{}`: left as they are).
    pub async fn set_defaults(&self, defaults: Value) {
        if defaults == json!({}) {
            return;
        }
        let (s, v) = self.patch_settings(json!({ "defaults": defaults })).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// The CRM pauses or resumes a user's sync; whether it could (an account that lost its
    /// grant while paused cannot resume until it reconnects: 409).
    pub async fn set_paused(&self, user: &str, paused: bool) -> bool {
        let (s, v) = self.patch_account(user, json!({ "paused": paused })).await;
        assert!(s.is_success() || s == StatusCode::CONFLICT, "{v}");
        s.is_success()
    }

    /// The user revokes every app's access in their Google account and goes on using
    /// Google: a fresh token of the user's own for `scope`.
    pub fn revoke_grants(&self, email: &str, scope: &str) -> secrecy::SecretString {
        self.sandbox.revoke_user_grants(email);
        self.google_token(email, scope)
    }

    /// On the embedded adapters: runs the jobs the product queued (and those they queue in
    /// turn) as the worker would, one after the other, until none is left or `max` ran.
    /// Returns how many ran.
    pub async fn drain_jobs(&self, max: usize) -> usize {
        let jobs = self
            .jobs
            .as_ref()
            .expect("drain_jobs needs Backend::Embedded");
        let mut ran = 0;
        while ran < max {
            let Ok(job) = jobs.lock().await.try_recv() else {
                break;
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            sync_worker::run(&self.app, &job, deadline)
                .await
                .unwrap_or_else(|e| panic!("job {job:?}: {e}"));
            ran += 1;
        }
        ran
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.api),
            )
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Another tenant on the same deployment, made by the operator: its id and first admin
    /// key (what tests that try to cross the tenant boundary start from).
    pub async fn other_tenant(&self, name: &str) -> (String, String) {
        let resp = self
            .http
            .post(format!("{}/v1/tenants", self.api))
            .bearer_auth(apps::OPERATOR_KEY)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let v: Value = resp.json().await.unwrap();
        (
            v["tenant"]["id"].as_str().unwrap().to_owned(),
            v["admin_key"]["key_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A second tenant on the same deployment and a sync-scoped API key of its own: its CRM,
    /// for tests that try to cross the tenant boundary.
    pub async fn other_tenant_sync_key(&self, name: &str) -> String {
        let (_, admin) = self.other_tenant(name).await;
        let (s, key) = self
            .call(
                "POST",
                "/v1/admin/api-keys",
                &admin,
                Some(json!({"name": "other sync", "scope": "sync"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        key["key_secret"].as_str().unwrap().to_owned()
    }

    /// Asks for a connect link.
    pub async fn link(&self, user: &str, products: &[&str], hint: &str) -> String {
        self.connect_link(
            user,
            json!({"products": products, "return_url": RETURN_URL, "login_hint": hint}),
        )
        .await
    }

    /// Google's consent answered by the simulated user; returns where Google sends the browser.
    pub async fn consent(&self, link: &str, extra: &str) -> String {
        let resp = self
            .http
            .get(format!("{link}{extra}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::FOUND,
            "{}",
            resp.text().await.unwrap()
        );
        resp.headers()["location"].to_str().unwrap().to_owned()
    }

    /// The browser arriving at our callback: the status and where we send it.
    pub async fn callback(&self, location: &str) -> (StatusCode, Option<String>, String) {
        let resp = self.http.get(location).send().await.unwrap();
        let status = resp.status();
        let to = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, to, resp.text().await.unwrap())
    }

    /// The whole connect flow with the user approving; returns the CRM return URL's query.
    pub async fn connect(
        &self,
        user: &str,
        products: &[&str],
        hint: &str,
        extra: &str,
    ) -> HashMap<String, String> {
        let link = self.link(user, products, hint).await;
        let back = self
            .consent(&link, &format!("&sandbox_auto=approve{extra}"))
            .await;
        assert!(
            back.starts_with(&format!("{}/oauth/callback?", self.api)),
            "{back}"
        );
        let (status, to, body) = self.callback(&back).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        query_of(&to.expect("redirect to the CRM"))
    }

    pub async fn account(&self, user: &str) -> (StatusCode, Value) {
        self.call("GET", &format!("/v1/users/{user}/google"), &self.sync, None)
            .await
    }

    pub async fn stored_account(&self, user: &str) -> shared::domain::Account {
        self.app
            .store
            .get_account(&self.tenant, &UserId::parse(user).unwrap())
            .await
            .unwrap()
            .unwrap()
            .value
    }

    /// The tenant's whole change feed, page by page.
    pub async fn changes(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = "/v1/changes?limit=500".to_owned();
        loop {
            let (s, v) = self.call("GET", &path, &self.sync, None).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let items = v["items"].as_array().unwrap();
            out.extend(items.iter().cloned());
            match v["next_cursor"].as_str() {
                Some(next) if !items.is_empty() => {
                    path = format!("/v1/changes?limit=500&after={next}");
                }
                _ => return out,
            }
        }
    }
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let url = url::Url::parse(url).unwrap();
    assert!(url.as_str().starts_with(RETURN_URL), "{url}");
    url.query_pairs().into_owned().collect()
}

impl Env {
    /// The user's stored refresh and access tokens, opened with the deployment's key (what
    /// a test needs to check that neither appears anywhere in clear).
    pub async fn stored_tokens(
        &self,
        user: &str,
    ) -> (secrecy::SecretString, Option<secrecy::SecretString>) {
        let account = self.stored_account(user).await;
        let cipher = shared::crypto::TokenCipher::load(self.app.secrets.as_ref())
            .await
            .unwrap();
        let open = |sealed: &str| cipher.open(sealed, &self.tenant, &account.id).unwrap();
        (
            open(account.refresh_token_ciphertext.as_deref().unwrap()),
            account.access_token_ciphertext.as_deref().map(open),
        )
    }

    /// One worker job for `user`, as SQS would deliver it.
    pub async fn run_job(&self, user: &str, reason: shared::queue::SyncReason) {
        let job = shared::queue::SyncJob {
            tenant: self.tenant.clone(),
            user: UserId::parse(user).unwrap(),
            calendar: None,
            reason,
            confirm_mass_deletion: false,
            record: None,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        sync_worker::run(&self.app, &job, deadline).await.unwrap();
    }

    /// Every event of the primary calendar behind `token`, as Google holds them.
    pub async fn google_events(
        &self,
        token: &secrecy::SecretString,
    ) -> Vec<shared::google::calendar::Event> {
        let mut out = Vec::new();
        let mut params = shared::google::calendar::ListEvents {
            max_results: Some(2500),
            ..Default::default()
        };
        loop {
            let page = self
                .app
                .google
                .list_events(token, "primary", &params)
                .await
                .unwrap();
            out.extend(page.items);
            match page.next_page_token {
                Some(p) => params.page_token = Some(p),
                None => return out,
            }
        }
    }
}
