//! Settings changes carry the sync state over. A new main calendar takes the meetings still
//! ahead with it (Google's `events.move`: same event id), in bounded jobs a large account
//! resumes; the meetings already over stay where they are and are still written there; after
//! the change a CRM edit reaches Google in the new calendar, a Google edit there reaches the
//! CRM, and nothing is duplicated.
//!
//! On the embedded adapters, the worker run as SQS would (each queued job in turn).

use crate::world::backlog::{assert_synced, drain_until, meeting, put_meetings, token, waiting};
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::google::calendar::{ListEvents, SendUpdates};
use shared::services::quota::{with_limits, Limits};
use std::collections::HashSet;

const ALICE: &str = "alice@example.com";
const USER: &str = "u-alice";

/// A meeting of the CRM that was over before the settings change.
fn past_meeting(i: usize) -> Value {
    json!({
        "type": "meeting",
        "title": format!("Past meeting {i}"),
        "start": {"date_time": format!("2026-10-{:02}T09:00:00Z", 1 + i)},
        "end": {"date_time": format!("2026-10-{:02}T10:00:00Z", 1 + i)},
        "time_zone": "UTC",
    })
}

/// Every live event of `calendar`, as Google holds them.
async fn live_events(env: &Env, calendar: &str) -> Vec<shared::google::calendar::Event> {
    let token = token(env, ALICE);
    let mut out = Vec::new();
    let mut params = ListEvents {
        max_results: Some(2500),
        ..Default::default()
    };
    loop {
        let page = env
            .app
            .google
            .list_events(&token, calendar, &params)
            .await
            .unwrap();
        out.extend(page.items.into_iter().filter(|e| !e.is_cancelled()));
        match page.next_page_token {
            Some(p) => params.page_token = Some(p),
            None => return out,
        }
    }
}

