//! Calendar events: the operations behind events.insert/get/patch/update/delete/list/
//! instances, on the sandbox state. Handlers and the UI both call these.

use axum::http::StatusCode;
use base64::Engine;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use super::recurrence::{
    duration, format_date_time, parse_event_time, shifted_end, Recurrence, When,
};
use crate::clock::rfc3339_millis;
use crate::errors::{ApiError, Surface};
use crate::params::Params;
use crate::state::{Calendar, PageCursor, SortKey, State, StoredEvent, SyncCursor};

const S: Surface = Surface::Calendar;
const MAX_INSTANCES: usize = 2500;

/// Properties a client may write; everything else in a request body is ignored.
const WRITABLE: &[&str] = &[
    "anyoneCanAddSelf",
    "attachments",
    "attendees",
    "attendeesOmitted",
    "birthdayProperties",
    "colorId",
    "conferenceData",
    "description",
    "end",
    "endTimeUnspecified",
    "eventType",
    "extendedProperties",
    "focusTimeProperties",
    "gadget",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "iCalUID",
    "id",
    "location",
    "locked",
    "outOfOfficeProperties",
    "privateCopy",
    "recurrence",
    "reminders",
    "sequence",
    "source",
    "start",
    "status",
    "summary",
    "transparency",
    "visibility",
    "workingLocationProperties",
];

pub fn invalid(message: &str) -> ApiError {
    ApiError::new(S, StatusCode::BAD_REQUEST, "invalid", message)
}

fn required(message: &str) -> ApiError {
    ApiError::new(S, StatusCode::BAD_REQUEST, "required", message)
}

/// A required query parameter left out (as Google answers it).
pub fn required_parameter(name: &'static str) -> ApiError {
    required(&format!("Required parameter: {name}")).with_location("parameter", name)
}

pub fn not_found() -> ApiError {
    ApiError::not_found(S)
}

/// What a write changed, for push notifications.
#[derive(Debug, Clone)]
pub struct Changed {
    pub calendar_id: String,
    /// Attendees' calendars whose copy of the event changed with it.
    pub copies: Vec<String>,
}

impl Changed {
    fn of(calendar_id: &str, copies: Vec<String>) -> Self {
        Self {
            calendar_id: calendar_id.to_string(),
            copies,
        }
    }

    /// Every calendar the write changed.
    pub fn calendars(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.calendar_id.as_str()).chain(self.copies.iter().map(String::as_str))
    }
}

/// Google puts an event with attendees into each attendee's calendar under the same id: an
/// attendee who is a sandbox user gets a copy of the organizer's event (and of its
/// exceptions) in their primary calendar, kept in line with every write of the organizer's.
/// As on Google, private extended properties are "private to the copy of the event that
/// appears on this calendar" (the attendee's copy keeps its own, never the organizer's),
/// shared ones travel, `organizer` names the organizer's calendar (no `self`), and the
/// attendee's own entry is `self`; the attendee's response on their copy is kept. A copy is
/// cancelled when its event is, or when the attendee is taken off the list. Returns the
/// calendars whose copy changed.
fn sync_copies(st: &mut State, now: Timestamp, organizer_cal: &str, id: &str) -> Vec<String> {
    let Some(source) = CopySource::of(st, organizer_cal, id) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for target in source.targets(st, id) {
        let Some(tcal) = st.calendars.get_mut(&target) else {
            continue;
        };
        let existing = tcal.events.get(id).map(|e| e.body.clone());
        let own_event = existing
            .as_ref()
            .and_then(organizer_of)
            .is_some_and(|o| o == target);
        if own_event {
            // An event of the attendee's own under this id: not a copy.
            continue;
        }
        if source.live && source.invited.contains(&target.to_lowercase()) {
            let copy = attendee_copy(&source.body, existing.as_ref(), id, &target);
            put_event(tcal, id, copy);
        } else if let Some(e) = tcal.events.get_mut(id).filter(|e| !e.is_cancelled()) {
            e.body.insert("status".into(), json!("cancelled"));
        } else {
            continue;
        }
        touch(tcal, id, now);
        changed.push(target);
    }
    changed
}

/// The organizer's event that [`sync_copies`] propagates.
struct CopySource {
    body: Map<String, Value>,
    live: bool,
    /// The organizer's calendar's owner.
    owner: String,
    /// The attendees other than the organizer, lowercased.
    invited: Vec<String>,
}

impl CopySource {
    /// The event `id` of `organizer_cal`, unless it is itself an attendee's copy.
    fn of(st: &State, organizer_cal: &str, id: &str) -> Option<Self> {
        let cal = st.calendars.get(organizer_cal)?;
        let ev = cal.events.get(id)?;
        if organizer_of(&ev.body).is_some_and(|o| o != organizer_cal) {
            // Itself an attendee's copy: only the organizer's event propagates.
            return None;
        }
        let owner = cal.owner.clone();
        let invited = ev
            .body
            .get("attendees")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("email").and_then(Value::as_str))
            .map(str::to_lowercase)
            .filter(|e| *e != owner && *e != organizer_cal)
            .collect();
        Some(Self {
            body: ev.body.clone(),
            live: !ev.is_cancelled(),
            owner,
            invited,
        })
    }

    /// Attendees' primary calendars (a user's primary calendar id is their email) that are
    /// invited, or hold a live copy to cancel.
    fn targets(&self, st: &State, id: &str) -> Vec<String> {
        st.calendars
            .values()
            .filter(|c| c.id == c.owner && c.id != self.owner)
            .filter(|c| {
                self.invited.contains(&c.id.to_lowercase())
                    || c.events.get(id).is_some_and(|e| !e.is_cancelled())
            })
            .map(|c| c.id.clone())
            .collect()
    }
}

/// The attendee `target`'s copy of the organizer's `body`, over the copy it had (`existing`):
/// its own private properties and response kept, the shared ones and the rest the organizer's.
fn attendee_copy(
    body: &Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    id: &str,
    target: &str,
) -> Map<String, Value> {
    let mut copy = body.clone();
    let own_private = existing
        .and_then(|b| b.get("extendedProperties"))
        .and_then(|p| p.get("private"))
        .cloned();
    let shared = copy
        .get("extendedProperties")
        .and_then(|p| p.get("shared"))
        .cloned();
    let mut props = Map::new();
    if let Some(p) = own_private {
        props.insert("private".into(), p);
    }
    if let Some(sh) = shared {
        props.insert("shared".into(), sh);
    }
    if props.is_empty() {
        copy.remove("extendedProperties");
    } else {
        copy.insert("extendedProperties".into(), Value::Object(props));
    }
    if let Some(Value::Object(o)) = copy.get_mut("organizer") {
        o.remove("self");
    }
    if let Some(Value::Object(c)) = copy.get_mut("creator") {
        c.remove("self");
    }
    mark_self(&mut copy, existing, target);
    let eid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id} {target}"));
    copy.insert(
        "htmlLink".into(),
        json!(format!("https://www.google.com/calendar/event?eid={eid}")),
    );
    copy
}

