//! One conformance suite for the store port, run against every adapter: the embedded table
//! (in memory and file-backed), DynamoDB Local and moto's DynamoDB — the last two over the
//! real DynamoDB wire protocol.

use serde_json::json;
use shared::clock::{Clock, ManualClock, SharedClock};
use shared::store::embedded::{EmbeddedTable, FileOptions, Fsync};
use shared::store::{
    Condition, Index, Item, Key, PageToken, Query, SharedTable, SortKey, StoreError, WriteOp,
};
use std::sync::Arc;

type Backend = (SharedTable, ManualClock);

async fn embedded() -> Backend {
    let clock = crate::world::manual_clock();
    let shared: SharedClock = Arc::new(clock.clone());
    (Arc::new(EmbeddedTable::in_memory(shared)), clock)
}

/// Compacting every kilobyte or so: the cases run across many compactions.
fn small_compactions() -> FileOptions {
    FileOptions {
        fsync: Fsync::OnCompaction,
        compact_ratio: 2,
        compact_min_bytes: 1024,
    }
}

fn temp_store() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(crate::world::unique("cgs-embedded"))
        .join("store.json")
}

async fn embedded_file() -> Backend {
    let clock = crate::world::manual_clock();
    let shared: SharedClock = Arc::new(clock.clone());
    let table = EmbeddedTable::open_with(temp_store(), shared, small_compactions()).expect("open");
    (Arc::new(table), clock)
}

async fn dynamodb_local() -> Backend {
    let clock = crate::world::manual_clock();
    let table =
        crate::world::fresh_dynamo_table(&crate::world::dynamodb_local(), Arc::new(clock.clone()))
            .await;
    (table, clock)
}

async fn moto_dynamodb() -> Backend {
    let clock = crate::world::manual_clock();
    let table =
        crate::world::fresh_dynamo_table(&crate::world::moto(), Arc::new(clock.clone())).await;
    (table, clock)
}

fn item(pk: &str, sk: &str, data: serde_json::Value) -> Item {
    Item::new(Key::new(pk, sk), data)
}

async fn collect(table: &SharedTable, mut q: Query) -> Vec<Item> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = table.query(q.clone()).await.expect("query");
        out.extend(page.items);
        match page.next {
            Some(next) => q.page = Some(next),
            None => return out,
        }
    }
    panic!("pagination does not end");
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.key.sk.clone()).collect()
}

// ---- the suite ------------------------------------------------------------------------------

async fn create_once_and_read_back((t, _): Backend) {
    let data = json!({
        "name": "Zoë — 東京", "n": 42, "neg": -7, "f": 2.5, "ok": true, "none": null,
        "empty": "", "list": [1, "two", {"three": [3]}], "nested": {"a": {"b": "c"}}
    });
    let it = item("P#1", "S#1", data.clone()).with_gsi1(Key::new("G#1", "x"));
    t.put(it.clone(), Condition::NotExists)
        .await
        .expect("create");
    let got = t.get(&it.key).await.unwrap().expect("present");
    assert_eq!(got.data, data);
    assert_eq!(got.version, 1);
    assert_eq!(got.gsi1, Some(Key::new("G#1", "x")));
    assert!(matches!(
        t.put(it.clone(), Condition::NotExists).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(t.get(&Key::new("P#1", "S#2")).await.unwrap().is_none());
}

async fn optimistic_versions((t, _): Backend) {
    let k = Key::new("P#v", "S");
    assert!(matches!(
        t.put(item("P#v", "S", json!({})), Condition::Version(1))
            .await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(matches!(
        t.put(item("P#v", "S", json!({})), Condition::Exists).await,
        Err(StoreError::ConditionFailed)
    ));
    t.put(item("P#v", "S", json!({"n": 1})), Condition::NotExists)
        .await
        .unwrap();
    t.put(
        item("P#v", "S", json!({"n": 2})).with_version(2),
        Condition::Version(1),
    )
    .await
    .unwrap();
    // A writer still holding version 1 loses.
    assert!(matches!(
        t.put(
            item("P#v", "S", json!({"n": 3})).with_version(2),
            Condition::Version(1)
        )
        .await,
        Err(StoreError::ConditionFailed)
    ));
    let got = t.get(&k).await.unwrap().unwrap();
    assert_eq!((got.version, got.data), (2, json!({"n": 2})));
    t.put(item("P#v", "S", json!({"n": 9})), Condition::Exists)
        .await
        .unwrap();
    t.put(item("P#v", "S", json!({"n": 10})), Condition::None)
        .await
        .unwrap();
}

async fn concurrent_updates_have_one_winner((t, _): Backend) {
    t.put(item("P#race", "S", json!({"w": -1})), Condition::NotExists)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.put(
                item("P#race", "S", json!({"w": w})).with_version(2),
                Condition::Version(1),
            )
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
}

async fn delete_returns_the_item_once((t, _): Backend) {
    t.put(item("P#d", "S", json!({"x": 1})), Condition::NotExists)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.delete(&Key::new("P#d", "S"), Condition::Exists).await
        }));
    }
    let mut got = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Some(i)) => {
                assert_eq!(i.data, json!({"x": 1}));
                got += 1;
            }
            Ok(None) => panic!("delete under Exists returned nothing"),
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(got, 1, "exactly one consumer");
    assert!(t.get(&Key::new("P#d", "S")).await.unwrap().is_none());
    // Unconditional delete of nothing is fine and returns nothing.
    assert!(t
        .delete(&Key::new("P#d", "S"), Condition::None)
        .await
        .unwrap()
        .is_none());
}

