//! Contacts against a People API as strict as Google's: writes Google applied though the
//! answer was lost, renamed contacts, profile data, bound tokens — the user's contacts are
//! neither duplicated nor polluted (embedded store; no emulators needed).

use crate::world::{Backend, Env};
use google_sandbox::{FaultKind, FaultSpec};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::google::people::{ClientData, ListConnections, Person, PersonField};
use shared::queue::SyncReason;

const USER: &str = "u-fidel";
const ALICE: &str = "alice@example.com";

struct World {
    env: Env,
    /// A token of alice's, as Google Contacts' own UI would act.
    alice: SecretString,
}

impl World {
    async fn new() -> Self {
        let env = Env::new_on(Backend::Embedded).await;
        let q = env.connect(USER, &["contacts"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
        let w = Self { env, alice };
        w.run().await;
        w
    }

    async fn run(&self) {
        self.env.run_job(USER, SyncReason::Scheduled).await;
    }

    async fn put(&self, crm_id: &str, contact: Value) {
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/contacts/{crm_id}"),
                &self.env.sync,
                Some(contact),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }

    async fn state(&self, crm_id: &str) -> Value {
        let (s, v) = self
            .env
            .call(
                "GET",
                &format!("/v1/users/{USER}/contacts/{crm_id}"),
                &self.env.sync,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Every contact in alice's address book (contact sources only).
    async fn google(&self) -> Vec<Person> {
        self.env.all_google_contacts(&self.alice).await
    }

    /// Google contacts carrying the CRM link of `crm_id`.
    async fn copies(&self, crm_id: &str) -> usize {
        self.google()
            .await
            .iter()
            .filter(|p| p.client_value("crmId") == Some(crm_id))
            .count()
    }

    async fn kinds(&self) -> Vec<String> {
        self.env
            .changes()
            .await
            .iter()
            .filter_map(|c| c["kind"].as_str().map(str::to_owned))
            .collect()
    }

    fn requests(&self, method: &str, path: &str) -> usize {
        self.env.google_requests(method, path)
    }
}

fn lead(given: &str, email: &str) -> Value {
    json!({
        "kind": "lead",
        "name": {"given": given, "family": "Rossi"},
        "emails": [{"address": email, "type": "work", "primary": true}],
        "organization": {"company": "Acme S.p.A.", "title": "Buyer"},
    })
}

#[tokio::test]
async fn a_create_google_applied_but_answered_500_makes_no_duplicate_on_either_side() {
    let w = World::new().await;
    for (id, name) in [("C-1", "Ada"), ("C-2", "Bea"), ("C-3", "Cleo")] {
        w.put(
            id,
            lead(name, &format!("{}@example.org", name.to_lowercase())),
        )
        .await;
    }
    // Google makes the three contacts, then the answer is lost (a 500 on the way back).
    w.env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::InternalError)
            .path_prefix("/v1/people:batchCreateContacts")
            .count(1)
            .applied(),
    );
    w.env.sandbox.clear_request_log();
    w.run().await;
    assert_eq!(
        w.requests("POST", "/v1/people:batchCreateContacts"),
        1,
        "a create is never sent twice blindly"
    );
    for id in ["C-1", "C-2", "C-3"] {
        assert_eq!(w.copies(id).await, 1, "{id}: one contact in Google");
        assert_eq!(w.state(id).await["state"], "synced", "{id}: linked to it");
    }
    // Later passes neither create again nor bring a copy back to the CRM.
    w.run().await;
    w.run().await;
    assert_eq!(w.google().await.len(), 3);
    assert_eq!(w.requests("POST", "/v1/people:batchCreateContacts"), 1);
    assert!(
        !w.kinds().await.iter().any(|k| k == "contact_created"),
        "the CRM is not told of its own contacts: {:?}",
        w.kinds().await
    );
}

#[tokio::test]
async fn a_create_refused_by_a_rate_limit_is_sent_again_and_an_unapplied_500_waits() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    // 429: Google did nothing; the client may send it again at once.
    w.env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::TooManyRequests)
            .path_prefix("/v1/people:batchCreateContacts")
            .retry_after_secs(0)
            .count(1),
    );
    w.env.sandbox.clear_request_log();
    w.run().await;
    assert_eq!(w.requests("POST", "/v1/people:batchCreateContacts"), 2);
    assert_eq!(w.copies("C-1").await, 1);
    assert_eq!(w.state("C-1").await["state"], "synced");

    // A 500 that did nothing: looked for (not there), the record waits, the next pass
    // creates it — once.
    w.put("C-2", lead("Bea", "bea@example.org")).await;
    w.env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::InternalError)
            .path_prefix("/v1/people:batchCreateContacts")
            .count(1),
    );
    w.env.sandbox.clear_request_log();
    w.run().await;
    assert_eq!(w.requests("POST", "/v1/people:batchCreateContacts"), 1);
    assert_eq!(w.copies("C-2").await, 0);
    assert_ne!(w.state("C-2").await["state"], "synced");
    // Google might still show it late (its write-propagation delay): not made again before
    // the reads had time to find it…
    w.run().await;
    assert_eq!(w.requests("POST", "/v1/people:batchCreateContacts"), 1);
    // …then made, once.
    w.env.clock.advance(shared::contacts::sync::CREATE_SETTLE);
    w.run().await;
    assert_eq!(w.copies("C-2").await, 1);
    assert_eq!(w.state("C-2").await["state"], "synced");
}

