//! The admin console (issue 13, item 1) as a browser without JavaScript uses it: sign-in
//! with an admin key, a signed session cookie, CSRF tokens on every form, expiry, the
//! tenant boundary, escaping, and no key, secret or token on any page. Embedded adapters,
//! Google sandbox.

use crate::world::{Backend, Env, CLIENT_SECRET};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

struct Browser<'e> {
    env: &'e Env,
    /// The tenant admin's session cookie, and the operator's.
    cookie: Option<String>,
    operator: Option<String>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    /// The CSRF token of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        let len = self.body[at..].find('"').unwrap();
        self.body[at..at + len].to_owned()
    }
}

impl<'e> Browser<'e> {
    fn new(env: &'e Env) -> Self {
        Self {
            env,
            cookie: None,
            operator: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let mut jar = Vec::new();
        if let Some(c) = &self.cookie {
            jar.push(format!("cgs_console={c}"));
        }
        if let Some(c) = &self.operator {
            jar.push(format!("cgs_operator={c}"));
        }
        let req = match jar.is_empty() {
            true => req,
            false => req.header("cookie", jar.join("; ")),
        };
        let resp = req.send().await.unwrap();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let (name, rest) = sc.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap_or("");
            let value = (!value.is_empty()).then(|| value.to_owned());
            match name {
                "cgs_console" => self.cookie = value,
                "cgs_operator" => self.operator = value,
                _ => {}
            }
        }
        Answer {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookie,
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.env.http.get(format!("{}{path}", self.env.api));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self
            .env
            .http
            .post(format!("{}{path}", self.env.api))
            .form(form);
        self.send(req).await
    }

    async fn sign_in(&mut self, key: &str) -> Answer {
        self.post("/admin/sign-in", &[("key", key)]).await
    }
}

/// Every page's headers and what no page may contain.
fn assert_safe_page(a: &Answer, secrets: &[&str]) {
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(a.headers["x-frame-options"], "DENY");
    assert_eq!(a.headers["referrer-policy"], "no-referrer");
    assert_eq!(a.headers["cache-control"], "no-store");
    for s in secrets {
        assert!(!a.body.contains(s), "a page shows a secret");
    }
}

#[tokio::test]
async fn sign_in_issues_a_strict_session_and_only_an_admin_key_signs_in() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);

    // Not signed in: every page sends to the sign-in form.
    let a = b.get("/admin/settings").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in"));
    let a = b.get("/admin/sign-in").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<label for=\"key\">"));
    assert_safe_page(&a, &[]);

    // A wrong key and a sync key are refused, in words.
    let a = b.sign_in("cgs_nonsense").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("not a valid API key"));
    assert!(b.cookie.is_none());
    let a = b.sign_in(&env.sync).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("admin scope"));
    assert!(!a.body.contains(&env.sync), "the typed key is not echoed");
    assert!(b.cookie.is_none());

    // The admin key: a session cookie that is HttpOnly, SameSite=Strict, Path=/admin, not
    // Secure on loopback, and does not carry the key.
    let a = b.sign_in(&env.admin).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let sc = a.set_cookie.unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=1800"] {
        assert!(sc.contains(part), "{sc}");
    }
    assert!(!sc.contains("Secure"), "plain http on loopback: {sc}");
    let cookie = b.cookie.clone().unwrap();
    let key_secret = env.admin.rsplit('_').next().unwrap();
    assert!(!cookie.contains(key_secret) && !cookie.contains(&env.admin));

    let a = b.get("/admin/google-client").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains(&format!(
        "<code id=\"redirect-uri\">{}/oauth/callback</code>",
        env.api
    )));
    assert!(a.body.contains(crate::world::CLIENT_ID));
    assert_safe_page(&a, &[&env.admin, CLIENT_SECRET]);
    // Its one inline script is allowed by its hash, nothing else.
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");

    // A tampered cookie is no session.
    let mut forged = Browser::new(&env);
    forged.cookie = Some(format!("{}x", &cookie));
    let a = forged.get("/admin/settings").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in?why=expired"));

    // Sign-out needs the CSRF token too, then ends the session.
    let page = b.get("/admin/keys").await;
    let a = b.post("/admin/sign-out", &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = b.post("/admin/sign-out", &[("csrf", &page.csrf())]).await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in?why=signed-out"));
    assert!(a.set_cookie.unwrap().contains("Max-Age=0"));
    assert!(b.cookie.is_none());
}

