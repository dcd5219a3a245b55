//! People v1 on the shared base URL under `/v1/`: connections (with sync tokens), get,
//! batchGet, create/update/delete contacts and their batch forms, contact groups.

pub(crate) mod model;

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use crate::discovery::{read_mask, update_mask};
use crate::errors::{ApiError, Surface};
use crate::params::Params;
use crate::state::{
    AddressBook, PageCursor, PeopleToken, SortKey, State as SandboxState, StoredPerson, SyncCursor,
};
use crate::{scopes, Sandbox, SandboxConfig};
use model::{err, failed_precondition, invalid, not_found, parse_mask, render, Sources};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v1/people/me/connections", get(connections_list))
        .route("/v1/people:batchGet", get(batch_get))
        .route("/v1/people:createContact", post(create_contact))
        .route("/v1/people:batchCreateContacts", post(batch_create))
        .route("/v1/people:batchUpdateContacts", post(batch_update))
        .route("/v1/people:batchDeleteContacts", post(batch_delete))
        .route(
            "/v1/people/{id}",
            get(person_get).patch(person_patch).delete(person_delete),
        )
        .route("/v1/contactGroups", get(groups_list).post(group_create))
        .route("/v1/contactGroups/{id}", get(group_get))
        .route(
            "/v1/contactGroups/{id}/members:modify",
            post(members_modify),
        )
}

/// Creates a user's address book with Google's system groups.
pub fn create_address_book(st: &mut SandboxState, user: &str, now: Timestamp) {
    let mut book = AddressBook::default();
    for (id, _) in model::SYSTEM_GROUPS {
        book.groups
            .insert(id.to_string(), model::new_group(id, id, true, now));
    }
    st.address_books.insert(user.to_string(), book);
}

type Op = dyn FnOnce(&mut SandboxState, Timestamp, &str, &SandboxConfig) -> Result<Value, ApiError>;

/// Authorizes, runs `op` under the state lock, answers JSON.
fn run(sandbox: &Sandbox, headers: &HeaderMap, accepted: &[&str], op: Box<Op>) -> Response {
    let caller = match crate::auth::authorize(sandbox, headers, Surface::People, accepted) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let now = sandbox.now();
    let config = sandbox.config().clone();
    let mut st = sandbox.state();
    match op(&mut st, now, &caller.user, &config) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn book<'a>(st: &'a mut SandboxState, user: &str) -> Result<&'a mut AddressBook, ApiError> {
    st.address_books.get_mut(user).ok_or_else(not_found)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| invalid(&format!("Invalid JSON payload received. {e}")))
}

/// Records a write of a person.
pub(crate) fn touch(book: &mut AddressBook, rn: &str, now: Timestamp) {
    book.seq += 1;
    let seq = book.seq;
    if let Some(p) = book.persons.get_mut(rn) {
        p.mod_seq = seq;
        p.etag = model::new_etag();
        p.updated = now;
    }
}

fn live_person<'a>(book: &'a AddressBook, rn: &str) -> Result<&'a StoredPerson, ApiError> {
    book.persons
        .get(rn)
        .filter(|p| !p.deleted)
        .ok_or_else(not_found)
}

fn default_mask() -> Vec<String> {
    read_mask().iter().map(|s| s.to_string()).collect()
}

fn optional_mask(raw: Option<&str>, name: &str) -> Result<Vec<String>, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default_mask()),
        Some(r) => parse_mask(Some(r), name, read_mask()),
    }
}

fn create_in(book: &mut AddressBook, body: &Value, now: Timestamp) -> Result<String, ApiError> {
    let (fields, groups) = model::parse_person(body, book)?;
    let (rn, source_id) = model::new_ids();
    let mut groups = groups.unwrap_or_default();
    groups.insert("myContacts".to_string());
    book.next_order += 1;
    let order = book.next_order;
    book.persons.insert(
        rn.clone(),
        StoredPerson {
            resource_name: rn.clone(),
            source_id,
            fields,
            groups,
            etag: String::new(),
            updated: now,
            deleted: false,
            mod_seq: 0,
            order,
            profile: None,
            previous: Vec::new(),
        },
    );
    touch(book, &rn, now);
    Ok(rn)
}

