//! The embedded adapter: the table in memory, optionally persisted to disk so the local server
//! keeps its state across restarts.
//!
//! # In memory
//!
//! Items live in a `BTreeMap` by table key; each secondary index is an ordered set of
//! (index key, table key). Every operation is O(log n) plus the size of what it returns: a
//! query walks only its partition's range (of the table or of the index), never the table.
//!
//! # On disk ([`EmbeddedTable::open`])
//!
//! Two files, side by side:
//!
//! * the **snapshot**, the path given (`.local/store.json` for the local server): a JSON array
//!   of every live item. This is also the whole format of earlier versions, which rewrote it
//!   after every write: such a file opens as it is and becomes the first snapshot. (The
//!   reverse does not hold: an older build would read the snapshot and miss the log.)
//! * the **log**, the same path with `.log` appended (`.local/store.json.log`): one JSON line
//!   per committed write — `{"put":ITEM}`, `{"delete":KEY}` or, for a transaction,
//!   `{"tx":[…]}` holding all its writes — appended with a single `write(2)` *before* the
//!   change becomes visible in memory. A transaction is one line, so it is replayed all or
//!   nothing.
//!
//! Opening loads the snapshot, then replays the log over it. A last line without its newline,
//! or that does not parse (a write torn by a crash), is ignored and cut off the file; an
//! unreadable line *followed* by good ones is corruption and fails the open. Replaying is
//! idempotent (whole items, in order), so a log that outlived a crash right after a compaction
//! replays harmlessly over the snapshot that already holds it.
//!
//! **Compaction**: once the log is larger than [`FileOptions::compact_ratio`] × the last
//! snapshot (and at least [`FileOptions::compact_min_bytes`]), the live items are written to
//! `PATH.tmp`, renamed over the snapshot, and the log is truncated. Expired items (TTL) are
//! dropped then, as DynamoDB's TTL deletion would; they were already invisible. Each write
//! therefore costs one log line plus, amortized, a bounded share of a snapshot, and the two
//! files together stay within about `(1 + ratio)` × the live data (or the minimum). A
//! compaction runs inline, under the table's lock: writes wait for it (about 0.3 s for a
//! 50 MB snapshot on the development machine; see `docs/benchmarks.md`).
//!
//! **Durability** ([`Fsync`]): by default ([`Fsync::OnCompaction`]) every write reaches the
//! kernel (`write(2)`) before it is acknowledged — it survives the process being killed, but
//! not a power loss or kernel crash, which may lose the last writes (never leave a half
//! transaction). Compaction fsyncs the new snapshot and its directory before it truncates the
//! log. [`Fsync::EveryWrite`] adds an `fdatasync` per write (durable, much slower);
//! [`Fsync::Never`] skips the compaction fsyncs too. This is a local/dev store: DynamoDB is
//! the production one.
//!
//! One process at a time: the log file is locked (`flock`) while the table is open; a second
//! open of the same files fails instead of interleaving writes.

use super::{
    validate_add, validate_item, validate_page, validate_transaction, Condition, Index, Item, Key,
    Page, PageToken, Query, SortKey, StoreError, StoreResult, Table, WriteOp,
};
use crate::clock::{SharedClock, SystemClock};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// When the file-backed table calls `fsync`. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never: writes and compactions reach the kernel only.
    Never,
    /// The new snapshot and its directory, at each compaction (the default).
    #[default]
    OnCompaction,
    /// Also the log after every write (`fdatasync`).
    EveryWrite,
}

/// How the file-backed table persists.
#[derive(Debug, Clone)]
pub struct FileOptions {
    pub fsync: Fsync,
    /// Compact once the log is larger than this many times the last snapshot…
    pub compact_ratio: u64,
    /// …and larger than this many bytes.
    pub compact_min_bytes: u64,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            fsync: Fsync::default(),
            compact_ratio: 2,
            compact_min_bytes: 4 << 20,
        }
    }
}

pub struct EmbeddedTable {
    state: Mutex<State>,
    clock: SharedClock,
}

/// An index entry: (the item's key in the index, its table key). Ordered as DynamoDB orders
/// an index's items: by index key, then by table key.
type IndexEntry = (Key, Key);

#[derive(Default)]
struct State {
    items: BTreeMap<Key, Stored>,
    gsi1: BTreeSet<IndexEntry>,
    gsi2: BTreeSet<IndexEntry>,
    log: Option<Log>,
}

