use super::{AccountId, Direction, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A Google product a connection can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    Calendar,
    Contacts,
    Gmail,
}

/// A set of products (kept sorted, no repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Product>", into = "Vec<Product>")]
pub struct Products(Vec<Product>);

impl Products {
    pub fn all() -> Self {
        Self(vec![Product::Calendar, Product::Contacts, Product::Gmail])
    }
    pub fn contains(&self, p: Product) -> bool {
        self.0.contains(&p)
    }
    pub fn iter(&self) -> impl Iterator<Item = Product> + '_ {
        self.0.iter().copied()
    }
    pub fn is_subset_of(&self, other: &Products) -> bool {
        self.0.iter().all(|p| other.contains(*p))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Product>> for Products {
    fn from(mut v: Vec<Product>) -> Self {
        v.sort();
        v.dedup();
        Self(v)
    }
}

impl From<Products> for Vec<Product> {
    fn from(p: Products) -> Self {
        p.0
    }
}

/// The connection's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Syncing.
    Active,
    /// Google refused the grant for good (`invalid_grant`, …): no retries until the user
    /// reconnects.
    NeedsReauth,
    /// Sync stopped by the user or the admin; the grant is kept.
    Paused,
    /// The user disconnected: grant revoked, tokens deleted.
    Disconnected,
}

/// What can happen to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    /// The OAuth flow completed (first connect or reconnect).
    Connected,
    /// Google answered a permanent OAuth error.
    PermanentAuthError,
    Pause,
    Resume,
    Disconnect,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an account that is {from:?} cannot take {event:?}")]
pub struct InvalidTransition {
    pub from: AccountStatus,
    pub event: AccountEvent,
}

impl AccountStatus {
    /// The state machine: the only way an account's status changes.
    pub fn on(self, event: AccountEvent) -> Result<AccountStatus, InvalidTransition> {
        use AccountEvent as E;
        use AccountStatus as S;
        match (self, event) {
            (_, E::Connected) => Ok(S::Active),
            (_, E::Disconnect) => Ok(S::Disconnected),
            (S::Active | S::Paused | S::NeedsReauth, E::PermanentAuthError) => Ok(S::NeedsReauth),
            (S::Active | S::Paused, E::Pause) => Ok(S::Paused),
            (S::Paused, E::Resume) => Ok(S::Active),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    /// Whether the sync machinery should work on an account in this state.
    pub fn syncs(self) -> bool {
        self == AccountStatus::Active
    }
}

/// Per-connection choices (defaults come from the tenant's settings).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountSettings {
    /// Where CRM events are written (`primary` unless chosen).
    #[serde(default)]
    pub main_calendar: Option<String>,
    /// Calendars read into the CRM, never written.
    #[serde(default)]
    pub monitored_calendars: Vec<String>,
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Events before this date are not synced.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sync_since: Option<OffsetDateTime>,
    /// `contactGroups/…` resource name of the synced contact group.
    #[serde(default)]
    pub contact_group: Option<String>,
    /// The user's overrides of the tenant's contact field mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_fields: Option<super::field_mapping::FieldMappingPatch>,
    /// Calendars that were the main calendar before the current one: they are not read any
    /// more, but the meetings the sync left there (those already over when the main calendar
    /// changed, and those Google refused to move) are still written there when the CRM edits
    /// them. See `calendar::rehome`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_main_calendars: Vec<String>,
    /// A re-homing of the account's meetings into a new main calendar is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehome: Option<Rehome>,
}

/// Where the move of an account's meetings into its new main calendar stands (resumable: the
/// worker carries it on job after job, within each job's Google calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehome {
    /// The page of the account's pairs to look at next (`None`: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Meetings moved so far, and those left where they are (over, or refused by Google).
    #[serde(default)]
    pub moved: u64,
    #[serde(default)]
    pub kept: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

impl Account {
    /// Whether the user granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A CRM user's Google connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub tenant: TenantId,
    pub user: UserId,
    pub status: AccountStatus,
    #[serde(default)]
    pub google_email: Option<String>,
    #[serde(default)]
    pub google_subject: Option<String>,
    #[serde(default)]
    pub products: Products,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// AES-256-GCM ciphertext of the refresh token (see `crypto`), never the token.
    #[serde(default)]
    pub refresh_token_ciphertext: Option<String>,
    /// The cached access token, sealed like the refresh token, and when it expires.
    #[serde(default)]
    pub access_token_ciphertext: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub access_token_expires_at: Option<OffsetDateTime>,
    /// Why the account needs the user to reconnect (`invalid_grant`, …).
    #[serde(default)]
    pub reauth_reason: Option<String>,
    #[serde(default)]
    pub settings: AccountSettings,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_sync_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Where the contacts sync stands, as of its last pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts_progress: Option<ContactsProgress>,
    /// When the scheduler next syncs the account (its entry in the due index; see
    /// `services::schedule`). `None` for accounts written before the index existed: they are
    /// due at their last write.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_sync_at: Option<OffsetDateTime>,
    /// Scheduled or queued runs that failed in a row (the next one backs off).
    #[serde(default)]
    pub sync_failures: u32,
}

impl Account {
    /// When the scheduler should sync the account, or `None` when it is not scheduled at all:
    /// only active accounts with a product the worker syncs are (paused, `needs_reauth` and
    /// disconnected accounts carry no due entry, so the scheduler never sees them).
    pub fn scheduled_at(&self) -> Option<OffsetDateTime> {
        (self.status.syncs() && self.has_synced_product())
            .then(|| self.next_sync_at.unwrap_or(self.updated_at))
    }

    /// Whether the account has a product the worker syncs (calendar or contacts; Gmail is
    /// only tokens).
    pub fn has_synced_product(&self) -> bool {
        self.products.contains(Product::Calendar) || self.products.contains(Product::Contacts)
    }
}

/// Where an account's contacts sync stands: what waits to be pushed (a mass push is carried
/// on through the queue, 200 at a time) and what the last pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactsProgress {
    /// CRM changes still waiting to reach Google.
    pub waiting: usize,
    /// Contacts created, updated or removed in Google by the last pass.
    pub pushed_last_pass: usize,
    /// Google changes the last pass gave the CRM.
    pub pulled_last_pass: usize,
    /// The synced contact group (`contactGroups/…`).
    pub group: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_pass_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::AccountEvent as E;
    use super::AccountStatus as S;

    #[test]
    fn state_machine() {
        assert_eq!(S::Active.on(E::PermanentAuthError), Ok(S::NeedsReauth));
        assert_eq!(S::NeedsReauth.on(E::Connected), Ok(S::Active));
        assert_eq!(S::Active.on(E::Pause), Ok(S::Paused));
        assert_eq!(S::Paused.on(E::Resume), Ok(S::Active));
        assert_eq!(S::Disconnected.on(E::Connected), Ok(S::Active));
        assert_eq!(S::NeedsReauth.on(E::Disconnect), Ok(S::Disconnected));
        assert!(S::Disconnected.on(E::Resume).is_err());
        assert!(S::NeedsReauth.on(E::Resume).is_err());
        assert!(S::Disconnected.on(E::PermanentAuthError).is_err());
        assert!(S::Active.syncs() && !S::Paused.syncs() && !S::NeedsReauth.syncs());
    }

    #[test]
    fn products_are_a_set() {
        let p: super::Products = serde_json::from_str(r#"["gmail","calendar","gmail"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"["calendar","gmail"]"#
        );
    }
}