/// Applies an update with `updatePersonFields` semantics (listed fields replaced or cleared).
fn update_in(
    book: &mut AddressBook,
    rn: &str,
    body: &Value,
    update_mask: &[String],
    now: Timestamp,
) -> Result<(), ApiError> {
    let current = live_person(book, rn)?.etag.clone();
    let etag = body
        .get("etag")
        .and_then(Value::as_str)
        .or_else(|| {
            body.pointer("/metadata/sources/0/etag")
                .and_then(Value::as_str)
        })
        .ok_or_else(|| {
            failed_precondition(
                "Request must set person.etag or person.metadata.sources.etag for the source that is being updated.",
            )
        })?;
    if etag != current {
        return Err(failed_precondition(
            "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
        ));
    }
    let held = live_person(book, rn)?.groups.clone();
    let (fields, groups) = model::parse_person_of(body, book, &held)?;
    let Some(person) = book.persons.get_mut(rn) else {
        return Err(not_found());
    };
    for field in update_mask {
        if field == "memberships" {
            let mut g = groups.clone().unwrap_or_default();
            if g.is_empty() {
                g.insert("myContacts".to_string());
            }
            person.groups = g;
            continue;
        }
        match fields.get(field) {
            Some(v) => {
                person.fields.insert(field.clone(), v.clone());
            }
            None => {
                person.fields.remove(field);
            }
        }
    }
    touch(book, rn, now);
    Ok(())
}

pub(crate) fn delete_in(book: &mut AddressBook, rn: &str, now: Timestamp) -> Result<(), ApiError> {
    live_person(book, rn)?;
    if let Some(p) = book.persons.get_mut(rn) {
        p.deleted = true;
        p.fields.clear();
    }
    touch(book, rn, now);
    Ok(())
}

fn page_size(p: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.non_empty("pageSize") {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(0) => Ok(default),
            Ok(n) if n >= 1 && n <= max as i64 => Ok(n as usize),
            _ => Err(invalid(&format!(
                "Invalid pageSize: {v}. Valid values are between 1 and {max}, inclusive."
            ))),
        },
    }
}

fn expired_sync_token() -> ApiError {
    ApiError::new(
        Surface::People,
        StatusCode::BAD_REQUEST,
        "failedPrecondition",
        "Sync token is expired. Clear local cache and retry call without the sync token.",
    )
    .with_grpc_status("FAILED_PRECONDITION")
    .with_info("EXPIRED_SYNC_TOKEN")
}

