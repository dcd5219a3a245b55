//! Browsable sandbox for humans: `/_sandbox/ui` lists users, their calendars, events and
//! contacts; edits or deletes events through the same code path as the API (so push
//! notifications fire), and edits contacts and their group memberships as Google Contacts'
//! own UI would (a new etag, and the change shows in the next incremental read).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::calendar::events;
use crate::errors::ApiError;
use crate::params::{encode, html_escape as esc, Params};
use crate::people;
use crate::state::{AddressBook, StoredPerson};
use crate::{push, Sandbox};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/_sandbox/ui", get(index))
        .route("/_sandbox/ui/users/{email}", get(user_page))
        .route(
            "/_sandbox/ui/calendars/{calendar_id}/events/{event_id}",
            get(event_page).post(event_save),
        )
        .route(
            "/_sandbox/ui/calendars/{calendar_id}/events/{event_id}/delete",
            post(event_delete),
        )
        .route(
            "/_sandbox/ui/users/{email}/contacts/{id}",
            get(contact_page).post(contact_save),
        )
        .route(
            "/_sandbox/ui/users/{email}/contacts/{id}/delete",
            post(contact_delete),
        )
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} - Google sandbox</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>\
         </head><body><p><a href=\"/_sandbox/ui\">Google sandbox</a></p><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page("Not found", &format!("<p>No such {}.</p>", esc(what))),
    )
        .into_response()
}

/// An action the sandbox refused, with Google's status and message.
fn failed(title: &str, e: &ApiError) -> Response {
    (
        e.status,
        page(title, &format!("<p>{}</p>", esc(&e.message))),
    )
        .into_response()
}

fn back_to_user(email: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!("/_sandbox/ui/users/{}", encode(email)),
        )],
    )
        .into_response()
}

async fn index(State(sandbox): State<Sandbox>) -> Html<String> {
    let st = sandbox.state();
    let mut body = String::from("<h2>Users</h2><ul>");
    for u in st.users.values() {
        body.push_str(&format!(
            "<li><a href=\"/_sandbox/ui/users/{}\">{}</a> &lt;{}&gt;</li>",
            encode(&u.email),
            esc(&u.name),
            esc(&u.email)
        ));
    }
    body.push_str("</ul><h2>OAuth clients</h2><ul>");
    for c in st.clients.values() {
        body.push_str(&format!(
            "<li>{} → {}</li>",
            esc(&c.client_id),
            esc(&c.redirect_uris.join(", "))
        ));
    }
    body.push_str("</ul>");
    page("Google sandbox", &body)
}