#[tokio::test]
async fn settings_saved_from_the_form_are_what_the_api_shows_and_bad_input_loses_nothing() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let page = b.get("/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let form = |days: &'static str, group: &'static str| {
        vec![
            ("products", "calendar"),
            ("products", "contacts"),
            ("direction", "crm_to_google"),
            ("conflict_policy", "crm_wins"),
            ("deletion_policy", "propagate"),
            ("private_events", "skip"),
            ("guest_notifications", "external_only"),
            ("sync_since_days", days),
            ("poll_interval_minutes", "10"),
            ("contact_group_name", group),
            ("color.meeting", "11"),
            ("color.call", ""),
            ("field.names", "two_way"),
            ("field.emails", "two_way"),
            ("field.phones", "google_to_crm"),
            ("field.organization", "two_way"),
            ("field.addresses", "off"),
            ("field.notes", "crm_to_google"),
            ("allowed_return_urls", crate::world::RETURN_URL),
            ("webhook_url", ""),
        ]
    };

    // No CSRF token, a wrong one, or a foreign Origin: refused, nothing stored.
    let mut no_token = form("30", "CRM");
    let a = b.post("/admin/settings", &no_token).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    no_token.push(("csrf", "forged"));
    let a = b.post("/admin/settings", &no_token).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let mut good = form("30", "CRM");
    good.push(("csrf", &csrf));
    let foreign = env
        .http
        .post(format!("{}/admin/settings", env.api))
        .header("origin", "https://evil.example")
        .form(&good);
    let a = b.send(foreign).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let cross_site = env
        .http
        .post(format!("{}/admin/settings", env.api))
        .header("sec-fetch-site", "cross-site")
        .form(&good);
    let a = b.send(cross_site).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let (_, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert_eq!(
        v["defaults"]["direction"], "two_way",
        "nothing changed: {v}"
    );

    // Bad input: the page says why, and keeps what was typed (escaped).
    let mut bad = form("0", "Team \"<b>A</b>\"");
    bad.push(("csrf", &csrf));
    let a = b.post("/admin/settings", &bad).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("sync_since_days must be 1 to 3650"),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("value=\"Team &#34;&#60;b&#62;A&#60;/b&#62;&#34;\""));
    assert!(!a.body.contains("<b>A</b>"));
    assert!(a.body.contains("<option value=\"crm_to_google\" selected>"));
    let (_, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert_eq!(
        v["defaults"]["direction"], "two_way",
        "nothing changed: {v}"
    );

    // Good input: stored, exactly as the API shows it.
    let a = b.post("/admin/settings", &good).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let (_, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert_eq!(v["products_allowed"], json!(["calendar", "contacts"]));
    let d = &v["defaults"];
    assert_eq!(d["direction"], "crm_to_google");
    assert_eq!(d["conflict_policy"], "crm_wins");
    assert_eq!(d["deletion_policy"], "propagate");
    assert_eq!(d["private_events"], "skip");
    assert_eq!(d["guest_notifications"], "external_only");
    assert_eq!(d["event_colors"], json!({"meeting": "11"}));
    assert_eq!(d["contact_fields"]["phones"], "google_to_crm");
    assert_eq!(d["contact_fields"]["addresses"], "off");
    assert_eq!(d["contact_fields"]["notes"], "crm_to_google");
    let page = b.get("/admin/settings?done=saved").await;
    assert!(page.body.contains("Settings saved."));
    assert!(page
        .body
        .contains("name=\"color.meeting\" value=\"11\" checked"));
    assert!(page.body.contains(
        "name=\"field.addresses\" value=\"off\" aria-label=\"Postal addresses: Off\" checked"
    ));

    // A webhook URL: its signing secret is shown once, on that answer only.
    let mut hook = form("30", "CRM");
    hook.retain(|(k, _)| *k != "webhook_url");
    hook.push(("webhook_url", "http://127.0.0.1:9/hook"));
    hook.push(("csrf", &csrf));
    let a = b.post("/admin/settings", &hook).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("whsec_"), "{}", a.body);
    let again = b.get("/admin/settings").await;
    assert!(!again.body.contains("whsec_"));
    assert!(again.body.contains("Rotate the signing secret"));
}

