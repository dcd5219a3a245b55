//! The store port: one table of items addressed by a partition key and a sort key, with two
//! generic secondary indexes, a TTL attribute, optimistic versions, conditional writes and
//! transactions — the subset of DynamoDB the product relies on.
//!
//! Two adapters hold the same behaviour (checked by one conformance suite,
//! `tests/store_conformance.rs` in the `e2e-tests` crate): [`dynamo::DynamoTable`] (a real
//! DynamoDB table) and [`embedded::EmbeddedTable`] (in memory, optionally persisted as a
//! snapshot and an append-only log, for the local server and fast tests).
//!
//! Semantics both adapters share:
//! * An item whose `ttl` (Unix seconds) is at or before now is *gone*: reads skip it and
//!   conditions treat it as absent (DynamoDB deletes expired items lazily; we filter on read).
//! * `put`/`delete` take a [`Condition`]; a failed one is [`StoreError::ConditionFailed`].
//! * `query` returns items of one partition (of the table or an index) in sort-key order,
//!   at most `limit` items per page, and an opaque `next` token while more may follow
//!   (a page may be short, even empty, when expired items were skipped).
//! * `transact` applies up to 100 writes/checks on distinct keys atomically.
//! * `add` bumps a counter atomically, without reading it first: the counter is an item's
//!   version (so `get` reads it back, and a counter item carries no `ttl`).
//!
//! The keys, and every access pattern, are in [`keys`]; the domain operations in [`repo`].

pub mod dynamo;
pub mod embedded;
pub mod keys;
pub mod repo;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use repo::Store;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// One stored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    /// Key of the item in `GSI1`, if it is indexed there.
    #[serde(default)]
    pub gsi1: Option<Key>,
    /// Key of the item in `GSI2`, if it is indexed there.
    #[serde(default)]
    pub gsi2: Option<Key>,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub ttl: Option<i64>,
    /// Optimistic-concurrency version: 1 on create, +1 on each versioned update.
    pub version: u64,
    /// The record itself (a JSON object).
    pub data: serde_json::Value,
}

impl Item {
    pub fn new(key: Key, data: serde_json::Value) -> Self {
        Self {
            key,
            gsi1: None,
            gsi2: None,
            ttl: None,
            version: 1,
            data,
        }
    }

    pub fn with_gsi1(mut self, key: Key) -> Self {
        self.gsi1 = Some(key);
        self
    }

    pub fn with_gsi2(mut self, key: Key) -> Self {
        self.gsi2 = Some(key);
        self
    }

    pub fn with_ttl(mut self, ttl: i64) -> Self {
        self.ttl = Some(ttl);
        self
    }

    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Whether the item has expired at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.ttl.is_some_and(|t| t <= now)
    }

    pub fn index_key(&self, index: Index) -> Option<&Key> {
        match index {
            Index::Primary => Some(&self.key),
            Index::Gsi1 => self.gsi1.as_ref(),
            Index::Gsi2 => self.gsi2.as_ref(),
        }
    }
}

/// What must be true of the stored item for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional.
    None,
    /// No live item has this key (create once).
    NotExists,
    /// A live item has this key.
    Exists,
    /// A live item has this key at exactly this version (optimistic update).
    Version(u64),
}

/// Which key a query runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

impl Index {
    pub fn name(self) -> Option<&'static str> {
        match self {
            Index::Primary => None,
            Index::Gsi1 => Some("GSI1"),
            Index::Gsi2 => Some("GSI2"),
        }
    }
}

/// A condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Any,
    BeginsWith(String),
    /// Strictly after the value.
    After(String),
    /// Inclusive bounds.
    Between(String, String),
    /// Up to and including the value.
    AtMost(String),
}

impl SortKey {
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            SortKey::Any => true,
            SortKey::BeginsWith(p) => sk.starts_with(p.as_str()),
            SortKey::After(v) => sk > v.as_str(),
            SortKey::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
            SortKey::AtMost(v) => sk <= v.as_str(),
        }
    }
}

/// A query on one partition.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sort: SortKey,
    /// Items per page (1..=1000).
    pub limit: u32,
    /// `next` of the previous page.
    pub page: Option<PageToken>,
    /// Sort-key order; `false` for newest first.
    pub ascending: bool,
}

impl Query {
    pub fn partition(index: Index, pk: impl Into<String>) -> Self {
        Self {
            index,
            pk: pk.into(),
            sort: SortKey::Any,
            limit: 100,
            page: None,
            ascending: true,
        }
    }

    pub fn sort(mut self, sort: SortKey) -> Self {
        self.sort = sort;
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, 1000);
        self
    }

    pub fn page(mut self, page: Option<PageToken>) -> Self {
        self.page = page;
        self
    }

    pub fn descending(mut self) -> Self {
        self.ascending = false;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<PageToken>,
}

/// An opaque position in a query: the key attributes of the last item read
/// (`PK`, `SK` and, on an index, that index's key), base64url-encoded JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(pub BTreeMap<String, String>);

