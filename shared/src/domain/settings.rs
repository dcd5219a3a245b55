use super::Products;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// What a tenant may choose as its polling interval, in minutes (the scheduler's own
/// interval is the floor).
pub const POLL_INTERVAL_MINUTES: RangeInclusive<u32> = 10..=1440;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    TwoWay,
    CrmToGoogle,
    GoogleToCrm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The side modified later wins.
    #[default]
    LatestWins,
    CrmWins,
    GoogleWins,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionPolicy {
    /// A delete on one side only unlinks (contacts: leave the group / CRM untags).
    #[default]
    UnlinkOnly,
    Propagate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivateEventPolicy {
    Skip,
    #[default]
    BusyOnly,
    Full,
}

/// Whom Google notifies when the sync writes an event (`sendUpdates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestNotifications {
    /// Nobody: the CRM decides whom to tell (and a sync is no reason to e-mail guests).
    #[default]
    None,
    All,
    ExternalOnly,
}

/// Defaults for new connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionDefaults {
    pub direction: Direction,
    pub conflict_policy: ConflictPolicy,
    pub deletion_policy: DeletionPolicy,
    pub private_events: PrivateEventPolicy,
    /// How far back a full sync reaches, in days.
    pub sync_since_days: u32,
    /// Google `colorId` per CRM event type (`meeting`, `call`).
    pub event_colors: BTreeMap<String, String>,
    /// Name of the Google contact group created when a user picks none.
    pub contact_group_name: String,
    /// Whom Google e-mails about events the sync creates, changes or deletes.
    #[serde(default)]
    pub guest_notifications: GuestNotifications,
    /// Which contact fields sync, and which way (users may override it).
    #[serde(default)]
    pub contact_fields: super::field_mapping::FieldMapping,
    /// How often an account is read when push does not cover it (contacts always; calendars
    /// without a healthy channel), in minutes: 10 to 1440.
    #[serde(default = "default_poll_minutes")]
    pub poll_interval_minutes: u32,
}

fn default_poll_minutes() -> u32 {
    *POLL_INTERVAL_MINUTES.start()
}

impl ConnectionDefaults {
    /// How often an account push does not cover is read.
    pub fn poll_interval(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.poll_interval_minutes))
    }
}

impl Default for ConnectionDefaults {
    fn default() -> Self {
        Self {
            direction: Direction::TwoWay,
            conflict_policy: ConflictPolicy::LatestWins,
            deletion_policy: DeletionPolicy::UnlinkOnly,
            private_events: PrivateEventPolicy::BusyOnly,
            sync_since_days: 30,
            event_colors: BTreeMap::new(),
            contact_group_name: "CRM".to_owned(),
            guest_notifications: GuestNotifications::None,
            contact_fields: super::field_mapping::FieldMapping::default(),
            poll_interval_minutes: default_poll_minutes(),
        }
    }
}

/// How many Google calls the tenant's syncs may make: the tenant is one Google Cloud
/// project, whose quota every connected account shares (see `services::quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleQuota {
    /// Sustained rate for the whole tenant, calls per second (batch parts counted).
    pub calls_per_second: u32,
    /// What the tenant may spend at once after a quiet spell.
    pub burst: u32,
    /// At most this many calls per account per worker job; the rest continues in a job
    /// queued behind the other accounts'.
    pub calls_per_job: u32,
}

impl GoogleQuota {
    pub const CALLS_PER_SECOND: std::ops::RangeInclusive<u32> = 1..=1000;
    pub const BURST: std::ops::RangeInclusive<u32> = 10..=100_000;
    pub const CALLS_PER_JOB: std::ops::RangeInclusive<u32> = 20..=5000;
}

impl Default for GoogleQuota {
    fn default() -> Self {
        Self {
            calls_per_second: 10,
            burst: 600,
            calls_per_job: 200,
        }
    }
}

/// A tenant's policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    pub products_allowed: Products,
    pub defaults: ConnectionDefaults,
    /// CRM return URLs users may be sent back to after connecting (prefix match on origin
    /// and path).
    pub allowed_return_urls: Vec<String>,
    pub webhook_url: Option<String>,
    /// Name of the secret that signs webhooks to the CRM, when a webhook URL is set.
    pub webhook_secret_ref: Option<String>,
    /// All sync paused for the tenant.
    pub sync_paused: bool,
    #[serde(default)]
    pub google_quota: GoogleQuota,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            products_allowed: Products::all(),
            defaults: ConnectionDefaults::default(),
            allowed_return_urls: Vec::new(),
            webhook_url: None,
            webhook_secret_ref: None,
            sync_paused: false,
            google_quota: GoogleQuota::default(),
        }
    }
}
