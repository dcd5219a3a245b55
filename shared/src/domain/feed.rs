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
