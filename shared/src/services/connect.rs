//! Connecting a CRM user's Google account: the authorization link (state + PKCE, stored
//! server-side for ten minutes, single use) and the callback that completes it.

use super::validate::{email, return_url_allowed, web_url};
use crate::app::App;
use crate::crypto::{random_token, TokenCipher};
use crate::domain::{
    Account, AccountEvent, AccountId, AccountSettings, AccountStatus, OAuthSession, Product,
    Products, TenantId, TenantSettings, UserId,
};
use crate::google::api::Identity;
use crate::google::oauth::{
    granted_products, id_token_identity, is_client_error, same_google_email, scopes_for,
    OAuthClient, Tokens,
};
use crate::google::GoogleError;
use crate::http::ApiError;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a connect link stays valid.
pub const SESSION_TTL: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    pub products: Products,
    #[serde(default)]
    pub return_url: Option<String>,
    /// The e-mail of the Google account to connect. Sent to Google as `login_hint` (the
    /// account chooser preselects it) and enforced at the callback: a different account that
    /// consents is refused (`wrong_google_account`), so a link forwarded to a colleague cannot
    /// connect the colleague's account under this CRM user.
    #[serde(default)]
    pub login_hint: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectLink {
    pub authorization_url: String,
    pub expires_at: String,
}

/// A CRM return URL as the tenant allows it: an https (or loopback http) URL under one of the
/// tenant's allowed return URLs (no open redirect). Connect links and settings links check
/// theirs with it.
pub fn allowed_return_url(settings: &TenantSettings, value: &str) -> Result<String, ApiError> {
    let url = web_url("return_url", value)?;
    if !return_url_allowed(&settings.allowed_return_urls, &url) {
        return Err(ApiError::invalid(
            "return_url is not among the tenant's allowed return URLs (admin settings)",
        ));
    }
    Ok(url.to_string())
}

/// Starts a connection: validates the request against the tenant's policies and returns the
/// Google authorization URL.
pub async fn start(
    app: &App,
    t: &TenantId,
    u: &UserId,
    req: ConnectRequest,
) -> Result<ConnectLink, ApiError> {
    begin(app, t, u, req, None).await
}

/// [`start`] for this deployment's own settings page: the callback sends the browser back to
/// `own_page` (a URL of this deployment, not a CRM's, so not on the tenant's allow-list)
/// with the outcome in its query, as it would a CRM's return URL.
pub async fn start_from_page(
    app: &App,
    t: &TenantId,
    u: &UserId,
    products: Products,
    login_hint: Option<String>,
    own_page: String,
) -> Result<ConnectLink, ApiError> {
    let ours = own_page
        .strip_prefix(app.config.public_base_url.as_str())
        .is_some_and(|rest| rest.starts_with('/'));
    if !ours {
        return Err(ApiError::invalid(
            "the settings page returns to this deployment only",
        ));
    }
    let req = ConnectRequest {
        products,
        return_url: None,
        login_hint,
    };
    begin(app, t, u, req, Some(own_page)).await
}

async fn begin(
    app: &App,
    t: &TenantId,
    u: &UserId,
    req: ConnectRequest,
    own_page: Option<String>,
) -> Result<ConnectLink, ApiError> {
    if req.products.is_empty() {
        return Err(ApiError::invalid(
            "products: choose at least one of calendar, contacts, gmail",
        ));
    }
    let tenant = super::tenants::get(app, t).await?;
    if !req.products.is_subset_of(&tenant.settings.products_allowed) {
        return Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "product_not_allowed",
            "the tenant's admin does not allow one of these products",
        ));
    }
    let return_url = match (&req.return_url, own_page) {
        (_, Some(page)) => Some(page),
        (Some(u), None) => Some(allowed_return_url(&tenant.settings, u)?),
        (None, None) => None,
    };
    let login_hint = req
        .login_hint
        .as_deref()
        .map(|h| email("login_hint", h))
        .transpose()?;
    let client = super::oauth_client_settings::oauth_client(app, t).await?;
    let state = random_token(32);
    let auth = app
        .google
        .authorization(
            &client,
            &app.config.oauth_callback_url(),
            &state,
            &scopes_for(&req.products),
            login_hint.as_deref(),
        )
        .map_err(super::tokens::google_error)?;
    let expires_at = app.clock.now() + SESSION_TTL;
    let session = OAuthSession {
        state,
        tenant: t.clone(),
        user: u.clone(),
        products: req.products,
        return_url,
        expected_email: login_hint,
        pkce_verifier: auth.pkce_verifier,
        expires_at,
    };
    app.store.create_oauth_session(&session).await?;
    tracing::info!(tenant = %t, user = %u, "connect link issued");
    Ok(ConnectLink {
        authorization_url: auth.url,
        expires_at: expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

/// What Google sends back to the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub scope: Option<String>,
}

/// How a callback ended, for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected; `missing` lists products the user did not grant.
    Connected {
        missing: Vec<Product>,
    },
    Denied,
    Failed(ConnectError),
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Connected { missing } if missing.is_empty() => "connected",
            Outcome::Connected { .. } => "partial",
            Outcome::Denied => "denied",
            Outcome::Failed(_) => "error",
        }
    }
}

