//! A CRM meeting, call or task as the CRM sends it (`PUT /v1/users/{user}/events/{crm_id}`),
//! validated strictly at the edge.

use crate::domain::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    Meeting,
    Call,
    /// A to-do with a due date or time: a calendar item that does not make its owner busy,
    /// its title marked `✓` in Google once done (see `CrmEvent::done`).
    Task,
}

impl EventKind {
    /// Every kind, in the order the console shows them.
    pub const ALL: [EventKind; 3] = [EventKind::Meeting, EventKind::Call, EventKind::Task];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Meeting => "meeting",
            EventKind::Call => "call",
            EventKind::Task => "task",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Default,
    Public,
    Private,
    Confidential,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Default => "default",
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Confidential => "confidential",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "public" => Visibility::Public,
            "private" => Visibility::Private,
            "confidential" => Visibility::Confidential,
            _ => Visibility::Default,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    #[default]
    NeedsAction,
    Declined,
    Tentative,
    Accepted,
}

impl Response {
    pub fn as_str(self) -> &'static str {
        match self {
            Response::NeedsAction => "needsAction",
            Response::Declined => "declined",
            Response::Tentative => "tentative",
            Response::Accepted => "accepted",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "declined" => Response::Declined,
            "tentative" => Response::Tentative,
            "accepted" => Response::Accepted,
            _ => Response::NeedsAction,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attendee {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub response: Response,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// A start or end: a date (all-day, end exclusive) or an instant with its UTC offset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
}

impl EventTime {
    /// Neither a date nor a date-time: left out (a task's end).
    pub fn is_empty(&self) -> bool {
        self.date.is_none() && self.date_time.is_none()
    }
}

/// A change to one occurrence of a recurring series: moved, edited or cancelled. Fields left
/// out are the series' own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmException {
    /// The occurrence's start as the series' rule gives it (what identifies the occurrence).
    pub original_start: EventTime,
    /// The occurrence does not take place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Moved: the occurrence's new start and end (both, or neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<Attendee>>,
}

/// A CRM event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmEvent {
    #[serde(rename = "type", default)]
    pub kind: EventKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A task's due date (all-day) or due time.
    pub start: EventTime,
    /// Required but for a task, whose end defaults to its due date's next day (a due date)
    /// or to its due time (a due time: an item of no length).
    #[serde(default, skip_serializing_if = "EventTime::is_empty")]
    pub end: EventTime,
    /// IANA time zone of a timed event (`Europe/Paris`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<Attendee>,
    /// `RRULE:`, `EXDATE`, `RDATE` lines of a recurring series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurrence: Vec<String>,
    /// Occurrences of the series that differ from the rule (moved, edited, cancelled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<CrmException>,
    #[serde(default)]
    pub visibility: Visibility,
    /// A task is done (only tasks: in Google its title starts with `✓ `, which a Google user
    /// may add or remove to tick it or not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// The CRM's own version of the record (any string that changes with each edit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the CRM last modified it (decides "latest wins" conflicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Links the record to an existing Google event (e.g. one the CRM learned from the feed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_event_id: Option<String>,
}

pub const MAX_TITLE: usize = 1024;
pub const MAX_DESCRIPTION: usize = 8192;
pub const MAX_LOCATION: usize = 1024;
pub const MAX_ATTENDEES: usize = 500;
pub const MAX_RECURRENCE_LINES: usize = 50;
pub const MAX_EXCEPTIONS: usize = 200;

/// A calendar date as the API and Google write it: `YYYY-MM-DD`.
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Parses a date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s, DATE).ok()
}

/// Writes a date `YYYY-MM-DD`.
pub fn format_date(d: time::Date) -> String {
    d.format(DATE).unwrap_or_default()
}

/// Parses an RFC 3339 instant with an explicit offset.
pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Whether `name` is an IANA time zone.
pub fn valid_time_zone(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && jiff::tz::TimeZone::get(name).is_ok()
}

fn check_time(field: &str, t: &EventTime) -> Result<(), Invalid> {
    match (&t.date, &t.date_time) {
        (Some(d), None) => parse_date(d)
            .map(|_| ())
            .ok_or_else(|| invalid(format!("{field}.date must be YYYY-MM-DD"))),
        (None, Some(dt)) => parse_instant(dt).map(|_| ()).ok_or_else(|| {
            invalid(format!(
                "{field}.date_time must be RFC 3339 with an offset (2026-03-01T10:00:00+01:00)"
            ))
        }),
        _ => Err(invalid(format!(
            "{field} needs exactly one of date or date_time"
        ))),
    }
}

