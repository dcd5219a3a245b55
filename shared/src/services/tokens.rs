//! The token lifecycle: a valid access token for an account, refreshed at most once at a time
//! per account by one [`App`] ([`RefreshLocks`]: a Lambda instance, or the local server) and
//! cached (sealed) in the store for every other instance;
//! permanent OAuth errors move the account to `needs_reauth` and tell the CRM; transient ones
//! are retried with backoff.

use crate::app::App;
use crate::crypto::TokenCipher;
use crate::domain::{Account, AccountEvent, AccountId, AccountStatus, TenantId, UserId};
use crate::google::oauth::{is_client_error, OAuthClient};
use crate::google::retry::{with_retry, RetryPolicy};
use crate::google::GoogleError;
use crate::http::ApiError;
use crate::store::repo::Versioned;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A cached token is used while it has at least this much life left.
const MIN_REMAINING: time::Duration = time::Duration::minutes(5);
/// Attempts for a transient refresh failure.
const REFRESH_ATTEMPTS: u32 = 3;

pub struct AccessToken {
    pub token: SecretString,
    pub expires_at: OffsetDateTime,
    pub account: Account,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no connected Google account for this user")]
    NotConnected,
    #[error("the Google account must be reconnected ({0})")]
    NeedsReauth(String),
    /// Google refuses the tenant's OAuth client itself (`invalid_client`, …): the admin
    /// fixes it; the account is untouched.
    #[error("Google refused the tenant's OAuth client ({0}); the tenant's admin must fix it")]
    ClientRefused(String),
    #[error(transparent)]
    Google(GoogleError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotConnected => {
                ApiError::conflict("not_connected", "the user has no connected Google account")
            }
            TokenError::NeedsReauth(reason) => ApiError::conflict(
                "needs_reauth",
                format!("Google refused the grant ({reason}); the user must reconnect"),
            ),
            TokenError::ClientRefused(error) => super::oauth_client_settings::refused_error(&error),
            TokenError::Google(e) => google_error(e),
            TokenError::Api(e) => e,
        }
    }
}

/// A Google failure as the CRM sees it.
pub fn google_error(e: GoogleError) -> ApiError {
    match e {
        GoogleError::Reauth(reason) => ApiError::conflict(
            "needs_reauth",
            format!("Google refused the grant ({reason}); the user must reconnect"),
        ),
        GoogleError::Transient(_) | GoogleError::Paced(_) => ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "google_unavailable",
            "Google is unavailable or rate limiting; retry later",
        ),
        GoogleError::Rejected { status, reason } => ApiError::new(
            http::StatusCode::BAD_GATEWAY,
            "google_error",
            format!("Google refused the request ({status} {reason})"),
        ),
        GoogleError::NotFound(_) => ApiError::new(
            http::StatusCode::NOT_FOUND,
            "google_not_found",
            "The Google resource does not exist or is not visible to this account",
        ),
        GoogleError::Conflict(_) | GoogleError::PreconditionFailed(_) => ApiError::conflict(
            "google_conflict",
            "The Google resource already exists or changed concurrently; retry after re-reading",
        ),
        GoogleError::Gone(_) => ApiError::conflict(
            "google_gone",
            "The Google resource or sync state is gone; a full resync is required",
        ),
    }
}

/// One lock per account whose token is being refreshed, so that concurrent requests of one
/// App refresh once and the others reuse the result. Held by the [`App`]; a lock is dropped
/// from the map once nobody waits on it.
#[derive(Debug, Default)]
pub struct RefreshLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl RefreshLocks {
    pub(crate) fn lock_for(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key).or_default().clone()
    }
}

async fn cipher(app: &App) -> Result<TokenCipher, ApiError> {
    TokenCipher::load(app.secrets.as_ref()).await.map_err(|e| {
        tracing::error!(error = %e, "token-encryption key unavailable");
        ApiError::internal(&e, true)
    })
}