/// Why a callback did not connect the account. Its [`code`](Self::code) is the CRM's
/// contract: the `error=` of the return URL, and the code the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The consenting Google account is not the one the link is for (its `login_hint`), or
    /// not the one the user has connected.
    #[error("not the Google account this link is for")]
    WrongAccount,
    /// Google has not verified the account's e-mail address.
    #[error("Google has not verified the account's e-mail address")]
    EmailNotVerified,
    /// The Google account is already connected to another CRM user of the tenant.
    #[error("the Google account is connected to another CRM user")]
    AccountInUse,
    /// Google refused the tenant's OAuth client (now, or recently enough not to ask again).
    #[error("Google refused the tenant's OAuth client")]
    GoogleClientInvalid,
    /// The tenant's admin has not set a Google OAuth client.
    #[error("the tenant has no Google OAuth client")]
    GoogleClientMissing,
    /// The session's tenant is gone.
    #[error("tenant not found")]
    TenantNotFound,
    /// The user granted none of the products asked for.
    #[error("none of the products' scopes were granted")]
    InsufficientScopes,
    /// Who consented could not be read (ID token or userinfo).
    #[error("the Google identity could not be read")]
    IdentityUnavailable,
    /// A failure of ours (the store, the token key) or a race lost too often: try again.
    #[error("temporarily unavailable")]
    TemporarilyUnavailable,
    /// A backing service of ours is unavailable (reading the tenant's OAuth client).
    #[error("a backing service is unavailable")]
    Unavailable,
    /// An internal failure reading the tenant's OAuth client.
    #[error("internal error")]
    Internal,
    /// Google's callback carried an error other than the user's refusal.
    #[error("Google returned an error")]
    GoogleError,
    /// Google's callback carried neither a code nor an error.
    #[error("the callback has no code")]
    MissingCode,
    /// Google refused the code exchange (not the client).
    #[error("the code exchange failed")]
    TokenExchangeFailed,
    /// Google sent no refresh token and there is none to keep.
    #[error("Google sent no refresh token")]
    NoRefreshToken,
    /// The account's status does not allow connecting it.
    #[error("the account cannot be connected in its state")]
    InvalidState,
}

impl ConnectError {
    /// Every error, for [`from_code`](Self::from_code) and the tests.
    pub const ALL: [ConnectError; 16] = [
        Self::WrongAccount,
        Self::EmailNotVerified,
        Self::AccountInUse,
        Self::GoogleClientInvalid,
        Self::GoogleClientMissing,
        Self::TenantNotFound,
        Self::InsufficientScopes,
        Self::IdentityUnavailable,
        Self::TemporarilyUnavailable,
        Self::Unavailable,
        Self::Internal,
        Self::GoogleError,
        Self::MissingCode,
        Self::TokenExchangeFailed,
        Self::NoRefreshToken,
        Self::InvalidState,
    ];

