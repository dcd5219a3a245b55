//! Gmail over IMAP and SMTP: a connected user's access token with the XOAUTH2 string a mail
//! client authenticates with (`POST /v1/users/{user}/gmail/token`).

use super::accounts::get;
use super::tokens::{access_token, TokenError};
use crate::app::App;
use crate::clock::rfc3339;
use crate::domain::{AccountStatus, Product, TenantId, UserId};
use crate::google::oauth::SCOPE_GMAIL;
use crate::http::ApiError;
use base64::Engine as _;
use secrecy::ExposeSecret;
use serde::Serialize;

/// A Gmail access token with the XOAUTH2 string for IMAP and SMTP.
#[derive(Serialize)]
pub struct GmailToken {
    pub email: String,
    pub access_token: String,
    pub expires_at: String,
    /// `base64("user=" email "\x01auth=Bearer " token "\x01\x01")`, for `AUTHENTICATE XOAUTH2`.
    pub xoauth2: String,
    pub imap: MailServer,
    pub smtp: MailServer,
}

#[derive(Serialize)]
pub struct MailServer {
    pub host: &'static str,
    pub port: u16,
    pub security: &'static str,
}

pub fn xoauth2(email: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={email}\x01auth=Bearer {token}\x01\x01"))
}

pub async fn gmail_token(app: &App, t: &TenantId, u: &UserId) -> Result<GmailToken, ApiError> {
    let account = get(app, t, u).await?;
    if account.status == AccountStatus::Disconnected {
        return Err(TokenError::NotConnected.into());
    }
    if !account.products.contains(Product::Gmail) || !account.has_scope(SCOPE_GMAIL) {
        return Err(ApiError::conflict(
            "product_not_connected",
            "the user did not grant Gmail access; reconnect with the gmail product",
        ));
    }
    let token = access_token(app, t, u).await?;
    let email =
        token.account.google_email.clone().ok_or_else(|| {
            ApiError::conflict("not_connected", "the account has no Google e-mail")
        })?;
    let secret = token.token.expose_secret();
    Ok(GmailToken {
        xoauth2: xoauth2(&email, secret),
        access_token: secret.to_owned(),
        expires_at: rfc3339(token.expires_at),
        email,
        imap: MailServer {
            host: "imap.gmail.com",
            port: 993,
            security: "tls",
        },
        smtp: MailServer {
            host: "smtp.gmail.com",
            port: 465,
            security: "tls",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_string() {
        // The example of Google's XOAUTH2 protocol page.
        assert_eq!(
            xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }
}
