//! OAuth 2.0 as Google serves it: the authorization endpoint with a consent page, the token
//! endpoint (authorization_code with PKCE, refresh_token), revocation and userinfo.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::errors::{OAuthError, Surface};
use crate::params::{encode, html_escape, Params};
use crate::state::{AccessToken, AuthCode, ClientStatus, RefreshToken, State as SandboxState};
use crate::{ids, scopes, Sandbox};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/o/oauth2/v2/auth/decision", post(decision))
        .route("/token", post(token))
        .route("/oauth2/v4/token", post(token))
        .route("/revoke", post(revoke))
        .route("/o/oauth2/revoke", post(revoke).get(revoke))
        .route("/oauth2/v2/userinfo", get(userinfo_v2).post(userinfo_v2))
        .route("/userinfo/v2/me", get(userinfo_v2))
        .route("/v1/userinfo", get(userinfo_oidc).post(userinfo_oidc))
        .route("/oauth2/v3/userinfo", get(userinfo_oidc))
        .route("/oauth2/v2/tokeninfo", post(tokeninfo).get(tokeninfo))
}

/// A validated authorization request.
#[derive(Debug, Clone)]
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    offline: bool,
    force_consent: bool,
    include_granted_scopes: bool,
    login_hint: Option<String>,
    challenge: Option<(String, String)>,
    nonce: Option<String>,
    raw: Params,
}

fn error_page(status: StatusCode, error: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Error {code}: {error}</title></head><body>\
         <h1>Access blocked: authorization error</h1><p>Error {code}: {error}</p><p>{detail}</p></body></html>",
        code = status.as_u16(),
        error = html_escape(error),
        detail = html_escape(detail)
    );
    (status, Html(body)).into_response()
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&encode(v));
        sep = '&';
    }
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

/// Validates the authorization request (the error is the complete response to send); errors are either an error page (bad client or
/// redirect URI, which Google never redirects to) or a redirect carrying `error=`.
#[allow(clippy::result_large_err)]
fn validate(st: &SandboxState, p: &Params) -> Result<AuthRequest, Response> {
    let (client_id, redirect_uri) = registered_redirect(st, p)?;
    let state = p.get("state").map(str::to_string);
    let redirect_error = |error: &str, desc: &str| {
        let mut pairs = vec![("error", error), ("error_description", desc)];
        if let Some(s) = state.as_deref() {
            pairs.push(("state", s));
        }
        redirect_with(redirect_uri, &pairs)
    };
    match p.get("response_type") {
        Some("code") => {}
        None => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required parameter is missing: response_type",
            ))
        }
        Some(_) => {
            return Err(redirect_error(
                "unsupported_response_type",
                "Invalid response_type",
            ))
        }
    }
    let scopes = requested_scopes(p)?;
    let challenge = code_challenge(p).map_err(|desc| redirect_error("invalid_request", desc))?;
    Ok(AuthRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state,
        offline: p.get("access_type") == Some("offline"),
        force_consent: p
            .get("prompt")
            .is_some_and(|v| v.split([' ', '+']).any(|x| x == "consent")),
        include_granted_scopes: p.flag("include_granted_scopes"),
        login_hint: p.non_empty("login_hint").map(str::to_string),
        challenge,
        nonce: p.non_empty("nonce").map(str::to_string),
        raw: p.clone(),
    })
}

/// The client and its redirect URI, as registered; else the error page Google shows (it never
/// redirects to a URI it does not know).
#[allow(clippy::result_large_err)]
fn registered_redirect<'p>(
    st: &SandboxState,
    p: &'p Params,
) -> Result<(&'p str, &'p str), Response> {
    let client_id = p.non_empty("client_id").ok_or_else(|| {
        error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: client_id",
        )
    })?;
    let client = st.clients.get(client_id).ok_or_else(|| {
        error_page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        )
    })?;
    let redirect_uri = p.non_empty("redirect_uri").ok_or_else(|| {
        error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        )
    })?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. The redirect URI is not registered for this client.",
        ));
    }
    Ok((client_id, redirect_uri))
}