    /// The wire code (the return URL's `error=`, the page's code).
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongAccount => "wrong_google_account",
            Self::EmailNotVerified => "email_not_verified",
            Self::AccountInUse => "google_account_in_use",
            Self::GoogleClientInvalid => "google_client_invalid",
            Self::GoogleClientMissing => "google_client_missing",
            Self::TenantNotFound => "not_found",
            Self::InsufficientScopes => "insufficient_scopes",
            Self::IdentityUnavailable => "identity_unavailable",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::GoogleError => "google_error",
            Self::MissingCode => "missing_code",
            Self::TokenExchangeFailed => "token_exchange_failed",
            Self::NoRefreshToken => "no_refresh_token",
            Self::InvalidState => "invalid_state",
        }
    }

    /// The error whose [`code`](Self::code) this is (a return URL's `error=` read back).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    /// Why the tenant's OAuth client could not be had ([`tenant_client`]'s refusal, by its
    /// code; any other is internal: a store or secrets failure).
    ///
    /// [`tenant_client`]: super::oauth_client_settings::tenant_client
    fn of_client(e: ApiError) -> Self {
        match e.code {
            "google_client_invalid" => Self::GoogleClientInvalid,
            "google_client_missing" => Self::GoogleClientMissing,
            "not_found" => Self::TenantNotFound,
            "unavailable" => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// The end of a callback: where to send the browser (the CRM's return URL), or a page.
#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub user: Option<UserId>,
    pub redirect: Option<String>,
}

/// A callback that cannot be tied to a session (unknown, reused or expired `state`).
#[derive(Debug, thiserror::Error)]
#[error("this sign-in link has expired or was already used; start again from the CRM")]
pub struct InvalidState;

fn redirect_to(return_url: &str, user: &UserId, outcome: &Outcome) -> Option<String> {
    let mut url = url::Url::parse(return_url).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("google_connect", outcome.code());
        q.append_pair("user", user.as_str());
        match outcome {
            Outcome::Connected { missing } if !missing.is_empty() => {
                let names: Vec<&str> = missing
                    .iter()
                    .map(|p| match p {
                        Product::Calendar => "calendar",
                        Product::Contacts => "contacts",
                        Product::Gmail => "gmail",
                    })
                    .collect();
                q.append_pair("missing", &names.join(","));
            }
            Outcome::Failed(reason) => {
                q.append_pair("error", reason.code());
            }
            _ => {}
        }
    }
    Some(url.to_string())
}

/// Completes a connection. A session is consumed by its first use, whatever the outcome.
pub async fn finish(app: &App, params: CallbackParams) -> Result<Finished, InvalidState> {
    let state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or(InvalidState)?;
    let session = match app.store.take_oauth_session(state).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(InvalidState),
        Err(e) => {
            tracing::error!(error = %e, "reading the OAuth session failed");
            return Ok(Finished {
                outcome: Outcome::Failed(ConnectError::TemporarilyUnavailable),
                user: None,
                redirect: None,
            });
        }
    };
    let outcome = match (&params.error, &params.code) {
        (Some(e), _) if e == "access_denied" => Outcome::Denied,
        (Some(_), _) => Outcome::Failed(ConnectError::GoogleError),
        (None, Some(code)) if !code.is_empty() => complete(app, &session, code)
            .await
            .unwrap_or_else(Outcome::Failed),
        (None, _) => Outcome::Failed(ConnectError::MissingCode),
    };
    tracing::info!(tenant = %session.tenant, user = %session.user, outcome = outcome.code(), "connect finished");
    Ok(Finished {
        redirect: session
            .return_url
            .as_deref()
            .and_then(|r| redirect_to(r, &session.user, &outcome)),
        user: Some(session.user),
        outcome,
    })
}

