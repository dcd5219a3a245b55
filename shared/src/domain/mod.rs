//! The product's nouns. Identifiers are newtypes that parse once at the edge
//! ([`ids`]); records are plain serde structs stored through the store port.

pub mod account;
pub mod api_key;
pub mod channel;
pub mod cursor;
pub mod delivery;
pub mod feed;
pub mod field_mapping;
pub mod ids;
pub mod oauth_session;
pub mod pair;
pub mod quota;
pub mod settings;
pub mod tenant;
pub mod validate;

pub use account::{
    Account, AccountEvent, AccountSettings, AccountStatus, ContactsProgress, Product, Products,
    Rehome,
};
pub use api_key::{ApiKey, ApiKeyScope};
pub use channel::{CalendarListing, ChannelState, WatchChannel};
pub use cursor::Cursor;
pub use feed::{ChangeKind, ChangeRecord};
pub use ids::{AccountId, ApiKeyId, CrmId, IdError, TenantId, UserId};
pub use oauth_session::OAuthSession;
pub use pair::{Collection, PairState, PairStatus};
pub use settings::{
    ConflictPolicy, ConnectionDefaults, DeletionPolicy, Direction, GoogleQuota, GuestNotifications,
    PrivateEventPolicy, TenantSettings,
};
pub use tenant::{ClientRefusal, Tenant};
