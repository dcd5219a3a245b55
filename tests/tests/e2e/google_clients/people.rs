//! The product's People client (`shared::google::people`) and the contact mapping
//! (`shared::contacts`) against the Google sandbox over real HTTP: creates in batches of 200,
//! updates with etags and their conflicts, incremental reads with sync tokens (deletions,
//! expiry), contact groups and their members, retries of 429 and 503. Every test runs with
//! tiny retry delays.

use crate::world::google_client::{fast, ClientEnv as Env, ALICE};
use google_sandbox::{FaultKind, FaultSpec};
use serde_json::json;
use shared::contacts::model::CrmContact;
use shared::contacts::normal::{CrmLink, FieldMapping, NormalizedContact, KEY_CRM_ID};
use shared::google::people::{
    ClientData, EmailAddress, ListConnections, Membership, Name, Person, PersonField,
    MAX_BATCH_CONTACTS,
};
use shared::google::GoogleError;
use std::collections::{BTreeMap, BTreeSet};

fn read() -> Vec<PersonField> {
    PersonField::ALL.to_vec()
}

fn contact(given: &str, email: &str) -> Person {
    Person {
        names: vec![Name {
            given_name: Some(given.into()),
            family_name: Some("Test".into()),
            ..Default::default()
        }],
        email_addresses: vec![EmailAddress {
            value: Some(email.into()),
            kind: Some("work".into()),
            ..Default::default()
        }],
        client_data: vec![ClientData::new(KEY_CRM_ID, given)],
        ..Default::default()
    }
}

/// Reads every page of an incremental (or full, with `request_sync_token`) list.
async fn read_all(
    env: &Env,
    sync_token: Option<String>,
) -> Result<(Vec<Person>, String), GoogleError> {
    let mut params = ListConnections {
        person_fields: read(),
        page_size: Some(100),
        request_sync_token: true,
        sync_token,
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = env.google.list_connections(&env.token, &params).await?;
        out.extend(page.connections);
        match page.next_page_token {
            Some(next) => params.page_token = Some(next),
            None => {
                return Ok((
                    out,
                    page.next_sync_token.expect("a sync token on the last page"),
                ))
            }
        }
    }
}

