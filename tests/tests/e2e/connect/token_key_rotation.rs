//! Rotating the token-encryption key (review finding 21): ciphertexts name their key, old
//! ones open with the old key, and an account's refresh token is re-sealed with the current
//! key at its next refresh, after which the old key can be retired. Embedded adapters.

use crate::world::{Backend, Env};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use shared::secrets::names::TOKEN_KEY;

#[tokio::test]
async fn a_new_key_takes_over_at_the_next_refresh_and_the_old_one_retires() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["gmail"], "alice@example.com", "").await;
    let before = env.stored_account("u1").await;
    assert!(before
        .refresh_token_ciphertext
        .as_deref()
        .unwrap()
        .starts_with("v1.k1."));
    let (refresh, _) = env.stored_tokens("u1").await;

    // Step 1 and 2 of the procedure: add k2, then make it current.
    let old: serde_json::Value = serde_json::from_str(
        env.app
            .secrets
            .get(TOKEN_KEY)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
    )
    .unwrap();
    let k1 = old["k1"].as_str().unwrap().to_owned();
    let k2 = shared::crypto::random_token(32);
    let put = |value: serde_json::Value| {
        let secrets = env.app.secrets.clone();
        async move {
            secrets
                .put(TOKEN_KEY, SecretString::from(value.to_string()))
                .await
                .unwrap()
        }
    };
    put(serde_json::json!({"current": "k2", "k1": k1, "k2": k2})).await;

    // The cached access token (sealed with k1) still opens; at the next refresh the refresh
    // token is re-sealed with k2 (the same token: Google sent no new one).
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.clock.advance(time::Duration::hours(2));
    env.sandbox.advance_clock(7200);
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = env.stored_account("u1").await;
    let sealed = after.refresh_token_ciphertext.as_deref().unwrap();
    assert!(sealed.starts_with("v1.k2."), "{sealed}");
    assert!(after
        .access_token_ciphertext
        .as_deref()
        .unwrap()
        .starts_with("v1.k2."));
    assert_eq!(
        env.stored_tokens("u1").await.0.expose_secret(),
        refresh.expose_secret()
    );

    // Step 3: k1 retired; the account goes on working.
    put(serde_json::json!({"current": "k2", "k2": k2})).await;
    env.clock.advance(time::Duration::hours(2));
    env.sandbox.advance_clock(7200);
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
