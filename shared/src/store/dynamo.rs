//! The DynamoDB adapter: one table, `PK`/`SK`, `GSI1`, `GSI2`, TTL attribute `ttl`,
//! the record as a native map in `d` and its version in `v`.

use super::keys::attr;
use super::{
    validate_add, validate_item, validate_page, validate_transaction, Condition, Index, Item, Key,
    Page, PageToken, Query, SortKey, StoreError, StoreResult, Table, WriteOp,
};
use crate::clock::SharedClock;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Attrs = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    clock: SharedClock,
}

impl DynamoTable {
    /// One operation of a transaction, as DynamoDB takes it.
    fn transact_item(&self, op: &WriteOp, now: i64) -> StoreResult<TransactWriteItem> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        let write = match op {
            WriteOp::Put(item, c) => {
                let c = condition(*c, now);
                TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item_to_attrs(item)))
                        .set_condition_expression(c.expr)
                        .set_expression_attribute_names(opt_map(c.names))
                        .set_expression_attribute_values(opt_map(c.values))
                        .build()
                        .map_err(invalid)?,
                )
            }
            WriteOp::Delete(key, c) => {
                let c = condition(*c, now);
                TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .set_condition_expression(c.expr)
                        .set_expression_attribute_names(opt_map(c.names))
                        .set_expression_attribute_values(opt_map(c.values))
                        .build()
                        .map_err(invalid)?,
                )
            }
            WriteOp::Check(key, c) => {
                let c = condition(*c, now);
                let Some(expr) = c.expr else {
                    return Err(StoreError::Invalid(
                        "a condition check needs a condition".into(),
                    ));
                };
                TransactWriteItem::builder().condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .condition_expression(expr)
                        .set_expression_attribute_names(opt_map(c.names))
                        .set_expression_attribute_values(opt_map(c.values))
                        .build()
                        .map_err(invalid)?,
                )
            }
        };
        Ok(write.build())
    }
    pub fn new(client: Client, table: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

/// Creates the table with the schema `template.yaml` declares (for local runs and tests);
/// does nothing if it exists.
pub async fn create_table_if_missing(client: &Client, table: &str) -> StoreResult<()> {
    let s = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))
    };
    let gsi = |name: &str, pk: &str, sk: &str| -> StoreResult<GlobalSecondaryIndex> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))
    };
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(s(attr::PK)?)
        .attribute_definitions(s(attr::SK)?)
        .attribute_definitions(s(attr::GSI1PK)?)
        .attribute_definitions(s(attr::GSI1SK)?)
        .attribute_definitions(s(attr::GSI2PK)?)
        .attribute_definitions(s(attr::GSI2SK)?)
        .key_schema(key(attr::PK, KeyType::Hash)?)
        .key_schema(key(attr::SK, KeyType::Range)?)
        .global_secondary_indexes(gsi("GSI1", attr::GSI1PK, attr::GSI1SK)?)
        .global_secondary_indexes(gsi("GSI2", attr::GSI2PK, attr::GSI2SK)?)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = e.into_service_error();
            if e.is_resource_in_use_exception() {
                Ok(())
            } else {
                Err(StoreError::backend(e))
            }
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn json_to_attr(v: &serde_json::Value) -> AttributeValue {
    use serde_json::Value as J;
    match v {
        J::Null => AttributeValue::Null(true),
        J::Bool(b) => AttributeValue::Bool(*b),
        J::Number(x) => AttributeValue::N(x.to_string()),
        J::String(x) => AttributeValue::S(x.clone()),
        J::Array(a) => AttributeValue::L(a.iter().map(json_to_attr).collect()),
        J::Object(o) => AttributeValue::M(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect(),
        ),
    }
}

pub(crate) fn attr_to_json(v: &AttributeValue) -> StoreResult<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        AttributeValue::Null(_) => J::Null,
        AttributeValue::Bool(b) => J::Bool(*b),
        AttributeValue::N(x) => {
            if let Ok(i) = x.parse::<i64>() {
                J::from(i)
            } else if let Ok(u) = x.parse::<u64>() {
                J::from(u)
            } else {
                let f: f64 = x
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("number {x}")))?;
                serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .ok_or_else(|| StoreError::Corrupt(format!("number {x}")))?
            }
        }
        AttributeValue::S(x) => J::String(x.clone()),
        AttributeValue::L(a) => J::Array(a.iter().map(attr_to_json).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => J::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), attr_to_json(v)?)))
                .collect::<StoreResult<_>>()?,
        ),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unsupported attribute {other:?}"
            )))
        }
    })
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        (attr::PK.to_owned(), s(&key.pk)),
        (attr::SK.to_owned(), s(&key.sk)),
    ])
}

