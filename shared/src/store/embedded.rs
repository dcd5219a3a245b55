//! The embedded adapter: the table in memory, optionally persisted to a JSON file (written
//! atomically after every change) so the local server keeps its state across restarts.

use super::{
    validate_add, validate_item, validate_page, validate_transaction, Condition, Index, Item, Key,
    Page, PageToken, Query, StoreError, StoreResult, Table, WriteOp,
};
use crate::clock::{SharedClock, SystemClock};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct EmbeddedTable {
    items: Mutex<BTreeMap<Key, Item>>,
    file: Option<PathBuf>,
    clock: SharedClock,
}

impl EmbeddedTable {
    /// A table that lives in memory only.
    pub fn in_memory(clock: SharedClock) -> Self {
        Self {
            items: Mutex::new(BTreeMap::new()),
            file: None,
            clock,
        }
    }

    /// A table persisted to `file` (loaded if it exists).
    pub fn open(file: impl Into<PathBuf>, clock: SharedClock) -> StoreResult<Self> {
        let file = file.into();
        let items = match std::fs::read(&file) {
            Ok(bytes) => {
                let list: Vec<Item> = serde_json::from_slice(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", file.display())))?;
                list.into_iter().map(|i| (i.key.clone(), i)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError::backend(e)),
        };
        Ok(Self {
            items: Mutex::new(items),
            file: Some(file),
            clock,
        })
    }

    pub fn shared_in_memory() -> Arc<Self> {
        Arc::new(Self::in_memory(Arc::new(SystemClock)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
        // A panic while holding the lock cannot leave a half-applied write (every mutation
        // is a single insert/remove after all checks), so a poisoned lock is still sound.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, items: &BTreeMap<Key, Item>) -> StoreResult<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let list: Vec<&Item> = items.values().collect();
        let bytes = serde_json::to_vec(&list).map_err(StoreError::backend)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        }
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(StoreError::backend)?;
        std::fs::rename(&tmp, file).map_err(StoreError::backend)
    }

    fn check(items: &BTreeMap<Key, Item>, key: &Key, cond: Condition, now: i64) -> bool {
        let live = items.get(key).filter(|i| !i.expired(now));
        match cond {
            Condition::None => true,
            Condition::NotExists => live.is_none(),
            Condition::Exists => live.is_some(),
            Condition::Version(v) => live.is_some_and(|i| i.version == v),
        }
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let now = self.clock.now_unix();
        Ok(self.lock().get(key).filter(|i| !i.expired(now)).cloned())
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        validate_item(&item)?;
        let now = self.clock.now_unix();
        let mut items = self.lock();
        if !Self::check(&items, &item.key, condition, now) {
            return Err(StoreError::ConditionFailed);
        }
        items.insert(item.key.clone(), item);
        self.persist(&items)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<Option<Item>> {
        let now = self.clock.now_unix();
        let mut items = self.lock();
        if !Self::check(&items, key, condition, now) {
            return Err(StoreError::ConditionFailed);
        }
        let old = items.remove(key).filter(|i| !i.expired(now));
        self.persist(&items)?;
        Ok(old)
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        validate_page(&query)?;
        let now = self.clock.now_unix();
        let limit = query.limit.clamp(1, 1000) as usize;
        let items = self.lock();
        // Order as DynamoDB does: by the index's sort key, then (on an index) by table key.
        let mut matching: Vec<(&Key, &Item)> = items
            .values()
            .filter_map(|i| i.index_key(query.index).map(|k| (k, i)))
            .filter(|(k, _)| k.pk == query.pk && query.sort.matches(&k.sk))
            .collect();
        matching.sort_by(|(a, ai), (b, bi)| a.sk.cmp(&b.sk).then_with(|| ai.key.cmp(&bi.key)));
        if !query.ascending {
            matching.reverse();
        }
        let start = match &query.page {
            None => 0,
            Some(token) => {
                let pos = |(_, i): &(&Key, &Item)| PageToken::after(i, query.index) == *token;
                match matching.iter().position(pos) {
                    Some(p) => p + 1,
                    // The item the page ended on is gone: resume after its sort position.
                    None => {
                        let sk_attr = match query.index {
                            Index::Primary => super::keys::attr::SK,
                            Index::Gsi1 => super::keys::attr::GSI1SK,
                            Index::Gsi2 => super::keys::attr::GSI2SK,
                        };
                        let last = token.0.get(sk_attr).ok_or(StoreError::InvalidPageToken)?;
                        matching
                            .iter()
                            .position(|(k, _)| {
                                if query.ascending {
                                    k.sk.as_str() > last.as_str()
                                } else {
                                    k.sk.as_str() < last.as_str()
                                }
                            })
                            .unwrap_or(matching.len())
                    }
                }
            }
        };
        let window: Vec<&Item> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|(_, i)| *i)
            .collect();
        let more = start + window.len() < matching.len();
        let next = match (more, window.last()) {
            (true, Some(last)) => Some(PageToken::after(last, query.index)),
            _ => None,
        };
        Ok(Page {
            items: window
                .into_iter()
                .filter(|i| !i.expired(now))
                .cloned()
                .collect(),
            next,
        })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        validate_transaction(&ops)?;
        let now = self.clock.now_unix();
        let mut items = self.lock();
        for op in &ops {
            let (key, cond) = match op {
                WriteOp::Put(item, c) => (&item.key, *c),
                WriteOp::Delete(k, c) | WriteOp::Check(k, c) => (k, *c),
            };
            if !Self::check(&items, key, cond, now) {
                return Err(StoreError::ConditionFailed);
            }
        }
        for op in ops {
            match op {
                WriteOp::Put(item, _) => {
                    items.insert(item.key.clone(), item);
                }
                WriteOp::Delete(key, _) => {
                    items.remove(&key);
                }
                WriteOp::Check(..) => {}
            }
        }
        self.persist(&items)
    }

    async fn add(&self, key: &Key, by: u64) -> StoreResult<u64> {
        validate_add(key, by)?;
        let now = self.clock.now_unix();
        let mut items = self.lock();
        let item = match items.get(key).filter(|i| !i.expired(now)) {
            Some(i) => {
                let version = i.version.checked_add(by).ok_or_else(|| {
                    StoreError::Invalid(format!("counter {}/{} overflows", key.pk, key.sk))
                })?;
                i.clone().with_version(version)
            }
            None => Item::new(key.clone(), serde_json::json!({})).with_version(by),
        };
        let version = item.version;
        items.insert(key.clone(), item);
        self.persist(&items)?;
        Ok(version)
    }
}
