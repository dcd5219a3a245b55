//! Hosted user settings (issue 13, item 2): the CRM asks for a signed, short-lived link for
//! one user; opening it starts a short-lived session whose pages connect the Google account
//! (through the normal connect flow and back), save the user's settings through the same
//! service as `PATCH /v1/users/{user}/google`, and disconnect. Links and sessions are signed,
//! expire, cannot be altered to name another user or tenant, and every post needs the
//! session's CSRF token. Embedded adapters, Google sandbox.

use crate::world::{query_of, Backend, Env, RETURN_URL};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use shared::clock::Clock as _;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// What a browser keeps: the session cookie, and its language.
struct Browser<'e> {
    env: &'e Env,
    cookie: Option<String>,
    lang: &'static str,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn attr(&self, name: &str) -> &str {
        let key = format!("{name}=\"");
        let at = self
            .body
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + key.len();
        let len = self.body[at..].find('"').unwrap();
        &self.body[at..at + len]
    }

    fn csrf(&self) -> String {
        let key = "name=\"csrf\" value=\"";
        let at = self.body.find(key).expect("a CSRF field") + key.len();
        let len = self.body[at..].find('"').unwrap();
        self.body[at..at + len].to_owned()
    }

    fn assert_safe(&self) {
        let csp = self.header("content-security-policy");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(self.header("x-frame-options"), "DENY");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert_eq!(self.header("cache-control"), "no-store");
        assert!(!self.body.contains(" style="), "no inline style (CSP)");
    }
}

impl<'e> Browser<'e> {
    fn new(env: &'e Env) -> Self {
        Self {
            env,
            cookie: None,
            lang: "en",
        }
    }

    async fn keep(&mut self, resp: reqwest::Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            assert_eq!(name, "cgs_settings", "{v}");
            self.cookie = (!value.is_empty()).then(|| pair.to_owned());
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.env.api)
        } else {
            url.to_owned()
        };
        let mut req = self.env.http.get(url).header("accept-language", self.lang);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.keep(resp).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .env
            .http
            .post(format!("{}{path}", self.env.api))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept-language", self.lang)
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        self.keep(resp).await
    }
}

async fn settings_link(env: &Env, key: &str, user: &str, body: Value) -> (StatusCode, Value) {
    env.call(
        "POST",
        &format!("/v1/users/{user}/settings-link"),
        key,
        Some(body),
    )
    .await
}