fn person_key(p: &StoredPerson, sort: &str, incremental: bool) -> SortKey {
    let order = i128::from(p.order);
    if incremental {
        return (i128::from(p.mod_seq), order, String::new());
    }
    let name = |key: &str| {
        p.fields
            .get("names")
            .and_then(|n| n.get(0))
            .and_then(|n| n.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()
    };
    match sort {
        "LAST_MODIFIED_DESCENDING" => (-i128::from(p.mod_seq), order, String::new()),
        "FIRST_NAME_ASCENDING" => (0, 0, format!("{}\u{0}{order:020}", name("givenName"))),
        "LAST_NAME_ASCENDING" => (0, 0, format!("{}\u{0}{order:020}", name("familyName"))),
        _ => (i128::from(p.mod_seq), order, String::new()),
    }
}

fn list_connections(
    st: &mut SandboxState,
    now: Timestamp,
    user: &str,
    config: &SandboxConfig,
    p: &Params,
) -> Result<Value, ApiError> {
    let read = ConnectionsRead::parse(p)?;
    let collection = format!("people:{user}");
    let page_collection = format!("people:{user}:connections");
    let SandboxState {
        address_books,
        sync_tokens,
        page_tokens,
        people_tokens,
        people_propagation_delay_secs: delay,
        ..
    } = st;
    let book = address_books.get_mut(user).ok_or_else(not_found)?;
    let (cursor, page_full_sync) =
        connections_cursor(page_tokens, people_tokens, p, &page_collection, &read.call)?;
    let (since, chain_full_sync) = connections_since(
        (sync_tokens, people_tokens),
        p,
        (&collection, book),
        now,
        SignedDuration::from_secs(config.people_sync_token_ttl_secs),
        &read.shape,
    )?;
    // The chain's full read: the page's if a page token was sent, else the sync token's.
    let full_sync_at = cursor
        .as_ref()
        .map_or(chain_full_sync, |_| page_full_sync)
        .unwrap_or(now);
    let since = cursor.as_ref().and_then(|c| c.since).or(since);
    let want_sync = p.flag("requestSyncToken") || since.is_some();
    let visible = visible_seq(book, now, *delay);
    let items = connection_items(book, &read, since, visible);
    let total = items.len();
    let snapshot = cursor
        .as_ref()
        .map(|c| c.snapshot_seq)
        .unwrap_or(visible)
        .min(visible);
    let (page, next) = crate::paging::paginate(items, cursor.as_ref().map(|c| &c.after), read.size);
    let mut out = connections_envelope(page, total);
    let (token, bound, name) = match next {
        Some(after) => {
            let token = crate::ids::token(18);
            let cursor = PageCursor {
                collection: page_collection,
                after,
                snapshot_seq: snapshot,
                since,
            };
            page_tokens.insert(token.clone(), cursor);
            (token, read.call, "nextPageToken")
        }
        None if want_sync => {
            let token = crate::ids::token(18);
            let cursor = SyncCursor {
                owner: user.to_string(),
                collection,
                seq: snapshot,
                epoch: book.sync_epoch,
                issued_at: now,
            };
            sync_tokens.insert(token.clone(), cursor);
            (token, read.shape, "nextSyncToken")
        }
        None => return Ok(Value::Object(out)),
    };
    let params = PeopleToken {
        params: bound,
        full_sync_at,
    };
    people_tokens.insert(token.clone(), params);
    out.insert(name.into(), json!(token));
    Ok(Value::Object(out))
}

/// The contacts a read returns (up to `visible`): those changed since `since`, deleted ones
/// included, or else every live one.
fn connection_items(
    book: &AddressBook,
    read: &ConnectionsRead,
    since: Option<u64>,
    visible: u64,
) -> Vec<(SortKey, Value)> {
    book.persons
        .values()
        .filter(|person| person.mod_seq <= visible)
        .filter(|person| match since {
            Some(s) => person.mod_seq > s,
            None => !person.deleted,
        })
        .map(|person| {
            (
                person_key(person, read.sort, since.is_some()),
                render(person, book, &read.mask, read.sources, since.is_some()),
            )
        })
        .collect()
}

fn connections_envelope(page: Vec<Value>, total: usize) -> Map<String, Value> {
    let mut out = Map::new();
    if !page.is_empty() {
        out.insert("connections".into(), Value::Array(page));
    }
    out.insert("totalPeople".into(), json!(total));
    out.insert("totalItems".into(), json!(total));
    out
}

/// What a people.connections.list call reads, checked, and the parameters its tokens are
/// bound to: a sync token to the read's shape, a page token to every other parameter of the
/// call (the sync token included).
struct ConnectionsRead<'p> {
    mask: Vec<String>,
    size: usize,
    sources: Sources,
    sort: &'p str,
    shape: String,
    call: String,
}

impl<'p> ConnectionsRead<'p> {
    fn parse(p: &'p Params) -> Result<Self, ApiError> {
        let mask = parse_mask(
            p.get("personFields")
                .or_else(|| p.get("requestMask.includeField")),
            "personFields",
            read_mask(),
        )?;
        let size = page_size(p, 100, 1000)?;
        let sources = Sources::of_query(p)?;
        let sort = p.get("sortOrder").unwrap_or("LAST_MODIFIED_ASCENDING");
        if !matches!(
            sort,
            "LAST_MODIFIED_ASCENDING"
                | "LAST_MODIFIED_DESCENDING"
                | "FIRST_NAME_ASCENDING"
                | "LAST_NAME_ASCENDING"
        ) {
            return Err(invalid(&format!(
                "Invalid value at 'sort_order': \"{sort}\""
            )));
        }
        let mut fields = mask.clone();
        fields.sort();
        fields.dedup();
        let shape = format!(
            "personFields={}&sources={}&sortOrder={sort}",
            fields.join(","),
            sources.key()
        );
        let call = format!(
            "{shape}&pageSize={size}&syncToken={}&requestSyncToken={}",
            p.non_empty("syncToken").unwrap_or(""),
            p.flag("requestSyncToken")
        );
        Ok(Self {
            mask,
            size,
            sources,
            sort,
            shape,
            call,
        })
    }
}

