//! Bounded progress for contacts, as for the calendar (`calendar_progress`): a user's waiting
//! CRM contacts drain through the queue in about ⌈N/200⌉ People batch requests, each contact
//! written once, under per-job caps that cut a pass short; and a contact Google refuses
//! inside a batch (here a stale etag, which fails a whole `batchUpdateContacts`) gets its own
//! answer while the others of its batch, and the batches after it, go through.
//!
//! Google's changes reach the CRM's feed a page at a time: one append (one counter add) for
//! a page's records, not one per record.
//!
//! Runs the worker as SQS would (each queued job in turn, continuations included) on the
//! embedded adapters.

use crate::world::backlog::{drain_until, waiting_in};
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::domain::{Collection, UserId};
use shared::google::people::{Membership, Name, Person, PersonField};
use shared::services::quota::{with_limits, Limits};

const ALICE: &str = "alice@example.com";
const USER: &str = "u-alice";

fn lead(n: usize, note: &str) -> Value {
    json!({
        "kind": "lead",
        "name": {"given": format!("Person {n}"), "family": "Rossi"},
        "emails": [{"address": format!("p{n}@example.org"), "type": "work", "primary": true}],
        "notes": note,
    })
}

async fn push(env: &Env, from: usize, to: usize, note: &str) {
    for start in (from..to).step_by(500) {
        let contacts: Vec<Value> = (start..to.min(start + 500))
            .map(|n| json!({"crm_id": format!("M-{n}"), "contact": lead(n, note)}))
            .collect();
        let (s, v) = env
            .call(
                "POST",
                &format!("/v1/users/{USER}/contacts:push"),
                &env.sync,
                Some(json!({"contacts": contacts})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
}

fn alice(env: &Env) -> SecretString {
    env.google_token(ALICE, crate::world::CONTACTS_SCOPE)
}

async fn google(env: &Env) -> Vec<Person> {
    let alice = alice(env);
    env.all_google_contacts(&alice).await
}

fn requests(env: &Env, path: &str) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

async fn state(env: &Env, crm_id: &str) -> Value {
    let (_, v) = env.contact(USER, crm_id).await;
    v
}

async fn connected() -> Env {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["contacts"], ALICE, "").await;
    env.drain_jobs(100).await;
    env
}

/// `n` contacts pushed while the sync is paused, then resumed: the queue drains them.
async fn backlog_drains(n: usize, limits: Limits) -> (usize, usize) {
    with_limits(limits, async {
        let env = connected().await;
        assert!(env.set_paused(USER, true).await);
        push(&env, 0, n, "loaded").await;
        env.drain_jobs(10_000).await;
        assert!(env.set_paused(USER, false).await);
        env.sandbox.clear_request_log();
        let jobs = drain_until(&env, 400, async || {
            waiting_in(&env, USER, Collection::Contacts).await == 0
        })
        .await;
        assert_eq!(waiting_in(&env, USER, Collection::Contacts).await, 0);
        let people = google(&env).await;
        assert_eq!(people.len(), n, "one Google contact per CRM record");
        let mut ids: Vec<&str> = people
            .iter()
            .filter_map(|p| p.client_value("crmId"))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "each written once");
        for i in (0..n).step_by(97) {
            let v = state(&env, &format!("M-{i}")).await;
            assert_eq!(v["state"], "synced", "M-{i}: {v}");
        }
        (requests(&env, "/v1/people:batchCreateContacts"), jobs)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_1000_contacts_drains_in_five_create_batches() {
    let (creates, jobs) = backlog_drains(1000, Limits::default()).await;
    eprintln!("1000 waiting contacts: {creates} create requests, {jobs} jobs");
    assert_eq!(creates, 5, "⌈1000/200⌉ batchCreateContacts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_job_cap_cuts_the_push_into_continuations_with_whole_batches() {
    // 5 calls a job: the read takes one, two are kept in hand, so two create requests go
    // per job; the rest waits for the continuation the worker queues.
    let limits = Limits {
        calls_per_job: 5,
        ..Limits::default()
    };
    let (creates, jobs) = backlog_drains(1000, limits).await;
    eprintln!("1000 waiting contacts, 5 calls a job: {creates} create requests, {jobs} jobs");
    assert_eq!(creates, 5, "still ⌈1000/200⌉ batchCreateContacts");
    assert!(jobs >= 3, "the push went on in continuations ({jobs} jobs)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_contact_google_refuses_does_not_fail_its_batch_nor_the_next() {
    let env = connected().await;
    let n = 250;
    push(&env, 0, n, "first").await;
    env.drain_jobs(1000).await;
    assert_eq!(waiting_in(&env, USER, Collection::Contacts).await, 0);
    // The next pass reads our own writes back.
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    // Google has changed one contact of the first batch since the last read, and the
    // incremental read has not shown it (the pair holds an etag Google no longer has): its
    // update fails the whole batchUpdateContacts request it is in.
    let u = UserId::parse(USER).unwrap();
    let stale = env
        .app
        .store
        .get_pair(&env.tenant, &u, Collection::Contacts, "M-7")
        .await
        .unwrap()
        .unwrap();
    let mut pair = stale.value.clone();
    pair.google_etag = Some("%stale".into());
    env.app
        .store
        .put_pair(&env.tenant, &u, &pair, Some(stale.version))
        .await
        .unwrap();
    env.sandbox.clear_request_log();
    push(&env, 0, n, "second").await;
    env.drain_jobs(1000).await;
    assert_eq!(waiting_in(&env, USER, Collection::Contacts).await, 0);
    let people = google(&env).await;
    assert_eq!(people.len(), n, "no contact created twice");
    for p in &people {
        assert_eq!(
            p.biographies.first().and_then(|b| b.value.as_deref()),
            Some("second"),
            "{:?} has the CRM's update",
            p.client_value("crmId")
        );
    }
    for i in [0, 7, 199, 200, 249] {
        let v = state(&env, &format!("M-{i}")).await;
        assert_eq!(v["state"], "synced", "M-{i}: {v}");
        assert!(v["last_error"].is_null(), "M-{i}: {v}");
    }
    let updates = requests(&env, "/v1/people:batchUpdateContacts");
    eprintln!("250 updates, one stale etag: {updates} batch update requests");
    // The refused request is halved down to the stale contact (about 2·log2(200) requests),
    // never sent contact by contact; the second batch is sent as it is.
    assert!(updates <= 20, "{updates} batchUpdateContacts requests");
    let singles = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with(":updateContact"))
        .count();
    assert!(singles <= 1, "{singles} single updates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_google_changes_reaches_the_feed_in_one_append() {
    let env = connected().await;
    let (_, account) = env.account(USER).await;
    let group = account["settings"]["contact_group"]
        .as_str()
        .expect("the synced group")
        .to_owned();
    // Alice adds 150 contacts to the synced group in Google.
    let people: Vec<Person> = (0..150)
        .map(|i| Person {
            names: vec![Name {
                given_name: Some(format!("Google {i}")),
                ..Default::default()
            }],
            memberships: vec![Membership::of_group(&group)],
            ..Default::default()
        })
        .collect();
    for answer in env
        .app
        .google
        .batch_create_contacts(&alice(&env), &people, &[PersonField::Names])
        .await
    {
        answer.unwrap();
    }
    let ops = env.store_ops.clone().unwrap();
    let feed_before = env.changes().await.len();
    let adds = ops.adds.load(std::sync::atomic::Ordering::SeqCst);
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let adds = ops.adds.load(std::sync::atomic::Ordering::SeqCst) - adds;
    let feed = env.changes().await;
    let created: Vec<&Value> = feed[feed_before..]
        .iter()
        .filter(|r| r["kind"] == "contact_created")
        .collect();
    assert_eq!(created.len(), 150, "every new contact told to the CRM");
    let told: std::collections::HashSet<&str> = created
        .iter()
        .filter_map(|r| r["google_id"].as_str())
        .collect();
    assert_eq!(told.len(), 150, "each contact told once");
    assert_eq!(adds, 1, "one feed append for the page");
    // Each told pair is committed: a second pass tells nothing again.
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    assert_eq!(env.changes().await.len(), feed.len());
}
