use super::{AccountId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    Active,
    Stopped,
    /// Not a channel: Google answered `pushNotSupportedForRequestedResource` for the
    /// calendar (holiday and other subscribed calendars, some other users' calendars). Until
    /// `expires_at` the calendar is polled and no watch is tried (see
    /// `calendar::channels`).
    PushUnsupported,
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

/// A calendar's listing generation: a fresh id each time a job queued by push starts listing
/// the calendar (and when a channel is first opened on it). The webhook names the job it
/// queues after the current generation, so every notification that arrives before the next
/// listing starts collapses into the one job about to list (which will see the change), and
/// the first one after it gets a job of its own. Per calendar, not per channel: it outlives
/// channel renewals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarListing {
    pub calendar_id: String,
    /// A ULID: never the same twice, even if the item is deleted and made again.
    pub generation: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}