struct Log {
    snapshot: PathBuf,
    path: PathBuf,
    /// Opened for appending, and locked.
    file: File,
    /// Bytes of whole lines in the log.
    len: u64,
    /// Bytes of the snapshot the log applies to.
    snapshot_len: u64,
    /// Compact when `len` passes this (moved on when a compaction fails, so it is retried later
    /// rather than on every write).
    compact_at: u64,
    options: FileOptions,
    /// Set when a failed append could not be cut off the file: further writes are refused so
    /// nothing is ever appended after a torn line.
    broken: bool,
    /// The serialization buffer, reused.
    buf: Vec<u8>,
}

/// An item, and (file-backed, once written or compacted) its JSON: the log line of a put
/// carries it, and compaction writes the snapshot by copying these bytes rather than
/// serializing every item again.
struct Stored {
    item: Item,
    json: Option<Box<[u8]>>,
}

/// One write of a log line.
enum LogWrite<'a> {
    /// The item's JSON.
    Put(&'a [u8]),
    Delete(&'a Key),
}

/// One log line, as read back (written by [`Log::append`]: `{"put":ITEM}`, `{"delete":KEY}`,
/// `{"tx":[…]}`).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Put(Item),
    Delete(Key),
    Tx(Vec<Entry>),
}

/// The log file, opened for appending and locked: one table per file (another process
/// holding it is refused).
fn open_locked(path: &Path) -> StoreResult<std::fs::File> {
    let file = private_file()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(StoreError::backend)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Invalid(format!(
            "{} is open in another table (another process?)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::backend(e)),
    }
}

/// Loads the snapshot (if any) into `state`; its length.
fn load_snapshot(snapshot: &Path, state: &mut State) -> StoreResult<u64> {
    match std::fs::read(snapshot) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(bytes.len() as u64),
        Ok(bytes) => {
            let list: Vec<Item> =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(snapshot, e))?;
            for item in list {
                state.insert(item, None);
            }
            Ok(bytes.len() as u64)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::backend(e)),
    }
}

/// Applies the log's entries to `state`; the length of what was applied. A torn end (an
/// interrupted write) is cut off; an unreadable line before a good one is corruption.
fn replay_log(path: &Path, file: &std::fs::File, state: &mut State) -> StoreResult<u64> {
    let bytes = std::fs::read(path).map_err(StoreError::backend)?;
    let mut good = 0usize; // end of the last line applied
    let mut torn: Option<usize> = None; // first line that did not parse
    let mut offset = 0usize;
    for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let end = offset + line.len();
        let parsed = match line.strip_suffix(b"\n") {
            Some(body) => serde_json::from_slice::<Entry>(body).ok(),
            None => None,
        };
        match (parsed, torn) {
            (Some(_), Some(at)) => {
                return Err(corrupt(
                    path,
                    format!("unreadable line at byte {at} before line {}", n + 1),
                ))
            }
            (Some(entry), None) => {
                state.apply(entry);
                good = end;
            }
            (None, _) => torn = torn.or(Some(offset)),
        }
        offset = end;
    }
    if good < bytes.len() {
        tracing::warn!(
            file = %path.display(),
            bytes = bytes.len() - good,
            "ignoring the torn end of the embedded store's log (an interrupted write)"
        );
        file.set_len(good as u64).map_err(StoreError::backend)?;
    }
    Ok(good as u64)
}

/// The log file of the snapshot at `snapshot`: the same path with `.log` appended.
pub fn log_path(snapshot: &Path) -> PathBuf {
    with_suffix(snapshot, ".log")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{}: {what}", path.display()))
}

impl EmbeddedTable {
    /// A table that lives in memory only.
    pub fn in_memory(clock: SharedClock) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    /// A table persisted to `file` (its snapshot) and `file.log`, loaded if they exist, with
    /// the default [`FileOptions`].
    pub fn open(file: impl Into<PathBuf>, clock: SharedClock) -> StoreResult<Self> {
        Self::open_with(file, clock, FileOptions::default())
    }

