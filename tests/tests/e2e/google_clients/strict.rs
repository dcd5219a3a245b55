//! The product against Google's stricter rules (issue 12), each end to end on the embedded
//! adapters with the project's Google sandbox:
//! - Calendar page tokens are bound to the call that minted them: a full read interrupted
//!   between pages whose parameters then change (the user moves `sync_since`) starts over
//!   cleanly, and every event reaches the CRM once.
//! - An attendee's answer on their copy of a meeting reaches the organizer's event: the CRM
//!   hears it on the organizer's meeting (one record, none for the attendee), and the
//!   organizer's next CRM edit keeps it.
//! - People's write-propagation delay: a create Google applied though its answer was lost,
//!   and that its lists show only a minute later, is found then — never made twice — and the
//!   CRM is not told of it as a new contact.
//! - A contact Google will not take out of its last group (canNotRemoveLastContactGroup):
//!   a CRM deletion files it in My Contacts, then takes it out of the synced group; the
//!   contact stays in Google, out of the sync.
//! - One People mutation at a time per user: two jobs of one user running at once (409
//!   `ABORTED` for the second's writes) lose and duplicate nothing.

use crate::world::backlog::token;
use crate::world::{Backend, Env};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::services::quota::{with_limits, Limits};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

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
        .patch_account(USER, json!({"sync_since": "2026-06-01"}))
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