fn cached(app: &App, cipher: &TokenCipher, a: &Account) -> Option<AccessToken> {
    let (Some(sealed), Some(exp)) = (&a.access_token_ciphertext, a.access_token_expires_at) else {
        return None;
    };
    if exp - app.clock.now() < MIN_REMAINING {
        return None;
    }
    let token = cipher.open(sealed, &a.tenant, &a.id).ok()?;
    Some(AccessToken {
        token,
        expires_at: exp,
        account: a.clone(),
    })
}

async fn load(app: &App, t: &TenantId, u: &UserId) -> Result<Versioned<Account>, TokenError> {
    let found = app
        .store
        .get_account(t, u)
        .await
        .map_err(ApiError::from)?
        .ok_or(TokenError::NotConnected)?;
    match found.value.status {
        AccountStatus::Active | AccountStatus::Paused => Ok(found),
        AccountStatus::NeedsReauth => Err(TokenError::NeedsReauth(
            found
                .value
                .reauth_reason
                .clone()
                .unwrap_or_else(|| "reconnect".into()),
        )),
        AccountStatus::Disconnected => Err(TokenError::NotConnected),
    }
}

/// A valid access token for the user's account.
pub async fn access_token(app: &App, t: &TenantId, u: &UserId) -> Result<AccessToken, TokenError> {
    let cipher = cipher(app).await?;
    if let Some(hit) = cached(app, &cipher, &load(app, t, u).await?.value) {
        return Ok(hit);
    }
    // One refresh at a time per account in this App; others wait and reuse its result.
    let lock = app.refresh_locks.lock_for(format!("{t}/{u}"));
    let _guard = lock.lock().await;
    let current = load(app, t, u).await?;
    if let Some(hit) = cached(app, &cipher, &current.value) {
        return Ok(hit);
    }
    let sealed = current
        .value
        .refresh_token_ciphertext
        .as_deref()
        .ok_or(TokenError::NotConnected)?;
    let id = &current.value.id;
    let (cipher, refresh_token) = open_refresh_token(app, cipher, sealed, t, id).await?;
    let tokens = refresh_grant(app, t, u, sealed, &refresh_token).await?;
    let grant = (sealed, &refresh_token);
    store_refreshed(app, &cipher, (t, u, id), grant, tokens).await
}

/// The account's refresh token, and the key set that opened it (loaded again if it was
/// sealed with a key added after this instance loaded the set).
async fn open_refresh_token(
    app: &App,
    cipher: TokenCipher,
    sealed: &str,
    t: &TenantId,
    id: &AccountId,
) -> Result<(TokenCipher, SecretString), TokenError> {
    match cipher.open(sealed, t, id) {
        Ok(token) => Ok((cipher, token)),
        Err(crate::crypto::CryptoError::UnknownKey(_)) => {
            let fresh = TokenCipher::reload(app.secrets.as_ref())
                .await
                .map_err(|e| ApiError::internal(&e, true))?;
            let token = fresh
                .open(sealed, t, id)
                .map_err(|e| ApiError::internal(&e, false))?;
            Ok((fresh, token))
        }
        Err(e) => Err(ApiError::internal(&e, false).into()),
    }
}