async fn link_for(env: &Env, user: &str, body: Value) -> String {
    let (s, v) = settings_link(env, &env.sync, user, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["url"].as_str().unwrap().to_owned()
}

/// The account as the CRM reads it, without what a save may move (`updated_at`).
async fn api_view(env: &Env, user: &str) -> Value {
    let (s, mut v) = env.account(user).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_object_mut().unwrap().remove("updated_at");
    v
}

const FIELDS: [&str; 6] = shared::contacts::normal::FieldMapping::FIELDS;

#[tokio::test]
async fn a_link_opens_the_settings_and_saving_changes_exactly_what_the_api_returns() {
    let env = Env::new_on(Backend::Embedded).await;
    env.set_defaults(
        json!({"direction": "two_way", "contact_fields": {"phones": "google_to_crm"}}),
    )
    .await;
    env.connect("u1", &["calendar", "contacts"], ALICE, "")
        .await;
    let team = env
        .sandbox
        .add_calendar(ALICE, "Team <b>&</b> \"Co\"", "Europe/Prague");

    let (s, v) = settings_link(
        &env,
        &env.sync,
        "u1",
        json!({"return_url": RETURN_URL, "language": "cs"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/settings/open?link=", env.api)),
        "{url}"
    );
    let expires = time::OffsetDateTime::parse(
        v["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let minutes = (expires - env.clock.now()).whole_minutes();
    assert!((14..=15).contains(&minutes), "{minutes}");

    // Opening it: the page itself (no redirect), a session cookie scoped to the pages.
    let mut browser = Browser::new(&env);
    let page = browser.get(url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let set_cookie = page.header("set-cookie");
    for part in [
        "Path=/settings",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=1800",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "http on loopback: {set_cookie}"
    );
    page.assert_safe();
    let csp = page.header("content-security-policy");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        csp.contains(&format!("form-action 'self' {}", env.sandbox_url)),
        "the connect form goes on to Google's consent page: {csp}"
    );
    assert_eq!(page.attr("<html lang"), "cs");
    assert_eq!(page.attr("data-state"), "active");
    assert!(page.body.contains("Nastavení synchronizace s Google"));
    assert!(page.body.contains(ALICE), "the user sees which account");
    // Escaped, never markup.
    assert!(
        page.body
            .contains("Team &#60;b&#62;&#38;&#60;/b&#62; &#34;Co&#34;"),
        "{}",
        page.body
    );
    // Nothing secret: not the tokens, not the link, not the session cookie.
    let (refresh, access) = env.stored_tokens("u1").await;
    assert!(!page.body.contains(refresh.expose_secret()));
    assert!(!page.body.contains(access.unwrap().expose_secret()));
    let link_token = url.split("link=").nth(1).unwrap();
    assert!(!page.body.contains(link_token));
    let cookie_value = browser.cookie.clone().unwrap();
    assert!(!page.body.contains(cookie_value.split_once('=').unwrap().1));
    // The tenant's defaults are preselected.
    assert!(page
        .body
        .contains("<option value=\"two_way\" selected>Oběma směry</option>"));
    assert!(page.body.contains(
        "name=\"field.phones\" value=\"google_to_crm\" aria-label=\"Telefonní čísla: Google → CRM\" checked"
    ));
    assert!(page.body.contains(
        "name=\"field.notes\" value=\"two_way\" aria-label=\"Poznámky: Oběma směry\" checked"
    ));

    // Saving the defaults counts as a choice: they become the user's.
    let before = api_view(&env, "u1").await;
    assert_eq!(before["settings"]["contact_fields"], Value::Null);
    let csrf = page.csrf();
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("direction".into(), "two_way".into()),
        ("sync_since".into(), "2026-01-05".into()),
        ("calendars_shown".into(), "1".into()),
        ("main_calendar".into(), ALICE.into()),
        ("groups_shown".into(), "1".into()),
        ("contact_group".into(), "".into()),
        ("fields_shown".into(), "1".into()),
    ];
    for f in FIELDS {
        let d = if f == "phones" {
            "google_to_crm"
        } else {
            "two_way"
        };
        form.push((format!("field.{f}"), d.into()));
    }
    let saved = browser.post("/settings", &as_refs(&form)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.header("location"), "/settings?done=saved");
    let after_defaults = api_view(&env, "u1").await;
    assert_eq!(
        after_defaults["settings"]["contact_fields"],
        json!({"names": "two_way", "emails": "two_way", "phones": "google_to_crm",
               "organization": "two_way", "addresses": "two_way", "notes": "two_way"})
    );
    assert_eq!(after_defaults["settings"]["main_calendar"], "primary");

    // The saved page says so, in Czech, with the way back to the CRM.
    let done = browser.get("/settings?done=saved").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("Nastavení je uloženo."));
    let back = done.attr("id=\"back\" href");
    let back = back.replace("&#38;", "&");
    assert!(back.starts_with(RETURN_URL), "{back}");
    let q = query_of(&back);
    assert_eq!(
        (q["google_settings"].as_str(), q["user"].as_str()),
        ("saved", "u1")
    );

    // A real change: a monitored calendar, one way, a later start, notes off.
    let mut form2 = form.clone();
    form2.retain(|(k, _)| k != "direction" && k != "sync_since" && k != "field.notes");
    form2.push(("direction".into(), "crm_to_google".into()));
    form2.push(("sync_since".into(), "2026-02-01".into()));
    form2.push(("monitored".into(), team.clone()));
    form2.push(("field.notes".into(), "off".into()));
    let saved = browser.post("/settings", &as_refs(&form2)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = api_view(&env, "u1").await;
    // Exactly the settings changed, nothing else.
    let mut expected = after_defaults.clone();
    expected["settings"]["direction"] = json!("crm_to_google");
    expected["settings"]["sync_since"] = json!("2026-02-01T00:00:00Z");
    expected["settings"]["monitored_calendars"] = json!([team]);
    expected["settings"]["contact_fields"]["notes"] = json!("off");
    // A newly read calendar may not be watchable yet; that list is the API's to fill.
    expected["calendars_without_push"] = after["calendars_without_push"].clone();
    assert_eq!(after, expected);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["products"], before["products"]);

    // The page shows the stored choices.
    let shown = browser.get("/settings").await;
    assert!(shown
        .body
        .contains(&format!("name=\"monitored\" value=\"{team}\" checked")));
    assert!(shown.body.contains("value=\"2026-02-01\""));
    assert!(shown
        .body
        .contains("<option value=\"crm_to_google\" selected>"));

    // A refusal of the service is said in words on the page, and the form keeps its choices.
    let mut bad = form2.clone();
    bad.retain(|(k, _)| k != "main_calendar" && k != "field.names");
    bad.push((
        "main_calendar".into(),
        "nope@group.calendar.google.com".into(),
    ));
    bad.push(("field.names".into(), "crm_to_google".into()));
    let refused = browser.post("/settings", &as_refs(&bad)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("main_calendar: the user has no calendar"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Nic nebylo uloženo"));
    assert!(refused.body.contains(
        "name=\"field.names\" value=\"crm_to_google\" aria-label=\"Jména: CRM → Google\" checked"
    ));
    assert!(refused
        .body
        .contains(&format!("name=\"monitored\" value=\"{team}\" checked")));
    assert_eq!(api_view(&env, "u1").await, after, "nothing saved");
}

#[tokio::test]
async fn links_and_sessions_are_signed_expire_and_name_one_user() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], ALICE, "").await;

    // The request is checked as connect links are.
    for (body, want) in [
        (
            json!({"return_url": "https://evil.example/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"language": "de"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"login_hint": "not an e-mail"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"nope": 1}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, v) = settings_link(&env, &env.sync, "u1", body.clone()).await;
        assert_eq!(s.as_u16() / 100, 4, "{body}: {v}");
        assert!(s == want || s == StatusCode::BAD_REQUEST, "{body}: {s} {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    let (s, _) = settings_link(&env, "cgs_nope_nope", "u1", json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // No body at all is a link with nothing optional.
    let resp = env
        .http
        .post(format!("{}/v1/users/u1/settings-link", env.api))
        .bearer_auth(&env.sync)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let url = link_for(&env, "u1", json!({})).await;
    let token = url.split("link=").nth(1).unwrap().to_owned();
    let (body, sig) = token.split_once('.').unwrap();

    // Tampering: claims naming another user under the same signature; a cut signature.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(body).unwrap()).unwrap();
    assert_eq!(claims["u"], "u1");
    claims["u"] = json!("u2");
    let forged = format!("{}.{sig}", b64.encode(serde_json::to_vec(&claims).unwrap()));
    let mut b = Browser::new(&env);
    b.lang = "ja";
    for bad in [forged.as_str(), &token[..token.len() - 3], body, "", "x.y"] {
        let page = b
            .get(&format!("/settings/open?link={}", urlencode(bad)))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(page.attr("data-outcome"), "link_invalid");
        assert_eq!(page.attr("<html lang"), "ja");
        assert!(page.body.contains("この設定リンクは無効です"));
        assert!(page.header("set-cookie").is_empty(), "no session");
        page.assert_safe();
    }
    // A link is not a session, and a session is not a link.
    b.cookie = Some(format!("cgs_settings={token}"));
    let page = b.get("/settings").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(page.attr("data-outcome"), "session_ended");
    assert!(page.header("set-cookie").contains("Max-Age=0"));
    let mut a = Browser::new(&env);
    a.get(&url).await;
    let session = a.cookie.clone().unwrap();
    let page = a
        .get(&format!(
            "/settings/open?link={}",
            session.split_once('=').unwrap().1
        ))
        .await;
    assert_eq!(page.attr("data-outcome"), "link_invalid");

    // The link can be opened for 15 minutes; then it says so, in the browser's language.
    env.clock.advance(time::Duration::minutes(16));
    let mut late = Browser::new(&env);
    late.lang = "ru";
    let page = late.get(&url).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(page.attr("data-outcome"), "link_expired");
    assert!(page
        .body
        .contains("Срок действия ссылки на настройки истёк"));
    assert!(page.body.contains("CRM создаст новую ссылку"));
    assert!(page.header("set-cookie").is_empty());

    // The session it opened (at minute 0) ends at 30 minutes: pages and posts refuse it.
    let page = a.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK, "still open at minute 16");
    let csrf = page.csrf();
    env.clock.advance(time::Duration::minutes(15));
    let before = api_view(&env, "u1").await;
    let mut stale = Browser {
        env: &env,
        cookie: a.cookie.clone(),
        lang: "en",
    };
    let page = stale
        .post(
            "/settings",
            &[("csrf", &csrf), ("direction", "google_to_crm")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(page.attr("data-outcome"), "session_ended");
    assert!(page.body.contains("Your settings session has ended"));
    assert!(stale.cookie.is_none(), "the cookie is cleared");
    assert_eq!(api_view(&env, "u1").await, before, "nothing changed");
    let page = a.get("/settings").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

/// A URL's query (any URL; `query_of` is for the CRM's return URL).
fn params(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token_and_our_origin() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], ALICE, "").await;
    env.connect("u2", &["calendar"], BOB, "").await;
    let mut a = Browser::new(&env);
    let page = a.get(&link_for(&env, "u1", json!({})).await).await;
    let csrf = page.csrf();
    let mut b = Browser::new(&env);
    let other_csrf = b.get(&link_for(&env, "u2", json!({})).await).await.csrf();
    // Another session of the same user has another token too.
    let mut a2 = Browser::new(&env);
    let same_user_csrf = a2.get(&link_for(&env, "u1", json!({})).await).await.csrf();
    assert_ne!(csrf, same_user_csrf);

    let before = api_view(&env, "u1").await;
    let change = |token: &str| -> Vec<(String, String)> {
        vec![
            ("csrf".into(), token.into()),
            ("direction".into(), "google_to_crm".into()),
        ]
    };
    for (path, token) in [
        ("/settings", ""),
        ("/settings", other_csrf.as_str()),
        ("/settings", same_user_csrf.as_str()),
        ("/settings/disconnect", ""),
        ("/settings/disconnect", other_csrf.as_str()),
        ("/settings/connect", ""),
    ] {
        let form = change(token);
        let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let refs: Vec<(&str, &str)> = refs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let page = a.post(path, &refs).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {token:?}");
        assert_eq!(page.attr("data-outcome"), "refused");
        assert!(page.body.contains("This form was refused"));
    }
    // The right token from another site.
    let form = change(&csrf);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for headers in [
        [("origin", "https://evil.example")],
        [("sec-fetch-site", "cross-site")],
        [("sec-fetch-site", "same-site")],
    ] {
        let page = a.post_with("/settings", &refs, &headers).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    // No cookie at all.
    let mut nobody = Browser::new(&env);
    let page = nobody.post("/settings", &refs).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api_view(&env, "u1").await, before, "nothing changed");
    assert_eq!(
        env.account("u1").await.1["status"],
        "active",
        "not disconnected"
    );

    // The right token, from the page: saved (Origin: null is what the page's no-referrer
    // policy makes a browser send).
    let page = a
        .post_with(
            "/settings",
            &refs,
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        api_view(&env, "u1").await["settings"]["direction"],
        "google_to_crm"
    );
    assert_eq!(
        api_view(&env, "u2").await["settings"]["direction"],
        "two_way",
        "the other user's settings are not touched"
    );
}

#[tokio::test]
async fn a_link_reaches_its_own_user_and_tenant_only() {
    let env = Env::new_on(Backend::Embedded).await;
    env.connect("u1", &["calendar"], ALICE, "").await;
    // Tenant U, on the same deployment: its CRM asks for a link for its own "u1".
    let sync_u = env.other_tenant_sync_key("Umbrella").await;
    let (s, v) = settings_link(&env, &sync_u, "u1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Tenant U's allow-list is empty: T's return URL is not U's.
    let (s, _) = settings_link(&env, &sync_u, "u1", json!({"return_url": RETURN_URL})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let before = api_view(&env, "u1").await;
    let mut u = Browser::new(&env);
    let page = u.get(v["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.attr("data-state"),
        "not_connected",
        "U's u1 is not T's"
    );
    assert!(!page.body.contains(ALICE));
    let csrf = page.csrf();
    let page = u
        .post(
            "/settings",
            &[("csrf", &csrf), ("direction", "google_to_crm")],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
    let page = u.post("/settings/disconnect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(api_view(&env, "u1").await, before, "T's u1 untouched");
    assert_eq!(before["status"], "active");
}

#[tokio::test]
async fn connecting_from_the_settings_page_comes_back_to_it_and_disconnect_works() {
    let env = Env::new_on(Backend::Embedded).await;
    let url = link_for(
        &env,
        "u3",
        json!({"login_hint": BOB, "return_url": RETURN_URL}),
    )
    .await;
    let mut b = Browser::new(&env);
    b.lang = "vi";
    let page = b.get(&url).await;
    assert_eq!(page.attr("data-state"), "not_connected");
    assert!(page.body.contains("Kết nối tài khoản Google"));
    let csrf = page.csrf();

    // Nothing chosen: the service's refusal, on the page.
    let page = b.post("/settings/connect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("choose at least one"), "{}", page.body);

    let page = b
        .post(
            "/settings/connect",
            &[
                ("csrf", &csrf),
                ("products", "calendar"),
                ("products", "contacts"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let to_google = page.header("location").to_owned();
    assert!(to_google.starts_with(&env.sandbox_url), "{to_google}");
    assert_eq!(params(&to_google)["login_hint"], BOB);
    // Google's consent, then the callback: back to a fresh settings link (not the CRM).
    let back = env.consent(&to_google, "&sandbox_auto=approve").await;
    let (status, to, _) = env.callback(&back).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = to.unwrap();
    assert!(
        to.starts_with(&format!("{}/settings/open?link=", env.api)),
        "{to}"
    );
    let q = params(&to);
    assert_eq!(q["google_connect"], "connected");
    // The way back carries no cookie (the chain started at Google): the link opens a
    // session again.
    let mut back_from_google = Browser::new(&env);
    back_from_google.lang = "vi";
    let page = back_from_google.get(&to).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(back_from_google.cookie.is_some());
    assert_eq!(page.attr("data-state"), "active");
    assert!(page.body.contains("Đã kết nối tài khoản Google"));
    assert!(page.body.contains(BOB));
    let (_, account) = env.account("u3").await;
    assert_eq!(account["google_email"], BOB);
    assert_eq!(account["products"], json!(["calendar", "contacts"]));

    // A partial grant says what is off.
    let partial = format!(
        "{}&google_connect=partial&missing=contacts",
        to.split("&google_connect").next().unwrap()
    );
    let page = Browser::new(&env).get(&partial).await;
    assert!(page
        .body
        .contains("Contacts: contacts are not synced with Google Contacts."));

    // Disconnect, from the page.
    let csrf = page.csrf();
    let mut again = Browser::new(&env);
    let csrf2 = again.get(&partial).await.csrf();
    assert_ne!(csrf, csrf2);
    let page = again
        .post("/settings/disconnect", &[("csrf", &csrf2)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = again.get("/settings?done=disconnected").await;
    assert!(page.body.contains("Your Google account is disconnected."));
    assert_eq!(page.attr("data-state"), "not_connected");
    let back = page.attr("id=\"back\" href").replace("&#38;", "&");
    assert_eq!(query_of(&back)["google_settings"], "disconnected");
    let (_, account) = env.account("u3").await;
    assert_eq!(account["status"], "disconnected");
}
