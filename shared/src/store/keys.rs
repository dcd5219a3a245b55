//! The one key builder for the table, with every access pattern next to its keys.
//!
//! | entity | PK | SK | GSI1PK / GSI1SK | GSI2PK / GSI2SK | TTL |
//! |---|---|---|---|---|---|
//! | tenant | `TENANT#{t}` | `TENANT` | `TENANTS` / `{t}` | | |
//! | API key | `APIKEY#{key}` | `APIKEY` | `TENANT#{t}#APIKEYS` / `{key}` | | |
//! | account | `TENANT#{t}#USER#{u}` | `ACCOUNT` | `TENANT#{t}#ACCOUNTS` / `{u}` | `DUE#{shard}` / `{next sync, RFC 3339 UTC}#{t}#{u}` while the account is scheduled (active, calendar product) | |
//! | pair | `TENANT#{t}#USER#{u}` | `PAIR#{collection}#{crm id}` | `TENANT#{t}#USER#{u}#GID#{collection}` / `{google id}` | `TENANT#{t}#USER#{u}#DIRTY#{collection}` / `{crm id}` while the CRM side waits for the worker | |
//! | cursor | `TENANT#{t}#USER#{u}` | `CURSOR#{scope}` | | | |
//! | calendar listing generation | `TENANT#{t}#USER#{u}` | `LISTING#{calendar}` | | | 31 days after it was set |
//! | watch channel | `CHANNEL#{channel}` | `CHANNEL` | `TENANT#{t}#USER#{u}#CHANNELS` / `{calendar}#{channel}` | | |
//! | change record (or a void marker) | `TENANT#{t}#FEED` | `{record id}` | | | 30 days |
//! | feed sequence counter (the last number given) | `TENANT#{t}#FEEDSEQ` | `FEEDSEQ` | | | |
//! | webhook delivery cursor | `TENANT#{t}` | `DELIVERY` | | | |
//! | OAuth session | `OAUTH#{state}` | `SESSION` | | | 10 minutes |
//! | worker lease | `TENANT#{t}#USER#{u}` | `LEASE` | | | the lease's end |
//! | tenant's Google call budget | `TENANT#{t}` | `BUDGET` | | | |
//!
//! Access patterns (every one a `GetItem` or a `Query`, never a `Scan`):
//! 1. Authenticate an API key: get `APIKEY#{key}` (the key id is part of the key).
//! 2. List a tenant's API keys: query GSI1 `TENANT#{t}#APIKEYS`.
//! 3. Get a tenant: get `TENANT#{t}`.
//! 4. Get a user's account: get `TENANT#{t}#USER#{u}` / `ACCOUNT`.
//! 5. List a tenant's accounts: query GSI1 `TENANT#{t}#ACCOUNTS`.
//! 6. Get a pair by CRM id: get `PAIR#{collection}#{crm id}`; list a user's pairs: query
//!    `TENANT#{t}#USER#{u}` with SK prefix `PAIR#{collection}#`.
//! 7. Find a pair by Google id: query GSI1 `TENANT#{t}#USER#{u}#GID#{collection}` = `{google id}`.
//! 8. The pairs whose CRM side changed since the last pass: query GSI2
//!    `TENANT#{t}#USER#{u}#DIRTY#{collection}` (sparse: only waiting pairs carry it).
//! 9. Read/checkpoint a sync cursor: get `CURSOR#{scope}` in the user's partition.
//! 10. Look a channel up from a Google notification: get `CHANNEL#{channel}`; a user's
//!     channels: query GSI1 `TENANT#{t}#USER#{u}#CHANNELS`.
//! 11. Read a tenant's change feed after a cursor: query `TENANT#{t}#FEED` with SK > cursor
//!     (gap-aware: see `Store::list_changes`); append: add 1 to `FEEDSEQ` (an atomic
//!     `UpdateItem ADD`, no read) and put the record under its number on condition the slot
//!     is free.
//! 12. Consume an OAuth session once: delete `OAUTH#{state}` on condition it exists.
//! 13. Read/advance a tenant's webhook delivery cursor (and its lease): get `TENANT#{t}` / `DELIVERY`.
//! 14. Take / release the worker's lease on an account: put `LEASE` in the user's partition on
//!     condition no live one exists (an expired lease counts as absent); delete it after.
//! 15. The accounts due for a scheduled sync: query GSI2 `DUE#{shard}` for every shard with
//!     SK ≤ `{now}$` (sparse: only scheduled accounts carry it; `$` sorts after the `#` that
//!     follows the time, so an account due exactly now is included). The shard is a hash of
//!     tenant and user ([`DUE_SHARDS`] of them), so no index partition takes every account's
//!     writes; the sort key starts with the due time, so "what is due" is a range, and moving
//!     an account's due time forward takes it out of the range (the index is its own resume
//!     point).
//! 16. Take from / give back to a tenant's Google call budget (a token bucket): get and put
//!     `TENANT#{t}` / `BUDGET` under its version.
//! 17. A calendar's listing generation (see `calendar::channels`): get
//!     `LISTING#{calendar}` in the user's partition (the webhook, per notification); put it
//!     (the worker, before a push job lists the calendar).
//! 18. List every tenant (the operator's console): query GSI1 `TENANTS`.
//! 19. An account's health (the admin console): query the user's partition with SK prefix
//!     `CURSOR#` (deletions held back), count GSI2 `…#DIRTY#{collection}` up to a cap, read
//!     `TENANT#{t}#FEED` newest first; get a feed record by id (redeliver).

