//! OAuth2 with Google: authorization URLs (PKCE S256, offline access, incremental scopes),
//! the code exchange, refresh, revocation, and sorting Google's errors into permanent and
//! transient.

use super::{Google, GoogleError};
use crate::domain::{Product, Products};
use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRequestTokenError, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const SCOPE_OPENID: &str = "openid";
pub const SCOPE_EMAIL: &str = "email";
pub const SCOPE_CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
pub const SCOPE_CONTACTS: &str = "https://www.googleapis.com/auth/contacts";
pub const SCOPE_GMAIL: &str = "https://mail.google.com/";

/// The scope a product needs.
pub fn product_scope(p: Product) -> &'static str {
    match p {
        Product::Calendar => SCOPE_CALENDAR,
        Product::Contacts => SCOPE_CONTACTS,
        Product::Gmail => SCOPE_GMAIL,
    }
}

/// Exactly the scopes the chosen products need, plus the identity.
pub fn scopes_for(products: &Products) -> Vec<&'static str> {
    let mut scopes = vec![SCOPE_OPENID, SCOPE_EMAIL];
    scopes.extend(products.iter().map(product_scope));
    scopes
}

/// Google normalises `email` to its URL form in granted-scope lists.
fn scope_matches(granted: &str, wanted: &str) -> bool {
    granted == wanted
        || (wanted == SCOPE_EMAIL && granted == "https://www.googleapis.com/auth/userinfo.email")
}

/// The products whose scope is among `granted`.
pub fn granted_products(requested: &Products, granted: &[String]) -> Products {
    requested
        .iter()
        .filter(|p| granted.iter().any(|g| scope_matches(g, product_scope(*p))))
        .collect::<Vec<_>>()
        .into()
}

/// A tenant's OAuth client (the secret is only ever held as a `SecretString`).
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// The one field Google adds to a token response: the OpenID Connect ID token (when the
/// `openid` scope was granted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

type ClientOf<HasAuthUrl, HasTokenUrl> = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;
type Client = ClientOf<EndpointSet, EndpointSet>;

/// A started authorization: the URL to send the user to and the PKCE verifier to keep.
pub struct Authorization {
    pub url: String,
    pub pkce_verifier: String,
}

/// Tokens from a code exchange or a refresh.
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: OffsetDateTime,
    /// Granted scopes, when Google lists them.
    pub scopes: Option<Vec<String>>,
    /// The raw OpenID Connect ID token, when Google sent one (see [`id_token_identity`]).
    pub id_token: Option<String>,
}

/// The claims of a Google ID token the product reads.
#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    aud: String,
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

/// Why an ID token is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a JWT")]
    Malformed,
    #[error("the ID token was issued by {0}, not Google")]
    Issuer(String),
    #[error("the ID token is for another OAuth client")]
    Audience,
    #[error("the ID token carries no e-mail address (the email scope was not granted)")]
    NoEmail,
}

/// The identity in a Google ID token received from the token endpoint. Its signature is not
/// checked: the token came straight from Google's token endpoint over TLS, in answer to a
/// request authenticated with the client secret, which is what Google documents as enough
/// ("Obtaining user profile information from the ID token"; OpenID Connect Core 3.1.3.7).
/// The issuer and the audience (this client) are checked all the same; the expiry is not (the
/// token is seconds old, and this server's clock is not Google's).
pub fn id_token_identity(raw: &str, client_id: &str) -> Result<super::api::Identity, IdTokenError> {
    let mut parts = raw.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| IdTokenError::Malformed)?;
    let claims: IdClaims = serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)?;
    if !matches!(
        claims.iss.as_str(),
        "accounts.google.com" | "https://accounts.google.com"
    ) {
        return Err(IdTokenError::Issuer(claims.iss));
    }
    if claims.aud != client_id {
        return Err(IdTokenError::Audience);
    }
    let email = claims.email.ok_or(IdTokenError::NoEmail)?;
    Ok(super::api::Identity {
        sub: claims.sub,
        email,
        email_verified: claims.email_verified,
    })
}

/// Whether two e-mail addresses name the same Google account: case does not matter, and for
/// consumer Gmail neither do dots in the local part nor `googlemail.com` versus `gmail.com`
/// (Google treats them as one address).
pub fn same_google_email(a: &str, b: &str) -> bool {
    fn canonical(e: &str) -> String {
        let e = e.trim().to_ascii_lowercase();
        match e.rsplit_once('@') {
            Some((local, "gmail.com" | "googlemail.com")) => {
                format!("{}@gmail.com", local.replace('.', ""))
            }
            _ => e,
        }
    }
    canonical(a) == canonical(b)
}