async fn query_order_conditions_and_isolation((t, _): Backend) {
    for i in 0..25 {
        t.put(
            item("P#q", &format!("E#{i:03}"), json!({"i": i})),
            Condition::NotExists,
        )
        .await
        .unwrap();
    }
    t.put(item("P#q", "F#000", json!({})), Condition::NotExists)
        .await
        .unwrap();
    t.put(item("P#q2", "E#000", json!({})), Condition::NotExists)
        .await
        .unwrap();
    t.put(item("P#", "E#000", json!({})), Condition::NotExists)
        .await
        .unwrap();

    let all = collect(&t, Query::partition(Index::Primary, "P#q").limit(7)).await;
    assert_eq!(all.len(), 26);
    let mut expected: Vec<String> = (0..25).map(|i| format!("E#{i:03}")).collect();
    expected.push("F#000".into());
    assert_eq!(sks(&all), expected);

    let desc = collect(
        &t,
        Query::partition(Index::Primary, "P#q")
            .limit(4)
            .descending(),
    )
    .await;
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(sks(&desc), rev);

    let prefix = collect(
        &t,
        Query::partition(Index::Primary, "P#q")
            .sort(SortKey::BeginsWith("E#".into()))
            .limit(10),
    )
    .await;
    assert_eq!(prefix.len(), 25);
    let after = collect(
        &t,
        Query::partition(Index::Primary, "P#q").sort(SortKey::After("E#020".into())),
    )
    .await;
    assert_eq!(sks(&after), ["E#021", "E#022", "E#023", "E#024", "F#000"]);
    let between = collect(
        &t,
        Query::partition(Index::Primary, "P#q")
            .sort(SortKey::Between("E#003".into(), "E#005".into())),
    )
    .await;
    assert_eq!(sks(&between), ["E#003", "E#004", "E#005"]);
    let at_most = collect(
        &t,
        Query::partition(Index::Primary, "P#q").sort(SortKey::AtMost("E#001".into())),
    )
    .await;
    assert_eq!(sks(&at_most), ["E#000", "E#001"]);
    // Other partitions never leak in, not even ones whose key is a prefix.
    let other = collect(&t, Query::partition(Index::Primary, "P#")).await;
    assert_eq!(other.len(), 1);
    assert!(collect(&t, Query::partition(Index::Primary, "P#none"))
        .await
        .is_empty());
}