async fn pair(env: &Env, crm_id: &str) -> Value {
    let (s, v) = env.event(USER, crm_id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn put(env: &Env, crm_id: &str, body: Value) {
    let (s, v) = env.put_event(USER, crm_id, body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
}

#[tokio::test]
#[allow(non_snake_case)]
async fn a_new_main_calendar_takes_the_meetings_still_ahead_with_it() {
    // `REHOME_N=2000` for a larger account.
    let n_env = std::env::var("REHOME_N").ok().and_then(|v| v.parse().ok());
    let N: usize = n_env.unwrap_or(300);
    const PAST: usize = 5;
    // A per-job cap of 20 calls: the move of 300 meetings takes many jobs, each resuming
    // where the last stopped.
    let limits = Limits {
        calls_per_job: 20,
        ..Limits::default()
    };
    with_limits(limits, async {
        let env = Env::new_on(Backend::Embedded).await;
        env.connect(USER, &["calendar"], ALICE, "").await;
        env.drain_jobs(100).await;
        put_meetings(&env, USER, "MTG", N).await;
        for i in 0..PAST {
            put(&env, &format!("PAST-{i}"), past_meeting(i)).await;
        }
        drain_until(&env, 400, async || waiting(&env, USER).await == 0).await;
        assert_synced(&env, USER, "MTG", N).await;
        let before: HashSet<String> = live_events(&env, "primary")
            .await
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(before.len(), N + PAST);
        let feed_before = env.changes().await.len();

        // The user picks a team calendar as the main calendar.
        let team = env.sandbox.add_calendar(ALICE, "Team", "UTC");
        let (s, v) = env
            .patch_account(USER, json!({ "main_calendar": team }))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(env.stored_account(USER).await.settings.rehome.is_some());
        env.sandbox.clear_request_log();
        let jobs = drain_until(&env, 400, async || {
            env.stored_account(USER).await.settings.rehome.is_none()
        })
        .await;
        let account = env.stored_account(USER).await;
        assert!(account.settings.rehome.is_none(), "the move finished");
        assert_eq!(account.settings.former_main_calendars, ["primary"]);
        let moves = env
            .sandbox
            .request_log()
            .iter()
            .filter(|r| r.path.ends_with("/move"))
            .count();
        assert_eq!(
            moves, N,
            "each meeting moved once (batch parts logged one by one)"
        );
        // At most 20 calls a job, and about that many moves in each: ⌈N/20⌉ jobs plus the
        // pass that follows each page and a little slack.
        let least = N.div_ceil(20);
        assert!(
            (least..=least + least / 10 + 5).contains(&jobs),
            "bounded jobs: {jobs} for {N} moves at 20 calls a job"
        );
        let batches = env
            .sandbox
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with("/batch/calendar/v3"))
            .count();
        eprintln!("re-home: {N} meetings moved in {jobs} jobs, {batches} batch requests");

        // The meetings ahead are in the team calendar under the same ids; the past ones
        // stayed in primary; no event exists twice.
        let in_team: Vec<String> = live_events(&env, &team)
            .await
            .into_iter()
            .map(|e| e.id)
            .collect();
        let in_primary: Vec<String> = live_events(&env, "primary")
            .await
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(in_team.len(), N);
        assert_eq!(in_primary.len(), PAST);
        let after: HashSet<String> = in_team.iter().chain(&in_primary).cloned().collect();
        assert_eq!(after, before, "the same events, none duplicated, none lost");
        for i in (0..N).step_by(37) {
            let v = pair(&env, &format!("MTG-{i}")).await;
            assert_eq!(v["calendar_id"], team.as_str(), "{v}");
            assert_eq!(v["state"], "synced", "{v}");
        }
        let v = pair(&env, "PAST-0").await;
        assert_eq!(v["calendar_id"], "primary", "{v}");

        // A CRM edit of a meeting made before the change reaches Google in the team calendar.
        let mut edited = meeting(5);
        edited["title"] = json!("Moved and edited in the CRM");
        put(&env, "MTG-5", edited).await;
        // And one of a past meeting is still written where it is.
        let mut past = past_meeting(0);
        past["title"] = json!("Past, edited in the CRM");
        put(&env, "PAST-0", past).await;
        drain_until(&env, 50, async || waiting(&env, USER).await == 0).await;
        let gid5 = pair(&env, "MTG-5").await["google_event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = token(&env, ALICE);
        let got = env
            .app
            .google
            .get_event(&token, &team, &gid5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.summary.as_deref(), Some("Moved and edited in the CRM"));
        assert_eq!(pair(&env, "MTG-5").await["state"], "synced");
        let gid_past = pair(&env, "PAST-0").await["google_event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let got = env
            .app
            .google
            .get_event(&token, "primary", &gid_past)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.summary.as_deref(), Some("Past, edited in the CRM"));
        assert_eq!(pair(&env, "PAST-0").await["state"], "synced");

        // A Google edit in the team calendar reaches the CRM.
        let gid7 = pair(&env, "MTG-7").await["google_event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        env.app
            .google
            .patch_event(
                &token,
                &team,
                &gid7,
                &json!({"summary": "Edited in Google after the move"}),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
        env.run_job(USER, shared::queue::SyncReason::Manual).await;
        env.drain_jobs(100).await;
        let feed = env.changes().await;
        let news = &feed[feed_before..];
        assert!(
            news.iter().any(|r| r["kind"] == "event_updated"
                && r["crm_id"] == "MTG-7"
                && r["data"]["event"]["title"] == "Edited in Google after the move"),
            "{news:?}"
        );
        // Nothing came back as a new Google-born event, nothing was deleted or unlinked.
        let odd: Vec<&Value> = news
            .iter()
            .filter(|r| {
                matches!(
                    r["kind"].as_str(),
                    Some("event_created" | "event_deleted" | "event_unlinked")
                )
            })
            .collect();
        assert!(odd.is_empty(), "{odd:?}");
        assert_eq!(live_events(&env, &team).await.len(), N);
    })
    .await;
}

/// A field mapping change starts a fresh People read: the stored sync token was made with the
/// old `personFields` (People wants the same parameters with a token), so the next
/// `connections.list` after the change carries none; a group change does too.
#[tokio::test]
async fn a_new_field_mapping_or_group_starts_a_fresh_people_read() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["contacts"], ALICE, "").await;
    env.drain_jobs(100).await;
    let lists = || -> Vec<Option<String>> {
        env.sandbox
            .request_log()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/people/me/connections"))
            .map(|r| r.query)
            .collect()
    };
    let with_token = |q: &Option<String>| q.as_deref().unwrap_or("").contains("syncToken=");
    env.sandbox.clear_request_log();
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    assert!(
        lists().iter().all(with_token),
        "incremental before: {:?}",
        lists()
    );
    assert!(!lists().is_empty());

    let (s, v) = env
        .patch_account(USER, json!({"contact_fields": {"phones": "off"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.sandbox.clear_request_log();
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let after = lists();
    assert!(
        !after.is_empty() && !with_token(&after[0]),
        "a fresh read after the mapping change: {after:?}"
    );
    // And incremental again from there.
    env.sandbox.clear_request_log();
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    assert!(lists().iter().all(with_token), "{:?}", lists());
}

/// A commit that meets a concurrent CRM PUT merges into the fresh row and keeps what the
/// pass's full read saw (`seen_in_read`), so reconcile does not read the pair again
/// (finding 32).
#[tokio::test]
async fn a_commit_merge_keeps_what_the_full_read_saw() {
    use shared::domain::{Collection, UserId};
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["calendar"], ALICE, "").await;
    env.drain_jobs(100).await;
    put(&env, "MTG-1", meeting(1)).await;
    env.drain_jobs(100).await;
    let u = UserId::parse(USER).unwrap();
    let loaded = env
        .app
        .store
        .get_pair(&env.tenant, &u, Collection::Calendar, "MTG-1")
        .await
        .unwrap()
        .unwrap();
    // The CRM sends an edit while the pass holds the pair it loaded.
    let mut edit = meeting(1);
    edit["title"] = json!("Edited while the pass ran");
    put(&env, "MTG-1", edit).await;
    let mut pair = loaded.value.clone();
    pair.seen_in_read = Some("read-1".into());
    shared::sync::pair::commit(
        &env.app.store,
        &env.tenant,
        &u,
        &loaded.value,
        pair,
        Some(loaded.version),
        false,
    )
    .await
    .unwrap();
    let stored = env
        .app
        .store
        .get_pair(&env.tenant, &u, Collection::Calendar, "MTG-1")
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(stored.seen_in_read.as_deref(), Some("read-1"));
    assert!(
        stored
            .crm_content
            .unwrap()
            .to_string()
            .contains("Edited while the pass ran"),
        "the CRM's edit is kept"
    );
}