    pub fn open_with(
        file: impl Into<PathBuf>,
        clock: SharedClock,
        options: FileOptions,
    ) -> StoreResult<Self> {
        let snapshot = file.into();
        if let Some(dir) = snapshot.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        }
        let path = log_path(&snapshot);
        let log_file = open_locked(&path)?;
        // A snapshot an interrupted compaction left half-written.
        let _ = std::fs::remove_file(with_suffix(&snapshot, ".tmp"));
        let mut state = State::default();
        let snapshot_len = load_snapshot(&snapshot, &mut state)?;
        let good = replay_log(&path, &log_file, &mut state)?;
        let mut log = Log {
            snapshot,
            path,
            file: log_file,
            len: good,
            snapshot_len,
            compact_at: 0,
            options,
            broken: false,
            buf: Vec::with_capacity(4096),
        };
        log.compact_at = log.threshold();
        state.log = Some(log);
        let table = Self {
            state: Mutex::new(state),
            clock,
        };
        table.lock().maybe_compact(table.clock.now_unix());
        Ok(table)
    }

    pub fn shared_in_memory() -> Arc<Self> {
        Arc::new(Self::in_memory(Arc::new(SystemClock)))
    }

    /// The log file, for a file-backed table.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.lock().log.as_ref().map(|l| l.path.clone())
    }

    /// Writes a snapshot now and empties the log (a no-op in memory).
    pub fn compact(&self) -> StoreResult<()> {
        let now = self.clock.now_unix();
        self.lock().compact(now).map_err(StoreError::backend)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every mutation is appended to the log first, then applied by inserts and removals
        // that do not panic (short of running out of memory, which aborts), so a poisoned
        // lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Log {
    fn threshold(&self) -> u64 {
        self.options
            .compact_min_bytes
            .max(self.snapshot_len.saturating_mul(self.options.compact_ratio))
    }

    /// Appends one line — one write, or a transaction's writes (`tx`) — and, on success, it
    /// is in the file (and synced, under `EveryWrite`).
    fn append(&mut self, writes: &[LogWrite<'_>], tx: bool) -> StoreResult<()> {
        if self.broken {
            return Err(StoreError::Invalid(format!(
                "{}: an earlier write failed and could not be undone; reopen the table",
                self.path.display()
            )));
        }
        let buf = &mut self.buf;
        buf.clear();
        if tx {
            buf.extend_from_slice(b"{\"tx\":[");
        }
        for (n, w) in writes.iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            match w {
                LogWrite::Put(json) => {
                    buf.extend_from_slice(b"{\"put\":");
                    buf.extend_from_slice(json);
                }
                LogWrite::Delete(key) => {
                    buf.extend_from_slice(b"{\"delete\":");
                    serde_json::to_writer(&mut *buf, key).map_err(StoreError::backend)?;
                }
            }
            buf.push(b'}');
        }
        if tx {
            buf.extend_from_slice(b"]}");
        }
        buf.push(b'\n');
        let mut written = self.file.write_all(&self.buf);
        if written.is_ok() && self.options.fsync == Fsync::EveryWrite {
            written = self.file.sync_data();
        }
        if let Err(e) = written {
            // Cut off whatever part of the line reached the file.
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(StoreError::backend(e));
        }
        self.len += self.buf.len() as u64;
        Ok(())
    }
}

impl State {
    /// The JSON of `item` when the table is file-backed (what its log line and the next
    /// snapshot hold).
    fn encode(&self, item: &Item) -> StoreResult<Option<Box<[u8]>>> {
        match &self.log {
            Some(_) => serde_json::to_vec(item)
                .map(|v| Some(v.into_boxed_slice()))
                .map_err(StoreError::backend),
            None => Ok(None),
        }
    }