/// `scope`, normalized; at least one.
#[allow(clippy::result_large_err)]
fn requested_scopes(p: &Params) -> Result<Vec<String>, Response> {
    let scopes: Vec<String> = p
        .get("scope")
        .unwrap_or("")
        .split([' ', '+'])
        .filter(|s| !s.is_empty())
        .map(scopes::normalize)
        .collect();
    if scopes.is_empty() {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope",
        ));
    }
    Ok(scopes)
}

/// The PKCE challenge and its method (`plain` unless given), if any; else what is wrong.
fn code_challenge(p: &Params) -> Result<Option<(String, String)>, &'static str> {
    let Some(c) = p.non_empty("code_challenge") else {
        return Ok(None);
    };
    let method = p.get("code_challenge_method").unwrap_or("plain");
    if method != "S256" && method != "plain" {
        return Err("Invalid code_challenge_method");
    }
    if !(43..=128).contains(&c.len()) {
        return Err("Invalid code_challenge");
    }
    Ok(Some((c.to_string(), method.to_string())))
}

fn approve(sandbox: &Sandbox, req: &AuthRequest, user: &str) -> Response {
    let now = sandbox.now();
    let ttl = sandbox.config().auth_code_ttl_secs;
    let mut st = sandbox.state();
    let key = (user.to_string(), req.client_id.clone());
    let mut granted: BTreeSet<String> = req.scopes.iter().cloned().collect();
    if req.include_granted_scopes {
        if let Some(previous) = st.grants.get(&key) {
            granted.extend(previous.iter().cloned());
        }
    }
    st.grants
        .entry(key)
        .or_default()
        .extend(req.scopes.iter().cloned());
    // Google issues a refresh token on the first consent of a user to a client, and again
    // only when the app forces the consent screen (`prompt=consent`).
    let offline = req.offline
        && (req.force_consent
            || !st
                .refresh_tokens
                .values()
                .any(|t| t.user == user && t.client_id == req.client_id));
    let code = format!("4/0{}", ids::token(32));
    st.codes.insert(
        code.clone(),
        AuthCode {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            user: user.to_string(),
            scopes: granted.clone(),
            code_challenge: req.challenge.clone(),
            offline,
            nonce: req.nonce.clone(),
            expires_at: now
                .checked_add(SignedDuration::from_secs(ttl))
                .unwrap_or(now),
        },
    );
    drop(st);
    let scope = granted.into_iter().collect::<Vec<_>>().join(" ");
    let mut pairs = vec![("code", code.as_str()), ("scope", scope.as_str())];
    if let Some(s) = req.state.as_deref() {
        pairs.push(("state", s));
    }
    redirect_with(&req.redirect_uri, &pairs)
}

fn deny(req: &AuthRequest) -> Response {
    let mut pairs = vec![("error", "access_denied")];
    if let Some(s) = req.state.as_deref() {
        pairs.push(("state", s));
    }
    redirect_with(&req.redirect_uri, &pairs)
}

/// `GET /o/oauth2/v2/auth`: consent page, or an immediate decision with `sandbox_auto`.
async fn authorize(State(sandbox): State<Sandbox>, p: Params) -> Response {
    let mut req = match validate(&sandbox.state(), &p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    // Granular consent: the user unticks some of the requested scopes. `sandbox_grant` lists
    // the scopes the simulated user keeps (space-separated); the rest are not granted.
    if let Some(keep) = p.get("sandbox_grant") {
        let keep: Vec<String> = keep
            .split([' ', '+'])
            .filter(|s| !s.is_empty())
            .map(scopes::normalize)
            .collect();
        req.scopes.retain(|s| keep.contains(s));
    }
    if let Some(auto) = p.get("sandbox_auto") {
        if auto == "deny" {
            return deny(&req);
        }
        if auto != "approve" {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "sandbox_auto must be approve or deny",
            );
        }
        // `sandbox_user` is the account the simulated user picks in Google's account chooser
        // (any account, whatever `login_hint` preselected); without it, the hinted one.
        let picked = p.non_empty("sandbox_user").or(req.login_hint.as_deref());
        let user = {
            let st = sandbox.state();
            match picked {
                Some(hint) => st.users.get(hint).map(|u| u.email.clone()),
                None if st.users.len() == 1 => st.users.keys().next().cloned(),
                None => None,
            }
        };
        return match user {
            Some(u) => approve(&sandbox, &req, &u),
            None => error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "sandbox_auto=approve needs login_hint or sandbox_user naming a known user",
            ),
        };
    }
    consent_page(&sandbox, &req)
}