fn clean_text(field: &str, v: &str, max: usize) -> Result<(), Invalid> {
    if v.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(())
}

/// A start and an end: both dates or both date-times, the end after the start.
fn check_span(prefix: &str, start: &EventTime, end: &EventTime) -> Result<(), Invalid> {
    check_span_of(prefix, start, end, false)
}

/// A span's checks; `instant_ok`: a timed span may be of no length (a task due at a time).
fn check_span_of(
    prefix: &str,
    start: &EventTime,
    end: &EventTime,
    instant_ok: bool,
) -> Result<(), Invalid> {
    check_time(&format!("{prefix}start"), start)?;
    check_time(&format!("{prefix}end"), end)?;
    match (&start.date, &end.date, &start.date_time, &end.date_time) {
        (Some(s), Some(e), None, None) => {
            if parse_date(e) <= parse_date(s) {
                return Err(invalid(format!(
                    "{prefix}end.date must be after {prefix}start.date (the end date is exclusive)"
                )));
            }
        }
        (None, None, Some(s), Some(e)) => {
            let (s, e) = (parse_instant(s), parse_instant(e));
            if e < s || (e == s && !instant_ok) {
                return Err(invalid(format!("{prefix}end must be after {prefix}start")));
            }
        }
        _ => {
            return Err(invalid(format!(
                "{prefix}start and {prefix}end must both be dates or both be date-times"
            )))
        }
    }
    Ok(())
}

