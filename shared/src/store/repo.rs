//! Domain operations over the store port. One implementation, whatever the adapter:
//! records are serialized into an item's data, keyed by [`keys`](super::keys).

use super::{keys, Condition, Index, Item, Key, Page, PageToken, Query, SharedTable, SortKey};
use super::{StoreError, StoreResult, WriteOp};
use crate::domain::{
    Account, ApiKey, ApiKeyId, CalendarListing, ChangeRecord, Collection, Cursor, OAuthSession,
    PairStatus, Tenant, TenantId, UserId, WatchChannel,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

/// A record as read, with the version to write it back under.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct Records<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// How many times [`Store::update_account`] reads the account again after losing a race.
const ACCOUNT_UPDATE_ATTEMPTS: u32 = 5;

/// Why [`Store::update_account`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AccountUpdateError<E> {
    /// No account is stored for the user.
    #[error("no Google account is connected for this user")]
    Missing,
    /// The change itself refused (its own error).
    #[error(transparent)]
    Refused(E),
    /// The store failed, or the account kept changing under the update
    /// ([`StoreError::Conflict`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times an append takes new numbers when readers voided the ones it had (each
/// time means its writes came later than the feed's grace: not something that repeats).
const FEED_APPEND_ATTEMPTS: u32 = 8;

/// The widest gap in the feed's numbers a reader voids slot by slot; a wider one is
/// expired records, passed once settled (see [`Store::list_changes`]).
pub const FEED_VOID_MAX: u64 = 1000;

/// The feed's timing (see [`Store::list_changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedTiming {
    /// How long a reader waits for a missing number (measured from when the next record's
    /// number was taken) before it voids the slot.
    pub grace: std::time::Duration,
    /// How long after taking its numbers a writer still writes under them; after that it
    /// takes new ones.
    pub write_window: std::time::Duration,
    /// How old the record after a gap too wide to void must be for the gap to be passed:
    /// well past the write window and any request still in flight.
    pub settle: std::time::Duration,
}

impl Default for FeedTiming {
    fn default() -> Self {
        Self {
            grace: std::time::Duration::from_secs(5),
            write_window: std::time::Duration::from_secs(30),
            settle: std::time::Duration::from_secs(30 * 60),
        }
    }
}

/// How long change-feed records are kept.
pub const FEED_RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Clone)]
pub struct Store {
    table: SharedTable,
    feed: FeedTiming,
}

/// How long a deleted pair (a tombstone) is kept after its deletion: long enough for late
/// news of it (a page read again, a notification that raced the deletion) and a CRM
/// re-push of the deleted record, then the store's TTL removes it (it used to stay forever,
/// in every listing of the user's pairs). A record the CRM writes again after that is a new
/// pair (a new Google event).
pub const TOMBSTONE_SECS: i64 = 90 * 86_400;

