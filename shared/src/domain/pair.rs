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
    #[serde(deserialize_with = "CrmId::deserialize_stored")]
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
    /// The CRM's latest content, normalized (what a sync pushes; compared by hash with
    /// `crm_hash`, the content as of the last sync).
    #[serde(default)]
    pub crm_content: Option<serde_json::Value>,
    /// When the CRM last modified the record (its `updated_at`, or when we received it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub crm_modified: Option<OffsetDateTime>,
    /// The `updated_at` the CRM last sent, on the CRM's own clock (what a late, retried PUT
    /// is compared with; `crm_modified` may since hold Google's time, after a pull).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub crm_sent_at: Option<OffsetDateTime>,
    /// The hash of the content the CRM sent with `crm_sent_at` (a retry repeats both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_sent_hash: Option<String>,
    /// The CRM deleted the record (not yet carried out on Google).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub crm_deleted_at: Option<OffsetDateTime>,
    /// Born in Google and not yet acknowledged by the CRM with a CRM id.
    #[serde(default)]
    pub google_born: bool,
    /// Attendees of the Google event the CRM does not model (rooms and other resources), as
    /// Google last showed them: a CRM edit's attendee list is sent with them, so a room booked
    /// in Google is not dropped by the next CRM change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub google_resources: Vec<serde_json::Value>,
    /// The last full read of Google that saw the pair (`Cursor::full_read`): a read resumed
    /// across runs knows what its earlier runs saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_in_read: Option<String>,
    /// When a create of the pair's contact ended with its outcome unknown (a timeout or 5xx
    /// after which the contact was not found): Google may have made it and show it only
    /// after its write-propagation delay, so it is not created again before the next reads
    /// had time to find it (see `contacts::sync`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub create_unsure_since: Option<OffsetDateTime>,
    /// A series' occurrences as Google last showed them (see
    /// `Normalized::occurrences_hash`): before a CRM series edit writes its exceptions, Google's
    /// are compared with these, so an occurrence edited in Google and not read yet is decided
    /// as a conflict, never overwritten unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_occurrences: Option<String>,
}

impl PairStatus {
    /// A fresh pair for a CRM record.
    pub fn new(account: AccountId, collection: Collection, crm_id: CrmId) -> Self {
        Self {
            account,
            collection,
            crm_id,
            crm_version: None,
            crm_hash: None,
            google_id: None,
            container: None,
            google_etag: None,
            google_hash: None,
            generation: 0,
            last_synced_at: None,
            last_error: None,
            deleted_at: None,
            crm_content: None,
            crm_modified: None,
            crm_sent_at: None,
            crm_sent_hash: None,
            crm_deleted_at: None,
            google_born: false,
            google_resources: Vec::new(),
            seen_in_read: None,
            create_unsure_since: None,
            google_occurrences: None,
        }
    }
}

/// Where a pair stands, as the CRM sees it (`state` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairState {
    Synced,
    /// The CRM's side waits for the worker.
    Pending,
    Deleted,
    /// The record's own failure (`last_error`).
    Error,
}