#[tokio::test]
async fn a_single_create_applied_then_failed_is_found_not_made_twice() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.run().await;
    let rn = w.google().await[0].resource_name.clone();
    // Alice deletes it in Google while the CRM edits it: the edit wins with a new contact
    // (people.createContact), whose answer is lost.
    w.env
        .app
        .google
        .delete_contact(&w.alice, &rn)
        .await
        .unwrap();
    w.put("C-1", lead("Ada Maria", "ada@example.org")).await;
    w.env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::Unavailable)
            .path_prefix("/v1/people:createContact")
            .count(1)
            .applied(),
    );
    w.env.sandbox.clear_request_log();
    w.run().await;
    w.run().await;
    assert!(w.requests("POST", "/v1/people:createContact") <= 1);
    assert_eq!(w.copies("C-1").await, 1, "one contact in Google");
    assert_eq!(w.state("C-1").await["state"], "synced");
}

#[tokio::test]
async fn a_second_google_copy_carrying_our_link_is_not_a_new_crm_contact() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.run().await;
    let original = w.google().await.remove(0);
    // A copy Google made from an earlier lost answer (before this product stopped resending
    // creates): same CRM link, same group.
    let mut copy = original.clone();
    copy.resource_name.clear();
    copy.etag = None;
    copy.metadata = None;
    copy.client_data = original
        .client_data
        .iter()
        .map(|c| ClientData::new(&c.key, &c.value))
        .collect();
    w.env
        .app
        .google
        .create_contact(&w.alice, &copy, &PersonField::ALL)
        .await
        .unwrap();
    w.run().await;
    w.run().await;
    assert!(
        !w.kinds().await.iter().any(|k| k == "contact_created"),
        "{:?}",
        w.kinds().await
    );
    let state = w.state("C-1").await;
    assert_eq!(state["state"], "synced", "{state}");
    assert_eq!(
        state["google_resource_name"], original.resource_name,
        "{state}"
    );
}

impl World {
    /// Changes recorded for the CRM since `from`.
    async fn kinds_since(&self, from: usize) -> Vec<String> {
        self.kinds().await.split_off(from)
    }
}

