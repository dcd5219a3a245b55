//! Property: whatever the interleaving of CRM edits, Google edits, deletes, conflicting
//! edits, retried deliveries and worker runs, after quiescence both sides agree — no
//! duplicates, no lost edit, and every difference is one the deletion policy explains.
//!
//! A simulated CRM drives the public API and applies the change feed as a CRM would
//! (creating records for Google-born events and acknowledging them). Many seeds, each a
//! random sequence of operations — bursts of CRM writes (a backlog of 10–120, and for one seed
//! in 25 a load of up to 5,000), pauses and resumes, the grant revoked then reconnected,
//! Google's push notifications dropped, duplicated, held back (reordered) or arriving while a
//! pass runs, CRM records over the size limit (refused, nothing changed), queued jobs run as
//! SQS would — under a per-job Google call cap of 20, 50 or 200; a failing seed is printed so
//! it can be replayed.

use crate::world::{Backend, Env};
use futures_util::StreamExt;
use google_sandbox::{FaultKind, FaultSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::calendar::model::CrmEvent;
use shared::calendar::normal::Normalized;
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;
use std::collections::BTreeMap;

const USER: &str = "u-sim";
const ALICE: &str = "alice@example.com";
/// Seeds run (`SEEDS=n` for more; `SEED=n` replays one).
const SEEDS: u64 = 50;
const STEPS: usize = 40;

struct Sim {
    env: Env,
    alice: SecretString,
    rng: StdRng,
    /// The CRM's records: id → content (None once deleted in the CRM).
    crm: BTreeMap<String, Option<Value>>,
    /// Records whose link to Google is gone (deleted in Google under `unlink_only`).
    unlinked: std::collections::BTreeSet<String>,
    feed_cursor: Option<String>,
    /// Google ids of the Google-born records the CRM created.
    by_google: BTreeMap<String, String>,
    last_put: Option<(String, Value)>,
    next_id: u32,
    log: Vec<String>,
    paused: bool,
    grant_dead: bool,
}

fn event(title: &str, day: u32, hour: u32) -> Value {
    json!({
        "type": if hour.is_multiple_of(2) { "meeting" } else { "call" },
        "title": title,
        "start": {"date_time": format!("2027-08-{day:02}T{hour:02}:00:00+02:00")},
        "end": {"date_time": format!("2027-08-{day:02}T{hour:02}:30:00+02:00")},
        "time_zone": "Europe/Paris",
        "attendees": [{"email": format!("guest{hour}@example.org"), "response": "needsAction"}],
    })
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl Sim {
    async fn new(seed: u64) -> Self {
        let env = Env::new_on(Backend::Embedded).await;
        env.connect(USER, &["calendar"], ALICE, "").await;
        let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
        Self {
            env,
            alice,
            rng: StdRng::seed_from_u64(seed),
            crm: BTreeMap::new(),
            unlinked: Default::default(),
            feed_cursor: None,
            by_google: BTreeMap::new(),
            last_put: None,
            next_id: 0,
            log: Vec::new(),
            paused: false,
            grant_dead: false,
        }
    }

    async fn run(&self, reason: SyncReason) {
        self.env.run_job(USER, reason).await;
        let account = self.env.stored_account(USER).await;
        if !self.paused && !self.grant_dead {
            assert!(
                account.last_error.is_none(),
                "the pass failed: {:?}; {}",
                account.last_error,
                self.log.join("; ")
            );
        }
    }

    /// The CRM's records waiting for the worker.
    async fn waiting(&self) -> usize {
        crate::world::backlog::waiting(&self.env, USER).await
    }

    async fn set_paused(&mut self, paused: bool) {
        self.log.push(format!("paused {paused}"));
        if self.env.set_paused(USER, paused).await {
            self.paused = paused;
        }
    }

    /// The user revokes the app's access in their Google account (and keeps using Google).
    fn revoke(&mut self) {
        self.log.push("grant revoked".into());
        self.alice = self
            .env
            .revoke_grants(ALICE, "https://www.googleapis.com/auth/calendar");
        self.grant_dead = true;
    }

    async fn reconnect(&mut self) {
        self.log.push("reconnect".into());
        self.env.connect(USER, &["calendar"], ALICE, "").await;
        self.grant_dead = false;
        self.paused = false;
    }

    async fn put(&mut self, id: &str, mut content: Value) {
        content["updated_at"] = json!(now());
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/events/{id}"),
                &self.env.sync,
                Some(content.clone()),
            )
            .await;
        assert!(
            s == StatusCode::ACCEPTED || s == StatusCode::OK,
            "PUT {id}: {s} {v}"
        );
        self.log.push(format!("({})", s.as_u16()));
        self.crm.insert(id.to_owned(), Some(content.clone()));
        self.last_put = Some((id.to_owned(), content));
    }

    async fn google_events(&self) -> Vec<Event> {
        self.env.google_events(&self.alice).await
    }

    fn live_crm(&self) -> Vec<String> {
        self.crm
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether a feed record about `id` is older than the CRM's own last edit of it.
    fn superseded(&self, id: &str, r: &Value) -> bool {
        crate::world::superseded(self.crm.get(id).and_then(|c| c.as_ref()), r)
    }

    /// The CRM reads its feed and applies it.
    async fn apply_feed(&mut self) {
        loop {
            let path = match &self.feed_cursor {
                Some(c) => format!("/v1/changes?after={c}&limit=100"),
                None => "/v1/changes?limit=100".to_owned(),
            };
            let (_, page) = self.env.call("GET", &path, &self.env.sync, None).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return;
            }
            for r in &items {
                self.feed_cursor = r["id"].as_str().map(str::to_owned);
                let kind = r["kind"].as_str().unwrap_or("");
                // A record about a Google-born event the CRM named already (but the product
                // had not heard of the name yet when it wrote the record): found by Google id.
                let crm_id = r["crm_id"].as_str().map(str::to_owned).or_else(|| {
                    r["google_id"]
                        .as_str()
                        .and_then(|g| self.by_google.get(g).cloned())
                });
                if r["data"].get("exception").is_some() {
                    continue;
                }
                match (kind, crm_id) {
                    ("event_created", None) => {
                        // A Google-born event: the CRM creates a record and says so.
                        self.next_id += 1;
                        let id = format!("G-{}", self.next_id);
                        let gid = r["google_id"].as_str().unwrap().to_owned();
                        self.crm
                            .insert(id.clone(), Some(r["data"]["event"].clone()));
                        self.by_google.insert(gid.clone(), id.clone());
                        let (s, v) = self
                            .env
                            .call("POST", "/v1/changes/ack", &self.env.sync, Some(json!({"items": [{"user": USER, "google_event_id": gid, "crm_id": id}]})))
                            .await;
                        assert_eq!(s, StatusCode::OK, "{v}");
                        self.log
                            .push(format!("ack {gid} as {id}: {}", v["items"][0]["result"]));
                        if v["items"][0]["result"] == "deleted" {
                            self.unlinked.insert(id);
                        }
                    }
                    // An edit that beat the CRM's delete brings the record back.
                    ("event_created", Some(id)) => {
                        self.crm
                            .insert(id.clone(), Some(r["data"]["event"].clone()));
                        self.unlinked.remove(&id);
                    }
                    // An update of a record the CRM has deleted since is stale news: ignored,
                    // as a CRM ignores updates of records it no longer has.
                    ("event_updated", Some(id)) if !self.superseded(&id, r) => {
                        if let Some(Some(_)) = self.crm.get(&id) {
                            self.crm
                                .insert(id.clone(), Some(r["data"]["event"].clone()));
                        }
                    }
                    ("event_deleted", Some(id)) => {
                        self.crm.insert(id, None);
                    }
                    ("event_unlinked", None) => {
                        self.log
                            .push(format!("unlinked (no crm id) {}", r["google_id"]));
                    }
                    ("event_unlinked", Some(id)) => {
                        self.unlinked.insert(id);
                    }
                    _ => {}
                }
            }
        }
    }

    async fn step(&mut self) {
        let op = self.rng.gen_range(0..20);
        let live = self.live_crm();
        match op {
            0 | 1 => {
                self.next_id += 1;
                let id = format!("C-{}", self.next_id);
                let (day, hour) = (self.rng.gen_range(1..28), self.rng.gen_range(7..19));
                self.log.push(format!("crm create {id}"));
                self.put(&id, event(&format!("Event {id}"), day, hour))
                    .await;
            }
            2 if !live.is_empty() => {
                let id = live[self.rng.gen_range(0..live.len())].clone();
                if self.unlinked.contains(&id) {
                    return;
                }
                let (day, hour) = (self.rng.gen_range(1..28), self.rng.gen_range(7..19));
                self.log.push(format!("crm edit {id}"));
                let n = self.rng.gen_range(0..1000);
                self.put(&id, event(&format!("Edited {id} {n}"), day, hour))
                    .await;
            }
            3 if !live.is_empty() => {
                let id = live[self.rng.gen_range(0..live.len())].clone();
                self.log.push(format!("crm delete {id}"));
                let (s, v) = self
                    .env
                    .call(
                        "DELETE",
                        &format!("/v1/users/{USER}/events/{id}"),
                        &self.env.sync,
                        None,
                    )
                    .await;
                assert!(s.is_success() || s == StatusCode::NOT_FOUND, "{v}");
                self.crm.insert(id, None);
            }
            4 | 5 => {
                let events = self.google_events().await;
                if events.is_empty() {
                    return;
                }
                let e = &events[self.rng.gen_range(0..events.len())];
                let title = format!("Google edit {}", self.rng.gen_range(0..1000));
                self.log.push(format!("google edit {} → {title}", e.id));
                self.env
                    .app
                    .google
                    .patch_event(
                        &self.alice,
                        "primary",
                        &e.id,
                        &json!({"summary": title, "location": "Google HQ"}),
                        None,
                        SendUpdates::None,
                    )
                    .await
                    .unwrap();
            }
            6 => {
                let events = self.google_events().await;
                if events.is_empty() {
                    return;
                }
                let e = &events[self.rng.gen_range(0..events.len())];
                self.log.push(format!("google delete {}", e.id));
                self.env
                    .app
                    .google
                    .delete_event(&self.alice, "primary", &e.id, None, SendUpdates::None)
                    .await
                    .unwrap();
            }
            7 => {
                let day = self.rng.gen_range(1..28);
                self.log.push("google create".into());
                let e: Event = serde_json::from_value(json!({
                    "summary": format!("Born in Google {}", self.rng.gen_range(0..1000)),
                    "start": {"date": format!("2027-09-{day:02}")},
                    "end": {"date": format!("2027-09-{:02}", day + 1)},
                }))
                .unwrap();
                self.env
                    .app
                    .google
                    .insert_event(&self.alice, "primary", &e, SendUpdates::None)
                    .await
                    .unwrap();
            }
            8 => {
                // A retried delivery of the CRM's last push (its content as first sent).
                if let Some((id, content)) = self.last_put.clone() {
                    self.log.push(format!("crm retry {id}"));
                    let (s, v) = self
                        .env
                        .call(
                            "PUT",
                            &format!("/v1/users/{USER}/events/{id}"),
                            &self.env.sync,
                            Some(content),
                        )
                        .await;
                    assert!(s.is_success(), "{v}");
                }
            }
            10 if self.rng.gen_bool(0.4) => {
                // A backlog: the CRM loads many records at once.
                let k = self.rng.gen_range(10..120);
                self.log.push(format!("crm burst of {k}"));
                for _ in 0..k {
                    self.next_id += 1;
                    let id = format!("C-{}", self.next_id);
                    let (day, hour) = (self.rng.gen_range(1..28), self.rng.gen_range(7..19));
                    self.put(&id, event(&format!("Event {id}"), day, hour))
                        .await;
                }
            }
            11 if !self.grant_dead => {
                let paused = !self.paused;
                self.set_paused(paused).await;
            }
            12 if self.rng.gen_bool(0.3) => {
                if self.grant_dead {
                    self.reconnect().await;
                } else {
                    self.revoke();
                }
            }
            13 => {
                // The queue delivers what the product queued (record changes, resumes,
                // continuations), as SQS would.
                let ran = self.env.drain_jobs(10_000).await;
                self.log.push(format!("queue ran {ran}"));
            }
            16 => {
                // Google's notifications misbehave for a while: dropped, delivered twice, or
                // held back so later ones overtake them.
                let n = self.rng.gen_range(1..4);
                let (kind, name) = match self.rng.gen_range(0..3) {
                    0 => (FaultKind::DropPush, "dropped"),
                    1 => (FaultKind::DuplicatePush, "duplicated"),
                    _ => (FaultKind::DelayPush, "held back"),
                };
                self.log.push(format!("next {n} notifications {name}"));
                self.env.sandbox.inject_fault(
                    FaultSpec::new(kind)
                        .user(ALICE)
                        .count(n)
                        .latency_ms(self.rng.gen_range(5..80)),
                );
            }
            17 => {
                // A Google edit while a pass is running (its notification arrives mid-pass).
                let events = self.google_events().await;
                if events.is_empty() {
                    return;
                }
                let e = events[self.rng.gen_range(0..events.len())].clone();
                let title = format!("Mid-pass edit {}", self.rng.gen_range(0..1000));
                self.log
                    .push(format!("google edit {} → {title} during a pass", e.id));
                let edit = async {
                    tokio::task::yield_now().await;
                    self.env
                        .app
                        .google
                        .patch_event(
                            &self.alice,
                            "primary",
                            &e.id,
                            &json!({"summary": title}),
                            None,
                            SendUpdates::None,
                        )
                        .await
                        .unwrap();
                };
                tokio::join!(self.env.run_job(USER, SyncReason::Push), edit);
            }
            18 => {
                // A CRM record over the size limit: refused, naming the limit; nothing changes.
                let id = match live.is_empty() || self.rng.gen_bool(0.3) {
                    true => format!("C-{}", self.next_id + 1),
                    false => live[self.rng.gen_range(0..live.len())].clone(),
                };
                self.log.push(format!("crm oversized put {id}"));
                // A weekly series with 300 attendees and eight occurrences of their own.
                let mut content = crate::world::all_hands(8);
                content["updated_at"] = json!(now());
                let (s, v) = self
                    .env
                    .call(
                        "PUT",
                        &format!("/v1/users/{USER}/events/{id}"),
                        &self.env.sync,
                        Some(content),
                    )
                    .await;
                assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
                assert_eq!(v["error"]["code"], "record_too_large", "{v}");
            }
            _ => {
                let reason = if self.rng.gen_bool(0.5) {
                    SyncReason::Push
                } else {
                    SyncReason::RecordChange
                };
                self.log.push(format!("worker {reason:?}"));
                self.run(reason).await;
                if self.rng.gen_bool(0.7) {
                    self.apply_feed().await;
                }
            }
        }
    }

    /// A CRM loading many records at once (a first connection, an import): `k` PUTs, 16 in
    /// flight, as a CRM's sync client would send them.
    async fn load(&mut self, k: usize) {
        self.log.push(format!("crm load of {k}"));
        let mut records = Vec::with_capacity(k);
        for _ in 0..k {
            self.next_id += 1;
            let id = format!("C-{}", self.next_id);
            let (day, hour) = (self.rng.gen_range(1..28), self.rng.gen_range(7..19));
            let mut content = event(&format!("Event {id}"), day, hour);
            content["updated_at"] = json!(now());
            records.push((id, content));
        }
        let env = &self.env;
        futures_util::stream::iter(records.iter())
            .for_each_concurrent(16, async |(id, content)| {
                let (s, v) = env.put_event(USER, id, content.clone()).await;
                assert!(s == StatusCode::ACCEPTED, "PUT {id}: {s} {v}");
            })
            .await;
        for (id, content) in records {
            self.crm.insert(id, Some(content));
        }
    }

    async fn quiesce(&mut self) {
        if self.grant_dead {
            self.reconnect().await;
        }
        if self.paused {
            self.set_paused(false).await;
        }
        // The queue runs what was queued; a minute passes (the tenant's Google budget
        // refills) and the scheduler queues what is due; until nothing waits.
        let env = &self.env;
        crate::world::backlog::drain_until(env, 100, async || {
            crate::world::backlog::waiting(env, USER).await == 0
        })
        .await;
        // Then settle.
        for round in 0..200 {
            self.run(SyncReason::Push).await;
            self.apply_feed().await;
            self.run(SyncReason::RecordChange).await;
            if round >= 3 && self.waiting().await == 0 {
                break;
            }
        }
        for _ in 0..2 {
            self.run(SyncReason::Push).await;
            self.apply_feed().await;
        }
        let waiting = self.waiting().await;
        if waiting > 0 {
            let held = crate::world::backlog::describe_waiting(
                &self.env,
                USER,
                shared::domain::Collection::Calendar,
            )
            .await;
            panic!(
                "{waiting} records still waiting: {held}; {}",
                self.log.join("; ")
            );
        }
    }

    async fn check(&self, seed: u64) {
        let events = self.google_events().await;
        let context = || format!("seed {seed}: {}", self.log.join("; "));
        // No duplicates: one Google event per CRM record.
        let mut by_crm: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
        for e in &events {
            if let Some(id) = e
                .extended_properties
                .as_ref()
                .and_then(|p| p.private.get("crmId"))
            {
                by_crm.entry(id.clone()).or_default().push(e);
            }
        }
        for (id, list) in &by_crm {
            assert_eq!(
                list.len(),
                1,
                "duplicate Google events for {id}; {}",
                context()
            );
        }
        // Every live, linked CRM record has its Google twin with the same content.
        let pairs =
            crate::world::all_pairs(&self.env, USER, shared::domain::Collection::Calendar).await;
        for (id, content) in &self.crm {
            let Some(content) = content else { continue };
            if self.unlinked.contains(id) {
                continue;
            }
            let pair = pairs.iter().find(|p| p.crm_id.as_str() == id);
            let pair =
                pair.unwrap_or_else(|| panic!("no pair for live CRM record {id}; {}", context()));
            if pair.deleted_at.is_some() {
                let (_, feed) = self
                    .env
                    .call("GET", "/v1/changes?limit=500", &self.env.sync, None)
                    .await;
                let mine: Vec<String> = feed["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| {
                        r["crm_id"] == id.as_str()
                            || r["google_id"].as_str() == pair.google_id.as_deref()
                    })
                    .map(|r| {
                        format!(
                            "{} {} {}",
                            r["kind"], r["crm_id"], r["data"]["event"]["title"]
                        )
                    })
                    .collect();
                panic!(
                    "live CRM record {id} has a tombstoned pair {pair:?}; feed {mine:?}; {}",
                    context()
                );
            }
            let gid = pair
                .google_id
                .as_deref()
                .unwrap_or_else(|| panic!("{id} never reached Google; {}", context()));
            let google = events
                .iter()
                .find(|e| e.id == gid)
                .unwrap_or_else(|| panic!("{id}'s Google event {gid} is gone; {}", context()));
            let crm: CrmEvent = serde_json::from_value(strip(content.clone())).unwrap();
            assert_eq!(
                Normalized::from_google(&serde_json::to_value(google).unwrap()),
                Normalized::from_crm(&crm),
                "{id} differs between the CRM and Google; {}",
                context()
            );
        }
        // Every Google event is accounted for: paired (live or unlinked by a CRM delete).
        for e in &events {
            let pair = pairs
                .iter()
                .find(|p| p.google_id.as_deref() == Some(e.id.as_str()));
            assert!(
                pair.is_some(),
                "Google event {} ({:?}) unknown to the sync; {}",
                e.id,
                e.summary,
                context()
            );
        }
    }
}

/// Drops what the CRM keeps beside the event itself.
fn strip(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("updated_at");
        m.remove("version");
        m.remove("google_event_id");
    }
    v
}

#[tokio::test]
async fn calendar_sync_converges_for_random_interleavings() {
    crate::world::for_each_seed(SEEDS, async |seed| {
        let mut sim = Sim::new(seed).await;
        if let Some(k) = crate::world::large_backlog(seed, &mut sim.rng) {
            if sim.rng.gen_bool(0.5) {
                sim.set_paused(true).await;
            }
            sim.load(k).await;
        }
        for _ in 0..STEPS {
            sim.step().await;
        }
        sim.quiesce().await;
        sim.check(seed).await;
    })
    .await;
}
