//! Property: whatever the interleaving of CRM edits, Google edits, group moves, deletes,
//! conflicting edits, retried deliveries and worker runs, after quiescence both sides agree
//! on the group's members under the mapping — no duplicates, nothing lost, and every
//! difference one the deletion policy explains (an untagged record keeps its data).
//!
//! A simulated CRM drives the public API and applies the change feed as a CRM would
//! (creating records for Google-born contacts and acknowledging them). Besides single edits:
//! bursts (10–120 records, and for one seed in 25 a mass push of up to 5,000), pauses and
//! resumes, the grant revoked then reconnected, Google edits while a pass runs, records over
//! a field's limit (refused, nothing changed), queued jobs run as SQS would, under per-job
//! call caps of 20, 50 and 200. A failing seed is
//! printed with its operations so it can be replayed (`SEED=n`); `SEEDS=n` runs more seeds.

use crate::world::{Backend, Env};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::contacts::model::CrmContact;
use shared::contacts::normal::NormalizedContact;
use shared::domain::Collection;
use shared::google::people::{EmailAddress, Membership, Name, Person, PersonField};
use shared::queue::SyncReason;
use std::collections::{BTreeMap, BTreeSet};

const USER: &str = "u-sim";
const ALICE: &str = "alice@example.com";
const SEEDS: u64 = 50;
const STEPS: usize = 30;

struct Sim {
    env: Env,
    alice: SecretString,
    group: String,
    rng: StdRng,
    /// The CRM's records: id → content (None once deleted in the CRM).
    crm: BTreeMap<String, Option<Value>>,
    /// Records untagged (their contact left the group or was deleted in Google).
    untagged: BTreeSet<String>,
    feed_cursor: Option<String>,
    by_google: BTreeMap<String, String>,
    last_put: Option<(String, Value)>,
    next_id: u32,
    log: Vec<String>,
    paused: bool,
    grant_dead: bool,
}

