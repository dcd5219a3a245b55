//! Contacts two-way sync end to end: CRM pushes through the public API (one record, and mass
//! pushes), Google edits through the sandbox's People API, the worker's passes, the change
//! feed — on DynamoDB Local and moto.

use crate::world::Env;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::contacts::model::CrmContact;
use shared::contacts::normal::{FieldMapping, NormalizedContact};
use shared::google::people::{ClientData, EmailAddress, Membership, Name, Person, PersonField};
use shared::queue::SyncReason;

const USER: &str = "u-carla";
const ALICE: &str = "alice@example.com";

struct World {
    env: Env,
    /// A token of alice's, as Google Contacts' own UI would act.
    alice: SecretString,
}

fn fields() -> Vec<PersonField> {
    PersonField::ALL.to_vec()
}

impl World {
    async fn new() -> Self {
        Self::with_settings(json!({})).await
    }

    async fn with_settings(defaults: Value) -> Self {
        let env = Env::new().await;
        env.set_defaults(defaults).await;
        let q = env.connect(USER, &["contacts"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = env.google_token(ALICE, crate::world::CONTACTS_SCOPE);
        let w = Self { env, alice };
        w.run(SyncReason::Scheduled).await;
        w
    }

    async fn run(&self, reason: SyncReason) {
        self.env.run_job(USER, reason).await;
    }

    async fn put(&self, crm_id: &str, contact: Value) -> (StatusCode, Value) {
        self.env.put_contact(USER, crm_id, contact).await
    }

    async fn account(&self) -> Value {
        self.env.account(USER).await.1
    }

    async fn group(&self) -> String {
        self.account().await["settings"]["contact_group"]
            .as_str()
            .expect("the synced group is kept on the account")
            .to_owned()
    }

    /// Every contact in alice's address book.
    async fn google(&self) -> Vec<Person> {
        self.env.google_contacts(&self.alice, fields()).await
    }

    async fn feed(&self) -> Vec<Value> {
        self.env.changes().await
    }

    /// The CRM's view of one of its contacts.
    async fn contact(&self, crm_id: &str) -> (StatusCode, Value) {
        self.env.contact(USER, crm_id).await
    }

    /// The CRM deletes one of its contacts.
    async fn delete(&self, crm_id: &str) -> StatusCode {
        self.env.delete_contact(USER, crm_id).await.0
    }

    /// Alice edits a contact in Google (the `update` fields of `person`); what Google holds
    /// then.
    async fn edit_in_google(&self, rn: &str, person: &Person, update: &[PersonField]) -> Person {
        self.env
            .app
            .google
            .update_contact(&self.alice, rn, person, update, &fields())
            .await
            .unwrap()
    }

    /// Alice puts a contact into the synced group, or takes it out.
    async fn set_in_group(&self, rn: &str, member: bool) {
        let group = self.group().await;
        let rn = [rn.to_owned()];
        let (add, remove): (&[String], &[String]) = if member { (&rn, &[]) } else { (&[], &rn) };
        self.env
            .app
            .google
            .modify_contact_group_members(&self.alice, &group, add, remove)
            .await
            .unwrap();
    }

    /// Alice deletes a contact in Google.
    async fn delete_in_google(&self, rn: &str) {
        self.env
            .app
            .google
            .delete_contact(&self.alice, rn)
            .await
            .unwrap();
    }

    fn people_requests(&self, method: &str, path: &str) -> usize {
        self.env.google_requests(method, path)
    }
}

fn lead(given: &str, email: &str) -> Value {
    json!({
        "kind": "lead",
        "name": {"given": given, "family": "Rossi"},
        "emails": [{"address": email, "type": "work", "primary": true}],
        "phones": [{"number": "+39 06 1234 5678", "type": "mobile"}],
        "organization": {"company": "Acme S.p.A.", "title": "Buyer"},
        "notes": "Met at the fair.\nFollow up in May."
    })
}

/// The resource name of the Google contact linked to a CRM record.
fn rn_of(people: &[Person], crm_id: &str) -> String {
    people
        .iter()
        .find(|p| p.client_value("crmId") == Some(crm_id))
        .unwrap_or_else(|| panic!("no Google contact for {crm_id}"))
        .resource_name
        .clone()
}

#[tokio::test]
async fn a_crm_contact_reaches_the_group_and_edits_flow_both_ways() {
    let w = World::new().await;
    let (s, v) = w.put("C-1", lead("Carla", "carla@acme.example")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["state"], "pending");
    w.run(SyncReason::RecordChange).await;

    let group = w.group().await;
    let people = w.google().await;
    assert_eq!(people.len(), 1);
    let p = &people[0];
    assert!(p.in_group(&group), "created in the synced group");
    assert_eq!(p.client_value("crmId"), Some("C-1"));
    assert_eq!(p.client_value("crmKind"), Some("lead"));
    let crm: CrmContact = serde_json::from_value(lead("Carla", "carla@acme.example")).unwrap();
    assert_eq!(
        NormalizedContact::from_person(p),
        NormalizedContact::from_crm(&crm)
    );
    let (_, v) = w.contact("C-1").await;
    assert_eq!(v["state"], "synced", "{v}");
    assert_eq!(v["google_resource_name"], p.resource_name.as_str());

    // The user edits the job title in Google: the CRM hears of it.
    let mut edited = p.clone();
    edited.organizations[0].title = Some("Head of purchasing".into());
    w.edit_in_google(&p.resource_name, &edited, &[PersonField::Organizations])
        .await;
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    let updated: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "contact_updated")
        .collect();
    assert_eq!(updated.len(), 1, "{feed:?}");
    assert_eq!(updated[0]["crm_id"], "C-1");
    assert_eq!(
        updated[0]["data"]["contact"]["organization"]["title"],
        "Head of purchasing"
    );

    // The CRM then changes the phone: an update of the mapped fields; the title stays.
    let mut c = lead("Carla", "carla@acme.example");
    c["organization"]["title"] = json!("Head of purchasing");
    c["phones"] = json!([{"number": "+39 333 000 1111", "type": "work"}]);
    assert_eq!(w.put("C-1", c).await.0, StatusCode::ACCEPTED);
    w.env.sandbox.clear_request_log();
    w.run(SyncReason::RecordChange).await;
    assert_eq!(
        w.people_requests("POST", "/v1/people:batchUpdateContacts"),
        1
    );
    let people = w.google().await;
    assert_eq!(people.len(), 1, "no duplicate");
    assert_eq!(
        people[0].phone_numbers[0].value.as_deref(),
        Some("+39 333 000 1111")
    );
    assert_eq!(
        people[0].organizations[0].title.as_deref(),
        Some("Head of purchasing")
    );
    // And nothing echoes back.
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    assert_eq!(w.feed().await.len(), before);
}

#[tokio::test]
async fn a_mass_push_of_1000_costs_five_creates_and_an_idle_run_one_list() {
    let w = World::new().await;
    for chunk in 0..2 {
        let contacts: Vec<Value> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"crm_id": format!("M-{n}"), "contact": lead(&format!("Person {n}"), &format!("p{n}@example.org"))})
            })
            .collect();
        let (s, v) = w
            .env
            .call(
                "POST",
                &format!("/v1/users/{USER}/contacts:push"),
                &w.env.sync,
                Some(json!({"contacts": contacts})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["accepted"], 500);
    }
    // The CRM retries the last request (say its first answer timed out after storing):
    // nothing new, but the sync is queued again while the records wait.
    let contacts: Vec<Value> = (500..1000)
        .map(|n| json!({"crm_id": format!("M-{n}"), "contact": lead(&format!("Person {n}"), &format!("p{n}@example.org"))}))
        .collect();
    let (_, v) = w
        .env
        .call(
            "POST",
            &format!("/v1/users/{USER}/contacts:push"),
            &w.env.sync,
            Some(json!({"contacts": contacts})),
        )
        .await;
    assert_eq!(v["unchanged"], 500, "{v}");
    assert_eq!(v["queued"], true, "{v}");
    w.env.sandbox.clear_request_log();
    w.run(SyncReason::RecordChange).await;
    assert!(
        w.people_requests("POST", "/v1/people:batchCreateContacts") <= 5,
        "{} create requests",
        w.people_requests("POST", "/v1/people:batchCreateContacts")
    );
    let people = w.google().await;
    assert_eq!(people.len(), 1000);
    let group = w.group().await;
    assert!(people.iter().all(|p| p.in_group(&group)));
    let mut ids: Vec<&str> = people
        .iter()
        .filter_map(|p| p.client_value("crmId"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "one contact per CRM record");
    let progress = &w.account().await["contacts"];
    assert_eq!(progress["waiting"], 0, "{progress}");
    assert_eq!(progress["pushed_last_pass"], 1000);

    // Reading our own writes back, then an idle run: one connections.list.
    w.run(SyncReason::Scheduled).await;
    w.env.sandbox.clear_request_log();
    w.run(SyncReason::Scheduled).await;
    let log: Vec<String> = w
        .env
        .sandbox
        .request_log()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        log,
        vec!["GET /v1/people/me/connections".to_owned()],
        "{log:?}"
    );
}