/// The attendee `target` is `self` on its copy, with the response it gave on the one before.
fn mark_self(copy: &mut Map<String, Value>, existing: Option<&Map<String, Value>>, target: &str) {
    let kept_response = existing
        .and_then(|b| b.get("attendees"))
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|a| a.get("self") == Some(&json!(true)))
                .and_then(|a| a.get("responseStatus"))
                .cloned()
        });
    let Some(Value::Array(attendees)) = copy.get_mut("attendees") else {
        return;
    };
    for a in attendees.iter_mut() {
        let me = a
            .get("email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(target));
        if let Some(o) = a.as_object_mut() {
            o.remove("self");
            if me {
                o.insert("self".into(), json!(true));
                if let Some(r) = &kept_response {
                    o.insert("responseStatus".into(), r.clone());
                }
            }
        }
    }
}

/// Stores an event: over the one before under its id, or as a new event of the calendar.
fn put_event(tcal: &mut Calendar, id: &str, body: Map<String, Value>) {
    match tcal.events.get_mut(id) {
        Some(e) => e.body = body,
        None => {
            tcal.next_order += 1;
            let order = tcal.next_order;
            tcal.events.insert(
                id.to_string(),
                StoredEvent {
                    body,
                    mod_seq: 0,
                    order,
                },
            );
        }
    }
}

/// [`sync_copies`] for an event and its materialized exceptions.
fn sync_copies_of_series(
    st: &mut State,
    now: Timestamp,
    organizer_cal: &str,
    id: &str,
) -> Vec<String> {
    let mut ids = vec![id.to_string()];
    if let Some(cal) = st.calendars.get(organizer_cal) {
        ids.extend(
            cal.events
                .iter()
                .filter(|(_, e)| e.recurring_event_id() == Some(id))
                .map(|(k, _)| k.clone()),
        );
    }
    let mut changed = Vec::new();
    for i in ids {
        for c in sync_copies(st, now, organizer_cal, &i) {
            if !changed.contains(&c) {
                changed.push(c);
            }
        }
    }
    changed
}

/// Resolves `primary` and checks the caller owns the calendar.
pub fn resolve_calendar(st: &State, user: &str, calendar_id: &str) -> Result<String, ApiError> {
    let id = if calendar_id == "primary" {
        user
    } else {
        calendar_id
    };
    match st.calendars.get(id) {
        Some(cal) if cal.owner == user => Ok(id.to_string()),
        _ => Err(not_found()),
    }
}

fn calendar_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Calendar, ApiError> {
    st.calendars.get_mut(id).ok_or_else(not_found)
}

pub fn etag_for(now: Timestamp, seq: u64) -> String {
    format!("\"{}{:06}\"", now.as_millisecond(), seq % 1_000_000)
}

/// Parses a JSON request body into an object.
pub fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::new(
            S,
            StatusCode::BAD_REQUEST,
            "parseError",
            "Parse Error",
        )),
    }
}

fn keep_writable(body: Map<String, Value>) -> Map<String, Value> {
    body.into_iter()
        .filter(|(k, v)| WRITABLE.contains(&k.as_str()) && !v.is_null())
        .collect()
}

/// JSON merge patch: objects merge, `null` removes, everything else replaces.
fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(inner) => match target.get_mut(&k) {
                Some(Value::Object(existing)) => merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, inner);
                    target.insert(k, Value::Object(fresh));
                }
            },
            other => {
                target.insert(k, other);
            }
        }
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// Validates a complete event body; returns its start and end.
fn validate(body: &mut Map<String, Value>, cal_tz: &str) -> Result<(When, When), ApiError> {
    let (start, end) = validate_times(body, cal_tz)?;
    if let Some(rec) = body.get("recurrence") {
        let lines = string_array(rec).ok_or_else(|| invalid("Invalid recurrence rule."))?;
        if !start.is_date() && body.get("start").and_then(|s| s.get("timeZone")).is_none() {
            return Err(required("Missing time zone definition for start time."));
        }
        Recurrence::parse(&lines, &recurrence_tz(&start, cal_tz)).map_err(|m| invalid(&m))?;
    }
    validate_enums(body)?;
    validate_attendees(body)?;
    Ok((start, end))
}

/// `start` and `end`: both there, of one kind (dates or date-times), in order; a zoned
/// date-time is written back in its canonical form.
fn validate_times(body: &mut Map<String, Value>, cal_tz: &str) -> Result<(When, When), ApiError> {
    let start_v = body
        .get("start")
        .ok_or_else(|| required("Missing start time."))?;
    let end_v = body
        .get("end")
        .ok_or_else(|| required("Missing end time."))?;
    let start = parse_event_time(start_v, cal_tz).map_err(|m| map_time_err(&m))?;
    let end = parse_event_time(end_v, cal_tz).map_err(|m| map_time_err(&m))?;
    for (key, when) in [("start", &start), ("end", &end)] {
        if let (When::At(z), Some(Value::Object(obj))) = (when, body.get_mut(key)) {
            obj.insert("dateTime".into(), json!(format_date_time(z)));
        }
    }
    if start.is_date() != end.is_date() {
        return Err(invalid(
            "Start and end times must either both be date or both be dateTime.",
        ));
    }
    let tz = recurrence_tz(&start, cal_tz);
    let empty = match (&start, &end) {
        (When::Date(a), When::Date(b)) => b <= a,
        _ => end.instant(&tz) < start.instant(&tz),
    };
    if empty {
        return Err(ApiError::new(
            S,
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        )
        .with_location("parameter", "timeMax"));
    }
    Ok((start, end))
}

/// The properties with a fixed set of values, and `extendedProperties`' shape.
fn validate_enums(body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(color) = str_field(body, "colorId") {
        if !matches!(color.parse::<u8>(), Ok(1..=11)) {
            return Err(invalid("Invalid value for: colorId"));
        }
    }
    let allowed: [(&str, &[&str]); 3] = [
        ("status", &["confirmed", "tentative", "cancelled"]),
        (
            "visibility",
            &["default", "public", "private", "confidential"],
        ),
        ("transparency", &["opaque", "transparent"]),
    ];
    for (key, values) in allowed {
        if let Some(v) = body.get(key) {
            if !v.as_str().is_some_and(|v| values.contains(&v)) {
                return Err(invalid(&format!("Invalid value for: {key}")));
            }
        }
    }
    if let Some(ext) = body.get("extendedProperties") {
        let ok = ext.as_object().is_some_and(|m| {
            m.iter().all(|(k, v)| {
                (k == "private" || k == "shared")
                    && v.as_object()
                        .is_some_and(|props| props.values().all(Value::is_string))
            })
        });
        if !ok {
            return Err(invalid("Invalid value for: extendedProperties"));
        }
    }
    Ok(())
}

