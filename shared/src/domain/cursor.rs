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
    /// What the read asks of Google that its tokens depend on (for contacts: the group and
    /// the fields read). Google's tokens are only good for the same request: when this
    /// changes (the user picks another group, the field mapping changes) the next read starts
    /// over in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// The deletions this scope let through lately (the mass-deletion guard's window, see
    /// [`Window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions: Option<Window>,
    /// The guard's block of this scope was reported (a `mass_deletion_blocked` record): told
    /// once, until the deletions are confirmed or no longer held back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub block_told: bool,
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
            shape: None,
            deletions: None,
            block_told: false,
        }
    }

    /// Records the read's shape; a different one than the stored one drops the tokens, so
    /// the read starts over in full. Returns whether it did. (A cursor written before shapes
    /// were kept adopts the current one.)
    pub fn reshape(&mut self, shape: String) -> bool {
        let changed = self.shape.as_ref().is_some_and(|old| *old != shape)
            && (self.sync_token.is_some() || self.page_token.is_some());
        if changed {
            self.sync_token = None;
            self.page_token = None;
            self.full_read = None;
        }
        self.shape = Some(shape);
        changed
    }

    /// Whether an incremental read's page leaves nothing to record: no news (`news` false:
    /// no item, no further page) and the stored token written less than a day ago. Google's
    /// sync tokens stay good for longer than that (an expired one is a full read), so an
    /// idle pass keeps the stored token instead of writing the new one.
    pub fn idle_page(&self, news: bool, now: OffsetDateTime) -> bool {
        !news
            && self.sync_token.is_some()
            && self.page_token.is_none()
            && self.full_read.is_none()
            && now - self.updated_at < time::Duration::days(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_shape_restarts_the_read_in_full() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut c = Cursor::new(AccountId::generate(), "contacts".into(), now);
        c.sync_token = Some("t1".into());
        // Written before shapes were kept: adopts the current one.
        assert!(!c.reshape("group=A".into()));
        assert_eq!(c.sync_token.as_deref(), Some("t1"));
        assert!(!c.reshape("group=A".into()));
        assert!(c.reshape("group=B".into()));
        assert_eq!(c.sync_token, None);
        assert_eq!(c.shape.as_deref(), Some("group=B"));
        // A read not begun yet has nothing to drop.
        assert!(!c.reshape("group=C".into()));
    }

    #[test]
    fn an_idle_page_is_not_recorded_unless_the_token_is_a_day_old() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        let mut c = Cursor::new(AccountId::generate(), "calendar:primary".into(), now);
        // No sync token yet: the first read is recorded.
        assert!(!c.idle_page(false, now));
        c.sync_token = Some("t1".into());
        assert!(c.idle_page(false, now + time::Duration::hours(23)));
        assert!(!c.idle_page(true, now), "news is recorded");
        assert!(
            !c.idle_page(false, now + time::Duration::hours(25)),
            "the token is refreshed daily"
        );
        c.page_token = Some("p2".into());
        assert!(!c.idle_page(false, now), "a read in progress is recorded");
    }
}

/// The deletions a scope let through lately: since `since` (the first of them), `count`
/// (what the mass-deletion guard, [`crate::sync::guard`], counts over the last hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub count: usize,
}