async fn secondary_indexes((t, _): Backend) {
    for i in 0..12 {
        let it = item(&format!("P#{i}"), "S", json!({"i": i}))
            .with_gsi1(Key::new("TENANT#a#KEYS", format!("k{i:02}")))
            .with_gsi2(Key::new(
                format!("DUE#{}", i % 2),
                format!("{:05}", 100 - i),
            ));
        t.put(it, Condition::NotExists).await.unwrap();
    }
    t.put(
        item("P#x", "S", json!({})).with_gsi1(Key::new("TENANT#b#KEYS", "k00")),
        Condition::NotExists,
    )
    .await
    .unwrap();
    t.put(item("P#y", "S", json!({})), Condition::NotExists)
        .await
        .unwrap();

    let a = collect(&t, Query::partition(Index::Gsi1, "TENANT#a#KEYS").limit(5)).await;
    assert_eq!(a.len(), 12);
    let gsi_sks: Vec<String> = a.iter().map(|i| i.gsi1.clone().unwrap().sk).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    assert_eq!(gsi_sks, expected);
    assert_eq!(
        collect(&t, Query::partition(Index::Gsi1, "TENANT#b#KEYS"))
            .await
            .len(),
        1
    );

    let due = collect(
        &t,
        Query::partition(Index::Gsi2, "DUE#0")
            .sort(SortKey::AtMost("00096".into()))
            .limit(2),
    )
    .await;
    let ids: Vec<i64> = due.iter().map(|i| i.data["i"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![10, 8, 6, 4]);
}

async fn expired_items_are_gone((t, clock): Backend) {
    let now = clock.now_unix();
    t.put(
        item("P#ttl", "A", json!({})).with_ttl(now + 60),
        Condition::NotExists,
    )
    .await
    .unwrap();
    t.put(
        item("P#ttl", "B", json!({})).with_ttl(now + 3600),
        Condition::NotExists,
    )
    .await
    .unwrap();
    t.put(item("P#ttl", "C", json!({})), Condition::NotExists)
        .await
        .unwrap();
    assert_eq!(
        collect(&t, Query::partition(Index::Primary, "P#ttl"))
            .await
            .len(),
        3
    );

    clock.advance(time::Duration::seconds(61));
    assert!(t.get(&Key::new("P#ttl", "A")).await.unwrap().is_none());
    assert_eq!(
        sks(&collect(&t, Query::partition(Index::Primary, "P#ttl").limit(1)).await),
        ["B", "C"]
    );
    // An expired item is absent for conditions too.
    assert!(matches!(
        t.put(item("P#ttl", "A", json!({})), Condition::Exists)
            .await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(matches!(
        t.delete(&Key::new("P#ttl", "A"), Condition::Exists).await,
        Err(StoreError::ConditionFailed)
    ));
    t.put(
        item("P#ttl", "A", json!({"again": true})),
        Condition::NotExists,
    )
    .await
    .unwrap();
    assert_eq!(
        t.get(&Key::new("P#ttl", "A")).await.unwrap().unwrap().data,
        json!({"again": true})
    );
}

async fn transactions_are_all_or_nothing((t, _): Backend) {
    t.put(
        item("P#t", "EXISTING", json!({"v": 1})),
        Condition::NotExists,
    )
    .await
    .unwrap();
    let failing = vec![
        WriteOp::Put(item("P#t", "NEW1", json!({})), Condition::NotExists),
        WriteOp::Put(
            item("P#t", "EXISTING", json!({"v": 2})),
            Condition::NotExists,
        ),
    ];
    assert!(matches!(
        t.transact(failing).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(t.get(&Key::new("P#t", "NEW1")).await.unwrap().is_none());
    assert_eq!(
        t.get(&Key::new("P#t", "EXISTING"))
            .await
            .unwrap()
            .unwrap()
            .data,
        json!({"v": 1})
    );

    let check_fails = vec![
        WriteOp::Check(Key::new("P#t", "MISSING"), Condition::Exists),
        WriteOp::Put(item("P#t", "NEW2", json!({})), Condition::None),
    ];
    assert!(matches!(
        t.transact(check_fails).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(t.get(&Key::new("P#t", "NEW2")).await.unwrap().is_none());

    t.put(item("P#t", "OTHER", json!({})), Condition::NotExists)
        .await
        .unwrap();
    let ok = vec![
        WriteOp::Check(Key::new("P#t", "OTHER"), Condition::Version(1)),
        WriteOp::Put(item("P#t", "NEW3", json!({"ok": 1})), Condition::NotExists),
        WriteOp::Delete(Key::new("P#t", "EXISTING"), Condition::Exists),
    ];
    t.transact(ok).await.unwrap();
    assert!(t.get(&Key::new("P#t", "EXISTING")).await.unwrap().is_none());
    assert!(t.get(&Key::new("P#t", "NEW3")).await.unwrap().is_some());

    let twice = vec![
        WriteOp::Put(item("P#t", "X", json!({})), Condition::None),
        WriteOp::Delete(Key::new("P#t", "X"), Condition::None),
    ];
    assert!(matches!(
        t.transact(twice).await,
        Err(StoreError::Invalid(_))
    ));
    let too_many: Vec<WriteOp> = (0..101)
        .map(|i| WriteOp::Put(item("P#t", &format!("M{i}"), json!({})), Condition::None))
        .collect();
    assert!(matches!(
        t.transact(too_many).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        t.transact(vec![]).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn page_tokens_are_checked((t, _): Backend) {
    assert!(matches!(
        PageToken::decode("not base64 !"),
        Err(StoreError::InvalidPageToken)
    ));
    assert!(matches!(
        PageToken::decode("e30"),
        Err(StoreError::InvalidPageToken)
    ));
    for i in 0..3 {
        t.put(
            item("P#pt", &format!("S{i}"), json!({})),
            Condition::NotExists,
        )
        .await
        .unwrap();
    }
    let first = t
        .query(Query::partition(Index::Primary, "P#pt").limit(1))
        .await
        .unwrap();
    let token = PageToken::decode(&first.next.clone().expect("more").encode()).unwrap();
    let second = t
        .query(
            Query::partition(Index::Primary, "P#pt")
                .limit(1)
                .page(Some(token)),
        )
        .await
        .unwrap();
    assert_eq!(sks(&second.items), ["S1"]);
    // A token from one partition is refused on another.
    t.put(item("P#other", "S0", json!({})), Condition::NotExists)
        .await
        .unwrap();
    let token = PageToken::decode(&first.next.clone().unwrap().encode()).unwrap();
    assert!(matches!(
        t.query(Query::partition(Index::Primary, "P#other").page(Some(token)))
            .await,
        Err(StoreError::InvalidPageToken)
    ));
}

async fn invalid_items_are_rejected((t, _): Backend) {
    assert!(t
        .put(
            item("P#i", "S", json!(["not", "an", "object"])),
            Condition::None
        )
        .await
        .is_err());
    assert!(t
        .put(item("", "S", json!({})), Condition::None)
        .await
        .is_err());
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded_memory { $(#[tokio::test] async fn $case() { super::$case(super::embedded().await).await } )* }
        mod embedded_file { $(#[tokio::test] async fn $case() { super::$case(super::embedded_file().await).await } )* }
        mod dynamodb_local { $(#[tokio::test] async fn $case() { super::$case(super::dynamodb_local().await).await } )* }
        mod moto_dynamodb { $(#[tokio::test] async fn $case() { super::$case(super::moto_dynamodb().await).await } )* }
    };
}

/// Concurrent writers of a tenant's feed — one with a clock far behind — and a reader
/// following the feed with its cursor the whole time: the reader misses nothing, ids strictly
/// increase, and the reader's sequence is the feed's.
async fn feed_ids_commit_in_order((t, clock): Backend) {
    use shared::domain::{ChangeKind, ChangeRecord, TenantId, UserId};
    let store = shared::store::repo::Store::new(t);
    let tenant = TenantId::parse("feedtenant").unwrap();
    let (writers, each) = (4usize, 12usize);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, tenant, now) = (store.clone(), tenant.clone(), clock.now());
        tasks.push(tokio::spawn(async move {
            let user = UserId::parse(&format!("u{w}")).unwrap();
            for i in 0..each {
                let mut r = ChangeRecord::new(
                    tenant.clone(),
                    user.clone(),
                    ChangeKind::EventUpdated,
                    json!({"w": w, "i": i}),
                    now,
                );
                if w == 0 {
                    // A Lambda instance whose clock is years behind.
                    r.id =
                        ulid::Ulid::from_parts(1_500_000_000_000, u128::from(i as u64)).to_string();
                }
                store.append_change(&mut r).await.unwrap();
            }
        }));
    }
    let mut read: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read.len() < writers * each && std::time::Instant::now() < deadline {
        let page = store
            .list_changes(&tenant, read.last().map(String::as_str), 7)
            .await
            .unwrap();
        read.extend(page.into_iter().map(|r| r.id));
        // Let the writers run between reads (the embedded table answers without waiting).
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    read.extend(
        store
            .list_changes(&tenant, read.last().map(String::as_str), 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id),
    );
    let all: Vec<String> = store
        .list_changes(&tenant, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all.len(), writers * each);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ids strictly increase");
    assert_eq!(read, all, "the cursor reader saw every record, in order");
}

/// A counter: created by its first `add`, read back with `get` as the item's version, bumped
/// by any amount; a zero step is refused; the item stays an ordinary one (a versioned put
/// works on it).
async fn counters_add((t, _): Backend) {
    let key = Key::new("P#count", "C");
    assert_eq!(t.add(&key, 1).await.unwrap(), 1);
    assert_eq!(t.add(&key, 5).await.unwrap(), 6);
    let stored = t.get(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.data.clone()), (6, json!({})));
    assert!(matches!(t.add(&key, 0).await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        t.add(&Key::new("", "C"), 1).await,
        Err(StoreError::Invalid(_))
    ));
    // An item written by `put` counts on from its version, and keeps its data.
    t.put(
        item("P#count", "D", json!({"x": 1})).with_version(41),
        Condition::NotExists,
    )
    .await
    .unwrap();
    assert_eq!(t.add(&Key::new("P#count", "D"), 1).await.unwrap(), 42);
    let d = t.get(&Key::new("P#count", "D")).await.unwrap().unwrap();
    assert_eq!((d.version, d.data), (42, json!({"x": 1})));
    t.put(
        item("P#count", "C", json!({"y": 2})).with_version(7),
        Condition::Version(6),
    )
    .await
    .unwrap();
    assert_eq!(t.add(&key, 3).await.unwrap(), 10);
}

/// Concurrent adds get disjoint ranges that together cover every number once.
async fn concurrent_adds_share_out_the_numbers((t, _): Backend) {
    let key = Key::new("P#count-race", "C");
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let t = t.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10u64 {
                let by = 1 + (w + i) % 3;
                let top = t.add(&key, by).await.unwrap();
                got.extend(top + 1 - by..=top);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let total = all.len() as u64;
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    assert_eq!(t.get(&key).await.unwrap().unwrap().version, total);
}

/// The real table, yielding to the scheduler a random number of times before every
/// request — so that on the embedded table (which answers without waiting) concurrent
/// writers interleave between taking a number and writing under it, and land out of order,
/// as they do over the network.
struct Yielding(SharedTable);

async fn jitter() {
    for _ in 0..rand::random::<u8>() % 4 {
        tokio::task::yield_now().await;
    }
}

#[async_trait::async_trait]
impl shared::store::Table for Yielding {
    async fn get(&self, key: &Key) -> shared::store::StoreResult<Option<Item>> {
        jitter().await;
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> shared::store::StoreResult<()> {
        jitter().await;
        self.0.put(item, condition).await
    }
    async fn delete(
        &self,
        key: &Key,
        condition: Condition,
    ) -> shared::store::StoreResult<Option<Item>> {
        jitter().await;
        self.0.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> shared::store::StoreResult<shared::store::Page> {
        jitter().await;
        self.0.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> shared::store::StoreResult<()> {
        jitter().await;
        self.0.transact(ops).await
    }
    async fn add(&self, key: &Key, by: u64) -> shared::store::StoreResult<u64> {
        jitter().await;
        self.0.add(key, by).await
    }
}

fn feed_record(
    tenant: &shared::domain::TenantId,
    user: &str,
    data: serde_json::Value,
    now: time::OffsetDateTime,
) -> shared::domain::ChangeRecord {
    shared::domain::ChangeRecord::new(
        tenant.clone(),
        shared::domain::UserId::parse(user).unwrap(),
        shared::domain::ChangeKind::EventUpdated,
        data,
        now,
    )
}

/// Everything after `after`, page by page.
async fn read_feed(
    store: &shared::store::Store,
    tenant: &shared::domain::TenantId,
    mut after: Option<String>,
) -> Vec<shared::domain::ChangeRecord> {
    let mut out = Vec::new();
    loop {
        let page = store
            .list_changes(tenant, after.as_deref(), 100)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = Some(last.id.clone());
        out.extend(page);
    }
}

/// Sixteen writers append to one tenant's feed at once (single records and pages of three)
/// while a reader follows the feed with its cursor: every append succeeds, ids strictly
/// increase in read order, and the reader sees every record exactly once.
async fn feed_takes_concurrent_appends_and_the_cursor_sees_each_once((t, clock): Backend) {
    let table: SharedTable = Arc::new(Yielding(t));
    let store = shared::store::repo::Store::new(table);
    let tenant = shared::domain::TenantId::parse("feedrace").unwrap();
    let (writers, each) = (16usize, 24usize);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, tenant, now) = (store.clone(), tenant.clone(), clock.now());
        tasks.push(tokio::spawn(async move {
            let user = format!("u{w}");
            let mut i = 0;
            while i < each {
                if w % 2 == 0 && i + 3 <= each {
                    let mut page: Vec<_> = (i..i + 3)
                        .map(|i| feed_record(&tenant, &user, json!({"w": w, "i": i}), now))
                        .collect();
                    store.append_changes(&mut page).await.unwrap();
                    assert!(page.windows(2).all(|p| p[0].id < p[1].id));
                    i += 3;
                } else {
                    let mut r = feed_record(&tenant, &user, json!({"w": w, "i": i}), now);
                    store.append_change(&mut r).await.unwrap();
                    i += 1;
                }
            }
        }));
    }
    let reader = {
        let (store, tenant) = (store.clone(), tenant.clone());
        tokio::spawn(async move {
            let mut read: Vec<shared::domain::ChangeRecord> = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while read.len() < writers * each && std::time::Instant::now() < deadline {
                let after = read.last().map(|r| r.id.clone());
                read.extend(
                    store
                        .list_changes(&tenant, after.as_deref(), 7)
                        .await
                        .unwrap(),
                );
                tokio::task::yield_now().await;
            }
            read
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    let read = reader.await.unwrap();
    let all = read_feed(&store, &tenant, None).await;
    assert_eq!(all.len(), writers * each, "every append is in the feed");
    assert!(
        all.windows(2).all(|p| p[0].id < p[1].id),
        "ids strictly increase"
    );
    let mut seen: Vec<(i64, i64)> = all
        .iter()
        .map(|r| (r.data["w"].as_i64().unwrap(), r.data["i"].as_i64().unwrap()))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), writers * each, "no record twice");
    let ids =
        |v: &[shared::domain::ChangeRecord]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let (read, all) = (ids(&read), ids(&all));
    let missed: Vec<&String> = all.iter().filter(|id| !read.contains(id)).collect();
    assert!(
        read == all,
        "the cursor reader saw every record once, in order: read {} of {}, missed {missed:?}",
        read.len(),
        all.len()
    );
}

fn quick_feed() -> shared::store::repo::FeedTiming {
    shared::store::repo::FeedTiming {
        grace: std::time::Duration::from_millis(300),
        write_window: std::time::Duration::from_secs(30),
        settle: std::time::Duration::from_millis(1500),
    }
}

/// A writer that dies between taking its number and writing holds the feed back only for
/// the grace period: then readers void its slot, and records after it are read (once).
async fn feed_dead_writer_blocks_only_for_the_grace((t, clock): Backend) {
    let store = shared::store::repo::Store::new(t.clone()).with_feed_timing(quick_feed());
    let tenant = shared::domain::TenantId::parse("feeddead").unwrap();
    let mut first = feed_record(&tenant, "u1", json!({"n": 1}), clock.now());
    store.append_change(&mut first).await.unwrap();
    // The writer that dies: takes a number, never writes.
    let dead = t
        .add(&shared::store::keys::feed_counter(&tenant), 1)
        .await
        .unwrap();
    let mut after = feed_record(&tenant, "u2", json!({"n": 2}), clock.now());
    store.append_change(&mut after).await.unwrap();
    assert_eq!(shared::store::keys::feed_seq(&after.id), Some(dead + 1));
    // Within the grace the reader stops before the gap (the record may still land)...
    let now = store.list_changes(&tenant, None, 10).await.unwrap();
    assert_eq!(now, vec![first.clone()]);
    let cursor = Some(first.id.clone());
    assert!(store
        .list_changes(&tenant, cursor.as_deref(), 10)
        .await
        .unwrap()
        .is_empty());
    // ...after it, the slot is void and the record after it arrives, once.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        read_feed(&store, &tenant, cursor.clone()).await,
        vec![after.clone()]
    );
    assert_eq!(
        read_feed(&store, &tenant, None).await,
        vec![first.clone(), after.clone()]
    );
    // The voided slot is taken: nothing can land there any more.
    let slot = shared::store::keys::feed_record(&tenant, &shared::store::keys::feed_id(dead));
    assert!(matches!(
        t.put(Item::new(slot, json!({"late": true})), Condition::NotExists)
            .await,
        Err(StoreError::ConditionFailed)
    ));
}

/// The real table, holding back the first write of a record marked `slow` (a writer paused
/// between taking its number and writing), until `release` is notified.
struct HoldsBackTheSlowRecord {
    table: SharedTable,
    release: Arc<tokio::sync::Notify>,
    held: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl shared::store::Table for HoldsBackTheSlowRecord {
    async fn get(&self, key: &Key) -> shared::store::StoreResult<Option<Item>> {
        self.table.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> shared::store::StoreResult<()> {
        if item.data["data"]["slow"] == json!(true)
            && !self.held.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.release.notified().await;
        }
        self.table.put(item, condition).await
    }
    async fn delete(
        &self,
        key: &Key,
        condition: Condition,
    ) -> shared::store::StoreResult<Option<Item>> {
        self.table.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> shared::store::StoreResult<shared::store::Page> {
        self.table.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> shared::store::StoreResult<()> {
        self.table.transact(ops).await
    }
    async fn add(&self, key: &Key, by: u64) -> shared::store::StoreResult<u64> {
        self.table.add(key, by).await
    }
}

/// A writer paused past the grace between taking its number and writing: the reader voids
/// the slot and moves on; the late write loses the slot, the record takes a new number after
/// the cursor — so the reader still gets it, once.
async fn feed_late_writer_lands_after_the_cursor((t, clock): Backend) {
    let release = Arc::new(tokio::sync::Notify::new());
    let table: SharedTable = Arc::new(HoldsBackTheSlowRecord {
        table: t,
        release: release.clone(),
        held: std::sync::atomic::AtomicBool::new(false),
    });
    let store = shared::store::repo::Store::new(table).with_feed_timing(quick_feed());
    let tenant = shared::domain::TenantId::parse("feedlate").unwrap();
    let slow = {
        let (store, tenant, now) = (store.clone(), tenant.clone(), clock.now());
        tokio::spawn(async move {
            let mut r = feed_record(&tenant, "u1", json!({"slow": true}), now);
            store.append_change(&mut r).await.map(|()| r)
        })
    };
    // The slow writer has its number once the counter moved. (moto applies an `ADD` in
    // steps, so a read racing it may see the item without its number yet: not moved.)
    let counter = shared::store::keys::feed_counter(&tenant);
    while !matches!(store.table().get(&counter).await, Ok(Some(_))) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut fast = feed_record(&tenant, "u2", json!({"fast": true}), clock.now());
    store.append_change(&mut fast).await.unwrap();
    assert!(store
        .list_changes(&tenant, None, 10)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let read = store.list_changes(&tenant, None, 10).await.unwrap();
    assert_eq!(read, vec![fast.clone()]);
    release.notify_one();
    let slow = slow.await.unwrap().expect("the late append succeeds");
    assert!(
        slow.id > fast.id,
        "the late record took a number after the cursor"
    );
    assert_eq!(
        read_feed(&store, &tenant, Some(fast.id.clone())).await,
        vec![slow.clone()]
    );
    assert_eq!(read_feed(&store, &tenant, None).await, vec![fast, slow]);
}

/// A gap too wide to void slot by slot (a cursor older than the retention, numbers whose
/// records expired) is passed once the record after it has settled — not before.
async fn feed_wide_gap_is_passed_once_settled((t, clock): Backend) {
    let store = shared::store::repo::Store::new(t.clone()).with_feed_timing(quick_feed());
    let tenant = shared::domain::TenantId::parse("feedwide").unwrap();
    let counter = shared::store::keys::feed_counter(&tenant);
    t.add(&counter, shared::store::repo::FEED_VOID_MAX + 500)
        .await
        .unwrap();
    let mut r = feed_record(&tenant, "u1", json!({"n": 1}), clock.now());
    store.append_change(&mut r).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        store
            .list_changes(&tenant, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "past the grace but not settled: waits"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        store.list_changes(&tenant, None, 10).await.unwrap(),
        vec![r]
    );
}

/// Records of the feed's earlier, time-based ids (a ULID per record) stay readable and come
/// first; a cursor from then still works and leads on to the numbered records.
async fn feed_older_ids_and_cursors_still_work((t, clock): Backend) {
    let store = shared::store::repo::Store::new(t.clone());
    let tenant = shared::domain::TenantId::parse("feedold").unwrap();
    let mut old = Vec::new();
    for i in 0..3u64 {
        let mut r = feed_record(&tenant, "u1", json!({"old": i}), clock.now());
        r.id = ulid::Ulid::from_parts(1_780_000_000_000 + i, 7).to_string();
        let item = Item::new(
            shared::store::keys::feed_record(&tenant, &r.id),
            serde_json::to_value(&r).unwrap(),
        )
        .with_ttl(clock.now_unix() + 3600);
        t.put(item, Condition::NotExists).await.unwrap();
        old.push(r);
    }
    let mut new = feed_record(&tenant, "u1", json!({"new": true}), clock.now());
    store.append_change(&mut new).await.unwrap();
    assert_eq!(new.id, shared::store::keys::feed_id(1));
    let mut all = old.clone();
    all.push(new.clone());
    assert_eq!(read_feed(&store, &tenant, None).await, all);
    assert_eq!(
        read_feed(&store, &tenant, Some(old[0].id.clone())).await,
        all[1..]
    );
    assert_eq!(
        read_feed(&store, &tenant, Some(old[2].id.clone())).await,
        vec![new]
    );
    // The largest id there can be: nothing after it (and no overflow).
    let last = shared::store::keys::feed_id(u64::MAX);
    assert_eq!(shared::store::keys::feed_seq(&last), Some(u64::MAX));
    for cursor in [last.as_str(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"] {
        assert!(store
            .list_changes(&tenant, Some(cursor), 10)
            .await
            .unwrap()
            .is_empty());
    }
}

/// A table on which the first delete comes after the lease it targets ran out and another
/// worker ("second") took it: what a slow worker's release meets.
struct TakenOverOnDelete {
    inner: SharedTable,
    clock: ManualClock,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl shared::store::Table for TakenOverOnDelete {
    async fn get(&self, key: &Key) -> shared::store::StoreResult<Option<Item>> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, c: Condition) -> shared::store::StoreResult<()> {
        self.inner.put(item, c).await
    }
    async fn delete(&self, key: &Key, c: Condition) -> shared::store::StoreResult<Option<Item>> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.clock.advance(time::Duration::seconds(61));
            let other = shared::store::repo::Store::new(self.inner.clone());
            let (tenant, user) = lease_account();
            let until = self.clock.now_unix() + 60;
            assert!(other
                .acquire_lease(&tenant, &user, "second", until)
                .await
                .unwrap());
        }
        self.inner.delete(key, c).await
    }
    async fn query(&self, q: Query) -> shared::store::StoreResult<shared::store::Page> {
        self.inner.query(q).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> shared::store::StoreResult<()> {
        self.inner.transact(ops).await
    }
    async fn add(&self, key: &Key, by: u64) -> shared::store::StoreResult<u64> {
        self.inner.add(key, by).await
    }
}

fn lease_account() -> (shared::domain::TenantId, shared::domain::UserId) {
    (
        shared::domain::TenantId::parse("acme").unwrap(),
        shared::domain::UserId::parse("u1").unwrap(),
    )
}

/// A worker's lease: one holder at a time; a release by a holder whose lease ran out (and
/// was taken by another worker since) leaves the new holder's lease in place (finding 32).
async fn leases_release_only_their_holder((t, clock): Backend) {
    let table = Arc::new(TakenOverOnDelete {
        inner: t,
        clock: clock.clone(),
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let store = shared::store::repo::Store::new(table.clone());
    let (tenant, user) = lease_account();
    let now = clock.now_unix();
    assert!(store
        .acquire_lease(&tenant, &user, "first", now + 60)
        .await
        .unwrap());
    assert!(!store
        .acquire_lease(&tenant, &user, "second", now + 60)
        .await
        .unwrap());
    // The first worker is slow: its lease runs out and "second" takes it just before the
    // first worker's release lands.
    table.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    store.release_lease(&tenant, &user, "first").await.unwrap();
    let now = clock.now_unix();
    assert!(
        !store
            .acquire_lease(&tenant, &user, "third", now + 30)
            .await
            .unwrap(),
        "the second worker's lease was released by the first"
    );
    // Its own release frees it.
    store.release_lease(&tenant, &user, "second").await.unwrap();
    assert!(store
        .acquire_lease(&tenant, &user, "third", now + 30)
        .await
        .unwrap());
}

conformance!(
    leases_release_only_their_holder,
    create_once_and_read_back,
    optimistic_versions,
    query_order_conditions_and_isolation,
    secondary_indexes,
    expired_items_are_gone,
    transactions_are_all_or_nothing,
    page_tokens_are_checked,
    invalid_items_are_rejected,
    counters_add,
    feed_dead_writer_blocks_only_for_the_grace,
    feed_late_writer_lands_after_the_cursor,
    feed_wide_gap_is_passed_once_settled,
    feed_older_ids_and_cursors_still_work,
);

/// Races between concurrent requests, on every backend that isolates them as DynamoDB does.
/// Not on moto: its server checks a write's condition and then writes without holding a lock
/// across the two, so two concurrent conditional writes (or transactions) on one item can
/// both succeed there — seen in these very cases (six concurrent deletes under `Exists`: two
/// passed the condition, the second got no item back), never on DynamoDB or DynamoDB Local.
macro_rules! isolation {
    ($($case:ident),* $(,)?) => {
        mod isolated_embedded_memory { $(#[tokio::test] async fn $case() { super::$case(super::embedded().await).await } )* }
        mod isolated_embedded_file { $(#[tokio::test] async fn $case() { super::$case(super::embedded_file().await).await } )* }
        mod isolated_dynamodb_local { $(#[tokio::test] async fn $case() { super::$case(super::dynamodb_local().await).await } )* }
    };
}

isolation!(
    concurrent_updates_have_one_winner,
    delete_returns_the_item_once,
    feed_ids_commit_in_order,
    concurrent_adds_share_out_the_numbers,
    feed_takes_concurrent_appends_and_the_cursor_sees_each_once,
);

// ---- the file-backed embedded table: log, replay, compaction -------------------------------

/// The file-backed embedded table keeps everything across a reopen (the local server's
/// restarts).
#[tokio::test]
async fn embedded_file_survives_reopen() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    {
        let t = EmbeddedTable::open(&file, clock.clone()).unwrap();
        use shared::store::Table;
        t.put(
            item("P", "S", json!({"kept": true})).with_gsi1(Key::new("G", "1")),
            Condition::NotExists,
        )
        .await
        .unwrap();
    }
    let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock).unwrap());
    assert_eq!(
        t.get(&Key::new("P", "S")).await.unwrap().unwrap().data,
        json!({"kept": true})
    );
    assert_eq!(
        collect(&t, Query::partition(Index::Gsi1, "G")).await.len(),
        1
    );
}

const PKS: [&str; 6] = ["P#0", "P#1", "P#2", "P#3", "P#4", "P#5"];
const GSI1: [&str; 3] = ["G#0", "G#1", "G#2"];
const GSI2: [&str; 2] = ["D#0", "D#1"];

/// Every live item, by every partition of the table and of both indexes, in query order.
async fn dump(t: &SharedTable) -> Vec<Vec<Item>> {
    let mut out = Vec::new();
    for pk in PKS {
        out.push(collect(t, Query::partition(Index::Primary, pk).limit(37)).await);
    }
    for pk in GSI1 {
        out.push(collect(t, Query::partition(Index::Gsi1, pk).limit(37)).await);
    }
    for pk in GSI2 {
        out.push(collect(t, Query::partition(Index::Gsi2, pk).descending()).await);
    }
    out
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn outcome<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(StoreError::ConditionFailed) => "condition failed".into(),
        Err(e) => panic!("unexpected {e}"),
    }
}

/// The same `n` random writes — puts, conditional puts, deletes, transactions (some failing),
/// items with index keys and TTLs, the clock moving on — on `t` and on the in-memory `model`;
/// every answer is the same on both.
async fn random_writes(t: &SharedTable, model: &SharedTable, clock: &ManualClock, n: usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let key = |rng: &mut Rng| {
        Key::new(
            PKS[rng.below(PKS.len() as u64) as usize],
            format!("S#{:03}", rng.below(150)),
        )
    };
    for i in 0..n {
        let k = key(&mut rng);
        let current = model.get(&k).await.unwrap();
        let mut it = Item::new(
            k.clone(),
            json!({"i": i, "pad": "x".repeat(rng.below(200) as usize), "é": "東京"}),
        );
        if rng.below(3) == 0 {
            it = it.with_gsi1(Key::new(
                GSI1[rng.below(3) as usize],
                format!("g{:02}", rng.below(40)),
            ));
        }
        if rng.below(4) == 0 {
            it = it.with_gsi2(Key::new(
                GSI2[rng.below(2) as usize],
                format!("{:05}", rng.below(1000)),
            ));
        }
        if rng.below(8) == 0 {
            it = it.with_ttl(clock.now_unix() + rng.below(20) as i64);
        }
        let (a, b) = match rng.below(10) {
            0..=3 => (
                outcome(t.put(it.clone(), Condition::None).await),
                outcome(model.put(it, Condition::None).await),
            ),
            4..=5 => {
                let cond = match &current {
                    Some(c) if rng.below(5) > 0 => Condition::Version(c.version),
                    Some(c) => Condition::Version(c.version + 1),
                    None => Condition::NotExists,
                };
                let it = it.with_version(current.map_or(1, |c| c.version + 1));
                (
                    outcome(t.put(it.clone(), cond).await),
                    outcome(model.put(it, cond).await),
                )
            }
            6..=7 => {
                let cond = [Condition::None, Condition::Exists][rng.below(2) as usize];
                (
                    outcome(t.delete(&k, cond).await),
                    outcome(model.delete(&k, cond).await),
                )
            }
            _ => {
                let mut ops = vec![WriteOp::Put(it, Condition::None)];
                let other = key(&mut rng);
                if other != k {
                    ops.push(match rng.below(3) {
                        0 => WriteOp::Delete(other, Condition::None),
                        1 => WriteOp::Put(
                            item(&other.pk, &other.sk, json!({"tx": i})),
                            Condition::NotExists,
                        ),
                        _ => WriteOp::Check(other, Condition::Exists),
                    });
                }
                (
                    outcome(t.transact(ops.clone()).await),
                    outcome(model.transact(ops).await),
                )
            }
        };
        assert_eq!(a, b, "write {i} answered differently");
        if rng.below(50) == 0 {
            clock.advance(time::Duration::seconds(1));
        }
    }
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Thousands of writes, then a reopen: the state is the one the in-memory table reached by
/// the same writes — with compaction never running (default options) and with compaction
/// running every few writes, where the files stay bounded by the live data.
#[tokio::test]
async fn embedded_file_reopens_equal_after_many_writes_with_and_without_compaction() {
    for options in [FileOptions::default(), small_compactions()] {
        let clock = crate::world::manual_clock();
        let shared: SharedClock = Arc::new(clock.clone());
        let file = temp_store();
        let t = Arc::new(EmbeddedTable::open_with(&file, shared.clone(), options.clone()).unwrap());
        let model: SharedTable = Arc::new(EmbeddedTable::in_memory(shared.clone()));
        let table: SharedTable = t.clone();
        random_writes(&table, &model, &clock, 4000).await;
        let expected = dump(&model).await;
        assert!(
            expected.iter().map(Vec::len).sum::<usize>() > 200,
            "a real workload"
        );
        assert_eq!(dump(&table).await, expected);
        let log = t.log_file().unwrap();
        let (log_len, snapshot_len) = (file_len(&log), file_len(&file));
        if options.compact_min_bytes == 1024 {
            // Bounded: the log never outgrows twice the snapshot (plus one line).
            assert!(snapshot_len > 0, "compactions ran");
            assert!(
                log_len <= 2 * snapshot_len + 2048,
                "log {log_len} snapshot {snapshot_len}"
            );
        } else {
            assert_eq!(snapshot_len, 0, "no compaction under 4 MiB");
            assert!(log_len > 0);
        }
        drop((table, t));
        let reopened: SharedTable =
            Arc::new(EmbeddedTable::open_with(&file, shared.clone(), options.clone()).unwrap());
        assert_eq!(dump(&reopened).await, expected, "{options:?}");
        // And it goes on from there: more writes, another reopen.
        random_writes(&reopened, &model, &clock, 500).await;
        let expected = dump(&model).await;
        drop(reopened);
        let again: SharedTable =
            Arc::new(EmbeddedTable::open_with(&file, shared, options).unwrap());
        assert_eq!(dump(&again).await, expected);
    }
}

/// A crash in the middle of appending a write leaves a torn last line: it is ignored on
/// load (the write was never acknowledged), cut off, and later writes land after the good
/// lines.
#[tokio::test]
async fn embedded_file_ignores_a_torn_last_line() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    let log = {
        let t = EmbeddedTable::open(&file, clock.clone()).unwrap();
        let table: &dyn shared::store::Table = &t;
        table
            .put(item("P", "A", json!({"a": 1})), Condition::NotExists)
            .await
            .unwrap();
        table
            .put(
                item("P", "B", json!({"b": "a longer line"})),
                Condition::NotExists,
            )
            .await
            .unwrap();
        t.log_file().unwrap()
    };
    let bytes = std::fs::read(&log).unwrap();
    for cut in [1, 2, 10] {
        std::fs::write(&log, &bytes[..bytes.len() - cut]).unwrap();
        let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
        assert!(
            t.get(&Key::new("P", "A")).await.unwrap().is_some(),
            "cut {cut}"
        );
        assert!(
            t.get(&Key::new("P", "B")).await.unwrap().is_none(),
            "cut {cut}"
        );
        t.put(item("P", "C", json!({"c": cut})), Condition::NotExists)
            .await
            .unwrap();
        drop(t);
        let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
        assert_eq!(
            sks(&collect(&t, Query::partition(Index::Primary, "P")).await),
            ["A", "C"],
            "cut {cut}: the write after the repair is kept"
        );
    }
}

/// A transaction is one log line: cut anywhere, none of it is replayed; whole, all of it.
#[tokio::test]
async fn embedded_file_replays_a_transaction_all_or_nothing() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    let log = {
        let t = EmbeddedTable::open(&file, clock.clone()).unwrap();
        let table: &dyn shared::store::Table = &t;
        table
            .put(item("P", "X", json!({"x": 1})), Condition::NotExists)
            .await
            .unwrap();
        table
            .put(item("Q", "Y", json!({})), Condition::NotExists)
            .await
            .unwrap();
        table
            .transact(vec![
                WriteOp::Put(item("P", "T1", json!({"t": 1})), Condition::NotExists),
                WriteOp::Check(Key::new("Q", "Y"), Condition::Version(1)),
                WriteOp::Put(
                    item("P", "T2", json!({"t": 2})).with_gsi1(Key::new("G", "t2")),
                    Condition::NotExists,
                ),
                WriteOp::Delete(Key::new("P", "X"), Condition::Exists),
            ])
            .await
            .unwrap();
        t.log_file().unwrap()
    };
    let bytes = std::fs::read(&log).unwrap();
    let tx_line = bytes.len()
        - bytes[..bytes.len() - 1]
            .iter()
            .rev()
            .position(|b| *b == b'\n')
            .unwrap()
        - 1;
    for cut in [1, (bytes.len() - tx_line) / 2, bytes.len() - tx_line - 1] {
        std::fs::write(&log, &bytes[..bytes.len() - cut]).unwrap();
        let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
        assert_eq!(
            sks(&collect(&t, Query::partition(Index::Primary, "P")).await),
            ["X"],
            "cut {cut}: nothing of the transaction"
        );
        assert!(collect(&t, Query::partition(Index::Gsi1, "G"))
            .await
            .is_empty());
    }
    std::fs::write(&log, &bytes).unwrap();
    let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
    assert_eq!(
        sks(&collect(&t, Query::partition(Index::Primary, "P")).await),
        ["T1", "T2"],
        "all of the transaction"
    );
    assert_eq!(
        collect(&t, Query::partition(Index::Gsi1, "G")).await.len(),
        1
    );
}

/// An unreadable line with good lines after it is not a torn write: the open fails rather
/// than drop what follows.
#[tokio::test]
async fn embedded_file_refuses_a_corrupt_line_in_the_middle() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    let log = {
        let t = EmbeddedTable::open(&file, clock.clone()).unwrap();
        let table: &dyn shared::store::Table = &t;
        table
            .put(item("P", "A", json!({})), Condition::NotExists)
            .await
            .unwrap();
        t.log_file().unwrap()
    };
    let good = std::fs::read(&log).unwrap();
    let mut bad = b"{\"put\":{\"trunc\n".to_vec();
    bad.extend_from_slice(&good);
    std::fs::write(&log, &bad).unwrap();
    assert!(matches!(
        EmbeddedTable::open(&file, clock.clone()),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bad,
        "the file is left as it was"
    );
}

/// A state file of the earlier format (the whole table as one JSON array, rewritten on each
/// write) opens as it is; new writes go to the log, and the first compaction folds them in.
#[tokio::test]
async fn embedded_file_opens_the_previous_format() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let old = vec![
        item("P", "OLD1", json!({"n": 1})).with_gsi1(Key::new("G", "1")),
        item("P", "OLD2", json!({"n": 2}))
            .with_ttl(clock.now_unix() + 3600)
            .with_version(3),
    ];
    std::fs::write(&file, serde_json::to_vec(&old).unwrap()).unwrap();
    {
        let t: SharedTable = Arc::new(EmbeddedTable::open(&file, clock.clone()).unwrap());
        assert_eq!(
            collect(&t, Query::partition(Index::Primary, "P")).await,
            old
        );
        t.put(item("P", "NEW", json!({})), Condition::NotExists)
            .await
            .unwrap();
    }
    let t = EmbeddedTable::open(&file, clock.clone()).unwrap();
    t.compact().unwrap();
    assert_eq!(
        file_len(&t.log_file().unwrap()),
        0,
        "the log is folded into the snapshot"
    );
    let table: SharedTable = Arc::new(t);
    let all = collect(&table, Query::partition(Index::Primary, "P")).await;
    assert_eq!(sks(&all), ["NEW", "OLD1", "OLD2"]);
    drop(table);
    // The snapshot is still a plain array of items.
    let list: Vec<Item> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(list, all);
}

/// TTL across reopens and compactions: a live item keeps its expiry; an expired one stays
/// gone (compaction drops it, as DynamoDB's TTL deletion would) and its key can be created
/// again.
#[tokio::test]
async fn embedded_file_keeps_ttl_semantics_across_reopen_and_compaction() {
    let clock = crate::world::manual_clock();
    let shared: SharedClock = Arc::new(clock.clone());
    let file = temp_store();
    let now = clock.now_unix();
    {
        let t: SharedTable = Arc::new(EmbeddedTable::open(&file, shared.clone()).unwrap());
        t.put(
            item("P", "A", json!({})).with_ttl(now + 60),
            Condition::NotExists,
        )
        .await
        .unwrap();
        t.put(
            item("P", "B", json!({}))
                .with_ttl(now + 3600)
                .with_gsi2(Key::new("D", "b")),
            Condition::NotExists,
        )
        .await
        .unwrap();
        t.put(item("P", "C", json!({})), Condition::NotExists)
            .await
            .unwrap();
    }
    let t = EmbeddedTable::open(&file, shared.clone()).unwrap();
    let table: SharedTable = Arc::new(t);
    let all = collect(&table, Query::partition(Index::Primary, "P")).await;
    assert_eq!(
        all.iter().map(|i| i.ttl).collect::<Vec<_>>(),
        [Some(now + 60), Some(now + 3600), None]
    );
    clock.advance(time::Duration::seconds(61));
    assert!(table.get(&Key::new("P", "A")).await.unwrap().is_none());
    drop(table);
    let t = EmbeddedTable::open(&file, shared.clone()).unwrap();
    t.compact().unwrap();
    let list: Vec<Item> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        sks(&list),
        ["B", "C"],
        "the expired item is not in the snapshot"
    );
    drop(t);
    let table: SharedTable = Arc::new(EmbeddedTable::open(&file, shared.clone()).unwrap());
    assert_eq!(
        sks(&collect(&table, Query::partition(Index::Primary, "P")).await),
        ["B", "C"]
    );
    assert_eq!(
        collect(&table, Query::partition(Index::Gsi2, "D"))
            .await
            .len(),
        1
    );
    assert!(matches!(
        table
            .put(item("P", "A", json!({})), Condition::Exists)
            .await,
        Err(StoreError::ConditionFailed)
    ));
    table
        .put(item("P", "A", json!({"again": true})), Condition::NotExists)
        .await
        .unwrap();
    clock.advance(time::Duration::seconds(3600));
    assert_eq!(
        sks(&collect(&table, Query::partition(Index::Primary, "P")).await),
        ["A", "C"]
    );
    assert!(collect(&table, Query::partition(Index::Gsi2, "D"))
        .await
        .is_empty());
}

/// Two tables on one file would interleave their writes: the second open is refused while
/// the first is open.
#[tokio::test]
async fn embedded_file_is_open_in_one_table_at_a_time() {
    let clock: SharedClock = Arc::new(crate::world::manual_clock());
    let file = temp_store();
    let first = EmbeddedTable::open(&file, clock.clone()).unwrap();
    assert!(matches!(
        EmbeddedTable::open(&file, clock.clone()),
        Err(StoreError::Invalid(_))
    ));
    drop(first);
    EmbeddedTable::open(&file, clock).unwrap();
}