/// The cursor of the `pageToken` sent, refused unless minted by a call with the same
/// parameters; and the full read of its chain, if it is bound to one.
fn connections_cursor(
    page_tokens: &HashMap<String, PageCursor>,
    people_tokens: &HashMap<String, PeopleToken>,
    p: &Params,
    page_collection: &str,
    call: &str,
) -> Result<(Option<PageCursor>, Option<Timestamp>), ApiError> {
    let Some(t) = p.non_empty("pageToken") else {
        return Ok((None, None));
    };
    let c = page_tokens
        .get(t)
        .filter(|c| c.collection == page_collection)
        .cloned()
        .ok_or_else(|| invalid("Page token is invalid."))?;
    let Some(bound) = people_tokens.get(t) else {
        return Ok((Some(c), None));
    };
    if bound.params != call {
        return Err(invalid(
            "Request parameters do not match the first call that provided the page token.",
        ));
    }
    Ok((Some(c), Some(bound.full_sync_at)))
}

/// The sequence the `syncToken` sent reads on from, and the full read of its chain; 400
/// `EXPIRED_SYNC_TOKEN` once it is unknown, of another epoch, or 7 days past that full read.
fn connections_since(
    (sync_tokens, people_tokens): (&HashMap<String, SyncCursor>, &HashMap<String, PeopleToken>),
    p: &Params,
    (collection, book): (&str, &AddressBook),
    now: Timestamp,
    ttl: SignedDuration,
    shape: &str,
) -> Result<(Option<u64>, Option<Timestamp>), ApiError> {
    let Some(t) = p.non_empty("syncToken") else {
        return Ok((None, None));
    };
    match (sync_tokens.get(t), people_tokens.get(t)) {
        (Some(c), bound)
            if c.collection == collection
                && c.epoch == book.sync_epoch
                // "Sync tokens expire 7 days after the full sync": the chain's full read,
                // however often it was followed incrementally since.
                && now.duration_since(bound.map_or(c.issued_at, |b| b.full_sync_at)) < ttl =>
        {
            if bound.is_some_and(|b| b.params != shape) {
                return Err(invalid(
                    "Request parameters do not match the first call that provided the sync token.",
                ));
            }
            Ok((Some(c.seq), bound.map(|b| b.full_sync_at)))
        }
        _ => Err(expired_sync_token()),
    }
}

/// The write-propagation delay: writes younger than it are not shown yet, and the sync token
/// stops before the first of them, so a later read reports them (none is lost).
fn visible_seq(book: &AddressBook, now: Timestamp, delay_secs: i64) -> u64 {
    match SignedDuration::from_secs(delay_secs) {
        d if d.is_zero() => book.seq,
        d => book
            .persons
            .values()
            .filter(|person| now.duration_since(person.updated) < d)
            .map(|person| person.mod_seq.saturating_sub(1))
            .min()
            .unwrap_or(book.seq),
    }
}

async fn connections_list(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_READ,
        Box::new(move |st, now, user, config| list_connections(st, now, user, config, &p)),
    )
}

/// The authenticated user's own profile (`people/me`).
fn render_me(st: &SandboxState, user: &str, mask: &[String]) -> Result<Value, ApiError> {
    let u = st.users.get(user).ok_or_else(not_found)?;
    let source = json!({"type": "PROFILE", "id": u.sub});
    let mut out =
        json!({"resourceName": format!("people/{}", u.sub), "etag": format!("%{}", u.sub)});
    for f in mask {
        match f.as_str() {
            "names" => {
                let (g, fam) = u.name.split_once(' ').unwrap_or((u.name.as_str(), ""));
                out["names"] = json!([{"metadata": {"primary": true, "source": source}, "displayName": u.name, "givenName": g, "familyName": fam}]);
            }
            "emailAddresses" => {
                out["emailAddresses"] = json!([{"metadata": {"primary": true, "verified": true, "source": source}, "value": u.email}]);
            }
            "metadata" => {
                out["metadata"] =
                    json!({"sources": [{"type": "PROFILE", "id": u.sub}], "objectType": "PERSON"});
            }
            _ => {}
        }
    }
    Ok(out)
}