fn consent_page(sandbox: &Sandbox, req: &AuthRequest) -> Response {
    let st = sandbox.state();
    let mut hidden = String::new();
    for (k, v) in &req.raw.0 {
        if k == "user" || k == "decision" {
            continue;
        }
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            html_escape(k),
            html_escape(v)
        ));
    }
    let mut users = String::new();
    for (i, u) in st.users.values().enumerate() {
        let checked = match req.login_hint.as_deref() {
            Some(h) => h == u.email,
            None => i == 0,
        };
        users.push_str(&format!(
            "<label><input type=\"radio\" name=\"user\" value=\"{e}\"{c}> {n} &lt;{e}&gt;</label><br>",
            e = html_escape(&u.email),
            n = html_escape(&u.name),
            c = if checked { " checked" } else { "" }
        ));
    }
    let scope_items: String = req
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", html_escape(s)))
        .collect();
    let body = format!(
        "<!doctype html><html><head><title>Sign in - Google Accounts (sandbox)</title></head><body>\
         <h1>Google sandbox: consent</h1>\
         <p><b>{client}</b> wants to access your Google Account.</p>\
         <form method=\"post\" action=\"/o/oauth2/v2/auth/decision\">{hidden}\
         <fieldset><legend>Choose an account</legend>{users}</fieldset>\
         <p>This will allow the app to:</p><ul>{scope_items}</ul>{offline}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>",
        client = html_escape(&req.client_id),
        offline = if req.offline {
            "<p>Offline access requested (refresh token).</p>"
        } else {
            ""
        },
    );
    Html(body).into_response()
}

/// `POST /o/oauth2/v2/auth/decision`: the consent form's Allow / Cancel.
async fn decision(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let p = Params::parse(&String::from_utf8_lossy(&body));
    let req = match validate(&sandbox.state(), &p) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match p.get("decision") {
        Some("approve") => {
            let user = p.non_empty("user").map(str::to_string);
            let known = user
                .as_deref()
                .is_some_and(|u| sandbox.state().users.contains_key(u));
            match user {
                Some(u) if known => approve(&sandbox, &req, &u),
                _ => error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Choose an account",
                ),
            }
        }
        _ => deny(&req),
    }
}

fn pct_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Client authentication: HTTP Basic or form fields.
fn client_auth(st: &SandboxState, headers: &HeaderMap, p: &Params) -> Result<String, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(id, secret)| (pct_decode(id), pct_decode(secret)))
        });
    let (id, secret) = match basic {
        Some(pair) => (pair.0, Some(pair.1)),
        None => match p.non_empty("client_id") {
            Some(id) => (id.to_string(), p.get("client_secret").map(str::to_string)),
            None => {
                return Err(OAuthError::invalid_request(
                    "Could not determine client ID from request.",
                ))
            }
        },
    };
    let client = st.clients.get(&id).ok_or_else(OAuthError::invalid_client)?;
    // Google answers a deleted or disabled client so (RFC 6749 5.2 bodies, 401) whatever the
    // secret.
    match client.status {
        ClientStatus::Enabled => {}
        ClientStatus::Deleted => {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "deleted_client",
                "The OAuth client was deleted.",
            ))
        }
        ClientStatus::Disabled => {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "disabled_client",
                "The OAuth client was disabled.",
            ))
        }
    }
    if secret.as_deref() != Some(client.client_secret.as_str()) {
        return Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unauthorized",
        ));
    }
    Ok(id)
}

