//! The connect pages (issue 13, item 3): every callback outcome is a page that says what
//! happened and what to do, in the browser's language, with the pages' security headers and
//! nothing secret in it; with a CRM return URL the redirect contract is unchanged and the
//! page's button leads to the same place. Embedded adapters, Google sandbox.

use crate::world::{Backend, Env, RETURN_URL};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// A connect link with no return URL (the callback then ends on its page).
async fn bare_link(env: &Env, user: &str, products: &[&str], hint: Option<&str>) -> String {
    let mut body = json!({ "products": products });
    if let Some(h) = hint {
        body["login_hint"] = json!(h);
    }
    env.connect_link(user, body).await
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn outcome(&self) -> &str {
        let at = self.body.find("data-outcome=\"").expect("an outcome") + 14;
        let len = self.body[at..].find('"').unwrap();
        &self.body[at..at + len]
    }

    fn lang(&self) -> &str {
        let at = self.body.find("<html lang=\"").expect("<html lang>") + 12;
        let len = self.body[at..].find('"').unwrap();
        &self.body[at..at + len]
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// What every page must carry.
    fn assert_safe(&self) {
        let csp = self.header("content-security-policy");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(
            !csp.contains("script-src"),
            "the connect pages run no script: {csp}"
        );
        assert_eq!(self.header("x-frame-options"), "DENY");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert_eq!(self.header("cache-control"), "no-store");
        assert!(self.header("content-type").starts_with("text/html"));
        assert!(
            !self.body.contains("<script"),
            "no script on a connect page"
        );
        assert!(
            !self.body.contains(" style="),
            "no inline style attribute (CSP)"
        );
    }
}

async fn arrive(env: &Env, location: &str, accept_language: &str) -> Page {
    let resp = env
        .http
        .get(location)
        .header("accept-language", accept_language)
        .send()
        .await
        .unwrap();
    Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

async fn consent(env: &Env, link: &str, extra: &str, lang: &str) -> Page {
    let back = env.consent(link, extra).await;
    arrive(env, &back, lang).await
}

#[tokio::test]
async fn each_outcome_is_a_page_in_the_browsers_language() {
    let env = Env::new_on(Backend::Embedded).await;

    // Connected, in Japanese (Accept-Language with q-values: ja is preferred).
    let link = bare_link(&env, "u1", &["calendar"], Some(ALICE)).await;
    let page = consent(
        &env,
        &link,
        "&sandbox_auto=approve",
        "de;q=0.9, ja;q=0.95, en;q=0.1",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!((page.outcome(), page.lang()), ("connected", "ja"));
    assert_eq!(page.header("content-language"), "ja");
    assert!(
        page.body.contains("Google アカウントを接続しました"),
        "{}",
        page.body
    );
    assert!(page.body.contains("このウィンドウは閉じてかまいません"));
    assert!(
        !page.body.contains("id=\"back\""),
        "no return URL, no button"
    );
    page.assert_safe();
    // Nothing secret on the page: not the tokens just stored, not the client secret.
    let (refresh, access) = env.stored_tokens("u1").await;
    let access = access.expect("an access token is stored");
    for secret in [
        refresh.expose_secret(),
        access.expose_secret(),
        crate::world::CLIENT_SECRET,
    ] {
        assert!(!page.body.contains(secret));
    }
    assert!(!page.body.contains(ALICE), "the page names no account");

    // Partly connected, in Czech: it names what is off, and only that.
    let link = bare_link(&env, "u2", &["calendar", "contacts"], Some(BOB)).await;
    let page = consent(
        &env,
        &link,
        &format!(
            "&sandbox_auto=approve&sandbox_user={BOB}&sandbox_grant=openid%20email%20https://www.googleapis.com/auth/contacts"
        ),
        "cs-CZ,cs;q=0.9",
    )
    .await;
    assert_eq!(
        (page.outcome(), page.lang()),
        ("partial", "cs"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("Kalendář: schůzky a hovory se nesynchronizují"));
    assert!(!page.body.contains("Kontakty: kontakty se nesynchronizují"));
    page.assert_safe();

    // Denied, in Russian.
    let link = bare_link(&env, "u3", &["calendar"], None).await;
    let page = consent(&env, &link, "&sandbox_auto=deny", "ru").await;
    assert_eq!((page.outcome(), page.lang()), ("denied", "ru"));
    assert!(page.body.contains("Не подключено"));
    page.assert_safe();

    // Expired (the same callback again), in Vietnamese.
    let link = bare_link(&env, "u4", &["calendar"], None).await;
    let back = env.consent(&link, "&sandbox_auto=deny").await;
    arrive(&env, &back, "en").await;
    let page = arrive(&env, &back, "vi-VN,en;q=0.5").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!((page.outcome(), page.lang()), ("expired", "vi"));
    assert!(page.body.contains("Liên kết đăng nhập này đã hết hạn"));
    page.assert_safe();

    // Wrong Google account; a language we do not have falls back to English.
    let link = bare_link(&env, "u5", &["calendar"], Some(ALICE)).await;
    let page = consent(
        &env,
        &link,
        &format!("&sandbox_auto=approve&sandbox_user={BOB}"),
        "fr-FR,fr;q=0.9,de;q=0.8",
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(
        (page.outcome(), page.lang()),
        ("wrong_google_account", "en")
    );
    assert!(page.body.contains("Wrong Google account"));
    page.assert_safe();

    // Google account in use (alice is u1's), in Japanese; a q=0 language is never chosen.
    let link = bare_link(&env, "u6", &["calendar"], None).await;
    let page = consent(
        &env,
        &link,
        &format!("&sandbox_auto=approve&sandbox_user={ALICE}"),
        "ru;q=0, ja;q=0.2",
    )
    .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(
        (page.outcome(), page.lang()),
        ("google_account_in_use", "ja")
    );
    page.assert_safe();
}

#[tokio::test]
async fn with_a_return_url_the_redirect_is_unchanged_and_the_page_leads_there_too() {
    let env = Env::new_on(Backend::Embedded).await;
    let link = env.link("u1", &["calendar"], ALICE).await;
    let back = env
        .consent(&link, &format!("&sandbox_auto=approve&sandbox_user={BOB}"))
        .await;
    let resp = env
        .http
        .get(&back)
        .header("accept-language", "cs")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    let q = crate::world::query_of(&to);
    assert_eq!(q["google_connect"], "error");
    assert_eq!(q["error"], "wrong_google_account");
    assert!(to.starts_with(RETURN_URL));
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let body = resp.text().await.unwrap();
    assert!(body.contains("<html lang=\"cs\">"));
    assert!(body.contains("Nesprávný účet Google"));
    // The button's href is the same URL, HTML-escaped.
    let href = to.replace('&', "&#38;");
    assert!(
        body.contains(&format!("id=\"back\" href=\"{href}\"")),
        "{body}"
    );
    assert!(body.contains("Zpět do CRM"));
}