#[tokio::test]
async fn batch_create_chunks_by_200_and_incremental_reads_see_changes_and_deletions() {
    let env = Env::people().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let persons: Vec<Person> = (0..450)
            .map(|i| contact(&format!("crm{i:03}"), &format!("p{i}@example.com")))
            .collect();
        let created = g.batch_create_contacts(t, &persons, &read()).await;
        assert_eq!(created.len(), 450);
        let created: Vec<Person> = created.into_iter().map(|r| r.expect("created")).collect();
        assert_eq!(
            env.count("POST", "/v1/people:batchCreateContacts"),
            450usize.div_ceil(MAX_BATCH_CONTACTS),
            "450 contacts cost 3 requests"
        );
        // In order, each with its resource name, etag and our clientData.
        for (i, p) in created.iter().enumerate() {
            assert!(p.resource_name.starts_with("people/"));
            assert!(p.etag.is_some());
            assert_eq!(
                p.client_value(KEY_CRM_ID),
                Some(format!("crm{i:03}").as_str())
            );
        }

        let (all, token) = read_all(&env, None).await.expect("full read");
        assert_eq!(all.len(), 450);
        let names: BTreeSet<&str> = all.iter().map(|p| p.resource_name.as_str()).collect();
        assert_eq!(names.len(), 450, "no contact twice across pages");

        // Nothing changed: one request, nothing in it.
        env.running.sandbox.clear_request_log();
        let (none, token) = read_all(&env, Some(token)).await.expect("idle read");
        assert!(none.is_empty());
        assert_eq!(env.count("GET", "/v1/people/me/connections"), 1);

        // One edit, one deletion: both show, the deletion with metadata.deleted.
        let mut edited = created[1].clone();
        edited.names[0].given_name = Some("Edited".into());
        g.update_contact(
            t,
            &edited.resource_name.clone(),
            &edited,
            &[PersonField::Names],
            &read(),
        )
        .await
        .expect("update");
        g.delete_contact(t, &created[2].resource_name)
            .await
            .expect("delete");
        let (changes, token) = read_all(&env, Some(token)).await.expect("incremental read");
        assert_eq!(changes.len(), 2, "{changes:?}");
        let by_name: BTreeMap<&str, &Person> = changes
            .iter()
            .map(|p| (p.resource_name.as_str(), p))
            .collect();
        let e = by_name[created[1].resource_name.as_str()];
        assert!(!e.is_deleted());
        assert_eq!(e.names[0].given_name.as_deref(), Some("Edited"));
        assert!(by_name[created[2].resource_name.as_str()].is_deleted());

        // Deleting again counts as done; the deleted contact is gone for get.
        g.delete_contact(t, &created[2].resource_name)
            .await
            .expect("delete is idempotent");
        assert_eq!(
            g.get_person(t, &created[2].resource_name, &read())
                .await
                .unwrap(),
            None
        );

        // batchGet: found ones in order, a missing one as NotFound.
        let asked = vec![
            created[3].resource_name.clone(),
            created[2].resource_name.clone(),
            created[0].resource_name.clone(),
        ];
        let got = g.batch_get(t, &asked, &read()).await.expect("batch get");
        assert_eq!(got.len(), 3);
        let mut got = got.into_iter().map(|r| r.into_result());
        assert_eq!(got.next().unwrap().unwrap().resource_name, asked[0]);
        assert!(matches!(got.next().unwrap(), Err(GoogleError::NotFound(_))));
        assert_eq!(got.next().unwrap().unwrap().resource_name, asked[2]);

        // An expired sync token is recognised: list again without it.
        env.running.sandbox.invalidate_sync_tokens(ALICE);
        let err = read_all(&env, Some(token)).await.expect_err("expired");
        assert!(err.is_full_sync_required(), "{err:?}");
        let (again, _) = read_all(&env, None).await.expect("full read after expiry");
        assert_eq!(again.len(), 449);

        // Batch delete, twice (the second finds them gone and still completes).
        let doomed: Vec<String> = created[10..20]
            .iter()
            .map(|p| p.resource_name.clone())
            .collect();
        g.batch_delete_contacts(t, &doomed)
            .await
            .expect("batch delete");
        g.batch_delete_contacts(t, &doomed)
            .await
            .expect("batch delete again");
        let gone = g.batch_get(t, &doomed, &read()).await.unwrap();
        assert!(gone
            .into_iter()
            .all(|r| matches!(r.into_result(), Err(GoogleError::NotFound(_)))));
    })
    .await;
}

#[tokio::test]
async fn updates_carry_etags_and_a_stale_etag_is_a_conflict() {
    let env = Env::people().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let persons: Vec<Person> = (0..205)
            .map(|i| contact(&format!("u{i}"), &format!("u{i}@example.com")))
            .collect();
        let created: Vec<Person> = g
            .batch_create_contacts(t, &persons, &read())
            .await
            .into_iter()
            .map(|r| r.expect("created"))
            .collect();

        // Batch update of 205 (two requests), only the names: e-mails stay as they were.
        let updates: BTreeMap<String, Person> = created
            .iter()
            .map(|p| {
                let mut u = p.clone();
                u.names[0].family_name = Some("Updated".into());
                u.email_addresses.clear();
                (p.resource_name.clone(), u)
            })
            .collect();
        env.running.sandbox.clear_request_log();
        let done = g
            .batch_update_contacts(t, &updates, &[PersonField::Names], &read())
            .await;
        assert_eq!(env.count("POST", "/v1/people:batchUpdateContacts"), 2);
        assert_eq!(done.len(), 205);
        let mut fresh = BTreeMap::new();
        for (rn, r) in done {
            let p = r.expect("updated");
            assert_eq!(p.names[0].family_name.as_deref(), Some("Updated"));
            assert_eq!(
                p.email_addresses.len(),
                1,
                "fields outside the mask are kept"
            );
            assert_ne!(p.etag, updates[&rn].etag, "a new etag");
            fresh.insert(rn, p);
        }

        // The old etags are stale now: single and batch updates say so recognisably.
        let first = &created[0];
        let err = g
            .update_contact(
                t,
                &first.resource_name,
                first,
                &[PersonField::Names],
                &read(),
            )
            .await
            .expect_err("stale etag");
        assert!(err.is_etag_conflict(), "{err:?}");
        let stale: BTreeMap<String, Person> = [(first.resource_name.clone(), first.clone())].into();
        let r = g
            .batch_update_contacts(t, &stale, &[PersonField::Names], &read())
            .await;
        assert!(r[&first.resource_name]
            .as_ref()
            .unwrap_err()
            .is_etag_conflict());

        // Re-read, write again with the current etag: accepted; an emptied masked field is cleared.
        let current = g
            .get_person(t, &first.resource_name, &read())
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(current.etag, fresh[&first.resource_name].etag);
        let mut body = current.clone();
        body.email_addresses.clear();
        let after = g
            .update_contact(
                t,
                &first.resource_name,
                &body,
                &[PersonField::EmailAddresses],
                &read(),
            )
            .await
            .expect("update with the current etag");
        assert!(after.email_addresses.is_empty());
        assert_eq!(after.names[0].family_name.as_deref(), Some("Updated"));
    })
    .await;
}