    fn append(&mut self, writes: &[LogWrite<'_>], tx: bool) -> StoreResult<()> {
        match &mut self.log {
            Some(log) => log.append(writes, tx),
            None => Ok(()),
        }
    }

    fn live(&self, key: &Key, now: i64) -> Option<&Item> {
        self.items
            .get(key)
            .map(|s| &s.item)
            .filter(|i| !i.expired(now))
    }

    fn check(&self, key: &Key, cond: Condition, now: i64) -> bool {
        match cond {
            Condition::None => true,
            Condition::NotExists => self.live(key, now).is_none(),
            Condition::Exists => self.live(key, now).is_some(),
            Condition::Version(v) => self.live(key, now).is_some_and(|i| i.version == v),
        }
    }

    fn insert(&mut self, item: Item, json: Option<Box<[u8]>>) {
        match self.items.get_mut(&item.key) {
            Some(slot) => {
                let old = &slot.item;
                reindex(
                    &mut self.gsi1,
                    &item.key,
                    old.gsi1.as_ref(),
                    item.gsi1.as_ref(),
                );
                reindex(
                    &mut self.gsi2,
                    &item.key,
                    old.gsi2.as_ref(),
                    item.gsi2.as_ref(),
                );
                *slot = Stored { item, json };
            }
            None => {
                reindex(&mut self.gsi1, &item.key, None, item.gsi1.as_ref());
                reindex(&mut self.gsi2, &item.key, None, item.gsi2.as_ref());
                self.items.insert(item.key.clone(), Stored { item, json });
            }
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Item> {
        let old = self.items.remove(key)?.item;
        reindex(&mut self.gsi1, key, old.gsi1.as_ref(), None);
        reindex(&mut self.gsi2, key, old.gsi2.as_ref(), None);
        Some(old)
    }

    fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Put(item) => self.insert(item, None),
            Entry::Delete(key) => {
                self.remove(&key);
            }
            Entry::Tx(entries) => entries.into_iter().for_each(|e| self.apply(e)),
        }
    }

    fn maybe_compact(&mut self, now: i64) {
        let Some(log) = &self.log else { return };
        if log.len <= log.compact_at {
            return;
        }
        if let Err(e) = self.compact(now) {
            // The write that got here is committed (in the log); compaction is retried once
            // the log has grown by another minimum.
            tracing::warn!(error = %e, "compacting the embedded store failed");
            if let Some(log) = &mut self.log {
                log.compact_at = log.len.saturating_add(log.options.compact_min_bytes);
            }
        }
    }

    /// Drops expired items, writes the snapshot atomically, empties the log.
    fn compact(&mut self, now: i64) -> std::io::Result<()> {
        if self.log.is_none() {
            return Ok(());
        }
        let expired: Vec<Key> = self
            .items
            .values()
            .filter(|s| s.item.expired(now))
            .map(|s| s.item.key.clone())
            .collect();
        for key in &expired {
            self.remove(key);
        }
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let sync = log.options.fsync != Fsync::Never;
        let tmp = with_suffix(&log.snapshot, ".tmp");
        let written = (|| {
            let file = private_file()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            out.write_all(b"[")?;
            for (n, stored) in self.items.values_mut().enumerate() {
                if n > 0 {
                    out.write_all(b",")?;
                }
                let json = match &mut stored.json {
                    Some(json) => json,
                    // Loaded from disk: serialized once, here, then kept.
                    json @ None => json.insert(
                        serde_json::to_vec(&stored.item)
                            .map_err(std::io::Error::other)?
                            .into_boxed_slice(),
                    ),
                };
                out.write_all(json)?;
            }
            out.write_all(b"]")?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            if sync {
                file.sync_all()?;
            }
            let len = file.metadata()?.len();
            std::fs::rename(&tmp, &log.snapshot)?;
            if sync {
                if let Some(dir) = log.snapshot.parent() {
                    let dir = if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir
                    };
                    File::open(dir)?.sync_all()?;
                }
            }
            Ok(len)
        })();
        let len = match written {
            Ok(len) => len,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // The snapshot holds everything the log did: the log can go. (Should the truncation
        // fail, the old lines replay harmlessly over the new snapshot.)
        log.snapshot_len = len;
        log.file.set_len(0)?;
        log.len = 0;
        log.compact_at = log.threshold();
        Ok(())
    }
}

/// Moves an item's entry in one index from `old` to `new`.
fn reindex(index: &mut BTreeSet<IndexEntry>, key: &Key, old: Option<&Key>, new: Option<&Key>) {
    if old == new {
        return;
    }
    if let Some(o) = old {
        index.remove(&(o.clone(), key.clone()));
    }
    if let Some(n) = new {
        index.insert((n.clone(), key.clone()));
    }
}

/// The smallest string after every string that starts with `prefix` (`None`: no such string,
/// every string past `prefix` starts with it). Code-point order is UTF-8 byte order, which is
/// how `str` compares.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The smallest string greater than `s`.
fn successor(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push_str(s);
    out.push('\0');
    out
}

/// The range of index keys a query covers, as bounds on `(Key, K)` where `K` ranges over the
/// rest of the entry (`lowest` is its minimum): a lower bound that includes, an upper bound
/// that excludes.
fn key_range(pk: &str, sort: &SortKey) -> (Key, Key) {
    let at = |sk: String| Key::new(pk, sk);
    let partition_end = Key::new(successor(pk), "");
    match sort {
        SortKey::Any => (at(String::new()), partition_end),
        SortKey::BeginsWith(p) => (
            at(p.clone()),
            prefix_end(p).map(at).unwrap_or(partition_end),
        ),
        SortKey::After(v) => (at(successor(v)), partition_end),
        SortKey::Between(a, b) => (at(a.clone()), at(successor(b))),
        SortKey::AtMost(v) => (at(String::new()), at(successor(v))),
    }
}

fn lowest() -> Key {
    Key::new("", "")
}

/// Narrows `[lo, hi)` to what lies strictly after (ascending) or before (descending) `pos`.
/// `None` when nothing is left (`BTreeMap::range` panics on an inverted range).
fn narrow<T: Ord>(lo: T, hi: T, pos: Option<T>, ascending: bool) -> Option<(Bound<T>, Bound<T>)> {
    let (lo, hi) = match pos {
        None => (Bound::Included(lo), Bound::Excluded(hi)),
        Some(p) if ascending => {
            if p >= hi {
                return None;
            }
            if p >= lo {
                (Bound::Excluded(p), Bound::Excluded(hi))
            } else {
                (Bound::Included(lo), Bound::Excluded(hi))
            }
        }
        Some(p) => {
            if p < lo {
                return None;
            }
            if p < hi {
                (Bound::Included(lo), Bound::Excluded(p))
            } else {
                (Bound::Included(lo), Bound::Excluded(hi))
            }
        }
    };
    let nonempty = match (&lo, &hi) {
        (Bound::Included(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Excluded(b)) => {
            a < b
        }
        _ => true,
    };
    nonempty.then_some((lo, hi))
}

/// One page from `entries` (in sort order): `limit` entries are read, expired ones are left
/// out of the page (so it may be short, as on DynamoDB, where the TTL filter runs after the
/// limit).
fn page<'a>(
    mut entries: impl DoubleEndedIterator<Item = &'a Item>,
    query: &Query,
    now: i64,
) -> Page {
    let limit = query.limit.clamp(1, 1000) as usize;
    let mut step = || {
        if query.ascending {
            entries.next()
        } else {
            entries.next_back()
        }
    };
    let mut items = Vec::new();
    let (mut read, mut last) = (0usize, None);
    while read < limit {
        let Some(item) = step() else { break };
        read += 1;
        last = Some(item);
        if !item.expired(now) {
            items.push(item.clone());
        }
    }
    let next = match last {
        Some(last) if read == limit && step().is_some() => {
            Some(PageToken::after(last, query.index))
        }
        _ => None,
    };
    Page { items, next }
}

fn token_key(token: &PageToken, pk: &str, sk: &str) -> StoreResult<Key> {
    match (token.0.get(pk), token.0.get(sk)) {
        (Some(pk), Some(sk)) => Ok(Key::new(pk.clone(), sk.clone())),
        _ => Err(StoreError::InvalidPageToken),
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let now = self.clock.now_unix();
        Ok(self.lock().live(key, now).cloned())
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        validate_item(&item)?;
        let now = self.clock.now_unix();
        let mut state = self.lock();
        if !state.check(&item.key, condition, now) {
            return Err(StoreError::ConditionFailed);
        }
        let json = state.encode(&item)?;
        if let Some(json) = &json {
            state.append(&[LogWrite::Put(json)], false)?;
        }
        state.insert(item, json);
        state.maybe_compact(now);
        Ok(())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<Option<Item>> {
        let now = self.clock.now_unix();
        let mut state = self.lock();
        if !state.check(key, condition, now) {
            return Err(StoreError::ConditionFailed);
        }
        if !state.items.contains_key(key) {
            return Ok(None);
        }
        state.append(&[LogWrite::Delete(key)], false)?;
        let old = state.remove(key).filter(|i| !i.expired(now));
        state.maybe_compact(now);
        Ok(old)
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        use super::keys::attr;
        validate_page(&query)?;
        let now = self.clock.now_unix();
        let (lo, hi) = key_range(&query.pk, &query.sort);
        let state = self.lock();
        let names = match query.index {
            Index::Primary => {
                let pos = match &query.page {
                    Some(t) => Some(token_key(t, attr::PK, attr::SK)?),
                    None => None,
                };
                let Some(range) = narrow(lo, hi, pos, query.ascending) else {
                    return Ok(Page::default());
                };
                let items = state.items.range(range).map(|(_, s)| &s.item);
                return Ok(page(items, &query, now));
            }
            Index::Gsi1 => (&state.gsi1, attr::GSI1PK, attr::GSI1SK),
            Index::Gsi2 => (&state.gsi2, attr::GSI2PK, attr::GSI2SK),
        };
        let (index, pk, sk) = names;
        let pos = match &query.page {
            Some(t) => Some((token_key(t, pk, sk)?, token_key(t, attr::PK, attr::SK)?)),
            None => None,
        };
        let Some(range) = narrow((lo, lowest()), (hi, lowest()), pos, query.ascending) else {
            return Ok(Page::default());
        };
        let items = &state.items;
        Ok(page(
            index
                .range(range)
                .filter_map(|(_, k)| items.get(k).map(|s| &s.item)),
            &query,
            now,
        ))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        validate_transaction(&ops)?;
        let now = self.clock.now_unix();
        let mut state = self.lock();
        for op in &ops {
            let (key, cond) = match op {
                WriteOp::Put(item, c) => (&item.key, *c),
                WriteOp::Delete(k, c) | WriteOp::Check(k, c) => (k, *c),
            };
            if !state.check(key, cond, now) {
                return Err(StoreError::ConditionFailed);
            }
        }
        let mut jsons = Vec::with_capacity(ops.len());
        for op in &ops {
            jsons.push(match op {
                WriteOp::Put(item, _) => state.encode(item)?,
                _ => None,
            });
        }
        if state.log.is_some() {
            let writes: Vec<LogWrite<'_>> = ops
                .iter()
                .zip(&jsons)
                .filter_map(|(op, json)| match (op, json) {
                    (WriteOp::Put(..), Some(json)) => Some(LogWrite::Put(json)),
                    (WriteOp::Delete(key, _), _) => Some(LogWrite::Delete(key)),
                    _ => None,
                })
                .collect();
            if !writes.is_empty() {
                state.append(&writes, true)?;
            }
        }
        for (op, json) in ops.into_iter().zip(jsons) {
            match op {
                WriteOp::Put(item, _) => state.insert(item, json),
                WriteOp::Delete(key, _) => {
                    state.remove(&key);
                }
                WriteOp::Check(..) => {}
            }
        }
        state.maybe_compact(now);
        Ok(())
    }

    async fn add(&self, key: &Key, by: u64) -> StoreResult<u64> {
        validate_add(key, by)?;
        let now = self.clock.now_unix();
        let mut state = self.lock();
        let item = match state.live(key, now) {
            Some(i) => {
                let version = i.version.checked_add(by).ok_or_else(|| {
                    StoreError::Invalid(format!("counter {}/{} overflows", key.pk, key.sk))
                })?;
                i.clone().with_version(version)
            }
            None => Item::new(key.clone(), serde_json::json!({})).with_version(by),
        };
        let version = item.version;
        // Logged as the whole item, as a put is.
        let json = state.encode(&item)?;
        if let Some(json) = &json {
            state.append(&[LogWrite::Put(json)], false)?;
        }
        state.insert(item, json);
        state.maybe_compact(now);
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("E#").as_deref(), Some("E$"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        let end = prefix_end("P#é").unwrap();
        for s in ["P#é", "P#é\u{10FFFF}", "P#éz"] {
            assert!(s < end.as_str() && s.starts_with("P#é"));
        }
        for s in ["P#ê", "P#ë", "P$"] {
            assert!(s >= end.as_str());
        }
    }

    #[test]
    fn narrowing_never_builds_an_inverted_range() {
        assert!(narrow(1, 5, Some(7), true).is_none());
        assert!(narrow(1, 5, Some(4), true).is_some());
        assert!(narrow(1, 5, Some(0), false).is_none());
        assert!(narrow(1, 5, Some(1), false).is_none());
        assert!(narrow(3, 3, None, true).is_none());
        assert!(narrow(1, 5, Some(5), false).is_some());
    }
}

/// Options for the store's files, which hold sealed tokens, OAuth sessions and key hashes:
/// created readable by their owner only (0600).
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(all(test, unix))]
mod file_mode_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_store_files_are_private() {
        let dir = std::env::temp_dir().join(format!(
            "cgs-mode-{}-{}",
            std::process::id(),
            crate::crypto::random_token(6)
        ));
        let file = dir.join("store.json");
        let clock: SharedClock = Arc::new(crate::clock::ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH,
        ));
        let table = EmbeddedTable::open(&file, clock).unwrap();
        drop(table);
        let mode = std::fs::metadata(log_path(&file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