fn pkce_ok(challenge: &(String, String), verifier: &str) -> bool {
    let (expected, method) = challenge;
    if method == "S256" {
        let digest = Sha256::digest(verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == *expected
    } else {
        verifier == expected
    }
}

/// The ID token Google issues with an `openid` grant: `sub` always; `email` and
/// `email_verified` only with the `email` scope; the name and picture only with `profile`;
/// `hd` for a Workspace (non-Gmail) account.
fn id_token(
    sandbox: &Sandbox,
    st: &SandboxState,
    user: &str,
    client_id: &str,
    scopes: &BTreeSet<String>,
    nonce: Option<&str>,
) -> Option<String> {
    let u = st.users.get(user)?;
    let now = sandbox.now().as_second();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut claims = json!({
        "iss": "https://accounts.google.com",
        "azp": client_id,
        "aud": client_id,
        "sub": u.sub,
        "iat": now,
        "exp": now + 3600,
    });
    if scopes.contains(&format!("{}userinfo.email", scopes::PREFIX)) {
        claims["email"] = json!(u.email);
        claims["email_verified"] = json!(u.email_verified);
        if let Some(domain) = crate::state::hosted_domain(&u.email) {
            claims["hd"] = json!(domain);
        }
    }
    if scopes.contains(&format!("{}userinfo.profile", scopes::PREFIX)) {
        let (g, f) = split_name(&u.name);
        claims["name"] = json!(u.name);
        claims["given_name"] = json!(g);
        claims["family_name"] = json!(f);
        claims["picture"] = json!(PICTURE);
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let header = json!({"alg": "RS256", "kid": "google-sandbox", "typ": "JWT"});
    Some(format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"google-sandbox-unsigned")
    ))
}

pub fn issue_access(
    sandbox: &Sandbox,
    st: &mut SandboxState,
    user: &str,
    client_id: &str,
    scopes: &BTreeSet<String>,
) -> (String, i64) {
    let ttl = st.access_token_ttl_secs;
    let now = sandbox.now();
    let token = format!("ya29.{}", ids::token(48));
    st.access_tokens.insert(
        token.clone(),
        AccessToken {
            user: user.to_string(),
            client_id: client_id.to_string(),
            scopes: scopes.clone(),
            expires_at: now
                .checked_add(SignedDuration::from_secs(ttl))
                .unwrap_or(now),
        },
    );
    (token, ttl)
}

/// `POST /token`.
async fn token(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::parse(&String::from_utf8_lossy(&body));
    match token_inner(&sandbox, &headers, &p) {
        Ok(v) => (
            [(
                header::CACHE_CONTROL,
                "no-cache, no-store, max-age=0, must-revalidate",
            )],
            Json(v),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn token_inner(sandbox: &Sandbox, headers: &HeaderMap, p: &Params) -> Result<Value, OAuthError> {
    let now = sandbox.now();
    let mut st = sandbox.state();
    let grant_type = p
        .non_empty("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("Required parameter is missing: grant_type"))?;
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant_type}"),
        ));
    }
    let client_id = client_auth(&st, headers, p)?;
    if grant_type == "refresh_token" {
        refresh_grant(sandbox, &mut st, p, &client_id)
    } else {
        code_grant(sandbox, &mut st, p, &client_id, now)
    }
}

