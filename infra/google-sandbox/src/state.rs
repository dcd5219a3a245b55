//! The sandbox's in-memory state: one struct behind one mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::faults::Fault;
use crate::push::ChannelState;

/// A registered OAuth client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Whether the project's owner disabled or deleted the client in the Cloud console.
    pub status: ClientStatus,
}

/// An OAuth client's standing in its project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientStatus {
    #[default]
    Enabled,
    /// `disabled_client`: the token endpoint refuses it until it is enabled again.
    Disabled,
    /// `deleted_client`: the token endpoint refuses it (Google lets an owner restore a
    /// deleted client for 30 days; `Enabled` again restores it here).
    Deleted,
}

/// A Google account.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub name: String,
    /// Stable numeric subject id (`sub` / `id`).
    pub sub: String,
    /// Whether Google verified the address (`email_verified`): false for an account made
    /// with an outside address whose verification mail was never answered.
    pub email_verified: bool,
}

/// The Workspace domain of an address (the ID token's `hd`): none for a consumer account
/// (`gmail.com`, `googlemail.com`).
pub fn hosted_domain(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !matches!(*d, "gmail.com" | "googlemail.com"))
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: String,
    pub scopes: BTreeSet<String>,
    pub code_challenge: Option<(String, String)>,
    pub offline: bool,
    pub nonce: Option<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub user: String,
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub user: String,
    pub client_id: String,
    pub scopes: BTreeSet<String>,
}

/// One row of the request log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub user: Option<String>,
    pub at: String,
}

/// A stored Calendar event (masters, single events and materialized exceptions).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The full resource as served (server fields included).
    pub body: Map<String, Value>,
    pub mod_seq: u64,
    pub order: u64,
}

impl StoredEvent {
    pub fn status(&self) -> &str {
        self.body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("confirmed")
    }
    pub fn is_cancelled(&self) -> bool {
        self.status() == "cancelled"
    }
    pub fn recurring_event_id(&self) -> Option<&str> {
        self.body.get("recurringEventId").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub owner: String,
    pub summary: String,
    pub time_zone: String,
    pub resource_id: String,
    pub etag: String,
    pub updated: Timestamp,
    pub events: BTreeMap<String, StoredEvent>,
    /// Modification counter: every write takes the next value.
    pub seq: u64,
    /// Bumped to invalidate every sync token issued so far.
    pub sync_epoch: u64,
    pub next_order: u64,
    /// Whether `events.watch` works on it. Google refuses push for some calendars (holiday
    /// and other subscribed calendars, some other users' calendars) with 400
    /// `pushNotSupportedForRequestedResource`.
    pub push_supported: bool,
}

/// A sync token's meaning (Calendar and People).
#[derive(Debug, Clone)]
pub struct SyncCursor {
    pub owner: String,
    pub collection: String,
    pub seq: u64,
    pub epoch: u64,
    pub issued_at: Timestamp,
}

/// What a People `connections.list` page or sync token is bound to: Google wants "all other
/// request parameters" to match the call that minted it, and sync tokens "expire 7 days
/// after the full sync".
#[derive(Debug, Clone)]
pub struct PeopleToken {
    pub params: String,
    pub full_sync_at: Timestamp,
}

/// A page token's meaning.
#[derive(Debug, Clone)]
pub struct PageCursor {
    pub collection: String,
    /// Keyset position: the sort key of the last item served.
    pub after: SortKey,
    pub snapshot_seq: u64,
    pub since: Option<u64>,
}

/// Sort key for keyset pagination: stable under inserts and deletes.
pub type SortKey = (i128, i128, String);

#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub resource_name: String,
    pub source_id: String,
    /// Field arrays as the client wrote them (`names`, `emailAddresses`, ...).
    pub fields: Map<String, Value>,
    pub groups: BTreeSet<String>,
    pub etag: String,
    pub updated: Timestamp,
    pub deleted: bool,
    pub mod_seq: u64,
    pub order: u64,
    /// The Google profile (or Workspace directory entry) Google linked the contact to
    /// through a verified e-mail or phone: merged into reads whose `sources` include
    /// `READ_SOURCE_TYPE_PROFILE` (Google's default).
    pub profile: Option<LinkedProfile>,
    /// Former resource names (Google renames a contact it links to a profile).
    pub previous: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LinkedProfile {
    pub id: String,
    /// `PROFILE` or `DOMAIN_PROFILE`.
    pub kind: String,
    /// Field arrays of the profile (`names`, `emailAddresses`, `organizations`, ...).
    pub fields: Map<String, Value>,
    pub updated: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ContactGroup {
    pub id: String,
    pub name: String,
    pub system: bool,
    pub etag: String,
    pub updated: Timestamp,
    pub client_data: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    pub persons: BTreeMap<String, StoredPerson>,
    pub groups: BTreeMap<String, ContactGroup>,
    pub seq: u64,
    pub sync_epoch: u64,
    pub next_order: u64,
}

/// Everything the sandbox knows.
#[derive(Debug, Default)]
pub struct State {
    pub access_token_ttl_secs: i64,
    pub clients: BTreeMap<String, OAuthClient>,
    pub users: BTreeMap<String, User>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Scopes granted per (user, client).
    pub grants: HashMap<(String, String), BTreeSet<String>>,
    pub calendars: BTreeMap<String, Calendar>,
    pub address_books: HashMap<String, AddressBook>,
    pub channels: HashMap<String, ChannelState>,
    pub sync_tokens: HashMap<String, SyncCursor>,
    pub page_tokens: HashMap<String, PageCursor>,
    /// People connections tokens (page and sync): the parameters of the call that minted
    /// them, and when their chain's full sync started.
    pub people_tokens: HashMap<String, PeopleToken>,
    pub faults: Vec<Fault>,
    pub next_fault_id: u64,
    pub log: Vec<LoggedRequest>,
    /// Push notifications sent, with the receiver's answer (0: no answer).
    pub push_log: Vec<PushDelivery>,
    /// People's write-propagation delay: `connections.list` shows a write only this long
    /// after it was made (0: at once).
    pub people_propagation_delay_secs: i64,
    /// Users with a People mutation in progress (Google: one at a time per user).
    pub people_mutating: BTreeSet<String>,
}

/// One delivery attempt of a push notification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushDelivery {
    pub channel_id: String,
    /// `sync`, `exists`, `not_exists`.
    pub state: String,
    pub status: u16,
}

impl State {
    pub fn new(access_token_ttl_secs: i64) -> Self {
        State {
            access_token_ttl_secs,
            ..Default::default()
        }
    }

    /// The user who owns an access token (even if expired), for the request log.
    pub fn user_of_token(&self, token: &str) -> Option<String> {
        self.access_tokens.get(token).map(|t| t.user.clone())
    }

    pub fn issue_page_token(&mut self, cursor: PageCursor) -> String {
        let token = crate::ids::token(18);
        self.page_tokens.insert(token.clone(), cursor);
        token
    }

    pub fn issue_sync_token(&mut self, cursor: SyncCursor) -> String {
        let token = crate::ids::token(18);
        self.sync_tokens.insert(token.clone(), cursor);
        token
    }
}
