//! One conformance suite for the secrets port, written once and run on every adapter: the
//! embedded secrets (in memory, and on file as the local server keeps them) and Secrets
//! Manager on moto over the real wire. What the product relies on — absent is `None`, a put
//! replaces, a delete is idempotent and a deleted name can be created again at once, names are
//! checked, values come back byte for byte, one name never reads another's value, and a second
//! handle on the same secrets (another instance, a restart) sees what the first wrote — holds
//! on each, so a test on the embedded adapters says what production does.

use secrecy::{ExposeSecret, SecretString};
use shared::secrets::aws::SecretsManager;
use shared::secrets::embedded::EmbeddedSecrets;
use shared::secrets::{Secrets, SecretsError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

type Opened = Arc<dyn Secrets>;
/// Another handle on the same secrets: what a second function instance, or the local server
/// after a restart, opens.
type Reopen = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Opened>>>>;

/// The adapter under test, and how to open it again.
struct Backend {
    secrets: Opened,
    reopen: Reopen,
}

async fn embedded_memory() -> Backend {
    let secrets: Opened = Arc::new(EmbeddedSecrets::in_memory());
    let same = secrets.clone();
    Backend {
        secrets,
        // In memory, the process's one instance is all there is.
        reopen: Box::new(move || {
            let same = same.clone();
            Box::pin(async move { same })
        }),
    }
}

async fn embedded_file() -> Backend {
    let file = std::env::temp_dir()
        .join(crate::world::unique("cgs-secrets"))
        .join("secrets.json");
    let secrets: Opened = Arc::new(EmbeddedSecrets::open(&file).expect("open"));
    Backend {
        secrets,
        reopen: Box::new(move || {
            let file = file.clone();
            Box::pin(
                async move { Arc::new(EmbeddedSecrets::open(&file).expect("reopen")) as Opened },
            )
        }),
    }
}

async fn secrets_manager() -> Backend {
    let client =
        aws_sdk_secretsmanager::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let prefix = format!("{}/", crate::world::unique("stack"));
    // No cache, so every read is the service's answer.
    let secrets: Opened = Arc::new(SecretsManager::new(
        client.clone(),
        prefix.clone(),
        Duration::ZERO,
    ));
    Backend {
        secrets,
        reopen: Box::new(move || {
            let (client, prefix) = (client.clone(), prefix.clone());
            Box::pin(async move {
                Arc::new(SecretsManager::new(client, prefix, Duration::from_secs(60))) as Opened
            })
        }),
    }
}

async fn value(s: &dyn Secrets, name: &str) -> Option<String> {
    s.get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"))
        .map(|v| v.expose_secret().to_owned())
}

// ---- the suite ------------------------------------------------------------------------------

async fn create_read_replace_delete(b: Backend) {
    let s = b.secrets.as_ref();
    let name = "tenants/acme/google-client";
    assert_eq!(value(s, name).await, None, "absent is None, not an error");
    s.put(name, SecretString::from("first")).await.unwrap();
    assert_eq!(value(s, name).await.as_deref(), Some("first"));
    s.put(name, SecretString::from("second")).await.unwrap();
    assert_eq!(
        value(s, name).await.as_deref(),
        Some("second"),
        "a put replaces"
    );
    s.delete(name).await.unwrap();
    assert_eq!(value(s, name).await, None);
    s.delete(name).await.unwrap();
    s.delete("never-written").await.unwrap();
}

/// A tenant that disconnects its Google client and registers one again at once (Secrets
/// Manager keeps a deleted secret for a recovery window unless told otherwise).
async fn a_deleted_name_can_be_created_again_at_once(b: Backend) {
    let s = b.secrets.as_ref();
    let name = "tenants/acme/webhook-signing";
    s.put(name, SecretString::from("old")).await.unwrap();
    s.delete(name).await.unwrap();
    s.put(name, SecretString::from("new")).await.unwrap();
    assert_eq!(value(s, name).await.as_deref(), Some("new"));
}

async fn secret_names_are_validated(b: Backend) {
    let s = b.secrets.as_ref();
    for bad in [
        "",
        "/abs",
        "../up",
        "a b",
        "x\ny",
        "tenants/../operator-key",
    ] {
        assert!(
            matches!(s.get(bad).await, Err(SecretsError::InvalidName(_))),
            "get {bad:?}"
        );
        assert!(
            matches!(
                s.put(bad, SecretString::from("v")).await,
                Err(SecretsError::InvalidName(_))
            ),
            "put {bad:?}"
        );
        assert!(
            matches!(s.delete(bad).await, Err(SecretsError::InvalidName(_))),
            "delete {bad:?}"
        );
    }
}

/// What the product stores: JSON with quotes and newlines, non-ASCII text, a 32-byte key in
/// base64, and a value of some kilobytes.
async fn values_come_back_byte_for_byte(b: Backend) {
    let s = b.secrets.as_ref();
    let values = [
        (
            "tenants/t1/google-client",
            "{\"client_id\":\"1-x.apps.googleusercontent.com\",\n \"client_secret\":\"GOCSPX-\\\"q\\\"\"}"
                .to_owned(),
        ),
        ("tenants/t1/webhook-signing", "Zürich – 東京 ✓".to_owned()),
        (
            "token-key",
            "k1:q3Jm0cN1w8rYV2f7bA9xZ4e5hT6uI0oP1lK2jH3gF4s=".to_owned(),
        ),
        ("big", "0123456789abcdef".repeat(400)),
        ("spaces", "  leading and trailing  ".to_owned()),
    ];
    for (name, v) in &values {
        s.put(name, SecretString::from(v.clone())).await.unwrap();
    }
    for (name, v) in &values {
        assert_eq!(value(s, name).await.as_deref(), Some(v.as_str()), "{name}");
    }
}

/// Names that share a prefix are different secrets: one tenant's client never reads
/// another's, and deleting one leaves the others.
async fn names_are_distinct(b: Backend) {
    let s = b.secrets.as_ref();
    let names = [
        "tenants/t1/google-client",
        "tenants/t1/google-client2",
        "tenants/t10/google-client",
        "tenants/t1/webhook-signing",
    ];
    for n in names {
        s.put(n, SecretString::from(format!("value of {n}")))
            .await
            .unwrap();
    }
    s.delete(names[0]).await.unwrap();
    assert_eq!(value(s, names[0]).await, None);
    for n in &names[1..] {
        assert_eq!(value(s, n).await, Some(format!("value of {n}")), "{n}");
    }
}

/// Another handle on the same secrets sees what this one wrote (and deleted); `forget` drops
/// at most a cached copy, never the secret.
async fn another_handle_sees_the_same_secrets(b: Backend) {
    let s = b.secrets.as_ref();
    s.put("operator-key", SecretString::from("v1"))
        .await
        .unwrap();
    s.put("gone", SecretString::from("x")).await.unwrap();
    s.delete("gone").await.unwrap();
    let other = (b.reopen)().await;
    assert_eq!(
        value(other.as_ref(), "operator-key").await.as_deref(),
        Some("v1")
    );
    assert_eq!(value(other.as_ref(), "gone").await, None);
    other.forget("operator-key").await;
    s.forget("operator-key").await;
    assert_eq!(
        value(other.as_ref(), "operator-key").await.as_deref(),
        Some("v1")
    );
    assert_eq!(value(s, "operator-key").await.as_deref(), Some("v1"));
}

/// Concurrent writers of different names (a deployment's functions seeding and rotating at
/// once): every write lands.
async fn concurrent_puts_all_land(b: Backend) {
    let s = b.secrets.clone();
    let writes = (0..8).map(|i| {
        let s = s.clone();
        async move {
            s.put(
                &format!("tenants/t{i}/google-client"),
                SecretString::from(format!("v{i}")),
            )
            .await
        }
    });
    for r in futures_util::future::join_all(writes).await {
        r.unwrap();
    }
    let other = (b.reopen)().await;
    for i in 0..8 {
        assert_eq!(
            value(other.as_ref(), &format!("tenants/t{i}/google-client")).await,
            Some(format!("v{i}"))
        );
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded_memory { $(#[tokio::test] async fn $case() { super::$case(super::embedded_memory().await).await } )* }
        mod embedded_file { $(#[tokio::test] async fn $case() { super::$case(super::embedded_file().await).await } )* }
        mod secrets_manager { $(#[tokio::test] async fn $case() { super::$case(super::secrets_manager().await).await } )* }
    };
}

conformance!(
    create_read_replace_delete,
    a_deleted_name_can_be_created_again_at_once,
    secret_names_are_validated,
    values_come_back_byte_for_byte,
    names_are_distinct,
    another_handle_sees_the_same_secrets,
    concurrent_puts_all_land,
);
