//! Typed configuration from the environment, read once at cold start. A missing or bad
//! variable stops the function with a message that names it.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where Google is. Defaults to Google itself; the local server and tests point every URL
/// at the Google sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleEndpoints {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    /// Calendar v3 lives under `{calendar_base}/calendar/v3`, batch under `/batch/calendar/v3`.
    pub calendar_base: String,
    /// People v1 lives under `{people_base}/v1`.
    pub people_base: String,
}

impl Default for GoogleEndpoints {
    fn default() -> Self {
        Self {
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            revoke_url: "https://oauth2.googleapis.com/revoke".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            calendar_base: "https://www.googleapis.com".into(),
            people_base: "https://people.googleapis.com".into(),
        }
    }
}

impl GoogleEndpoints {
    /// Every endpoint on one base URL, with Google's own paths (the Google sandbox).
    pub fn single_host(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            auth_url: format!("{base}/o/oauth2/v2/auth"),
            token_url: format!("{base}/token"),
            revoke_url: format!("{base}/revoke"),
            userinfo_url: format!("{base}/v1/userinfo"),
            calendar_base: base.to_owned(),
            people_base: base.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// Prefix of every secret name (`SECRETS_PREFIX`, e.g. `crm-google-sync/`).
    pub secrets_prefix: String,
    /// The SQS FIFO queue (`QUEUE_URL`); functions that never enqueue may run without it.
    pub queue_url: Option<String>,
    /// The API's public URL (`PUBLIC_BASE_URL`): the OAuth callback and the Google webhook
    /// are under it.
    pub public_base_url: String,
    pub google: GoogleEndpoints,
}

fn http_url(name: &'static str, value: String) -> Result<String, ConfigError> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && !value.contains(char::is_whitespace)
        && value.len() > "https://".len();
    if ok {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: "must be an http(s) URL".into(),
        })
    }
}

/// The API's public URL: HTTPS, as Google requires of push-notification addresses ("This is
/// an HTTPS server", with a valid certificate) and of OAuth redirect URIs outside localhost —
/// plain `http` only on a loopback host (the local server).
fn public_url(value: String) -> Result<String, ConfigError> {
    let url = http_url("PUBLIC_BASE_URL", value)?;
    if url.starts_with("http://") && !crate::services::validate::is_loopback(&url) {
        return Err(ConfigError::Invalid {
            name: "PUBLIC_BASE_URL",
            reason: "must be an https URL (Google sends push notifications to HTTPS addresses only; plain http is for a loopback address)".into(),
        });
    }
    Ok(url)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.get(name).filter(|v| !v.trim().is_empty()).cloned();
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let mut google = GoogleEndpoints::default();
        if let Some(base) = get("GOOGLE_BASE_URL") {
            google = GoogleEndpoints::single_host(&http_url("GOOGLE_BASE_URL", base)?);
        }
        for (name, field) in [
            ("GOOGLE_AUTH_URL", &mut google.auth_url),
            ("GOOGLE_TOKEN_URL", &mut google.token_url),
            ("GOOGLE_REVOKE_URL", &mut google.revoke_url),
            ("GOOGLE_USERINFO_URL", &mut google.userinfo_url),
            ("GOOGLE_CALENDAR_BASE_URL", &mut google.calendar_base),
            ("GOOGLE_PEOPLE_BASE_URL", &mut google.people_base),
        ] {
            if let Some(v) = get(name) {
                *field = http_url(name, v)?;
            }
        }
        let secrets_prefix = required("SECRETS_PREFIX")?;
        if secrets_prefix.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                name: "SECRETS_PREFIX",
                reason: "must not contain spaces".into(),
            });
        }
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            secrets_prefix,
            queue_url: get("QUEUE_URL"),
            public_base_url: public_url(required("PUBLIC_BASE_URL")?)?,
            google,
        })
    }

    /// Where Google sends the user back after consent.
    pub fn oauth_callback_url(&self) -> String {
        format!("{}/oauth/callback", self.public_base_url)
    }

    /// Where Google posts Calendar push notifications.
    pub fn google_webhook_url(&self) -> String {
        format!("{}/webhooks/google/calendar", self.public_base_url)
    }

    pub fn require_queue_url(&self) -> Result<&str, ConfigError> {
        self.queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("QUEUE_URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_and_validates() {
        let base = [
            ("TABLE_NAME", "t"),
            ("SECRETS_PREFIX", "stack/"),
            ("PUBLIC_BASE_URL", "https://api.example.com/"),
        ];
        let c = Config::from_vars(&vars(&base)).unwrap();
        assert_eq!(
            c.oauth_callback_url(),
            "https://api.example.com/oauth/callback"
        );
        assert_eq!(c.google, GoogleEndpoints::default());
        assert!(c.require_queue_url().is_err());

        let mut v = vars(&base);
        v.insert("GOOGLE_BASE_URL".into(), "http://127.0.0.1:9000".into());
        let c = Config::from_vars(&v).unwrap();
        assert_eq!(c.google.token_url, "http://127.0.0.1:9000/token");

        let err = Config::from_vars(&vars(&base[..2])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing environment variable PUBLIC_BASE_URL"
        );
        let mut v = vars(&base);
        v.insert("PUBLIC_BASE_URL".into(), "ftp://x".into());
        assert!(matches!(
            Config::from_vars(&v),
            Err(ConfigError::Invalid { .. })
        ));
        // Google pushes to HTTPS only: plain http is refused but on a loopback host.
        v.insert("PUBLIC_BASE_URL".into(), "http://api.example.com".into());
        assert!(matches!(
            Config::from_vars(&v),
            Err(ConfigError::Invalid {
                name: "PUBLIC_BASE_URL",
                ..
            })
        ));
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            v.insert("PUBLIC_BASE_URL".into(), local.into());
            assert!(Config::from_vars(&v).is_ok(), "{local}");
        }
    }
}
