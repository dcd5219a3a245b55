//! Where a tenant's webhook delivery stands, as stored (the deliveries themselves are
//! [`crate::delivery`]'s).

use super::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a tenant's webhook delivery stands (one item per tenant, optimistic version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryCursor {
    pub tenant: TenantId,
    /// The last record the CRM acknowledged with a `2xx`; the next run starts after it.
    #[serde(default)]
    pub last_delivered: Option<String>,
    /// The run currently delivering, if any (expired leases are free to take).
    #[serde(default)]
    pub lease: Option<Lease>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The record the CRM keeps refusing, across runs (it blocks the records after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
    /// Records parked after the CRM refused them in enough runs over long enough (newest
    /// last, the last [`PARKED_KEPT`]): the webhook skips them, the pull feed still has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<String>,
}

/// A record that failed to deliver in `runs` runs since `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failing {
    pub id: String,
    pub runs: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// Parked record ids kept on the cursor.
pub const PARKED_KEPT: usize = 100;

/// Who is delivering a tenant's feed, and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// A random id of the run.
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}