fn response_in(event: &Value, email: &str) -> Value {
    event["attendees"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["email"] == email))
        .map(|a| a["response"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_attendees_answer_on_their_copy_reaches_the_organizers_crm_meeting() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u-alice", &["calendar"], ALICE, "").await;
    env.connect("u-bob", &["calendar"], BOB, "").await;
    env.drain_jobs(100).await;
    let meeting = |title: &str| {
        json!({
            "type": "meeting",
            "title": title,
            "start": {"date_time": "2030-05-01T09:00:00Z"},
            "end": {"date_time": "2030-05-01T10:00:00Z"},
            "time_zone": "UTC",
            "attendees": [{"email": BOB}],
        })
    };
    let (s, v) = env
        .put_event("u-alice", "MTG-R", meeting("Quarterly review"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let (_, v) = env.event("u-alice", "MTG-R").await;
    let gid = v["google_event_id"].as_str().unwrap().to_owned();
    env.run_job("u-bob", shared::queue::SyncReason::Manual)
        .await;

    // Bob accepts in his calendar: his client writes his copy's guest list back.
    let bob = token(&env, BOB);
    let copy = env
        .app
        .google
        .get_event(&bob, "primary", &gid)
        .await
        .unwrap()
        .expect("Bob's copy");
    let mut attendees = serde_json::to_value(&copy.attendees).unwrap();
    for a in attendees.as_array_mut().unwrap() {
        if a["email"] == BOB {
            a["responseStatus"] = json!("accepted");
        }
    }
    let answer = reqwest::Client::new()
        .patch(format!(
            "{}/calendar/v3/calendars/primary/events/{gid}",
            env.sandbox_url
        ))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&bob))
        .json(&json!({"attendees": attendees}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());

    env.run_job("u-alice", shared::queue::SyncReason::Manual)
        .await;
    env.run_job("u-bob", shared::queue::SyncReason::Manual)
        .await;
    env.drain_jobs(100).await;
    let feed = env.changes().await;
    let last = feed
        .iter()
        .rev()
        .find(|r| r["crm_id"] == "MTG-R" && r["kind"] == "event_updated")
        .expect("the CRM hears of Bob's answer on Alice's meeting");
    assert_eq!(last["user"], "u-alice");
    assert_eq!(
        response_in(&last["data"]["event"], BOB),
        "accepted",
        "{last}"
    );
    let bobs: Vec<&Value> = feed
        .iter()
        .filter(|r| r["user"] == "u-bob" && r["google_id"] == gid.as_str())
        .collect();
    assert!(
        bobs.is_empty(),
        "no record of Bob's for Alice's meeting: {bobs:?}"
    );

    // Alice's next CRM edit (with the CRM's copy of the guests, no answers) keeps Bob's.
    let (s, v) = env
        .put_event("u-alice", "MTG-R", meeting("Quarterly review (room 4)"))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.drain_jobs(100).await;
    let alices = env
        .app
        .google
        .get_event(&token(&env, ALICE), "primary", &gid)
        .await
        .unwrap()
        .expect("Alice's event");
    assert_eq!(alices.summary.as_deref(), Some("Quarterly review (room 4)"));
    let bob_entry = alices
        .attendees
        .iter()
        .flatten()
        .find(|a| a.email.as_deref() == Some(BOB))
        .cloned()
        .expect("Bob invited");
    assert_eq!(
        bob_entry.response_status.as_deref(),
        Some("accepted"),
        "Bob's answer stands"
    );
}

fn lead(given: &str) -> Value {
    json!({
        "kind": "lead",
        "name": {"given": given, "family": "Rossi"},
        "emails": [{"address": format!("{}@example.org", given.to_lowercase()), "type": "work", "primary": true}],
    })
}

async fn put_contact(env: &Env, user: &str, crm_id: &str, given: &str) {
    let (s, v) = env.put_contact(user, crm_id, lead(given)).await;
    assert!(s.is_success(), "{v}");
}

/// Alice's Google contacts carrying each CRM id, as Google's direct reads show them.
async fn copies_in_google(env: &Env) -> std::collections::BTreeMap<String, usize> {
    use shared::google::people::{ListConnections, PersonField};
    let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
    // Lists lag behind writes: wait the delay out on the sandbox's clock first.
    env.sandbox.set_people_propagation_delay(0);
    let mut out = std::collections::BTreeMap::new();
    let mut params = ListConnections {
        person_fields: PersonField::ALL.to_vec(),
        page_size: Some(1000),
        ..Default::default()
    };
    loop {
        let page = env
            .app
            .google
            .list_connections(&alice, &params)
            .await
            .unwrap();
        for p in page.connections {
            if let Some(id) = p.client_value("crmId") {
                *out.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        match page.next_page_token {
            Some(t) => params.page_token = Some(t),
            None => return out,
        }
    }
}

fn creates(env: &Env) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path.starts_with("/v1/people:")
                && r.path.contains("reateContact")
        })
        .count()
}

#[tokio::test]
async fn a_lost_create_answer_is_found_after_googles_propagation_delay_not_made_twice() {
    use google_sandbox::{FaultKind, FaultSpec};
    const USER: &str = "u-late";
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["contacts"], ALICE, "").await;
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    // Google's lists show a write a minute after it was made.
    env.sandbox.set_people_propagation_delay(60);
    for (id, name) in [("C-1", "Ada"), ("C-2", "Bea")] {
        put_contact(&env, USER, id, name).await;
    }
    // Google makes both contacts; the answer is lost.
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::InternalError)
            .path_prefix("/v1/people:batchCreateContacts")
            .count(1)
            .applied(),
    );
    env.sandbox.clear_request_log();
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    assert_eq!(creates(&env), 1);
    // Passes within the delay do not find them and do not make them again.
    for _ in 0..3 {
        env.clock.advance(time::Duration::seconds(15));
        env.run_job(USER, shared::queue::SyncReason::Scheduled)
            .await;
    }
    assert_eq!(
        creates(&env),
        1,
        "not made again while Google may not show them yet"
    );
    // Google's lists show them now: the next read links them.
    env.sandbox.advance_clock(61);
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    // Long after, nothing is made again either.
    env.clock
        .advance(shared::contacts::sync::CREATE_SETTLE + time::Duration::minutes(1));
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    assert_eq!(creates(&env), 1, "a create is made once");
    for id in ["C-1", "C-2"] {
        let (_, v) = env.contact(USER, id).await;
        assert_eq!(v["state"], "synced", "{id}: {v}");
    }
    let copies = copies_in_google(&env).await;
    assert_eq!(copies.get("C-1"), Some(&1), "{copies:?}");
    assert_eq!(copies.get("C-2"), Some(&1), "{copies:?}");
    let feed = env.changes().await;
    assert!(
        !feed.iter().any(|c| c["kind"] == "contact_created"),
        "the CRM is not told of its own contacts: {feed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_while_another_mutation_of_the_user_runs_are_sent_again_once() {
    use google_sandbox::{FaultKind, FaultSpec};
    const USER: &str = "u-twice";
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["contacts"], ALICE, "").await;
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    for i in 0..30 {
        put_contact(&env, USER, &format!("C-{i}"), &format!("Name{i}")).await;
    }
    // Two jobs of the user at once: the second finds the account busy (the queue delivers
    // it again later) and sends nothing.
    let job = |reason| shared::queue::SyncJob {
        tenant: env.tenant.clone(),
        user: shared::domain::UserId::parse(USER).unwrap(),
        calendar: None,
        reason,
        confirm_mass_deletion: false,
        record: None,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Another app of the user's is writing a contact, slowly: People holds the user's
    // mutations until it is done, refusing ours (409 `ABORTED`).
    env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::Latency)
            .user(ALICE)
            .path_prefix("/v1/people:createContact")
            .latency_ms(700)
            .count(1),
    );
    let other_app = {
        let http = reqwest::Client::new();
        let url = format!(
            "{}/v1/people:createContact?personFields=names",
            env.sandbox_url
        );
        let alice = env.sandbox.issue_access_token(
            crate::world::CLIENT_ID,
            ALICE,
            &["https://www.googleapis.com/auth/contacts"],
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(alice)
                .json(&json!({"names": [{"givenName": "Typed in Google"}]}))
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    env.sandbox.clear_request_log();
    let (first, second) = (
        job(shared::queue::SyncReason::Scheduled),
        job(shared::queue::SyncReason::Manual),
    );
    let (a, b) = tokio::join!(
        sync_worker::run(&env.app, &first, deadline),
        sync_worker::run(&env.app, &second, deadline),
    );
    let busy = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(sync_worker::JobError::Busy)))
        .count();
    assert_eq!(
        busy, 1,
        "one job ran, the other found the account busy: {a:?} {b:?}"
    );
    assert_eq!(other_app.await.unwrap().unwrap(), StatusCode::OK);
    let refused = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.status == 409 && r.path.starts_with("/v1/people"))
        .count();
    assert!(refused >= 1, "our write met the other mutation");
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let copies = copies_in_google(&env).await;
    assert_eq!(copies.len(), 30, "every contact reached Google: {copies:?}");
    assert!(copies.values().all(|n| *n == 1), "each once: {copies:?}");
    let batches = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/people:batchCreateContacts")
        .count();
    assert_eq!(batches, 1 + refused, "sent again only after a refusal");
    let (_, account) = env.account(USER).await;
    assert_eq!(account["contacts"]["waiting"], 0, "{account}");
}

