//! People data: contacts, field masks, rendering as `Person` / `ContactGroup`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use jiff::Timestamp;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::clock::rfc3339_millis;
use crate::errors::{ApiError, Surface};
use crate::params::Params;
use crate::state::{AddressBook, ContactGroup, StoredPerson};

/// The `sources` of a read (`READ_SOURCE_TYPE_*`): whether a linked profile's data is merged
/// in. Google's default (none given) is CONTACT and PROFILE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub profile: bool,
}

const READ_SOURCE_TYPES: &[&str] = &[
    "READ_SOURCE_TYPE_UNSPECIFIED",
    "READ_SOURCE_TYPE_PROFILE",
    "READ_SOURCE_TYPE_CONTACT",
    "READ_SOURCE_TYPE_DOMAIN_CONTACT",
    "READ_SOURCE_TYPE_OTHER_CONTACT",
];

impl Sources {
    fn of(values: &[&str]) -> Result<Self, ApiError> {
        if let Some(bad) = values.iter().find(|v| !READ_SOURCE_TYPES.contains(v)) {
            return Err(invalid(&format!(
                "Invalid value at 'sources' (type.googleapis.com/google.people.v1.ReadSourceType), \"{bad}\""
            )));
        }
        let given: Vec<&str> = values
            .iter()
            .copied()
            .filter(|v| *v != "READ_SOURCE_TYPE_UNSPECIFIED")
            .collect();
        Ok(Sources {
            profile: given.is_empty() || given.contains(&"READ_SOURCE_TYPE_PROFILE"),
        })
    }

    /// From the repeated `sources` query parameter.
    pub fn of_query(p: &Params) -> Result<Self, ApiError> {
        Self::of(&p.get_all("sources"))
    }

    /// From a batch body's `sources` array.
    pub fn of_body(body: &Value) -> Result<Self, ApiError> {
        let list: Vec<&str> = match body.get("sources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap_or("?")).collect(),
            Some(_) => return Err(invalid("Invalid value at 'sources', expected a list.")),
        };
        Self::of(&list)
    }

    /// The key of the parameters a page or sync token is bound to.
    pub fn key(self) -> &'static str {
        if self.profile {
            "contact+profile"
        } else {
            "contact"
        }
    }
}

/// Person fields a client may write.
pub const WRITABLE: &[&str] = &[
    "addresses",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "emailAddresses",
    "events",
    "externalIds",
    "fileAses",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
    "userDefined",
];

const READ_ONLY: &[&str] = &[
    "resourceName",
    "etag",
    "metadata",
    "photos",
    "coverPhotos",
    "ageRanges",
];

/// Valid `groupFields` of `contactGroups.list` / `get` (and `readGroupFields` of update).
pub const GROUP_FIELDS: &[&str] = &["clientData", "groupType", "memberCount", "metadata", "name"];

/// Valid `readGroupFields` of `contactGroups.create` (discovery:
/// CreateContactGroupRequest.readGroupFields): no `memberCount`.
pub const CREATE_GROUP_FIELDS: &[&str] = &["clientData", "groupType", "metadata", "name"];

pub const SYSTEM_GROUPS: &[(&str, &str)] = &[
    ("myContacts", "My Contacts"),
    ("starred", "Starred"),
    ("friends", "Friends"),
    ("family", "Family"),
    ("coworkers", "Coworkers"),
    ("all", "All Contacts"),
    ("blocked", "Blocked"),
    ("chatBuddies", "Chat contacts"),
];

/// System groups contacts may be added to; the others are deprecated and "can only have
/// contacts removed".
pub const MEMBER_SYSTEM_GROUPS: &[&str] = &["myContacts", "starred"];

pub fn err(status: StatusCode, message: &str) -> ApiError {
    let reason = match status.as_u16() {
        400 => "badRequest",
        404 => "notFound",
        409 => "duplicate",
        _ => "backendError",
    };
    ApiError::new(Surface::People, status, reason, message)
}

pub fn invalid(message: &str) -> ApiError {
    err(StatusCode::BAD_REQUEST, message)
}

pub fn not_found() -> ApiError {
    ApiError::not_found(Surface::People)
}

pub fn failed_precondition(message: &str) -> ApiError {
    ApiError::failed_precondition(message)
}

/// Parses a field mask (`names,emailAddresses`); `allowed` lists the valid paths.
pub fn parse_mask(
    raw: Option<&str>,
    name: &str,
    allowed: &[&str],
) -> Result<Vec<String>, ApiError> {
    let raw = raw.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        invalid(&format!(
            "{name} mask is required. Please specify one or more valid paths. Valid paths are documented at https://developers.google.com/people/api/rest/v1/people/get."
        ))
    })?;
    let mut out = Vec::new();
    for path in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let path = path.strip_prefix("person.").unwrap_or(path);
        if !allowed.contains(&path) {
            return Err(invalid(&format!("Invalid {name} mask path: \"{path}\".")));
        }
        out.push(path.to_string());
    }
    Ok(out)
}