fn check_attendees(prefix: &str, attendees: &[Attendee]) -> Result<(), Invalid> {
    if attendees.len() > MAX_ATTENDEES {
        return Err(invalid(format!(
            "{prefix}attendees: at most {MAX_ATTENDEES}"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for a in attendees {
        crate::domain::validate::email(&format!("{prefix}attendees[].email"), &a.email)?;
        if !seen.insert(a.email.to_lowercase()) {
            return Err(invalid(format!(
                "{prefix}attendees: {} appears twice",
                a.email
            )));
        }
        if let Some(n) = &a.name {
            clean_text(&format!("{prefix}attendees[].name"), n, 256)?;
        }
    }
    Ok(())
}

impl CrmEvent {
    fn validate_exceptions(&self) -> Result<(), Invalid> {
        if self.exceptions.is_empty() {
            return Ok(());
        }
        if self.recurrence.is_empty() {
            return Err(invalid("exceptions need a recurring series (recurrence)"));
        }
        if self.exceptions.len() > MAX_EXCEPTIONS {
            return Err(invalid(format!("at most {MAX_EXCEPTIONS} exceptions")));
        }
        let all_day = self.start.date.is_some();
        let mut seen = std::collections::HashSet::new();
        for (i, x) in self.exceptions.iter().enumerate() {
            let p = format!("exceptions[{i}].");
            check_time(&format!("{p}original_start"), &x.original_start)?;
            if x.original_start.date.is_some() != all_day {
                return Err(invalid(format!(
                    "{p}original_start must be a {} like the series' start",
                    if all_day { "date" } else { "date_time" }
                )));
            }
            let key = match (&x.original_start.date, &x.original_start.date_time) {
                (Some(d), _) => d.clone(),
                (None, Some(dt)) => parse_instant(dt)
                    .map(|t| t.unix_timestamp().to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            if !seen.insert(key) {
                return Err(invalid(format!(
                    "{p}original_start: the occurrence appears twice"
                )));
            }
            let overrides = x.title.is_some()
                || x.description.is_some()
                || x.location.is_some()
                || x.start.is_some()
                || x.end.is_some()
                || x.attendees.is_some();
            if x.cancelled && overrides {
                return Err(invalid(format!(
                    "{p}: a cancelled occurrence has no other fields"
                )));
            }
            if let Some(t) = &x.title {
                if t.trim().is_empty() {
                    return Err(invalid(format!("{p}title must not be empty")));
                }
                clean_text(&format!("{p}title"), t, MAX_TITLE)?;
            }
            if let Some(d) = &x.description {
                clean_text(&format!("{p}description"), d, MAX_DESCRIPTION)?;
            }
            if let Some(l) = &x.location {
                clean_text(&format!("{p}location"), l, MAX_LOCATION)?;
            }
            match (&x.start, &x.end) {
                (Some(s), Some(e)) => {
                    check_span(&p, s, e)?;
                    if s.date.is_some() != all_day {
                        return Err(invalid(format!(
                            "{p}start and end must be of the series' kind (dates or date-times)"
                        )));
                    }
                }
                (None, None) => {}
                _ => {
                    return Err(invalid(format!(
                        "{p}start and end come together (a moved occurrence needs both)"
                    )))
                }
            }
            if let Some(a) = &x.attendees {
                check_attendees(&p, a)?;
            }
        }
        Ok(())
    }

    /// The end, or a task's when the CRM left it out: the day after a due date, the due time
    /// itself.
    pub fn end_or_due(&self) -> EventTime {
        if !self.end.is_empty() || self.kind != EventKind::Task {
            return self.end.clone();
        }
        match &self.start.date {
            Some(d) => EventTime {
                date: parse_date(d).and_then(|d| d.next_day()).map(format_date),
                date_time: None,
            },
            None => self.start.clone(),
        }
    }

    /// Strict validation: what Google would refuse, or would silently change, is refused here.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.title.trim().is_empty() {
            return Err(invalid("title must not be empty"));
        }
        clean_text("title", &self.title, MAX_TITLE)?;
        if let Some(d) = &self.description {
            clean_text("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(l) = &self.location {
            clean_text("location", l, MAX_LOCATION)?;
        }
        if self.done && self.kind != EventKind::Task {
            return Err(invalid("done is for tasks (type task) only"));
        }
        // A task's end, left out, is its due date's next day or its due time: checked too.
        let task = self.kind == EventKind::Task;
        let end = self.end_or_due();
        if task && end.is_empty() && self.start.date.is_some() {
            check_time("start", &self.start)?;
            return Err(invalid(
                "start.date is the last day there is: a task needs a next day",
            ));
        }
        check_span_of("", &self.start, &end, task)?;
        if let Some(tz) = &self.time_zone {
            if !valid_time_zone(tz) {
                return Err(invalid(format!(
                    "time_zone {tz:?} is not an IANA time zone"
                )));
            }
        } else if !self.recurrence.is_empty() && self.start.date_time.is_some() {
            return Err(invalid("a recurring timed event needs a time_zone"));
        }
        check_attendees("", &self.attendees)?;
        if self.recurrence.len() > MAX_RECURRENCE_LINES {
            return Err(invalid(format!(
                "at most {MAX_RECURRENCE_LINES} recurrence lines"
            )));
        }
        let mut rrules = 0;
        for line in &self.recurrence {
            let upper = line.trim().to_ascii_uppercase();
            let ok = upper.starts_with("RRULE:")
                || upper.starts_with("EXDATE")
                || upper.starts_with("RDATE");
            if !ok || line.len() > 2048 || line.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "recurrence line {line:?}: expected RRULE:, EXDATE or RDATE (RFC 5545)"
                )));
            }
            if upper.starts_with("RRULE:") {
                rrules += 1;
                if !upper.contains("FREQ=") {
                    return Err(invalid(format!("recurrence line {line:?} has no FREQ")));
                }
            }
        }
        if rrules > 1 {
            return Err(invalid("a series has at most one RRULE"));
        }
        self.validate_exceptions()?;
        if let Some(u) = &self.updated_at {
            if parse_instant(u).is_none() {
                return Err(invalid("updated_at must be RFC 3339"));
            }
        }
        if let Some(v) = &self.version {
            clean_text("version", v, 128)?;
        }
        if let Some(id) = &self.google_event_id {
            if id.is_empty()
                || id.len() > 1024
                || id.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid("google_event_id is not a Google event id"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exception(v: serde_json::Value) -> CrmException {
        serde_json::from_value(v).unwrap()
    }

    fn meeting() -> CrmEvent {
        serde_json::from_value(serde_json::json!({
            "type": "meeting", "title": "Kick-off",
            "start": {"date_time": "2026-03-01T10:00:00+01:00"},
            "end": {"date_time": "2026-03-01T11:00:00+01:00"},
            "time_zone": "Europe/Paris"
        }))
        .unwrap()
    }

    #[test]
    fn valid_events_pass() {
        meeting().validate().unwrap();
        let mut series = meeting();
        series.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=4".into()];
        series.exceptions = vec![
            exception(
                json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "cancelled": true}),
            ),
            exception(
                json!({"original_start": {"date_time": "2026-03-15T10:00:00+01:00"}, "start": {"date_time": "2026-03-15T12:00:00+01:00"}, "end": {"date_time": "2026-03-15T13:00:00+01:00"}, "title": "Moved"}),
            ),
        ];
        series.validate().unwrap();
        let mut all_day = meeting();
        all_day.start = EventTime {
            date: Some("2026-03-01".into()),
            date_time: None,
        };
        all_day.end = EventTime {
            date: Some("2026-03-02".into()),
            date_time: None,
        };
        all_day.validate().unwrap();
    }

    #[test]
    fn bad_events_are_refused() {
        type Mutation = Box<dyn Fn(&mut CrmEvent)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|e| e.title = "  ".into()),
            Box::new(|e| e.end.date_time = Some("2026-03-01T09:00:00+01:00".into())),
            Box::new(|e| e.start.date_time = Some("2026-03-01 10:00".into())),
            Box::new(|e| e.start.date = Some("2026-03-01".into())),
            Box::new(|e| e.time_zone = Some("Mars/Olympus".into())),
            Box::new(|e| e.recurrence = vec!["FREQ=DAILY".into()]),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=DAILY".into(), "RRULE:FREQ=WEEKLY".into()]
            }),
            Box::new(|e| {
                e.attendees = vec![
                    Attendee {
                        email: "a@x.com".into(),
                        name: None,
                        response: Response::Accepted,
                        optional: false,
                    },
                    Attendee {
                        email: "A@x.com".into(),
                        name: None,
                        response: Response::Accepted,
                        optional: false,
                    },
                ]
            }),
            Box::new(|e| e.title = "a\u{0}b".into()),
            // Exceptions: only on a series; well-formed, unique, consistent.
            Box::new(|e| {
                e.exceptions = vec![exception(
                    json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "cancelled": true}),
                )]
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![exception(
                    json!({"original_start": {"date": "2026-03-08"}, "cancelled": true}),
                )];
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![
                    exception(
                        json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "cancelled": true}),
                    ),
                    exception(
                        json!({"original_start": {"date_time": "2026-03-08T09:00:00Z"}, "title": "x"}),
                    ),
                ];
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![exception(
                    json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "cancelled": true, "title": "x"}),
                )];
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![exception(
                    json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "start": {"date_time": "2026-03-08T11:00:00+01:00"}}),
                )];
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![exception(
                    json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "start": {"date_time": "2026-03-08T11:00:00+01:00"}, "end": {"date_time": "2026-03-08T10:30:00+01:00"}}),
                )];
            }),
            Box::new(|e| {
                e.recurrence = vec!["RRULE:FREQ=WEEKLY".into()];
                e.exceptions = vec![exception(
                    json!({"original_start": {"date_time": "2026-03-08T10:00:00+01:00"}, "title": " "}),
                )];
            }),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut e = meeting();
            mutate(&mut e);
            assert!(e.validate().is_err(), "case {i} accepted");
        }
        assert!(serde_json::from_value::<CrmEvent>(
            serde_json::json!({"title": "x", "start": {}, "end": {}, "bogus": 1})
        )
        .is_err());
    }

    #[test]
    fn tasks_take_a_due_date_or_time_and_only_tasks_are_done() {
        let task = |v: serde_json::Value| serde_json::from_value::<CrmEvent>(v).unwrap();
        let due_date = task(serde_json::json!({
            "type": "task", "title": "Send the quote", "start": {"date": "2026-03-31"},
            "done": true
        }));
        assert!(due_date.validate().is_ok());
        assert_eq!(due_date.end_or_due().date.as_deref(), Some("2026-04-01"));
        let due_time = task(serde_json::json!({
            "type": "task", "title": "Call back", "start": {"date_time": "2026-03-31T15:00:00Z"}
        }));
        assert!(due_time.validate().is_ok());
        assert_eq!(due_time.end_or_due(), due_time.start);
        // A meeting still needs its end, after its start; and is never done.
        let mut no_end = meeting();
        no_end.end = EventTime::default();
        assert!(no_end.validate().unwrap_err().to_string().contains("end"));
        let mut instant = meeting();
        instant.end = instant.start.clone();
        assert!(instant.validate().is_err());
        let mut done = meeting();
        done.done = true;
        assert!(done.validate().unwrap_err().to_string().contains("done"));
        let last_day = task(serde_json::json!({
            "type": "task", "title": "x", "start": {"date": "9999-12-31"}
        }));
        assert!(last_day
            .validate()
            .unwrap_err()
            .to_string()
            .contains("start.date"));
        let bad_due = task(serde_json::json!({
            "type": "task", "title": "x", "start": {"date": "2026-02-30"}
        }));
        assert!(bad_due
            .validate()
            .unwrap_err()
            .to_string()
            .contains("start"));
    }
}
