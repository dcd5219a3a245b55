//! The world of the Google client tests: the sandbox alone (no product around it), the
//! product's Google client pointed at it, and a token of alice's for one scope. Every request
//! the client makes is in the sandbox's log.

use google_sandbox::{LoggedRequest, RunningSandbox, Sandbox, SandboxConfig};
use secrecy::SecretString;
use shared::config::GoogleEndpoints;
use shared::google::retry::{with_policy, RetryPolicy};
use shared::google::Google;
use std::future::Future;

pub const ALICE: &str = "alice@example.com";
/// The OAuth client the tokens are issued to.
pub const CLIENT: &str = "test-client.apps.googleusercontent.com";

pub struct ClientEnv {
    pub running: RunningSandbox,
    pub google: Google,
    /// Alice's token for the scope the world was made with.
    pub token: SecretString,
}

impl ClientEnv {
    /// The Calendar client's world (push to plain http on loopback allowed, for the watch
    /// tests).
    pub async fn calendar() -> Self {
        Self::new(
            SandboxConfig {
                allow_http_push: true,
                ..SandboxConfig::default()
            },
            super::CALENDAR_SCOPE,
        )
        .await
    }

    /// The People client's world.
    pub async fn people() -> Self {
        Self::new(SandboxConfig::default(), super::CONTACTS_SCOPE).await
    }

    async fn new(config: SandboxConfig, scope: &str) -> Self {
        let sandbox = Sandbox::new(config);
        sandbox.add_user(ALICE, "Alice");
        let running = sandbox
            .serve("127.0.0.1:0".parse().expect("loopback address"))
            .await
            .expect("sandbox serves");
        let token = running.sandbox.issue_access_token(CLIENT, ALICE, &[scope]);
        let google = Google::new(
            GoogleEndpoints::single_host(&running.base_url),
            Default::default(),
        );
        Self {
            running,
            google,
            token: SecretString::from(token),
        }
    }

    pub fn log(&self) -> Vec<LoggedRequest> {
        self.running.sandbox.request_log()
    }

    /// How many `method` requests to exactly `path` the client made.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.log()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
}

impl Drop for ClientEnv {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

/// Runs a test body under the test retry policy (1–4 ms backoff, 5 attempts).
pub async fn fast<F: Future>(body: F) -> F::Output {
    with_policy(RetryPolicy::for_tests(5), body).await
}