#[tokio::test]
async fn sessions_expire_and_end_with_their_key() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    assert_eq!(b.get("/admin/keys").await.status, StatusCode::OK);
    env.clock.advance(time::Duration::minutes(31));
    let a = b.get("/admin/keys").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in?why=expired"));
    assert!(a.set_cookie.unwrap().contains("Max-Age=0"));
    let a = b.get("/admin/sign-in?why=expired").await;
    assert!(a.body.contains("Your session has ended"));

    // A key created and revoked: its session ends with it.
    let (_, created) = env
        .call(
            "POST",
            "/v1/admin/api-keys",
            &env.admin,
            Some(json!({"name": "second admin", "scope": "admin"})),
        )
        .await;
    let second = created["key_secret"].as_str().unwrap();
    let mut b = Browser::new(&env);
    assert_eq!(b.sign_in(second).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/admin/accounts").await.status, StatusCode::OK);
    let (s, _) = env
        .call(
            "DELETE",
            &format!("/v1/admin/api-keys/{}", created["id"].as_str().unwrap()),
            &env.admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let a = b.get("/admin/accounts").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in?why=expired"));
}

#[tokio::test]
async fn keys_are_shown_once_escaped_and_revoked_within_the_tenant_only() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let page = b.get("/admin/keys").await;
    let csrf = page.csrf();
    let name = "<script>alert(1)</script> & co";
    let a = b
        .post(
            "/admin/keys",
            &[("csrf", &csrf), ("name", name), ("scope", "sync")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert!(!a.body.contains("<script>alert"));
    assert!(a
        .body
        .contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co"));
    let at = a.body.find("<code id=\"new-key\">").unwrap() + 19;
    let new_key = a.body[at..at + a.body[at..].find('<').unwrap()].to_owned();
    assert!(new_key.starts_with("cgs_"));
    // It works, and is never shown again.
    let (s, _) = env.call("GET", "/v1/changes", &new_key, None).await;
    assert_eq!(s, StatusCode::OK);
    let list = b.get("/admin/keys").await;
    assert!(!list.body.contains(&new_key));
    assert_safe_page(&list, &[&new_key, &env.admin, &env.sync]);
    let (_, keys) = env
        .call("GET", "/v1/admin/api-keys", &env.admin, None)
        .await;
    let id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another tenant's admin cannot revoke it, nor act on this tenant's accounts.
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    let (_, other_admin) = env.other_tenant("Other customer").await;
    let mut other = Browser::new(&env);
    other.sign_in(&other_admin).await;
    let theirs = other.get("/admin/keys").await;
    assert!(!theirs.body.contains(name) && !theirs.body.contains("&#60;script"));
    let oc = theirs.csrf();
    let a = other
        .post(&format!("/admin/keys/{id}/revoke"), &[("csrf", &oc)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = other
        .post("/admin/accounts/u1/pause", &[("csrf", &oc)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = other
        .post("/admin/accounts/u1/disconnect", &[("csrf", &oc)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let accounts = other.get("/admin/accounts").await;
    assert!(!accounts.body.contains("alice@example.com"));
    let (_, v) = env.account("u1").await;
    assert_eq!(v["status"], "active");
    // A session's CSRF token does not work with another session.
    let a = other
        .post("/admin/accounts/u1/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let (s, _) = env.call("GET", "/v1/changes", &new_key, None).await;
    assert_eq!(s, StatusCode::OK, "still valid");

    // The owner revokes it.
    let a = b
        .post(&format!("/admin/keys/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(a.location.as_deref(), Some("/admin/keys?done=revoked"));
    let (s, _) = env.call("GET", "/v1/changes", &new_key, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn accounts_show_their_state_and_the_actions_use_the_api_services() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/accounts").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<tr data-user=\"u1\">"), "{}", a.body);
    assert!(a.body.contains("alice@example.com"));
    assert!(a.body.contains("<span class=\"badge ok\">active</span>"));
    let (refresh, access) = env.stored_tokens("u1").await;
    let access = access.unwrap();
    assert_safe_page(
        &a,
        &[
            refresh.expose_secret(),
            access.expose_secret(),
            &env.admin,
            &env.sync,
        ],
    );
    let csrf = a.csrf();

    // Filters: an active account without errors needs no attention.
    let f = b.get("/admin/accounts?filter=attention").await;
    assert!(!f.body.contains("data-user=\"u1\""));
    assert!(f.body.contains("No accounts match"));

    let a = b.post("/admin/accounts/u1/pause", &[("csrf", &csrf)]).await;
    assert_eq!(a.location.as_deref(), Some("/admin/accounts?done=pause"));
    let (_, v) = env.account("u1").await;
    assert_eq!(v["status"], "paused");
    let a = b
        .post("/admin/accounts/u1/resume", &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let (_, v) = env.account("u1").await;
    assert_eq!(v["status"], "active");

    // An account whose last pass failed shows under "with errors" and "needs attention",
    // with what went wrong.
    env.revoke_grants("alice@example.com", "");
    env.run_job("u1", shared::queue::SyncReason::Manual).await;
    let (_, v) = env.account("u1").await;
    let error = v["last_error"]
        .as_str()
        .expect("the failed pass left an error")
        .to_owned();
    for filter in ["errors", "attention"] {
        let f = b.get(&format!("/admin/accounts?filter={filter}")).await;
        assert!(f.body.contains("data-user=\"u1\""), "{}", f.body);
        assert!(
            f.body
                .contains(&format!("<span class=\"bad\">{error}</span>")),
            "{}",
            f.body
        );
    }
    let f = b.get("/admin/accounts?filter=needs_reauth").await;
    assert!(!f.body.contains("data-user=\"u1\""), "still active: {v}");

    let a = b
        .post("/admin/accounts/u1/disconnect", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        a.location.as_deref(),
        Some("/admin/accounts?done=disconnect")
    );
    let (_, v) = env.account("u1").await;
    assert_eq!(v["status"], "disconnected");
}

#[tokio::test]
async fn a_held_back_mass_deletion_is_confirmed_from_the_accounts_page() {
    use shared::google::calendar::SendUpdates;
    use shared::queue::SyncReason;
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    env.drain_jobs(50).await;
    crate::world::backlog::put_meetings(&env, "u1", "MTG", 30).await;
    env.drain_jobs(200).await;
    let alice = crate::world::push::alice_token(&env);
    let events = env.google_events(&alice).await;
    assert_eq!(events.len(), 30);
    for e in &events {
        env.app
            .google
            .delete_event(&alice, "primary", &e.id, None, SendUpdates::None)
            .await
            .unwrap();
    }
    env.run_job("u1", SyncReason::Push).await;
    let feed = env.changes().await;
    assert!(feed.iter().any(|r| r["kind"] == "mass_deletion_blocked"));

    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/accounts?filter=attention").await;
    assert!(a.body.contains("deletions held back"), "{}", a.body);
    let confirm = "action=\"/admin/accounts/u1/confirm-deletions\"";
    assert!(a.body.contains(confirm), "{}", a.body);
    // The account's page names the held scope, from the guard's state.
    let d = b.get("/admin/accounts/u1").await;
    assert!(d.body.contains("id=\"held\""), "{}", d.body);
    assert!(
        d.body.contains("<code>calendar:primary</code>"),
        "{}",
        d.body
    );
    assert!(d.body.contains(confirm), "{}", d.body);
    let a = b
        .post(
            "/admin/accounts/u1/confirm-deletions",
            &[("csrf", &a.csrf())],
        )
        .await;
    assert_eq!(
        a.location.as_deref(),
        Some("/admin/accounts?done=confirm-deletions")
    );
    // The confirmed pass (queued as "sync now" with the confirmation) carries them out.
    env.drain_jobs(50).await;
    let unlinked = env
        .changes()
        .await
        .iter()
        .filter(|r| r["kind"] == "event_unlinked")
        .count();
    assert_eq!(unlinked, 30);
    let a = b.get("/admin/accounts").await;
    assert!(!a.body.contains(confirm), "{}", a.body);
}

#[tokio::test]
async fn a_client_google_refuses_is_shown_broken_with_what_to_do() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/google-client").await;
    assert!(a
        .body
        .contains("<span class=\"badge ok\" id=\"client-status\">working</span>"));
    // What the code exchange or a refresh records when Google refuses the client itself.
    shared::services::oauth_client_settings::client_refused(
        &env.app,
        &env.tenant,
        "invalid_client",
    )
    .await;
    let a = b.get("/admin/google-client").await;
    assert!(
        a.body
            .contains("id=\"client-status\">refused by Google</span>"),
        "{}",
        a.body
    );
    assert!(a
        .body
        .contains("Google refuses this client (invalid_client)"));
    assert!(a.body.contains("Google does not accept the client secret"));
    assert_safe_page(&a, &[CLIENT_SECRET, &env.admin]);

    // Typed fields with a bad secret shape are refused in words; the ID stays, the secret
    // does not come back.
    let csrf = a.csrf();
    let a = b
        .post(
            "/admin/google-client",
            &[
                ("csrf", &csrf),
                ("client_id", "not-a-client-id"),
                ("client_secret", "s3cr3t-typed"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("id=\"error\""));
    assert!(a.body.contains("value=\"not-a-client-id\""));
    assert!(!a.body.contains("s3cr3t-typed"));
    let a = b
        .post(
            "/admin/google-client",
            &[("csrf", &csrf), ("json", "{not json")],
        )
        .await;
    assert!(a.body.contains("is not JSON"), "{}", a.body);
}

#[tokio::test]
async fn the_deliveries_page_shows_what_the_crm_refuses_and_what_is_parked() {
    use shared::delivery::{deliver_pending_with, DeliveryOptions};
    use std::time::Duration;
    let env = Env::new_on(Backend::Embedded).await;
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/deliveries").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("id=\"no-webhook\""));
    assert!(a.body.contains("id=\"failing-none\"") && a.body.contains("id=\"parked-none\""));

    // A CRM whose webhook refuses everything (until it is mended: `answer`).
    let answer = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(500));
    let answering = answer.clone();
    let refusing = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let status = answering.load(std::sync::atomic::Ordering::SeqCst);
            async move { StatusCode::from_u16(status).unwrap() }
        }),
    );
    let hook = crate::world::serve(refusing).await;
    let (s, v) = env
        .patch_settings(json!({"webhook_url": format!("{hook}/hook")}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    let first = env.changes().await[0]["id"].as_str().unwrap().to_owned();
    let options = DeliveryOptions {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        request_timeout: Duration::from_secs(3),
        batch_size: 10,
        park_after_runs: 2,
        park_after: Duration::ZERO,
    };
    let budget = Duration::from_secs(10);
    deliver_pending_with(&env.app, &env.tenant, budget, &options)
        .await
        .unwrap();
    let a = b.get("/admin/deliveries").await;
    assert!(!a.body.contains("id=\"no-webhook\""));
    assert!(
        a.body.contains(&format!(
            "The CRM has refused record <code>{first}</code> in 1 runs"
        )),
        "{}",
        a.body
    );

    deliver_pending_with(&env.app, &env.tenant, budget, &options)
        .await
        .unwrap();
    let a = b.get("/admin/deliveries").await;
    assert!(
        a.body
            .contains(&format!("<ul id=\"parked\"><li><code>{first}</code> <form")),
        "{}",
        a.body
    );
    assert_safe_page(&a, &[&env.admin, &env.sync]);
    assert!(!a.body.contains("whsec_"), "never the signing secret");
    let csrf = a.csrf();

    // "Send a test delivery" says what the CRM answered; without the CSRF token nothing is
    // sent.
    let t = b.post("/admin/deliveries/test", &[("csrf", &csrf)]).await;
    assert_eq!(
        t.location.as_deref(),
        Some("/admin/deliveries?done=test-failed&status=500")
    );
    let t = b.get(t.location.as_deref().unwrap()).await;
    assert!(
        t.body
            .contains("The test delivery failed: the CRM answered HTTP 500."),
        "{}",
        t.body
    );
    let refused = b.post("/admin/deliveries/test", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The CRM is mended: the parked record is redelivered from its button and unparked.
    answer.store(200, std::sync::atomic::Ordering::SeqCst);
    let t = b.post("/admin/deliveries/test", &[("csrf", &csrf)]).await;
    assert_eq!(
        t.location.as_deref(),
        Some("/admin/deliveries?done=test-delivered")
    );
    let r = b
        .post(
            "/admin/deliveries/redeliver",
            &[("csrf", &csrf), ("record", &first)],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/admin/deliveries?done=unparked")
    );
    let a = b.get("/admin/deliveries").await;
    assert!(a.body.contains("id=\"parked-none\""), "{}", a.body);
    // The JSON API says the same.
    let (s, v) = env
        .call("GET", "/v1/admin/deliveries", &env.admin, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["parked"], json!([]));
    // A record id that is not one: a clear 422 from the API, nothing sent.
    let (s, v) = env
        .call(
            "POST",
            "/v1/admin/deliveries/redeliver",
            &env.admin,
            Some(json!({"record": "../../etc"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = env
        .call(
            "POST",
            "/v1/admin/deliveries/redeliver",
            &env.admin,
            Some(json!({"record": "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

/// One account's page: what waits, what failed and why, the push channel of each calendar,
/// the held-back deletions as a field (not a wording), and the account's recent records;
/// the list shows the same in brief. The JSON API (`GET /v1/admin/accounts/{user}`) is what
/// the page shows, and another tenant's admin cannot read it.
#[tokio::test]
async fn an_accounts_page_shows_its_health() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    env.drain_jobs(50).await;
    crate::world::backlog::put_meetings(&env, "u1", "MTG", 7).await;

    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/accounts").await;
    assert!(
        a.body.contains("<td class=\"waiting\">7</td>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("1 of 1 calendars watched"), "{}", a.body);
    let a = b.get("/admin/accounts/u1").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains("<li>calendar: <strong>7</strong></li>"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("watched: changes arrive within seconds"),
        "{}",
        a.body
    );
    assert!(a.body.contains("id=\"errors-none\""), "{}", a.body);
    assert!(a.body.contains("id=\"held-none\""), "{}", a.body);
    assert!(a.body.contains("account_status_changed"), "{}", a.body);
    assert_safe_page(&a, &[&env.admin, &env.sync]);

    // The worker sends them; one of them Google refuses for good (its pair keeps the
    // error, the pass moves on).
    env.drain_jobs(50).await;
    let u = shared::domain::UserId::parse("u1").unwrap();
    let c = shared::domain::Collection::Calendar;
    let mut pair = env
        .app
        .store
        .get_pair(&env.tenant, &u, c, "MTG-3")
        .await
        .unwrap()
        .expect("a pair");
    pair.value.last_error = Some("Google refused: <forbiddenForNonOrganizer>".into());
    env.app
        .store
        .put_pair(&env.tenant, &u, &pair.value, Some(pair.version))
        .await
        .unwrap();
    let a = b.get("/admin/accounts/u1").await;
    assert!(
        a.body.contains("<li>calendar: <strong>0</strong></li>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("<code>MTG-3</code>"), "{}", a.body);
    assert!(
        a.body
            .contains("Google refused: &#60;forbiddenForNonOrganizer&#62;"),
        "escaped: {}",
        a.body
    );
    assert!(
        a.body.contains("event_created")
            || a.body.contains("event_updated")
            || a.body.contains("account_status_changed")
    );

    let (s, v) = env
        .call("GET", "/v1/admin/accounts/u1", &env.admin, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["account"]["user"], "u1");
    assert_eq!(v["account"]["google_email"], "alice@example.com");
    assert_eq!(v["health"]["waiting"][0]["count"], 0);
    assert_eq!(v["health"]["errors"][0]["crm_id"], "MTG-3");
    assert_eq!(v["health"]["channels"][0]["calendar"], "primary");
    assert_eq!(v["health"]["channels"][0]["push"], "watching");
    assert_eq!(v["health"]["held_deletions"], json!([]));
    let (s, _) = env
        .call("GET", "/v1/admin/accounts/nobody", &env.admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Another tenant's admin sees no such account, on the page or through the API.
    let (_, other_admin) = env.other_tenant("Other customer").await;
    let (s, _) = env
        .call("GET", "/v1/admin/accounts/u1", &other_admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut other = Browser::new(&env);
    other.sign_in(&other_admin).await;
    let a = other.get("/admin/accounts/u1").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(!a.body.contains("alice@example.com"));
}

/// The operator signs in with the operator key: the tenant list (every tenant, nothing of
/// any tenant's data), "create a tenant" with its first admin key shown once, CSRF on the
/// form; the operator session opens no tenant page, an admin session no operator page, and
/// a rotated operator key ends the operator's session.
#[tokio::test]
async fn the_operator_lists_and_creates_tenants_and_sees_nothing_else() {
    let env = Env::new_on(Backend::Embedded).await;
    let mut op = Browser::new(&env);
    let a = op.sign_in(crate::world::OPERATOR_KEY).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location.as_deref(), Some("/admin/tenants"));
    let sc = a.set_cookie.clone().unwrap();
    assert!(sc.starts_with("cgs_operator="), "{sc}");
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Strict"),
        "{sc}"
    );
    assert!(op.cookie.is_none() && op.operator.is_some());

    let a = op.get("/admin/tenants").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains(&format!("data-tenant=\"{}\"", env.tenant)),
        "{}",
        a.body
    );
    assert_safe_page(&a, &[crate::world::OPERATOR_KEY, &env.admin, &env.sync]);
    let csrf = a.csrf();

    // Create a tenant: its first admin key is shown this once, and it works.
    let refused = op.post("/admin/tenants", &[("name", "No token")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let a = op
        .post(
            "/admin/tenants",
            &[
                ("csrf", &csrf),
                ("name", "Beta <Corp>"),
                ("id", "beta-corp"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert!(a.body.contains("Beta &#60;Corp&#62;"), "{}", a.body);
    let open = "<code id=\"new-key\">";
    let at = a.body.find(open).unwrap() + open.len();
    let key = a.body[at..at + a.body[at..].find('<').unwrap()].to_owned();
    let (s, v) = env.call("GET", "/v1/admin/settings", &key, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = op.get("/admin/tenants").await;
    assert!(a.body.contains("data-tenant=\"beta-corp\""));
    assert!(!a.body.contains(&key), "the key is shown only once");
    // Bad input loses what was typed and says why.
    let a = op
        .post(
            "/admin/tenants",
            &[("csrf", &csrf), ("name", "Again"), ("id", "beta-corp")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("already exists") && a.body.contains("value=\"Again\""));
    let a = op
        .post(
            "/admin/tenants",
            &[("csrf", &csrf), ("name", "X"), ("id", "Not An Id")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);

    // The operator session is no tenant's admin session, and the other way round.
    let a = op.get("/admin/accounts").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in"));
    let mut admin = Browser::new(&env);
    admin.sign_in(&env.admin).await;
    let a = admin.get("/admin/tenants").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in"));

    // A new operator key ends the operator's session.
    env.app
        .secrets
        .put(
            shared::secrets::names::OPERATOR_KEY,
            "op_rotated_operator_key_0123456789".to_owned().into(),
        )
        .await
        .unwrap();
    let a = op.get("/admin/tenants").await;
    assert_eq!(a.location.as_deref(), Some("/admin/sign-in?why=expired"));
}

/// A shared mailbox connected from the console: the admin makes the consent link for a
/// mailbox id with Gmail only, opens it as the team's Google account, and the CRM's mail
/// client then gets its IMAP/SMTP token from the API; another Google account is refused.
#[tokio::test]
async fn a_shared_mailbox_is_connected_from_the_console_and_its_mail_client_gets_a_token() {
    let env = Env::new_on(Backend::Embedded).await;
    env.sandbox.add_user("support@example.com", "Support team");
    let mut b = Browser::new(&env);
    b.sign_in(&env.admin).await;
    let a = b.get("/admin/accounts").await;
    let csrf = a.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("user", "team-support"),
        ("email", "support@example.com"),
        ("products", "gmail"),
    ];
    let a = b.post("/admin/connect", &form).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_safe_page(&a, &[&env.admin, &env.sync]);
    let open = "id=\"consent-link\" href=\"";
    let at = a.body.find(open).expect("a consent link") + open.len();
    let link = a.body[at..at + a.body[at..].find('"').unwrap()].replace("&#38;", "&");

    // Someone else's Google account cannot take the mailbox's place.
    let back = env
        .consent(&link, "&sandbox_auto=approve&sandbox_user=bob@example.com")
        .await;
    let (_, _, body) = env.callback(&back).await;
    let (s, _) = env.account("team-support").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    let a = b.post("/admin/connect", &form).await;
    let at = a.body.find(open).unwrap() + open.len();
    let link = a.body[at..at + a.body[at..].find('"').unwrap()].replace("&#38;", "&");
    let back = env.consent(&link, "&sandbox_auto=approve").await;
    let (status, _, body) = env.callback(&back).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, v) = env.account("team-support").await;
    assert_eq!(v["products"], json!(["gmail"]), "{v}");
    assert_eq!(v["google_email"], "support@example.com");
    let (s, token) = env
        .call(
            "POST",
            "/v1/users/team-support/gmail/token",
            &env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{token}");
    assert_eq!(token["email"], "support@example.com");
    assert_eq!(token["imap"]["host"], "imap.gmail.com");
    assert!(token["xoauth2"].is_string());
    let a = b.get("/admin/accounts").await;
    assert!(a.body.contains("data-user=\"team-support\""), "{}", a.body);
    assert!(!a.body.contains(token["access_token"].as_str().unwrap()));

    // Without the CSRF token, no link is made.
    let a = b
        .post("/admin/connect", &[("user", "x"), ("products", "gmail")])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}