fn to_data<T: Serialize>(value: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<Versioned<T>> {
    let version = item.version;
    let value = serde_json::from_value(item.data)
        .map_err(|e| StoreError::Corrupt(format!("{}/{}: {e}", item.key.pk, item.key.sk)))?;
    Ok(Versioned { value, version })
}

impl Store {
    pub fn new(table: SharedTable) -> Self {
        Self {
            table,
            feed: FeedTiming::default(),
        }
    }

    /// The same store with other feed timing (tests that wait out a grace period).
    pub fn with_feed_timing(mut self, feed: FeedTiming) -> Self {
        self.feed = feed;
        self
    }

    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    async fn get_as<T: DeserializeOwned>(&self, key: &Key) -> StoreResult<Option<Versioned<T>>> {
        self.table.get(key).await?.map(from_item).transpose()
    }

    async fn page_of<T: DeserializeOwned>(&self, query: Query) -> StoreResult<Records<T>> {
        let Page { items, next } = self.table.query(query).await?;
        Ok(Records {
            items: items
                .into_iter()
                .map(|i| from_item(i).map(|v| v.value))
                .collect::<StoreResult<_>>()?,
            next: next.map(|t| t.encode()),
        })
    }

    fn page_token(page: Option<&str>) -> StoreResult<Option<PageToken>> {
        page.map(PageToken::decode).transpose()
    }

    /// Writes `item` as a new record (version 1) or over `expected` (optimistic).
    async fn write(&self, item: Item, expected: Option<u64>) -> StoreResult<u64> {
        let (version, cond) = match expected {
            None => (1, Condition::NotExists),
            Some(v) => (v + 1, Condition::Version(v)),
        };
        self.table.put(item.with_version(version), cond).await?;
        Ok(version)
    }

    // ---- tenants and API keys -------------------------------------------------------------

    /// The tenant's item, listed in the operator's tenant index (GSI1 `TENANTS`).
    fn tenant_item(tenant: &Tenant) -> StoreResult<Item> {
        Ok(Item::new(keys::tenant(&tenant.id), to_data(tenant)?)
            .with_gsi1(keys::tenant_gsi1(&tenant.id)))
    }

    fn api_key_item(key: &ApiKey) -> StoreResult<Item> {
        Ok(Item::new(keys::api_key(&key.id), to_data(key)?)
            .with_gsi1(keys::api_key_gsi1(&key.tenant, &key.id)))
    }

    /// Creates a tenant and its first key together; `ConditionFailed` if the id is taken.
    pub async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> StoreResult<()> {
        self.table
            .transact(vec![
                WriteOp::Put(Self::tenant_item(tenant)?, Condition::NotExists),
                WriteOp::Put(Self::api_key_item(first_key)?, Condition::NotExists),
            ])
            .await
    }

    pub async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Versioned<Tenant>>> {
        self.get_as(&keys::tenant(id)).await
    }

    pub async fn update_tenant(&self, tenant: &Tenant, expected: u64) -> StoreResult<u64> {
        self.write(Self::tenant_item(tenant)?, Some(expected)).await
    }

    /// Every tenant, by id (the operator's list). A tenant last written before the index
    /// existed appears once its item is written again (any settings change).
    pub async fn list_tenants(
        &self,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<Tenant>> {
        let query = Query::partition(Index::Gsi1, keys::TENANTS)
            .limit(limit)
            .page(Self::page_token(page)?);
        self.page_of(query).await
    }

    /// Adds a key to an existing tenant. With `tenant` (the tenant as changed by the caller,
    /// and the version it was read at) the tenant is written in the same transaction — how
    /// the admin-key count stays exact.
    pub async fn create_api_key(
        &self,
        key: &ApiKey,
        tenant: Option<(&Tenant, u64)>,
    ) -> StoreResult<()> {
        let tenant_op = match tenant {
            Some((t, version)) => WriteOp::Put(
                Self::tenant_item(t)?.with_version(version + 1),
                Condition::Version(version),
            ),
            None => WriteOp::Check(keys::tenant(&key.tenant), Condition::Exists),
        };
        self.table
            .transact(vec![
                tenant_op,
                WriteOp::Put(Self::api_key_item(key)?, Condition::NotExists),
            ])
            .await
    }

    /// Deletes a key and writes its tenant (changed by the caller, read at `tenant_version`)
    /// in one transaction.
    pub async fn delete_api_key_with_tenant(
        &self,
        key: &ApiKeyId,
        tenant: &Tenant,
        tenant_version: u64,
    ) -> StoreResult<()> {
        self.table
            .transact(vec![
                WriteOp::Put(
                    Self::tenant_item(tenant)?.with_version(tenant_version + 1),
                    Condition::Version(tenant_version),
                ),
                WriteOp::Delete(keys::api_key(key), Condition::Exists),
            ])
            .await
    }

    pub async fn get_api_key(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKey>> {
        Ok(self.get_as(&keys::api_key(id)).await?.map(|v| v.value))
    }

    pub async fn list_api_keys(
        &self,
        tenant: &TenantId,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<ApiKey>> {
        let query = Query::partition(Index::Gsi1, keys::api_keys_of(tenant))
            .limit(limit)
            .page(Self::page_token(page)?);
        self.page_of(query).await
    }

    /// Deletes a key of `tenant`. `Ok(false)` if the tenant has no such key — including when
    /// the key belongs to another tenant.
    pub async fn delete_api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> StoreResult<bool> {
        let key = keys::api_key(id);
        let Some(found) = self.get_as::<ApiKey>(&key).await? else {
            return Ok(false);
        };
        if &found.value.tenant != tenant {
            return Ok(false);
        }
        match self
            .table
            .delete(&key, Condition::Version(found.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- accounts -------------------------------------------------------------------------

    /// The account's item. Its due-index entry (GSI2) is derived from the account itself on
    /// every write, so no write can leave the index out of step with the account's status.
    fn account_item(a: &Account) -> StoreResult<Item> {
        let mut item = Item::new(keys::account(&a.tenant, &a.user), to_data(a)?)
            .with_gsi1(keys::account_gsi1(&a.tenant, &a.user));
        if let Some(due) = a.scheduled_at() {
            item = item.with_gsi2(keys::account_due(&a.tenant, &a.user, due));
        }
        Ok(item)
    }

    /// One page of the accounts of due-index `shard` due at or before `now`, earliest first,
    /// with the versions they were indexed at. The index is eventually consistent: write back
    /// under that version, so a stale entry only costs a failed condition.
    pub async fn list_due_accounts(
        &self,
        shard: u32,
        now: OffsetDateTime,
        limit: u32,
        page: Option<PageToken>,
    ) -> StoreResult<(Vec<Versioned<Account>>, Option<PageToken>)> {
        let query = Query::partition(Index::Gsi2, keys::due_partition(shard))
            .sort(SortKey::AtMost(keys::due_until(now)))
            .limit(limit)
            .page(page);
        let Page { items, next } = self.table.query(query).await?;
        let accounts = items
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<_>>()?;
        Ok((accounts, next))
    }

    pub async fn get_account(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> StoreResult<Option<Versioned<Account>>> {
        self.get_as(&keys::account(tenant, user)).await
    }

    /// Creates (`expected = None`) or updates an account under optimistic concurrency.
    pub async fn put_account(&self, account: &Account, expected: Option<u64>) -> StoreResult<u64> {
        self.write(Self::account_item(account)?, expected).await
    }

    /// Read-modify-write of an account under optimistic concurrency: `change` is applied to
    /// the account as stored (again after a lost race, so it must be repeatable), stamped
    /// `now`, and written back under the version it was read at.
    pub async fn update_account(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        mut change: impl FnMut(&mut Account),
    ) -> Result<Account, AccountUpdateError<std::convert::Infallible>> {
        self.try_update_account(tenant, user, now, |a| {
            change(a);
            Ok(())
        })
        .await
    }

    /// [`Store::update_account`] with a change that may refuse (its error is
    /// [`AccountUpdateError::Refused`], and nothing is written).
    pub async fn try_update_account<E>(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: OffsetDateTime,
        mut change: impl FnMut(&mut Account) -> Result<(), E>,
    ) -> Result<Account, AccountUpdateError<E>> {
        for _ in 0..ACCOUNT_UPDATE_ATTEMPTS {
            let current = self
                .get_account(tenant, user)
                .await?
                .ok_or(AccountUpdateError::Missing)?;
            let mut account = current.value;
            change(&mut account).map_err(AccountUpdateError::Refused)?;
            account.updated_at = now;
            match self.put_account(&account, Some(current.version)).await {
                Ok(_) => return Ok(account),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // Written under the update every time: a passing condition, retried by the caller.
        Err(StoreError::Conflict.into())
    }

    pub async fn list_accounts(
        &self,
        tenant: &TenantId,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<Account>> {
        let query = Query::partition(Index::Gsi1, keys::accounts_of(tenant))
            .limit(limit)
            .page(Self::page_token(page)?);
        self.page_of(query).await
    }

    // ---- OAuth sessions -------------------------------------------------------------------

    pub async fn create_oauth_session(&self, s: &OAuthSession) -> StoreResult<()> {
        let item = Item::new(keys::oauth_session(&s.state), to_data(s)?)
            .with_ttl(s.expires_at.unix_timestamp());
        self.table.put(item, Condition::NotExists).await
    }

    /// Consumes a session exactly once: the first caller gets it, every later one `None`
    /// (as does everyone after it expired).
    pub async fn take_oauth_session(&self, state: &str) -> StoreResult<Option<OAuthSession>> {
        match self
            .table
            .delete(&keys::oauth_session(state), Condition::Exists)
            .await
        {
            Ok(Some(item)) => Ok(Some(from_item(item)?.value)),
            Ok(None) | Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- pairs ----------------------------------------------------------------------------

    fn pair_item(t: &TenantId, u: &UserId, p: &PairStatus, dirty: bool) -> StoreResult<Item> {
        let data = match p.deleted_at {
            // A tombstone keeps what late news and a CRM re-push are decided by, not the
            // rooms Google last showed.
            Some(_) if !p.google_resources.is_empty() => {
                let mut stripped = p.clone();
                stripped.google_resources.clear();
                to_data(&stripped)?
            }
            _ => to_data(p)?,
        };
        let mut item = Item::new(keys::pair(t, u, p.collection, p.crm_id.as_str()), data);
        if let Some(at) = p.deleted_at {
            item = item.with_ttl(at.unix_timestamp() + TOMBSTONE_SECS);
        }
        if let Some(gid) = &p.google_id {
            item = item.with_gsi1(keys::pair_gsi1(t, u, p.collection, gid));
        }
        if dirty {
            item = item.with_gsi2(keys::dirty_pair(t, u, p.collection, p.crm_id.as_str()));
        }
        Ok(item)
    }

    pub async fn get_pair(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        crm_id: &str,
    ) -> StoreResult<Option<Versioned<PairStatus>>> {
        self.get_as(&keys::pair(t, u, c, crm_id)).await
    }

    /// Creates (`expected = None`: the "create once" lock) or updates a pair that has nothing
    /// waiting for the worker.
    pub async fn put_pair(
        &self,
        t: &TenantId,
        u: &UserId,
        pair: &PairStatus,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        self.write(Self::pair_item(t, u, pair, false)?, expected)
            .await
    }

    /// Like [`Self::put_pair`], marking the pair as changed on the CRM side (the worker's
    /// next pass finds it through the dirty index).
    pub async fn put_dirty_pair(
        &self,
        t: &TenantId,
        u: &UserId,
        pair: &PairStatus,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        self.write(Self::pair_item(t, u, pair, true)?, expected)
            .await
    }

    /// The user's pairs with CRM changes waiting for the worker.
    pub async fn list_dirty_pairs(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<Versioned<PairStatus>>> {
        let query = Query::partition(Index::Gsi2, keys::dirty_pairs_of(t, u, c))
            .limit(limit)
            .page(Self::page_token(page)?);
        let Page { items, next } = self.table.query(query).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // The index is eventually consistent: read the pair itself, and skip it if it is
            // no longer dirty.
            let fresh = self.table.get(&item.key).await?;
            if let Some(fresh) = fresh.filter(|i| i.gsi2.is_some()) {
                out.push(from_item(fresh)?);
            }
        }
        Ok(Records {
            items: out,
            next: next.map(|t| t.encode()),
        })
    }

    /// Replaces a pair's key (a Google-born pair gets the CRM id the CRM gave it): the new
    /// pair is created only if the id is free, and the old one removed, atomically.
    pub async fn rekey_pair(
        &self,
        t: &TenantId,
        u: &UserId,
        old: &Versioned<PairStatus>,
        new: &PairStatus,
    ) -> StoreResult<()> {
        let old_key = keys::pair(t, u, old.value.collection, old.value.crm_id.as_str());
        self.table
            .transact(vec![
                WriteOp::Delete(old_key, Condition::Version(old.version)),
                WriteOp::Put(Self::pair_item(t, u, new, false)?, Condition::NotExists),
            ])
            .await
    }

    pub async fn find_pair_by_google_id(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        google_id: &str,
    ) -> StoreResult<Option<Versioned<PairStatus>>> {
        let query = Query::partition(Index::Gsi1, keys::pairs_by_google_id(t, u, c))
            .sort(SortKey::Between(google_id.to_owned(), google_id.to_owned()))
            .limit(1);
        let page = self.table.query(query).await?;
        match page.items.into_iter().next() {
            // The index is eventually consistent: confirm on the table.
            Some(item) => self.get_as(&item.key).await,
            None => Ok(None),
        }
    }

    /// Every pair of the user's `c` linked to `google_id` (the same event id can be in
    /// several calendars: an invitation in the primary calendar and in a monitored one),
    /// each confirmed on the table (the index is eventually consistent).
    pub async fn find_pairs_by_google_id(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        google_id: &str,
    ) -> StoreResult<Vec<Versioned<PairStatus>>> {
        let mut query = Query::partition(Index::Gsi1, keys::pairs_by_google_id(t, u, c))
            .sort(SortKey::Between(google_id.to_owned(), google_id.to_owned()))
            .limit(25);
        let mut out: Vec<Versioned<PairStatus>> = Vec::new();
        loop {
            let page = self.table.query(query.clone()).await?;
            for item in page.items {
                if out
                    .iter()
                    .any(|p| keys::pair(t, u, c, p.value.crm_id.as_str()) == item.key)
                {
                    continue;
                }
                if let Some(p) = self.get_as::<PairStatus>(&item.key).await? {
                    if p.value.google_id.as_deref() == Some(google_id) {
                        out.push(p);
                    }
                }
            }
            match page.next {
                Some(next) => query.page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// About how many of the user's `c` pairs wait for the worker, counted on the dirty
    /// index up to `cap` (the index is eventually consistent; `None`: more than `cap`).
    pub async fn count_dirty_pairs(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        cap: u32,
    ) -> StoreResult<Option<usize>> {
        let mut query =
            Query::partition(Index::Gsi2, keys::dirty_pairs_of(t, u, c)).limit(cap.min(1000) + 1);
        let mut counted = 0usize;
        loop {
            let page = self.table.query(query.clone()).await?;
            counted += page.items.len();
            if counted > cap as usize {
                return Ok(None);
            }
            match page.next {
                Some(next) => query.page = Some(next),
                None => return Ok(Some(counted)),
            }
        }
    }

    pub async fn list_pairs(
        &self,
        t: &TenantId,
        u: &UserId,
        c: Collection,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<PairStatus>> {
        let query = Query::partition(Index::Primary, keys::pairs_partition(t, u))
            .sort(SortKey::BeginsWith(keys::pairs_prefix(c)))
            .limit(limit)
            .page(Self::page_token(page)?);
        self.page_of(query).await
    }

    // ---- cursors --------------------------------------------------------------------------

    pub async fn get_cursor(
        &self,
        t: &TenantId,
        u: &UserId,
        scope: &str,
    ) -> StoreResult<Option<Versioned<Cursor>>> {
        self.get_as(&keys::cursor(t, u, scope)).await
    }

    pub async fn put_cursor(
        &self,
        t: &TenantId,
        u: &UserId,
        cursor: &Cursor,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        let item = Item::new(keys::cursor(t, u, &cursor.scope), to_data(cursor)?);
        self.write(item, expected).await
    }

    // ---- calendar listing generations (see `calendar::channels`) ----------------

    /// How long a listing generation is kept after it was set (longer than a channel lives:
    /// one that went is as good as one never made, the webhook then queues every notification).
    pub const LISTING_RETENTION_SECS: i64 = 31 * 24 * 3600;

    pub async fn get_listing(
        &self,
        t: &TenantId,
        u: &UserId,
        calendar: &str,
    ) -> StoreResult<Option<CalendarListing>> {
        Ok(self
            .get_as(&keys::listing(t, u, calendar))
            .await?
            .map(|v| v.value))
    }

    /// Sets the calendar's generation: one write, no read. `only_if_absent` keeps one that is
    /// there (`Ok(false)` then).
    pub async fn put_listing(
        &self,
        t: &TenantId,
        u: &UserId,
        listing: &CalendarListing,
        only_if_absent: bool,
    ) -> StoreResult<bool> {
        let item = Item::new(keys::listing(t, u, &listing.calendar_id), to_data(listing)?)
            .with_ttl(listing.started_at.unix_timestamp() + Self::LISTING_RETENTION_SECS);
        let condition = if only_if_absent {
            Condition::NotExists
        } else {
            Condition::None
        };
        match self.table.put(item, condition).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) if only_if_absent => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- watch channels -------------------------------------------------------------------

    pub async fn put_channel(&self, ch: &WatchChannel, expected: Option<u64>) -> StoreResult<u64> {
        let item = Item::new(keys::channel(&ch.id), to_data(ch)?)
            .with_gsi1(keys::channel_gsi1(
                &ch.tenant,
                &ch.user,
                &ch.calendar_id,
                &ch.id,
            ))
            .with_ttl(ch.expires_at.unix_timestamp() + 24 * 3600);
        self.write(item, expected).await
    }

    pub async fn get_channel(&self, id: &str) -> StoreResult<Option<Versioned<WatchChannel>>> {
        self.get_as(&keys::channel(id)).await
    }

    pub async fn list_channels(
        &self,
        t: &TenantId,
        u: &UserId,
        limit: u32,
        page: Option<&str>,
    ) -> StoreResult<Records<WatchChannel>> {
        let query = Query::partition(Index::Gsi1, keys::channels_of(t, u))
            .limit(limit)
            .page(Self::page_token(page)?);
        self.page_of(query).await
    }

    /// The user's read cursors (one per calendar read, one for contacts, and the CRM side's
    /// deletion windows).
    pub async fn list_cursors(&self, t: &TenantId, u: &UserId) -> StoreResult<Vec<Cursor>> {
        let mut query = Query::partition(Index::Primary, keys::pairs_partition(t, u))
            .sort(SortKey::BeginsWith(keys::CURSOR_PREFIX.to_owned()))
            .limit(100);
        let mut out = Vec::new();
        loop {
            let page = self.page_of::<Cursor>(query.clone()).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => query.page = Some(PageToken::decode(&next)?),
                None => return Ok(out),
            }
        }
    }

    // ---- change feed ----------------------------------------------------------------------

    /// One record of the tenant's feed, by id (`None`: not there, expired, or a void).
    pub async fn get_change(&self, t: &TenantId, id: &str) -> StoreResult<Option<ChangeRecord>> {
        match self.table.get(&keys::feed_record(t, id)).await? {
            Some(item) if !is_void(&item.data) => Ok(Some(from_item::<ChangeRecord>(item)?.value)),
            _ => Ok(None),
        }
    }

    /// The tenant's latest feed records, newest first: what an admin looks at, not a read
    /// position (it does not wait on gaps; use [`read_changes`](Self::read_changes) to
    /// follow the feed).
    pub async fn recent_changes(&self, t: &TenantId, limit: u32) -> StoreResult<Vec<ChangeRecord>> {
        let query = Query::partition(Index::Primary, keys::feed_partition(t))
            .limit(limit.clamp(1, 1000))
            .descending();
        let page = self.table.query(query).await?;
        page.items
            .into_iter()
            .filter(|i| !is_void(&i.data))
            .map(|i| from_item::<ChangeRecord>(i).map(|v| v.value))
            .collect()
    }

    /// Appends to the tenant's feed and gives the record its id (see
    /// [`append_changes`](Self::append_changes)).
    pub async fn append_change(&self, record: &mut ChangeRecord) -> StoreResult<()> {
        self.append_changes(std::slice::from_mut(record)).await
    }

    /// Appends records of one tenant, in order, and gives each its id: the tenant's next
    /// numbers, taken at once from its counter (one atomic `add`, no read, nothing to lose
    /// to another writer), each record then put under its number on condition the slot is
    /// free. The only writer that can take a slot first is a reader voiding a number it
    /// gave up waiting for (see [`list_changes`](Self::list_changes)): the record then
    /// takes a new, later number — it lands where every reader will see it, never in a slot
    /// a reader has passed. Records already written keep their ids.
    pub async fn append_changes(&self, records: &mut [ChangeRecord]) -> StoreResult<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let tenant = first.tenant.clone();
        if records.iter().any(|r| r.tenant != tenant) {
            return Err(StoreError::Invalid(
                "records appended together belong to one tenant".into(),
            ));
        }
        let counter = keys::feed_counter(&tenant);
        let mut waiting: Vec<usize> = (0..records.len()).collect();
        for _ in 0..FEED_APPEND_ATTEMPTS {
            let taken = std::time::Instant::now();
            let k = waiting.len() as u64;
            let last = self.table.add(&counter, k).await?;
            let first = last.checked_sub(k - 1).filter(|&f| f > 0).ok_or_else(|| {
                StoreError::Corrupt(format!("{}/{}: counter", counter.pk, counter.sk))
            })?;
            let at = wall_millis();
            // Past the write window a slot may already be voided, or soon be: take new
            // numbers rather than race for them.
            if taken.elapsed() > self.feed.write_window {
                continue;
            }
            let mut slots = Vec::with_capacity(waiting.len());
            for (j, &i) in waiting.iter().enumerate() {
                let record = &mut records[i];
                record.id = keys::feed_id(first + j as u64);
                let mut data = to_data(&*record)?;
                if let Some(map) = data.as_object_mut() {
                    map.insert(FEED_AT.into(), at.into());
                }
                let key = keys::feed_record(&tenant, &record.id);
                let item = Item::new(key.clone(), data)
                    .with_ttl(record.created_at.unix_timestamp() + FEED_RETENTION_SECS);
                slots.push((i, key, item));
            }
            let written = futures_util::future::join_all(
                slots
                    .iter()
                    .map(|(_, _, item)| self.table.put(item.clone(), Condition::NotExists)),
            )
            .await;
            let mut again = Vec::new();
            for ((i, key, _), result) in slots.into_iter().zip(written) {
                match result {
                    Ok(()) => {}
                    // The number is ours alone, so the slot holds either a reader's void or
                    // this very record (a retried request that had landed).
                    Err(StoreError::ConditionFailed) => {
                        let stored = self.table.get(&key).await?;
                        if stored.is_none_or(|s| is_void(&s.data)) {
                            again.push(i);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if again.is_empty() {
                return Ok(());
            }
            waiting = again;
        }
        Err(StoreError::Conflict)
    }

    /// The feed after `after` (a record id), oldest first, never past a record that may
    /// still land: records are numbered (see [`keys::feed_id`]), and where a number is
    /// missing — its writer between taking it and writing, or dead — the read stops there
    /// until the gap closes. A gap whose next record was numbered at least the feed's grace
    /// ago is closed by putting a void marker in each missing slot, on condition it is free:
    /// a void that wins means the late record will take a new number (see
    /// [`append_changes`](Self::append_changes)); one that loses means the record landed,
    /// and the read goes on from there. Void markers are never returned. A gap wider than
    /// [`FEED_VOID_MAX`] numbers is expired records (a cursor older than the retention, or
    /// the first read of a feed that has been running longer): it is passed once its next
    /// record is older than the settle time, when no writer can still write in it.
    /// Records of the feed's older, time-based ids (before numbers) come first, as before.
    pub async fn list_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ChangeRecord>> {
        Ok(self.read_changes(tenant, after, limit).await?.records)
    }

    /// [`list_changes`](Self::list_changes), saying whether the read stopped at a gap too
    /// young to close (a record may land there within the feed's grace).
    pub async fn read_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<FeedPage> {
        let mut waiting = false;
        let limit = limit.clamp(1, 1000) as usize;
        let partition = keys::feed_partition(tenant);
        let mut out = Vec::new();
        // The last slot passed, and the number due next (`None`: no numbered slot passed yet,
        // so the first number, 1, is due).
        let mut pos: Option<String> = after.map(str::to_owned);
        let mut due: Option<u64> = after.and_then(keys::feed_seq).map(|n| n.saturating_add(1));
        'read: loop {
            let want = (limit - out.len()) as u32;
            let mut query =
                Query::partition(Index::Primary, partition.clone()).limit(want.saturating_add(1));
            if let Some(pos) = &pos {
                query = query.sort(SortKey::After(pos.clone()));
            }
            loop {
                let page = self.table.query(query.clone()).await?;
                for item in page.items {
                    match keys::feed_seq(&item.key.sk) {
                        None => {}
                        Some(seq) => {
                            let from = due.unwrap_or(1);
                            if seq > from {
                                match self.close_gap(tenant, from, seq, &item).await? {
                                    Gap::Closed => {}
                                    Gap::Open => {
                                        waiting = true;
                                        break 'read;
                                    }
                                    Gap::Filled => continue 'read,
                                }
                            }
                            due = Some(seq.saturating_add(1));
                        }
                    }
                    pos = Some(item.key.sk.clone());
                    if is_void(&item.data) {
                        continue;
                    }
                    out.push(from_item::<ChangeRecord>(item)?.value);
                    if out.len() >= limit {
                        break 'read;
                    }
                }
                match page.next {
                    Some(next) => query.page = Some(next),
                    None => break 'read,
                }
            }
        }
        Ok(FeedPage {
            records: out,
            waiting,
        })
    }

    /// The feed's timing.
    pub fn feed_timing(&self) -> FeedTiming {
        self.feed
    }

    /// Numbers `from..to` are missing just before `next` (numbered `to`): close the gap if
    /// it is old enough.
    async fn close_gap(
        &self,
        tenant: &TenantId,
        from: u64,
        to: u64,
        next: &Item,
    ) -> StoreResult<Gap> {
        // A slot without a time (none is written so) counts as old.
        let at = next.data.get(FEED_AT).and_then(serde_json::Value::as_i64);
        let age = at.map_or(i64::MAX, |at| wall_millis().saturating_sub(at));
        let older_than =
            |d: std::time::Duration| age >= i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if !older_than(self.feed.grace) {
            return Ok(Gap::Open);
        }
        if to - from > FEED_VOID_MAX {
            return Ok(if older_than(self.feed.settle) {
                Gap::Closed
            } else {
                Gap::Open
            });
        }
        for seq in from..to {
            let mut void = Item::new(
                keys::feed_record(tenant, &keys::feed_id(seq)),
                serde_json::json!({ FEED_VOID: true, FEED_AT: at }),
            );
            void.ttl = next.ttl;
            match self.table.put(void, Condition::NotExists).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed) => return Ok(Gap::Filled),
                Err(e) => return Err(e),
            }
        }
        Ok(Gap::Closed)
    }
}

/// One read of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub records: Vec<ChangeRecord>,
    /// The read stopped before a missing number still within the grace: more may follow
    /// within [`FeedTiming::grace`] even if nothing else is appended.
    pub waiting: bool,
}

/// What a reader did about a gap in the feed's numbers.
enum Gap {
    /// Every missing number is void (or long settled): read on.
    Closed,
    /// Too young to close: stop before it.
    Open,
    /// A record landed in it: read again from where the read stands.
    Filled,
}

/// The field of a feed slot's data holding when its number was taken (Unix milliseconds,
/// wall clock), and the field that marks a void slot.
const FEED_AT: &str = "feed_at";
const FEED_VOID: &str = "feed_void";

fn is_void(data: &serde_json::Value) -> bool {
    data.get(FEED_VOID).and_then(serde_json::Value::as_bool) == Some(true)
}

fn wall_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Store {
    /// Deletes a user's pairs, cursors and listing generations (after a disconnect that does
    /// not keep them, or when a different Google account takes the user's place). Returns how
    /// many items went.
    pub async fn purge_sync_state(&self, t: &TenantId, u: &UserId) -> StoreResult<usize> {
        let mut deleted = 0;
        for prefix in ["PAIR#", "CURSOR#", "LISTING#"] {
            let mut query = Query::partition(Index::Primary, keys::pairs_partition(t, u))
                .sort(SortKey::BeginsWith(prefix.to_owned()))
                .limit(100);
            loop {
                let page = self.table.query(query.clone()).await?;
                for item in page.items {
                    self.table.delete(&item.key, Condition::None).await?;
                    deleted += 1;
                }
                match page.next {
                    Some(next) => query.page = Some(next),
                    None => break,
                }
            }
        }
        Ok(deleted)
    }
}

impl Store {
    // ---- webhook delivery cursor (see `crate::delivery`) -----------------------------------

    pub async fn get_delivery_cursor(
        &self,
        t: &TenantId,
    ) -> StoreResult<Option<Versioned<crate::domain::delivery::DeliveryCursor>>> {
        self.get_as(&keys::delivery_cursor(t)).await
    }

    /// Creates (`expected = None`) or updates the cursor under optimistic concurrency: the
    /// version is what makes the delivery lease exclusive.
    pub async fn put_delivery_cursor(
        &self,
        cursor: &crate::domain::delivery::DeliveryCursor,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        let item = Item::new(keys::delivery_cursor(&cursor.tenant), to_data(cursor)?);
        self.write(item, expected).await
    }
}

impl Store {
    /// Takes the account's worker lease until `until` (Unix seconds) for `holder`; `false`
    /// when another live lease holds it. An expired lease is free.
    pub async fn acquire_lease(
        &self,
        t: &TenantId,
        u: &UserId,
        holder: &str,
        until: i64,
    ) -> StoreResult<bool> {
        let item = Item::new(keys::lease(t, u), serde_json::json!({"holder": holder}))
            .with_ttl(until)
            .with_version(lease_version(holder));
        match self.table.put(item, Condition::NotExists).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Releases the lease if `holder` still holds it: the delete is conditioned on the
    /// holder's own version, so a lease that expired and was taken by another worker in the
    /// meantime is never removed (every lease used to be written at version 1, which let a
    /// late release delete the next holder's lease).
    pub async fn release_lease(&self, t: &TenantId, u: &UserId, holder: &str) -> StoreResult<()> {
        let key = keys::lease(t, u);
        match self
            .table
            .delete(&key, Condition::Version(lease_version(holder)))
            .await
        {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The version a holder's lease is written at: its own (from a hash of the holder's random
/// token; never 1, the version every lease had before), so "delete at this version" is
/// "delete if I still hold it", on any backend.
fn lease_version(holder: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("crm-google-sync/lease/{holder}"));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // DynamoDB numbers hold 38 digits, JSON readers 2^53 exactly: kept below both.
    (u64::from_be_bytes(bytes) >> 12).max(2)
}

impl Store {
    // ---- the tenant's Google call budget (see `services::quota`) ---------------------------

    pub async fn get_budget(
        &self,
        t: &TenantId,
    ) -> StoreResult<Option<Versioned<crate::domain::quota::Bucket>>> {
        self.get_as(&keys::budget(t)).await
    }

    pub async fn put_budget(
        &self,
        t: &TenantId,
        bucket: &crate::domain::quota::Bucket,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        self.write(Item::new(keys::budget(t), to_data(bucket)?), expected)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::store::embedded::EmbeddedTable;
    use std::sync::Arc;

    fn store() -> Store {
        Store::new(Arc::new(EmbeddedTable::in_memory(Arc::new(SystemClock))))
    }

    fn account() -> Account {
        serde_json::from_value(serde_json::json!({
            "id": "01J00000000000000000000000", "tenant": "acme", "user": "u1",
            "status": "active", "products": ["calendar"],
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_account_update_is_written_once_refused_or_missing_writes_nothing() {
        let store = store();
        let a = account();
        let (t, u) = (a.tenant.clone(), a.user.clone());
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(400);
        assert!(matches!(
            store.update_account(&t, &u, now, |_| {}).await,
            Err(AccountUpdateError::Missing)
        ));
        store.put_account(&a, None).await.unwrap();
        let refused = store
            .try_update_account(&t, &u, now, |a| {
                a.last_error = Some("changed".into());
                Err("no")
            })
            .await;
        assert!(matches!(refused, Err(AccountUpdateError::Refused("no"))));
        let stored = store.get_account(&t, &u).await.unwrap().unwrap();
        assert_eq!((stored.value.last_error, stored.version), (None, 1));

        let updated = store
            .update_account(&t, &u, now, |a| a.last_error = Some("seen".into()))
            .await
            .unwrap();
        let stored = store.get_account(&t, &u).await.unwrap().unwrap();
        assert_eq!(stored.value, updated);
        assert_eq!(
            (stored.value.last_error.as_deref(), stored.value.updated_at),
            (Some("seen"), now)
        );
    }
}
