//! Issue 4 end to end: the tenant admin registers the Google client and sets policies; a CRM
//! user connects through the Google sandbox's consent; the token lifecycle (refresh,
//! permanent errors → `needs_reauth`, reconnect), disconnect and Gmail tokens — through the
//! public HTTP API, on DynamoDB Local and moto (Secrets Manager, SQS).

use crate::world::{query_of, Env, CLIENT_ID, CLIENT_SECRET, RETURN_URL};

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

#[tokio::test]
async fn admin_registers_the_google_client_in_both_forms() {
    let env = Env::bare().await;
    let callback = format!("{}/oauth/callback", env.api);
    let (s, v) = env
        .call("GET", "/v1/admin/google-client", &env.admin, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["secret_set"], false);
    assert_eq!(v["redirect_uri"], callback);

    // The downloaded file, as Google's console gives it.
    let file = json!({"web": {
        "client_id": CLIENT_ID, "project_id": "crm-sync-1234",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["https://other.example/cb", callback],
        "javascript_origins": [env.api]
    }});
    let (s, v) = env
        .call(
            "PUT",
            "/v1/admin/google-client",
            &env.admin,
            Some(file.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["client_id"], CLIENT_ID);
    assert_eq!(v["secret_set"], true);
    assert!(!v.to_string().contains(CLIENT_SECRET));

    // The secret is in Secrets Manager, not in the table.
    let stored = env
        .app
        .store
        .get_tenant(&env.tenant)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(!serde_json::to_string(&stored)
        .unwrap()
        .contains(CLIENT_SECRET));
    let secret = env
        .app
        .secrets
        .get(&shared::secrets::names::google_client(&env.tenant))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.expose_secret(), CLIENT_SECRET);

    // What the admin must fix, said plainly.
    let mut wrong = file.clone();
    wrong["web"]["redirect_uris"] = json!(["https://other.example/cb"]);
    let (s, v) = env
        .call("PUT", "/v1/admin/google-client", &env.admin, Some(wrong))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&callback),
        "{v}"
    );
    let installed = json!({"installed": file["web"]});
    let (s, v) = env
        .call(
            "PUT",
            "/v1/admin/google-client",
            &env.admin,
            Some(installed),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Web application"),
        "{v}"
    );
    for bad in [
        json!({"client_id": "not-a-client-id", "client_secret": "x"}),
        json!({"client_id": CLIENT_ID, "client_secret": ""}),
        json!({"client_id": CLIENT_ID}),
        json!({"client_id": CLIENT_ID, "client_secret": "x", "extra": 1}),
        json!("just a string"),
    ] {
        let (s, v) = env
            .call(
                "PUT",
                "/v1/admin/google-client",
                &env.admin,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {v}");
    }
    // Fields form replaces the client; a sync key may not touch it.
    let (s, _) = env.put_google_client(CLIENT_ID, "GOCSPX-new").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = env
        .call("GET", "/v1/admin/google-client", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admin_settings_are_validated_and_the_webhook_secret_shown_once() {
    let env = Env::bare().await;
    let (s, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["defaults"]["direction"], "two_way");
    assert_eq!(
        v["products_allowed"],
        json!(["calendar", "contacts", "gmail"])
    );

    let (s, v) = env.patch_settings(json!({
                "products_allowed": ["calendar", "contacts"],
                "defaults": {"conflict_policy": "crm_wins", "event_colors": {"call": "11"}, "sync_since_days": 60},
                "allowed_return_urls": [RETURN_URL],
                "webhook_url": "https://crm.example.com/hooks/google"
            })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let secret = v["webhook_signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(v["defaults"]["conflict_policy"], "crm_wins");
    assert_eq!(
        v["defaults"]["direction"], "two_way",
        "untouched fields keep their value"
    );

    let (_, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert!(v.get("webhook_signing_secret").is_none());
    assert!(!v.to_string().contains(&secret));
    assert_eq!(v["webhook_secret_set"], true);

    for bad in [
        json!({"unknown": true}),
        json!({"defaults": {"sync_since_days": 0}}),
        json!({"defaults": {"event_colors": {"meeting": "99"}}}),
        json!({"allowed_return_urls": ["http://crm.example.com/"]}),
        json!({"allowed_return_urls": ["javascript:alert(1)"]}),
        json!({"webhook_url": "ftp://x.example"}),
        json!({"products_allowed": ["fax"]}),
    ] {
        let (s, v) = env.patch_settings(bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {v}");
    }
    // Nothing of the rejected patches stuck; gmail is not allowed, so a gmail connect is refused.
    let (_, v) = env
        .call("GET", "/v1/admin/settings", &env.admin, None)
        .await;
    assert_eq!(v["defaults"]["sync_since_days"], 60);
    env.put_google_client(CLIENT_ID, CLIENT_SECRET).await;
    let (s, v) = env
        .call(
            "POST",
            "/v1/users/u1/google/connect",
            &env.sync,
            Some(json!({"products": ["gmail"], "return_url": RETURN_URL})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "product_not_allowed");

    // Removing the webhook removes its secret.
    let (s, v) = env.patch_settings(json!({"webhook_url": null})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["webhook_secret_set"], false);
}

#[tokio::test]
async fn a_user_connects_and_the_token_is_encrypted_at_rest() {
    let env = Env::new().await;
    // The link asks Google for exactly what is needed.
    let link = env
        .link("u-alice", &["calendar", "gmail"], "alice@example.com")
        .await;
    let q: HashMap<String, String> = url::Url::parse(&link)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(link.starts_with(&format!("{}/o/oauth2/v2/auth?", env.sandbox_url)));
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["include_granted_scopes"], "true");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["login_hint"], "alice@example.com");
    assert_eq!(q["redirect_uri"], format!("{}/oauth/callback", env.api));
    assert_eq!(
        q["scope"],
        "openid email https://www.googleapis.com/auth/calendar https://mail.google.com/"
    );

    let back = env.consent(&link, "&sandbox_auto=approve").await;
    let (status, to, _) = env.callback(&back).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let result = query_of(&to.unwrap());
    assert_eq!(result["google_connect"], "connected");
    assert_eq!(result["user"], "u-alice");

    let (s, v) = env.account("u-alice").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "active");
    assert_eq!(v["google_email"], "alice@example.com");
    assert_eq!(v["products"], json!(["calendar", "gmail"]));
    assert!(!v.to_string().contains("ciphertext"));

    // The raw item holds no plaintext token: only ciphertexts that open with the key.
    let account = env.stored_account("u-alice").await;
    let raw_item = env
        .app
        .store
        .table()
        .get(&shared::store::keys::account(&env.tenant, &account.user))
        .await
        .unwrap()
        .unwrap();
    let raw = raw_item.data.to_string();
    let (refresh, access) = env.stored_tokens("u-alice").await;
    let access = access.unwrap();
    assert!(refresh.expose_secret().len() > 10 && access.expose_secret().len() > 10);
    assert!(
        !raw.contains(refresh.expose_secret()),
        "refresh token in clear"
    );
    assert!(
        !raw.contains(access.expose_secret()),
        "access token in clear"
    );

    // The CRM is told; the admin sees the account.
    let changes = env.changes().await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["kind"], "account_status_changed");
    assert_eq!(changes[0]["data"]["status"], "active");
    let (_, accounts) = env
        .call("GET", "/v1/admin/accounts", &env.admin, None)
        .await;
    assert_eq!(accounts["items"][0]["google_email"], "alice@example.com");

    // Gmail: a fresh token and the XOAUTH2 string for IMAP/SMTP.
    let (s, v) = env
        .call("POST", "/v1/users/u-alice/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["access_token"].as_str().unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v["xoauth2"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        decoded,
        format!("user=alice@example.com\x01auth=Bearer {token}\x01\x01").into_bytes()
    );
    assert_eq!(v["imap"]["host"], "imap.gmail.com");
    assert_eq!(v["smtp"]["port"], 465);
    let who: Value = env
        .http
        .get(format!("{}/v1/userinfo", env.sandbox_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["email"], "alice@example.com");

    // Another tenant's key sees nothing of this user.
    let (_, other) = env
        .http
        .post(format!("{}/v1/tenants", env.api))
        .bearer_auth(crate::world::OPERATOR_KEY)
        .json(&json!({"name": "Other"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let other: Value = other.json().await.unwrap();
    let other_admin = other["admin_key"]["key_secret"].as_str().unwrap();
    let (s, _) = env
        .call("GET", "/v1/users/u-alice/google", other_admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = env
        .call("POST", "/v1/users/u-alice/gmail/token", other_admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = env
        .call("DELETE", "/v1/users/u-alice/google", other_admin, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = env.call("GET", "/v1/changes", other_admin, None).await;
    assert_eq!(v["items"], json!([]));
}

#[tokio::test]
async fn denied_replayed_and_expired_consents_store_nothing() {
    let env = Env::new().await;
    // Denied.
    let link = env.link("u1", &["calendar"], "alice@example.com").await;
    let back = env.consent(&link, "&sandbox_auto=deny").await;
    let (status, to, _) = env.callback(&back).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(query_of(&to.unwrap())["google_connect"], "denied");
    let (s, _) = env.account("u1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Replayed: the state is single use.
    let link = env.link("u2", &["calendar"], "alice@example.com").await;
    let back = env.consent(&link, "&sandbox_auto=approve").await;
    let (status, _, _) = env.callback(&back).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, to, page) = env.callback(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(to.is_none());
    assert!(page.contains("This sign-in link has expired"), "{page}");

    // Unknown or missing state.
    let (status, _, _) = env
        .callback(&format!("{}/oauth/callback?state=forged&code=x", env.api))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = env.callback(&format!("{}/oauth/callback", env.api)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Expired: ten minutes is the limit.
    let link = env.link("u3", &["calendar"], "alice@example.com").await;
    let back = env.consent(&link, "&sandbox_auto=approve").await;
    env.clock.advance(time::Duration::minutes(11));
    let (status, _, page) = env.callback(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (s, _) = env.account("u3").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Return URLs outside the allow-list are refused up front.
    let (s, v) = env
        .call(
            "POST",
            "/v1/users/u4/google/connect",
            &env.sync,
            Some(json!({"products": ["calendar"], "return_url": "https://evil.example/steal"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn a_redirect_uri_google_does_not_know_fails_at_google() {
    let env = Env::new().await;
    // The tenant's client in Google lists another callback than this deployment's.
    env.sandbox.add_client(
        CLIENT_ID,
        CLIENT_SECRET,
        &["https://elsewhere.example/oauth/callback"],
    );
    let link = env.link("u1", &["calendar"], "alice@example.com").await;
    let resp = env
        .http
        .get(format!("{link}&sandbox_auto=approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("redirect_uri_mismatch"));
    let (s, _) = env.account("u1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_partial_grant_is_reported() {
    let env = Env::new().await;
    let q = env
        .connect(
            "u1",
            &["calendar", "contacts"],
            "alice@example.com",
            "&sandbox_grant=openid%20email%20https://www.googleapis.com/auth/contacts",
        )
        .await;
    assert_eq!(q["google_connect"], "partial");
    assert_eq!(q["missing"], "calendar");
    let (_, v) = env.account("u1").await;
    assert_eq!(v["products"], json!(["contacts"]));
    // Listing calendars needs the product that was not granted.
    let (s, v) = env
        .call("GET", "/v1/users/u1/google/calendars", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // Nothing granted at all: no account.
    let q = env
        .connect(
            "u2",
            &["calendar"],
            "alice@example.com",
            "&sandbox_grant=openid",
        )
        .await;
    assert_eq!(q["google_connect"], "error");
    assert_eq!(q["error"], "insufficient_scopes");
    let (s, _) = env.account("u2").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_revoked_grant_moves_the_account_to_needs_reauth_and_reconnect_keeps_it() {
    let env = Env::new().await;
    env.connect("u1", &["calendar", "gmail"], "alice@example.com", "")
        .await;
    let before = env.stored_account("u1").await;

    // A pair the sync engine made earlier: a reconnect must keep it.
    let mut pair = shared::domain::PairStatus::new(
        before.id.clone(),
        shared::domain::Collection::Calendar,
        shared::domain::CrmId::parse("MTG-1").unwrap(),
    );
    pair.google_id = Some("abcdef12345".into());
    pair.container = Some("primary".into());
    env.app
        .store
        .put_pair(&env.tenant, &before.user, &pair, None)
        .await
        .unwrap();

    // The user revokes access in their Google account; the cached token then runs out.
    env.sandbox.revoke_user_grants("alice@example.com");
    env.clock.advance(time::Duration::hours(2));
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "needs_reauth");
    let (_, v) = env.account("u1").await;
    assert_eq!(v["status"], "needs_reauth");
    assert_eq!(v["reauth_reason"], "invalid_grant");

    // The CRM is told once, and no more refreshes are tried.
    let refreshes = |env: &Env| {
        env.sandbox
            .request_log()
            .iter()
            .filter(|r| r.path == "/token")
            .count()
    };
    let before_retries = refreshes(&env);
    let (s, _) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        refreshes(&env),
        before_retries,
        "needs_reauth must stop retries"
    );
    let reauth: Vec<Value> = env
        .changes()
        .await
        .into_iter()
        .filter(|c| c["data"]["status"] == "needs_reauth")
        .collect();
    assert_eq!(reauth.len(), 1);
    assert_eq!(reauth[0]["data"]["reason"], "invalid_grant");

    // Reconnecting: same account, same pairs, active again.
    let q = env
        .connect("u1", &["calendar", "gmail"], "alice@example.com", "")
        .await;
    assert_eq!(q["google_connect"], "connected");
    let after = env.stored_account("u1").await;
    assert_eq!(after.id, before.id);
    assert_eq!(after.status, shared::domain::AccountStatus::Active);
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
    let (_, accounts) = env
        .call("GET", "/v1/admin/accounts", &env.admin, None)
        .await;
    assert_eq!(accounts["items"].as_array().unwrap().len(), 1);
    let (s, _) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A different Google account cannot silently take over a connected user.
    let q = env
        .connect("u1", &["calendar"], "bob@example.com", "")
        .await;
    assert_eq!(q["error"], "wrong_google_account");
    assert_eq!(
        env.stored_account("u1").await.google_email.as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test]
async fn access_tokens_are_cached_and_refreshed_once_under_concurrency() {
    let env = Arc::new(Env::new().await);
    env.connect("u1", &["gmail"], "alice@example.com", "").await;
    let token_calls = |env: &Env| {
        env.sandbox
            .request_log()
            .iter()
            .filter(|r| r.path == "/token")
            .count()
    };
    let exchanges = token_calls(&env);
    // Cached: no token call.
    for _ in 0..3 {
        let (s, _) = env
            .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(token_calls(&env), exchanges);
    // Expired: eight concurrent callers, one refresh.
    env.clock.advance(time::Duration::minutes(58));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let env = env.clone();
        tasks.spawn(async move {
            env.call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
                .await
        });
    }
    let results = tasks.join_all().await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK));
    let tokens: std::collections::HashSet<String> = results
        .iter()
        .map(|(_, v)| v["access_token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1, "everyone got the one refreshed token");
    assert_eq!(token_calls(&env), exchanges + 1);
}

#[tokio::test]
async fn disconnect_revokes_at_google_and_is_idempotent() {
    let env = Env::new().await;
    env.connect("u1", &["calendar"], "alice@example.com", "")
        .await;
    let (refresh, _) = env.stored_tokens("u1").await;

    env.sandbox.clear_request_log();
    let (s, v) = env
        .call(
            "DELETE",
            "/v1/users/u1/google?keep_pairs=false",
            &env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "disconnected");
    assert_eq!(v["revoked"], true);
    assert_eq!(v["pairs_kept"], false);
    assert!(env
        .sandbox
        .request_log()
        .iter()
        .any(|r| r.path == "/revoke" && r.status == 200));

    // The grant is dead at Google, and the tokens are gone from the store.
    let resp = env
        .http
        .post(format!("{}/token", env.sandbox_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let stored = env.stored_account("u1").await;
    assert!(stored.refresh_token_ciphertext.is_none() && stored.access_token_ciphertext.is_none());

    // Again: same answer, no second revocation, one feed record.
    let (s, v) = env
        .call("DELETE", "/v1/users/u1/google", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "disconnected");
    assert_eq!(
        env.sandbox
            .request_log()
            .iter()
            .filter(|r| r.path == "/revoke")
            .count(),
        1
    );
    let disconnected = env
        .changes()
        .await
        .into_iter()
        .filter(|c| c["data"]["status"] == "disconnected")
        .count();
    assert_eq!(disconnected, 1);
    let (s, v) = env
        .call("POST", "/v1/users/u1/gmail/token", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = env
        .call("DELETE", "/v1/users/nobody/google", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_are_checked_against_what_google_has() {
    let env = Env::new().await;
    let team = env
        .sandbox
        .add_calendar("alice@example.com", "Team", "Europe/Paris");
    env.connect("u1", &["calendar", "contacts"], "alice@example.com", "")
        .await;

    let (s, v) = env
        .call("GET", "/v1/users/u1/google/calendars", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"alice@example.com") && ids.contains(&team.as_str()),
        "{v}"
    );
    let (s, groups) = env
        .call("GET", "/v1/users/u1/google/contact-groups", &env.sync, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{groups}");
    // A group contacts can join (Google's deprecated system groups are refused).
    let group = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["resourceName"].as_str())
        .find(|g| *g == "contactGroups/myContacts")
        .unwrap()
        .to_owned();

    let (s, v) = env.patch_account("u1", json!({"main_calendar": "primary", "monitored_calendars": [team], "direction": "google_to_crm", "sync_since": "2026-01-01", "contact_group": group})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["settings"]["main_calendar"], "primary");
    assert_eq!(v["settings"]["monitored_calendars"], json!([team]));
    assert_eq!(v["settings"]["direction"], "google_to_crm");

    for bad in [
        json!({"main_calendar": "nope@group.calendar.google.com"}),
        json!({"monitored_calendars": ["nope"]}),
        json!({"contact_group": "contactGroups/doesnotexist"}),
        json!({"sync_since": "yesterday"}),
        json!({"direction": "sideways"}),
        json!({"unknown": 1}),
    ] {
        let (s, v) = env.patch_account("u1", bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {v}");
    }
    let (_, v) = env.account("u1").await;
    assert_eq!(
        v["settings"]["direction"], "google_to_crm",
        "rejected patches change nothing"
    );

    // Pause and resume.
    let (s, v) = env.patch_account("u1", json!({"paused": true})).await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!("paused")));
    let (s, v) = env.patch_account("u1", json!({"paused": false})).await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!("active")));
}