use crate::domain::{ApiKeyId, Collection, TenantId, UserId};
use time::OffsetDateTime;

use super::Key;

/// Attribute names, shared by the DynamoDB adapter, the page tokens and the template.
pub mod attr {
    pub const PK: &str = "PK";
    pub const SK: &str = "SK";
    pub const GSI1PK: &str = "GSI1PK";
    pub const GSI1SK: &str = "GSI1SK";
    pub const GSI2PK: &str = "GSI2PK";
    pub const GSI2SK: &str = "GSI2SK";
    pub const TTL: &str = "ttl";
    pub const VERSION: &str = "v";
    pub const DATA: &str = "d";
}

fn user_pk(t: &TenantId, u: &UserId) -> String {
    format!("TENANT#{t}#USER#{u}")
}

pub fn tenant(t: &TenantId) -> Key {
    Key::new(format!("TENANT#{t}"), "TENANT")
}

/// The operator's index of tenants (GSI1 partition).
pub const TENANTS: &str = "TENANTS";

pub fn tenant_gsi1(t: &TenantId) -> Key {
    Key::new(TENANTS, t.as_str())
}

pub fn api_key(id: &ApiKeyId) -> Key {
    Key::new(format!("APIKEY#{id}"), "APIKEY")
}

pub fn api_key_gsi1(t: &TenantId, id: &ApiKeyId) -> Key {
    Key::new(api_keys_of(t), id.as_str())
}

pub fn api_keys_of(t: &TenantId) -> String {
    format!("TENANT#{t}#APIKEYS")
}

pub fn account(t: &TenantId, u: &UserId) -> Key {
    Key::new(user_pk(t, u), "ACCOUNT")
}

pub fn account_gsi1(t: &TenantId, u: &UserId) -> Key {
    Key::new(accounts_of(t), u.as_str())
}

pub fn accounts_of(t: &TenantId) -> String {
    format!("TENANT#{t}#ACCOUNTS")
}

pub fn pair(t: &TenantId, u: &UserId, c: Collection, crm_id: &str) -> Key {
    Key::new(user_pk(t, u), format!("{}{crm_id}", pairs_prefix(c)))
}

pub fn pairs_partition(t: &TenantId, u: &UserId) -> String {
    user_pk(t, u)
}