/// Refreshes at Google with the tenant's OAuth client. A refused client is told apart from
/// a refused grant: the first is the admin's to fix (the account keeps its status), the
/// second moves the account to `needs_reauth` (if `sealed` is still its grant).
async fn refresh_grant(
    app: &App,
    t: &TenantId,
    u: &UserId,
    sealed: &str,
    refresh_token: &SecretString,
) -> Result<crate::google::oauth::Tokens, TokenError> {
    let (client, was_refused) = match super::oauth_client_settings::tenant_client(app, t).await {
        Ok(found) => found,
        Err(e) if e.code == "google_client_invalid" => {
            return Err(TokenError::ClientRefused(e.message))
        }
        Err(e) => return Err(e.into()),
    };
    let redirect = app.config.oauth_callback_url();
    let policy = RetryPolicy::current().with_max_attempts(REFRESH_ATTEMPTS);
    let mut refreshed = refresh(app, &policy, &client, &redirect, refresh_token).await;
    if matches!(&refreshed, Err(GoogleError::Reauth(r)) if is_client_error(r)) {
        // The secret this process cached may be one the admin rotated away minutes ago:
        // read it again and try once more before blaming the client.
        let fresh = super::oauth_client_settings::fresh_oauth_client(app, t).await?;
        refreshed = refresh(app, &policy, &fresh, &redirect, refresh_token).await;
    }
    match refreshed {
        Ok(tokens) => {
            if was_refused {
                super::oauth_client_settings::client_accepted(app, t).await;
            }
            Ok(tokens)
        }
        Err(GoogleError::Reauth(reason)) if is_client_error(&reason) => {
            // The tenant's client, not this user's grant: the account keeps its status.
            super::oauth_client_settings::client_refused(app, t, &reason).await;
            Err(TokenError::ClientRefused(reason))
        }
        Err(GoogleError::Reauth(reason)) => {
            // Only if the refresh token that failed is still the stored one: a reconnect
            // that stored a new grant meanwhile wins.
            mark_needs_reauth_if_held(app, t, u, &reason, Some(sealed)).await?;
            Err(TokenError::NeedsReauth(reason))
        }
        Err(e) => Err(TokenError::Google(e)),
    }
}

/// Seals and stores on the account what a refresh of the grant (`sealed`, `refresh_token`
/// opened) gave.
async fn store_refreshed(
    app: &App,
    cipher: &TokenCipher,
    (t, u, id): (&TenantId, &UserId, &AccountId),
    (sealed, refresh_token): (&str, &SecretString),
    tokens: crate::google::oauth::Tokens,
) -> Result<AccessToken, TokenError> {
    let access_sealed = cipher
        .seal(&tokens.access_token, t, id)
        .map_err(|e| ApiError::internal(&e, false))?;
    // A new refresh token from Google, or the stored one sealed with a key that is no longer
    // the current one: sealed with the current key, so old keys can be retired.
    let resealed = !cipher.is_current(sealed);
    let refresh_sealed = match (&tokens.refresh_token, resealed) {
        (Some(r), _) => Some(r),
        (None, true) => Some(refresh_token),
        (None, false) => None,
    }
    .map(|r| cipher.seal(r, t, id))
    .transpose()
    .map_err(|e| ApiError::internal(&e, false))?;
    if resealed {
        app.metrics.count("TokensResealed", &[], 1);
    }
    let expires_at = tokens.expires_at;
    let account = app
        .store
        .update_account(t, u, app.clock.now(), |a| {
            // Only over the grant this refresh used: a reconnect meanwhile (perhaps of another
            // Google account) stored a newer one, whose tokens stay untouched.
            if a.refresh_token_ciphertext.as_deref() != Some(sealed) {
                return;
            }
            a.access_token_ciphertext = Some(access_sealed.clone());
            a.access_token_expires_at = Some(expires_at);
            if let Some(r) = &refresh_sealed {
                a.refresh_token_ciphertext = Some(r.clone());
            }
        })
        .await
        .map_err(ApiError::from)?;
    Ok(AccessToken {
        token: tokens.access_token,
        expires_at,
        account,
    })
}

/// One refresh, with the retry policy for transient failures.
async fn refresh(
    app: &App,
    policy: &RetryPolicy,
    client: &OAuthClient,
    redirect: &str,
    refresh_token: &SecretString,
) -> Result<crate::google::oauth::Tokens, GoogleError> {
    with_retry(policy, || {
        app.google
            .refresh(client, redirect, refresh_token, app.clock.now())
    })
    .await
}