/// A new contact's resource name and source id.
pub fn new_ids() -> (String, String) {
    let n: u64 = rand::thread_rng().gen_range(1_000_000_000_000_000_000..9_000_000_000_000_000_000);
    (format!("people/c{n}"), format!("{n:x}"))
}

pub fn new_etag() -> String {
    format!("%{}", crate::ids::token(24))
}

/// A validated person body: writable fields, and the group ids of `memberships` if given.
pub type ParsedPerson = (Map<String, Value>, Option<BTreeSet<String>>);

/// Validates a `Person` request body; returns the writable fields and group ids named in
/// `memberships`.
pub fn parse_person(body: &Value, book: &AddressBook) -> Result<ParsedPerson, ApiError> {
    parse_person_of(body, book, &BTreeSet::new())
}

/// [`parse_person`] for a contact that is already in the groups `already`.
pub fn parse_person_of(
    body: &Value,
    book: &AddressBook,
    already: &BTreeSet<String>,
) -> Result<ParsedPerson, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid("Invalid JSON payload received. Expected an object."))?;
    let mut fields = Map::new();
    let mut groups = None;
    for (k, v) in obj {
        if READ_ONLY.contains(&k.as_str()) {
            continue;
        }
        if !WRITABLE.contains(&k.as_str()) {
            return Err(invalid(&format!(
                "Invalid JSON payload received. Unknown name \"{k}\" at 'person': Cannot find field."
            )));
        }
        let clean = field_items(k, v)?;
        if k == "memberships" {
            groups = Some(membership_groups(&clean, book, already)?);
            continue;
        }
        if k == "clientData"
            && !clean
                .iter()
                .all(|m| m.get("key").is_some_and(Value::is_string))
        {
            return Err(invalid("clientData.key is required."));
        }
        fields.insert(k.clone(), Value::Array(clean));
    }
    Ok((fields, groups))
}

/// A field's items: a list of objects, their `metadata` (Google's to set) dropped.
fn field_items(k: &str, v: &Value) -> Result<Vec<Value>, ApiError> {
    let items = v.as_array().ok_or_else(|| {
        invalid(&format!(
            "Invalid value at 'person.{k}', expected a list of objects."
        ))
    })?;
    items
        .iter()
        .map(|item| {
            let mut m = item
                .as_object()
                .cloned()
                .ok_or_else(|| invalid(&format!("Invalid value at 'person.{k}'.")))?;
            m.remove("metadata");
            Ok(Value::Object(m))
        })
        .collect()
}

