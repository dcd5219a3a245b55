//! Bearer-token authentication and scope enforcement for the API surfaces.

use std::collections::BTreeSet;

use axum::http::{header, HeaderMap, StatusCode};

use crate::errors::{ApiError, Surface};
use crate::Sandbox;

/// The caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub scopes: BTreeSet<String>,
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

const WWW_AUTH: &str = "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"";

fn missing(surface: Surface) -> ApiError {
    match surface {
        Surface::People => ApiError::new(
            surface,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .with_info("CREDENTIALS_MISSING"),
        _ => ApiError::new(
            surface,
            StatusCode::UNAUTHORIZED,
            "required",
            "Login Required.",
        )
        .with_location("header", "Authorization"),
    }
    .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"https://accounts.google.com/\"".to_string())
}

fn invalid(surface: Surface, expired: bool) -> ApiError {
    match surface {
        Surface::People => ApiError::new(
            surface,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .with_info(if expired { "ACCESS_TOKEN_EXPIRED" } else { "ACCESS_TOKEN_TYPE_UNSUPPORTED" }),
        _ => ApiError::new(
            surface,
            StatusCode::UNAUTHORIZED,
            "authError",
            "Invalid Credentials",
        )
        .with_location("header", "Authorization"),
    }
    .with_header(header::WWW_AUTHENTICATE, WWW_AUTH.to_string())
}

fn insufficient(surface: Surface) -> ApiError {
    let err = ApiError::new(
        surface,
        StatusCode::FORBIDDEN,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\"".to_string(),
    );
    match surface {
        Surface::People => err.with_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT"),
        _ => err,
    }
}

/// Resolves the bearer token and checks that it carries one of `accepted` scopes.
pub fn authorize(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    surface: Surface,
    accepted: &[&str],
) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or_else(|| missing(surface))?;
    let now = sandbox.now();
    let st = sandbox.state();
    let t = st
        .access_tokens
        .get(token)
        .ok_or_else(|| invalid(surface, false))?;
    if t.expires_at <= now {
        return Err(invalid(surface, true));
    }
    if !st.users.contains_key(&t.user) {
        return Err(invalid(surface, false));
    }
    if !crate::scopes::allows(t.scopes.iter(), accepted) {
        return Err(insufficient(surface));
    }
    Ok(Caller {
        user: t.user.clone(),
        scopes: t.scopes.clone(),
    })
}