fn get_one(
    st: &mut SandboxState,
    user: &str,
    rn: &str,
    mask: &[String],
    sources: Sources,
) -> Result<Value, ApiError> {
    if rn == "people/me" {
        return render_me(st, user, mask);
    }
    let book = book(st, user)?;
    // A former name answers the person as it is now (its `resourceName` differs from the
    // one asked: `requestedResourceName` tells them apart).
    let rn = book
        .persons
        .values()
        .find(|p| !p.deleted && p.previous.iter().any(|n| n == rn))
        .map(|p| p.resource_name.clone())
        .unwrap_or_else(|| rn.to_string());
    let person = live_person(book, &rn)?;
    Ok(render(person, book, mask, sources, false))
}

/// `GET|PATCH|DELETE /v1/people/{id}[:action]`.
async fn person_get(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    if id.contains(':') {
        return err(StatusCode::NOT_FOUND, "Method not found.").into_response();
    }
    let rn = format!("people/{id}");
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_READ,
        Box::new(move |st, _, user, _| {
            let mask = parse_mask(
                p.get("personFields")
                    .or_else(|| p.get("requestMask.includeField")),
                "personFields",
                read_mask(),
            )?;
            get_one(st, user, &rn, &mask, Sources::of_query(&p)?)
        }),
    )
}

async fn person_patch(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
) -> Response {
    let Some(id) = id.strip_suffix(":updateContact") else {
        return err(StatusCode::NOT_FOUND, "Method not found.").into_response();
    };
    let rn = format!("people/{id}");
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let update_mask = parse_mask(
                p.get("updatePersonFields"),
                "updatePersonFields",
                update_mask(),
            )?;
            let read_mask = optional_mask(p.get("personFields"), "personFields")?;
            let sources = Sources::of_query(&p)?;
            let body = parse_json(&body)?;
            let book = book(st, user)?;
            update_in(book, &rn, &body, &update_mask, now)?;
            let person = live_person(book, &rn)?;
            Ok(render(person, book, &read_mask, sources, false))
        }),
    )
}

async fn person_delete(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = id.strip_suffix(":deleteContact") else {
        return err(StatusCode::NOT_FOUND, "Method not found.").into_response();
    };
    let rn = format!("people/{id}");
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            delete_in(book(st, user)?, &rn, now)?;
            Ok(json!({}))
        }),
    )
}

async fn create_contact(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    p: Params,
    body: Bytes,
) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let mask = optional_mask(p.get("personFields"), "personFields")?;
            let sources = Sources::of_query(&p)?;
            let body = parse_json(&body)?;
            let book = book(st, user)?;
            let rn = create_in(book, &body, now)?;
            let person = live_person(book, &rn)?;
            Ok(render(person, book, &mask, sources, false))
        }),
    )
}

fn status_ok() -> Value {
    json!({})
}

async fn batch_get(State(sandbox): State<Sandbox>, headers: HeaderMap, p: Params) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_READ,
        Box::new(move |st, _, user, _| {
            let mask = parse_mask(
                p.get("personFields")
                    .or_else(|| p.get("requestMask.includeField")),
                "personFields",
                read_mask(),
            )?;
            let sources = Sources::of_query(&p)?;
            let names = p.get_all("resourceNames");
            if names.is_empty() {
                return Err(invalid("resourceNames must not be empty."));
            }
            if names.len() > 200 {
                return Err(invalid(
                    "resourceNames must not contain more than 200 entries.",
                ));
            }
            let responses: Vec<Value> = names
                .iter()
                .map(|rn| match get_one(st, user, rn, &mask, sources) {
                    Ok(person) => json!({"requestedResourceName": rn, "httpStatusCode": 200, "person": person, "status": status_ok()}),
                    Err(_) => json!({"requestedResourceName": rn, "httpStatusCode": 404, "status": {"code": 5, "message": "Requested entity was not found."}}),
                })
                .collect();
            Ok(json!({ "responses": responses }))
        }),
    )
}

