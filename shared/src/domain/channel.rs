use super::{AccountId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    Active,
    Stopped,
}

/// A Google Calendar push channel (`events.watch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchChannel {
    pub id: String,
    pub tenant: TenantId,
    pub user: UserId,
    pub account: AccountId,
    pub calendar_id: String,
    pub resource_id: String,
    /// Hex SHA-256 of the channel token (the token itself is only sent to Google).
    pub token_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub state: ChannelState,
}
