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

/// How often an append retries when other writers keep taking the next feed id.
const FEED_APPEND_ATTEMPTS: u32 = 12;

/// How long change-feed records are kept.
pub const FEED_RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Clone)]
pub struct Store {
    table: SharedTable,
}

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
        Self { table }
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

    fn tenant_item(tenant: &Tenant) -> StoreResult<Item> {
        Ok(Item::new(keys::tenant(&tenant.id), to_data(tenant)?))
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
        let mut item = Item::new(
            keys::pair(t, u, p.collection, p.crm_id.as_str()),
            to_data(p)?,
        );
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

    // ---- calendar listing generations (see `services::calendar::channels`) ----------------

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

    // ---- change feed ----------------------------------------------------------------------

    /// Appends to the tenant's feed and gives the record its id. Ids are assigned under the
    /// tenant's feed head (one item holding the last id, written in the same transaction as
    /// the record): ULIDs strictly increasing per tenant, and a record is committed only after
    /// every record with a smaller id — so a reader's cursor (the pull feed, the webhook
    /// delivery) never skips one, whichever Lambda instance wrote it and whatever its clock.
    pub async fn append_change(&self, record: &mut ChangeRecord) -> StoreResult<()> {
        let head_key = keys::feed_head(&record.tenant);
        let candidate = ulid::Ulid::from_string(&record.id).unwrap_or_else(|_| ulid::Ulid::new());
        for attempt in 0..FEED_APPEND_ATTEMPTS {
            let head = self.table.get(&head_key).await?;
            let (last, version, condition) = match &head {
                Some(item) => (
                    item.data["last"]
                        .as_str()
                        .and_then(|s| ulid::Ulid::from_string(s).ok()),
                    item.version + 1,
                    Condition::Version(item.version),
                ),
                None => (None, 1, Condition::NotExists),
            };
            let id = match last {
                Some(last) if last >= candidate => last.increment().ok_or_else(|| {
                    StoreError::Invalid("the feed's id space is exhausted".into())
                })?,
                _ => candidate,
            };
            record.id = id.to_string();
            let head_item = Item::new(head_key.clone(), serde_json::json!({"last": record.id}))
                .with_version(version);
            let item = Item::new(
                keys::feed_record(&record.tenant, &record.id),
                to_data(&*record)?,
            )
            .with_ttl(record.created_at.unix_timestamp() + FEED_RETENTION_SECS);
            match self
                .table
                .transact(vec![
                    WriteOp::Put(head_item, condition),
                    WriteOp::Put(item, Condition::NotExists),
                ])
                .await
            {
                Ok(()) => return Ok(()),
                // Another writer took the next id first: read the head again.
                Err(StoreError::ConditionFailed | StoreError::Conflict) => {
                    let backoff = 5 * (1u64 << attempt.min(5));
                    let jitter = rand::random::<u64>() % backoff;
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The feed after `after` (a record id), oldest first.
    pub async fn list_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ChangeRecord>> {
        let mut query = Query::partition(Index::Primary, keys::feed_partition(tenant)).limit(limit);
        if let Some(after) = after {
            query = query.sort(SortKey::After(after.to_owned()));
        }
        let mut out = Vec::new();
        // Expired records can make a page short: keep reading until full or done.
        loop {
            let page = self.table.query(query.clone()).await?;
            for item in page.items {
                out.push(from_item::<ChangeRecord>(item)?.value);
            }
            match page.next {
                Some(next) if out.len() < limit as usize => query.page = Some(next),
                _ => break,
            }
            query.limit = limit.saturating_sub(out.len() as u32).max(1);
        }
        out.truncate(limit as usize);
        Ok(out)
    }
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
    ) -> StoreResult<Option<Versioned<crate::delivery::DeliveryCursor>>> {
        self.get_as(&keys::delivery_cursor(t)).await
    }

    /// Creates (`expected = None`) or updates the cursor under optimistic concurrency: the
    /// version is what makes the delivery lease exclusive.
    pub async fn put_delivery_cursor(
        &self,
        cursor: &crate::delivery::DeliveryCursor,
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
        let item =
            Item::new(keys::lease(t, u), serde_json::json!({"holder": holder})).with_ttl(until);
        match self.table.put(item, Condition::NotExists).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Releases the lease if `holder` still holds it.
    pub async fn release_lease(&self, t: &TenantId, u: &UserId, holder: &str) -> StoreResult<()> {
        let key = keys::lease(t, u);
        if let Some(item) = self.table.get(&key).await? {
            if item.data["holder"].as_str() == Some(holder) {
                match self
                    .table
                    .delete(&key, Condition::Version(item.version))
                    .await
                {
                    Ok(_) | Err(StoreError::ConditionFailed) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

impl Store {
    // ---- the tenant's Google call budget (see `services::quota`) ---------------------------

    pub async fn get_budget(
        &self,
        t: &TenantId,
    ) -> StoreResult<Option<Versioned<crate::services::quota::Bucket>>> {
        self.get_as(&keys::budget(t)).await
    }

    pub async fn put_budget(
        &self,
        t: &TenantId,
        bucket: &crate::services::quota::Bucket,
        expected: Option<u64>,
    ) -> StoreResult<u64> {
        self.write(Item::new(keys::budget(t), to_data(bucket)?), expected)
            .await
    }
}
