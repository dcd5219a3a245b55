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
    /// When the full read in progress began (none while reading incrementally). Pairs synced
    /// since were seen by it, even by an earlier run of a read resumed across runs.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_started_at: Option<OffsetDateTime>,
}

impl Cursor {
    pub fn new(account: AccountId, scope: String, now: OffsetDateTime) -> Self {
        Self {
            account,
            scope,
            sync_token: None,
            page_token: None,
            updated_at: now,
            read_started_at: None,
        }
    }

    /// Called before reading a page: for a full read (no sync token), when it began — now,
    /// if this page starts it; `None` for an incremental read.
    pub fn full_read_since(&mut self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.sync_token.is_some() {
            self.read_started_at = None;
            return None;
        }
        if self.page_token.is_none() || self.read_started_at.is_none() {
            self.read_started_at = Some(now);
        }
        self.read_started_at
    }
}
