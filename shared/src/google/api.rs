//! The REST calls of Google's APIs the product makes (identity, calendar list, channel stop);
//! answers read into the fields the product uses. People v1 lives in [`super::people`].

use super::calendar::CalendarRequest;
use super::pacing::Pace;
use super::retry::{with_retry, RetryPolicy};
use super::{Google, GoogleError};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarListPage {
    #[serde(default)]
    items: Vec<CalendarEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// What a Google error body says: the apiary `errors[0].reason` (Calendar), the gRPC `status`
/// and the `google.rpc.ErrorInfo` reason of `details` (People, One Platform), the message.
struct ErrorBody {
    reason: String,
    status: String,
    info: String,
    message: String,
}

/// Reads Google's JSON error body (`{"error": {"errors": [{"reason": …}], "status": …,
/// "details": [{"reason": …}], "message": …}}`).
fn error_body(body: &[u8]) -> ErrorBody {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    let text = |x: &serde_json::Value| x.as_str().unwrap_or("").to_owned();
    let info = e["details"]
        .as_array()
        .and_then(|d| d.iter().find_map(|x| x["reason"].as_str()))
        .unwrap_or("")
        .to_owned();
    let reason = e["errors"][0]["reason"]
        .as_str()
        .or_else(|| e["status"].as_str())
        .or_else(|| e.as_str())
        .unwrap_or("unknown")
        .to_owned();
    ErrorBody {
        reason,
        status: text(&e["status"]),
        info,
        message: text(&e["message"]),
    }
}

/// People answers two different things with 400 `FAILED_PRECONDITION`: an expired sync token
/// (ErrorInfo `EXPIRED_SYNC_TOKEN`: list again without it, like Calendar's 410) and a stale
/// etag on an update ("person.etag is different…": re-read, like Calendar's 412). Both are
/// sorted into the variants the Calendar code already acts on.
fn failed_precondition(e: &ErrorBody) -> Option<GoogleError> {
    if e.status != "FAILED_PRECONDITION" && e.reason != "failedPrecondition" {
        return None;
    }
    let message = e.message.to_ascii_lowercase();
    if e.info == "EXPIRED_SYNC_TOKEN" || message.contains("sync token is expired") {
        return Some(GoogleError::Gone("EXPIRED_SYNC_TOKEN".into()));
    }
    if message.contains("etag") && message.contains("different") {
        return Some(GoogleError::PreconditionFailed(
            "FAILED_PRECONDITION".into(),
        ));
    }
    None
}

/// Whether a transient error is an answer saying Google refused the request without acting
/// on it (429, a 403 rate or quota limit): sending it again cannot do anything twice. A 5xx,
/// a timeout or a lost connection may come after the write was done.
pub fn refused_before_applied(e: &GoogleError) -> bool {
    matches!(e, GoogleError::Transient(m) if m.starts_with("HTTP 429 ") || m.starts_with("HTTP 403 ") || m.starts_with("HTTP 409 ABORTED"))
}

/// How long an account waits after 403 `quotaExceeded` ("Calendar usage limits exceeded":
/// the user's calendar is read-only for a while, lifted "within several hours").
pub const USAGE_LIMITS_PAUSE: Duration = Duration::from_secs(3600);

/// Until Google's daily quotas reset: midnight Pacific time (America/Los_Angeles, so 08:00
/// UTC in winter and 07:00 UTC under daylight saving time).
pub fn until_daily_reset(now: SystemTime) -> Duration {
    const FALLBACK: Duration = Duration::from_secs(3600);
    let next_midnight = jiff::Timestamp::try_from(now)
        .and_then(|t| t.in_tz("America/Los_Angeles"))
        .and_then(|z| z.tomorrow())
        .and_then(|z| z.start_of_day());
    match next_midnight {
        Ok(z) => SystemTime::from(z.timestamp())
            .duration_since(now)
            .unwrap_or(FALLBACK),
        Err(_) => FALLBACK,
    }
}

/// Sorts a non-success answer of a Google API. Rate limits (429, 403 `rateLimitExceeded` /
/// `userRateLimitExceeded`, People's `RESOURCE_EXHAUSTED`) are transient: retried with
/// backoff. Quotas that do not come back within a retry are not: 403 `quotaExceeded` (the
/// user's Calendar usage limits) pauses the account for [`USAGE_LIMITS_PAUSE`], 403
/// `dailyLimitExceeded` (the project's daily quota) until the daily reset — both as
/// [`GoogleError::Paced`], which the worker turns into a deferred account, not a retry.
pub fn classify_status(status: u16, body: &[u8]) -> GoogleError {
    let e = error_body(body);
    let rate_limited = matches!(
        e.reason.as_str(),
        "rateLimitExceeded" | "userRateLimitExceeded" | "RESOURCE_EXHAUSTED"
    ) || e.info == "RATE_LIMIT_EXCEEDED";
    match status {
        429 | 500..=599 => GoogleError::Transient(format!("HTTP {status} {}", e.reason)),
        // People refuses a mutation while another of the same user's is in progress ("Mutate
        // requests for the same user should be sent sequentially"): nothing was applied, and
        // it goes through once the other one is done.
        409 if e.status == "ABORTED" || e.reason == "ABORTED" => {
            GoogleError::Transient("HTTP 409 ABORTED".into())
        }
        403 if rate_limited => GoogleError::Transient(format!("HTTP 403 {}", e.reason)),
        403 if e.reason == "quotaExceeded" => GoogleError::Paced(Pace::Quota {
            retry_in: USAGE_LIMITS_PAUSE,
            daily: false,
        }),
        403 if e.reason == "dailyLimitExceeded" => GoogleError::Paced(Pace::Quota {
            retry_in: until_daily_reset(SystemTime::now()),
            daily: true,
        }),
        400 => failed_precondition(&e).unwrap_or(GoogleError::Rejected {
            status,
            reason: e.reason,
        }),
        404 => GoogleError::NotFound(e.reason),
        409 => GoogleError::Conflict(e.reason),
        410 => GoogleError::Gone(e.reason),
        412 => GoogleError::PreconditionFailed(e.reason),
        _ => GoogleError::Rejected {
            status,
            reason: e.reason,
        },
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

    #[test]
    fn quotas_pause_instead_of_retrying() {
        let usage = br#"{"error":{"errors":[{"domain":"usageLimits","reason":"quotaExceeded","message":"Calendar usage limits exceeded."}],"code":403}}"#;
        let e = classify_status(403, usage);
        assert!(!e.is_transient() && e.is_pass_level(), "{e:?}");
        assert!(matches!(
            e,
            GoogleError::Paced(Pace::Quota { retry_in, daily: false }) if retry_in == USAGE_LIMITS_PAUSE
        ));
        let daily = br#"{"error":{"errors":[{"domain":"usageLimits","reason":"dailyLimitExceeded"}],"code":403}}"#;
        assert!(matches!(
            classify_status(403, daily),
            GoogleError::Paced(Pace::Quota { daily: true, .. })
        ));
        let user = br#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}],"code":403}}"#;
        assert!(classify_status(403, user).is_transient());
        // Midnight Pacific: 08:00 UTC in winter, 07:00 UTC under daylight saving time.
        let at = |date: &str| SystemTime::from(date.parse::<jiff::Timestamp>().unwrap());
        let winter = [
            ("2026-01-15T07:59:59Z", 1),
            ("2026-01-15T08:00:00Z", 86_400),
            ("2026-01-15T20:00:00Z", 12 * 3600),
        ];
        let summer = [
            ("2026-07-15T06:59:59Z", 1),
            ("2026-07-15T07:00:00Z", 86_400),
            ("2026-07-15T19:00:00Z", 12 * 3600),
        ];
        for (now, secs) in winter.into_iter().chain(summer) {
            assert_eq!(
                until_daily_reset(at(now)),
                Duration::from_secs(secs),
                "{now}"
            );
        }
        // The night the clocks go forward (2026-03-08) is 23 hours long.
        assert_eq!(
            until_daily_reset(at("2026-03-08T08:00:00Z")),
            Duration::from_secs(23 * 3600)
        );
    }

    #[test]
    fn people_failed_preconditions_are_told_apart() {
        let expired = br#"{"error":{"code":400,"message":"Sync token is expired. Clear local cache and retry call without the sync token.","status":"FAILED_PRECONDITION","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"EXPIRED_SYNC_TOKEN","domain":"people.googleapis.com"}]}}"#;
        let e = classify_status(400, expired);
        assert!(e.is_full_sync_required(), "{e:?}");
        let etag = br#"{"error":{"code":400,"message":"Request person.etag is different than the current person.etag. Clear local cache and get the latest person.","status":"FAILED_PRECONDITION"}}"#;
        assert!(classify_status(400, etag).is_etag_conflict());
        assert!(!classify_status(400, etag).is_full_sync_required());
        let missing = br#"{"error":{"code":400,"message":"Request must set person.etag or person.metadata.sources.etag for the source that is being updated.","status":"FAILED_PRECONDITION"}}"#;
        assert!(matches!(
            classify_status(400, missing),
            GoogleError::Rejected { status: 400, .. }
        ));
        let invalid = br#"{"error":{"code":400,"message":"Invalid personFields mask path","status":"INVALID_ARGUMENT"}}"#;
        assert!(!classify_status(400, invalid).is_etag_conflict());
        // People's rate limits carry the reason in ErrorInfo, not in `errors[]`.
        let limited = br#"{"error":{"code":403,"message":"Rate Limit Exceeded","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"}]}}"#;
        assert!(classify_status(403, limited).is_transient());
        let denied = br#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#;
        assert!(!classify_status(403, denied).is_transient());
        // Another mutation of the same user in progress: refused, nothing applied, retried.
        let aborted =
            br#"{"error":{"code":409,"message":"The operation was aborted.","status":"ABORTED"}}"#;
        let e = classify_status(409, aborted);
        assert!(e.is_transient() && refused_before_applied(&e), "{e:?}");
        let taken = br#"{"error":{"code":409,"message":"Contact group name already exists","status":"ALREADY_EXISTS"}}"#;
        assert!(matches!(
            classify_status(409, taken),
            GoogleError::Conflict(_)
        ));
    }
}
