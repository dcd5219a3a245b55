//! Google's partial-response `fields` parameter (`items(id,etag),nextPageToken`, `a/b`, `*`)
//! and the `ETag` response header, applied to successful JSON API responses.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A field selection: each key keeps its whole value (`None`) or a sub-selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection(BTreeMap<String, Option<Selection>>);

impl Selection {
    /// Parses a `fields` value; `None` when the syntax is invalid.
    pub fn parse(raw: &str) -> Option<Selection> {
        let chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let mut pos = 0;
        let sel = parse_list(&chars, &mut pos)?;
        (pos == chars.len() && !sel.0.is_empty()).then_some(sel)
    }

    /// The selected keys, each with its sub-selection (`None`: the whole value).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Option<Selection>)> {
        self.0.iter()
    }

    fn insert(&mut self, path: &[String], sub: Option<Selection>) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            match (self.0.get_mut(first), sub) {
                (Some(Some(existing)), Some(new)) => {
                    for (k, v) in new.0 {
                        existing.0.insert(k, v);
                    }
                }
                (_, sub) => {
                    let whole = matches!(self.0.get(first), Some(None));
                    self.0.insert(first.clone(), if whole { None } else { sub });
                }
            }
            return;
        }
        let entry = self
            .0
            .entry(first.clone())
            .or_insert_with(|| Some(Selection::default()));
        if let Some(child) = entry {
            child.insert(rest, sub);
        }
    }

    /// Keeps only the selected parts of `value`.
    pub fn apply(&self, value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(obj) => {
                if self.0.contains_key("*") {
                    return value.clone();
                }
                let mut out = Map::new();
                for (k, sub) in &self.0 {
                    if let Some(v) = obj.get(k) {
                        let kept = match sub {
                            None => v.clone(),
                            Some(s) => s.apply(v),
                        };
                        out.insert(k.clone(), kept);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

fn parse_list(chars: &[char], pos: &mut usize) -> Option<Selection> {
    let mut sel = Selection::default();
    loop {
        let mut path = Vec::new();
        loop {
            let start = *pos;
            while *pos < chars.len() && !matches!(chars[*pos], ',' | '/' | '(' | ')') {
                *pos += 1;
            }
            if *pos == start {
                return None;
            }
            path.push(chars[start..*pos].iter().collect::<String>());
            if chars.get(*pos) == Some(&'/') {
                *pos += 1;
                continue;
            }
            break;
        }
        let sub = if chars.get(*pos) == Some(&'(') {
            *pos += 1;
            let inner = parse_list(chars, pos)?;
            if chars.get(*pos) != Some(&')') {
                return None;
            }
            *pos += 1;
            Some(inner)
        } else {
            None
        };
        sel.insert(&path, sub);
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            _ => return Some(sel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_nested_paths_and_arrays() {
        let v = json!({"kind": "k", "nextPageToken": "t", "items": [{"id": "1", "etag": "e", "summary": "s", "start": {"date": "d", "timeZone": "z"}}]});
        let sel = Selection::parse("nextPageToken,items(id,start/date)").unwrap_or_default();
        assert_eq!(
            sel.apply(&v),
            json!({"nextPageToken": "t", "items": [{"id": "1", "start": {"date": "d"}}]})
        );
        assert_eq!(Selection::parse("*").map(|s| s.apply(&v)), Some(v.clone()));
        assert!(Selection::parse("items(id").is_none());
        assert!(Selection::parse("a,,b").is_none());
        assert!(Selection::parse("").is_none());
    }
}
