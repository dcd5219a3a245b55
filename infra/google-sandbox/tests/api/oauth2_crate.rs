//! The `oauth2` crate (what the product uses) against the sandbox: PKCE code exchange with
//! HTTP Basic client auth, refresh, revocation, and Google's error codes as typed errors.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RequestTokenError, RevocationUrl, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn oauth2_crate_full_flow() {
    let app = spawn().await;
    let client = BasicClient::new(ClientId::new(CLIENT_ID.to_string()))
        .set_client_secret(ClientSecret::new(CLIENT_SECRET.to_string()))
        .set_auth_uri(AuthUrl::new(app.url("/o/oauth2/v2/auth")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(app.url("/revoke")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(CAL.to_string()))
        .add_extra_param("access_type", "offline")
        .add_extra_param("login_hint", ALICE)
        .add_extra_param("sandbox_auto", "approve")
        .set_pkce_challenge(challenge)
        .url();
    let resp = app.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&loc, "code").unwrap();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert!(token.access_token().secret().starts_with("ya29."));
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(3600));
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, vec![CAL.to_string()]);
    let refresh = token.refresh_token().expect("offline access").clone();

    // a reused code is Google's invalid_grant
    let err = client
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&http)
        .await
        .expect_err("codes are single-use");
    match err {
        RequestTokenError::ServerResponse(e) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant)
        }
        other => panic!("unexpected {other:?}"),
    }

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    assert!(refreshed.refresh_token().is_none());
    let (status, _, _) = app
        .call(
            reqwest::Method::GET,
            "/calendar/v3/colors",
            refreshed.access_token().secret(),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // oauth2 refuses non-https revocation URLs (InsecureUrl), so revoke with a plain POST
    // as a client of the http sandbox must.
    assert!(client
        .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
        .is_err());
    let resp = http
        .post(app.url("/revoke"))
        .form(&[("token", refresh.secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let err = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect_err("revoked");
    match err {
        RequestTokenError::ServerResponse(e) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant)
        }
        other => panic!("unexpected {other:?}"),
    }
}
