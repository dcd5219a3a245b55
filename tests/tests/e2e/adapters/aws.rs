//! What only the AWS adapters do, against moto server over the real wire: Secrets Manager's
//! deployment prefix and cache, SQS FIFO's message groups and deduplication attributes. What
//! every adapter of a port does is in `secrets_conformance` and `queue_conformance`.

use secrecy::{ExposeSecret, SecretString};
use shared::domain::{TenantId, UserId};
use shared::queue::sqs::SqsQueue;
use shared::queue::{dedup_id, Message, Queue, SyncJob, SyncReason};
use shared::secrets::aws::SecretsManager;
use shared::secrets::Secrets;
use std::collections::HashMap;
use std::time::Duration;

async fn secrets(ttl: Duration) -> (SecretsManager, aws_sdk_secretsmanager::Client, String) {
    let client =
        aws_sdk_secretsmanager::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let prefix = format!("{}/", crate::world::unique("stack"));
    (
        SecretsManager::new(client.clone(), prefix.clone(), ttl),
        client,
        prefix,
    )
}

#[tokio::test]
async fn secrets_create_read_replace_delete() {
    let (s, raw, prefix) = secrets(Duration::ZERO).await;
    assert!(s.get("tenants/acme/google-client").await.unwrap().is_none());
    s.put("tenants/acme/google-client", SecretString::from("first"))
        .await
        .unwrap();
    assert_eq!(
        s.get("tenants/acme/google-client")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "first"
    );
    s.put("tenants/acme/google-client", SecretString::from("second"))
        .await
        .unwrap();
    assert_eq!(
        s.get("tenants/acme/google-client")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "second"
    );
    // Stored under the deployment's prefix, as the IAM policy expects.
    let stored = raw
        .get_secret_value()
        .secret_id(format!("{prefix}tenants/acme/google-client"))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string(), Some("second"));
    s.delete("tenants/acme/google-client").await.unwrap();
    assert!(s.get("tenants/acme/google-client").await.unwrap().is_none());
    s.delete("tenants/acme/google-client").await.unwrap();
}

#[tokio::test]
async fn secrets_are_cached_for_the_ttl() {
    let (s, raw, prefix) = secrets(Duration::from_secs(300)).await;
    s.put("operator-key", SecretString::from("v1"))
        .await
        .unwrap();
    assert_eq!(
        s.get("operator-key")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "v1"
    );
    // Changed behind the adapter's back: the cached value is served until the TTL passes.
    raw.put_secret_value()
        .secret_id(format!("{prefix}operator-key"))
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.get("operator-key")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "v1"
    );
    let fresh = SecretsManager::new(raw.clone(), prefix, Duration::ZERO);
    assert_eq!(
        fresh
            .get("operator-key")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "v2"
    );
}

fn job(tenant: &str, user: &str) -> SyncJob {
    SyncJob {
        tenant: TenantId::parse(tenant).unwrap(),
        user: UserId::parse(user).unwrap(),
        calendar: None,
        reason: SyncReason::Scheduled,
        confirm_mass_deletion: false,
        record: None,
    }
}

#[tokio::test]
async fn sqs_fifo_groups_by_account_in_batches() {
    let client = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let url = crate::world::fresh_fifo_queue(&client).await;
    let queue = SqsQueue::new(client.clone(), &url);
    let messages: Vec<Message> = (0..23)
        .map(|i| {
            let j = job("acme", &format!("user{}", i % 5));
            Message {
                dedup_id: dedup_id(&[&j.group_id(), &i.to_string()]),
                job: j,
            }
        })
        .collect();
    queue.send(messages.clone()).await.unwrap();

    let received = crate::world::sqs_take_all(&client, &url).await;
    assert_eq!(received.len(), 23);
    let mut per_group: HashMap<String, Vec<String>> = HashMap::new();
    for m in &received {
        let body: SyncJob = serde_json::from_str(m.body().unwrap()).unwrap();
        let attrs = m.attributes().unwrap();
        let group = attrs
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .unwrap();
        assert_eq!(group, &body.group_id());
        let dedup = attrs
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId)
            .unwrap();
        per_group
            .entry(group.clone())
            .or_default()
            .push(dedup.clone());
    }
    assert_eq!(per_group.len(), 5);
    // Within a group, FIFO order is kept.
    for (group, dedups) in per_group {
        let expected: Vec<String> = messages
            .iter()
            .filter(|m| m.job.group_id() == group)
            .map(|m| m.dedup_id.clone())
            .collect();
        assert_eq!(dedups, expected);
    }
}