async fn batch_create(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let body = parse_json(&body)?;
            let mask = parse_mask(
                body.get("readMask").and_then(Value::as_str),
                "readMask",
                read_mask(),
            )?;
            let sources = Sources::of_body(&body)?;
            let contacts = body
                .get("contacts")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| invalid("contacts must not be empty."))?;
            if contacts.len() > 200 {
                return Err(invalid(
                    "Too many contacts in the request. The limit is 200.",
                ));
            }
            let book = book(st, user)?;
            for c in contacts {
                let person = c
                    .get("contactPerson")
                    .ok_or_else(|| invalid("contactPerson is required."))?;
                model::parse_person(person, book)?;
            }
            let mut created = Vec::new();
            for c in contacts {
                let person = c.get("contactPerson").cloned().unwrap_or(Value::Null);
                let rn = create_in(book, &person, now)?;
                let p = live_person(book, &rn)?;
                created.push(json!({"httpStatusCode": 200, "person": render(p, book, &mask, sources, false), "status": status_ok()}));
            }
            Ok(json!({ "createdPeople": created }))
        }),
    )
}

async fn batch_update(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let body = parse_json(&body)?;
            let update_mask = parse_mask(
                body.get("updateMask").and_then(Value::as_str),
                "updateMask",
                update_mask(),
            )?;
            let read_mask = parse_mask(
                body.get("readMask").and_then(Value::as_str),
                "readMask",
                read_mask(),
            )?;
            let sources = Sources::of_body(&body)?;
            let contacts = body
                .get("contacts")
                .and_then(Value::as_object)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| invalid("contacts must not be empty."))?;
            if contacts.len() > 200 {
                return Err(invalid(
                    "Too many contacts in the request. The limit is 200.",
                ));
            }
            let book = book(st, user)?;
            // all-or-nothing: check every contact before changing any
            for (rn, person) in contacts {
                let current = live_person(book, rn)?;
                if person.get("etag").and_then(Value::as_str) != Some(current.etag.as_str()) {
                    return Err(failed_precondition(
                        "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
                    ));
                }
                model::parse_person_of(person, book, &current.groups)?;
            }
            let mut result = Map::new();
            for (rn, person) in contacts {
                update_in(book, rn, person, &update_mask, now)?;
                let p = live_person(book, rn)?;
                result.insert(
                    rn.clone(),
                    json!({"requestedResourceName": rn, "httpStatusCode": 200, "person": render(p, book, &read_mask, sources, false), "status": status_ok()}),
                );
            }
            Ok(json!({ "updateResult": result }))
        }),
    )
}

async fn batch_delete(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let body = parse_json(&body)?;
            let names: Vec<String> = body
                .get("resourceNames")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if names.is_empty() {
                return Err(invalid("resourceNames must not be empty."));
            }
            if names.len() > 500 {
                return Err(invalid(
                    "Too many resource names in the request. The limit is 500.",
                ));
            }
            let book = book(st, user)?;
            for rn in &names {
                live_person(book, rn)?;
            }
            for rn in &names {
                delete_in(book, rn, now)?;
            }
            Ok(json!({}))
        }),
    )
}

/// An optional contact-group field mask: every path must be one the method documents.
fn group_fields(raw: Option<&str>, name: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match raw.filter(|r| !r.trim().is_empty()) {
        None => Ok(()),
        Some(r) => parse_mask(Some(r), name, allowed).map(|_| ()),
    }
}

fn group_mask_max(p: &Params) -> Result<usize, ApiError> {
    match p.non_empty("maxMembers") {
        None => Ok(0),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| invalid("Invalid maxMembers.")),
    }
}

async fn groups_list(State(sandbox): State<Sandbox>, headers: HeaderMap, p: Params) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_READ,
        Box::new(move |st, _, user, _| {
            group_fields(p.get("groupFields"), "groupFields", model::GROUP_FIELDS)?;
            let size = page_size(&p, 30, 1000)?;
            let page_collection = format!("groups:{user}");
            let cursor = match p.non_empty("pageToken") {
                Some(t) => Some(
                    st.page_tokens
                        .get(t)
                        .filter(|c| c.collection == page_collection)
                        .cloned()
                        .ok_or_else(|| invalid("Page token is invalid."))?,
                ),
                None => None,
            };
            let book = book(st, user)?;
            let items: Vec<(SortKey, Value)> = book
                .groups
                .values()
                .map(|g| {
                    (
                        (i128::from(!g.system), 0, g.id.clone()),
                        model::render_group(g, book, 0),
                    )
                })
                .collect();
            let total = items.len();
            let (page, next) =
                crate::paging::paginate(items, cursor.as_ref().map(|c| &c.after), size);
            let mut out = json!({"contactGroups": page, "totalItems": total});
            match next {
                Some(after) => {
                    let token = st.issue_page_token(PageCursor {
                        collection: page_collection,
                        after,
                        snapshot_seq: 0,
                        since: None,
                    });
                    out["nextPageToken"] = json!(token);
                }
                None => out["nextSyncToken"] = json!(crate::ids::token(12)),
            }
            Ok(out)
        }),
    )
}

