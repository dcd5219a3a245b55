//! Test harness: a sandbox on 127.0.0.1:0, an HTTP client, OAuth helpers, and a recorder
//! that validates every successful JSON response against the discovery documents.

use google_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-secret";
pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const CAL: &str = "https://www.googleapis.com/auth/calendar";
pub const CONTACTS: &str = "https://www.googleapis.com/auth/contacts";

pub struct TestApp {
    pub base: String,
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub running: RunningSandbox,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(SandboxConfig {
        push_retry_base_ms: 20,
        // The tests' receivers are plain http on loopback.
        allow_http_push: true,
        ..SandboxConfig::default()
    })
    .await
}

pub async fn spawn_with(config: SandboxConfig) -> TestApp {
    let sandbox = Sandbox::new(config);
    sandbox.add_client(CLIENT_ID, CLIENT_SECRET, &[REDIRECT]);
    sandbox.add_user(ALICE, "Alice Anders");
    sandbox.add_user(BOB, "Bob Berg");
    let running = sandbox
        .clone()
        .serve(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind sandbox");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    TestApp {
        base: running.base_url.clone(),
        sandbox,
        http,
        running,
    }
}

/// Reads a query parameter from a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Authorization URL with the given extra query.
    pub fn auth_url(&self, scope: &str, extra: &str) -> String {
        format!(
            "{}/o/oauth2/v2/auth?client_id={}&redirect_uri={}&response_type=code&scope={}&state=xyz{}",
            self.base,
            CLIENT_ID,
            google_sandbox_encode(REDIRECT),
            google_sandbox_encode(scope),
            extra
        )
    }

    /// One-call approval: returns the authorization code.
    pub async fn code(&self, user: &str, scope: &str, extra: &str) -> String {
        let url = self.auth_url(
            scope,
            &format!("&login_hint={user}&sandbox_auto=approve{extra}"),
        );
        let resp = self.http.get(url).send().await.expect("auth");
        assert_eq!(resp.status(), StatusCode::FOUND, "auth endpoint redirects");
        let loc = resp.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
        query_param(&loc, "code").expect("code")
    }

    pub async fn exchange(&self, code: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ];
        form.extend_from_slice(extra);
        let resp = self
            .http
            .post(self.url("/token"))
            .form(&form)
            .send()
            .await
            .expect("token");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Full grant (offline): returns the token response.
    pub async fn grant(&self, user: &str, scope: &str) -> Value {
        let code = self.code(user, scope, "&access_type=offline").await;
        let (status, body) = self.exchange(&code, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// An access token for `user` with `scope` (space separated).
    pub async fn token(&self, user: &str, scope: &str) -> String {
        let body = self.grant(user, scope).await;
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn token_all(&self, user: &str) -> String {
        self.token(user, &format!("openid email profile {CAL} {CONTACTS}"))
            .await
    }

    /// A page of the sandbox's UI (`/_sandbox/ui…`), as HTML.
    pub async fn page(&self, path: &str) -> String {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        resp.text().await.expect("an HTML page")
    }

    /// Submits a form of the sandbox's UI, as a browser would; the answer's status.
    pub async fn submit(&self, path: &str, form: &[(&str, &str)]) -> StatusCode {
        let resp = self.http.post(self.url(path)).form(form).send().await;
        resp.expect("request").status()
    }

    /// A raw API call: status, headers, JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let hdrs = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, hdrs, value)
    }

    /// An API call whose successful JSON response is validated against `method_id`'s
    /// response schema in the discovery documents.
    pub async fn api(
        &self,
        method_id: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.call(method, path, token, body, &[]).await;
        record(method_id, status, &value);
        (status, value)
    }

    /// Like `api`, asserting 200 and returning the body.
    pub async fn ok(
        &self,
        method_id: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Value {
        let (status, value) = self.api(method_id, method, path, token, body).await;
        assert_eq!(status, StatusCode::OK, "{method_id} {path}: {value}");
        value
    }
}

/// Validates a successful JSON body against the discovery documents.
pub fn record(method_id: &str, status: StatusCode, value: &Value) {
    if !status.is_success() || value.is_null() {
        return;
    }
    let errors = crate::schema::discovery().validate_response(method_id, value);
    assert!(
        errors.is_empty(),
        "{method_id} response does not match the discovery schema:\n{}\n{value:#}",
        errors.join("\n")
    );
    if let Ok(mut rec) = crate::schema::recorded().lock() {
        *rec.entry(method_id.to_string()).or_default() += 1;
    }
}

pub fn google_sandbox_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Calendar error reason (`error.errors[0].reason`).
pub fn reason(v: &Value) -> &str {
    v["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}

/// Polls `cond` every 10 ms until it holds or `ms` elapse.
pub async fn eventually<F: FnMut() -> bool>(ms: u64, mut cond: F) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