fn contact(given: &str, n: u32) -> Value {
    json!({
        "kind": if n.is_multiple_of(2) { "contact" } else { "lead" },
        "name": {"given": given, "family": "Sim"},
        "emails": [{"address": format!("p{n}@example.org"), "type": "work"}],
        "organization": {"company": format!("Company {}", n % 7)},
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
        env.connect(USER, &["contacts"], ALICE, "").await;
        let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
        env.run_job(USER, SyncReason::Scheduled).await;
        let group = env.account(USER).await.1["settings"]["contact_group"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            env,
            alice,
            group,
            rng: StdRng::seed_from_u64(seed),
            crm: BTreeMap::new(),
            untagged: BTreeSet::new(),
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

    async fn set_paused(&mut self, paused: bool) {
        self.log.push(format!("paused {paused}"));
        if self.env.set_paused(USER, paused).await {
            self.paused = paused;
        }
    }

    async fn reconnect(&mut self) {
        self.log.push("reconnect".into());
        self.env.connect(USER, &["contacts"], ALICE, "").await;
        self.grant_dead = false;
        self.paused = false;
    }

    async fn put(&mut self, id: &str, mut content: Value) {
        content["updated_at"] = json!(now());
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/contacts/{id}"),
                &self.env.sync,
                Some(content.clone()),
            )
            .await;
        assert!(
            s == StatusCode::ACCEPTED || s == StatusCode::OK,
            "PUT {id}: {s} {v}"
        );
        self.crm.insert(id.to_owned(), Some(content.clone()));
        self.untagged.remove(id);
        self.last_put = Some((id.to_owned(), content));
    }

    async fn people(&self) -> Vec<Person> {
        self.env.all_google_contacts(&self.alice).await
    }

    fn live_crm(&self) -> Vec<String> {
        self.crm
            .iter()
            .filter(|(k, v)| v.is_some() && !self.untagged.contains(*k))
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
                let crm_id = r["crm_id"].as_str().map(str::to_owned).or_else(|| {
                    r["google_id"]
                        .as_str()
                        .and_then(|g| self.by_google.get(g).cloned())
                });
                match (kind, crm_id) {
                    ("contact_created", None) => {
                        self.next_id += 1;
                        let id = format!("G-{}", self.next_id);
                        let rn = r["google_id"].as_str().unwrap().to_owned();
                        self.crm
                            .insert(id.clone(), Some(r["data"]["contact"].clone()));
                        self.by_google.insert(rn.clone(), id.clone());
                        let (s, v) = self
                            .env
                            .call("POST", "/v1/changes/ack", &self.env.sync, Some(json!({"items": [{"user": USER, "google_resource_name": rn, "crm_id": id}]})))
                            .await;
                        assert_eq!(s, StatusCode::OK, "{v}");
                        self.log
                            .push(format!("ack {rn} as {id}: {}", v["items"][0]["result"]));
                        if v["items"][0]["result"] == "deleted" {
                            self.untagged.insert(id);
                        }
                    }
                    // News older than the CRM's own later edit is superseded (that edit is
                    // on its way to Google, and wins as the later one): a CRM skips it.
                    (_, Some(id)) if self.superseded(&id, r) => {
                        self.log.push(format!("skip superseded {kind} of {id}"));
                    }
                    ("contact_created", Some(id)) => {
                        self.crm
                            .insert(id.clone(), Some(r["data"]["contact"].clone()));
                        self.untagged.remove(&id);
                    }
                    ("contact_updated", Some(id)) => {
                        if let Some(Some(_)) = self.crm.get(&id) {
                            self.crm
                                .insert(id.clone(), Some(r["data"]["contact"].clone()));
                        }
                    }
                    ("contact_deleted", Some(id)) => {
                        self.crm.insert(id, None);
                    }
                    ("contact_untag", Some(id)) => {
                        self.untagged.insert(id);
                    }
                    _ => {}
                }
            }
        }
    }

    async fn step(&mut self) {
        let op = self.rng.gen_range(0..18);
        let live = self.live_crm();
        match op {
            0 | 1 => {
                self.next_id += 1;
                let id = format!("C-{}", self.next_id);
                let n = self.next_id;
                self.log.push(format!("crm create {id}"));
                self.put(&id, contact(&format!("Person {id}"), n)).await;
            }
            2 if !live.is_empty() => {
                let id = live[self.rng.gen_range(0..live.len())].clone();
                let n = self.rng.gen_range(0..1000);
                self.log.push(format!("crm edit {id}"));
                self.put(&id, contact(&format!("Edited {id} {n}"), n)).await;
            }
            3 if !live.is_empty() => {
                let id = live[self.rng.gen_range(0..live.len())].clone();
                self.log.push(format!("crm delete {id}"));
                let (s, v) = self
                    .env
                    .call(
                        "DELETE",
                        &format!("/v1/users/{USER}/contacts/{id}"),
                        &self.env.sync,
                        None,
                    )
                    .await;
                assert!(s.is_success() || s == StatusCode::NOT_FOUND, "{v}");
                self.crm.insert(id, None);
            }
            4 | 5 => {
                let people = self.people().await;
                let members: Vec<&Person> =
                    people.iter().filter(|p| p.in_group(&self.group)).collect();
                if members.is_empty() {
                    return;
                }
                let p = members[self.rng.gen_range(0..members.len())].clone();
                let n = self.rng.gen_range(0..1000);
                self.log
                    .push(format!("google edit {} → {n}", p.resource_name));
                let mut edited = p.clone();
                edited.names = vec![Name {
                    given_name: Some(format!("Google edit {n}")),
                    family_name: Some("Sim".into()),
                    ..Default::default()
                }];
                self.env
                    .app
                    .google
                    .update_contact(
                        &self.alice,
                        &p.resource_name,
                        &edited,
                        &[PersonField::Names],
                        &PersonField::ALL,
                    )
                    .await
                    .unwrap();
            }
            6 => {
                let people = self.people().await;
                if people.is_empty() {
                    return;
                }
                let p = &people[self.rng.gen_range(0..people.len())];
                self.log.push(format!("google delete {}", p.resource_name));
                self.env
                    .app
                    .google
                    .delete_contact(&self.alice, &p.resource_name)
                    .await
                    .unwrap();
            }
            7 => {
                // A group move: a contact leaves the group, or one outside joins it.
                let people = self.people().await;
                if people.is_empty() {
                    return;
                }
                let p = &people[self.rng.gen_range(0..people.len())];
                let rn = vec![p.resource_name.clone()];
                let (add, remove) = if p.in_group(&self.group) {
                    (vec![], rn)
                } else {
                    (rn, vec![])
                };
                self.log.push(format!(
                    "google group move {} ({})",
                    p.resource_name,
                    if add.is_empty() { "out" } else { "in" }
                ));
                self.env
                    .app
                    .google
                    .modify_contact_group_members(&self.alice, &self.group, &add, &remove)
                    .await
                    .unwrap();
            }
            8 => {
                let n = self.rng.gen_range(0..1000);
                let in_group = self.rng.gen_bool(0.7);
                self.log
                    .push(format!("google create (in group: {in_group})"));
                let p = Person {
                    names: vec![Name {
                        given_name: Some(format!("Born in Google {n}")),
                        ..Default::default()
                    }],
                    email_addresses: vec![EmailAddress {
                        value: Some(format!("born{n}@example.org")),
                        ..Default::default()
                    }],
                    memberships: if in_group {
                        vec![Membership::of_group(&self.group)]
                    } else {
                        vec![]
                    },
                    ..Default::default()
                };
                self.env
                    .app
                    .google
                    .create_contact(&self.alice, &p, &PersonField::ALL)
                    .await
                    .unwrap();
            }
            9 => {
                // A retried delivery of the CRM's last push (its content as first sent).
                if let Some((id, content)) = self.last_put.clone() {
                    self.log.push(format!("crm retry {id}"));
                    let (s, v) = self
                        .env
                        .call(
                            "PUT",
                            &format!("/v1/users/{USER}/contacts/{id}"),
                            &self.env.sync,
                            Some(content),
                        )
                        .await;
                    assert!(s.is_success(), "{v}");
                }
            }
            11 if self.rng.gen_bool(0.4) => {
                // A backlog: the CRM loads many contacts at once.
                let k = self.rng.gen_range(10..120);
                self.log.push(format!("crm burst of {k}"));
                for _ in 0..k {
                    self.next_id += 1;
                    let id = format!("C-{}", self.next_id);
                    let n = self.next_id;
                    self.put(&id, contact(&format!("Person {id}"), n)).await;
                }
            }
            12 if !self.grant_dead => {
                let paused = !self.paused;
                self.set_paused(paused).await;
            }
            13 if self.rng.gen_bool(0.3) => {
                if self.grant_dead {
                    self.reconnect().await;
                } else {
                    self.log.push("grant revoked".into());
                    self.alice = self
                        .env
                        .revoke_grants(ALICE, "https://www.googleapis.com/auth/contacts");
                    self.grant_dead = true;
                }
            }
            14 => {
                let ran = self.env.drain_jobs(10_000).await;
                self.log.push(format!("queue ran {ran}"));
            }
            15 => {
                // A Google edit while a pass is running.
                let people = self.people().await;
                let members: Vec<&Person> =
                    people.iter().filter(|p| p.in_group(&self.group)).collect();
                if members.is_empty() {
                    return;
                }
                let p = members[self.rng.gen_range(0..members.len())].clone();
                let n = self.rng.gen_range(0..1000);
                self.log.push(format!(
                    "google edit {} → {n} during a pass",
                    p.resource_name
                ));
                let mut edited = p.clone();
                edited.names = vec![Name {
                    given_name: Some(format!("Mid-pass edit {n}")),
                    family_name: Some("Sim".into()),
                    ..Default::default()
                }];
                let edit = async {
                    tokio::task::yield_now().await;
                    self.env
                        .app
                        .google
                        .update_contact(
                            &self.alice,
                            &p.resource_name,
                            &edited,
                            &[PersonField::Names],
                            &PersonField::ALL,
                        )
                        .await
                        .unwrap();
                };
                tokio::join!(self.env.run_job(USER, SyncReason::Scheduled), edit);
            }
            16 => {
                // A record over a field's limit: refused, naming it; nothing changes.
                let id = match live.is_empty() || self.rng.gen_bool(0.3) {
                    true => format!("C-{}", self.next_id + 1),
                    false => live[self.rng.gen_range(0..live.len())].clone(),
                };
                self.log.push(format!("crm oversized put {id}"));
                let mut content = contact(&format!("Huge {id}"), 1);
                content["notes"] = json!("x".repeat(9000));
                content["updated_at"] = json!(now());
                let (s, v) = self
                    .env
                    .call(
                        "PUT",
                        &format!("/v1/users/{USER}/contacts/{id}"),
                        &self.env.sync,
                        Some(content),
                    )
                    .await;
                assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
                assert_eq!(v["error"]["code"], "invalid_request", "{v}");
                assert!(
                    v["error"]["message"].as_str().unwrap().contains("8192"),
                    "{v}"
                );
            }
            _ => {
                let reason = if self.rng.gen_bool(0.5) {
                    SyncReason::Scheduled
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

    /// A CRM's mass push (an import, a first connection): `k` records, 1,000 a request.
    async fn load(&mut self, k: usize) {
        self.log.push(format!("crm mass push of {k}"));
        let mut records = Vec::with_capacity(k);
        for _ in 0..k {
            self.next_id += 1;
            let id = format!("C-{}", self.next_id);
            let mut content = contact(&format!("Person {id}"), self.next_id);
            content["updated_at"] = json!(now());
            records.push((id, content));
        }
        for chunk in records.chunks(1000) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|(id, c)| json!({"crm_id": id, "contact": c}))
                .collect();
            let (s, v) = self
                .env
                .call(
                    "POST",
                    &format!("/v1/users/{USER}/contacts:push"),
                    &self.env.sync,
                    Some(json!({ "contacts": items })),
                )
                .await;
            assert!(s.is_success(), "contacts:push: {s} {v}");
            assert_eq!(v["accepted"], chunk.len(), "{v}");
        }
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
            crate::world::backlog::waiting_in(env, USER, Collection::Contacts).await == 0
        })
        .await;
        for round in 0..100 {
            self.run(SyncReason::Scheduled).await;
            self.apply_feed().await;
            self.run(SyncReason::RecordChange).await;
            if round >= 3
                && crate::world::backlog::waiting_in(&self.env, USER, Collection::Contacts).await
                    == 0
            {
                break;
            }
        }
        self.run(SyncReason::Scheduled).await;
        self.apply_feed().await;
    }

    async fn check(&self, seed: u64) {
        let people = self.people().await;
        let context = || format!("seed {seed}: {}", self.log.join("; "));
        let members: Vec<&Person> = people.iter().filter(|p| p.in_group(&self.group)).collect();
        // No duplicates: one Google contact per CRM record.
        let mut by_crm: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &people {
            if let Some(id) = p.client_value("crmId") {
                *by_crm.entry(id).or_default() += 1;
            }
        }
        for (id, n) in &by_crm {
            assert_eq!(*n, 1, "{n} Google contacts for {id}; {}", context());
        }
        let pairs = crate::world::all_pairs(&self.env, USER, Collection::Contacts).await;
        // Every live, tagged CRM record is a member with the same content.
        for (id, content) in &self.crm {
            let Some(content) = content else { continue };
            if self.untagged.contains(id) {
                continue;
            }
            let pair = pairs
                .iter()
                .find(|p| p.crm_id.as_str() == id)
                .unwrap_or_else(|| panic!("no pair for live CRM record {id}; {}", context()));
            assert!(
                pair.deleted_at.is_none(),
                "live CRM record {id} has a tombstoned pair; {}",
                context()
            );
            let rn = pair
                .google_id
                .as_deref()
                .unwrap_or_else(|| panic!("{id} never reached Google; {}", context()));
            let p = members
                .iter()
                .find(|p| p.resource_name == rn)
                .unwrap_or_else(|| {
                    panic!("{id}'s contact {rn} is not in the group; {}", context())
                });
            let mut content = content.clone();
            if let Some(m) = content.as_object_mut() {
                m.remove("updated_at");
                m.remove("version");
                m.remove("google_resource_name");
            }
            let crm: CrmContact = serde_json::from_value(content).unwrap();
            let google = NormalizedContact::from_person(p);
            let crm = NormalizedContact::from_crm(&crm);
            assert_eq!(
                google,
                crm,
                "{id} differs between the CRM and Google; {}",
                context()
            );
        }
        // Every member of the group is accounted for: paired with a live pair.
        for p in &members {
            let pair = pairs.iter().find(|x| {
                x.google_id.as_deref() == Some(p.resource_name.as_str()) && x.deleted_at.is_none()
            });
            assert!(
                pair.is_some(),
                "group member {} ({:?}) unknown to the sync (its pairs: {:?}); {}",
                p.resource_name,
                p.names.first().and_then(|n| n.given_name.clone()),
                pairs
                    .iter()
                    .filter(|x| x.google_id.as_deref() == Some(p.resource_name.as_str()))
                    .map(|x| (
                        x.crm_id.as_str(),
                        x.deleted_at,
                        x.crm_deleted_at,
                        x.google_born
                    ))
                    .collect::<Vec<_>>(),
                context()
            );
        }
    }
}

#[tokio::test]
async fn contacts_sync_converges_for_random_interleavings() {
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
