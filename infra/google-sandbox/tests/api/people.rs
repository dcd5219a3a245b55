//! People v1: contacts, sync tokens, etags, batch limits, contact groups.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn contact(given: &str, email: &str) -> Value {
    json!({
        "names": [{"givenName": given, "familyName": "Doe"}],
        "emailAddresses": [{"value": email, "type": "work"}],
        "phoneNumbers": [{"value": "+49 30 1234567", "type": "mobile"}],
        "organizations": [{"name": "ACME", "title": "CTO"}],
        "addresses": [{"streetAddress": "Main St 1", "city": "Berlin", "countryCode": "DE", "type": "home"}],
        "biographies": [{"value": "met at conf", "contentType": "TEXT_PLAIN"}],
        "clientData": [{"key": "crmId", "value": "c-1"}],
    })
}

const FIELDS: &str = "names,emailAddresses,phoneNumbers,organizations,addresses,biographies,clientData,memberships,metadata";

async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    app.ok(
        "people.people.createContact",
        Method::POST,
        &format!("/v1/people:createContact?personFields={FIELDS}"),
        token,
        Some(body),
    )
    .await
}

/// A user contact group named `name`.
async fn create_group(app: &TestApp, token: &str, name: &str) -> Value {
    app.ok(
        "people.contactGroups.create",
        Method::POST,
        "/v1/contactGroups",
        token,
        Some(&json!({"contactGroup": {"name": name}})),
    )
    .await
}

/// A sync token from a full read of the connections (every field of `FIELDS`: use the same
/// mask with it).
async fn sync_token(app: &TestApp, token: &str) -> String {
    let full = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields={FIELDS}&requestSyncToken=true"),
            token,
            None,
        )
        .await;
    full["nextSyncToken"].as_str().unwrap().to_string()
}

fn grpc_status(v: &Value) -> &str {
    v["error"]["status"].as_str().unwrap_or("")
}