/// Every attendee has an e-mail and a known response (`needsAction` when it gives none).
fn validate_attendees(body: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(attendees) = body.get_mut("attendees") else {
        return Ok(());
    };
    let list = attendees
        .as_array_mut()
        .ok_or_else(|| invalid("Invalid value for: attendees"))?;
    for a in list.iter_mut() {
        let obj = a
            .as_object_mut()
            .ok_or_else(|| invalid("Invalid value for: attendees"))?;
        if !obj.get("email").is_some_and(Value::is_string) {
            return Err(required("Missing attendee email."));
        }
        match obj.get("responseStatus").and_then(Value::as_str) {
            None => {
                obj.insert("responseStatus".into(), json!("needsAction"));
            }
            Some("needsAction" | "declined" | "tentative" | "accepted") => {}
            Some(_) => return Err(invalid("Invalid attendee responseStatus.")),
        }
    }
    Ok(())
}

/// An attendee a write names without `responseStatus` keeps the response Google holds for
/// them (matched by e-mail, case-insensitively): responses are the attendees' to give. A new
/// attendee without one is `needsAction` (see `validate`).
fn keep_responses(current: &Map<String, Value>, next: &mut Map<String, Value>) {
    let Some(Value::Array(before)) = current.get("attendees") else {
        return;
    };
    let held: Vec<(String, Value)> = before
        .iter()
        .filter_map(|a| {
            Some((
                a.get("email")?.as_str()?.to_lowercase(),
                a.get("responseStatus")?.clone(),
            ))
        })
        .collect();
    if let Some(Value::Array(list)) = next.get_mut("attendees") {
        for a in list.iter_mut() {
            let Some(obj) = a.as_object_mut() else {
                continue;
            };
            if obj.contains_key("responseStatus") {
                continue;
            }
            let email = obj
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            if let Some((_, r)) = held.iter().find(|(e, _)| Some(e) == email.as_ref()) {
                obj.insert("responseStatus".into(), r.clone());
            }
        }
    }
}

fn map_time_err(message: &str) -> ApiError {
    if message.starts_with("Missing") {
        required(message)
    } else {
        invalid(message)
    }
}

fn string_array(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn recurrence_tz(start: &When, cal_tz: &str) -> TimeZone {
    match start {
        When::At(z) => z.time_zone().clone(),
        When::Date(_) => TimeZone::get(cal_tz).unwrap_or(TimeZone::UTC),
    }
}

/// Sets the server-owned fields of an event.
fn finalize(
    body: &mut Map<String, Value>,
    cal: &Calendar,
    id: &str,
    created: &str,
    now: Timestamp,
) {
    body.insert("kind".into(), json!("calendar#event"));
    body.insert("id".into(), json!(id));
    body.entry("status").or_insert(json!("confirmed"));
    let eid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id} {}", cal.id));
    body.insert(
        "htmlLink".into(),
        json!(format!("https://www.google.com/calendar/event?eid={eid}")),
    );
    body.insert("created".into(), json!(created));
    body.insert("updated".into(), json!(rfc3339_millis(now)));
    if !body.get("iCalUID").is_some_and(Value::is_string) {
        body.insert("iCalUID".into(), json!(format!("{id}@google.com")));
    }
    if !body.get("sequence").is_some_and(Value::is_i64) {
        body.insert("sequence".into(), json!(0));
    }
    body.insert("creator".into(), json!({"email": cal.owner, "self": true}));
    let mut organizer = json!({"email": cal.id, "self": true});
    if cal.id != cal.owner {
        organizer["displayName"] = json!(cal.summary);
    }
    body.insert("organizer".into(), organizer);
    body.entry("reminders")
        .or_insert(json!({"useDefault": true}));
    body.entry("eventType").or_insert(json!("default"));
    if let Some(Value::Array(attendees)) = body.get_mut("attendees") {
        for a in attendees.iter_mut() {
            if a.get("email").and_then(Value::as_str) == Some(cal.owner.as_str()) {
                a["self"] = json!(true);
                a["organizer"] = json!(true);
            }
        }
    }
}

/// Records a write of `id` in `cal`: new sequence number, `updated`, etag.
fn touch(cal: &mut Calendar, id: &str, now: Timestamp) {
    cal.seq += 1;
    let seq = cal.seq;
    cal.updated = now;
    cal.etag = etag_for(now, seq);
    if let Some(ev) = cal.events.get_mut(id) {
        ev.mod_seq = seq;
        ev.body.insert("updated".into(), json!(rfc3339_millis(now)));
        ev.body.insert("etag".into(), json!(etag_for(now, seq)));
    }
}

fn significant_change(old: &Map<String, Value>, new: &Map<String, Value>) -> bool {
    [
        "start",
        "end",
        "recurrence",
        "location",
        "summary",
        "description",
    ]
    .iter()
    .any(|k| old.get(*k) != new.get(*k))
}

/// events.insert
pub fn insert(
    st: &mut State,
    now: Timestamp,
    calendar_id: &str,
    body: &[u8],
) -> Result<(Value, Changed), ApiError> {
    let body = parse_body(body)?;
    let mut body = keep_writable(body);
    body.remove("originalStartTime");
    let cal = calendar_mut(st, calendar_id)?;
    let id = match body.get("id") {
        Some(Value::String(id)) => {
            if !crate::ids::is_valid_event_id(id) {
                return Err(invalid("Invalid resource id value."));
            }
            if cal.events.contains_key(id) {
                return Err(ApiError::new(
                    S,
                    StatusCode::CONFLICT,
                    "duplicate",
                    "The requested identifier already exists.",
                ));
            }
            id.clone()
        }
        Some(_) => return Err(invalid("Invalid resource id value.")),
        None => crate::ids::base32hex(26),
    };
    if let Some(uid) = str_field(&body, "iCalUID") {
        let taken = cal.events.values().any(|e| {
            e.recurring_event_id().is_none() && str_field(&e.body, "iCalUID") == Some(uid)
        });
        if taken {
            return Err(ApiError::new(
                S,
                StatusCode::CONFLICT,
                "duplicate",
                "The requested identifier already exists.",
            ));
        }
    }
    validate(&mut body, &cal.time_zone)?;
    finalize(&mut body, cal, &id, &rfc3339_millis(now), now);
    cal.next_order += 1;
    let order = cal.next_order;
    cal.events.insert(
        id.clone(),
        StoredEvent {
            body,
            mod_seq: 0,
            order,
        },
    );
    touch(cal, &id, now);
    let out = cal.events.get(&id).map(|e| Value::Object(e.body.clone()));
    let copies = sync_copies(st, now, calendar_id, &id);
    Ok((out.unwrap_or(Value::Null), Changed::of(calendar_id, copies)))
}

fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), ApiError> {
    match if_match {
        Some(m) if m != "*" && m != etag => Err(ApiError::new(
            S,
            StatusCode::PRECONDITION_FAILED,
            "conditionNotMet",
            "Precondition Failed",
        )
        .with_location("header", "If-Match")),
        _ => Ok(()),
    }
}

