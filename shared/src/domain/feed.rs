use super::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a change-feed record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    EventCreated,
    EventUpdated,
    EventDeleted,
    /// The link between a CRM event and its Google event is gone (deletion policy
    /// `unlink_only`): the CRM keeps its record, Google keeps its event.
    EventUnlinked,
    /// A calendar's pass would have deleted too many events: paused, nothing deleted.
    MassDeletionBlocked,
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    ContactUntag,
    ConflictResolved,
    AccountStatusChanged,
}

/// One record of a tenant's ordered change feed (Google-side changes for the CRM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Sortable, unique: the feed's cursor.
    pub id: String,
    pub tenant: TenantId,
    pub user: UserId,
    pub kind: ChangeKind,
    #[serde(default)]
    pub crm_id: Option<String>,
    #[serde(default)]
    pub google_id: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl ChangeRecord {
    /// A record with a provisional id (a fresh ULID, unique within the process); appending it
    /// to the feed gives it its id there, the tenant's next number (`Store::append_change`).
    pub fn new(
        tenant: TenantId,
        user: UserId,
        kind: ChangeKind,
        data: serde_json::Value,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: next_id(),
            tenant,
            user,
            kind,
            crm_id: None,
            google_id: None,
            data,
            created_at: now,
        }
    }
}

fn next_id() -> String {
    use std::sync::{Mutex, OnceLock};
    static GENERATOR: OnceLock<Mutex<ulid::Generator>> = OnceLock::new();
    let mut generator = GENERATOR
        .get_or_init(|| Mutex::new(ulid::Generator::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain ULID regardless.
    generator
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_within_a_millisecond() {
        let ids: Vec<String> = (0..1000).map(|_| next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