/// `grant_type=refresh_token`: a new access token for the grant, for all its scopes or the
/// subset asked for.
fn refresh_grant(
    sandbox: &Sandbox,
    st: &mut SandboxState,
    p: &Params,
    client_id: &str,
) -> Result<Value, OAuthError> {
    let rt = p
        .non_empty("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let stored = st
        .refresh_tokens
        .get(rt)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("Token has been expired or revoked."))?;
    if stored.client_id != client_id {
        // Google: a refresh token presented by another client than the one it was issued to.
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "Unauthorized",
        ));
    }
    let mut scopes = stored.scopes.clone();
    if let Some(requested) = p.non_empty("scope") {
        let wanted: BTreeSet<String> = requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(scopes::normalize)
            .collect();
        if !wanted.is_subset(&stored.scopes) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "Some requested scopes were invalid.",
            ));
        }
        scopes = wanted;
    }
    let mut v = access_answer(sandbox, st, &stored.user, client_id, &scopes);
    if scopes.contains("openid") {
        if let Some(id) = id_token(sandbox, st, &stored.user, client_id, &scopes, None) {
            v["id_token"] = json!(id);
        }
    }
    Ok(v)
}

/// `grant_type=authorization_code`: the code (once, unexpired, for this client and redirect
/// URI, with its PKCE verifier) for an access token, a refresh token if offline access was
/// asked for, and an ID token with `openid`.
fn code_grant(
    sandbox: &Sandbox,
    st: &mut SandboxState,
    p: &Params,
    client_id: &str,
    now: Timestamp,
) -> Result<Value, OAuthError> {
    let code = p
        .non_empty("code")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    let stored = st
        .codes
        .remove(code)
        .ok_or_else(|| OAuthError::invalid_grant("Bad Request"))?;
    if stored.client_id != client_id || stored.expires_at <= now {
        return Err(OAuthError::invalid_grant("Bad Request"));
    }
    let redirect_uri = p
        .non_empty("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("Missing parameter: redirect_uri"))?;
    if redirect_uri != stored.redirect_uri {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        ));
    }
    if let Some(challenge) = &stored.code_challenge {
        let verifier = p
            .non_empty("code_verifier")
            .ok_or_else(|| OAuthError::invalid_grant("Missing code verifier."))?;
        if !pkce_ok(challenge, verifier) {
            return Err(OAuthError::invalid_grant("Invalid code verifier."));
        }
    }
    let mut v = access_answer(sandbox, st, &stored.user, client_id, &stored.scopes);
    if stored.offline {
        let refresh = format!("1//0{}", ids::token(48));
        st.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                user: stored.user.clone(),
                client_id: client_id.to_string(),
                scopes: stored.scopes.clone(),
            },
        );
        v["refresh_token"] = json!(refresh);
    }
    if stored.scopes.contains("openid") {
        let nonce = stored.nonce.as_deref();
        if let Some(id) = id_token(sandbox, st, &stored.user, client_id, &stored.scopes, nonce) {
            v["id_token"] = json!(id);
        }
    }
    Ok(v)
}

/// A new access token for `user`'s grant of `scopes`, as the token endpoint answers it.
fn access_answer(
    sandbox: &Sandbox,
    st: &mut SandboxState,
    user: &str,
    client_id: &str,
    scopes: &BTreeSet<String>,
) -> Value {
    let (access, ttl) = issue_access(sandbox, st, user, client_id, scopes);
    json!({
        "access_token": access,
        "expires_in": ttl,
        "scope": scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "token_type": "Bearer",
    })
}

/// Revokes the grant of `user` (for one client, or all clients).
pub fn revoke_user(st: &mut SandboxState, user: &str, client_id: Option<&str>) {
    let hit = |u: &str, c: &str| u == user && client_id.is_none_or(|id| id == c);
    st.access_tokens.retain(|_, t| !hit(&t.user, &t.client_id));
    st.refresh_tokens.retain(|_, t| !hit(&t.user, &t.client_id));
    st.grants.retain(|(u, c), _| !hit(u, c));
}

