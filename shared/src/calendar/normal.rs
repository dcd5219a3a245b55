//! The normalized form of an event: what both sides are compared in, and hashed. Two events
//! are "the same" for sync exactly when their normalized forms are equal — whatever
//! representation details (offsets, attendee order, line endings) differ.
//!
//! Covered: type (meeting / call), title, description, location, start/end (all-day dates, or
//! instants in UTC plus the IANA zone), attendees (by lower-cased e-mail, with name, response,
//! optional), recurrence lines, visibility. Not covered (presentation or Google-only):
//! colour, reminders, conference data, the organizer.

use super::model::{parse_instant, Attendee, CrmEvent, EventKind, EventTime, Response, Visibility};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

/// Keys of `extendedProperties.private` the product owns.
pub const PROP_TENANT: &str = "crmTenant";
pub const PROP_USER: &str = "crmUser";
pub const PROP_CRM_ID: &str = "crmId";
pub const PROP_TYPE: &str = "crmType";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Date(String),
    /// UTC, RFC 3339 with `Z`, second precision.
    Instant(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NAttendee {
    pub email: String,
    pub name: Option<String>,
    pub response: Response,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    pub kind: EventKind,
    pub title: String,
    pub description: String,
    pub location: String,
    pub start: When,
    pub end: When,
    pub time_zone: Option<String>,
    pub attendees: Vec<NAttendee>,
    pub recurrence: Vec<String>,
    pub visibility: Visibility,
}

fn text(v: Option<&str>) -> String {
    v.unwrap_or("").replace("\r\n", "\n").trim_end().to_owned()
}

fn instant_utc(s: &str) -> Option<String> {
    let t = parse_instant(s)?.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).ok()?;
    t.format(&Rfc3339).ok()
}

fn when_from_crm(t: &EventTime) -> When {
    match (&t.date, &t.date_time) {
        (Some(d), _) => When::Date(d.clone()),
        (None, Some(dt)) => When::Instant(instant_utc(dt).unwrap_or_else(|| dt.clone())),
        (None, None) => When::Date(String::new()),
    }
}

fn normalize_attendees(mut list: Vec<NAttendee>) -> Vec<NAttendee> {
    for a in &mut list {
        a.email = a.email.trim().to_lowercase();
        a.name = a
            .name
            .take()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
    }
    list.sort_by(|a, b| a.email.cmp(&b.email));
    list.dedup_by(|a, b| a.email == b.email);
    list
}

fn normalize_recurrence(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    out.sort();
    out
}

impl Normalized {
    pub fn from_crm(e: &CrmEvent) -> Self {
        Self {
            kind: e.kind,
            title: e.title.trim().to_owned(),
            description: text(e.description.as_deref()),
            location: text(e.location.as_deref()),
            start: when_from_crm(&e.start),
            end: when_from_crm(&e.end),
            time_zone: match &e.start.date_time {
                Some(_) => e.time_zone.clone(),
                None => None,
            },
            attendees: normalize_attendees(
                e.attendees
                    .iter()
                    .map(|a| NAttendee {
                        email: a.email.clone(),
                        name: a.name.clone(),
                        response: a.response,
                        optional: a.optional,
                    })
                    .collect(),
            ),
            recurrence: normalize_recurrence(&e.recurrence),
            visibility: e.visibility,
        }
    }

