//! Google's discovery documents (`discovery/`, compiled in): which method a request is, and
//! whether a `fields` selection names only what that method's response can hold. Google
//! answers a selection of a field its schema does not have with 400 "Invalid field
//! selection"; so does the sandbox.

use std::sync::OnceLock;

use serde_json::Value;

use crate::fields::Selection;

const CALENDAR: &str = include_str!("../discovery/calendar.v3.json");
const PEOPLE: &str = include_str!("../discovery/people.v1.json");

struct Api {
    doc: Value,
    /// The request path's prefix before a method's path (`/calendar/v3/`, `/`).
    prefix: &'static str,
    methods: Vec<Method>,
}

struct Method {
    http: String,
    segments: Vec<String>,
    response: Option<String>,
}

fn apis() -> &'static [Api] {
    static APIS: OnceLock<Vec<Api>> = OnceLock::new();
    APIS.get_or_init(|| {
        [(CALENDAR, "/calendar/v3/"), (PEOPLE, "/")]
            .into_iter()
            .filter_map(|(text, prefix)| {
                let doc: Value = serde_json::from_str(text).ok()?;
                let mut methods = Vec::new();
                collect(&doc, &mut methods);
                Some(Api {
                    doc,
                    prefix,
                    methods,
                })
            })
            .collect()
    })
}