#[tokio::test]
async fn profile_and_directory_data_never_reach_the_crm_nor_the_contact() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.run().await;
    let rn = w.google().await[0].resource_name.clone();
    let before = w.kinds().await.len();
    // Google links the contact to a Workspace directory entry (its e-mail is a colleague's
    // account): Google's default reads would merge the entry's name, e-mail and title in.
    assert!(w.env.sandbox.link_profile(
        ALICE,
        &rn,
        "DOMAIN_PROFILE",
        json!({"names": [{"givenName": "Augusta Ada", "familyName": "King"}],
               "emailAddresses": [{"value": "ada.king@corp.example"}],
               "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
               "organizations": [{"name": "Corp", "title": "Countess", "department": "Math"}]}),
    ));
    w.env.sandbox.invalidate_sync_tokens(ALICE);
    w.run().await;
    w.run().await;
    assert_eq!(
        w.kinds_since(before).await,
        Vec::<String>::new(),
        "the directory entry is not a contact edit"
    );
    // A CRM edit is written back with the contact's own data only.
    let mut edited = lead("Ada", "ada@example.org");
    edited["notes"] = json!("Called back.");
    w.put("C-1", edited).await;
    w.run().await;
    let own = w.google().await.remove(0);
    let emails: Vec<_> = own
        .email_addresses
        .iter()
        .filter_map(|e| e.value.clone())
        .collect();
    assert_eq!(emails, ["ada@example.org"]);
    assert!(own.phone_numbers.is_empty());
    assert_eq!(own.organizations.len(), 1);
    assert_eq!(own.organizations[0].title.as_deref(), Some("Buyer"));
    assert_eq!(own.names[0].given_name.as_deref(), Some("Ada"));
    assert_eq!(w.state("C-1").await["state"], "synced");
    // Every read the product made asked for the contact source only.
    let reads: Vec<_> = w
        .env
        .sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/people"))
        .collect();
    assert!(!reads.is_empty());
    for r in reads {
        let q = r.query.unwrap_or_default();
        assert!(
            q.contains("sources=READ_SOURCE_TYPE_CONTACT"),
            "{} {q}",
            r.path
        );
    }
}

#[tokio::test]
async fn a_contact_google_renames_keeps_its_pair() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.put("C-2", lead("Bea", "bea@example.org")).await;
    w.run().await;
    let people = w.google().await;
    let rn_of = |id: &str| {
        people
            .iter()
            .find(|p| p.client_value("crmId") == Some(id))
            .unwrap()
            .resource_name
            .clone()
    };
    let before = w.kinds().await.len();
    // Linked to a profile, the contact gets a new resource name; an incremental read shows
    // it under that name, with the old one in previousResourceNames.
    let renamed = w.env.sandbox.rename_contact(ALICE, &rn_of("C-1")).unwrap();
    w.run().await;
    assert_eq!(
        w.state("C-1").await["google_resource_name"],
        renamed.as_str()
    );
    // A full read (sync token expired) finds the other renamed contact through the closing
    // check: the old name's batchGet answers the person under its new name.
    let renamed2 = w.env.sandbox.rename_contact(ALICE, &rn_of("C-2")).unwrap();
    w.env.sandbox.invalidate_sync_tokens(ALICE);
    w.run().await;
    w.run().await;
    assert_eq!(
        w.state("C-2").await["google_resource_name"],
        renamed2.as_str()
    );
    assert_eq!(
        w.kinds_since(before).await,
        Vec::<String>::new(),
        "no new contact for the CRM, no deletion"
    );
    // The CRM's next edit reaches the renamed contact; still two contacts.
    let mut edited = lead("Ada", "ada@example.org");
    edited["notes"] = json!("Renamed by Google.");
    w.put("C-1", edited).await;
    w.run().await;
    let people = w.google().await;
    assert_eq!(people.len(), 2);
    let ada = people
        .iter()
        .find(|p| p.resource_name == renamed)
        .expect("the renamed contact");
    assert_eq!(
        ada.biographies[0].value.as_deref(),
        Some("Renamed by Google.")
    );
    assert_eq!(w.state("C-1").await["state"], "synced");
}