    /// From a Google Calendar event resource (JSON as the API returns it).
    pub fn from_google(g: &Value) -> Self {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let when = |v: &Value| match (v["date"].as_str(), v["dateTime"].as_str()) {
            (Some(d), _) => When::Date(d.to_owned()),
            (None, Some(dt)) => When::Instant(instant_utc(dt).unwrap_or_else(|| dt.to_owned())),
            _ => When::Date(String::new()),
        };
        let timed = g["start"]["dateTime"].is_string();
        let attendees = g["attendees"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|a| a["resource"].as_bool() != Some(true))
                    .filter_map(|a| {
                        Some(NAttendee {
                            email: a["email"].as_str()?.to_owned(),
                            name: s(&a["displayName"]),
                            response: Response::parse(a["responseStatus"].as_str().unwrap_or("")),
                            optional: a["optional"].as_bool().unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let recurrence: Vec<String> = g["recurrence"]
            .as_array()
            .map(|l| l.iter().filter_map(s).collect())
            .unwrap_or_default();
        Self {
            kind: g["extendedProperties"]["private"][PROP_TYPE]
                .as_str()
                .and_then(EventKind::parse)
                .unwrap_or_default(),
            title: g["summary"].as_str().unwrap_or("").trim().to_owned(),
            description: text(g["description"].as_str()),
            location: text(g["location"].as_str()),
            start: when(&g["start"]),
            end: when(&g["end"]),
            time_zone: if timed {
                s(&g["start"]["timeZone"]).or_else(|| s(&g["end"]["timeZone"]))
            } else {
                None
            },
            attendees: normalize_attendees(attendees),
            recurrence: normalize_recurrence(&recurrence),
            visibility: Visibility::parse(g["visibility"].as_str().unwrap_or("default")),
        }
    }

    /// SHA-256 of the canonical JSON (fields in declaration order), hex.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        crate::crypto::sha256_hex(&bytes)
    }

    fn google_time(&self, w: &When) -> Value {
        match w {
            When::Date(d) => json!({"date": d, "dateTime": null, "timeZone": null}),
            When::Instant(i) => {
                let mut v = json!({"dateTime": i, "date": null});
                if let Some(tz) = &self.time_zone {
                    v["timeZone"] = json!(tz);
                }
                v
            }
        }
    }

    /// The fields the product owns, as a Google event body: what an insert sends, and what a
    /// patch sends (nothing else is touched, so Google-side additions survive).
    pub fn to_google(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("summary".into(), json!(self.title));
        m.insert("description".into(), json!(self.description));
        m.insert("location".into(), json!(self.location));
        m.insert("start".into(), self.google_time(&self.start));
        m.insert("end".into(), self.google_time(&self.end));
        m.insert(
            "attendees".into(),
            Value::Array(
                self.attendees
                    .iter()
                    .map(|a| {
                        let mut v =
                            json!({"email": a.email, "responseStatus": a.response.as_str()});
                        if let Some(n) = &a.name {
                            v["displayName"] = json!(n);
                        }
                        if a.optional {
                            v["optional"] = json!(true);
                        }
                        v
                    })
                    .collect(),
            ),
        );
        // `null` (not `[]`): a patch clears the field, an insert leaves it out.
        m.insert(
            "recurrence".into(),
            if self.recurrence.is_empty() {
                Value::Null
            } else {
                json!(self.recurrence)
            },
        );
        m.insert("visibility".into(), json!(self.visibility.as_str()));
        m
    }

    /// The event as the CRM receives it in the change feed.
    pub fn to_crm(&self) -> CrmEvent {
        let time = |w: &When| match w {
            When::Date(d) => EventTime {
                date: Some(d.clone()),
                date_time: None,
            },
            When::Instant(i) => EventTime {
                date: None,
                date_time: Some(i.clone()),
            },
        };
        CrmEvent {
            kind: self.kind,
            title: self.title.clone(),
            description: Some(self.description.clone()).filter(|d| !d.is_empty()),
            location: Some(self.location.clone()).filter(|l| !l.is_empty()),
            start: time(&self.start),
            end: time(&self.end),
            time_zone: self.time_zone.clone(),
            attendees: self
                .attendees
                .iter()
                .map(|a| Attendee {
                    email: a.email.clone(),
                    name: a.name.clone(),
                    response: a.response,
                    optional: a.optional,
                })
                .collect(),
            recurrence: self.recurrence.clone(),
            visibility: self.visibility,
            version: None,
            updated_at: None,
            google_event_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crm(v: Value) -> CrmEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn representation_details_do_not_change_the_hash() {
        let a = crm(json!({
            "title": "Sync ", "description": "line 1\r\nline 2\n",
            "start": {"date_time": "2026-03-01T10:00:00+01:00"},
            "end": {"date_time": "2026-03-01T11:00:00+01:00"}, "time_zone": "Europe/Paris",
            "attendees": [{"email": "B@x.com", "response": "accepted"}, {"email": "a@x.com"}]
        }));
        let b = crm(json!({
            "title": "Sync", "description": "line 1\nline 2",
            "start": {"date_time": "2026-03-01T09:00:00Z"},
            "end": {"date_time": "2026-03-01T04:00:00-06:00"}, "time_zone": "Europe/Paris",
            "attendees": [{"email": "a@x.com"}, {"email": "b@x.com", "response": "accepted"}]
        }));
        assert_eq!(
            Normalized::from_crm(&a).hash(),
            Normalized::from_crm(&b).hash()
        );
        let mut c = b.clone();
        c.attendees[1].response = Response::Declined;
        assert_ne!(
            Normalized::from_crm(&a).hash(),
            Normalized::from_crm(&c).hash()
        );
    }

    #[test]
    fn crm_to_google_to_crm_is_stable() {
        let e = crm(json!({
            "type": "call", "title": "Call — Zoë 東京", "location": "Tokyo",
            "start": {"date": "2026-03-01"}, "end": {"date": "2026-03-02"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"], "visibility": "private",
            "attendees": [{"email": "x@y.com", "name": "X", "response": "tentative", "optional": true}]
        }));
        let n = Normalized::from_crm(&e);
        let mut g = Value::Object(n.to_google());
        g["extendedProperties"] = json!({"private": {PROP_TYPE: "call"}});
        assert_eq!(Normalized::from_google(&g), n);
        assert_eq!(Normalized::from_crm(&n.to_crm()), n);
    }
}