async fn complete(app: &App, session: &OAuthSession, code: &str) -> Result<Outcome, ConnectError> {
    let (t, u) = (&session.tenant, &session.user);
    let (client, tokens) = exchange(app, session, code).await?;
    let granted: Vec<String> = tokens.scopes.clone().unwrap_or_else(|| {
        scopes_for(&session.products)
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let products = granted_products(&session.products, &granted);
    if products.is_empty() {
        return Ok(Outcome::Failed(ConnectError::InsufficientScopes));
    }
    let missing: Vec<Product> = session
        .products
        .iter()
        .filter(|p| !products.contains(*p))
        .collect();
    let identity = identity_of(app, &client, &tokens).await.map_err(|e| {
        tracing::warn!(tenant = %t, user = %u, error = e, "reading the Google identity failed");
        ConnectError::IdentityUnavailable
    })?;
    if let Some(refused) = refusal(app, session, &identity).await? {
        tracing::warn!(tenant = %t, user = %u, refused = refused.code(), "connect refused: not the Google account this link is for");
        discard_grant(app, t, &identity, &tokens).await;
        return Ok(Outcome::Failed(refused));
    }
    let cipher = TokenCipher::load(app.secrets.as_ref()).await.map_err(|e| {
        tracing::error!(error = %e, "token-encryption key unavailable");
        ConnectError::TemporarilyUnavailable
    })?;
    let grant = Grant {
        identity,
        tokens,
        products,
        granted,
        cipher,
    };
    for _ in 0..5 {
        match save_grant(app, session, &grant).await? {
            Saved::Connected => return Ok(Outcome::Connected { missing }),
            Saved::Refused(code) => return Ok(Outcome::Failed(code)),
            Saved::Raced => continue,
        }
    }
    Err(ConnectError::TemporarilyUnavailable)
}

/// Exchanges the code for tokens with the tenant's OAuth client (a client Google refused
/// before and now accepts is cleared; one it refuses is recorded).
async fn exchange(
    app: &App,
    session: &OAuthSession,
    code: &str,
) -> Result<(OAuthClient, Tokens), ConnectError> {
    let (t, u) = (&session.tenant, &session.user);
    let (client, was_refused) = super::oauth_client_settings::tenant_client(app, t)
        .await
        .map_err(ConnectError::of_client)?;
    let callback = app.config.oauth_callback_url();
    let exchanged = app.google.exchange_code(
        &client,
        &callback,
        code,
        &session.pkce_verifier,
        app.clock.now(),
    );
    match exchanged.await {
        Ok(tokens) => {
            if was_refused {
                super::oauth_client_settings::client_accepted(app, t).await;
            }
            Ok((client, tokens))
        }
        Err(GoogleError::Reauth(reason)) if is_client_error(&reason) => {
            tracing::warn!(tenant = %t, user = %u, reason, "Google refused the tenant's OAuth client at the code exchange");
            super::oauth_client_settings::client_refused(app, t, &reason).await;
            Err(ConnectError::GoogleClientInvalid)
        }
        Err(e) => {
            tracing::warn!(tenant = %t, user = %u, error = %e, "code exchange failed");
            Err(ConnectError::TokenExchangeFailed)
        }
    }
}

/// What the user granted at the consent screen, checked and ready to store.
struct Grant {
    identity: Identity,
    tokens: Tokens,
    products: Products,
    granted: Vec<String>,
    cipher: TokenCipher,
}

/// How writing a grant on the account went.
enum Saved {
    Connected,
    /// Refused, with why.
    Refused(ConnectError),
    /// The account changed meanwhile: try again.
    Raced,
}

/// Writes the grant on the user's account (made if new).
async fn save_grant(
    app: &App,
    session: &OAuthSession,
    grant: &Grant,
) -> Result<Saved, ConnectError> {
    let (t, u) = (&session.tenant, &session.user);
    let existing = app.store.get_account(t, u).await.map_err(unavailable)?;
    let (mut account, version) = match existing {
        Some(found) => (found.value, Some(found.version)),
        None => (new_account(app, t, u).await?, None),
    };
    let other_google_account = account
        .google_subject
        .as_deref()
        .is_some_and(|s| s != grant.identity.sub);
    if other_google_account && account.status != AccountStatus::Disconnected {
        // A connected user (active, paused or needing reauthorization) reconnects only the
        // Google account they have; another one needs a disconnect first.
        tracing::warn!(tenant = %t, user = %u, "connect refused: another Google account is connected for this user");
        discard_grant(app, t, &grant.identity, &grant.tokens).await;
        return Ok(Saved::Refused(ConnectError::WrongAccount));
    }
    if other_google_account {
        // A disconnected user connects a different Google account: the previous account's
        // pairs and cursors go first, while the account is still disconnected (no job syncs
        // it), so a purge that fails halfway is simply done again by the retry, which still
        // sees the other account's subject.
        let purged = app
            .store
            .purge_sync_state(t, u)
            .await
            .map_err(unavailable)?;
        tracing::info!(tenant = %t, user = %u, purged, "the previous Google account's sync state purged");
    }
    let refresh = match (&grant.tokens.refresh_token, other_google_account) {
        (Some(r), _) => grant.cipher.seal(r, t, &account.id).map_err(unavailable)?,
        // Google omits the refresh token when it already issued one; keep ours.
        (None, false) => account
            .refresh_token_ciphertext
            .clone()
            .ok_or(ConnectError::NoRefreshToken)?,
        (None, true) => return Ok(Saved::Refused(ConnectError::NoRefreshToken)),
    };
    connect_account(&mut account, grant, refresh, app.clock.now())?;
    match app.store.put_account(&account, version).await {
        Ok(_) => {
            connected(app, &account, version.is_some(), other_google_account).await;
            Ok(Saved::Connected)
        }
        Err(StoreError::ConditionFailed) => Ok(Saved::Raced),
        Err(_) => Err(ConnectError::TemporarilyUnavailable),
    }
}

/// A failure of ours (the store, the key) as the outcome's error.
fn unavailable<E>(_: E) -> ConnectError {
    ConnectError::TemporarilyUnavailable
}

/// A user's first account: disconnected, with the tenant's default direction and window.
async fn new_account(app: &App, t: &TenantId, u: &UserId) -> Result<Account, ConnectError> {
    let tenant = super::tenants::get(app, t).await.map_err(unavailable)?;
    let now = app.clock.now();
    let defaults = &tenant.settings.defaults;
    Ok(Account {
        id: AccountId::generate(),
        tenant: t.clone(),
        user: u.clone(),
        status: AccountStatus::Disconnected,
        google_email: None,
        google_subject: None,
        products: Products::default(),
        scopes: Vec::new(),
        refresh_token_ciphertext: None,
        access_token_ciphertext: None,
        access_token_expires_at: None,
        reauth_reason: None,
        settings: AccountSettings {
            direction: Some(defaults.direction),
            sync_since: Some(now - time::Duration::days(i64::from(defaults.sync_since_days))),
            ..AccountSettings::default()
        },
        created_at: now,
        updated_at: now,
        last_sync_at: None,
        last_error: None,
        contacts_progress: None,
        next_sync_at: None,
        sync_failures: 0,
    })
}

/// The account connected with the grant (its sealed refresh token `refresh`).
fn connect_account(
    account: &mut Account,
    grant: &Grant,
    refresh: String,
    now: OffsetDateTime,
) -> Result<(), ConnectError> {
    let t = account.tenant.clone();
    account.status = account
        .status
        .on(AccountEvent::Connected)
        .map_err(|_| ConnectError::InvalidState)?;
    account.google_email = Some(grant.identity.email.clone());
    account.google_subject = Some(grant.identity.sub.clone());
    account.products = grant.products.clone();
    account.scopes = grant.granted.clone();
    account.refresh_token_ciphertext = Some(refresh);
    account.access_token_ciphertext = Some(
        grant
            .cipher
            .seal(&grant.tokens.access_token, &t, &account.id)
            .map_err(unavailable)?,
    );
    account.access_token_expires_at = Some(grant.tokens.expires_at);
    account.reauth_reason = None;
    account.last_error = None;
    // The first pass (or the one after a reconnect) is queued at once and opens the
    // channels: the account is claimed for it, as the scheduler claims what it queues.
    account.next_sync_at = Some(if account.has_synced_product() {
        now + super::schedule::CLAIM
    } else {
        now
    });
    account.sync_failures = 0;
    account.updated_at = now;
    Ok(())
}

/// After the account was connected: the CRM is told, and the first pass queued. A different
/// Google account starts afresh: the CRM is told why, so it can drop the links its records
/// had to the previous account's events and contacts.
async fn connected(app: &App, account: &Account, reconnect: bool, other_google_account: bool) {
    let (t, u) = (&account.tenant, &account.user);
    let reason = other_google_account.then_some("google_account_changed");
    if let Err(e) = super::feed::account_status(app, account, reason).await {
        tracing::error!(tenant = %t, user = %u, error = %e.message, "feed record not written");
    }
    tracing::info!(tenant = %t, user = %u, reconnect, "Google account connected");
    super::schedule::queue_pass(app, account, "connected").await;
}

/// Who consented: the ID token of the code exchange (Google sends it for the `openid` scope),
/// else the userinfo endpoint.
async fn identity_of(app: &App, client: &OAuthClient, tokens: &Tokens) -> Result<Identity, String> {
    match &tokens.id_token {
        Some(raw) => id_token_identity(raw, &client.client_id).map_err(|e| e.to_string()),
        None => app
            .google
            .identity(&tokens.access_token)
            .await
            .map_err(|e| e.to_string()),
    }
}

/// Why this consent may not complete the link, if it may not: an e-mail Google has not
/// verified, another account than the CRM's `login_hint`, or a Google account another CRM
/// user of the tenant has connected (two CRM users on one Google account would import each
/// other's events without end).
async fn refusal(
    app: &App,
    session: &OAuthSession,
    identity: &Identity,
) -> Result<Option<ConnectError>, ConnectError> {
    if identity.email_verified != Some(true) {
        return Ok(Some(ConnectError::EmailNotVerified));
    }
    if let Some(expected) = &session.expected_email {
        if !same_google_email(expected, &identity.email) {
            return Ok(Some(ConnectError::WrongAccount));
        }
    }
    if holder_of(app, &session.tenant, &identity.sub)
        .await?
        .is_some_and(|holder| holder != session.user)
    {
        return Ok(Some(ConnectError::AccountInUse));
    }
    Ok(None)
}

/// The CRM user of the tenant whose connected (not disconnected) account is this Google
/// account, if any.
async fn holder_of(app: &App, t: &TenantId, sub: &str) -> Result<Option<UserId>, ConnectError> {
    let mut page: Option<String> = None;
    loop {
        let found = app
            .store
            .list_accounts(t, 500, page.as_deref())
            .await
            .map_err(unavailable)?;
        if let Some(a) = found.items.iter().find(|a| {
            a.status != AccountStatus::Disconnected && a.google_subject.as_deref() == Some(sub)
        }) {
            return Ok(Some(a.user.clone()));
        }
        match found.next {
            Some(next) => page = Some(next),
            None => return Ok(None),
        }
    }
}

/// A refused consent leaves nothing behind: the tokens are not stored, and the grant the
/// consenting account just gave is revoked at Google — unless that Google account is
/// connected to a CRM user of the tenant (revoking removes the app's whole grant for the
/// account, theirs included).
async fn discard_grant(app: &App, t: &TenantId, identity: &Identity, tokens: &Tokens) {
    match holder_of(app, t, &identity.sub).await {
        Ok(None) => {
            let token = tokens
                .refresh_token
                .as_ref()
                .unwrap_or(&tokens.access_token);
            if let Err(e) = app.google.revoke(token).await {
                tracing::warn!(tenant = %t, error = %e, "could not revoke the refused grant");
            }
        }
        Ok(Some(_)) => {}
        Err(_) => {
            tracing::warn!(tenant = %t, "could not check the refused grant's account; not revoked")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_keep_their_wire_codes_and_read_back() {
        let codes: Vec<&str> = ConnectError::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(
            codes,
            [
                "wrong_google_account",
                "email_not_verified",
                "google_account_in_use",
                "google_client_invalid",
                "google_client_missing",
                "not_found",
                "insufficient_scopes",
                "identity_unavailable",
                "temporarily_unavailable",
                "unavailable",
                "internal",
                "google_error",
                "missing_code",
                "token_exchange_failed",
                "no_refresh_token",
                "invalid_state",
            ]
        );
        for e in ConnectError::ALL {
            assert_eq!(ConnectError::from_code(e.code()), Some(e));
        }
        assert_eq!(ConnectError::from_code("error"), None);
        assert_eq!(ConnectError::from_code("<script>"), None);
    }

    #[test]
    fn the_tenant_client_refusals_keep_their_codes() {
        let missing = ApiError::conflict("google_client_missing", "no client");
        let refused = super::super::oauth_client_settings::refused_error("invalid_client");
        let gone = ApiError::not_found("tenant not found");
        let down = ApiError::internal(&StoreError::ConditionFailed, true);
        for (e, code) in [
            (missing, "google_client_missing"),
            (refused, "google_client_invalid"),
            (gone, "not_found"),
            (down, "unavailable"),
        ] {
            assert_eq!(e.code, code);
            assert_eq!(ConnectError::of_client(e).code(), code);
        }
    }

    #[test]
    fn a_failed_callback_sends_its_code_to_the_return_url() {
        let user = UserId::parse("u1").unwrap();
        let to = redirect_to(
            "https://crm.example/back?a=1",
            &user,
            &Outcome::Failed(ConnectError::AccountInUse),
        );
        assert_eq!(
            to.as_deref(),
            Some("https://crm.example/back?a=1&google_connect=error&user=u1&error=google_account_in_use")
        );
    }
}
