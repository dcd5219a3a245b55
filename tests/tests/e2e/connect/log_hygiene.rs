//! No token, secret or API key reaches a log line: the whole connect and token lifecycle runs
//! with every log line captured by the process's global subscriber. The other tests of this
//! binary share its process (and log on their own threads), so the lifecycle runs in a process
//! of its own: this test binary, started to run just [`captured_in_a_process_of_its_own`]. (A
//! thread-scoped subscriber is not enough: a log call site first reached on another thread,
//! while only the no-op global subscriber existed, can keep its "never" interest and log
//! nothing into the capture — seen here once in three runs.)

use crate::world::{Env, CLIENT_SECRET};
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::Arc;

/// A log sink for the process's global subscriber (everything the product does in the child
/// process, on any thread, logs here).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn no_token_secret_or_key_reaches_the_logs() {
    crate::world::run_in_own_process(
        "connect::log_hygiene::captured_in_a_process_of_its_own",
        &[],
    );
}

/// The lifecycle itself, with the process's global subscriber capturing every log line.
#[tokio::test]
#[ignore = "run by no_token_secret_or_key_reaches_the_logs, in a process of its own"]
async fn captured_in_a_process_of_its_own() {
    let sink = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(sink.clone())
        .with_max_level(tracing::Level::DEBUG)
        .json()
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this process");

    let env = Env::new().await;
    let (_, settings) = env
        .patch_settings(json!({"webhook_url": "https://crm.example.com/hook"}))
        .await;
    let webhook_secret = settings["webhook_signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    env.connect("u1", &["calendar", "gmail"], "alice@example.com", "")
        .await;
    let (_, gmail) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    let (refresh, _) = env.stored_tokens("u1").await;
    // Failures log too: a refresh that Google refuses, a forged key, a bad callback.
    env.sandbox.revoke_user_grants("alice@example.com");
    env.clock.advance(time::Duration::hours(2));
    env.call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    env.call(
        "GET",
        "/v1/admin/api-keys",
        &format!("{}x", env.admin),
        None,
    )
    .await;
    env.callback(&format!(
        "{}/oauth/callback?state=forged&code=4/0secretcode",
        env.api
    ))
    .await;
    env.connect("u1", &["calendar", "gmail"], "alice@example.com", "")
        .await;
    // The hosted settings: a link, the session it opens, a refused and an accepted post.
    let (_, link) = env
        .call(
            "POST",
            "/v1/users/u1/settings-link",
            &env.sync,
            Some(json!({})),
        )
        .await;
    let link = link["url"].as_str().unwrap().to_owned();
    let opened = env.http.get(&link).send().await.unwrap();
    let session = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = opened.text().await.unwrap();
    let key = "name=\"csrf\" value=\"";
    let at = page.find(key).unwrap() + key.len();
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
    for token in ["wrong", csrf.as_str()] {
        env.http
            .post(format!("{}/settings", env.api))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}&direction=two_way"))
            .send()
            .await
            .unwrap();
    }
    env.call("DELETE", "/v1/users/u1/google", &env.sync, None)
        .await;

    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("Google account connected"),
        "the capture works"
    );
    assert!(logs.contains("settings saved on the settings page"));
    assert!(logs.contains("settings post refused"));
    let secrets = [
        ("client secret", CLIENT_SECRET.to_owned()),
        ("operator key", crate::world::OPERATOR_KEY.to_owned()),
        ("admin key", env.admin.clone()),
        ("admin key secret", env.admin[31..].to_owned()),
        ("sync key", env.sync.clone()),
        ("webhook secret", webhook_secret),
        (
            "gmail access token",
            gmail["access_token"].as_str().unwrap().to_owned(),
        ),
        ("xoauth2", gmail["xoauth2"].as_str().unwrap().to_owned()),
        ("refresh token", refresh.expose_secret().to_owned()),
        ("authorization code", "4/0secretcode".to_owned()),
        (
            "settings link",
            link.split("link=").nth(1).unwrap().to_owned(),
        ),
        (
            "settings session",
            session.split_once('=').unwrap().1.to_owned(),
        ),
        ("settings CSRF token", csrf),
    ];
    for (what, value) in secrets {
        assert!(!logs.contains(&value), "{what} appears in the logs");
    }
}