#[tokio::test]
async fn the_contact_mapping_round_trips_through_google() {
    let env = Env::people().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let c: CrmContact = serde_json::from_value(json!({
            "kind": "lead",
            "name": {"prefix": "Dr.", "given": "Yuki", "family": "山田"},
            "emails": [{"address": "Yuki@Example.JP", "type": "work", "primary": true},
                       {"address": "yuki@home.example", "type": "home"},
                       {"address": "press@example.jp", "type": "Press desk"}],
            "phones": [{"number": "+81 3-1234-5678", "type": "mobile"},
                       {"number": "+81 3 5555 0000", "type": "work", "primary": true},
                       {"number": "+81 3 5555 0001", "type": "workFax"}],
            "organization": {"company": "株式会社例", "title": "部長", "department": "営業"},
            "addresses": [
                {"street": "千代田区千代田1-1", "city": "東京都", "postal_code": "100-8111",
                 "country": "日本", "country_code": "JP", "type": "work"},
                {"street": "ул. Тверская, д. 7", "city": "Москва", "country": "Россия",
                 "country_code": "RU", "type": "home"},
                {"street": "١ شارع التحرير", "city": "القاهرة", "country": "مصر",
                 "country_code": "EG", "type": "Branch"}],
            "notes": "Met at the fair.\r\nFollow up."
        }))
        .unwrap();
        c.validate().unwrap();
        let n = NormalizedContact::from_crm(&c);
        let link = CrmLink {
            tenant: "acme".into(),
            user: "jane".into(),
            crm_id: "lead-1".into(),
        };
        let mapping = FieldMapping::default();
        let group = g.create_contact_group(t, "CRM", &[]).await.expect("group");
        let mut body = n.to_person(&link, &mapping, None);
        body.memberships = vec![Membership::of_group(&group.resource_name)];
        let created = g
            .create_contact(t, &body, &mapping.person_fields())
            .await
            .expect("create");
        assert!(created.in_group(&group.resource_name));
        let read_back = g
            .get_person(t, &created.resource_name, &mapping.person_fields())
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(NormalizedContact::from_person(&read_back), n);
        assert_eq!(NormalizedContact::from_person(&read_back).hash(), n.hash());
        assert_eq!(CrmLink::from_person(&read_back), Some(link.clone()));
        assert_eq!(
            NormalizedContact::from_crm(&NormalizedContact::from_person(&read_back).to_crm()),
            n
        );

        // An update through the mapping's mask, with the etag read: still the same contact.
        let mut edited = n.clone();
        edited.notes = "Changed.".into();
        let update = edited.to_person(&link, &mapping, Some(&read_back));
        let after = g
            .update_contact(
                t,
                &created.resource_name,
                &update,
                &mapping.update_person_fields(),
                &mapping.person_fields(),
            )
            .await
            .expect("update");
        assert_eq!(NormalizedContact::from_person(&after), edited);
        assert!(
            after.in_group(&group.resource_name),
            "memberships untouched"
        );
    })
    .await;
}

