use super::{AccountId, CrmId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which kind of record a pair links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Calendar,
    Contacts,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Calendar => "calendar",
            Collection::Contacts => "contacts",
        }
    }
}

/// The sync status row of one CRM record ↔ Google resource pair, as of the last sync:
/// what each side looked like (content hashes), so a later pass can tell who changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStatus {
    pub account: AccountId,
    pub collection: Collection,
    pub crm_id: CrmId,
    #[serde(default)]
    pub crm_version: Option<String>,
    #[serde(default)]
    pub crm_hash: Option<String>,
    /// Google event id or People `resourceName`.
    #[serde(default)]
    pub google_id: Option<String>,
    /// The calendar the event lives in (calendar pairs).
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub google_etag: Option<String>,
    #[serde(default)]
    pub google_hash: Option<String>,
    /// Bumped when a pair is re-created after a delete, so derived Google ids stay unique.
    #[serde(default)]
    pub generation: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_synced_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set when the pair was deleted on a side: a tombstone, kept so late deliveries cannot
    /// resurrect or re-delete.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}