async fn group_get(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_READ,
        Box::new(move |st, _, user, _| {
            let max = group_mask_max(&p)?;
            group_fields(p.get("groupFields"), "groupFields", model::GROUP_FIELDS)?;
            let book = book(st, user)?;
            let g = book.groups.get(&id).ok_or_else(not_found)?;
            Ok(model::render_group(g, book, max))
        }),
    )
}

async fn group_create(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let body = parse_json(&body)?;
            group_fields(
                body.get("readGroupFields").and_then(Value::as_str),
                "readGroupFields",
                model::CREATE_GROUP_FIELDS,
            )?;
            let group = body
                .get("contactGroup")
                .ok_or_else(|| invalid("contactGroup is required."))?;
            let name = group
                .get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid("contactGroup.name is required."))?
                .to_string();
            let book = book(st, user)?;
            // Names are unique per user; whether Google compares them case-insensitively is
            // undocumented: the sandbox refuses the stricter way ("CRM" when "crm" exists).
            let key = name.to_lowercase();
            if book
                .groups
                .values()
                .any(|g| !g.system && g.name.trim().to_lowercase() == key)
            {
                return Err(err(
                    StatusCode::CONFLICT,
                    "Cannot create contact group, a contact group with this name already exists.",
                ));
            }
            let id = crate::ids::hex(15);
            let mut g = model::new_group(&id, &name, false, now);
            g.client_data = group.get("clientData").cloned();
            book.groups.insert(id.clone(), g);
            let g = book.groups.get(&id).ok_or_else(not_found)?;
            Ok(model::render_group(g, book, 0))
        }),
    )
}

async fn members_modify(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(
        &sandbox,
        &headers,
        scopes::CONTACTS_WRITE,
        Box::new(move |st, now, user, _| {
            let body = parse_json(&body)?;
            let list = |key: &str| -> Vec<String> {
                body.get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let add = list("resourceNamesToAdd");
            let remove = list("resourceNamesToRemove");
            if add.len() > 1000 || remove.len() > 1000 {
                return Err(invalid("Too many resource names. The limit is 1000."));
            }
            let book = book(st, user)?;
            let group = book.groups.get(&id).ok_or_else(not_found)?;
            if group.system
                && !model::MEMBER_SYSTEM_GROUPS.contains(&id.as_str())
                && !add.is_empty()
            {
                return Err(invalid(
                    "Cannot modify the members of this system contact group.",
                ));
            }
            Ok(modify_members(book, now, &id, &add, &remove))
        }),
    )
}

/// Adds and removes the members of group `id` (a contact's last group is not removed); the
/// answer names what was not found and what could not be removed.
fn modify_members(
    book: &mut AddressBook,
    now: Timestamp,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Value {
    let mut not_found_names = Vec::new();
    let mut cannot_remove = Vec::new();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for rn in add {
        match book.persons.get_mut(rn).filter(|p| !p.deleted) {
            Some(p) => {
                if p.groups.insert(id.to_string()) {
                    changed.insert(rn.clone());
                }
            }
            None => not_found_names.push(rn.clone()),
        }
    }
    for rn in remove {
        match book.persons.get_mut(rn).filter(|p| !p.deleted) {
            Some(p) => {
                if p.groups.contains(id) && p.groups.len() == 1 {
                    cannot_remove.push(rn.clone());
                } else if p.groups.remove(id) {
                    changed.insert(rn.clone());
                }
            }
            None => not_found_names.push(rn.clone()),
        }
    }
    for rn in &changed {
        touch(book, rn, now);
    }
    if !changed.is_empty() {
        if let Some(g) = book.groups.get_mut(id) {
            g.etag = model::new_etag();
            g.updated = now;
        }
    }
    let mut out = json!({});
    if !not_found_names.is_empty() {
        out["notFoundResourceNames"] = json!(not_found_names);
    }
    if !cannot_remove.is_empty() {
        out["canNotRemoveLastContactGroupResourceNames"] = json!(cannot_remove);
    }
    out
}