fn item_to_attrs(item: &Item) -> Attrs {
    let mut m = key_attrs(&item.key);
    if let Some(k) = &item.gsi1 {
        m.insert(attr::GSI1PK.to_owned(), s(&k.pk));
        m.insert(attr::GSI1SK.to_owned(), s(&k.sk));
    }
    if let Some(k) = &item.gsi2 {
        m.insert(attr::GSI2PK.to_owned(), s(&k.pk));
        m.insert(attr::GSI2SK.to_owned(), s(&k.sk));
    }
    if let Some(t) = item.ttl {
        m.insert(attr::TTL.to_owned(), n(t));
    }
    m.insert(attr::VERSION.to_owned(), n(item.version));
    m.insert(attr::DATA.to_owned(), json_to_attr(&item.data));
    m
}

fn get_s<'a>(m: &'a Attrs, name: &str) -> Option<&'a str> {
    m.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(m: &Attrs, name: &str) -> Option<T> {
    m.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|x| x.parse().ok())
}

fn attrs_to_item(m: &Attrs) -> StoreResult<Item> {
    let pair = |a: &str, b: &str| match (get_s(m, a), get_s(m, b)) {
        (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
        _ => None,
    };
    let key = pair(attr::PK, attr::SK).ok_or_else(|| StoreError::Corrupt("missing key".into()))?;
    let data = m
        .get(attr::DATA)
        .map(attr_to_json)
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt(format!("{}/{}: no data", key.pk, key.sk)))?;
    Ok(Item {
        gsi1: pair(attr::GSI1PK, attr::GSI1SK),
        gsi2: pair(attr::GSI2PK, attr::GSI2SK),
        ttl: get_n(m, attr::TTL),
        version: get_n(m, attr::VERSION).unwrap_or(1),
        data,
        key,
    })
}

/// A condition expression with its names and values (TTL-aware: expired = absent).
struct Cond {
    expr: Option<String>,
    names: HashMap<String, String>,
    values: Attrs,
}

fn condition(c: Condition, now: i64) -> Cond {
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let live = "(attribute_not_exists(#ttl) OR #ttl > :now)";
    let expr = match c {
        Condition::None => None,
        Condition::NotExists => Some("attribute_not_exists(#pk) OR #ttl <= :now".to_owned()),
        Condition::Exists => Some(format!("attribute_exists(#pk) AND {live}")),
        Condition::Version(v) => {
            names.insert("#v".to_owned(), attr::VERSION.to_owned());
            values.insert(":v".to_owned(), n(v));
            Some(format!("#v = :v AND {live}"))
        }
    };
    if expr.is_some() {
        values.insert(":now".to_owned(), n(now));
        names.insert("#ttl".to_owned(), attr::TTL.to_owned());
        if matches!(c, Condition::NotExists | Condition::Exists) {
            names.insert("#pk".to_owned(), attr::PK.to_owned());
        }
    }
    Cond {
        expr,
        names,
        values,
    }
}

fn opt_map<T: Clone>(m: HashMap<String, T>) -> Option<HashMap<String, T>> {
    (!m.is_empty()).then_some(m)
}