pub fn pairs_prefix(c: Collection) -> String {
    format!("PAIR#{}#", c.as_str())
}

pub fn pair_gsi1(t: &TenantId, u: &UserId, c: Collection, google_id: &str) -> Key {
    Key::new(pairs_by_google_id(t, u, c), google_id)
}

pub fn pairs_by_google_id(t: &TenantId, u: &UserId, c: Collection) -> String {
    format!("{}#GID#{}", user_pk(t, u), c.as_str())
}

pub fn dirty_pair(t: &TenantId, u: &UserId, c: Collection, crm_id: &str) -> Key {
    Key::new(dirty_pairs_of(t, u, c), crm_id)
}

pub fn dirty_pairs_of(t: &TenantId, u: &UserId, c: Collection) -> String {
    format!("{}#DIRTY#{}", user_pk(t, u), c.as_str())
}

pub const CURSOR_PREFIX: &str = "CURSOR#";

pub fn cursor(t: &TenantId, u: &UserId, scope: &str) -> Key {
    Key::new(user_pk(t, u), format!("{CURSOR_PREFIX}{scope}"))
}

pub fn listing(t: &TenantId, u: &UserId, calendar: &str) -> Key {
    Key::new(user_pk(t, u), format!("LISTING#{calendar}"))
}

pub fn channel(id: &str) -> Key {
    Key::new(format!("CHANNEL#{id}"), "CHANNEL")
}

pub fn channel_gsi1(t: &TenantId, u: &UserId, calendar: &str, id: &str) -> Key {
    Key::new(channels_of(t, u), format!("{calendar}#{id}"))
}

pub fn channels_of(t: &TenantId, u: &UserId) -> String {
    format!("{}#CHANNELS", user_pk(t, u))
}

pub fn feed_partition(t: &TenantId) -> String {
    format!("TENANT#{t}#FEED")
}

/// The tenant's feed sequence counter: its version is the last number given. Its own
/// partition key, so its writes (one per append) share no partition's throughput with the
/// tenant's other items.
pub fn feed_counter(t: &TenantId) -> Key {
    Key::new(format!("TENANT#{t}#FEEDSEQ"), "FEEDSEQ")
}

pub fn feed_record(t: &TenantId, id: &str) -> Key {
    Key::new(feed_partition(t), id)
}

/// The top 48 bits of a numbered feed id: a ULID's timestamp field at its maximum, so every
/// numbered id sorts after every time-based ULID the feed gave before numbers (until the
/// year 10889) and still reads as a ULID (26 Crockford base32 characters, first one `7`).
const FEED_ID_MARK: u128 = 0xFFFF_FFFF_FFFF << 80;

/// The id of the feed's record number `seq` (≥ 1): a ULID whose last 64 bits are the number,
/// so ids sort as numbers do.
pub fn feed_id(seq: u64) -> String {
    ulid::Ulid(FEED_ID_MARK | u128::from(seq)).to_string()
}

/// The number of a numbered feed id (in either case); `None` for an older, time-based id.
pub fn feed_seq(id: &str) -> Option<u64> {
    let value = ulid::Ulid::from_string(id).ok()?.0;
    (value >> 64 == FEED_ID_MARK >> 64).then_some(value as u64)
}

/// The tenant's webhook delivery cursor and lease (not in the feed partition, so a feed
/// query never returns it).
pub fn delivery_cursor(t: &TenantId) -> Key {
    Key::new(format!("TENANT#{t}"), "DELIVERY")
}

pub fn lease(t: &TenantId, u: &UserId) -> Key {
    Key::new(user_pk(t, u), "LEASE")
}

/// How many partitions the due index is spread over. Every account write rewrites its due
/// entry, so one partition would take every account's writes; 16 keep each well below an
/// index partition's 1,000 writes/s even at 100,000 accounts polled every 10 minutes (about
/// 170 syncs/s, a few account writes each), while a scheduler run costs only 16 queries.
/// Changing it re-homes entries only as accounts are written: change it with care.
pub const DUE_SHARDS: u32 = 16;