/// Calls Google with the account's access token. A token Google refuses (401: revoked
/// with the grant, or expired early) is dropped and the call made once more with a fresh
/// one, so a dead grant is found at once (`NeedsReauth`, the account marked) instead of
/// answering Google's 401 as if it were about the request.
pub async fn with_access_token<T, F, Fut>(
    app: &App,
    t: &TenantId,
    u: &UserId,
    call: F,
) -> Result<Result<T, GoogleError>, TokenError>
where
    F: Fn(SecretString) -> Fut,
    Fut: std::future::Future<Output = Result<T, GoogleError>>,
{
    let own = |token: &SecretString| SecretString::from(token.expose_secret());
    let token = access_token(app, t, u).await?;
    match call(own(&token.token)).await {
        Err(e) if e.is_unauthorized() => {
            forget_access_token(app, t, u, &token.token).await?;
            let token = access_token(app, t, u).await?;
            Ok(call(own(&token.token)).await)
        }
        answered => Ok(answered),
    }
}

/// Forgets the account's cached access token after Google refused it (401): the next job
/// refreshes it, and finds out whether the grant itself is gone. The token is kept if it was
/// replaced meanwhile (a refresh or a reconnect).
pub async fn forget_access_token(
    app: &App,
    t: &TenantId,
    u: &UserId,
    refused: &SecretString,
) -> Result<(), ApiError> {
    let cipher = cipher(app).await?;
    app.store
        .update_account(t, u, app.clock.now(), |a| {
            let same = a
                .access_token_ciphertext
                .as_deref()
                .and_then(|sealed| cipher.open(sealed, &a.tenant, &a.id).ok())
                .is_some_and(|held| held.expose_secret() == refused.expose_secret());
            if same {
                a.access_token_ciphertext = None;
                a.access_token_expires_at = None;
            }
        })
        .await?;
    Ok(())
}

/// Moves the account to `needs_reauth` (once) and tells the CRM through the change feed.
pub async fn mark_needs_reauth(
    app: &App,
    t: &TenantId,
    u: &UserId,
    reason: &str,
) -> Result<(), ApiError> {
    mark_needs_reauth_if_held(app, t, u, reason, None).await
}

/// [`mark_needs_reauth`], only while the account still holds the refresh token `failed`
/// (its ciphertext) when one is given: a worker whose refresh failed with the old grant
/// while the user reconnected does not undo the reconnection (review finding 10).
async fn mark_needs_reauth_if_held(
    app: &App,
    t: &TenantId,
    u: &UserId,
    reason: &str,
    failed: Option<&str>,
) -> Result<(), ApiError> {
    let mut changed = false;
    let account = app.store.try_update_account(t, u, app.clock.now(), |a| -> Result<(), ApiError> {
        changed = false;
        if a.status == AccountStatus::NeedsReauth || a.status == AccountStatus::Disconnected {
            return Ok(());
        }
        if failed.is_some_and(|f| a.refresh_token_ciphertext.as_deref() != Some(f)) {
            tracing::info!(tenant = %a.tenant, user = %a.user, "the refused grant was replaced meanwhile; the account stays as it is");
            return Ok(());
        }
        a.status = a
            .status
            .on(AccountEvent::PermanentAuthError)
            .map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
        a.reauth_reason = Some(reason.to_owned());
        a.last_error = Some(format!("Google refused the grant: {reason}"));
        a.access_token_ciphertext = None;
        a.access_token_expires_at = None;
        changed = true;
        Ok(())
    })
    .await?;
    if changed {
        tracing::warn!(tenant = %t, user = %u, reason, "account needs reauthorization");
        app.metrics.count("AccountsNeedsReauth", &[], 1);
        super::feed::account_status(app, &account, Some(reason)).await?;
        // The grant is gone, so Google cannot be asked to stop the channels: they are marked
        // stopped here (their notifications are then refused) and expire at Google.
        crate::calendar::channels::stop_all(app, t, u, None).await?;
    }
    Ok(())
}
