//! Per-tenant API throttling (review finding 31): one tenant's burst is answered 429 with a
//! `Retry-After`, and another tenant is served meanwhile. This test binary runs with
//! `TENANT_API_RATE=5/10` (set before the first request).

mod common;

use common::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn a_tenants_burst_is_throttled_and_others_are_not() {
    std::env::set_var("TENANT_API_RATE", "5/10");
    let env = Env::new_on(Backend::Embedded).await;
    let (_, other) = env.other_tenant("Other").await;

    let changes = |key: String| {
        let (http, url) = (env.http.clone(), format!("{}/v1/changes", env.api));
        async move { http.get(url).bearer_auth(key).send().await.unwrap() }
    };
    let mut served = 0;
    let mut refused = None;
    for _ in 0..30 {
        let resp = changes(env.sync.clone()).await;
        match resp.status() {
            StatusCode::OK => served += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused = Some(resp);
                break;
            }
            s => panic!("unexpected {s}"),
        }
    }
    let refused = refused.expect("the burst is throttled");
    assert!((5..=12).contains(&served), "the burst allowance: {served}");
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another tenant is served at once; the throttled one after the wait.
    assert_eq!(changes(other).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(changes(env.sync.clone()).await.status(), StatusCode::OK);
}