/// The group ids `memberships` name: groups of the book, and no system group a contact may
/// not be added to (unless it is already in it).
fn membership_groups(
    memberships: &[Value],
    book: &AddressBook,
    already: &BTreeSet<String>,
) -> Result<BTreeSet<String>, ApiError> {
    let mut set = BTreeSet::new();
    for m in memberships {
        let g = m.get("contactGroupMembership");
        let id = g
            .and_then(|g| g.get("contactGroupResourceName"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("contactGroups/"))
            .or_else(|| {
                g.and_then(|g| g.get("contactGroupId"))
                    .and_then(Value::as_str)
            })
            .ok_or_else(|| invalid("Invalid membership: contactGroupMembership required."))?;
        match book.groups.get(id) {
            None => {
                return Err(invalid(&format!(
                    "Contact group not found: contactGroups/{id}"
                )))
            }
            // "Only user group or 'myContacts' or 'starred' system groups memberships can be
            // added" (a membership already held may stay).
            Some(g) if g.system && !MEMBER_SYSTEM_GROUPS.contains(&id) && !already.contains(id) => {
                return Err(invalid(&format!(
                    "Cannot add contacts to deprecated system contact group: contactGroups/{id}"
                )))
            }
            Some(_) => {}
        }
        set.insert(id.to_string());
    }
    Ok(set)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn field_metadata(i: usize, source_id: &str) -> Value {
    json!({"primary": i == 0, "source": {"type": "CONTACT", "id": source_id}})
}

/// `incremental`: a list with a sync token, the only read that gives
/// `previousResourceNames`.
pub fn person_metadata(p: &StoredPerson, sources: Sources, incremental: bool) -> Value {
    let mut list = vec![json!({
        "type": "CONTACT",
        "id": p.source_id,
        "etag": p.etag,
        "updateTime": rfc3339_millis(p.updated),
    })];
    if let Some(profile) = p.profile.as_ref().filter(|_| sources.profile && !p.deleted) {
        list.push(json!({
            "type": profile.kind,
            "id": profile.id,
            "updateTime": rfc3339_millis(profile.updated),
        }));
    }
    let mut m = json!({"sources": list, "objectType": "PERSON"});
    if p.deleted {
        m["deleted"] = json!(true);
    }
    if incremental && !p.previous.is_empty() {
        m["previousResourceNames"] = json!(p.previous);
    }
    m
}

/// Renders a contact with the `personFields` mask; a linked profile's items are merged in
/// after the contact's own when `sources` ask for PROFILE, as Google merges them.
pub fn render(
    p: &StoredPerson,
    book: &AddressBook,
    mask: &[String],
    sources: Sources,
    incremental: bool,
) -> Value {
    let mut out = Map::new();
    out.insert("resourceName".into(), json!(p.resource_name));
    out.insert("etag".into(), json!(p.etag));
    if p.deleted {
        out.insert("metadata".into(), person_metadata(p, sources, incremental));
        return Value::Object(out);
    }
    let profile = p.profile.as_ref().filter(|_| sources.profile);
    for field in mask {
        match field.as_str() {
            "metadata" => {
                out.insert("metadata".into(), person_metadata(p, sources, incremental));
            }
            "memberships" => {
                let list: Vec<Value> = p
                    .groups
                    .iter()
                    .filter(|g| book.groups.contains_key(*g))
                    .enumerate()
                    .map(|(i, g)| {
                        json!({
                            "metadata": {"source": {"type": "CONTACT", "id": p.source_id}, "primary": i == 0},
                            "contactGroupMembership": {
                                "contactGroupId": g,
                                "contactGroupResourceName": format!("contactGroups/{g}"),
                            }
                        })
                    })
                    .collect();
                if !list.is_empty() {
                    out.insert("memberships".into(), Value::Array(list));
                }
            }
            name => {
                let own = p.fields.get(name).and_then(Value::as_array);
                let mut rendered: Vec<Value> = own
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, item)| {
                        let mut m = item.as_object().cloned().unwrap_or_default();
                        m.insert("metadata".into(), field_metadata(i, &p.source_id));
                        decorate(name, &mut m);
                        Value::Object(m)
                    })
                    .collect();
                if let Some(profile) = profile {
                    let theirs = profile.fields.get(name).and_then(Value::as_array);
                    let first = rendered.is_empty();
                    for (i, item) in theirs.into_iter().flatten().enumerate() {
                        let mut m = item.as_object().cloned().unwrap_or_default();
                        m.insert(
                            "metadata".into(),
                            json!({"primary": first && i == 0,
                                   "source": {"type": profile.kind, "id": profile.id}}),
                        );
                        decorate(name, &mut m);
                        rendered.push(Value::Object(m));
                    }
                }
                if !rendered.is_empty() {
                    out.insert(name.to_string(), Value::Array(rendered));
                }
            }
        }
    }
    Value::Object(out)
}

/// Adds the derived values Google computes (display names, formatted types).
fn decorate(field: &str, m: &mut Map<String, Value>) {
    let s = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    match field {
        "names" => {
            let given = s(m, "givenName");
            let family = s(m, "familyName");
            let display = [given.clone(), family.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if !display.is_empty() {
                m.entry("displayName").or_insert(json!(display));
                m.entry("unstructuredName").or_insert(json!(display));
                let last_first = match (family, given) {
                    (Some(f), Some(g)) => format!("{f}, {g}"),
                    (Some(f), None) => f,
                    (None, Some(g)) => g,
                    (None, None) => String::new(),
                };
                m.entry("displayNameLastFirst").or_insert(json!(last_first));
            }
        }
        "emailAddresses" | "phoneNumbers" | "addresses" | "urls" | "relations" | "events" => {
            if let Some(t) = s(m, "type") {
                m.entry("formattedType").or_insert(json!(capitalize(&t)));
            }
        }
        _ => {}
    }
}

pub fn render_group(g: &ContactGroup, book: &AddressBook, max_members: usize) -> Value {
    let members: Vec<&StoredPerson> = book
        .persons
        .values()
        .filter(|p| !p.deleted && p.groups.contains(&g.id))
        .collect();
    let mut v = json!({
        "resourceName": format!("contactGroups/{}", g.id),
        "etag": g.etag,
        "metadata": {"updateTime": rfc3339_millis(g.updated)},
        "groupType": if g.system { "SYSTEM_CONTACT_GROUP" } else { "USER_CONTACT_GROUP" },
        "name": g.name,
        "formattedName": if g.system {
            SYSTEM_GROUPS.iter().find(|(id, _)| *id == g.id).map(|(_, f)| *f).unwrap_or(&g.name).to_string()
        } else {
            g.name.clone()
        },
        "memberCount": members.len(),
    });
    if let Some(cd) = &g.client_data {
        v["clientData"] = cd.clone();
    }
    if max_members > 0 && !members.is_empty() {
        let names: Vec<&str> = members
            .iter()
            .take(max_members)
            .map(|p| p.resource_name.as_str())
            .collect();
        v["memberResourceNames"] = json!(names);
    }
    v
}

pub fn new_group(id: &str, name: &str, system: bool, now: Timestamp) -> ContactGroup {
    ContactGroup {
        id: id.to_string(),
        name: name.to_string(),
        system,
        etag: new_etag(),
        updated: now,
        client_data: None,
    }
}
