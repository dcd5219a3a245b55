//! The REST calls of Google's APIs the product makes (identity, calendar list, contact
//! groups, channel stop); answers read into the fields the product uses.

use super::calendar::CalendarRequest;
use super::retry::{with_retry, RetryPolicy};
use super::{Google, GoogleError};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The OpenID Connect identity of the connected account.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub sub: String,
    pub email: String,
    #[serde(default)]
    pub email_verified: Option<bool>,
}

/// One entry of the user's calendar list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEntry {
    pub id: String,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub primary: Option<bool>,
    pub access_role: String,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub background_color: Option<String>,
}

impl CalendarEntry {
    /// Whether CRM events may be written there.
    pub fn writable(&self) -> bool {
        matches!(self.access_role.as_str(), "owner" | "writer")
    }
}

/// One contact group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContactGroup {
    pub resource_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub formatted_name: Option<String>,
    #[serde(default)]
    pub group_type: Option<String>,
    #[serde(default)]
    pub member_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarListPage {
    #[serde(default)]
    items: Vec<CalendarEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContactGroupsPage {
    #[serde(default)]
    contact_groups: Vec<ContactGroup>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Reads Google's JSON error body (`{"error": {"errors": [{"reason": …}], "status": …}}`).
fn error_reason(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    e["errors"][0]["reason"]
        .as_str()
        .or_else(|| e["status"].as_str())
        .or_else(|| e.as_str())
        .unwrap_or("unknown")
        .to_owned()
}

/// Sorts a non-success answer of a Google API.
pub fn classify_status(status: u16, body: &[u8]) -> GoogleError {
    let reason = error_reason(body);
    match status {
        429 | 500..=599 => GoogleError::Transient(format!("HTTP {status} {reason}")),
        403 if matches!(
            reason.as_str(),
            "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded" | "RESOURCE_EXHAUSTED"
        ) =>
        {
            GoogleError::Transient(format!("HTTP 403 {reason}"))
        }
        404 => GoogleError::NotFound(reason),
        409 => GoogleError::Conflict(reason),
        410 => GoogleError::Gone(reason),
        412 => GoogleError::PreconditionFailed(reason),
        _ => GoogleError::Rejected { status, reason },
    }
}

impl Google {
    /// A GET through the one retry policy and the shared send-and-classify step.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
        token: &SecretString,
    ) -> Result<T, GoogleError> {
        let url =
            reqwest::Url::parse_with_params(url, query).map_err(|_| GoogleError::Rejected {
                status: 0,
                reason: "invalid Google URL in configuration".into(),
            })?;
        let answer = with_retry(&RetryPolicy::current(), || {
            self.send_once(token, reqwest::Method::GET, url.as_str(), &[], None)
        })
        .await?;
        serde_json::from_slice(&answer.body).map_err(|e| GoogleError::Rejected {
            status: answer.status,
            reason: format!("unexpected answer: {e}"),
        })
    }

    /// The identity behind an access token (OpenID Connect userinfo).
    pub async fn identity(&self, token: &SecretString) -> Result<Identity, GoogleError> {
        self.get_json(&self.endpoints.userinfo_url, &[], token)
            .await
    }

    /// The user's whole calendar list.
    pub async fn calendar_list(
        &self,
        token: &SecretString,
    ) -> Result<Vec<CalendarEntry>, GoogleError> {
        let url = format!(
            "{}/calendar/v3/users/me/calendarList",
            self.endpoints.calendar_base
        );
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("maxResults", "250")];
            if let Some(p) = &page {
                query.push(("pageToken", p));
            }
            let got: CalendarListPage = self.get_json(&url, &query, token).await?;
            out.extend(got.items);
            match got.next_page_token {
                Some(next) => page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The user's contact groups.
    pub async fn contact_groups(
        &self,
        token: &SecretString,
    ) -> Result<Vec<ContactGroup>, GoogleError> {
        let url = format!("{}/v1/contactGroups", self.endpoints.people_base);
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("pageSize", "1000"),
                ("groupFields", "name,groupType,memberCount"),
            ];
            if let Some(p) = &page {
                query.push(("pageToken", p));
            }
            let got: ContactGroupsPage = self.get_json(&url, &query, token).await?;
            out.extend(got.contact_groups);
            match got.next_page_token {
                Some(next) => page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Stops a push channel (`channels.stop`). An unknown channel counts as stopped.
    pub async fn stop_channel(
        &self,
        token: &SecretString,
        channel_id: &str,
        resource_id: &str,
    ) -> Result<(), GoogleError> {
        let request = CalendarRequest {
            method: reqwest::Method::POST,
            target: "/calendar/v3/channels/stop".to_owned(),
            body: Some(serde_json::json!({"id": channel_id, "resourceId": resource_id})),
            if_match: None,
        };
        match self.execute(token, &request).await {
            Ok(_) | Err(GoogleError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted() {
        let rate = br#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded"}],"code":403}}"#;
        assert!(classify_status(403, rate).is_transient());
        let forbidden =
            br#"{"error":{"errors":[{"reason":"insufficientPermissions"}],"code":403}}"#;
        assert!(
            matches!(classify_status(403, forbidden), GoogleError::Rejected { status: 403, ref reason } if reason == "insufficientPermissions")
        );
        assert!(classify_status(503, b"<html>").is_transient());
        assert!(classify_status(429, b"").is_transient());
        let people = br#"{"error":{"code":400,"status":"FAILED_PRECONDITION"}}"#;
        assert!(
            matches!(classify_status(400, people), GoogleError::Rejected { ref reason, .. } if reason == "FAILED_PRECONDITION")
        );
    }
}