fn collect(resource: &Value, out: &mut Vec<Method>) {
    if let Some(methods) = resource.get("methods").and_then(Value::as_object) {
        for m in methods.values() {
            let path = m
                .get("flatPath")
                .or_else(|| m.get("path"))
                .and_then(Value::as_str)
                .unwrap_or("");
            out.push(Method {
                http: m
                    .get("httpMethod")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                segments: path.split('/').map(str::to_string).collect(),
                response: m
                    .get("response")
                    .and_then(|r| r.get("$ref"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
    }
    if let Some(children) = resource.get("resources").and_then(Value::as_object) {
        for r in children.values() {
            collect(r, out);
        }
    }
}

/// How well a path segment matches a method's: `None` for no match, else the number of
/// literal characters matched (the most literal method wins: `events/watch` over
/// `events/{eventId}`).
fn segment_score(template: &str, actual: &str) -> Option<usize> {
    match template.find('{') {
        None => (template == actual).then_some(template.len()),
        Some(open) => {
            let close = template.find('}')?;
            let (head, tail) = (&template[..open], &template[close + 1..]);
            (actual.len() > head.len() + tail.len()
                && actual.starts_with(head)
                && actual.ends_with(tail))
            .then_some(head.len() + tail.len())
        }
    }
}

/// The response schema of the method `http path` is, with its API's document.
fn response_of(http: &str, path: &str) -> Option<(&'static Value, &'static str)> {
    for api in apis() {
        let Some(rest) = path.strip_prefix(api.prefix) else {
            continue;
        };
        let actual: Vec<&str> = rest.split('/').collect();
        let best = api
            .methods
            .iter()
            .filter(|m| m.http == http && m.segments.len() == actual.len())
            .filter_map(|m| {
                let mut score = 0;
                for (t, a) in m.segments.iter().zip(&actual) {
                    score += segment_score(t, a)?;
                }
                Some((score, m))
            })
            .max_by_key(|(score, _)| *score);
        if let Some((_, m)) = best {
            return m.response.as_deref().map(|r| (&api.doc, r));
        }
    }
    None
}

/// The schema a property's value holds (through `$ref` and arrays).
fn element<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let mut s = schema;
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = doc.get("schemas")?.get(r)?;
        } else if s.get("type").and_then(Value::as_str) == Some("array") {
            s = s.get("items")?;
        } else {
            return Some(s);
        }
    }
    None
}

fn check(doc: &Value, schema: &Value, sel: &Selection, prefix: &str) -> Result<(), String> {
    let Some(schema) = element(doc, schema) else {
        return Ok(());
    };
    for (key, sub) in sel.entries() {
        if key == "*" {
            continue;
        }
        let child = schema
            .get("properties")
            .and_then(|p| p.get(key))
            .or_else(|| schema.get("additionalProperties"));
        let Some(child) = child else {
            return Err(format!("{prefix}{key}"));
        };
        if let Some(sub) = sub {
            check(doc, child, sub, &format!("{prefix}{key}/"))?;
        }
    }
    Ok(())
}

/// Checks a `fields` selection against the response schema of the method `http path`
/// (methods the documents do not describe are not checked); `Err` names the first path no
/// schema has.
pub fn check_fields(http: &str, path: &str, sel: &Selection) -> Result<(), String> {
    match response_of(http, path) {
        Some((doc, name)) => {
            let schema = doc.get("schemas").and_then(|s| s.get(name));
            match schema {
                Some(schema) => check(doc, schema, sel, ""),
                None => Ok(()),
            }
        }
        None => Ok(()),
    }
}

/// The paths a People field mask's description lists ("Valid values are: * addresses *
/// ageRanges …"), at `pointer` in the People document.
fn listed(pointer: &str) -> Vec<&'static str> {
    let Some(api) = apis().get(1) else {
        return Vec::new();
    };
    let text = api
        .doc
        .pointer(pointer)
        .and_then(|d| d.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("");
    text.split_once("Valid values are:")
        .map(|(_, list)| {
            list.split('*')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The valid `personFields` / `readMask` paths, as `people.get` documents them.
pub fn read_mask() -> &'static [&'static str] {
    static PATHS: OnceLock<Vec<&'static str>> = OnceLock::new();
    PATHS.get_or_init(|| listed("/resources/people/methods/get/parameters/personFields"))
}

/// The valid `updatePersonFields` / `updateMask` paths, as `people.updateContact` documents
/// them (no `fileAses`, though a body may carry it).
pub fn update_mask() -> &'static [&'static str] {
    static PATHS: OnceLock<Vec<&'static str>> = OnceLock::new();
    PATHS.get_or_init(|| {
        listed("/resources/people/methods/updateContact/parameters/updatePersonFields")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(raw: &str) -> Selection {
        Selection::parse(raw).unwrap_or_default()
    }

    #[test]
    fn selections_are_checked_against_each_methods_response() {
        let list = "/calendar/v3/calendars/primary/events";
        assert_eq!(
            check_fields(
                "GET",
                list,
                &sel("items(id,start/dateTime),nextPageToken,nextSyncToken")
            ),
            Ok(())
        );
        assert_eq!(
            check_fields("GET", list, &sel("items(id,colour)")),
            Err("items/colour".into())
        );
        assert_eq!(check_fields("GET", list, &sel("*")), Ok(()));
        // events.watch answers a Channel, events.get an Event.
        let watch = "/calendar/v3/calendars/primary/events/watch";
        assert_eq!(
            check_fields("POST", watch, &sel("id,resourceId,expiration")),
            Ok(())
        );
        assert!(check_fields("POST", watch, &sel("summary")).is_err());
        let get = "/calendar/v3/calendars/primary/events/abc123";
        assert_eq!(
            check_fields("GET", get, &sel("summary,extendedProperties/private")),
            Ok(())
        );
        // Maps (`additionalProperties`) take any key.
        assert_eq!(
            check_fields("GET", get, &sel("extendedProperties/private/crmId")),
            Ok(())
        );
        let people = "/v1/people/me/connections";
        assert_eq!(
            check_fields(
                "GET",
                people,
                &sel("connections(resourceName,names),nextPageToken")
            ),
            Ok(())
        );
        assert!(check_fields("GET", people, &sel("contacts")).is_err());
        let update = "/v1/people/c123:updateContact";
        assert_eq!(
            check_fields("PATCH", update, &sel("resourceName,etag")),
            Ok(())
        );
    }

    #[test]
    fn people_masks_are_those_the_document_lists_for_each_method() {
        let read = read_mask();
        assert!(read.contains(&"names") && read.contains(&"metadata") && read.len() > 20);
        for pointer in [
            "/resources/people/resources/connections/methods/list/parameters/personFields",
            "/resources/people/methods/getBatchGet/parameters/personFields",
            "/resources/people/methods/createContact/parameters/personFields",
            "/resources/people/methods/updateContact/parameters/personFields",
            "/schemas/BatchCreateContactsRequest/properties/readMask",
            "/schemas/BatchUpdateContactsRequest/properties/readMask",
        ] {
            assert_eq!(listed(pointer), read, "{pointer}");
        }
        let update = update_mask();
        assert!(update.contains(&"clientData") && !update.contains(&"metadata"));
        assert!(
            !update.contains(&"fileAses"),
            "not updatable though readable in a body"
        );
        assert_eq!(
            listed("/schemas/BatchUpdateContactsRequest/properties/updateMask"),
            update
        );
        for f in update {
            assert!(
                crate::people::model::WRITABLE.contains(f),
                "{f} cannot be written"
            );
        }
    }
}