/// Splits an instance id `{master}_{suffix}`.
fn split_instance_id(id: &str) -> Option<(&str, &str)> {
    let (master, suffix) = id.rsplit_once('_')?;
    let ok = (suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_digit()))
        || (suffix.len() == 16 && suffix.ends_with('Z') && suffix.as_bytes().get(8) == Some(&b'T'));
    ok.then_some((master, suffix))
}

fn horizon_after(now: Timestamp, days: i64) -> Timestamp {
    now.checked_add(SignedDuration::from_hours(24 * days))
        .unwrap_or(Timestamp::MAX)
}

/// Expands a recurring master into instance bodies (exceptions substituted).
fn expand(cal: &Calendar, master: &StoredEvent, until: Timestamp) -> Vec<Map<String, Value>> {
    let body = &master.body;
    let Some(lines) = body.get("recurrence").and_then(string_array) else {
        return Vec::new();
    };
    let (Some(sv), Some(ev)) = (body.get("start"), body.get("end")) else {
        return Vec::new();
    };
    let (Ok(start), Ok(end)) = (
        parse_event_time(sv, &cal.time_zone),
        parse_event_time(ev, &cal.time_zone),
    ) else {
        return Vec::new();
    };
    let tz = recurrence_tz(&start, &cal.time_zone);
    let Ok(rec) = Recurrence::parse(&lines, &tz) else {
        return Vec::new();
    };
    let dur = duration(&start, &end);
    let master_id = body.get("id").and_then(Value::as_str).unwrap_or("");
    rec.occurrences(&start, until, MAX_INSTANCES)
        .into_iter()
        .map(|occ| {
            let iid = format!("{master_id}_{}", occ.id_suffix());
            if let Some(exception) = cal.events.get(&iid) {
                return exception.body.clone();
            }
            let mut inst = body.clone();
            inst.remove("recurrence");
            inst.insert("id".into(), json!(iid));
            inst.insert("recurringEventId".into(), json!(master_id));
            inst.insert("originalStartTime".into(), occ.to_json());
            inst.insert("start".into(), occ.to_json());
            inst.insert("end".into(), shifted_end(&occ, dur).to_json());
            inst
        })
        .collect()
}

/// Every occurrence the calendar holds up to `until`, cancelled ones included: single events
/// as stored, live series as their instances (exceptions substituted, as `singleEvents`
/// lists them).
pub fn occurrences(cal: &Calendar, until: Timestamp) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for ev in cal.events.values() {
        if ev.recurring_event_id().is_some() {
            continue;
        }
        if ev.body.get("recurrence").is_some() && !ev.is_cancelled() {
            out.extend(expand(cal, ev, until));
        } else {
            out.push(ev.body.clone());
        }
    }
    out
}

/// Finds an instance (materialized or virtual) of a recurring event by id.
fn find_instance(cal: &Calendar, id: &str) -> Option<Map<String, Value>> {
    let (master_id, suffix) = split_instance_id(id)?;
    let master = cal.events.get(master_id)?;
    let until = suffix_instant(suffix)?
        .checked_add(SignedDuration::from_hours(48))
        .ok()?;
    expand(cal, master, until)
        .into_iter()
        .find(|inst| inst.get("id").and_then(Value::as_str) == Some(id))
}

fn suffix_instant(suffix: &str) -> Option<Timestamp> {
    let date = suffix.get(0..8)?;
    let iso = format!(
        "{}-{}-{}T00:00:00Z",
        date.get(0..4)?,
        date.get(4..6)?,
        date.get(6..8)?
    );
    iso.parse().ok()
}

/// events.get (also virtual instances).
pub fn get(st: &State, calendar_id: &str, event_id: &str) -> Result<Value, ApiError> {
    let cal = st.calendars.get(calendar_id).ok_or_else(not_found)?;
    if let Some(ev) = cal.events.get(event_id) {
        return Ok(Value::Object(ev.body.clone()));
    }
    find_instance(cal, event_id)
        .map(Value::Object)
        .ok_or_else(not_found)
}

/// events.patch (`replace == false`) and events.update (`replace == true`).
pub fn modify(
    st: &mut State,
    now: Timestamp,
    calendar_id: &str,
    event_id: &str,
    body: &[u8],
    if_match: Option<&str>,
    replace: bool,
) -> Result<(Value, Changed), ApiError> {
    let patch = keep_writable(parse_body(body)?);
    modify_with(st, now, calendar_id, event_id, patch, if_match, replace)
}

pub fn modify_with(
    st: &mut State,
    now: Timestamp,
    calendar_id: &str,
    event_id: &str,
    mut patch: Map<String, Value>,
    if_match: Option<&str>,
    replace: bool,
) -> Result<(Value, Changed), ApiError> {
    let cal = calendar_mut(st, calendar_id)?;
    patch.remove("id");
    patch.remove("recurringEventId");
    patch.remove("originalStartTime");
    let current = match cal.events.get(event_id) {
        Some(ev) => ev.body.clone(),
        None => find_instance(cal, event_id).ok_or_else(not_found)?,
    };
    let etag = current.get("etag").and_then(Value::as_str).unwrap_or("");
    check_if_match(if_match, etag)?;
    let mut next = modified_body(&current, patch, replace);
    keep_responses(&current, &mut next);
    validate(&mut next, &cal.time_zone)?;
    let created = current
        .get("created")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| rfc3339_millis(now));
    next_sequence(&current, &mut next);
    if next.get("recurringEventId").is_some() {
        next.remove("recurrence");
    }
    finalize(&mut next, cal, event_id, &created, now);
    // An attendee's copy keeps naming its organizer (and creator): the attendee's write
    // changes their copy, not who organizes the event.
    let copy = organizer_of(&current).is_some_and(|o| o != calendar_id);
    let rsvp = if copy {
        let me = cal.owner.clone();
        let rsvp = changed_response(&current, &next, &me);
        keep_organizer(&current, &mut next, &me);
        rsvp
    } else {
        None
    };
    put_event(cal, event_id, next);
    touch(cal, event_id, now);
    let out = cal
        .events
        .get(event_id)
        .map(|e| Value::Object(e.body.clone()))
        .unwrap_or(Value::Null);
    let mut copies = sync_copies(st, now, calendar_id, event_id);
    if let Some((organizer, attendee, response)) = rsvp {
        for c in response_to_organizer(st, now, &organizer, event_id, &attendee, &response) {
            if c != calendar_id && !copies.contains(&c) {
                copies.push(c);
            }
        }
    }
    Ok((out, Changed::of(calendar_id, copies)))
}

/// The event after a write: `patch` merged into `current`, or (`replace`) `patch` alone with
/// the identity an instance keeps.
fn modified_body(
    current: &Map<String, Value>,
    patch: Map<String, Value>,
    replace: bool,
) -> Map<String, Value> {
    if !replace {
        let mut merged = current.clone();
        merge(&mut merged, patch);
        return merged;
    }
    let mut fresh = patch;
    for keep in ["recurringEventId", "originalStartTime", "iCalUID"] {
        if let Some(v) = current.get(keep) {
            fresh.entry(keep).or_insert(v.clone());
        }
    }
    fresh
}