/// The due-index shard of an account: a stable hash of tenant and user (SHA-256, so it does
/// not change between builds or Rust versions).
pub fn due_shard(t: &TenantId, u: &UserId) -> u32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{t}\u{1f}{u}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % DUE_SHARDS
}

pub fn due_partition(shard: u32) -> String {
    format!("DUE#{shard:02}")
}

/// A time as the due index sorts it: RFC 3339 in UTC, whole seconds, fixed width
/// (`2026-06-01T12:00:00Z`), so text order is time order.
pub fn due_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

pub fn account_due(t: &TenantId, u: &UserId, at: OffsetDateTime) -> Key {
    Key::new(
        due_partition(due_shard(t, u)),
        format!("{}#{t}#{u}", due_time(at)),
    )
}

/// The inclusive upper bound of "due at or before `now`" in a shard.
pub fn due_until(now: OffsetDateTime) -> String {
    format!("{}$", due_time(now))
}

pub fn budget(t: &TenantId) -> Key {
    Key::new(format!("TENANT#{t}"), "BUDGET")
}

pub fn oauth_session(state: &str) -> Key {
    Key::new(format!("OAUTH#{state}"), "SESSION")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_never_share_a_partition() {
        let a = TenantId::parse("acme").unwrap();
        let b = TenantId::parse("acme-2").unwrap();
        let u = UserId::parse("u1").unwrap();
        assert_ne!(account(&a, &u).pk, account(&b, &u).pk);
        assert!(!account(&b, &u)
            .pk
            .starts_with(&format!("{}#", account(&a, &u).pk)));
        assert_ne!(feed_partition(&a), feed_partition(&b));
    }

    #[test]
    fn feed_ids_sort_as_their_numbers_after_every_older_id() {
        let legacy = ulid::Ulid::from_parts(u64::from(u32::MAX) * 1000, u128::MAX).to_string();
        let ids: Vec<String> = [1u64, 2, 31, 32, 1023, 1024, u64::MAX]
            .iter()
            .map(|&n| feed_id(n))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(legacy < ids[0]);
        for (id, n) in ids.iter().zip([1u64, 2, 31, 32, 1023, 1024, u64::MAX]) {
            assert_eq!(id.len(), 26);
            assert!(id.starts_with("7ZZZZZZZZZ"));
            assert_eq!(feed_seq(id), Some(n));
            assert_eq!(feed_seq(&id.to_lowercase()), Some(n));
        }
        assert_eq!(feed_id(1), "7ZZZZZZZZZ0000000000000001");
        assert_eq!(feed_seq(&legacy), None);
        assert_eq!(feed_seq("not-an-id"), None);
    }

    #[test]
    fn due_keys_sort_by_time_and_spread_over_the_shards() {
        let t = TenantId::parse("acme").unwrap();
        let at = time::macros::datetime!(2026-06-01 12:00:05 UTC);
        assert_eq!(due_time(at), "2026-06-01T12:00:05Z");
        assert_eq!(
            due_time(time::macros::datetime!(2026-06-01 14:00:05.9 +02:00)),
            "2026-06-01T12:00:05Z"
        );
        let u = UserId::parse("u1").unwrap();
        let key = account_due(&t, &u, at);
        assert!(key.sk.as_str() <= due_until(at).as_str());
        assert!(key.sk.as_str() > due_until(at - time::Duration::seconds(1)).as_str());
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
            let u = UserId::parse(&format!("user-{i}")).unwrap();
            let shard = due_shard(&t, &u);
            assert!(shard < DUE_SHARDS);
            assert_eq!(shard, due_shard(&t, &u));
            seen.insert(shard);
        }
        assert_eq!(seen.len(), DUE_SHARDS as usize);
    }
}