#[tokio::test]
async fn create_get_update_delete_with_etags() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let p = create(&app, &token, &contact("Jane", "jane@example.com")).await;
    let rn = p["resourceName"].as_str().unwrap().to_string();
    assert!(
        rn.starts_with("people/c") && rn[8..].bytes().all(|b| b.is_ascii_digit()),
        "{rn}"
    );
    assert_eq!(p["names"][0]["displayName"], "Jane Doe");
    assert_eq!(p["emailAddresses"][0]["formattedType"], "Work");
    assert_eq!(p["emailAddresses"][0]["metadata"]["primary"], true);
    assert_eq!(p["metadata"]["sources"][0]["type"], "CONTACT");
    assert_eq!(
        p["memberships"][0]["contactGroupMembership"]["contactGroupResourceName"],
        "contactGroups/myContacts"
    );
    assert_eq!(p["clientData"][0]["key"], "crmId");
    let etag = p["etag"].as_str().unwrap().to_string();

    let got = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/{rn}?personFields=names"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["names"][0]["givenName"], "Jane");
    assert!(
        got.get("emailAddresses").is_none(),
        "personFields masks the response"
    );
    let (status, _, err) = app
        .call(Method::GET, &format!("/v1/{rn}"), &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(grpc_status(&err), "INVALID_ARGUMENT");
    let (status, _, _) = app
        .call(
            Method::GET,
            &format!("/v1/{rn}?personFields=bogus"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // update: needs updatePersonFields and the current etag
    let update = json!({"etag": etag, "names": [{"givenName": "Janet", "familyName": "Doe"}]});
    let path = format!("/v1/{rn}:updateContact?personFields=names,emailAddresses");
    let (status, _, err) = app
        .call(Method::PATCH, &path, &token, Some(&update), &[])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "missing updatePersonFields"
    );
    assert_eq!(grpc_status(&err), "INVALID_ARGUMENT");
    let path = format!("{path}&updatePersonFields=names");
    let (status, _, err) = app
        .call(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"names": [{"givenName": "X"}]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing etag");
    assert_eq!(grpc_status(&err), "FAILED_PRECONDITION");
    let updated = app
        .ok(
            "people.people.updateContact",
            Method::PATCH,
            &path,
            &token,
            Some(&update),
        )
        .await;
    assert_eq!(updated["names"][0]["givenName"], "Janet");
    assert_eq!(
        updated["emailAddresses"][0]["value"], "jane@example.com",
        "fields outside the mask are kept"
    );
    assert_ne!(updated["etag"], etag.as_str());
    let (status, _, err) = app
        .call(Method::PATCH, &path, &token, Some(&update), &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "stale etag");
    assert_eq!(grpc_status(&err), "FAILED_PRECONDITION");
    assert!(err["error"]["message"].as_str().unwrap().contains("etag"));
    assert!(
        err["error"].get("errors").is_none(),
        "People errors have no apiary errors[]"
    );

    // unknown fields are rejected like Google does
    let (status, _, err) = app
        .call(
            Method::POST,
            "/v1/people:createContact",
            &token,
            Some(&json!({"nickname": "x"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Unknown name"));

    let deleted = app
        .ok(
            "people.people.deleteContact",
            Method::DELETE,
            &format!("/v1/{rn}:deleteContact"),
            &token,
            None,
        )
        .await;
    assert_eq!(deleted, json!({}));
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("/v1/{rn}?personFields=names"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(grpc_status(&err), "NOT_FOUND");
    let (status, _, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/{rn}:deleteContact"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let me = app
        .ok(
            "people.people.get",
            Method::GET,
            "/v1/people/me?personFields=names,emailAddresses",
            &token,
            None,
        )
        .await;
    assert_eq!(me["emailAddresses"][0]["value"], ALICE);
}

#[tokio::test]
async fn connections_sync_tokens_across_pages_and_deletions() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let mut names = Vec::new();
    for i in 0..5 {
        let p = create(
            &app,
            &token,
            &contact(&format!("P{i}"), &format!("p{i}@example.com")),
        )
        .await;
        names.push(p["resourceName"].as_str().unwrap().to_string());
    }
    let (status, _, err) = app
        .call(Method::GET, "/v1/people/me/connections", &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "personFields is required");
    assert_eq!(grpc_status(&err), "INVALID_ARGUMENT");
    let (status, _, _) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names&pageSize=1001",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // full sync in pages of 2
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let sync = loop {
        let mut path = "/v1/people/me/connections?personFields=names,emailAddresses&pageSize=2&requestSyncToken=true".to_string();
        if !page_token.is_empty() {
            path.push_str(&format!(
                "&pageToken={}",
                google_sandbox_encode(&page_token)
            ));
        }
        let page = app
            .ok(
                "people.people.connections.list",
                Method::GET,
                &path,
                &token,
                None,
            )
            .await;
        assert_eq!(page["totalItems"], 5);
        for c in page["connections"].as_array().unwrap() {
            seen.push(c["resourceName"].as_str().unwrap().to_string());
        }
        match page["nextPageToken"].as_str() {
            Some(t) => {
                assert!(page.get("nextSyncToken").is_none());
                page_token = t.to_string();
            }
            None => {
                break page["nextSyncToken"]
                    .as_str()
                    .expect("sync token on last page")
                    .to_string()
            }
        }
    };
    assert_eq!(seen, names);

    // changes: one update, one delete, one create
    let current = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/{}?personFields=names", names[0]),
            &token,
            None,
        )
        .await;
    app.ok(
        "people.people.updateContact",
        Method::PATCH,
        &format!("/v1/{}:updateContact?updatePersonFields=names", names[0]),
        &token,
        Some(&json!({"etag": current["etag"], "names": [{"givenName": "Renamed"}]})),
    )
    .await;
    app.ok(
        "people.people.deleteContact",
        Method::DELETE,
        &format!("/v1/{}:deleteContact", names[1]),
        &token,
        None,
    )
    .await;
    let newp = create(&app, &token, &contact("New", "new@example.com")).await;

    let path = format!(
        "/v1/people/me/connections?personFields=names,emailAddresses&syncToken={}",
        google_sandbox_encode(&sync)
    );
    let changes = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &path,
            &token,
            None,
        )
        .await;
    let conns = changes["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 3);
    let deleted = conns
        .iter()
        .find(|c| c["resourceName"] == names[1].as_str())
        .unwrap();
    assert_eq!(deleted["metadata"]["deleted"], true);
    assert!(deleted.get("names").is_none());
    assert!(conns
        .iter()
        .any(|c| c["resourceName"] == newp["resourceName"]));
    let sync2 = changes["nextSyncToken"].as_str().unwrap().to_string();

    // expiry after 7 days and invalidation via the control endpoint
    app.sandbox.advance_clock(7 * 24 * 3600 + 1);
    let token = app.token_all(ALICE).await;
    let path = format!(
        "/v1/people/me/connections?personFields=names,emailAddresses&syncToken={}",
        google_sandbox_encode(&sync2)
    );
    let (status, _, err) = app.call(Method::GET, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(grpc_status(&err), "FAILED_PRECONDITION");
    assert_eq!(err["error"]["details"][0]["reason"], "EXPIRED_SYNC_TOKEN");
    assert_eq!(
        err["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );

    let full = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            "/v1/people/me/connections?personFields=names&requestSyncToken=true",
            &token,
            None,
        )
        .await;
    assert_eq!(full["connections"].as_array().unwrap().len(), 5);
    let fresh = full["nextSyncToken"].as_str().unwrap().to_string();
    app.sandbox.invalidate_sync_tokens(ALICE);
    let path = format!(
        "/v1/people/me/connections?personFields=names&syncToken={}",
        google_sandbox_encode(&fresh)
    );
    let (status, _, err) = app.call(Method::GET, &path, &token, None, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["details"][0]["reason"], "EXPIRED_SYNC_TOKEN");
}

#[tokio::test]
async fn batch_contacts_and_their_limits() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let contacts: Vec<Value> = (0..3)
        .map(|i| json!({"contactPerson": contact(&format!("B{i}"), &format!("b{i}@example.com"))}))
        .collect();
    let created = app
        .ok(
            "people.people.batchCreateContacts",
            Method::POST,
            "/v1/people:batchCreateContacts",
            &token,
            Some(&json!({"contacts": contacts, "readMask": "names,emailAddresses"})),
        )
        .await;
    let people = created["createdPeople"].as_array().unwrap();
    assert_eq!(people.len(), 3);
    assert_eq!(people[0]["httpStatusCode"], 200);
    let rns: Vec<String> = people
        .iter()
        .map(|p| p["person"]["resourceName"].as_str().unwrap().to_string())
        .collect();

    let query: String = rns.iter().map(|r| format!("resourceNames={r}&")).collect();
    let got = app
        .ok(
            "people.people.getBatchGet",
            Method::GET,
            &format!("/v1/people:batchGet?{query}resourceNames=people/c1&personFields=names"),
            &token,
            None,
        )
        .await;
    let responses = got["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 4);
    assert_eq!(responses[3]["httpStatusCode"], 404);

    let mut updates = serde_json::Map::new();
    for p in people {
        let rn = p["person"]["resourceName"].as_str().unwrap();
        updates.insert(rn.to_string(), json!({"etag": p["person"]["etag"], "names": [{"givenName": "Batch", "familyName": rn}]}));
    }
    let updated = app
        .ok(
            "people.people.batchUpdateContacts",
            Method::POST,
            "/v1/people:batchUpdateContacts",
            &token,
            Some(&json!({"contacts": updates, "updateMask": "names", "readMask": "names"})),
        )
        .await;
    assert_eq!(updated["updateResult"].as_object().unwrap().len(), 3);
    assert_eq!(
        updated["updateResult"][&rns[0]]["person"]["names"][0]["givenName"],
        "Batch"
    );
    // the same etags again are stale now
    let (status, _, err) = app
        .call(
            Method::POST,
            "/v1/people:batchUpdateContacts",
            &token,
            Some(&json!({"contacts": updates, "updateMask": "names", "readMask": "names"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(grpc_status(&err), "FAILED_PRECONDITION");

    let deleted = app
        .ok(
            "people.people.batchDeleteContacts",
            Method::POST,
            "/v1/people:batchDeleteContacts",
            &token,
            Some(&json!({"resourceNames": rns})),
        )
        .await;
    assert_eq!(deleted, json!({}));

    // limits: 200 creates / 200 updates / 500 deletes
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"contactPerson": {"names": [{"givenName": format!("x{i}")}]}}))
        .collect();
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/people:batchCreateContacts",
            &token,
            Some(&json!({"contacts": many, "readMask": "names"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/people:batchCreateContacts",
            &token,
            Some(&json!({"contacts": [{"contactPerson": {}}]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "readMask required");
    let mut too_many = serde_json::Map::new();
    for i in 0..201 {
        too_many.insert(format!("people/c{i}"), json!({"etag": "x"}));
    }
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/people:batchUpdateContacts",
            &token,
            Some(&json!({"contacts": too_many, "updateMask": "names", "readMask": "names"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let names: Vec<String> = (0..501).map(|i| format!("people/c{i}")).collect();
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/people:batchDeleteContacts",
            &token,
            Some(&json!({"resourceNames": names})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn contact_groups_and_membership() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let groups = app
        .ok(
            "people.contactGroups.list",
            Method::GET,
            "/v1/contactGroups",
            &token,
            None,
        )
        .await;
    let names: Vec<&str> = groups["contactGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["resourceName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"contactGroups/myContacts"));
    assert!(names.contains(&"contactGroups/starred"));

    let g = create_group(&app, &token, "CRM").await;
    assert_eq!(g["groupType"], "USER_CONTACT_GROUP");
    assert_eq!(g["memberCount"], 0);
    let grn = g["resourceName"].as_str().unwrap().to_string();
    let (status, _, err) = app
        .call(
            Method::POST,
            "/v1/contactGroups",
            &token,
            Some(&json!({"contactGroup": {"name": "CRM"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(grpc_status(&err), "ALREADY_EXISTS");

    let p = create(&app, &token, &contact("Member", "m@example.com")).await;
    let rn = p["resourceName"].as_str().unwrap().to_string();
    let sync = sync_token(&app, &token).await;
    let res = app
        .ok(
            "people.contactGroups.members.modify",
            Method::POST,
            &format!("/v1/{grn}/members:modify"),
            &token,
            Some(&json!({"resourceNamesToAdd": [rn, "people/c999"]})),
        )
        .await;
    assert_eq!(res["notFoundResourceNames"], json!(["people/c999"]));
    let got = app
        .ok(
            "people.contactGroups.get",
            Method::GET,
            &format!("/v1/{grn}?maxMembers=10"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["memberCount"], 1);
    assert_eq!(got["memberResourceNames"], json!([rn]));
    let person = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/{rn}?personFields=memberships"),
            &token,
            None,
        )
        .await;
    assert_eq!(person["memberships"].as_array().unwrap().len(), 2);
    // membership changes show up in incremental sync
    let changes = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!(
                "/v1/people/me/connections?personFields={FIELDS}&syncToken={}",
                google_sandbox_encode(&sync)
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(changes["connections"].as_array().unwrap().len(), 1);

    let res = app
        .ok(
            "people.contactGroups.members.modify",
            Method::POST,
            &format!("/v1/{grn}/members:modify"),
            &token,
            Some(&json!({"resourceNamesToRemove": [rn]})),
        )
        .await;
    assert!(res.get("notFoundResourceNames").is_none());
    let res = app
        .ok(
            "people.contactGroups.members.modify",
            Method::POST,
            "/v1/contactGroups/myContacts/members:modify",
            &token,
            Some(&json!({"resourceNamesToRemove": [rn]})),
        )
        .await;
    assert_eq!(
        res["canNotRemoveLastContactGroupResourceNames"],
        json!([rn])
    );
    let (status, _, _) = app
        .call(Method::GET, "/v1/contactGroups/nope", &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .call(
            Method::POST,
            "/v1/contactGroups/friends/members:modify",
            &token,
            Some(&json!({"resourceNamesToAdd": [rn]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ui_edits_a_contact_and_its_groups_like_google_contacts() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let g = create_group(&app, &token, "CRM").await;
    let gid = g["resourceName"]
        .as_str()
        .unwrap()
        .trim_start_matches("contactGroups/")
        .to_string();
    let p = create(&app, &token, &contact("Jane", "jane@example.com")).await;
    let rn = p["resourceName"].as_str().unwrap().to_string();
    let sync = sync_token(&app, &token).await;

    let form_url = format!(
        "/_sandbox/ui/users/{ALICE}/contacts/{}",
        rn.trim_start_matches("people/")
    );
    let html = app.page(&form_url).await;
    assert!(html.contains("name=\"title\" value=\"CTO\""), "{html}");
    assert!(
        html.contains(&format!("value=\"{gid}\"")),
        "the user's group is offered"
    );
    let status = app
        .submit(
            &form_url,
            &[
                ("given", "Janet"),
                ("family", "Doe"),
                ("email", "jane@example.com"),
                ("phone", ""),
                ("company", "ACME"),
                ("title", "CEO"),
                ("notes", "promoted"),
                ("group", "myContacts"),
                ("group", gid.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The next incremental read returns the edit: new etag, fields changed, the phone gone,
    // what the form does not show (address, clientData) kept, and the new membership.
    let delta = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields={FIELDS}&requestSyncToken=true&syncToken={sync}"),
            &token,
            None,
        )
        .await;
    let got = &delta["connections"][0];
    assert_eq!(got["resourceName"], rn.as_str());
    assert_ne!(got["etag"], p["etag"]);
    assert_eq!(got["names"][0]["givenName"], "Janet");
    assert_eq!(got["organizations"][0]["title"], "CEO");
    assert_eq!(got["biographies"][0]["value"], "promoted");
    assert!(got.get("phoneNumbers").is_none(), "{got}");
    assert_eq!(got["addresses"][0]["city"], "Berlin");
    assert_eq!(got["clientData"][0]["value"], "c-1");
    let groups: Vec<&str> = got["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["contactGroupMembership"]["contactGroupResourceName"].as_str())
        .collect();
    assert!(
        groups.contains(&format!("contactGroups/{gid}").as_str()),
        "{groups:?}"
    );

    // Out of the group again, then deleted from the UI.
    let status = app.submit(&form_url, &[("group", "myContacts")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let members = app
        .ok(
            "people.contactGroups.get",
            Method::GET,
            &format!("/v1/contactGroups/{gid}?maxMembers=10"),
            &token,
            None,
        )
        .await;
    assert!(members.get("memberResourceNames").is_none(), "{members}");
    let status = app.submit(&format!("{form_url}/delete"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = app
        .call(
            Method::GET,
            &format!("/v1/{rn}?personFields=names"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_linked_profile_is_merged_unless_sources_ask_for_the_contact_only() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let created = create(&app, &token, &contact("Ada", "ada@example.org")).await;
    let rn = created["resourceName"].as_str().unwrap().to_string();
    assert!(app.sandbox.link_profile(
        ALICE,
        &rn,
        "DOMAIN_PROFILE",
        json!({"names": [{"givenName": "Augusta Ada", "familyName": "King"}],
               "emailAddresses": [{"value": "ada@corp.example"}],
               "organizations": [{"name": "Corp", "title": "Countess", "department": "Math"}]}),
    ));
    let id = rn.trim_start_matches("people/");
    // Google's default (no `sources`) is CONTACT and PROFILE: the profile's items are
    // merged, each marked with its source.
    let merged = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/people/{id}?personFields={FIELDS}"),
            &token,
            None,
        )
        .await;
    let emails: Vec<&str> = merged["emailAddresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.org", "ada@corp.example"]);
    assert_eq!(
        merged["organizations"][1]["metadata"]["source"]["type"],
        "DOMAIN_PROFILE"
    );
    let kinds: Vec<&str> = merged["metadata"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CONTACT", "DOMAIN_PROFILE"]);
    let explicit = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/people/{id}?personFields={FIELDS}&sources=READ_SOURCE_TYPE_CONTACT&sources=READ_SOURCE_TYPE_PROFILE"),
            &token,
            None,
        )
        .await;
    assert_eq!(explicit["emailAddresses"].as_array().unwrap().len(), 2);
    // The contact's own data only.
    for path in [
        format!("/v1/people/{id}?personFields={FIELDS}&sources=READ_SOURCE_TYPE_CONTACT"),
        format!("/v1/people:batchGet?personFields={FIELDS}&sources=READ_SOURCE_TYPE_CONTACT&resourceNames={rn}"),
        format!("/v1/people/me/connections?personFields={FIELDS}&sources=READ_SOURCE_TYPE_CONTACT"),
    ] {
        let (status, _, v) = app.call(Method::GET, &path, &token, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let p = if v.get("responses").is_some() {
            v["responses"][0]["person"].clone()
        } else if v.get("connections").is_some() {
            v["connections"][0].clone()
        } else {
            v
        };
        assert_eq!(p["emailAddresses"].as_array().unwrap().len(), 1, "{path}: {p}");
        assert_eq!(p["organizations"][0]["title"], "CTO");
        assert_eq!(p["metadata"]["sources"].as_array().unwrap().len(), 1);
    }
    // Batch bodies take `sources` as a list; unknown values are refused.
    let (status, v) = app
        .api(
            "people.people.batchCreateContacts",
            Method::POST,
            "/v1/people:batchCreateContacts",
            &token,
            Some(
                &json!({"contacts": [{"contactPerson": contact("Bo", "bo@example.org")}],
                         "readMask": "names", "sources": ["READ_SOURCE_TYPE_CONTACT"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _, v) = app
        .call(
            Method::GET,
            &format!("/v1/people/{id}?personFields=names&sources=READ_SOURCE_TYPE_NOPE"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn a_renamed_contact_carries_its_previous_resource_names_on_incremental_reads() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let created = create(&app, &token, &contact("Ada", "ada@example.org")).await;
    let old = created["resourceName"].as_str().unwrap().to_string();
    let sync = sync_token(&app, &token).await;
    let new = app.sandbox.rename_contact(ALICE, &old).unwrap();
    assert_ne!(new, old);
    let delta = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields={FIELDS}&syncToken={sync}"),
            &token,
            None,
        )
        .await;
    let got = &delta["connections"][0];
    assert_eq!(got["resourceName"], new.as_str(), "{delta}");
    assert_eq!(got["metadata"]["previousResourceNames"], json!([old]));
    // Only sync reads carry them (discovery: "Populated only for people.connections.list
    // requests that include a sync token").
    let full = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            "/v1/people/me/connections?personFields=names,metadata",
            &token,
            None,
        )
        .await;
    assert!(full["connections"][0]["metadata"]
        .get("previousResourceNames")
        .is_none());
    // The old name answers the person as it is now.
    let batch = app
        .ok(
            "people.people.getBatchGet",
            Method::GET,
            &format!("/v1/people:batchGet?personFields=names&resourceNames={old}"),
            &token,
            None,
        )
        .await;
    assert_eq!(batch["responses"][0]["requestedResourceName"], old.as_str());
    assert_eq!(
        batch["responses"][0]["person"]["resourceName"],
        new.as_str()
    );
}

#[tokio::test]
async fn group_field_masks_are_those_each_method_documents() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    // contactGroups.create: clientData, groupType, metadata, name — no memberCount.
    let (status, v) = app
        .api(
            "people.contactGroups.create",
            Method::POST,
            "/v1/contactGroups",
            &token,
            Some(&json!({"contactGroup": {"name": "CRM"},
                         "readGroupFields": "clientData,groupType,memberCount,metadata,name"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(grpc_status(&v), "INVALID_ARGUMENT", "{v}");
    let made = app
        .ok(
            "people.contactGroups.create",
            Method::POST,
            "/v1/contactGroups",
            &token,
            Some(&json!({"contactGroup": {"name": "CRM"},
                         "readGroupFields": "clientData,groupType,metadata,name"})),
        )
        .await;
    assert_eq!(made["name"], "CRM");
    // list and get may ask for memberCount, not for what groups do not have.
    app.ok(
        "people.contactGroups.list",
        Method::GET,
        "/v1/contactGroups?groupFields=clientData,groupType,memberCount,metadata,name",
        &token,
        None,
    )
    .await;
    let id = made["resourceName"]
        .as_str()
        .unwrap()
        .trim_start_matches("contactGroups/");
    app.ok(
        "people.contactGroups.get",
        Method::GET,
        &format!("/v1/contactGroups/{id}?groupFields=memberCount,name"),
        &token,
        None,
    )
    .await;
    for path in [
        "/v1/contactGroups?groupFields=names".to_string(),
        format!("/v1/contactGroups/{id}?groupFields=memberResourceNames"),
    ] {
        let (status, _, v) = app.call(Method::GET, &path, &token, None, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
}

#[tokio::test]
async fn page_and_sync_tokens_are_bound_to_the_call_that_gave_them() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    for i in 0..3 {
        create(
            &app,
            &token,
            &contact(&format!("P{i}"), &format!("p{i}@example.com")),
        )
        .await;
    }
    let first = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            "/v1/people/me/connections?personFields=names,metadata&pageSize=2&requestSyncToken=true",
            &token,
            None,
        )
        .await;
    let page = google_sandbox_encode(first["nextPageToken"].as_str().unwrap());
    // "When paginating, all other parameters provided to people.connections.list must match
    // the first call that provided the page token."
    for other in [
        "personFields=names&pageSize=2&requestSyncToken=true",
        "personFields=names,metadata&pageSize=3&requestSyncToken=true",
        "personFields=names,metadata&pageSize=2",
        "personFields=names,metadata&pageSize=2&requestSyncToken=true&sources=READ_SOURCE_TYPE_CONTACT",
    ] {
        let (status, _, err) = app
            .call(
                Method::GET,
                &format!("/v1/people/me/connections?{other}&pageToken={page}"),
                &token,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{other}: {err}");
        assert_eq!(grpc_status(&err), "INVALID_ARGUMENT");
    }
    let last = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields=metadata,names&pageSize=2&requestSyncToken=true&pageToken={page}"),
            &token,
            None,
        )
        .await;
    let sync = google_sandbox_encode(last["nextSyncToken"].as_str().unwrap());
    // A sync token is bound to the read's fields and sources.
    for other in [
        "personFields=names",
        "personFields=names,metadata&sources=READ_SOURCE_TYPE_CONTACT",
    ] {
        let (status, _, err) = app
            .call(
                Method::GET,
                &format!("/v1/people/me/connections?{other}&syncToken={sync}"),
                &token,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{other}: {err}");
        assert_eq!(grpc_status(&err), "INVALID_ARGUMENT");
    }
    // "Sync tokens expire 7 days after the full sync": followed every 4 days, the chain
    // still ends 7 days after its full read.
    app.sandbox.advance_clock(4 * 24 * 3600);
    let token = app.token_all(ALICE).await;
    let next = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields=names,metadata&pageSize=50&requestSyncToken=true&syncToken={sync}"),
            &token,
            None,
        )
        .await;
    let sync = google_sandbox_encode(next["nextSyncToken"].as_str().unwrap());
    app.sandbox.advance_clock(4 * 24 * 3600);
    let token = app.token_all(ALICE).await;
    let (status, _, err) = app
        .call(
            Method::GET,
            &format!("/v1/people/me/connections?personFields={FIELDS}&syncToken={sync}"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["details"][0]["reason"], "EXPIRED_SYNC_TOKEN");
}

#[tokio::test]
async fn only_user_groups_my_contacts_and_starred_take_new_members() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let mut body = contact("Ada", "ada@example.org");
    body["memberships"] =
        json!([{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/friends"}}]);
    let (status, _, v) = app
        .call(
            Method::POST,
            &format!("/v1/people:createContact?personFields={FIELDS}"),
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    for ok in ["myContacts", "starred"] {
        body["memberships"] = json!([{"contactGroupMembership": {"contactGroupResourceName": format!("contactGroups/{ok}")}}]);
        create(&app, &token, &body).await;
    }
    let listed = app
        .ok(
            "people.contactGroups.list",
            Method::GET,
            "/v1/contactGroups",
            &token,
            None,
        )
        .await;
    let names: Vec<&str> = listed["contactGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["resourceName"].as_str().unwrap())
        .collect();
    for system in [
        "contactGroups/all",
        "contactGroups/blocked",
        "contactGroups/chatBuddies",
    ] {
        assert!(names.contains(&system), "{names:?}");
    }
    let someone = create(&app, &token, &contact("Bo", "bo@example.org")).await;
    let (status, _, v) = app
        .call(
            Method::POST,
            "/v1/contactGroups/coworkers/members:modify",
            &token,
            Some(&json!({"resourceNamesToAdd": [someone["resourceName"]]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Removing from a deprecated group is still allowed.
    let (status, _, v) = app
        .call(
            Method::POST,
            "/v1/contactGroups/coworkers/members:modify",
            &token,
            Some(&json!({"resourceNamesToRemove": [someone["resourceName"]]})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn group_names_are_unique_whatever_their_case() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    create_group(&app, &token, "crm").await;
    let (status, v) = app
        .api(
            "people.contactGroups.create",
            Method::POST,
            "/v1/contactGroups",
            &token,
            Some(&json!({"contactGroup": {"name": " CRM "}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
}

fn connection_names(list: &Value) -> Vec<String> {
    list["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["resourceName"].as_str().map(str::to_owned))
        .collect()
}

/// "Writes may have a propagation delay of several minutes for sync requests": with the
/// delay on, a new contact is not in `connections.list` (full or incremental) until the
/// delay has passed, though `get` shows it at once; the sync token stops before it, so the
/// next incremental read reports it — none is lost.
#[tokio::test]
async fn writes_reach_connection_lists_after_the_propagation_delay() {
    let app = spawn().await;
    let token = app.token_all(ALICE).await;
    let before = sync_token(&app, &token).await;
    app.sandbox.set_people_propagation_delay(60);
    let made = create(&app, &token, &contact("Late", "late@example.com")).await;
    let rn = made["resourceName"].as_str().unwrap().to_owned();
    let full_path = format!("/v1/people/me/connections?personFields={FIELDS}");
    let full = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &full_path,
            &token,
            None,
        )
        .await;
    assert!(
        !connection_names(&full).contains(&rn),
        "not listed yet: {full}"
    );
    let got = app
        .ok(
            "people.people.get",
            Method::GET,
            &format!("/v1/{rn}?personFields={FIELDS}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["resourceName"], rn.as_str(), "a direct read sees it");
    let inc_path = |t: &str| {
        format!(
            "/v1/people/me/connections?personFields={FIELDS}&requestSyncToken=true&syncToken={}",
            google_sandbox_encode(t)
        )
    };
    let inc = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &inc_path(&before),
            &token,
            None,
        )
        .await;
    assert!(!connection_names(&inc).contains(&rn), "{inc}");
    let next = inc["nextSyncToken"].as_str().unwrap().to_owned();
    app.sandbox.advance_clock(61);
    let inc = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &inc_path(&next),
            &token,
            None,
        )
        .await;
    assert_eq!(
        connection_names(&inc),
        vec![rn.clone()],
        "reported once visible"
    );
    let full = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &full_path,
            &token,
            None,
        )
        .await;
    assert!(connection_names(&full).contains(&rn));
}

/// "Mutate requests for the same user should be sent sequentially": a mutation that arrives
/// while another of the same user's is in progress is refused with 409 `ABORTED` and not
/// applied; another user's goes through, and so does the same one once the first is done.
#[tokio::test]
async fn one_people_mutation_at_a_time_per_user() {
    let app = spawn().await;
    let alice = app.token_all(ALICE).await;
    let bob = app.token_all(BOB).await;
    app.sandbox.inject_fault(
        google_sandbox::FaultSpec::new(google_sandbox::FaultKind::Latency)
            .user(ALICE)
            .latency_ms(400)
            .count(1),
    );
    let slow = {
        let http = app.http.clone();
        let url = app.url(&format!("/v1/people:createContact?personFields={FIELDS}"));
        let alice = alice.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(alice)
                .json(&contact("First", "first@example.com"))
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, _, err) = app
        .call(
            Method::POST,
            &format!("/v1/people:createContact?personFields={FIELDS}"),
            &alice,
            Some(&contact("Second", "second@example.com")),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(grpc_status(&err), "ABORTED");
    // Another user is not held up.
    create(&app, &bob, &contact("Bobs", "bobs@example.com")).await;
    assert_eq!(slow.await.unwrap().unwrap(), StatusCode::OK);
    // Alice's second mutation was not applied; sent again now, it is.
    let list = app
        .ok(
            "people.people.connections.list",
            Method::GET,
            &format!("/v1/people/me/connections?personFields={FIELDS}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(connection_names(&list).len(), 1, "{list}");
    create(&app, &alice, &contact("Second", "second@example.com")).await;
}
