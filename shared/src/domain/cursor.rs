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
    /// The full read in progress (none while reading incrementally): an id the pairs it sees
    /// are marked with (`PairStatus::seen_in_read`), so that a read resumed across runs knows
    /// what its earlier runs saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_read: Option<String>,
}

impl Cursor {
    pub fn new(account: AccountId, scope: String, now: OffsetDateTime) -> Self {
        Self {
            account,
            scope,
            sync_token: None,
            page_token: None,
            updated_at: now,
            full_read: None,
        }
    }

    /// Called before reading a page: for a full read (no sync token), its id — a new one if
    /// this page starts it; `None` for an incremental read.
    pub fn start_page(&mut self) -> Option<String> {
        if self.sync_token.is_some() {
            self.full_read = None;
            return None;
        }
        if self.page_token.is_none() || self.full_read.is_none() {
            self.full_read = Some(ulid::Ulid::new().to_string());
        }
        self.full_read.clone()
    }
}