impl Google {
    fn client(&self, c: &OAuthClient, redirect: &str) -> Result<Client, GoogleError> {
        let bad = |what: &str| GoogleError::Rejected {
            status: 0,
            reason: format!("invalid {what} URL in configuration"),
        };
        Ok(
            ClientOf::<EndpointNotSet, EndpointNotSet>::new(ClientId::new(c.client_id.clone()))
                .set_client_secret(ClientSecret::new(
                    c.client_secret.expose_secret().to_owned(),
                ))
                .set_auth_uri(
                    AuthUrl::new(self.endpoints.auth_url.clone()).map_err(|_| bad("auth"))?,
                )
                .set_token_uri(
                    TokenUrl::new(self.endpoints.token_url.clone()).map_err(|_| bad("token"))?,
                )
                .set_redirect_uri(
                    RedirectUrl::new(redirect.to_owned()).map_err(|_| bad("redirect"))?,
                ),
        )
    }

    /// The authorization URL for `state`, with PKCE S256, offline access, incremental
    /// authorization and a forced consent screen (so Google always returns a refresh token).
    pub fn authorization(
        &self,
        client: &OAuthClient,
        redirect: &str,
        state: &str,
        scopes: &[&str],
        login_hint: Option<&str>,
    ) -> Result<Authorization, GoogleError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let oauth = self.client(client, redirect)?;
        let mut req = oauth
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("include_granted_scopes", "true")
            .add_extra_param("prompt", "consent");
        if let Some(hint) = login_hint {
            req = req.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, _) = req.url();
        Ok(Authorization {
            url: url.to_string(),
            pkce_verifier: verifier.secret().to_owned(),
        })
    }

    /// Exchanges an authorization code (with its PKCE verifier).
    pub async fn exchange_code(
        &self,
        client: &OAuthClient,
        redirect: &str,
        code: &str,
        pkce_verifier: &str,
        now: OffsetDateTime,
    ) -> Result<Tokens, GoogleError> {
        let response = self
            .client(client, redirect)?
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(classify)?;
        Ok(tokens(&response, now))
    }

    /// A fresh access token from a refresh token.
    pub async fn refresh(
        &self,
        client: &OAuthClient,
        redirect: &str,
        refresh_token: &SecretString,
        now: OffsetDateTime,
    ) -> Result<Tokens, GoogleError> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = self
            .client(client, redirect)?
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(classify)?;
        Ok(tokens(&response, now))
    }

    /// Revokes the grant behind a refresh token (`POST revoke_url` with `token=…`, as Google
    /// documents it). An already revoked or unknown token counts as revoked.
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<(), GoogleError> {
        let resp = self
            .http
            .post(&self.endpoints.revoke_url)
            .form(&[("token", refresh_token.expose_secret())])
            .send()
            .await
            .map_err(|e| {
                GoogleError::Transient(format!("revoke request failed: {}", e.without_url()))
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp.bytes().await.unwrap_or_default();
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if status == 400 && error == "invalid_token" {
            return Ok(());
        }
        Err(super::api::classify_status(status, &body))
    }
}

fn tokens(r: &TokenAnswer, now: OffsetDateTime) -> Tokens {
    let lifetime = r
        .expires_in()
        .map(|d| time::Duration::seconds(d.as_secs() as i64))
        .unwrap_or(time::Duration::hours(1));
    Tokens {
        access_token: SecretString::from(r.access_token().secret().to_owned()),
        refresh_token: r
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        expires_at: now + lifetime,
        scopes: r
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect()),
        id_token: r.extra_fields().id_token.clone(),
    }
}

/// Token-endpoint errors about the tenant's OAuth client itself (a wrong, rotated, disabled
/// or deleted client secret or client), not about the user's grant: the admin fixes them,
/// and the users' refresh tokens are still good afterwards. They are sorted as
/// [`GoogleError::Reauth`] like the grant errors; the token lifecycle tells them apart with
/// [`is_client_error`].
pub const CLIENT_OAUTH_ERRORS: &[&str] = &[
    "invalid_client",
    "unauthorized_client",
    "deleted_client",
    "disabled_client",
];

/// Whether a token-endpoint error code is about the OAuth client, not the user's grant.
pub fn is_client_error(code: &str) -> bool {
    CLIENT_OAUTH_ERRORS.contains(&code)
}

/// OAuth error codes that end the request for good: the grant is gone until the user
/// reconnects, or (the [`CLIENT_OAUTH_ERRORS`]) the tenant's client must be fixed.
pub const PERMANENT_OAUTH_ERRORS: &[&str] = &[
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "admin_policy_enforced",
    "access_denied",
    "org_internal",
    "deleted_client",
    "disabled_client",
    "invalid_scope",
];

