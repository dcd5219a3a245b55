//! Typed helpers for the requests tests make again and again: the CRM's (with the sync key),
//! the admin's (with the admin key), and Google's side as the user's own apps act on it. Each
//! returns what the product answered, for the test to assert on; a test that needs another
//! key or a raw request uses [`Env::call`].

use super::{Env, CLIENT_ID};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use shared::google::people::{ListConnections, Person, PersonField};

/// The Calendar scope, as Google Calendar's own UI holds it.
pub const CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";
/// The Contacts scope, as Google Contacts' own UI holds it.
pub const CONTACTS_SCOPE: &str = "https://www.googleapis.com/auth/contacts";

impl Env {
    // ---- the CRM ----------------------------------------------------------------------------

    /// The CRM creates or replaces `user`'s event `crm_id` (`PUT /v1/users/{user}/events/{id}`).
    pub async fn put_event(&self, user: &str, crm_id: &str, event: Value) -> (StatusCode, Value) {
        self.call(
            "PUT",
            &format!("/v1/users/{user}/events/{crm_id}"),
            &self.sync,
            Some(event),
        )
        .await
    }

    /// The CRM reads `user`'s event `crm_id` and its sync state.
    pub async fn event(&self, user: &str, crm_id: &str) -> (StatusCode, Value) {
        self.call(
            "GET",
            &format!("/v1/users/{user}/events/{crm_id}"),
            &self.sync,
            None,
        )
        .await
    }

    /// The CRM deletes `user`'s event `crm_id`.
    pub async fn delete_event(&self, user: &str, crm_id: &str) -> (StatusCode, Value) {
        self.call(
            "DELETE",
            &format!("/v1/users/{user}/events/{crm_id}"),
            &self.sync,
            None,
        )
        .await
    }

    /// The CRM creates or replaces `user`'s contact `crm_id`.
    pub async fn put_contact(
        &self,
        user: &str,
        crm_id: &str,
        contact: Value,
    ) -> (StatusCode, Value) {
        self.call(
            "PUT",
            &format!("/v1/users/{user}/contacts/{crm_id}"),
            &self.sync,
            Some(contact),
        )
        .await
    }

    /// The CRM reads `user`'s contact `crm_id` and its sync state.
    pub async fn contact(&self, user: &str, crm_id: &str) -> (StatusCode, Value) {
        self.call(
            "GET",
            &format!("/v1/users/{user}/contacts/{crm_id}"),
            &self.sync,
            None,
        )
        .await
    }

    /// The CRM deletes `user`'s contact `crm_id`.
    pub async fn delete_contact(&self, user: &str, crm_id: &str) -> (StatusCode, Value) {
        self.call(
            "DELETE",
            &format!("/v1/users/{user}/contacts/{crm_id}"),
            &self.sync,
            None,
        )
        .await
    }

    /// The CRM changes `user`'s sync settings (`PATCH /v1/users/{user}/google`).
    pub async fn patch_account(&self, user: &str, patch: Value) -> (StatusCode, Value) {
        self.call(
            "PATCH",
            &format!("/v1/users/{user}/google"),
            &self.sync,
            Some(patch),
        )
        .await
    }

    /// The CRM asks for a connect link for `user` (`POST /v1/users/{user}/google/connect`
    /// with `body`); returns the Google authorization URL.
    pub async fn connect_link(&self, user: &str, body: Value) -> String {
        let (s, v) = self
            .call(
                "POST",
                &format!("/v1/users/{user}/google/connect"),
                &self.sync,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["authorization_url"].as_str().unwrap().to_owned()
    }

    // ---- the tenant's admin -----------------------------------------------------------------

    /// The admin registers the tenant's Google OAuth client (`PUT /v1/admin/google-client`).
    pub async fn put_google_client(&self, client_id: &str, secret: &str) -> (StatusCode, Value) {
        self.call(
            "PUT",
            "/v1/admin/google-client",
            &self.admin,
            Some(serde_json::json!({"client_id": client_id, "client_secret": secret})),
        )
        .await
    }

    /// The admin changes the tenant's settings (`PATCH /v1/admin/settings`).
    pub async fn patch_settings(&self, patch: Value) -> (StatusCode, Value) {
        self.call("PATCH", "/v1/admin/settings", &self.admin, Some(patch))
            .await
    }

    // ---- Google, as the user's own apps act on it -------------------------------------------

    /// How many `method` requests to exactly `path` Google has had (the sandbox's log).
    pub fn google_requests(&self, method: &str, path: &str) -> usize {
        self.sandbox
            .request_log()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// A token of `email`'s own for `scope` (what Google Calendar's or Contacts' UI acts with).
    pub fn google_token(&self, email: &str, scope: &str) -> SecretString {
        SecretString::from(self.sandbox.issue_access_token(CLIENT_ID, email, &[scope]))
    }

    /// Every contact in the address book behind `token` (contact sources), with `fields`.
    pub async fn google_contacts(
        &self,
        token: &SecretString,
        fields: Vec<PersonField>,
    ) -> Vec<Person> {
        let mut out = Vec::new();
        let mut params = ListConnections {
            person_fields: fields,
            page_size: Some(1000),
            ..Default::default()
        };
        loop {
            let page = self
                .app
                .google
                .list_connections(token, &params)
                .await
                .unwrap();
            out.extend(page.connections);
            match page.next_page_token {
                Some(t) => params.page_token = Some(t),
                None => return out,
            }
        }
    }

    /// [`Env::google_contacts`] with every field.
    pub async fn all_google_contacts(&self, token: &SecretString) -> Vec<Person> {
        self.google_contacts(token, PersonField::ALL.to_vec()).await
    }
}
