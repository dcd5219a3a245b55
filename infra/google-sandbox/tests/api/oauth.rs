use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

#[tokio::test]
async fn consent_page_lists_client_users_and_scopes_and_approves_via_form() {
    let app = spawn().await;
    let resp = app
        .http
        .get(app.auth_url(CAL, "&access_type=offline"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(html.contains(CLIENT_ID));
    assert!(html.contains(ALICE) && html.contains(BOB));
    assert!(html.contains(CAL));
    assert!(html.contains("value=\"approve\"") && html.contains("value=\"deny\""));

    let form = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", CAL),
        ("state", "s1"),
        ("user", BOB),
        ("decision", "approve"),
    ];
    let resp = app
        .http
        .post(app.url("/o/oauth2/v2/auth/decision"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    let code = query_param(&loc, "code").unwrap();
    let (status, body) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap();
    let (_, cal) = app
        .api(
            "calendar.calendars.get",
            Method::GET,
            "/calendar/v3/calendars/primary",
            token,
            None,
        )
        .await;
    assert_eq!(cal["id"], BOB);

    let mut deny = form.to_vec();
    deny.retain(|(k, _)| *k != "decision");
    deny.push(("decision", "deny"));
    let resp = app
        .http
        .post(app.url("/o/oauth2/v2/auth/decision"))
        .form(&deny)
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn sandbox_auto_deny_redirects_with_access_denied() {
    let app = spawn().await;
    let url = app.auth_url(CAL, &format!("&login_hint={ALICE}&sandbox_auto=deny"));
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert!(query_param(&loc, "code").is_none());
}

#[tokio::test]
async fn authorization_endpoint_rejects_unknown_client_and_unregistered_redirect() {
    let app = spawn().await;
    let url = app.auth_url(CAL, "").replace(CLIENT_ID, "nope");
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("invalid_client"));
    let url = app.auth_url(CAL, "").replace("oauth%2Fcallback", "evil");
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("redirect_uri_mismatch"));
}

#[tokio::test]
async fn code_exchange_offline_refresh_and_single_use_codes() {
    let app = spawn().await;
    let code = app
        .code(
            ALICE,
            &format!("openid email {CAL}"),
            "&access_type=offline",
        )
        .await;
    let (status, body) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    assert!(body["id_token"].as_str().unwrap().split('.').count() == 3);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains(CAL) && scope.contains("userinfo.email") && scope.contains("openid"));

    // codes are single-use
    let (status, err) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(err["error_description"], "Bad Request");

    // refresh with HTTP Basic client auth; no new refresh token
    let rt = body["refresh_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = resp.json().await.unwrap();
    assert!(refreshed["access_token"].is_string());
    assert!(refreshed.get("refresh_token").is_none());
    assert_ne!(refreshed["access_token"], body["access_token"]);

    // online access: no refresh token
    let code = app.code(ALICE, CAL, "").await;
    let (_, body) = app.exchange(&code, &[]).await;
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn token_endpoint_errors_match_google() {
    let app = spawn().await;
    let code = app.code(ALICE, CAL, "").await;
    // wrong secret
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            ("client_secret", "bad"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // unknown client via Basic
    let resp = app
        .http
        .post(app.url("/token"))
        .basic_auth("nobody", Some("x"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // unsupported grant type
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // missing code
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // redirect_uri mismatch
    let (status, err) = app.exchange(&code, &[]).await.clone();
    assert_eq!(
        status,
        StatusCode::OK,
        "the code above is still valid: {err}"
    );
    let code = app.code(ALICE, CAL, "").await;
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "redirect_uri_mismatch"
    );
    // unknown refresh token
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//nope"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let app = spawn().await;
    let code = app.code(ALICE, CAL, "").await;
    app.sandbox.advance_clock(601);
    let (status, err) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn pkce_s256_and_plain() {
    let app = spawn().await;
    let verifier = "a-verifier-that-is-long-enough-0123456789-abcdefghij";
    let extra = format!(
        "&code_challenge={}&code_challenge_method=S256",
        s256(verifier)
    );
    let code = app.code(ALICE, CAL, &extra).await;
    let (status, err) = app
        .exchange(
            &code,
            &[(
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier",
            )],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");

    let code = app.code(ALICE, CAL, &extra).await;
    let (status, err) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");

    let code = app.code(ALICE, CAL, &extra).await;
    let (status, body) = app.exchange(&code, &[("code_verifier", verifier)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let extra = format!("&code_challenge={verifier}&code_challenge_method=plain");
    let code = app.code(ALICE, CAL, &extra).await;
    let (status, _) = app.exchange(&code, &[("code_verifier", verifier)]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revoke_kills_access_and_refresh_tokens() {
    let app = spawn().await;
    let body = app.grant(ALICE, CAL).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _, err) = app
        .call(
            Method::GET,
            "/calendar/v3/users/me/calendarList",
            access,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&err), "authError");
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let resp = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_token"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_and_the_control_endpoint_revoke_the_grant() {
    let app = spawn().await;
    let body = app.grant(ALICE, CAL).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _, _) = app
        .call(
            Method::GET,
            "/calendar/v3/colors",
            body["access_token"].as_str().unwrap(),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let body = app.grant(BOB, CAL).await;
    let resp = app
        .http
        .post(app.url(&format!("/_sandbox/users/{BOB}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _, _) = app
        .call(
            Method::GET,
            "/calendar/v3/colors",
            body["access_token"].as_str().unwrap(),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn access_tokens_expire_with_the_sandbox_clock() {
    let app = spawn().await;
    app.sandbox.set_access_token_ttl(60);
    let body = app.grant(ALICE, CAL).await;
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().unwrap();
    let (status, _, _) = app
        .call(Method::GET, "/calendar/v3/colors", token, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    app.sandbox.advance_clock(61);
    let (status, headers, err) = app
        .call(Method::GET, "/calendar/v3/colors", token, None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&err), "authError");
    assert_eq!(err["error"]["message"], "Invalid Credentials");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let (status, _, err) = app
        .call(Method::GET, "/calendar/v3/colors", "", None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reason(&err), "required");
}

#[tokio::test]
async fn scopes_are_enforced_per_api_and_include_granted_scopes_merges() {
    let app = spawn().await;
    let token = app.token(ALICE, CONTACTS).await;
    let (status, _, err) = app
        .call(
            Method::GET,
            "/calendar/v3/calendars/primary/events",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reason(&err), "insufficientPermissions");
    let cal_token = app
        .token(ALICE, "https://www.googleapis.com/auth/calendar.events")
        .await;
    let (status, _, err) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            &cal_token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        err["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    );
    // calendar.events is enough for events but not for calendarList
    let (status, _, _) = app
        .call(
            Method::GET,
            "/calendar/v3/calendars/primary/events",
            &cal_token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .call(
            Method::GET,
            "/calendar/v3/users/me/calendarList",
            &cal_token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // incremental authorization
    let code = app.code(ALICE, CAL, "&include_granted_scopes=true").await;
    let (_, body) = app.exchange(&code, &[]).await;
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains(CONTACTS) && scope.contains(CAL), "{scope}");
    let merged = body["access_token"].as_str().unwrap();
    let (status, _, _) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            merged,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // without include_granted_scopes only what was asked
    let code = app.code(ALICE, CAL, "").await;
    let (_, body) = app.exchange(&code, &[]).await;
    assert!(!body["scope"].as_str().unwrap().contains(CONTACTS));
}

#[tokio::test]
async fn userinfo_endpoints() {
    let app = spawn().await;
    let token = app.token(ALICE, "openid email profile").await;
    let v2 = app
        .ok(
            "oauth2.userinfo.get",
            Method::GET,
            "/oauth2/v2/userinfo",
            &token,
            None,
        )
        .await;
    assert_eq!(v2["email"], ALICE);
    assert_eq!(v2["verified_email"], true);
    assert_eq!(v2["name"], "Alice Anders");
    let me = app
        .ok(
            "oauth2.userinfo.v2.me.get",
            Method::GET,
            "/userinfo/v2/me",
            &token,
            None,
        )
        .await;
    assert_eq!(me["id"], v2["id"]);
    let (status, _, oidc) = app
        .call(Method::GET, "/v1/userinfo", &token, None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(oidc["sub"], v2["id"]);
    assert_eq!(oidc["email"], ALICE);
    assert_eq!(oidc["email_verified"], true);
    assert_eq!(oidc["given_name"], "Alice");
    let (status, _, _) = app
        .call(Method::GET, "/v1/userinfo", "bogus", None, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_token_only_on_first_consent_or_prompt_consent() {
    let app = spawn().await;
    let first = app.grant(ALICE, CAL).await;
    assert!(first["refresh_token"].is_string());
    let again = app.grant(ALICE, CAL).await;
    assert!(
        again.get("refresh_token").is_none(),
        "Google omits it on re-consent"
    );
    let code = app
        .code(ALICE, CAL, "&access_type=offline&prompt=consent")
        .await;
    let (_, forced) = app.exchange(&code, &[]).await;
    assert!(forced["refresh_token"].is_string());
}

#[tokio::test]
async fn tokeninfo_describes_access_tokens() {
    let app = spawn().await;
    let token = app.token(ALICE, &format!("email {CAL}")).await;
    let path = format!("/oauth2/v2/tokeninfo?access_token={token}");
    let info = app
        .ok("oauth2.tokeninfo", Method::POST, &path, "", None)
        .await;
    assert_eq!(info["issued_to"], CLIENT_ID);
    assert_eq!(info["email"], ALICE);
    assert!(info["scope"].as_str().unwrap().contains(CAL));
    assert!(info["expires_in"].as_i64().unwrap() > 3500);
    let (status, _, err) = app
        .call(
            Method::POST,
            "/oauth2/v2/tokeninfo?access_token=nope",
            "",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_token");
}

#[tokio::test]
async fn minted_tokens_work_without_the_consent_round_trip() {
    let app = spawn().await;
    let token = app.sandbox.issue_access_token(CLIENT_ID, BOB, &[CAL]);
    let cal = app
        .ok(
            "calendar.calendars.get",
            Method::GET,
            "/calendar/v3/calendars/primary",
            &token,
            None,
        )
        .await;
    assert_eq!(cal["id"], BOB);
    let (status, _, _) = app
        .call(
            Method::GET,
            "/v1/people/me/connections?personFields=names",
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn id_claims(body: &Value) -> Value {
    let raw = body["id_token"].as_str().expect("id_token");
    let payload = raw.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn id_tokens_carry_the_email_claims_only_with_the_email_scope() {
    let app = spawn().await;
    let users: Value = app
        .http
        .get(app.url("/_sandbox/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_sub = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == ALICE)
        .unwrap()["sub"]
        .clone();

    let with_email = app.grant(ALICE, "openid email").await;
    let claims = id_claims(&with_email);
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], alice_sub);
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["hd"], "example.com", "a Workspace domain");
    assert!(claims.get("name").is_none(), "no profile scope: {claims}");

    let bare = app.grant(BOB, "openid").await;
    let claims = id_claims(&bare);
    assert!(claims["sub"].is_string());
    assert!(
        claims.get("email").is_none() && claims.get("email_verified").is_none(),
        "{claims}"
    );

    // An account whose address Google never verified says so, in the ID token and userinfo.
    let resp = app
        .http
        .post(app.url("/_sandbox/users"))
        .json(&serde_json::json!({"email": "carol@gmail.com", "email_verified": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let carol = app.grant("carol@gmail.com", "openid email").await;
    let claims = id_claims(&carol);
    assert_eq!(claims["email_verified"], false);
    assert!(claims.get("hd").is_none(), "consumer Gmail has no hd");
    let token = carol["access_token"].as_str().unwrap();
    let (_, _, oidc) = app
        .call(Method::GET, "/v1/userinfo", token, None, &[])
        .await;
    assert_eq!(oidc["email_verified"], false);
}

#[tokio::test]
async fn the_consenting_user_may_pick_another_account_than_the_hint() {
    let app = spawn().await;
    let url = app.auth_url(
        "openid email",
        &format!("&login_hint={ALICE}&sandbox_user={BOB}&sandbox_auto=approve"),
    );
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&loc, "code").unwrap();
    let (status, body) = app.exchange(&code, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(id_claims(&body)["email"], BOB);
}

#[tokio::test]
async fn client_level_errors_are_answered_as_google_does() {
    let app = spawn().await;
    let granted = app.grant(ALICE, CAL).await;
    let refresh = granted["refresh_token"].as_str().unwrap().to_owned();
    let refresh_with = |client: &'static str, secret: &'static str| {
        let (http, url, refresh) = (app.http.clone(), app.url("/token"), refresh.clone());
        async move {
            let resp = http
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", client),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            assert!(body["error_description"].is_string(), "{body}");
            (status, body["error"].as_str().unwrap_or("").to_owned())
        }
    };
    // Another client of the project presenting this client's refresh token.
    app.sandbox.add_client(
        "other.apps.googleusercontent.com",
        "other-secret",
        &[REDIRECT],
    );
    assert_eq!(
        refresh_with("other.apps.googleusercontent.com", "other-secret").await,
        (StatusCode::BAD_REQUEST, "unauthorized_client".to_owned())
    );
    // Disabled, deleted, restored (the console's actions on the client).
    for (status, error) in [
        ("disabled", "disabled_client"),
        ("deleted", "deleted_client"),
    ] {
        let resp = app
            .http
            .put(app.url(&format!("/_sandbox/clients/{CLIENT_ID}/status")))
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            refresh_with(CLIENT_ID, CLIENT_SECRET).await,
            (StatusCode::UNAUTHORIZED, error.to_owned())
        );
    }
    app.sandbox
        .set_client_status(CLIENT_ID, google_sandbox::ClientStatus::Enabled);
    let resp = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the users' grants survive the client's outage"
    );
}