/// Sorts a token-endpoint failure. The error bodies are never kept: they can echo tokens.
fn classify<RE: std::error::Error + 'static>(e: BasicRequestTokenError<RE>) -> GoogleError {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            let code = r.error().to_string();
            if PERMANENT_OAUTH_ERRORS.contains(&code.as_str()) {
                GoogleError::Reauth(code)
            } else if matches!(code.as_str(), "temporarily_unavailable" | "server_error") {
                GoogleError::Transient(code)
            } else {
                GoogleError::Rejected {
                    status: 400,
                    reason: code,
                }
            }
        }
        oauth2::RequestTokenError::Request(_) => {
            GoogleError::Transient("token request failed".into())
        }
        // A body that is not an OAuth answer: an HTML 5xx page, a proxy error.
        oauth2::RequestTokenError::Parse(..) => {
            GoogleError::Transient("unexpected token endpoint response".into())
        }
        oauth2::RequestTokenError::Other(_) => {
            GoogleError::Transient("unexpected token endpoint response".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GoogleEndpoints;

    #[test]
    fn authorization_url_has_everything_google_needs() {
        let g = Google::new(GoogleEndpoints::default(), Default::default());
        let client = OAuthClient {
            client_id: "123-abc.apps.googleusercontent.com".into(),
            client_secret: SecretString::from("s3cret"),
        };
        let products: Products = vec![Product::Calendar, Product::Gmail].into();
        let a = g
            .authorization(
                &client,
                "https://x.example/oauth/callback",
                "st4te",
                &scopes_for(&products),
                Some("a@example.com"),
            )
            .unwrap();
        let url = url::Url::parse(&a.url).unwrap();
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "123-abc.apps.googleusercontent.com");
        assert_eq!(q["redirect_uri"], "https://x.example/oauth/callback");
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["include_granted_scopes"], "true");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["login_hint"], "a@example.com");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        let scopes: Vec<&str> = q["scope"].split(' ').collect();
        assert_eq!(scopes, ["openid", "email", SCOPE_CALENDAR, SCOPE_GMAIL]);
        assert!(!a.url.contains("s3cret"));
        assert!(a.pkce_verifier.len() >= 43);
    }

    #[test]
    fn granted_products_follow_the_granted_scopes() {
        let requested: Products = vec![Product::Calendar, Product::Contacts].into();
        let granted = vec!["openid".to_owned(), SCOPE_CONTACTS.to_owned()];
        assert_eq!(
            granted_products(&requested, &granted),
            vec![Product::Contacts].into()
        );
    }

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    #[test]
    fn id_tokens_are_read_for_this_client_from_google_only() {
        let good = serde_json::json!({"iss": "https://accounts.google.com", "aud": "cid",
            "sub": "1234", "email": "a@example.com", "email_verified": true, "exp": 1});
        let id = id_token_identity(&jwt(good.clone()), "cid").unwrap();
        assert_eq!(
            (id.sub.as_str(), id.email.as_str(), id.email_verified),
            ("1234", "a@example.com", Some(true))
        );
        let mut other = good.clone();
        other["aud"] = "someone-else".into();
        assert_eq!(
            id_token_identity(&jwt(other), "cid").unwrap_err(),
            IdTokenError::Audience
        );
        let mut forged = good.clone();
        forged["iss"] = "https://evil.example".into();
        assert!(matches!(
            id_token_identity(&jwt(forged), "cid"),
            Err(IdTokenError::Issuer(_))
        ));
        let mut no_email = good;
        no_email.as_object_mut().unwrap().remove("email");
        assert_eq!(
            id_token_identity(&jwt(no_email), "cid").unwrap_err(),
            IdTokenError::NoEmail
        );
        for bad in ["", "a.b", "a.!!!.c", "a.e30.c.d"] {
            assert!(id_token_identity(bad, "cid").is_err(), "{bad}");
        }
    }

    #[test]
    fn google_emails_compare_as_google_does() {
        assert!(same_google_email("Alice@Example.com", "alice@example.com"));
        assert!(same_google_email(
            "first.last@gmail.com",
            "FirstLast@googlemail.com"
        ));
        assert!(!same_google_email(
            "first.last@example.com",
            "firstlast@example.com"
        ));
        assert!(!same_google_email("alice@example.com", "bob@example.com"));
        assert!(!same_google_email("alice+x@gmail.com", "alice@gmail.com"));
    }
}
