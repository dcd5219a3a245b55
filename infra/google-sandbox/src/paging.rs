//! Keyset pagination shared by Calendar and People lists: stable under inserts and deletes.

use serde_json::Value;

use crate::state::SortKey;

/// Sorts, skips past `after`, cuts a page of `max`; returns the page and the key to resume
/// after when more items remain.
pub fn paginate(
    mut items: Vec<(SortKey, Value)>,
    after: Option<&SortKey>,
    max: usize,
) -> (Vec<Value>, Option<SortKey>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rest: Vec<(SortKey, Value)> = match after {
        Some(k) => items.into_iter().filter(|(key, _)| key > k).collect(),
        None => items,
    };
    let more = rest.len() > max;
    rest.truncate(max);
    let next = if more {
        rest.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    (rest.into_iter().map(|(_, v)| v).collect(), next)
}