#[tokio::test]
async fn google_born_contacts_are_acknowledged_and_deletions_never_destroy_data() {
    let w = World::new().await;
    let group = w.group().await;
    // The user adds a contact to the group in Google.
    let born = Person {
        names: vec![Name {
            given_name: Some("Gianni".into()),
            family_name: Some("Verdi".into()),
            ..Default::default()
        }],
        email_addresses: vec![EmailAddress {
            value: Some("gianni@example.org".into()),
            ..Default::default()
        }],
        memberships: vec![Membership::of_group(&group)],
        ..Default::default()
    };
    let created = w
        .env
        .app
        .google
        .create_contact(&w.alice, &born, &fields())
        .await
        .unwrap();
    // And one outside the group: not the CRM's business.
    let outside = Person {
        names: vec![Name {
            given_name: Some("Private".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    w.env
        .app
        .google
        .create_contact(&w.alice, &outside, &fields())
        .await
        .unwrap();
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    let news: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "contact_created")
        .collect();
    assert_eq!(news.len(), 1, "{feed:?}");
    assert_eq!(news[0]["google_id"], created.resource_name.as_str());
    assert!(news[0]["crm_id"].is_null());
    assert_eq!(news[0]["data"]["contact"]["name"]["given"], "Gianni");

    // The CRM names it; its next PUT updates the same contact.
    let (s, v) = w
        .env
        .call(
            "POST",
            "/v1/changes/ack",
            &w.env.sync,
            Some(json!({"items": [{"user": USER, "google_resource_name": created.resource_name, "crm_id": "C-77"}]})),
        )
        .await;
    assert_eq!(
        (s, v["items"][0]["result"].clone()),
        (StatusCode::OK, json!("linked")),
        "{v}"
    );
    let mut c = news[0]["data"]["contact"].clone();
    c["notes"] = json!("Imported from Google");
    assert_eq!(w.put("C-77", c).await.0, StatusCode::ACCEPTED);
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    assert_eq!(people.len(), 2, "no duplicate");
    let p = people
        .iter()
        .find(|p| p.resource_name == created.resource_name)
        .unwrap();
    assert_eq!(p.client_value("crmId"), Some("C-77"));

    // Deleting in the CRM (default policy): out of the group, kept in Google.
    let s = w.delete("C-77").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    let p = people
        .iter()
        .find(|p| p.resource_name == created.resource_name)
        .expect("the contact stays in Google");
    assert!(!p.in_group(&group), "but leaves the synced group");

    // Google side: a contact removed from the group, or deleted, is untagged in the CRM.
    w.put("C-2", lead("Dora", "dora@example.org")).await;
    w.put("C-3", lead("Ezio", "ezio@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    let rn = |crm: &str| rn_of(&people, crm);
    w.set_in_group(&rn("C-2"), false).await;
    w.delete_in_google(&rn("C-3")).await;
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    let mut untags: Vec<(String, String)> = feed[before..]
        .iter()
        .map(|r| {
            (
                format!(
                    "{} {}",
                    r["kind"].as_str().unwrap(),
                    r["crm_id"].as_str().unwrap_or("")
                ),
                r["data"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    untags.sort();
    assert_eq!(
        untags,
        vec![
            (
                "contact_untag C-2".to_owned(),
                "removed_from_group".to_owned()
            ),
            (
                "contact_untag C-3".to_owned(),
                "deleted_in_google".to_owned()
            ),
        ]
    );

    // Put back into the group in Google: the same CRM record comes back (no second one),
    // while a repeated read of the untagged state changes nothing.
    w.run(SyncReason::Scheduled).await;
    assert_eq!(w.feed().await.len(), feed.len(), "a tombstone stays quiet");
    w.set_in_group(&rn("C-2"), true).await;
    w.run(SyncReason::Scheduled).await;
    let back = w.feed().await;
    let back: Vec<&Value> = back[feed.len()..].iter().collect();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0]["kind"], "contact_created");
    assert_eq!(back[0]["crm_id"], "C-2");
    assert_eq!(back[0]["data"]["contact"]["kind"], "lead");
    assert_eq!(back[0]["data"]["contact"]["name"]["given"], "Dora");
    let (s, v) = w.contact("C-2").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["google_resource_name"], rn("C-2").as_str(), "{v}");
}

#[tokio::test]
async fn deletes_propagate_when_the_tenant_asks() {
    let w = World::with_settings(json!({"deletion_policy": "propagate"})).await;
    w.put("C-1", lead("Fabio", "fabio@example.org")).await;
    w.put("C-2", lead("Gina", "gina@example.org")).await;
    w.put("C-3", lead("Ivo", "ivo@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    assert_eq!(w.google().await.len(), 3);
    w.delete("C-1").await;
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    assert_eq!(people.len(), 2, "deleted in Google");
    let rn = |crm: &str| rn_of(&people, crm);
    w.delete_in_google(&rn("C-2")).await;
    // Taken out of the group (still in the address book): only untagged, even here.
    w.set_in_group(&rn("C-3"), false).await;
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    let mut news: Vec<(String, String, String)> = feed[before..]
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["crm_id"].as_str().unwrap().to_owned(),
                r["data"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    news.sort();
    assert_eq!(
        news,
        vec![
            ("contact_deleted".into(), "C-2".into(), String::new()),
            (
                "contact_untag".into(),
                "C-3".into(),
                "removed_from_group".into()
            ),
        ]
    );
}

#[tokio::test]
async fn an_expired_sync_token_and_a_lost_create_answer_duplicate_nothing() {
    let w = World::new().await;
    w.put("C-1", lead("Hana", "hana@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    w.run(SyncReason::Scheduled).await;
    let before = w.feed().await.len();
    w.env.sandbox.invalidate_sync_tokens(ALICE);
    w.run(SyncReason::Scheduled).await;
    w.run(SyncReason::Scheduled).await;
    assert_eq!(
        w.feed().await.len(),
        before,
        "a full resync re-announces nothing"
    );
    assert_eq!(w.google().await.len(), 1);

    // A create whose answer was lost: Google made the contact (it carries our CRM link),
    // the CRM's record still waits. The next run finds it instead of creating it again.
    let group = w.group().await;
    let crm: CrmContact = serde_json::from_value(lead("Ivo", "ivo@example.org")).unwrap();
    let mut made = NormalizedContact::from_crm(&crm).to_person(
        &shared::contacts::normal::CrmLink {
            tenant: w.env.tenant.to_string(),
            user: USER.into(),
            crm_id: "C-2".into(),
        },
        &Default::default(),
        None,
    );
    made.memberships = vec![Membership::of_group(&group)];
    made.client_data.push(ClientData::new("otherApp", "kept"));
    w.env
        .app
        .google
        .create_contact(&w.alice, &made, &fields())
        .await
        .unwrap();
    w.put("C-2", lead("Ivo", "ivo@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    assert_eq!(people.len(), 2, "found, not created twice");
    let (_, v) = w.contact("C-2").await;
    assert_eq!(v["state"], "synced", "{v}");
}

#[tokio::test]
async fn an_etag_conflict_is_settled_by_reading_the_contact_again() {
    let w = World::new().await;
    w.put("C-1", lead("Lia", "lia@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    let p = w.google().await.remove(0);
    // Google changes the notes; before we read that, the CRM changes the phone.
    let mut edited = p.clone();
    edited.biographies[0].value = Some("Changed in Google".into());
    w.edit_in_google(&p.resource_name, &edited, &[PersonField::Biographies])
        .await;
    let mut c = lead("Lia", "lia@example.org");
    c["phones"] = json!([{"number": "+39 02 999 888", "type": "work"}]);
    c["updated_at"] = json!(time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap());
    w.put("C-1", c).await;
    w.run(SyncReason::RecordChange).await;
    w.run(SyncReason::Scheduled).await;
    let people = w.google().await;
    assert_eq!(people.len(), 1);
    // The CRM's edit is the later one: it wins, with no lost write and no error left.
    assert_eq!(
        people[0].phone_numbers[0].value.as_deref(),
        Some("+39 02 999 888")
    );
    let (_, v) = w.contact("C-1").await;
    assert_eq!(v["state"], "synced", "{v}");
}

/// Every mapped field, several typed e-mails and phones (custom labels too), full postal
/// addresses in non-Latin scripts, a multi-line note.
fn rich() -> Value {
    json!({
        "kind": "contact",
        "name": {"prefix": "Dr.", "given": "Jürgen", "middle": "K.", "family": "Müller-Lüdenscheidt", "suffix": "Jr."},
        "emails": [
            {"address": "j.mueller@example.de", "type": "work", "primary": true},
            {"address": "jk@example.org", "type": "home"},
            {"address": "jurgen@example.net", "type": "Conference"}
        ],
        "phones": [
            {"number": "+49 30 1234567", "type": "work", "primary": true},
            {"number": "+49 170 1234567", "type": "mobile"},
            {"number": "+49 30 7654321", "type": "workFax"},
            {"number": "+49 30 111", "type": "Berlin office"}
        ],
        "organization": {"company": "Müller GmbH", "title": "Geschäftsführer", "department": "Vertrieb"},
        "addresses": [
            {"street": "丸の内1-1", "extended": "パレスビル5階", "city": "千代田区", "region": "東京都",
             "postal_code": "100-0005", "country": "日本", "country_code": "JP", "type": "work"},
            {"street": "ул. Тверская, д. 7", "city": "Москва", "postal_code": "125009",
             "country": "Россия", "country_code": "RU", "type": "home"},
            {"street": "شارع التحرير 5", "city": "القاهرة", "country_code": "EG", "type": "Cairo office"}
        ],
        "notes": "Line one\nLine two — «quoted» 🚀"
    })
}

/// The same kind of contact as Google's own UI would write it.
fn rich_google(etag: Option<String>) -> Person {
    let mut p: Person = serde_json::from_value(json!({
        "names": [{"givenName": "ليلى", "familyName": "حداد", "honorificPrefix": "Ms."}],
        "emailAddresses": [
            {"value": "layla@example.eg", "type": "work"},
            {"value": "layla.h@example.com", "type": "other"}
        ],
        "phoneNumbers": [
            {"value": "+20 2 2345 6789", "type": "main"},
            {"value": "+20 100 123 4567", "type": "mobile"},
            {"value": "+20 2 9876 5432", "type": "Cairo desk"}
        ],
        "organizations": [{"name": "شركة النيل", "title": "مديرة", "department": "المبيعات"}],
        "addresses": [
            {"streetAddress": "서울특별시 중구 세종대로 110", "city": "서울", "postalCode": "04524",
             "country": "대한민국", "countryCode": "KR", "type": "work"},
            {"streetAddress": "شارع التحرير 5", "city": "القاهرة", "countryCode": "EG", "type": "home"}
        ],
        "biographies": [{"value": "ملاحظة\nsecond line", "contentType": "TEXT_PLAIN"}]
    }))
    .unwrap();
    p.etag = etag;
    p
}

#[tokio::test]
async fn every_mapped_field_round_trips_both_ways() {
    let w = World::new().await;
    // CRM → Google: what Google holds is the CRM's contact, under the normalized form.
    assert_eq!(w.put("C-RICH", rich()).await.0, StatusCode::ACCEPTED);
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    assert_eq!(people.len(), 1);
    let p = &people[0];
    let crm: CrmContact = serde_json::from_value(rich()).unwrap();
    assert_eq!(
        NormalizedContact::from_person(p),
        NormalizedContact::from_crm(&crm)
    );
    assert_eq!(p.email_addresses.len(), 3);
    assert_eq!(p.phone_numbers.len(), 4);
    assert_eq!(p.addresses.len(), 3);
    // ... and reading it back changes nothing and tells the CRM nothing.
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    assert_eq!(w.feed().await.len(), before, "no echo");

    // Google → CRM: the user rewrites every field in Google; the CRM receives it whole.
    let mut body = rich_google(p.etag.clone());
    body.client_data = p.client_data.clone();
    // (every field the default mapping writes; clientData as it was)
    let update = FieldMapping::default().update_person_fields();
    let written = w.edit_in_google(&p.resource_name, &body, &update).await;
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    let news: Vec<&Value> = feed[before..].iter().collect();
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0]["kind"], "contact_updated");
    assert_eq!(news[0]["crm_id"], "C-RICH");
    let received: CrmContact = serde_json::from_value(news[0]["data"]["contact"].clone())
        .expect("the feed's contact is a valid CRM contact");
    assert_eq!(
        NormalizedContact::from_crm(&received),
        NormalizedContact::from_person(&written)
    );
    assert_eq!(received.addresses.len(), 2);
    assert_eq!(received.phones.len(), 3);

    // The CRM stores it and sends it back as it got it: nothing to write to Google.
    let mut back = news[0]["data"]["contact"].clone();
    back["updated_at"] = json!("2030-01-01T00:00:00Z");
    let (s, v) = w.put("C-RICH", back).await;
    assert_eq!(s, StatusCode::OK, "nothing queued: {v}");
    assert_eq!(v["state"], "synced", "{v}");
    w.env.sandbox.clear_request_log();
    w.run(SyncReason::RecordChange).await;
    assert_eq!(
        w.people_requests("POST", "/v1/people:batchUpdateContacts")
            + w.people_requests("POST", "/v1/people:batchCreateContacts"),
        0,
        "the same content is no change"
    );
    let after = w.google().await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].etag, written.etag, "Google's contact untouched");
}

#[tokio::test]
async fn a_user_field_mapping_decides_what_travels_which_way() {
    let w = World::new().await;
    let (s, v) = w
        .env
        .call(
            "PATCH",
            &format!("/v1/users/{USER}/google"),
            &w.env.sync,
            Some(json!({"contact_fields": {"notes": "crm_to_google", "phones": "off"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    w.put("C-1", lead("Carla", "carla@acme.example")).await;
    w.run(SyncReason::RecordChange).await;
    let people = w.google().await;
    let p = &people[0];
    assert!(p.phone_numbers.is_empty(), "phones do not travel");
    assert_eq!(
        p.biographies[0].value.as_deref(),
        Some("Met at the fair.\nFollow up in May.")
    );

    // Google edits of notes and phones do not reach the CRM; a name edit does, with the
    // CRM's own notes and phones kept.
    let mut edited = p.clone();
    edited.biographies[0].value = Some("Edited in Google".into());
    let edited: Person = {
        let mut v = serde_json::to_value(&edited).unwrap();
        v["phoneNumbers"] = json!([{"value": "+1 555 0100", "type": "mobile"}]);
        serde_json::from_value(v).unwrap()
    };
    let written = w
        .edit_in_google(
            &p.resource_name,
            &edited,
            &[PersonField::Biographies, PersonField::PhoneNumbers],
        )
        .await;
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    assert_eq!(
        w.feed().await.len(),
        before,
        "nothing the CRM takes changed"
    );

    let mut renamed = written.clone();
    renamed.names[0].given_name = Some("Carlotta".into());
    w.edit_in_google(&p.resource_name, &renamed, &[PersonField::Names])
        .await;
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    assert_eq!(feed.len(), before + 1, "{:?}", &feed[before..]);
    let c = &feed[before]["data"]["contact"];
    assert_eq!(c["name"]["given"], "Carlotta");
    assert_eq!(c["notes"], "Met at the fair.\nFollow up in May.");
    assert_eq!(c["phones"][0]["number"], "+39 06 1234 5678");
}

#[tokio::test]
async fn a_crm_edit_brings_an_untagged_contact_back_never_a_second_one() {
    let w = World::new().await;
    let group = w.group().await;
    w.put("C-1", lead("Lia", "lia@example.org")).await;
    w.run(SyncReason::RecordChange).await;
    let rn = w.google().await[0].resource_name.clone();
    // Taken out of the group in Google: the CRM untags it.
    w.set_in_group(&rn, false).await;
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    assert_eq!(feed.last().unwrap()["kind"], "contact_untag");
    // Later the CRM edits it (re-tagged): the same contact returns to the group, edited.
    let mut c = lead("Lia", "lia@example.org");
    c["notes"] = json!("Back in the CRM");
    c["updated_at"] = json!("2030-01-01T00:00:00Z");
    let (s, v) = w.put("C-1", c).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    w.env.sandbox.clear_request_log();
    w.run(SyncReason::RecordChange).await;
    assert_eq!(
        w.people_requests("PATCH", &format!("/v1/{rn}:updateContact")),
        1,
        "one write: the edit and the group together"
    );
    let people = w.google().await;
    assert_eq!(people.len(), 1, "no second contact");
    assert_eq!(people[0].resource_name, rn);
    assert!(people[0].in_group(&group));
    assert_eq!(
        people[0].biographies[0].value.as_deref(),
        Some("Back in the CRM")
    );
    let (_, v) = w.contact("C-1").await;
    assert_eq!(v["state"], "synced", "{v}");
    // Nothing echoes back.
    let before = w.feed().await.len();
    w.run(SyncReason::Scheduled).await;
    assert_eq!(w.feed().await.len(), before);
}

#[tokio::test]
async fn a_new_contact_group_is_read_in_full() {
    let w = World::new().await;
    w.run(SyncReason::Scheduled).await;
    // The user already keeps their clients in another group, and picks it.
    let clients = w
        .env
        .app
        .google
        .create_contact_group(&w.alice, "Clients", &[])
        .await
        .unwrap();
    let member = Person {
        names: vec![Name {
            given_name: Some("Ada".into()),
            family_name: Some("Client".into()),
            ..Default::default()
        }],
        memberships: vec![Membership::of_group(&clients.resource_name)],
        ..Default::default()
    };
    w.env
        .app
        .google
        .create_contact(&w.alice, &member, &fields())
        .await
        .unwrap();
    // A read before the change: Ada is outside the synced group.
    w.run(SyncReason::Scheduled).await;
    assert!(!w
        .feed()
        .await
        .iter()
        .any(|r| r["kind"] == "contact_created"));
    let (s, v) = w
        .env
        .call(
            "PATCH",
            &format!("/v1/users/{USER}/google"),
            &w.env.sync,
            Some(json!({ "contact_group": clients.resource_name })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    w.run(SyncReason::Scheduled).await;
    let feed = w.feed().await;
    assert!(
        feed.iter()
            .any(|r| r["kind"] == "contact_created" && r.to_string().contains("Ada")),
        "the new group's existing member reaches the CRM: {feed:?}"
    );
}

/// A contact the CRM made and deleted before any pass never reaches Google, and its pair
/// stays a tombstone for the retention (so a late, retried PUT of the old record is known
/// as old), rather than a tombstone dated 1970 that expires at once.
#[tokio::test]
async fn a_contact_deleted_before_its_first_pass_leaves_a_live_tombstone() {
    let w = World::new().await;
    w.put("C-9", lead("Olga", "olga@example.org")).await;
    assert_eq!(w.delete("C-9").await, StatusCode::ACCEPTED);
    w.run(SyncReason::RecordChange).await;
    assert!(w.google().await.is_empty());
    let user = shared::domain::UserId::parse(USER).unwrap();
    let pair = w
        .env
        .app
        .store
        .get_pair(
            &w.env.tenant,
            &user,
            shared::domain::Collection::Contacts,
            "C-9",
        )
        .await
        .unwrap()
        .expect("the tombstone is kept")
        .value;
    let at = pair.deleted_at.expect("a tombstone");
    assert!(
        (w.env.app.clock.now() - at).abs() < time::Duration::hours(1),
        "dated now, not {at}"
    );
}
