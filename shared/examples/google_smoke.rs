//! The operator's real-Google smoke check: probes what the project's Google sandbox cannot
//! settle, against real Google, with the operator's own OAuth client and a test account.
//! Never run in CI (it needs real credentials and the network); CI only builds it.
//!
//! ```sh
//! export GOOGLE_CLIENT_ID=….apps.googleusercontent.com GOOGLE_CLIENT_SECRET=…
//! # First run: prints a consent URL, waits on the loopback redirect for the code, and writes
//! # the refresh token to SMOKE_TOKEN_FILE (0600). Later runs read it (or GOOGLE_REFRESH_TOKEN).
//! cargo run -p shared --example google_smoke
//! ```
//!
//! Optional: `SMOKE_REDIRECT_URI` (default `http://127.0.0.1:8765/`, registered on the
//! client), `SMOKE_TOKEN_FILE` (default `google-smoke.token`), `SMOKE_ATTENDEE_EMAIL` and
//! `SMOKE_ATTENDEE_REFRESH_TOKEN` (a second test account, for attendee copies),
//! `SMOKE_WEBHOOK_URL` (an https address of yours, for a real watch),
//! `SMOKE_HOLIDAY_CALENDAR` (default `en.usa#holiday@group.v.calendar.google.com`, subscribed
//! by the test account), `SMOKE_PROPAGATION_WAIT_SECS` (default 180), `GOOGLE_BASE_URL` (every
//! endpoint on one host, e.g. the sandbox, for a dry run).
//!
//! One line per probe: `PASS`, `FAIL` or `SKIP`, its name, and what was seen. Everything it
//! creates (contacts, a contact group, events, channels) is deleted at the end. Tokens are
//! never printed.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use shared::config::GoogleEndpoints;
use shared::contacts::normal::FieldMapping;
use shared::google::calendar::{Event, ListEvents, SendUpdates, WatchRequest};
use shared::google::oauth::OAuthClient;
use shared::google::people::{ListConnections, Person, PersonField, MY_CONTACTS, READ_SOURCES};
use shared::google::Google;
use std::time::{Duration, Instant};