/// `sequence`: the client's if it sent one, never lower than before, and one up after a
/// significant change (time, recurrence…).
fn next_sequence(current: &Map<String, Value>, next: &mut Map<String, Value>) {
    let old_seq = current.get("sequence").and_then(Value::as_i64).unwrap_or(0);
    let client_seq = next
        .get("sequence")
        .and_then(Value::as_i64)
        .unwrap_or(old_seq);
    let bump = i64::from(significant_change(current, next));
    next.insert("sequence".into(), json!(client_seq.max(old_seq + bump)));
}

/// On an attendee's (`me`) copy: their answer if this write changed it, as (organizer's
/// calendar, attendee, response) for the organizer's event.
fn changed_response(
    current: &Map<String, Value>,
    next: &Map<String, Value>,
    me: &str,
) -> Option<(String, String, String)> {
    let before = own_response(current, me);
    let after = own_response(next, me)?;
    let org = organizer_of(current)?;
    (before.as_deref() != Some(after.as_str())).then(|| (org, me.to_string(), after))
}

/// An attendee's (`me`) write of their copy keeps its organizer and creator.
fn keep_organizer(current: &Map<String, Value>, next: &mut Map<String, Value>, me: &str) {
    for keep in ["organizer", "creator"] {
        if let Some(v) = current.get(keep) {
            next.insert(keep.into(), v.clone());
        }
    }
    if let Some(Value::Array(attendees)) = next.get_mut("attendees") {
        for a in attendees.iter_mut() {
            let mine = a.get("email").and_then(Value::as_str) == Some(me);
            if let (true, Some(o)) = (mine, a.as_object_mut()) {
                o.remove("organizer");
            }
        }
    }
}

