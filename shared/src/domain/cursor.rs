use super::AccountId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where an incremental read of one Google collection stands: the sync token of the last
/// complete pass, and the page token of a pass in progress (checkpointed so a run can stop
/// and resume inside Lambda's limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub account: AccountId,
    /// `calendar:<calendarId>` or `contacts`.
    pub scope: String,
    #[serde(default)]
    pub sync_token: Option<String>,
    #[serde(default)]
    pub page_token: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
