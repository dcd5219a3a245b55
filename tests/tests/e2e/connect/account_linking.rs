//! Connect links complete only for the Google account they are for (review finding 12): the
//! CRM's `login_hint` is enforced, Google must have verified the address, a reconnect keeps
//! its Google account, and one Google account serves one CRM user of a tenant (finding 29).
//! A different account after a disconnect starts afresh (finding 18). On the embedded
//! adapters against the Google sandbox.

use crate::world::{query_of, Backend, Env, RETURN_URL};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

async fn env() -> Env {
    Env::new_on(Backend::Embedded).await
}

/// A connect link without a `login_hint` (and, with `return_url: false`, without a return
/// URL: the callback then shows its own page).
async fn link_without_hint(env: &Env, user: &str, return_url: bool) -> String {
    let mut body = json!({"products": ["calendar", "gmail"]});
    if return_url {
        body["return_url"] = json!(RETURN_URL);
    }
    env.connect_link(user, body).await
}

/// The link opened by whoever has it, who consents with their own Google account.
async fn consent_as(
    env: &Env,
    link: &str,
    google_user: &str,
) -> (StatusCode, Option<String>, String) {
    let back = env
        .consent(
            link,
            &format!("&sandbox_auto=approve&sandbox_user={google_user}"),
        )
        .await;
    env.callback(&back).await
}

fn revocations(env: &Env) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.path == "/revoke")
        .count()
}

#[tokio::test]
async fn a_link_sent_to_a_colleague_connects_nothing() {
    let env = env().await;
    // Mallory (CRM user u-alice's link, meant for alice) forwards it to Bob, who consents.
    let link = env.link("u-alice", &["calendar", "gmail"], ALICE).await;
    let (status, to, _) = consent_as(&env, &link, BOB).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let q = query_of(&to.unwrap());
    assert_eq!(q["google_connect"], "error");
    assert_eq!(q["error"], "wrong_google_account");
    // Nothing stored, nothing told, and Bob's grant to the app is withdrawn at Google.
    let (s, _) = env.account("u-alice").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(env.changes().await.is_empty());
    assert_eq!(revocations(&env), 1);
    let (s, v) = env
        .call("POST", "/v1/users/u-alice/gmail/token", &env.sync, None)
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "no Gmail token for Bob's mailbox: {v}"
    );

    // The same link used by the account it is for works; the hint's case does not matter.
    let link = env
        .link("u-alice", &["calendar"], "Alice@Example.COM")
        .await;
    let (status, to, _) = consent_as(&env, &link, ALICE).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(query_of(&to.unwrap())["google_connect"], "connected");
    assert_eq!(
        env.stored_account("u-alice").await.google_email.as_deref(),
        Some(ALICE)
    );
}

#[tokio::test]
async fn a_reconnect_by_another_account_keeps_the_existing_connection() {
    let env = env().await;
    env.connect("u1", &["calendar", "gmail"], ALICE, "").await;
    let before = env.stored_account("u1").await;
    let mut pair = shared::domain::PairStatus::new(
        before.id.clone(),
        shared::domain::Collection::Calendar,
        shared::domain::CrmId::parse("MTG-1").unwrap(),
    );
    pair.google_id = Some("abcdef12345".into());
    env.app
        .store
        .put_pair(&env.tenant, &before.user, &pair, None)
        .await
        .unwrap();
    let feed_before = env.changes().await.len();

    // Hinted at alice, consented by bob; then a link with no hint, consented by bob.
    let link = env.link("u1", &["calendar", "gmail"], ALICE).await;
    let (_, to, _) = consent_as(&env, &link, BOB).await;
    assert_eq!(query_of(&to.unwrap())["error"], "wrong_google_account");
    let link = link_without_hint(&env, "u1", true).await;
    let (_, to, _) = consent_as(&env, &link, BOB).await;
    assert_eq!(query_of(&to.unwrap())["error"], "wrong_google_account");

    // Alice's connection is exactly as it was: account, tokens, pairs, feed.
    let after = env.stored_account("u1").await;
    assert_eq!(after, before);
    let pairs = env
        .app
        .store
        .list_pairs(
            &env.tenant,
            &after.user,
            shared::domain::Collection::Calendar,
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(pairs.items.len(), 1);
    assert_eq!(env.changes().await.len(), feed_before);
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["xoauth2"].is_string());
    let token = secrecy::SecretString::from(v["access_token"].as_str().unwrap().to_owned());
    let who = env.app.google.identity(&token).await.unwrap();
    assert_eq!(who.email, ALICE);
}