#[tokio::test]
async fn a_crm_deletion_of_a_contact_only_in_the_synced_group_keeps_it_in_my_contacts() {
    use shared::google::people::{PersonField, MY_CONTACTS};
    const USER: &str = "u-lastgroup";
    let env = Env::new_on(Backend::Embedded).await;
    env.connect(USER, &["contacts"], ALICE, "").await;
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    put_contact(&env, USER, "C-1", "Ada").await;
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let (_, account) = env.account(USER).await;
    let group = account["contacts"]["group"].as_str().unwrap().to_owned();
    let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
    let (_, v) = env.contact(USER, "C-1").await;
    let rn = v["google_resource_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(rn.starts_with("people/"), "{v}");
    // Alice takes it out of My Contacts: the synced group is its only one.
    let out = env
        .app
        .google
        .modify_contact_group_members(&alice, MY_CONTACTS, &[], std::slice::from_ref(&rn))
        .await
        .unwrap();
    assert!(out
        .can_not_remove_last_contact_group_resource_names
        .is_empty());
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    // The CRM deletes it (the tenant's policy: out of the group, the contact stays).
    let (s, v) = env.delete_contact(USER, "C-1").await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let person = env
        .app
        .google
        .get_person(&alice, &rn, &[PersonField::Memberships, PersonField::Names])
        .await
        .unwrap()
        .expect("still in Google");
    assert!(
        !person.in_group(&group),
        "out of the synced group: {person:?}"
    );
    assert!(
        person.in_group(MY_CONTACTS),
        "kept in My Contacts: {person:?}"
    );
    let pair = env
        .app
        .store
        .get_pair(
            &env.tenant,
            &shared::domain::UserId::parse(USER).unwrap(),
            shared::domain::Collection::Contacts,
            "C-1",
        )
        .await
        .unwrap()
        .expect("the pair")
        .value;
    assert_eq!(pair.last_error, None, "nothing left to fix");
    assert!(pair.deleted_at.is_some(), "settled: {pair:?}");
    // A later edit in Google does not bring it back to the CRM.
    env.run_job(USER, shared::queue::SyncReason::Scheduled)
        .await;
    let feed = env.changes().await;
    assert!(
        !feed.iter().any(|c| c["kind"] == "contact_created"),
        "{feed:?}"
    );
}
