//! Browsable sandbox for humans: `/_sandbox/ui` lists users, their calendars, events and
//! contacts, and edits or deletes events through the same code path as the API (so push
//! notifications fire).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::calendar::events;
use crate::params::{encode, html_escape as esc, Params};
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
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t} - Google sandbox</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>\
         </head><body><p><a href=\"/_sandbox/ui\">Google sandbox</a></p><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
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
        return (
            StatusCode::NOT_FOUND,
            page("Not found", "<p>No such user.</p>"),
        )
            .into_response();
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
    body.push_str("<h2>Contacts</h2><table><tr><th>name</th><th>email</th><th>resource</th></tr>");
    if let Some(book) = st.address_books.get(&email) {
        for p in book.persons.values().filter(|p| !p.deleted) {
            let first = |field: &str, key: &str| {
                p.fields
                    .get(field)
                    .and_then(|a| a.get(0))
                    .and_then(|x| x.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let name = format!(
                "{} {}",
                first("names", "givenName"),
                first("names", "familyName")
            );
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name.trim()),
                esc(&first("emailAddresses", "value")),
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
        return (
            StatusCode::NOT_FOUND,
            page("Not found", "<p>No such event.</p>"),
        )
            .into_response();
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
        esc(&s("description")),
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
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!("/_sandbox/ui/users/{}", encode(&owner)),
        )],
    )
        .into_response()
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
        for key in ["summary", "description"] {
            if let Some(v) = form.get(key) {
                patch.insert(key.to_string(), json!(v));
            }
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
            push::calendar_changed(&sandbox, &changed.calendar_id);
            back_to_owner(&sandbox, &calendar_id)
        }
        Err(e) => (
            e.status,
            page("Could not save", &format!("<p>{}</p>", esc(&e.message))),
        )
            .into_response(),
    }
}

async fn event_delete(
    State(sandbox): State<Sandbox>,
    Path((calendar_id, event_id)): Path<(String, String)>,
) -> Response {
    let now = sandbox.now();
    let result = events::delete(&mut sandbox.state(), now, &calendar_id, &event_id, None);
    match result {
        Ok(changed) => {
            push::calendar_changed(&sandbox, &changed.calendar_id);
            back_to_owner(&sandbox, &calendar_id)
        }
        Err(e) => (
            e.status,
            page("Could not delete", &format!("<p>{}</p>", esc(&e.message))),
        )
            .into_response(),
    }
}