#[tokio::test]
async fn contact_groups_and_their_members() {
    let env = Env::people().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let group = g
            .create_contact_group(t, "CRM contacts", &[])
            .await
            .expect("create group");
        assert!(group.resource_name.starts_with("contactGroups/"));
        assert_eq!(group.name.as_deref(), Some("CRM contacts"));
        let again = g.create_contact_group(t, "CRM contacts", &[]).await;
        assert!(matches!(again, Err(GoogleError::Conflict(_))), "{again:?}");
        let listed = g.contact_groups(t).await.expect("list");
        assert!(listed
            .iter()
            .any(|x| x.resource_name == group.resource_name));
        assert!(listed
            .iter()
            .any(|x| x.resource_name == "contactGroups/myContacts"));

        let persons: Vec<Person> = (0..3)
            .map(|i| contact(&format!("m{i}"), &format!("m{i}@example.com")))
            .collect();
        let created: Vec<String> = g
            .batch_create_contacts(t, &persons, &[PersonField::Metadata])
            .await
            .into_iter()
            .map(|r| r.expect("created").resource_name)
            .collect();
        let outcome = g
            .modify_contact_group_members(
                t,
                &group.resource_name,
                &[created.clone(), vec!["people/c1".into()]].concat(),
                &[],
            )
            .await
            .expect("add");
        assert_eq!(outcome.not_found_resource_names, ["people/c1"]);
        let got = g
            .get_contact_group(t, &group.resource_name, 10)
            .await
            .unwrap()
            .expect("group exists");
        assert_eq!(got.member_count, Some(3));
        let members: BTreeSet<&String> = got.member_resource_names.iter().collect();
        assert_eq!(members, created.iter().collect());

        g.modify_contact_group_members(t, &group.resource_name, &[], &created[..1])
            .await
            .expect("remove");
        let got = g
            .get_contact_group(t, &group.resource_name, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.member_count, Some(2));
        assert!(!got.member_resource_names.contains(&created[0]));
        let person = g
            .get_person(t, &created[0], &[PersonField::Memberships])
            .await
            .unwrap()
            .unwrap();
        assert!(!person.in_group(&group.resource_name));
        assert!(
            person.in_group("contactGroups/myContacts"),
            "still a contact"
        );
        assert_eq!(
            g.get_contact_group(t, "contactGroups/nope", 0)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried() {
    let env = Env::people().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let sandbox = &env.running.sandbox;
        sandbox.inject_fault(
            FaultSpec::new(FaultKind::TooManyRequests)
                .count(2)
                .retry_after_secs(0)
                .path_prefix("/v1/people:batchCreateContacts"),
        );
        let created = g
            .batch_create_contacts(t, &[contact("r1", "r1@example.com")], &read())
            .await;
        assert!(created[0].is_ok(), "{created:?}");
        assert_eq!(env.count("POST", "/v1/people:batchCreateContacts"), 3);

        sandbox.inject_fault(
            FaultSpec::new(FaultKind::Unavailable)
                .count(2)
                .path_prefix("/v1/people/me/connections"),
        );
        sandbox.inject_fault(
            FaultSpec::new(FaultKind::RateLimitExceeded)
                .count(1)
                .path_prefix("/v1/people/me/connections"),
        );
        let (all, _) = read_all(&env, None).await.expect("read despite faults");
        assert_eq!(all.len(), 1);
        assert_eq!(env.count("GET", "/v1/people/me/connections"), 4);

        // A lasting outage ends in a transient error, after the policy's attempts.
        sandbox
            .inject_fault(FaultSpec::new(FaultKind::Unavailable).path_prefix("/v1/contactGroups"));
        let err = g.contact_groups(t).await.expect_err("outage");
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(env.count("GET", "/v1/contactGroups"), 5);
        sandbox.clear_faults();
        // A failed chunk of a batch create is reported for its persons, and later chunks are
        // not sent.
        sandbox.inject_fault(
            FaultSpec::new(FaultKind::Unavailable).path_prefix("/v1/people:batchCreateContacts"),
        );
        let persons: Vec<Person> = (0..250)
            .map(|i| contact(&format!("f{i}"), &format!("f{i}@example.com")))
            .collect();
        let results = g.batch_create_contacts(t, &persons, &read()).await;
        assert_eq!(results.len(), 250);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(e) if e.is_transient())));
    })
    .await;
}
