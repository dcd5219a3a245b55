//! The product against Google's stricter rules (issue 12), each end to end on the embedded
//! adapters with the project's Google sandbox:
//! - Calendar page tokens are bound to the call that minted them: a full read interrupted
//!   between pages whose parameters then change (the user moves `sync_since`) starts over
//!   cleanly, and every event reaches the CRM once.

mod common;

use common::backlog::token;
use common::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::services::quota::{with_limits, Limits};

const ALICE: &str = "alice@example.com";

fn all_day(summary: &str, day: usize) -> Event {
    let date = time::Date::from_calendar_date(2027, time::Month::January, 1).unwrap()
        + time::Duration::days(day as i64);
    let next = date + time::Duration::days(1);
    serde_json::from_value(json!({
        "summary": summary,
        "start": {"date": date.to_string()},
        "end": {"date": next.to_string()},
    }))
    .unwrap()
}

fn created_ids(feed: &[Value], user: &str) -> Vec<String> {
    feed.iter()
        .filter(|r| r["kind"] == "event_created" && r["user"] == user)
        .filter_map(|r| r["google_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_full_read_whose_parameters_change_between_pages_starts_over_cleanly() {
    const USER: &str = "u-pages";
    let env = Env::new_on(Backend::Embedded).await;
    let alice = token(&env, ALICE);
    let mut made = Vec::new();
    for i in 0..300 {
        let e = env
            .app
            .google
            .insert_event(
                &alice,
                "primary",
                &all_day(&format!("E{i}"), i),
                SendUpdates::None,
            )
            .await
            .unwrap();
        made.push(e.id);
    }
    env.connect(USER, &["calendar"], ALICE, "").await;
    // The first job may make one Google call: it reads the first page (250 of 300) and
    // stops, its page token stored for the continuation.
    with_limits(
        Limits {
            calls_per_job: 1,
            ..Limits::default()
        },
        async { env.drain_jobs(1).await },
    )
    .await;
    let user = shared::domain::UserId::parse(USER).unwrap();
    let cursor = env
        .app
        .store
        .get_cursor(&env.tenant, &user, "calendar:primary")
        .await
        .unwrap()
        .expect("a cursor")
        .value;
    assert!(
        cursor.page_token.is_some(),
        "the read stopped between pages: {cursor:?}"
    );
    // The user moves the start of the sync: the full read's `timeMin` changes, so Google
    // refuses the stored page token.
    let (s, v) = env
        .call(
            "PATCH",
            &format!("/v1/users/{USER}/google"),
            &env.sync,
            Some(json!({"sync_since": "2026-06-01"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.sandbox.clear_request_log();
    env.drain_jobs(100).await;
    let refused = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/events") && r.status == 400)
        .count();
    assert_eq!(
        refused, 1,
        "the stale page token was sent once, then dropped"
    );
    let (_, account) = env.account(USER).await;
    assert_eq!(account["last_error"], Value::Null, "{account}");
    let feed = env.changes().await;
    let mut ids = created_ids(&feed, USER);
    let told = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300, "every event reached the CRM");
    assert_eq!(told, 300, "each once");
    made.sort();
    assert_eq!(ids, made);
}