impl PageToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| StoreError::InvalidPageToken)?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidPageToken)?;
        if !map.contains_key(keys::attr::PK) || !map.contains_key(keys::attr::SK) {
            return Err(StoreError::InvalidPageToken);
        }
        Ok(Self(map))
    }

    /// The token for a page that ended at `item` on `index`.
    pub fn after(item: &Item, index: Index) -> Self {
        let mut m = BTreeMap::new();
        m.insert(keys::attr::PK.to_owned(), item.key.pk.clone());
        m.insert(keys::attr::SK.to_owned(), item.key.sk.clone());
        let names = match index {
            Index::Primary => None,
            Index::Gsi1 => Some((keys::attr::GSI1PK, keys::attr::GSI1SK, &item.gsi1)),
            Index::Gsi2 => Some((keys::attr::GSI2PK, keys::attr::GSI2SK, &item.gsi2)),
        };
        if let Some((pk, sk, Some(k))) = names {
            m.insert(pk.to_owned(), k.pk.clone());
            m.insert(sk.to_owned(), k.sk.clone());
        }
        Self(m)
    }
}

/// One write of a transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put(Item, Condition),
    Delete(Key, Condition),
    Check(Key, Condition),
}

impl WriteOp {
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put(item, _) => &item.key,
            WriteOp::Delete(key, _) | WriteOp::Check(key, _) => key,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's condition did not hold (someone else wrote first, or the item is missing).
    #[error("condition failed")]
    ConditionFailed,
    /// Two transactions raced; retry.
    #[error("transaction conflict")]
    Conflict,
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// The item is larger than the store keeps (DynamoDB's 400 KB item limit): retrying
    /// will not help.
    #[error("item of about {bytes} bytes is larger than the store keeps ({MAX_ITEM_BYTES})")]
    TooLarge { bytes: usize },
    /// The stored data could not be read as the expected record.
    #[error("corrupt item {0}")]
    Corrupt(String),
    /// The backend failed (network, throttling, I/O); retryable.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::Backend(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The store port.
#[async_trait]
pub trait Table: Send + Sync {
    /// Strongly consistent read of a live item.
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>>;
    /// Write the whole item if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()>;
    /// Delete if `condition` holds; returns the live item that was deleted, if any.
    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<Option<Item>>;
    /// One page of a partition, in sort-key order.
    async fn query(&self, query: Query) -> StoreResult<Page>;
    /// All or nothing.
    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()>;
    /// Atomically adds `by` (at least 1) to the version of the item at `key` and returns the
    /// new version; an absent item is created with data `{}` and version `by`. Concurrent
    /// calls get disjoint ranges `new - by + 1 ..= new`, with no read and no condition to lose.
    async fn add(&self, key: &Key, by: u64) -> StoreResult<u64>;
}

pub type SharedTable = Arc<dyn Table>;

/// The largest item either adapter stores: DynamoDB's limit is 400 KB (409,600 bytes,
/// attribute names and values counted); items are estimated by their JSON size plus their
/// keys, so this keeps a margin for the encoding's overhead.
pub const MAX_ITEM_BYTES: usize = 380_000;

/// Checks what both adapters reject the same way.
pub(crate) fn validate_item(item: &Item) -> StoreResult<()> {
    let keys_len: usize = [Some(&item.key), item.gsi1.as_ref(), item.gsi2.as_ref()]
        .iter()
        .flatten()
        .map(|k| k.pk.len() + k.sk.len())
        .sum();
    let bytes = serde_json::to_vec(&item.data).map_or(usize::MAX, |v| v.len()) + keys_len;
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge { bytes });
    }
    let keys = [Some(&item.key), item.gsi1.as_ref(), item.gsi2.as_ref()];
    if keys
        .iter()
        .flatten()
        .any(|k| k.pk.is_empty() || k.sk.is_empty())
    {
        return Err(StoreError::Invalid(
            "key attributes must not be empty".into(),
        ));
    }
    if !item.data.is_object() {
        return Err(StoreError::Invalid("item data must be an object".into()));
    }
    Ok(())
}

/// A page token must come from a query of the same partition: one minted for another
/// partition (another tenant's, say) is refused, never followed.
pub(crate) fn validate_page(query: &Query) -> StoreResult<()> {
    let Some(token) = &query.page else {
        return Ok(());
    };
    let pk_attr = match query.index {
        Index::Primary => keys::attr::PK,
        Index::Gsi1 => keys::attr::GSI1PK,
        Index::Gsi2 => keys::attr::GSI2PK,
    };
    if token.0.get(pk_attr) != Some(&query.pk) {
        return Err(StoreError::InvalidPageToken);
    }
    Ok(())
}

pub(crate) fn validate_add(key: &Key, by: u64) -> StoreResult<()> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Invalid(
            "key attributes must not be empty".into(),
        ));
    }
    if by == 0 || i64::try_from(by).is_err() {
        return Err(StoreError::Invalid(
            "a counter is added 1 to 2^63 - 1 at a time".into(),
        ));
    }
    Ok(())
}

pub(crate) fn validate_transaction(ops: &[WriteOp]) -> StoreResult<()> {
    if ops.is_empty() || ops.len() > 100 {
        return Err(StoreError::Invalid(
            "a transaction holds 1 to 100 operations".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        if let WriteOp::Put(item, _) = op {
            validate_item(item)?;
        }
        if !seen.insert(op.key()) {
            return Err(StoreError::Invalid(
                "a transaction may touch each item once".into(),
            ));
        }
    }
    Ok(())
}