/// The organizer's calendar an event names (`organizer.email`).
fn organizer_of(body: &Map<String, Value>) -> Option<String> {
    body.get("organizer")
        .and_then(|o| o.get("email"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The `responseStatus` of the attendee `email` (case-insensitively).
fn own_response(body: &Map<String, Value>, email: &str) -> Option<String> {
    body.get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| {
            a.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .and_then(|a| a.get("responseStatus"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// An attendee's answer on their copy reaches the organizer's event, as at Google (the
/// organizer's guest list shows every guest's response), and from there every other
/// attendee's copy. Only the response travels; the organizer's event gets a new etag and
/// `updated` (its `sequence` stays: a response is not a change of the meeting). Returns the
/// calendars that changed. (An answer to one instance of a series whose organizer has no
/// exception for it stays on the copy.)
fn response_to_organizer(
    st: &mut State,
    now: Timestamp,
    organizer_cal: &str,
    event_id: &str,
    attendee: &str,
    response: &str,
) -> Vec<String> {
    let Some(cal) = st.calendars.get_mut(organizer_cal) else {
        return Vec::new();
    };
    let Some(ev) = cal.events.get_mut(event_id).filter(|e| !e.is_cancelled()) else {
        return Vec::new();
    };
    let mut changed = false;
    if let Some(Value::Array(list)) = ev.body.get_mut("attendees") {
        for a in list.iter_mut() {
            let theirs = a
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(attendee));
            if let (true, Some(o)) = (theirs, a.as_object_mut()) {
                if o.get("responseStatus").and_then(Value::as_str) != Some(response) {
                    o.insert("responseStatus".into(), json!(response));
                    changed = true;
                }
            }
        }
    }
    if !changed {
        return Vec::new();
    }
    touch(cal, event_id, now);
    let mut out = vec![organizer_cal.to_string()];
    for c in sync_copies(st, now, organizer_cal, event_id) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// events.delete: marks the event cancelled (exceptions of a master too).
pub fn delete(
    st: &mut State,
    now: Timestamp,
    calendar_id: &str,
    event_id: &str,
    if_match: Option<&str>,
) -> Result<Changed, ApiError> {
    let cal = calendar_mut(st, calendar_id)?;
    let current = match cal.events.get(event_id) {
        Some(ev) => {
            if ev.is_cancelled() {
                return Err(ApiError::new(
                    S,
                    StatusCode::GONE,
                    "deleted",
                    "Resource has been deleted",
                ));
            }
            ev.body.clone()
        }
        None => find_instance(cal, event_id).ok_or_else(not_found)?,
    };
    check_if_match(
        if_match,
        current.get("etag").and_then(Value::as_str).unwrap_or(""),
    )?;
    if !cal.events.contains_key(event_id) {
        let mut body = current;
        body.remove("recurrence");
        cal.next_order += 1;
        let order = cal.next_order;
        cal.events.insert(
            event_id.to_string(),
            StoredEvent {
                body,
                mod_seq: 0,
                order,
            },
        );
    }
    if let Some(ev) = cal.events.get_mut(event_id) {
        ev.body.insert("status".into(), json!("cancelled"));
    }
    touch(cal, event_id, now);
    let exceptions: Vec<String> = cal
        .events
        .iter()
        .filter(|(_, e)| e.recurring_event_id() == Some(event_id) && !e.is_cancelled())
        .map(|(id, _)| id.clone())
        .collect();
    for id in exceptions {
        if let Some(ev) = cal.events.get_mut(&id) {
            ev.body.insert("status".into(), json!("cancelled"));
        }
        touch(cal, &id, now);
    }
    let copies = sync_copies_of_series(st, now, calendar_id, event_id);
    Ok(Changed::of(calendar_id, copies))
}

/// events.move: the event (a series with its exceptions) leaves `source` for `destination`
/// under the same id, and the destination calendar becomes its organizer. The source keeps a
/// cancelled entry, so its incremental sync reports the event gone; the destination's reports
/// it new. Private extended properties move with the copy (it is the same copy, on another
/// calendar). Refused as Google documents it: only default events move, an instance cannot
/// be moved on its own (`cannotChangeOrganizerOfInstance`), an attendee's copy cannot change
/// its organizer (`forbiddenForNonOrganizer`), an unknown or deleted event is 404.
pub fn move_event(
    st: &mut State,
    now: Timestamp,
    source: &str,
    event_id: &str,
    destination: &str,
) -> Result<(Value, Vec<Changed>), ApiError> {
    let src = st.calendars.get(source).ok_or_else(not_found)?;
    let stored = movable(src, source, event_id)?;
    if source == destination {
        return Ok((Value::Object(stored.body.clone()), Vec::new()));
    }
    // The series and its materialized exceptions move together.
    let ids: Vec<String> = src
        .events
        .iter()
        .filter(|(id, e)| id.as_str() == event_id || e.recurring_event_id() == Some(event_id))
        .map(|(id, _)| id.clone())
        .collect();
    let dst = st.calendars.get(destination).ok_or_else(not_found)?;
    if ids
        .iter()
        .any(|id| dst.events.get(id).is_some_and(|e| !e.is_cancelled()))
    {
        return Err(ApiError::new(
            S,
            StatusCode::CONFLICT,
            "duplicate",
            "The requested identifier already exists.",
        ));
    }
    let moved = take_from_source(calendar_mut(st, source)?, &ids, now);
    let dst = calendar_mut(st, destination)?;
    put_at_destination(dst, moved, now);
    let out = dst
        .events
        .get(event_id)
        .map(|e| Value::Object(e.body.clone()))
        .unwrap_or(Value::Null);
    // The attendees' copies now name the new organizer.
    let copies = sync_copies_of_series(st, now, destination, event_id);
    Ok((
        out,
        vec![
            Changed::of(source, Vec::new()),
            Changed::of(destination, copies),
        ],
    ))
}

/// The live event `event_id` of `source` if Google would move it: not an instance, of the
/// default type, organized by `source`.
fn movable<'a>(
    src: &'a Calendar,
    source: &str,
    event_id: &str,
) -> Result<&'a StoredEvent, ApiError> {
    let Some(stored) = src.events.get(event_id).filter(|e| !e.is_cancelled()) else {
        if find_instance(src, event_id).is_some() {
            return Err(cannot_move_instance());
        }
        return Err(not_found());
    };
    if stored.recurring_event_id().is_some() {
        return Err(cannot_move_instance());
    }
    if str_field(&stored.body, "eventType").is_some_and(|t| t != "default") {
        return Err(invalid("This event type cannot be moved."));
    }
    if organizer_of(&stored.body).is_some_and(|o| o != source) {
        return Err(ApiError::new(
            S,
            StatusCode::FORBIDDEN,
            "forbiddenForNonOrganizer",
            "The operation can only be performed by the organizer of the event.",
        ));
    }
    Ok(stored)
}

/// Leaves a cancelled stub of each moved event in the source calendar (what a sync of it
/// then reports); returns the bodies that move.
fn take_from_source(
    src: &mut Calendar,
    ids: &[String],
    now: Timestamp,
) -> Vec<(String, Map<String, Value>)> {
    let mut moved = Vec::new();
    for id in ids {
        if let Some(ev) = src.events.get_mut(id) {
            let mut stub = Map::new();
            for keep in ["kind", "id", "recurringEventId", "originalStartTime"] {
                if let Some(v) = ev.body.get(keep) {
                    stub.insert(keep.into(), v.clone());
                }
            }
            stub.insert("status".into(), json!("cancelled"));
            moved.push((id.clone(), std::mem::replace(&mut ev.body, stub)));
        }
        touch(src, id, now);
    }
    moved
}

/// The moved events, new in the destination calendar.
fn put_at_destination(
    dst: &mut Calendar,
    moved: Vec<(String, Map<String, Value>)>,
    now: Timestamp,
) {
    for (id, mut body) in moved {
        let created = str_field(&body, "created")
            .map(str::to_string)
            .unwrap_or_else(|| rfc3339_millis(now));
        finalize(&mut body, dst, &id, &created, now);
        dst.next_order += 1;
        let order = dst.next_order;
        dst.events.insert(
            id.clone(),
            StoredEvent {
                body,
                mod_seq: 0,
                order,
            },
        );
        touch(dst, &id, now);
    }
}

fn cannot_move_instance() -> ApiError {
    ApiError::new(
        S,
        StatusCode::BAD_REQUEST,
        "cannotChangeOrganizerOfInstance",
        "Cannot change the organizer of an instance.",
    )
}

fn parse_time_param(p: &Params, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match p.non_empty(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<Timestamp>()
            .map(Some)
            .map_err(|_| invalid("Bad Request").with_location("parameter", "timeMin")),
    }
}

fn max_results(p: &Params, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.non_empty("maxResults") {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(max).min(max)),
            _ => Err(invalid(&format!(
                "Invalid value '{v}'. Values must be within the range: [1, {max}]"
            ))),
        },
    }
}

/// Where an event body starts and ends (all-day dates at midnight in the calendar's zone).
pub fn event_range(body: &Map<String, Value>, cal_tz: &str) -> Option<(Timestamp, Timestamp)> {
    let tz = TimeZone::get(cal_tz).unwrap_or(TimeZone::UTC);
    let s = parse_event_time(body.get("start")?, cal_tz).ok()?;
    let e = parse_event_time(body.get("end")?, cal_tz).ok()?;
    Some((s.instant(&tz), e.instant(&tz)))
}

fn overlaps(
    range: Option<(Timestamp, Timestamp)>,
    min: Option<Timestamp>,
    max: Option<Timestamp>,
) -> bool {
    let Some((s, e)) = range else { return true };
    min.is_none_or(|m| e > m || (e == s && s >= m)) && max.is_none_or(|m| s < m)
}

fn ext_matches(body: &Map<String, Value>, kind: &str, filters: &[&str]) -> bool {
    filters.iter().all(|f| {
        let Some((k, v)) = f.split_once('=') else {
            return false;
        };
        body.get("extendedProperties")
            .and_then(|e| e.get(kind))
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            == Some(v)
    })
}

fn text_matches(body: &Map<String, Value>, q: &str) -> bool {
    let q = q.to_lowercase();
    let mut hay = String::new();
    for key in ["summary", "description", "location"] {
        if let Some(s) = str_field(body, key) {
            hay.push_str(&s.to_lowercase());
            hay.push('\n');
        }
    }
    if let Some(Value::Array(att)) = body.get("attendees") {
        for a in att {
            for key in ["email", "displayName"] {
                if let Some(s) = a.get(key).and_then(Value::as_str) {
                    hay.push_str(&s.to_lowercase());
                    hay.push('\n');
                }
            }
        }
    }
    q.split_whitespace().all(|w| hay.contains(w))
}

fn start_ms(body: &Map<String, Value>, cal_tz: &str) -> i128 {
    event_range(body, cal_tz)
        .map(|(s, _)| i128::from(s.as_millisecond()))
        .unwrap_or(0)
}

fn updated_ms(body: &Map<String, Value>) -> i128 {
    str_field(body, "updated")
        .and_then(|u| u.parse::<Timestamp>().ok())
        .map(|t| i128::from(t.as_millisecond()))
        .unwrap_or(0)
}

const SYNC_FORBIDDEN: &[&str] = &[
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

fn full_sync_required() -> ApiError {
    ApiError::new(
        S,
        StatusCode::GONE,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
    )
}

/// Looks up a Calendar sync token; 410 when unknown or invalidated.
fn sync_since(st: &State, cal: &Calendar, token: &str) -> Result<u64, ApiError> {
    match st.sync_tokens.get(token) {
        Some(c)
            if c.owner == cal.owner
                && c.collection == format!("cal:{}", cal.id)
                && c.epoch == cal.sync_epoch =>
        {
            Ok(c.seq)
        }
        _ => Err(full_sync_required()),
    }
}

/// The list envelope (`calendar#events`).
fn envelope(cal: &Calendar, items: Vec<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("kind".into(), json!("calendar#events"));
    out.insert("etag".into(), json!(cal.etag));
    out.insert("summary".into(), json!(cal.summary));
    out.insert("updated".into(), json!(rfc3339_millis(cal.updated)));
    out.insert("timeZone".into(), json!(cal.time_zone));
    out.insert("accessRole".into(), json!("owner"));
    out.insert(
        "defaultReminders".into(),
        json!([{"method": "popup", "minutes": 30}]),
    );
    out.insert("items".into(), Value::Array(items));
    out
}

/// The parameters of a list call a page token is bound to: every one but the page token
/// itself and the standard ones that only shape the answer (`fields`, `prettyPrint`, …).
fn call_signature(p: &Params) -> String {
    const FREE: &[&str] = &[
        "pageToken",
        "fields",
        "prettyPrint",
        "alt",
        "quotaUser",
        "key",
        "access_token",
        "oauth_token",
        "callback",
        "userIp",
        "upload_protocol",
        "uploadType",
        "$.xgafv",
    ];
    let mut kept: Vec<String> =
        p.0.iter()
            .filter(|(k, _)| !FREE.contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", crate::params::encode(k), crate::params::encode(v)))
            .collect();
    kept.sort();
    kept.join("&")
}

/// events.list
pub fn list(
    st: &mut State,
    now: Timestamp,
    horizon_days: i64,
    calendar_id: &str,
    p: &Params,
) -> Result<Value, ApiError> {
    let cal = st.calendars.get(calendar_id).ok_or_else(not_found)?;
    let max = max_results(p, 250, 2500)?;
    // A page token is bound to the call that minted it: the same calendar and the same other
    // parameters (as People documents for its lists; a page token sent with a changed
    // `timeMin`, `showDeleted`, `maxResults`, sync token… is refused).
    let collection = format!("cal:{}:events?{}", cal.id, call_signature(p));
    let cursor = page_cursor(st, p, &collection)?;
    let query = ListQuery::parse(
        st,
        cal,
        p,
        cursor.as_ref(),
        horizon_after(now, horizon_days),
    )?;
    let items = list_items(cal, &query);
    let snapshot = cursor.as_ref().map(|c| c.snapshot_seq).unwrap_or(cal.seq);
    let (page, next_key) = crate::paging::paginate(items, cursor.as_ref().map(|c| &c.after), max);
    let mut out = envelope(cal, page);
    let (epoch, cal_id, owner) = (cal.sync_epoch, cal.id.clone(), cal.owner.clone());
    match next_key {
        Some(after) => {
            let token = st.issue_page_token(PageCursor {
                collection,
                after,
                snapshot_seq: snapshot,
                since: query.since,
            });
            out.insert("nextPageToken".into(), json!(token));
        }
        None => {
            let token = st.issue_sync_token(SyncCursor {
                owner,
                collection: format!("cal:{cal_id}"),
                seq: snapshot,
                epoch,
                issued_at: now,
            });
            out.insert("nextSyncToken".into(), json!(token));
        }
    }
    Ok(Value::Object(out))
}

/// The cursor of the `pageToken` sent, if any: refused unless minted by this very call.
fn page_cursor(st: &State, p: &Params, collection: &str) -> Result<Option<PageCursor>, ApiError> {
    let Some(t) = p.non_empty("pageToken") else {
        return Ok(None);
    };
    st.page_tokens
        .get(t)
        .filter(|c| c.collection == collection)
        .cloned()
        .map(Some)
        .ok_or_else(|| invalid("Invalid page token value.").with_location("parameter", "pageToken"))
}

/// What an events.list call asks for, checked in the order Google checks it.
struct ListQuery<'p> {
    single: bool,
    show_deleted: bool,
    order_by: Option<&'p str>,
    time_min: Option<Timestamp>,
    time_max: Option<Timestamp>,
    updated_min: Option<Timestamp>,
    ical: Option<&'p str>,
    private: Vec<&'p str>,
    shared: Vec<&'p str>,
    q: Option<&'p str>,
    /// Only what changed after this sequence (a sync token's, or the page's).
    since: Option<u64>,
    /// How far recurring series are expanded.
    horizon: Timestamp,
}

impl<'p> ListQuery<'p> {
    fn parse(
        st: &State,
        cal: &Calendar,
        p: &'p Params,
        cursor: Option<&PageCursor>,
        default_horizon: Timestamp,
    ) -> Result<Self, ApiError> {
        let since = match p.non_empty("syncToken") {
            Some(token) => {
                if let Some(bad) = SYNC_FORBIDDEN.iter().find(|k| p.has(k)) {
                    return Err(invalid(&format!(
                        "The parameter {bad} cannot be used together with syncToken."
                    ))
                    .with_location("parameter", "syncToken"));
                }
                Some(sync_since(st, cal, token)?)
            }
            None => None,
        };
        let single = p.flag("singleEvents");
        let order_by = list_order(p, single)?;
        let (time_min, time_max) = time_window(p)?;
        Ok(Self {
            single,
            show_deleted: p.flag("showDeleted"),
            order_by,
            time_min,
            time_max,
            updated_min: parse_time_param(p, "updatedMin")?,
            ical: p.non_empty("iCalUID"),
            private: p.get_all("privateExtendedProperty"),
            shared: p.get_all("sharedExtendedProperty"),
            q: p.non_empty("q"),
            since: cursor.and_then(|c| c.since).or(since),
            horizon: time_max.unwrap_or(default_horizon),
        })
    }

    /// The filters other than the time window.
    fn passes(&self, body: &Map<String, Value>) -> bool {
        self.ical
            .is_none_or(|u| str_field(body, "iCalUID") == Some(u))
            && ext_matches(body, "private", &self.private)
            && ext_matches(body, "shared", &self.shared)
            && self.q.is_none_or(|q| text_matches(body, q))
            && self.updated_min.is_none_or(|m| {
                str_field(body, "updated")
                    .and_then(|u| u.parse::<Timestamp>().ok())
                    .is_some_and(|u| u >= m)
            })
    }

    /// Where an item sorts (and pages): by change for a sync, else by the order asked for.
    fn key(&self, cal: &Calendar, ev: &StoredEvent, body: &Map<String, Value>) -> SortKey {
        let id = str_field(body, "id").unwrap_or("").to_string();
        if self.since.is_some() {
            return (i128::from(ev.mod_seq), start_ms(body, &cal.time_zone), id);
        }
        match self.order_by {
            Some("startTime") => (start_ms(body, &cal.time_zone), 0, id),
            Some("updated") => (updated_ms(body), 0, id),
            _ => (i128::from(ev.order), start_ms(body, &cal.time_zone), id),
        }
    }

    fn in_window(&self, cal: &Calendar, body: &Map<String, Value>) -> bool {
        overlaps(
            event_range(body, &cal.time_zone),
            self.time_min,
            self.time_max,
        )
    }
}

/// `orderBy`: `startTime` only with `singleEvents`.
fn list_order(p: &Params, single: bool) -> Result<Option<&str>, ApiError> {
    let order_by = p.non_empty("orderBy");
    match order_by {
        None | Some("updated") => Ok(order_by),
        Some("startTime") if single => Ok(order_by),
        Some("startTime") => Err(invalid(
            "The requested ordering is not available for the particular query.",
        )
        .with_location("parameter", "orderBy")),
        Some(_) => Err(invalid("Invalid value for: orderBy").with_location("parameter", "orderBy")),
    }
}

/// `timeMin` and `timeMax`, refused when the range they make is empty.
fn time_window(p: &Params) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let time_min = parse_time_param(p, "timeMin")?;
    let time_max = parse_time_param(p, "timeMax")?;
    if let (Some(a), Some(b)) = (time_min, time_max) {
        if b <= a {
            return Err(time_range_empty().with_location("parameter", "timeMax"));
        }
    }
    Ok((time_min, time_max))
}

/// 400 `timeRangeEmpty`: a `timeMax` at or before its `timeMin` (events.list, freeBusy).
pub fn time_range_empty() -> ApiError {
    ApiError::new(
        S,
        StatusCode::BAD_REQUEST,
        "timeRangeEmpty",
        "The specified time range is empty.",
    )
}

/// Every item of the calendar the query selects, with its sort key.
fn list_items(cal: &Calendar, q: &ListQuery) -> Vec<(SortKey, Value)> {
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ev in cal.events.values() {
        match q.since {
            Some(s) if ev.mod_seq <= s => {}
            Some(_) => changed_items(cal, q, ev, &mut seen, &mut items),
            None => window_items(cal, q, ev, &mut items),
        }
    }
    items
}

/// A sync: an event changed since the token, cancelled ones too; with `singleEvents`, a
/// live series as its instances. No filter applies (Google refuses them with a sync token).
fn changed_items(
    cal: &Calendar,
    q: &ListQuery,
    ev: &StoredEvent,
    seen: &mut std::collections::HashSet<String>,
    items: &mut Vec<(SortKey, Value)>,
) {
    let body = &ev.body;
    if q.single && body.get("recurrence").is_some() && !ev.is_cancelled() {
        for inst in expand(cal, ev, q.horizon) {
            let k = q.key(cal, ev, &inst);
            if seen.insert(k.2.clone()) {
                items.push((k, Value::Object(inst)));
            }
        }
    } else if seen.insert(str_field(body, "id").unwrap_or("").to_string()) {
        items.push((q.key(cal, ev, body), Value::Object(body.clone())));
    }
}

/// A listing: an event in the time window that passes the filters (cancelled ones only with
/// `showDeleted`, except the cancelled exceptions of a live series, which Google lists).
fn window_items(
    cal: &Calendar,
    q: &ListQuery,
    ev: &StoredEvent,
    items: &mut Vec<(SortKey, Value)>,
) {
    let body = &ev.body;
    let is_exception = ev.recurring_event_id().is_some();
    let is_master = body.get("recurrence").is_some();
    if q.single {
        if is_exception {
            return;
        }
        if is_master && !ev.is_cancelled() {
            instance_items(cal, q, ev, items);
            return;
        }
        if ev.is_cancelled() && !q.show_deleted {
            return;
        }
    } else {
        let master_cancelled = ev
            .recurring_event_id()
            .and_then(|m| cal.events.get(m))
            .is_some_and(StoredEvent::is_cancelled);
        if master_cancelled && !q.show_deleted {
            return;
        }
        if ev.is_cancelled() && !is_exception && !q.show_deleted {
            return;
        }
    }
    let in_window = if is_master && !q.single {
        q.time_min.is_none() && q.time_max.is_none()
            || expand(cal, ev, q.horizon)
                .iter()
                .any(|i| q.in_window(cal, i))
    } else {
        q.in_window(cal, body)
    };
    if in_window && q.passes(body) {
        items.push((q.key(cal, ev, body), Value::Object(body.clone())));
    }
}

/// With `singleEvents`: a live series' instances in the window that pass the filters.
fn instance_items(
    cal: &Calendar,
    q: &ListQuery,
    ev: &StoredEvent,
    items: &mut Vec<(SortKey, Value)>,
) {
    for inst in expand(cal, ev, q.horizon) {
        let cancelled = inst.get("status").and_then(Value::as_str) == Some("cancelled");
        if cancelled && !q.show_deleted {
            continue;
        }
        if q.in_window(cal, &inst) && q.passes(&inst) {
            items.push((q.key(cal, ev, &inst), Value::Object(inst)));
        }
    }
}

/// events.instances
pub fn instances(
    st: &mut State,
    now: Timestamp,
    horizon_days: i64,
    calendar_id: &str,
    event_id: &str,
    p: &Params,
) -> Result<Value, ApiError> {
    let cal = st.calendars.get(calendar_id).ok_or_else(not_found)?;
    let master = cal.events.get(event_id).ok_or_else(not_found)?;
    let max = max_results(p, 250, 2500)?;
    let show_deleted = p.flag("showDeleted");
    let time_min = parse_time_param(p, "timeMin")?;
    let time_max = parse_time_param(p, "timeMax")?;
    let original_start = p.non_empty("originalStart");
    let collection = format!("cal:{}:instances:{event_id}?{}", cal.id, call_signature(p));
    let cursor = match p.non_empty("pageToken") {
        Some(t) => Some(
            st.page_tokens
                .get(t)
                .filter(|c| c.collection == collection)
                .cloned()
                .ok_or_else(|| invalid("Invalid page token value."))?,
        ),
        None => None,
    };
    let horizon = time_max.unwrap_or_else(|| horizon_after(now, horizon_days));
    let list: Vec<Map<String, Value>> = if master.body.get("recurrence").is_some() {
        expand(cal, master, horizon)
    } else {
        vec![master.body.clone()]
    };
    let items: Vec<(SortKey, Value)> = list
        .into_iter()
        .filter(|i| show_deleted || i.get("status").and_then(Value::as_str) != Some("cancelled"))
        .filter(|i| overlaps(event_range(i, &cal.time_zone), time_min, time_max))
        .filter(|i| {
            original_start.is_none_or(|o| {
                let want = o.parse::<Timestamp>().ok();
                i.get("originalStartTime")
                    .and_then(|v| parse_event_time(v, &cal.time_zone).ok())
                    .map(|w| Some(w.instant(&TimeZone::UTC)) == want)
                    .unwrap_or(false)
            })
        })
        .map(|i| {
            let k = (
                start_ms(&i, &cal.time_zone),
                0,
                str_field(&i, "id").unwrap_or("").to_string(),
            );
            (k, Value::Object(i))
        })
        .collect();
    let (page, next_key) = crate::paging::paginate(items, cursor.as_ref().map(|c| &c.after), max);
    let mut out = envelope(cal, page);
    let snapshot = cal.seq;
    if let Some(after) = next_key {
        let token = st.issue_page_token(PageCursor {
            collection,
            after,
            snapshot_seq: snapshot,
            since: None,
        });
        out.insert("nextPageToken".into(), json!(token));
    }
    Ok(Value::Object(out))
}