const SCOPES: &[&str] = &[
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/contacts",
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// One probe's line.
fn report(outcome: &str, probe: &str, seen: impl std::fmt::Display) {
    println!("{outcome:4} {probe:32} {seen}");
}

struct Smoke {
    google: Google,
    http: reqwest::Client,
    token: SecretString,
    email: String,
    tag: String,
    /// What to delete at the end.
    contacts: Vec<String>,
    groups: Vec<String>,
    events: Vec<(SecretString, String)>,
    channels: Vec<(String, String)>,
}

impl Smoke {
    fn calendar_url(&self, path: &str) -> String {
        format!("{}/calendar/v3{path}", self.google.endpoints.calendar_base)
    }

    fn people_url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.google.endpoints.people_base)
    }

    /// A call outside the product's client (to see what Google answers to what the product
    /// never sends): status and JSON body.
    async fn raw(
        &self,
        token: &SecretString,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.expose_secret());
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "transport": e.to_string() })),
        }
    }

    fn person(&self, given: &str, with_email: Option<&str>) -> Person {
        let mut v = json!({
            "names": [{"givenName": given, "familyName": format!("Smoke {}", self.tag)}],
            "clientData": [{"key": "crmId", "value": format!("smoke-{}-{given}", self.tag)}],
        });
        if let Some(e) = with_email {
            v["emailAddresses"] = json!([{"value": e, "type": "work"}]);
        }
        serde_json::from_value(v).unwrap_or_default()
    }

    /// The product's exact masks and parameters, each on the call that carries it.
    async fn field_masks(&mut self) -> Option<String> {
        let mapping = FieldMapping::default();
        let read = mapping.person_fields();
        let group = match self
            .google
            .create_contact_group(&self.token, &format!("Smoke {}", self.tag), &[])
            .await
        {
            Ok(g) => {
                self.groups.push(g.resource_name.clone());
                report(
                    "PASS",
                    "mask contactGroups.create",
                    "readGroupFields accepted",
                );
                Some(g.resource_name)
            }
            Err(e) => {
                report("FAIL", "mask contactGroups.create", e);
                None
            }
        };
        match self.google.contact_groups(&self.token).await {
            Ok(groups) => report(
                "PASS",
                "mask contactGroups.list",
                format!("groupFields accepted ({} groups)", groups.len()),
            ),
            Err(e) => report("FAIL", "mask contactGroups.list", e),
        }
        let params = ListConnections {
            person_fields: read.clone(),
            page_size: Some(1000),
            request_sync_token: true,
            ..Default::default()
        };
        match self.google.list_connections(&self.token, &params).await {
            Ok(p) => report(
                "PASS",
                "mask connections.list",
                format!(
                    "personFields + sources={READ_SOURCES} accepted ({} contacts)",
                    p.connections.len()
                ),
            ),
            Err(e) => report("FAIL", "mask connections.list", e),
        }
        let mut body = self.person("Single", None);
        if let Some(g) = &group {
            body.memberships = serde_json::from_value(
                json!([{"contactGroupMembership": {"contactGroupResourceName": g}},
                       {"contactGroupMembership": {"contactGroupResourceName": MY_CONTACTS}}]),
            )
            .unwrap_or_default();
        }
        let made = match self.google.create_contact(&self.token, &body, &read).await {
            Ok(p) => {
                self.contacts.push(p.resource_name.clone());
                report("PASS", "mask createContact", "personFields accepted");
                Some(p)
            }
            Err(e) => {
                report("FAIL", "mask createContact", e);
                None
            }
        };
        if let Some(p) = &made {
            let mut edit = p.clone();
            edit.biographies =
                serde_json::from_value(json!([{"value": "smoke", "contentType": "TEXT_PLAIN"}]))
                    .unwrap_or_default();
            match self
                .google
                .update_contact(
                    &self.token,
                    &p.resource_name,
                    &edit,
                    &mapping.update_person_fields(),
                    &read,
                )
                .await
            {
                Ok(_) => report("PASS", "mask updateContact", "updatePersonFields accepted"),
                Err(e) => report("FAIL", "mask updateContact", e),
            }
        }
        let batch = [self.person("Batch", None)];
        match self
            .google
            .batch_create_contacts(&self.token, &batch, &read)
            .await
            .pop()
        {
            Some(Ok(p)) => {
                self.contacts.push(p.resource_name.clone());
                let mut edit = p.clone();
                edit.biographies = serde_json::from_value(
                    json!([{"value": "smoke", "contentType": "TEXT_PLAIN"}]),
                )
                .unwrap_or_default();
                let bodies = std::iter::once((p.resource_name.clone(), edit)).collect();
                let answers = self
                    .google
                    .batch_update_contacts(
                        &self.token,
                        &bodies,
                        &mapping.update_person_fields(),
                        &read,
                    )
                    .await;
                match answers.into_values().next() {
                    Some(Ok(_)) => report(
                        "PASS",
                        "mask batch create/update",
                        "readMask and updateMask accepted",
                    ),
                    Some(Err(e)) => report("FAIL", "mask batch create/update", e),
                    None => report("FAIL", "mask batch create/update", "no answer"),
                }
            }
            Some(Err(e)) => report("FAIL", "mask batch create/update", e),
            None => report("FAIL", "mask batch create/update", "no answer"),
        }
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(90);
        let list = ListEvents {
            time_min: since
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            max_results: Some(250),
            ..Default::default()
        };
        match self.google.list_events(&self.token, "primary", &list).await {
            Ok(p) => report(
                "PASS",
                "params events.list (full read)",
                format!("accepted ({} events on the first page)", p.items.len()),
            ),
            Err(e) => report("FAIL", "params events.list (full read)", e),
        }
        group
    }

    /// F12: does Google add My Contacts to a contact created in a user group only?
    async fn my_contacts_on_create(&mut self, group: Option<&str>) {
        let Some(group) = group else {
            return report("SKIP", "myContacts added on create", "no group was made");
        };
        let mut body = serde_json::to_value(self.person("OnlyGroup", None)).unwrap_or_default();
        body["memberships"] =
            json!([{"contactGroupMembership": {"contactGroupResourceName": group}}]);
        let (status, v) = self
            .raw(
                &self.token,
                reqwest::Method::POST,
                &self.people_url("/people:createContact?personFields=memberships"),
                Some(body),
            )
            .await;
        let Some(rn) = v["resourceName"].as_str().filter(|_| status == 200) else {
            return report(
                "FAIL",
                "myContacts added on create",
                format!("{status} {v}"),
            );
        };
        self.contacts.push(rn.to_owned());
        let added = v.to_string().contains("myContacts");
        report(
            "PASS",
            "myContacts added on create",
            if added {
                "yes: Google adds My Contacts by itself"
            } else {
                "no: only the named group (the product names both)"
            },
        );
    }

    /// F2: a contact whose e-mail is a Google account is read with profile data by default.
    async fn sources(&mut self) {
        let body = self.person("Profiled", Some(&self.email.clone()));
        let read = FieldMapping::default().person_fields();
        let made = match self.google.create_contact(&self.token, &body, &read).await {
            Ok(p) => p,
            Err(e) => return report("FAIL", "sources", e),
        };
        self.contacts.push(made.resource_name.clone());
        let url = |sources: &str| {
            self.people_url(&format!(
                "/{}?personFields=names,emailAddresses,metadata{sources}",
                made.resource_name
            ))
        };
        let (_, default) = self
            .raw(&self.token, reqwest::Method::GET, &url(""), None)
            .await;
        let (_, contact) = self
            .raw(
                &self.token,
                reqwest::Method::GET,
                &url(&format!("&sources={READ_SOURCES}")),
                None,
            )
            .await;
        let merged = default.to_string().contains("\"PROFILE\"");
        let clean = !contact.to_string().contains("\"PROFILE\"");
        report(
            if clean { "PASS" } else { "FAIL" },
            "sources",
            format!(
                "default read merges the profile: {merged}; the product's read is contact-only: {clean}"
            ),
        );
    }

    /// People's write-propagation delay: how long until an incremental list shows a create.
    async fn propagation(&mut self, wait: Duration) {
        let fields = vec![
            PersonField::Names,
            PersonField::ClientData,
            PersonField::Metadata,
        ];
        let full = ListConnections {
            person_fields: fields.clone(),
            page_size: Some(1000),
            request_sync_token: true,
            ..Default::default()
        };
        let sync;
        let mut params = full.clone();
        loop {
            match self.google.list_connections(&self.token, &params).await {
                Ok(p) => match p.next_page_token {
                    Some(t) => params.page_token = Some(t),
                    None => {
                        sync = p.next_sync_token;
                        break;
                    }
                },
                Err(e) => return report("FAIL", "people propagation delay", e),
            }
        }
        let Some(mut sync) = sync else {
            return report("FAIL", "people propagation delay", "no sync token");
        };
        let body = self.person("Propagation", None);
        let made = match self
            .google
            .create_contact(&self.token, &body, &fields)
            .await
        {
            Ok(p) => p,
            Err(e) => return report("FAIL", "people propagation delay", e),
        };
        self.contacts.push(made.resource_name.clone());
        let start = Instant::now();
        while start.elapsed() < wait {
            let inc = ListConnections {
                sync_token: Some(sync.clone()),
                ..full.clone()
            };
            match self.google.list_connections(&self.token, &inc).await {
                Ok(p) => {
                    if p.connections
                        .iter()
                        .any(|c| c.resource_name == made.resource_name)
                    {
                        let secs = start.elapsed().as_secs();
                        let within =
                            secs < shared::contacts::sync::CREATE_SETTLE.whole_seconds() as u64;
                        return report(
                            if within { "PASS" } else { "FAIL" },
                            "people propagation delay",
                            format!("an incremental list showed the create after ~{secs} s (the product waits 10 min before a second create)"),
                        );
                    }
                    if let Some(t) = p.next_sync_token {
                        sync = t;
                    }
                }
                Err(e) => return report("FAIL", "people propagation delay", e),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        report(
            "FAIL",
            "people propagation delay",
            format!("not shown within {} s", wait.as_secs()),
        );
    }

    /// Page tokens sent with other parameters: People, then Calendar.
    async fn page_token_binding(&mut self) {
        let first = self
            .raw(
                &self.token,
                reqwest::Method::GET,
                &self.people_url("/people/me/connections?personFields=names&pageSize=1"),
                None,
            )
            .await;
        match first.1["nextPageToken"].as_str() {
            Some(t) => {
                let (status, v) = self
                    .raw(
                        &self.token,
                        reqwest::Method::GET,
                        &self.people_url(&format!(
                            "/people/me/connections?personFields=names,emailAddresses&pageSize=1&pageToken={}",
                            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                        )),
                        None,
                    )
                    .await;
                report(
                    "PASS",
                    "page token binding (People)",
                    format!(
                        "other personFields: {status}{}",
                        if status == 400 {
                            " (bound, the product restarts the read)"
                        } else {
                            " (not bound)"
                        }
                    ),
                );
                let _ = v;
            }
            None => report(
                "SKIP",
                "page token binding (People)",
                "fewer than 2 contacts",
            ),
        }
        for i in 0..2 {
            let e: Event = serde_json::from_value(json!({
                "summary": format!("Smoke {} page {i}", self.tag),
                "start": {"date": format!("2031-01-0{}", i + 1)},
                "end": {"date": format!("2031-01-0{}", i + 2)},
            }))
            .unwrap_or_default();
            match self
                .google
                .insert_event(&self.token, "primary", &e, SendUpdates::None)
                .await
            {
                Ok(made) => self.events.push((self.token.clone(), made.id)),
                Err(e) => return report("FAIL", "page token binding (Calendar)", e),
            }
        }
        let base = "/calendars/primary/events?maxResults=1&timeMin=2030-12-31T00:00:00Z";
        let (_, page) = self
            .raw(
                &self.token,
                reqwest::Method::GET,
                &self.calendar_url(base),
                None,
            )
            .await;
        let Some(t) = page["nextPageToken"].as_str() else {
            return report("SKIP", "page token binding (Calendar)", "one page only");
        };
        let t = url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
        let (status, _) = self
            .raw(
                &self.token,
                reqwest::Method::GET,
                &self.calendar_url(&format!(
                    "/calendars/primary/events?maxResults=1&timeMin=2030-12-30T00:00:00Z&pageToken={t}"
                )),
                None,
            )
            .await;
        report(
            "PASS",
            "page token binding (Calendar)",
            format!(
                "other timeMin: {status}{}",
                if status == 400 {
                    " (bound, the product restarts the read)"
                } else {
                    " (not bound)"
                }
            ),
        );
    }

    /// Push: an http address is refused; an https one of the operator's works; a holiday
    /// calendar answers pushNotSupportedForRequestedResource.
    async fn push(&mut self) {
        let watch = |address: &str| WatchRequest {
            id: format!("cgs-smoke-{}", shared::crypto::random_token(12)),
            token: SecretString::from(shared::crypto::random_token(24)),
            address: address.to_owned(),
            ttl_secs: Some(600),
        };
        match self
            .google
            .watch_events(
                &self.token,
                "primary",
                &watch("http://example.com/webhooks/google/calendar"),
            )
            .await
        {
            Err(e) => report("PASS", "push requires https", format!("http refused: {e}")),
            Ok(ch) => {
                self.channels.push((ch.id, ch.resource_id));
                report(
                    "FAIL",
                    "push requires https",
                    "an http address was accepted",
                );
            }
        }
        match env("SMOKE_WEBHOOK_URL") {
            Some(url) => match self
                .google
                .watch_events(&self.token, "primary", &watch(&url))
                .await
            {
                Ok(ch) => {
                    self.channels.push((ch.id, ch.resource_id));
                    report("PASS", "push to your https address", "channel opened");
                }
                Err(e) => report("FAIL", "push to your https address", e),
            },
            None => report(
                "SKIP",
                "push to your https address",
                "SMOKE_WEBHOOK_URL not set",
            ),
        }
        let holiday = env("SMOKE_HOLIDAY_CALENDAR")
            .unwrap_or_else(|| "en.usa#holiday@group.v.calendar.google.com".into());
        match self
            .google
            .watch_events(
                &self.token,
                &holiday,
                &watch("https://example.com/webhooks/google/calendar"),
            )
            .await
        {
            Err(shared::google::GoogleError::Rejected { reason, .. })
                if reason == "pushNotSupportedForRequestedResource" =>
            {
                report(
                    "PASS",
                    "pushNotSupported",
                    format!("{holiday}: {reason} (the product polls it)"),
                )
            }
            Err(e) => report("SKIP", "pushNotSupported", format!("{holiday}: {e}")),
            Ok(ch) => {
                self.channels.push((ch.id, ch.resource_id));
                report(
                    "PASS",
                    "pushNotSupported",
                    format!("{holiday} can be watched"),
                );
            }
        }
    }

    /// Attendee copies: the invitation is in the attendee's calendar under the same id,
    /// without the organizer's private properties; the attendee's answer reaches the
    /// organizer.
    async fn attendee_copies(&mut self, attendee: Option<(String, SecretString)>) {
        let Some((email, theirs)) = attendee else {
            return report(
                "SKIP",
                "attendee copies",
                "SMOKE_ATTENDEE_EMAIL / _REFRESH_TOKEN not set",
            );
        };
        let e: Event = serde_json::from_value(json!({
            "summary": format!("Smoke {} invitation", self.tag),
            "start": {"dateTime": "2031-02-03T10:00:00Z"},
            "end": {"dateTime": "2031-02-03T11:00:00Z"},
            "attendees": [{"email": email}],
            "extendedProperties": {"private": {"crmId": "smoke"}, "shared": {"smoke": self.tag}},
        }))
        .unwrap_or_default();
        let made = match self
            .google
            .insert_event(&self.token, "primary", &e, SendUpdates::None)
            .await
        {
            Ok(m) => m,
            Err(e) => return report("FAIL", "attendee copies", e),
        };
        self.events.push((self.token.clone(), made.id.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let url = self.calendar_url(&format!("/calendars/primary/events/{}", made.id));
        let (status, copy) = self.raw(&theirs, reqwest::Method::GET, &url, None).await;
        if status != 200 {
            return report(
                "FAIL",
                "attendee copies",
                format!("no copy in the attendee's calendar ({status}) — with sendUpdates=none"),
            );
        }
        let private_leaked = copy["extendedProperties"]["private"]["crmId"] == "smoke";
        let shared_kept = copy["extendedProperties"]["shared"]["smoke"] == self.tag.as_str();
        report(
            if private_leaked { "FAIL" } else { "PASS" },
            "attendee copies",
            format!("same id; private properties on the copy: {private_leaked}; shared ones: {shared_kept}"),
        );
        let mut attendees = copy["attendees"].clone();
        if let Some(list) = attendees.as_array_mut() {
            for a in list.iter_mut() {
                if a["self"] == true {
                    a["responseStatus"] = json!("accepted");
                }
            }
        }
        let (status, _) = self
            .raw(
                &theirs,
                reqwest::Method::PATCH,
                &url,
                Some(json!({"attendees": attendees})),
            )
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (_, own) = self
            .raw(&self.token, reqwest::Method::GET, &url, None)
            .await;
        let answered = own["attendees"].as_array().into_iter().flatten().any(|a| {
            a["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(&email))
                && a["responseStatus"] == "accepted"
        });
        report(
            if answered { "PASS" } else { "FAIL" },
            "attendee RSVP reaches organizer",
            format!("patch of the copy {status}; organizer sees accepted: {answered}"),
        );
    }

    /// F19: what batchDeleteContacts answers for a name already deleted.
    async fn batch_delete_missing(&mut self) {
        let body = self.person("Gone", None);
        let made = match self
            .google
            .create_contact(&self.token, &body, &[PersonField::Names])
            .await
        {
            Ok(p) => p,
            Err(e) => return report("FAIL", "batchDelete of a deleted name", e),
        };
        let _ = self
            .google
            .delete_contact(&self.token, &made.resource_name)
            .await;
        let (status, v) = self
            .raw(
                &self.token,
                reqwest::Method::POST,
                &self.people_url("/people:batchDeleteContacts"),
                Some(json!({"resourceNames": [made.resource_name]})),
            )
            .await;
        report(
            "PASS",
            "batchDelete of a deleted name",
            format!("{status} {}", v["error"]["status"].as_str().unwrap_or("")),
        );
    }

    async fn clean_up(&mut self) {
        let mut left: Vec<String> = Vec::new();
        for rn in std::mem::take(&mut self.contacts) {
            if self.google.delete_contact(&self.token, &rn).await.is_err() {
                left.push(rn);
            }
        }
        for g in std::mem::take(&mut self.groups) {
            let (status, _) = self
                .raw(
                    &self.token,
                    reqwest::Method::DELETE,
                    &self.people_url(&format!("/{g}?deleteContacts=false")),
                    None,
                )
                .await;
            if status != 200 {
                left.push(format!("{g} ({status})"));
            }
        }
        for (token, id) in std::mem::take(&mut self.events) {
            if self
                .google
                .delete_event(&token, "primary", &id, None, SendUpdates::None)
                .await
                .is_err()
            {
                left.push(format!("event {id}"));
            }
        }
        for (id, resource) in std::mem::take(&mut self.channels) {
            if self
                .google
                .stop_channel(&self.token, &id, &resource)
                .await
                .is_err()
            {
                left.push(format!("channel {id}"));
            }
        }
        report(
            if left.is_empty() { "PASS" } else { "FAIL" },
            "clean up",
            if left.is_empty() {
                "everything the probes made is deleted".to_owned()
            } else {
                format!("left behind: {}", left.join(", "))
            },
        );
    }
}

/// The refresh token: from the environment or the token file, else by consent (the code
/// comes back on the loopback redirect).
async fn refresh_token(
    google: &Google,
    client: &OAuthClient,
    redirect: &str,
) -> Result<SecretString, String> {
    if let Some(t) = env("GOOGLE_REFRESH_TOKEN") {
        return Ok(SecretString::from(t));
    }
    let file = env("SMOKE_TOKEN_FILE").unwrap_or_else(|| "google-smoke.token".into());
    if let Ok(t) = std::fs::read_to_string(&file) {
        if !t.trim().is_empty() {
            return Ok(SecretString::from(t.trim().to_owned()));
        }
    }
    let state = shared::crypto::random_token(16);
    let auth = google
        .authorization(client, redirect, &state, SCOPES, None)
        .map_err(|e| e.to_string())?;
    println!(
        "Open this URL, sign in with the TEST account and consent:\n\n{}\n",
        auth.url
    );
    let addr = url::Url::parse(redirect)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .ok_or("SMOKE_REDIRECT_URI must be an http://127.0.0.1:PORT/ address")?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 8192];
    let n = tokio::io::AsyncReadExt::read(&mut socket, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let request = String::from_utf8_lossy(&buf[..n]).to_string();
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let query = url::Url::parse(&format!("http://localhost{target}")).map_err(|e| e.to_string())?;
    let param = |name: &str| {
        query
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let _ = tokio::io::AsyncWriteExt::write_all(
        &mut socket,
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nDone; back to the terminal.\n",
    )
    .await;
    if param("state").as_deref() != Some(state.as_str()) {
        return Err("the redirect's state does not match".into());
    }
    let code =
        param("code").ok_or_else(|| format!("no code: {}", param("error").unwrap_or_default()))?;
    let tokens = google
        .exchange_code(
            client,
            redirect,
            &code,
            &auth.pkce_verifier,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let refresh = tokens.refresh_token.ok_or("Google sent no refresh token")?;
    write_private(&file, refresh.expose_secret()).map_err(|e| e.to_string())?;
    println!("refresh token written to {file} (0600)");
    Ok(refresh)
}

fn write_private(path: &str, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}

#[tokio::main]
async fn main() {
    let (Some(id), Some(secret)) = (env("GOOGLE_CLIENT_ID"), env("GOOGLE_CLIENT_SECRET")) else {
        eprintln!("set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (see the file's header)");
        std::process::exit(2);
    };
    let endpoints = env("GOOGLE_BASE_URL")
        .map(|b| GoogleEndpoints::single_host(&b))
        .unwrap_or_default();
    let google = Google::new(endpoints, Default::default());
    let client = OAuthClient {
        client_id: id,
        client_secret: SecretString::from(secret),
    };
    let redirect = env("SMOKE_REDIRECT_URI").unwrap_or_else(|| "http://127.0.0.1:8765/".into());
    let access = async |refresh: SecretString| {
        google
            .refresh(
                &client,
                &redirect,
                &refresh,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map(|t| t.access_token)
    };
    let token = match refresh_token(&google, &client, &redirect).await {
        Ok(r) => match access(r).await {
            Ok(t) => t,
            Err(e) => {
                report("FAIL", "oauth refresh", e);
                std::process::exit(1);
            }
        },
        Err(e) => {
            report("FAIL", "oauth consent", e);
            std::process::exit(1);
        }
    };
    let email = match google.identity(&token).await {
        Ok(i) => {
            report(
                "PASS",
                "oauth refresh + userinfo",
                "token refreshed, identity read",
            );
            i.email
        }
        Err(e) => {
            report("FAIL", "oauth refresh + userinfo", e);
            String::new()
        }
    };
    let attendee = match (
        env("SMOKE_ATTENDEE_EMAIL"),
        env("SMOKE_ATTENDEE_REFRESH_TOKEN"),
    ) {
        (Some(e), Some(r)) => match access(SecretString::from(r)).await {
            Ok(t) => Some((e, t)),
            Err(e) => {
                report("FAIL", "attendee token", e);
                None
            }
        },
        _ => None,
    };
    let wait = Duration::from_secs(
        env("SMOKE_PROPAGATION_WAIT_SECS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    );
    let mut smoke = Smoke {
        google: google.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default(),
        token,
        email,
        tag: shared::crypto::random_token(6),
        contacts: Vec::new(),
        groups: Vec::new(),
        events: Vec::new(),
        channels: Vec::new(),
    };
    let group = smoke.field_masks().await;
    smoke.my_contacts_on_create(group.as_deref()).await;
    smoke.sources().await;
    smoke.page_token_binding().await;
    smoke.push().await;
    smoke.attendee_copies(attendee).await;
    smoke.batch_delete_missing().await;
    smoke.propagation(wait).await;
    smoke.clean_up().await;
}