fn backend<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(e)
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let now = self.clock.now_unix();
        match out.item {
            Some(m) => Ok(Some(attrs_to_item(&m)?).filter(|i| !i.expired(now))),
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        validate_item(&item)?;
        let c = self::condition(condition, self.clock.now_unix());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_attrs(&item)))
            .set_condition_expression(c.expr)
            .set_expression_attribute_names(opt_map(c.names))
            .set_expression_attribute_values(opt_map(c.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::ConditionFailed),
                e => Err(StoreError::backend(e)),
            },
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> StoreResult<Option<Item>> {
        let now = self.clock.now_unix();
        let c = self::condition(condition, now);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(c.expr)
            .set_expression_attribute_names(opt_map(c.names))
            .set_expression_attribute_values(opt_map(c.values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(m) if !m.is_empty() => {
                    Ok(Some(attrs_to_item(&m)?).filter(|i| !i.expired(now)))
                }
                _ => Ok(None),
            },
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::ConditionFailed),
                e => Err(StoreError::backend(e)),
            },
        }
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        validate_page(&query)?;
        let (pk_name, sk_name) = match query.index {
            Index::Primary => (attr::PK, attr::SK),
            Index::Gsi1 => (attr::GSI1PK, attr::GSI1SK),
            Index::Gsi2 => (attr::GSI2PK, attr::GSI2SK),
        };
        let mut names = HashMap::from([
            ("#pk".to_owned(), pk_name.to_owned()),
            ("#sk".to_owned(), sk_name.to_owned()),
        ]);
        let mut values = HashMap::from([(":pk".to_owned(), s(&query.pk))]);
        let sort = match &query.sort {
            SortKey::Any => {
                names.remove("#sk");
                None
            }
            SortKey::BeginsWith(p) => {
                values.insert(":a".into(), s(p));
                Some("begins_with(#sk, :a)")
            }
            SortKey::After(v) => {
                values.insert(":a".into(), s(v));
                Some("#sk > :a")
            }
            SortKey::AtMost(v) => {
                values.insert(":a".into(), s(v));
                Some("#sk <= :a")
            }
            SortKey::Between(a, b) => {
                values.insert(":a".into(), s(a));
                values.insert(":b".into(), s(b));
                Some("#sk BETWEEN :a AND :b")
            }
        };
        let expr = match sort {
            Some(sort) => format!("#pk = :pk AND {sort}"),
            None => "#pk = :pk".to_owned(),
        };
        let start = query
            .page
            .map(|t| t.0.into_iter().map(|(k, v)| (k, s(&v))).collect::<Attrs>());
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.name().map(str::to_owned))
            .key_condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .limit(query.limit.clamp(1, 1000) as i32)
            .scan_index_forward(query.ascending)
            .consistent_read(query.index == Index::Primary)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        let now = self.clock.now_unix();
        let mut items = Vec::new();
        for m in out.items.unwrap_or_default() {
            let item = attrs_to_item(&m)?;
            if !item.expired(now) {
                items.push(item);
            }
        }
        let next = match out.last_evaluated_key {
            Some(m) if !m.is_empty() => Some(PageToken(
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect(),
            )),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        validate_transaction(&ops)?;
        let now = self.clock.now_unix();
        let writes = ops
            .iter()
            .map(|op| self.transact_item(op, now))
            .collect::<StoreResult<Vec<_>>>()?;
        // The SDK retries a request whose answer it did not get; with a token, DynamoDB
        // answers a retry of a transaction that did commit with success instead of running
        // it again (where its conditions would now fail).
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .client_request_token(ulid::Ulid::new().to_string())
            .send()
            .await;
        result
            .map(|_| ())
            .map_err(|e| transaction_error(e.into_service_error()))
    }

    async fn add(&self, key: &Key, by: u64) -> StoreResult<u64> {
        validate_add(key, by)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression("ADD #v :by SET #d = if_not_exists(#d, :empty)")
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_names("#d", attr::DATA)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        out.attributes
            .as_ref()
            .and_then(|m| get_n::<u64>(m, attr::VERSION))
            .ok_or_else(|| StoreError::Corrupt(format!("{}/{}: counter", key.pk, key.sk)))
    }
}

/// A refused transaction: a condition failed, another transaction was in the way, or the
/// backend's own failure.
fn transaction_error(
    e: aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> StoreError {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let TransactWriteItemsError::TransactionCanceledException(c) = &e {
        let codes: Vec<&str> = c
            .cancellation_reasons()
            .iter()
            .filter_map(|r| r.code())
            .collect();
        if codes.contains(&"ConditionalCheckFailed") {
            return StoreError::ConditionFailed;
        }
        if codes.contains(&"TransactionConflict") {
            return StoreError::Conflict;
        }
    }
    StoreError::backend(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_attributes() {
        let v = serde_json::json!({
            "s": "x", "e": "", "i": -3, "u": u64::MAX, "f": 1.5, "b": true, "n": null,
            "l": [1, "two", {"three": 3}], "m": {"k": []}
        });
        assert_eq!(attr_to_json(&json_to_attr(&v)).unwrap(), v);
    }

    #[test]
    fn expired_counts_as_absent_in_conditions() {
        let c = condition(Condition::NotExists, 100);
        assert_eq!(
            c.expr.as_deref(),
            Some("attribute_not_exists(#pk) OR #ttl <= :now")
        );
        assert!(condition(Condition::None, 100).expr.is_none());
    }
}