#[tokio::test]
async fn a_sync_token_google_refuses_for_other_parameters_restarts_the_read_in_full() {
    let w = World::new().await;
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.run().await;
    w.run().await;
    let before = w.kinds().await.len();
    // The stored token is one Google bound to other parameters (e.g. minted by an earlier
    // version that read with other fields or sources): Google answers 400 INVALID_ARGUMENT.
    let other = w
        .env
        .app
        .google
        .list_connections(
            &w.alice,
            &ListConnections {
                person_fields: vec![PersonField::Names],
                request_sync_token: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .next_sync_token
        .unwrap();
    let user = shared::domain::UserId::parse(USER).unwrap();
    let stored = w
        .env
        .app
        .store
        .get_cursor(&w.env.tenant, &user, "contacts")
        .await
        .unwrap()
        .unwrap();
    let mut cursor = stored.value;
    cursor.sync_token = Some(other);
    w.env
        .app
        .store
        .put_cursor(&w.env.tenant, &user, &cursor, Some(stored.version))
        .await
        .unwrap();
    w.env.sandbox.clear_request_log();
    // A Google edit made meanwhile still arrives: the read starts over without the token.
    let rn = w.google().await[0].resource_name.clone();
    let mut p = w.google().await.remove(0);
    p.biographies = vec![shared::google::people::Biography {
        value: Some("Edited in Google.".into()),
        ..Default::default()
    }];
    w.env
        .app
        .google
        .update_contact(
            &w.alice,
            &rn,
            &p,
            &[PersonField::Biographies],
            &PersonField::ALL,
        )
        .await
        .unwrap();
    w.run().await;
    let refused = w
        .env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.path == "/v1/people/me/connections" && r.status == 400)
        .count();
    assert_eq!(refused, 1, "refused once, then read in full");
    assert_eq!(w.kinds_since(before).await, ["contact_updated"]);
    let (_, v) = w
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/contacts/C-1"),
            &w.env.sync,
            None,
        )
        .await;
    assert_eq!(v["state"], "synced", "{v}");
    // And the next pass is incremental again, with a token Google accepts.
    w.env.sandbox.clear_request_log();
    w.run().await;
    let log = w.env.sandbox.request_log();
    let lists: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/v1/people/me/connections")
        .collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].status, 200);
    assert!(lists[0]
        .query
        .as_deref()
        .unwrap_or("")
        .contains("syncToken="));
}

#[tokio::test]
async fn only_a_group_google_lets_contacts_join_can_be_the_synced_group() {
    let w = World::new().await;
    let choose = |group: &'static str| {
        let env = &w.env;
        async move {
            env.patch_account(USER, json!({ "contact_group": group }))
                .await
        }
    };
    // A deprecated system group: Google refuses to add members, so every create would fail.
    for refused in [
        "contactGroups/friends",
        "contactGroups/coworkers",
        "contactGroups/all",
    ] {
        let (s, v) = choose(refused).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}: {v}");
        assert!(v.to_string().contains("deprecated system group"), "{v}");
    }
    let (s, v) = choose("contactGroups/starred").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    w.put("C-1", lead("Ada", "ada@example.org")).await;
    w.run().await;
    let ada = w.google().await.remove(0);
    assert!(ada.in_group("contactGroups/starred"));
    assert_eq!(w.state("C-1").await["state"], "synced");
}

#[tokio::test]
async fn a_group_named_like_the_tenants_but_for_case_is_the_synced_group() {
    let env = Env::new_on(Backend::Embedded).await;
    let (s, v) = env
        .patch_settings(json!({"defaults": {"contact_group_name": "CRM Contacts"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let q = env.connect(USER, &["contacts"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
    let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
    // The user already has "crm contacts": creating "CRM Contacts" is refused (409).
    let theirs = env
        .app
        .google
        .create_contact_group(&alice, "crm contacts", &[])
        .await
        .unwrap();
    env.run_job(USER, SyncReason::Scheduled).await;
    let (_, account) = env.account(USER).await;
    assert_eq!(
        account["settings"]["contact_group"],
        theirs.resource_name.as_str(),
        "{account}"
    );
}

#[tokio::test]
async fn a_slow_batch_is_waited_for_not_cut_off_at_the_single_call_timeout() {
    let w = World::new().await;
    for i in 0..3 {
        w.put(
            &format!("C-{i}"),
            lead(&format!("Ada{i}"), &format!("ada{i}@example.org")),
        )
        .await;
    }
    // Google takes 22 s over a big batch: longer than one call may take (20 s).
    w.env.sandbox.inject_fault(
        FaultSpec::new(FaultKind::Latency)
            .path_prefix("/v1/people:batchCreateContacts")
            .latency_ms(22_000)
            .count(1),
    );
    w.env.sandbox.clear_request_log();
    w.run().await;
    assert_eq!(w.requests("POST", "/v1/people:batchCreateContacts"), 1);
    for i in 0..3 {
        assert_eq!(w.state(&format!("C-{i}")).await["state"], "synced");
    }
    assert_eq!(w.google().await.len(), 3);
}