fn when(v: Option<&Value>) -> String {
    v.and_then(|w| w.get("dateTime").or_else(|| w.get("date")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

async fn user_page(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Response {
    let st = sandbox.state();
    let Some(user) = st.users.get(&email) else {
        return not_found("user");
    };
    let mut body = format!("<p>{} &lt;{}&gt;</p>", esc(&user.name), esc(&user.email));
    for cal in st.calendars.values().filter(|c| c.owner == email) {
        body.push_str(&format!(
            "<h2>Calendar {} ({})</h2><table><tr><th>summary</th><th>start</th><th>end</th><th>status</th><th>id</th></tr>",
            esc(&cal.summary),
            esc(&cal.time_zone)
        ));
        for ev in cal.events.values() {
            let b = &ev.body;
            let id = b.get("id").and_then(Value::as_str).unwrap_or("");
            body.push_str(&format!(
                "<tr><td><a href=\"/_sandbox/ui/calendars/{}/events/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                encode(&cal.id),
                encode(id),
                esc(b.get("summary").and_then(Value::as_str).unwrap_or("(no title)")),
                esc(&when(b.get("start"))),
                esc(&when(b.get("end"))),
                esc(ev.status()),
                esc(id)
            ));
        }
        body.push_str("</table>");
    }
    body.push_str(
        "<h2>Contacts</h2><table><tr><th>name</th><th>email</th><th>groups</th><th>resource</th></tr>",
    );
    if let Some(book) = st.address_books.get(&email) {
        for p in book.persons.values().filter(|p| !p.deleted) {
            let name = format!(
                "{} {}",
                first(p, "names", "givenName"),
                first(p, "names", "familyName")
            );
            let name = if name.trim().is_empty() {
                "(no name)".to_string()
            } else {
                name.trim().to_string()
            };
            let groups: Vec<&str> = p
                .groups
                .iter()
                .filter_map(|g| book.groups.get(g).map(|g| g.name.as_str()))
                .collect();
            body.push_str(&format!(
                "<tr><td><a href=\"/_sandbox/ui/users/{}/contacts/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                encode(&email),
                encode(contact_id(&p.resource_name)),
                esc(&name),
                esc(&first(p, "emailAddresses", "value")),
                esc(&groups.join(", ")),
                esc(&p.resource_name)
            ));
        }
    }
    body.push_str("</table>");
    page(&format!("User {email}"), &body).into_response()
}

async fn event_page(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
) -> Response {
    let ev = events::get(&sandbox.state(), &calendar_id, &event_id);
    let Ok(ev) = ev else {
        return not_found("event");
    };
    let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let action = format!(
        "/_sandbox/ui/calendars/{}/events/{}",
        encode(&calendar_id),
        encode(&event_id)
    );
    let body = format!(
        "<form method=\"post\" action=\"{action}\">\
         <p><label>Summary <input name=\"summary\" value=\"{}\"></label></p>\
         <p><label>Description <textarea name=\"description\">{}</textarea></label></p>\
         <p><label>Start (RFC 3339 or YYYY-MM-DD) <input name=\"start\" value=\"{}\"></label></p>\
         <p><label>End <input name=\"end\" value=\"{}\"></label></p>\
         <button type=\"submit\">Save</button></form>\
         <form method=\"post\" action=\"{action}/delete\"><button type=\"submit\">Delete</button></form>\
         <p>status: {}, etag: {}</p>",
        esc(&s("summary")),
        esc(&from_html(&s("description"))),
        esc(&when(ev.get("start"))),
        esc(&when(ev.get("end"))),
        esc(&s("status")),
        esc(&s("etag")),
    );
    page(&format!("Event {event_id}"), &body).into_response()
}

fn back_to_owner(sandbox: &Sandbox, calendar_id: &str) -> Response {
    let owner = sandbox
        .state()
        .calendars
        .get(calendar_id)
        .map(|c| c.owner.clone())
        .unwrap_or_default();
    back_to_user(&owner)
}

fn time_value(v: &str, existing: Option<&Value>) -> Value {
    if v.len() == 10 {
        return json!({ "date": v });
    }
    let mut out = json!({ "dateTime": v });
    if let Some(tz) = existing.and_then(|e| e.get("timeZone")) {
        out["timeZone"] = tz.clone();
    }
    out
}

async fn event_save(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let now = sandbox.now();
    let result = {
        let mut st = sandbox.state();
        let current = events::get(&st, &calendar_id, &event_id).unwrap_or(Value::Null);
        let mut patch = Map::new();
        if let Some(v) = form.get("summary") {
            patch.insert("summary".to_string(), json!(v));
        }
        // Google Calendar's web UI saves descriptions as HTML (line breaks as `<br>`).
        if let Some(v) = form.get("description") {
            patch.insert("description".to_string(), json!(as_html(v)));
        }
        for key in ["start", "end"] {
            if let Some(v) = form.non_empty(key) {
                patch.insert(key.to_string(), time_value(v, current.get(key)));
            }
        }
        events::modify_with(&mut st, now, &calendar_id, &event_id, patch, None, false)
    };
    match result {
        Ok((_, changed)) => {
            for cal in changed.calendars() {
                push::calendar_changed(&sandbox, cal);
            }
            back_to_owner(&sandbox, &calendar_id)
        }
        Err(e) => failed("Could not save", &e),
    }
}

/// Plain text as Google Calendar's web UI stores it: escaped, line breaks as `<br>`.
fn as_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("\r\n", "\n")
        .replace('\n', "<br>")
}

/// The text a description in that form shows in the editor.
fn from_html(html: &str) -> String {
    html.replace("<br>", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn event_delete(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
) -> Response {
    let now = sandbox.now();
    let result = events::delete(&mut sandbox.state(), now, &calendar_id, &event_id, None);
    match result {
        Ok(changed) => {
            for cal in changed.calendars() {
                push::calendar_changed(&sandbox, cal);
            }
            back_to_owner(&sandbox, &calendar_id)
        }
        Err(e) => failed("Could not delete", &e),
    }
}

// ---- contacts ---------------------------------------------------------------------------

/// The fields the contact form edits: (form name, person field, key in its first entry).
const CONTACT_FORM: &[(&str, &str, &str)] = &[
    ("given", "names", "givenName"),
    ("family", "names", "familyName"),
    ("email", "emailAddresses", "value"),
    ("phone", "phoneNumbers", "value"),
    ("company", "organizations", "name"),
    ("title", "organizations", "title"),
    ("notes", "biographies", "value"),
];

fn contact_id(resource_name: &str) -> &str {
    resource_name
        .strip_prefix("people/")
        .unwrap_or(resource_name)
}

/// A key of a person field's first entry, or "".
fn first(p: &StoredPerson, field: &str, key: &str) -> String {
    p.fields
        .get(field)
        .and_then(|a| a.get(0))
        .and_then(|x| x.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Sets (or, empty, removes) `key` of the field's first entry; an entry left with no value
/// goes, and a field left with no entry too.
fn set_first(p: &mut StoredPerson, field: &str, key: &str, value: &str) {
    let mut entries = p
        .fields
        .get(field)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        if value.is_empty() {
            return;
        }
        entries.push(json!({}));
    }
    if let Some(m) = entries[0].as_object_mut() {
        if value.is_empty() {
            m.remove(key);
        } else {
            m.insert(key.to_string(), json!(value));
        }
        if field == "biographies" && m.contains_key("value") {
            m.entry("contentType").or_insert(json!("TEXT_PLAIN"));
        }
        let has_value = m.iter().any(|(k, v)| {
            k != "type" && k != "contentType" && v.as_str().is_some_and(|s| !s.is_empty())
        });
        if !has_value {
            entries.remove(0);
        }
    }
    if entries.is_empty() {
        p.fields.remove(field);
    } else {
        p.fields.insert(field.to_string(), Value::Array(entries));
    }
}

/// Groups a contact can be put in from the form: the user's own and "myContacts".
fn editable_groups(book: &AddressBook) -> Vec<(&str, &str)> {
    book.groups
        .values()
        .filter(|g| !g.system || g.id == "myContacts")
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect()
}

async fn contact_page(
    State(sandbox): State<Sandbox>,
    Path((email, id)): Path<(String, String)>,
) -> Response {
    let st = sandbox.state();
    let rn = format!("people/{id}");
    let Some(book) = st.address_books.get(&email) else {
        return not_found("user");
    };
    let Some(p) = book.persons.get(&rn).filter(|p| !p.deleted) else {
        return not_found("contact");
    };
    let action = format!(
        "/_sandbox/ui/users/{}/contacts/{}",
        encode(&email),
        encode(&id)
    );
    let mut body = format!("<form method=\"post\" action=\"{action}\">");
    for (name, field, key) in CONTACT_FORM {
        let value = esc(&first(p, field, key));
        if *name == "notes" {
            body.push_str(&format!(
                "<p><label>{name} <textarea name=\"{name}\">{value}</textarea></label></p>"
            ));
        } else {
            body.push_str(&format!(
                "<p><label>{name} <input name=\"{name}\" value=\"{value}\"></label></p>"
            ));
        }
    }
    body.push_str("<p>Groups:");
    for (gid, gname) in editable_groups(book) {
        body.push_str(&format!(
            " <label><input type=\"checkbox\" name=\"group\" value=\"{}\"{}> {}</label>",
            esc(gid),
            if p.groups.contains(gid) {
                " checked"
            } else {
                ""
            },
            esc(gname)
        ));
    }
    body.push_str(&format!(
        "</p><button type=\"submit\">Save</button></form>\
         <form method=\"post\" action=\"{action}/delete\"><button type=\"submit\">Delete</button></form>\
         <p>etag: {}</p>",
        esc(&p.etag)
    ));
    page(&format!("Contact {rn}"), &body).into_response()
}

async fn contact_save(
    State(sandbox): State<Sandbox>,
    Path((email, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Params::parse(&String::from_utf8_lossy(&body));
    let now = sandbox.now();
    let rn = format!("people/{id}");
    let mut st = sandbox.state();
    let Some(book) = st.address_books.get_mut(&email) else {
        return not_found("user");
    };
    let allowed: Vec<String> = editable_groups(book)
        .into_iter()
        .map(|(g, _)| g.to_string())
        .collect();
    let Some(p) = book.persons.get_mut(&rn).filter(|p| !p.deleted) else {
        return not_found("contact");
    };
    for (name, field, key) in CONTACT_FORM {
        if let Some(v) = form.get(name) {
            set_first(p, field, key, v.trim());
        }
    }
    let before = p.groups.clone();
    // Groups the form does not offer (starred, other system groups) stay as they are.
    p.groups.retain(|g| !allowed.contains(g));
    p.groups.extend(
        form.get_all("group")
            .into_iter()
            .filter(|g| allowed.iter().any(|a| a == g))
            .map(str::to_string),
    );
    if p.groups.is_empty() {
        p.groups.insert("myContacts".to_string());
    }
    let changed: Vec<String> = before.symmetric_difference(&p.groups).cloned().collect();
    people::touch(book, &rn, now);
    for id in &changed {
        if let Some(g) = book.groups.get_mut(id) {
            g.etag = people::model::new_etag();
            g.updated = now;
        }
    }
    back_to_user(&email)
}

async fn contact_delete(
    State(sandbox): State<Sandbox>,
    Path((email, id)): Path<(String, String)>,
) -> Response {
    let now = sandbox.now();
    let rn = format!("people/{id}");
    let mut st = sandbox.state();
    let Some(book) = st.address_books.get_mut(&email) else {
        return not_found("user");
    };
    match people::delete_in(book, &rn, now) {
        Ok(()) => back_to_user(&email),
        Err(e) => failed("Could not delete", &e),
    }
}