/// `POST /revoke`: `token` = access or refresh token; revokes the whole grant.
async fn revoke(State(sandbox): State<Sandbox>, q: Params, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let token = form
        .non_empty("token")
        .or_else(|| q.non_empty("token"))
        .map(str::to_string);
    let mut st = sandbox.state();
    let owner = token.as_deref().and_then(|t| {
        st.access_tokens
            .get(t)
            .map(|a| (a.user.clone(), a.client_id.clone()))
            .or_else(|| {
                st.refresh_tokens
                    .get(t)
                    .map(|r| (r.user.clone(), r.client_id.clone()))
            })
    });
    match owner {
        Some((user, client)) => {
            revoke_user(&mut st, &user, Some(&client));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response()
        }
        None => OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        )
        .into_response(),
    }
}

fn split_name(name: &str) -> (String, String) {
    match name.split_once(' ') {
        Some((g, f)) => (g.to_string(), f.to_string()),
        None => (name.to_string(), String::new()),
    }
}

const PICTURE: &str = "https://lh3.googleusercontent.com/a/default-user=s96-c";

/// `GET /oauth2/v2/userinfo` (oauth2.v2 `Userinfo`).
async fn userinfo_v2(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let caller =
        match crate::auth::authorize(&sandbox, &headers, Surface::UserInfo, scopes::USERINFO) {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
    let st = sandbox.state();
    let Some(u) = st.users.get(&caller.user) else {
        return crate::errors::ApiError::not_found(Surface::UserInfo).into_response();
    };
    let mut v = json!({"id": u.sub, "picture": PICTURE});
    if caller
        .scopes
        .contains(&format!("{}userinfo.email", scopes::PREFIX))
    {
        v["email"] = json!(u.email);
        v["verified_email"] = json!(u.email_verified);
    }
    if caller
        .scopes
        .contains(&format!("{}userinfo.profile", scopes::PREFIX))
    {
        let (g, f) = split_name(&u.name);
        v["name"] = json!(u.name);
        v["given_name"] = json!(g);
        v["family_name"] = json!(f);
    }
    Json(v).into_response()
}

/// `GET /v1/userinfo` (OpenID Connect userinfo).
async fn userinfo_oidc(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let caller =
        match crate::auth::authorize(&sandbox, &headers, Surface::UserInfo, scopes::USERINFO) {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
    let st = sandbox.state();
    let Some(u) = st.users.get(&caller.user) else {
        return crate::errors::ApiError::not_found(Surface::UserInfo).into_response();
    };
    let mut v = json!({"sub": u.sub, "picture": PICTURE});
    if caller
        .scopes
        .contains(&format!("{}userinfo.email", scopes::PREFIX))
    {
        v["email"] = json!(u.email);
        v["email_verified"] = json!(u.email_verified);
    }
    if caller
        .scopes
        .contains(&format!("{}userinfo.profile", scopes::PREFIX))
    {
        let (g, f) = split_name(&u.name);
        v["name"] = json!(u.name);
        v["given_name"] = json!(g);
        v["family_name"] = json!(f);
    }
    Json(v).into_response()
}

/// `POST /oauth2/v2/tokeninfo?access_token=…` (oauth2.v2 `Tokeninfo`).
async fn tokeninfo(State(sandbox): State<Sandbox>, q: Params, body: Bytes) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let token = q
        .non_empty("access_token")
        .or_else(|| form.non_empty("access_token"))
        .map(str::to_string);
    let now = sandbox.now();
    let st = sandbox.state();
    let found = token
        .as_deref()
        .and_then(|t| st.access_tokens.get(t))
        .filter(|t| t.expires_at > now);
    let Some(t) = found else {
        return OAuthError::new(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value")
            .into_response();
    };
    let Some(u) = st.users.get(&t.user) else {
        return OAuthError::new(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value")
            .into_response();
    };
    let mut v = json!({
        "issued_to": t.client_id,
        "audience": t.client_id,
        "user_id": u.sub,
        "scope": t.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "expires_in": t.expires_at.duration_since(now).as_secs(),
    });
    if t.scopes
        .contains(&format!("{}userinfo.email", scopes::PREFIX))
    {
        v["email"] = json!(u.email);
        v["verified_email"] = json!(u.email_verified);
    }
    Json(v).into_response()
}