#[tokio::test]
async fn the_callback_page_says_wrong_google_account() {
    let env = env().await;
    let link = link_without_hint(&env, "u1", false).await;
    // No hint and no account yet: any verified account may connect. With a hint, only it.
    let (s, v) = env
        .call(
            "POST",
            "/v1/users/u2/google/connect",
            &env.sync,
            Some(json!({"products": ["calendar"], "login_hint": ALICE})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let hinted = v["authorization_url"].as_str().unwrap().to_owned();
    let (status, to, page) = consent_as(&env, &hinted, BOB).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(to.is_none());
    assert!(page.contains("Wrong Google account"), "{page}");
    assert!(
        !page.contains(ALICE),
        "the page does not tell who the link is for"
    );
    let (s, _) = env.account("u2").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (status, _, page) = consent_as(&env, &link, BOB).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        env.stored_account("u1").await.google_email.as_deref(),
        Some(BOB)
    );
}

#[tokio::test]
async fn an_unverified_google_address_is_refused() {
    let env = env().await;
    env.sandbox.set_email_verified(ALICE, false);
    let link = env.link("u1", &["calendar"], ALICE).await;
    let (_, to, _) = consent_as(&env, &link, ALICE).await;
    let q = query_of(&to.unwrap());
    assert_eq!(q["error"], "email_not_verified");
    let (s, _) = env.account("u1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    env.sandbox.set_email_verified(ALICE, true);
    let q = env.connect("u1", &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
}

#[tokio::test]
async fn one_google_account_serves_one_crm_user() {
    let env = env().await;
    env.connect("u-a", &["calendar", "gmail"], ALICE, "").await;
    let revoked_before = revocations(&env);
    let q = env.connect("u-b", &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "error");
    assert_eq!(q["error"], "google_account_in_use");
    let (s, _) = env.account("u-b").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // u-a's grant is not revoked with the refused one (it is the same grant at Google).
    assert_eq!(revocations(&env), revoked_before);
    env.clock.advance(time::Duration::hours(2));
    let (s, v) = env
        .call("POST", "/v1/users/u-a/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "u-a still refreshes: {v}");

    // Once u-a disconnects, u-b may connect the account.
    let (s, v) = env
        .call("DELETE", "/v1/users/u-a/google", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let q = env.connect("u-b", &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected", "{q:?}");
}

#[tokio::test]
async fn another_google_account_after_a_disconnect_starts_afresh() {
    let env = env().await;
    env.connect("u1", &["calendar"], ALICE, "").await;
    let before = env.stored_account("u1").await;
    let mut pair = shared::domain::PairStatus::new(
        before.id.clone(),
        shared::domain::Collection::Calendar,
        shared::domain::CrmId::parse("MTG-1").unwrap(),
    );
    pair.google_id = Some("abcdef12345".into());
    env.app
        .store
        .put_pair(&env.tenant, &before.user, &pair, None)
        .await
        .unwrap();
    let (s, v) = env
        .call(
            "DELETE",
            "/v1/users/u1/google?keep_pairs=true",
            &env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let q = env.connect("u1", &["calendar"], BOB, "").await;
    assert_eq!(q["google_connect"], "connected");
    let after = env.stored_account("u1").await;
    assert_eq!(after.google_email.as_deref(), Some(BOB));
    let pairs = env
        .app
        .store
        .list_pairs(
            &env.tenant,
            &after.user,
            shared::domain::Collection::Calendar,
            10,
            None,
        )
        .await
        .unwrap();
    assert!(
        pairs.items.is_empty(),
        "alice's pairs are gone: {:?}",
        pairs.items
    );
    // The CRM is told the Google account changed, so it drops its links to alice's events.
    let last: Value = env.changes().await.pop().unwrap();
    assert_eq!(last["kind"], "account_status_changed");
    assert_eq!(last["data"]["status"], "active");
    assert_eq!(last["data"]["reason"], "google_account_changed");
    assert_eq!(last["data"]["google_email"], BOB);
}
