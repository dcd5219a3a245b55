//! The normalized form of an event: what both sides are compared in, and hashed. Two events
//! are "the same" for sync exactly when their normalized forms are equal — whatever
//! representation details (offsets, attendee order, line endings) differ.
//!
//! Covered: type (meeting / call), title, description, location, start/end (all-day dates, or
//! instants in UTC plus the IANA zone), attendees (by lower-cased e-mail, with name, response,
//! optional), recurrence lines, visibility. Not covered (presentation or Google-only):
//! colour, reminders, conference data, the organizer.

use super::model::{
    parse_date, parse_instant, Attendee, CrmEvent, CrmException, EventKind, EventTime, Response,
    Visibility,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

/// Keys of `extendedProperties.private` the product owns.
pub const PROP_TENANT: &str = "crmTenant";
pub const PROP_USER: &str = "crmUser";
pub const PROP_CRM_ID: &str = "crmId";
pub const PROP_TYPE: &str = "crmType";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Occurrences of a series that differ from its rule, sorted by original start. Left out
    /// of the JSON when empty, so the hash of a plain event is what it always was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<NException>,
    /// A task is done. Left out of the JSON when false, so the hash of a meeting, or of a
    /// task not done, is what it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

/// What marks a done task's title in Google: the product writes `✓ `; a Google user who
/// types `✓` or `✔` at the start of the title ticks it, one who removes it unticks it.
pub const DONE_MARK: &str = "\u{2713} ";
const DONE_MARKS: [char; 2] = ['\u{2713}', '\u{2714}'];

/// A task's title as Google shows it, read back: (the title, done).
fn task_title(summary: &str) -> (String, bool) {
    match summary.trim().strip_prefix(DONE_MARKS) {
        Some(rest) => (rest.trim().to_owned(), true),
        None => (summary.trim().to_owned(), false),
    }
}

/// One occurrence of a series that differs from the rule, in canonical form: only what
/// differs from the series (a field equal to the series' own is left out; start and end are
/// kept only when the occurrence moved or changed length), so a CRM exception and the Google
/// instance it became compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NException {
    pub original_start: When,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<When>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<When>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<NAttendee>>,
}

impl NException {
    /// The occurrence as the rule has it (no exception).
    pub fn plain(original_start: When) -> Self {
        Self {
            original_start,
            cancelled: false,
            title: None,
            description: None,
            location: None,
            start: None,
            end: None,
            attendees: None,
        }
    }
}

/// An occurrence with every field filled in (before canonicalization).
struct Occurrence {
    original_start: When,
    cancelled: bool,
    title: String,
    description: String,
    location: String,
    start: When,
    end: When,
    attendees: Vec<NAttendee>,
}

/// `w + (to - from)`: where an occurrence starting at `w` ends, for a series running from
/// `from` to `to`.
fn shifted(w: &When, from: &When, to: &When) -> Option<When> {
    match (w, from, to) {
        (When::Date(w), When::Date(f), When::Date(t)) => {
            let days = parse_date(t)? - parse_date(f)?;
            let end = parse_date(w)?.checked_add(days)?;
            Some(When::Date(end.to_string()))
        }
        (When::Instant(w), When::Instant(f), When::Instant(t)) => {
            let len = parse_instant(t)? - parse_instant(f)?;
            let end = parse_instant(w)?.checked_add(len)?;
            Some(When::Instant(end.format(&Rfc3339).ok()?))
        }
        _ => None,
    }
}

/// The suffix Google gives an occurrence's instance id (`{series id}_{suffix}`): the original
/// start as `YYYYMMDD` (all-day) or `YYYYMMDDTHHMMSSZ` (UTC).
pub fn instance_suffix(original_start: &When) -> Option<String> {
    match original_start {
        When::Date(d) => {
            parse_date(d)?;
            Some(d.replace('-', ""))
        }
        When::Instant(i) => {
            let t = parse_instant(i)?.to_offset(time::UtcOffset::UTC);
            Some(format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ))
        }
    }
}

fn text(v: Option<&str>) -> String {
    v.unwrap_or("").replace("\r\n", "\n").trim_end().to_owned()
}

/// Google's `description` "can contain HTML" (discovery `Event.description`; the Calendar web
/// UI saves rich text and links as HTML): read as the plain text the CRM holds — line breaks
/// for `<br>` and block ends, `- ` for list items, a link as its text with the address in
/// brackets, entities decoded, other tags dropped. A description without markup is kept as
/// it is (a literal `a < b` stays).
pub fn description_text(v: Option<&str>) -> String {
    let raw = v.unwrap_or("");
    if !looks_like_html(raw) {
        return text(Some(raw));
    }
    let mut out = String::new();
    let mut link: Option<(String, usize)> = None;
    let mut rest = raw;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&decode_entities(&rest[open..]));
            rest = "";
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let newline = |out: &mut String| {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
        };
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("p" | "div" | "ul" | "ol" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6", _) => {
                newline(&mut out)
            }
            ("li", false) => {
                newline(&mut out);
                out.push_str("- ");
            }
            ("a", false) => link = href(tag).map(|h| (h, out.len())),
            ("a", true) => {
                if let Some((h, at)) = link.take() {
                    let shown = out.get(at..).unwrap_or("").trim().to_owned();
                    if !h.is_empty() && shown != h {
                        out.push_str(&format!(" ({h})"));
                    }
                }
            }
            _ => {}
        }
    }
    out.push_str(&decode_entities(rest));
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut joined = lines.join("\n");
    while joined.contains("\n\n\n") {
        joined = joined.replace("\n\n\n", "\n\n");
    }
    joined.trim().to_owned()
}

fn looks_like_html(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    [
        "<br", "<p>", "<p ", "</p>", "<a href", "</a>", "<b>", "</b>", "<i>", "</i>", "<u>",
        "<ul>", "<ol>", "<li>", "<span", "<div", "<strong>", "<em>",
    ]
    .iter()
    .any(|t| lower.contains(t))
}

fn href(tag: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find("href=")? + 5;
    let value = &tag[at..];
    let quote = value.chars().next()?;
    let inner = if quote == '"' || quote == '\'' {
        value[1..].split(quote).next()?
    } else {
        value.split(char::is_whitespace).next()?
    };
    Some(decode_entities(inner))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
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

/// A Google `EventDateTime`.
fn when_of(v: &Value) -> When {
    match (v["date"].as_str(), v["dateTime"].as_str()) {
        (Some(d), _) => When::Date(d.to_owned()),
        (None, Some(dt)) => When::Instant(instant_utc(dt).unwrap_or_else(|| dt.to_owned())),
        _ => When::Date(String::new()),
    }
}

impl From<&Attendee> for NAttendee {
    fn from(a: &Attendee) -> Self {
        NAttendee {
            email: a.email.clone(),
            name: a.name.clone(),
            response: a.response,
            optional: a.optional,
        }
    }
}

impl From<&NAttendee> for Attendee {
    fn from(a: &NAttendee) -> Self {
        Attendee {
            email: a.email.clone(),
            name: a.name.clone(),
            response: a.response,
            optional: a.optional,
        }
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
            end: when_from_crm(&e.end_or_due()),
            time_zone: match &e.start.date_time {
                Some(_) => e.time_zone.clone(),
                None => None,
            },
            attendees: normalize_attendees(e.attendees.iter().map(NAttendee::from).collect()),
            recurrence: normalize_recurrence(&e.recurrence),
            visibility: e.visibility,
            exceptions: Vec::new(),
            done: e.done,
        }
        .with_exceptions(e.exceptions.iter().map(|x| {
            move |series: &Normalized| {
                let original_start = when_from_crm(&x.original_start);
                let start = x.start.as_ref().map(when_from_crm);
                let end = x.end.as_ref().map(when_from_crm);
                Occurrence {
                    title: x
                        .title
                        .as_deref()
                        .map_or_else(|| series.title.clone(), |t| t.trim().to_owned()),
                    description: x
                        .description
                        .as_deref()
                        .map_or_else(|| series.description.clone(), |d| text(Some(d))),
                    location: x
                        .location
                        .as_deref()
                        .map_or_else(|| series.location.clone(), |l| text(Some(l))),
                    end: end
                        .or_else(|| series.occurrence_end(&original_start))
                        .unwrap_or_else(|| original_start.clone()),
                    start: start.unwrap_or_else(|| original_start.clone()),
                    attendees: x.attendees.as_ref().map_or_else(
                        || series.attendees.clone(),
                        |a| normalize_attendees(a.iter().map(NAttendee::from).collect()),
                    ),
                    cancelled: x.cancelled,
                    original_start,
                }
            }
        }))
    }

    /// A series with its exceptions: each occurrence is built against the series and kept,
    /// in canonical form, only if it differs from it.
    fn with_exceptions<F>(mut self, occurrences: impl Iterator<Item = F>) -> Self
    where
        F: FnOnce(&Normalized) -> Occurrence,
    {
        let mut list: Vec<NException> = occurrences
            .filter_map(|build| self.canonical(build(&self)))
            .collect();
        list.sort_by(|a, b| a.original_start.cmp(&b.original_start));
        list.dedup_by(|a, b| a.original_start == b.original_start);
        self.exceptions = list;
        self
    }

    /// Where an occurrence starting at `original_start` ends by the rule.
    fn occurrence_end(&self, original_start: &When) -> Option<When> {
        shifted(original_start, &self.start, &self.end)
    }

    fn canonical(&self, o: Occurrence) -> Option<NException> {
        if o.cancelled {
            return Some(NException {
                cancelled: true,
                ..NException::plain(o.original_start)
            });
        }
        let default_end = self.occurrence_end(&o.original_start);
        let moved = o.start != o.original_start || Some(&o.end) != default_end.as_ref();
        let x = NException {
            title: (o.title != self.title).then_some(o.title),
            description: (o.description != self.description).then_some(o.description),
            location: (o.location != self.location).then_some(o.location),
            start: moved.then_some(o.start),
            end: moved.then_some(o.end),
            attendees: (o.attendees != self.attendees).then_some(o.attendees),
            original_start: o.original_start,
            cancelled: false,
        };
        let differs = x.title.is_some()
            || x.description.is_some()
            || x.location.is_some()
            || x.start.is_some()
            || x.attendees.is_some();
        differs.then_some(x)
    }

    /// A Google series: the master and its exceptions (the instances `events.list` returns
    /// next to it; an instance that does not differ from the series is no exception).
    pub fn from_google_series(master: &Value, instances: &[Value]) -> Self {
        let id = master["id"].as_str();
        Self::from_google(master).with_exceptions(
            instances
                .iter()
                .filter(move |i| i["recurringEventId"].as_str() == id && id.is_some())
                .map(|i| {
                    move |_: &Normalized| {
                        let n = Self::from_google(i);
                        Occurrence {
                            original_start: when_of(&i["originalStartTime"]),
                            cancelled: i["status"].as_str() == Some("cancelled"),
                            title: n.title,
                            description: n.description,
                            location: n.location,
                            start: n.start,
                            end: n.end,
                            attendees: n.attendees,
                        }
                    }
                }),
        )
    }

    /// What one occurrence of the series looks like with an exception applied: the body of
    /// its Google instance.
    pub fn occurrence(&self, x: &NException) -> Normalized {
        let mut n = self.clone();
        n.recurrence.clear();
        n.exceptions.clear();
        if let Some(t) = &x.title {
            n.title.clone_from(t);
        }
        if let Some(d) = &x.description {
            n.description.clone_from(d);
        }
        if let Some(l) = &x.location {
            n.location.clone_from(l);
        }
        if let Some(a) = &x.attendees {
            n.attendees.clone_from(a);
        }
        n.start = x.start.clone().unwrap_or_else(|| x.original_start.clone());
        n.end = x
            .end
            .clone()
            .or_else(|| self.occurrence_end(&x.original_start))
            .unwrap_or_else(|| n.start.clone());
        n
    }

    /// From a Google Calendar event resource (JSON as the API returns it).
    pub fn from_google(g: &Value) -> Self {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let when = when_of;
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
        let kind = g["extendedProperties"]["private"][PROP_TYPE]
            .as_str()
            .and_then(EventKind::parse)
            .unwrap_or_default();
        let summary = g["summary"].as_str().unwrap_or("");
        let (title, done) = match kind {
            EventKind::Task => task_title(summary),
            _ => (summary.trim().to_owned(), false),
        };
        Self {
            kind,
            title,
            done,
            description: description_text(g["description"].as_str()),
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
            exceptions: Vec::new(),
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

    /// The same event with every attendee's response reset: what is left is what an organiser
    /// edits (an RSVP alone changes nothing of it).
    pub fn without_responses(&self) -> Normalized {
        let mut n = self.clone();
        let reset = |list: &mut Vec<NAttendee>| {
            for a in list.iter_mut() {
                a.response = Response::default();
            }
        };
        reset(&mut n.attendees);
        for x in &mut n.exceptions {
            if let Some(list) = x.attendees.as_mut() {
                reset(list);
            }
        }
        n
    }

    /// A series' occurrences, as far as an edit goes (`None` for a single event): the hash of
    /// its exceptions with attendees' responses left out — an answer to one occurrence is the
    /// attendee's, not an edit a CRM series write could revert.
    pub fn occurrences_hash(&self) -> Option<String> {
        if self.recurrence.is_empty() {
            return None;
        }
        let n = self.without_responses();
        let edits: Vec<NException> = n
            .exceptions
            .iter()
            .map(|x| {
                let mut x = x.clone();
                if x.attendees.as_ref() == Some(&n.attendees) {
                    x.attendees = None;
                }
                x
            })
            .filter(|x| *x != NException::plain(x.original_start.clone()))
            .collect();
        let bytes = serde_json::to_vec(&edits).unwrap_or_default();
        Some(crate::crypto::sha256_hex(&bytes))
    }

    /// Whether Google's `self` holds a response someone gave (accepted, tentative, declined)
    /// that `written` does not: news for the CRM. An attendee Google shows as `needsAction`
    /// has not answered in Google, whatever the CRM's copy says: no news.
    pub fn answered_since(&self, written: &Normalized) -> bool {
        fn fill(list: &mut [NAttendee], from: &[NAttendee]) {
            for a in list.iter_mut() {
                if a.response == Response::NeedsAction {
                    if let Some(w) = from.iter().find(|w| w.email == a.email) {
                        a.response = w.response;
                    }
                }
            }
        }
        let mut filled = self.clone();
        fill(&mut filled.attendees, &written.attendees);
        for x in filled.exceptions.iter_mut() {
            let theirs = written
                .exceptions
                .iter()
                .find(|w| w.original_start == x.original_start)
                .and_then(|w| w.attendees.as_deref())
                .unwrap_or(&written.attendees);
            if let Some(list) = x.attendees.as_mut() {
                fill(list, theirs);
            }
        }
        filled != *written
    }

    /// Leaves attendees' RSVPs to Google: `responseStatus` is dropped from every attendee of
    /// `body` but the user's own entry (`own_email`). An attendee's response is that
    /// attendee's to give (Google keeps it when a write leaves it out, and a new attendee is
    /// `needsAction`); writing the CRM's copy would undo responses given since, and Google
    /// warns that adding attendees as `accepted`/`tentative`/`declined` can reset them and hide
    /// the event from their calendars (discovery `EventAttendee.responseStatus`).
    pub fn leave_rsvps_to_google(body: &mut Map<String, Value>, own_email: Option<&str>) {
        let own = own_email.map(str::to_lowercase);
        if let Some(Value::Array(attendees)) = body.get_mut("attendees") {
            for a in attendees.iter_mut() {
                let mine = a["email"]
                    .as_str()
                    .is_some_and(|e| Some(e.to_lowercase()) == own);
                if let (false, Some(obj)) = (mine, a.as_object_mut()) {
                    obj.remove("responseStatus");
                }
            }
        }
    }

    /// The fields the product owns, as a Google event body: what an insert sends, and what a
    /// patch sends (nothing else is touched, so Google-side additions survive). Attendees carry
    /// the CRM's responses: the engine drops other people's ([`Self::leave_rsvps_to_google`]).
    pub fn to_google(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let summary = if self.done {
            format!("{DONE_MARK}{}", self.title)
        } else {
            self.title.clone()
        };
        m.insert("summary".into(), json!(summary));
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
        if self.kind == EventKind::Task {
            // A to-do does not make its owner busy (freebusy, scheduling screens).
            m.insert("transparency".into(), json!("transparent"));
        }
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
            attendees: self.attendees.iter().map(Attendee::from).collect(),
            recurrence: self.recurrence.clone(),
            exceptions: self
                .exceptions
                .iter()
                .map(|x| CrmException {
                    original_start: time(&x.original_start),
                    cancelled: x.cancelled,
                    title: x.title.clone(),
                    description: x.description.clone(),
                    location: x.location.clone(),
                    start: x.start.as_ref().map(time),
                    end: x.end.as_ref().map(time),
                    attendees: x
                        .attendees
                        .as_ref()
                        .map(|a| a.iter().map(Attendee::from).collect()),
                })
                .collect(),
            visibility: self.visibility,
            done: self.done,
            version: None,
            updated_at: None,
            google_event_id: None,
        }
    }
}

/// The hash of stored normalized content (`None` if unreadable).
pub fn content_hash(v: &Value) -> Option<String> {
    serde_json::from_value::<Normalized>(v.clone())
        .ok()
        .map(|n| n.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crm(v: Value) -> CrmEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_done_task_is_ticked_in_googles_title_and_read_back() {
        let task = crm(json!({"type": "task", "title": "Send the quote",
                              "start": {"date": "2026-03-31"}, "done": true}));
        let n = Normalized::from_crm(&task);
        assert_eq!(n.end, When::Date("2026-04-01".into()));
        let mut g = Value::Object(n.to_google());
        assert_eq!(g["summary"], "\u{2713} Send the quote");
        assert_eq!(g["transparency"], "transparent");
        g["extendedProperties"] = json!({"private": {PROP_TYPE: "task"}});
        assert_eq!(Normalized::from_google(&g), n);
        // Unticked in Google: the mark removed; ticked with the heavy check mark.
        g["summary"] = json!("Send the quote");
        assert!(!Normalized::from_google(&g).done);
        g["summary"] = json!("\u{2714}Send the quote");
        let ticked = Normalized::from_google(&g);
        assert!(ticked.done && ticked.title == "Send the quote");
        // A meeting's title is its own, mark or not; its hash has no `done`.
        g["extendedProperties"] = json!({"private": {PROP_TYPE: "meeting"}});
        let meeting = Normalized::from_google(&g);
        assert!(!meeting.done && meeting.title.starts_with('\u{2714}'));
        assert!(!serde_json::to_string(&meeting).unwrap().contains("done"));
        assert!(meeting.to_google().get("transparency").is_none());
        assert!(n.to_crm().done);
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
    fn html_descriptions_read_as_the_text_they_show() {
        assert_eq!(
            description_text(Some(
                "<b>Agenda</b><br>1. Pricing<br>2. Next&nbsp;steps &amp; Q&amp;A"
            )),
            "Agenda\n1. Pricing\n2. Next steps & Q&A"
        );
        assert_eq!(
            description_text(Some(
                "<p>Deck: <a href=\"https://x.example/d?a=1&amp;b=2\">slides</a></p><ul><li>one</li><li>two</li></ul>"
            )),
            "Deck: slides (https://x.example/d?a=1&b=2)\n- one\n- two"
        );
        assert_eq!(
            description_text(Some("<a href=\"https://x.example\">https://x.example</a>")),
            "https://x.example"
        );
        // No markup: kept as written (a literal "<" and "&" included).
        assert_eq!(
            description_text(Some("a < b && c\r\nnext ")),
            "a < b && c\nnext"
        );
        assert_eq!(description_text(Some("&#233;t&#xE9; <br/>")), "été");
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

    #[test]
    fn occurrence_edits_change_the_occurrences_hash_answers_do_not() {
        let series = |exceptions: Value| {
            Normalized::from_crm(&crm(json!({
                "title": "Weekly", "start": {"date_time": "2027-03-01T10:00:00+01:00"},
                "end": {"date_time": "2027-03-01T10:30:00+01:00"}, "time_zone": "Europe/Paris",
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
                "attendees": [{"email": "a@x.com", "response": "needsAction"},
                              {"email": "b@x.com", "response": "accepted"}],
                "exceptions": exceptions,
            })))
        };
        let plain = series(json!([])).occurrences_hash();
        assert!(plain.is_some());
        // One attendee answers one occurrence: no edit.
        let answered = series(
            json!([{"original_start": {"date_time": "2027-03-08T10:00:00+01:00"},
            "attendees": [{"email": "a@x.com", "response": "declined"},
                          {"email": "b@x.com", "response": "accepted"}]}]),
        );
        assert_eq!(
            answered.exceptions.len(),
            1,
            "an exception in Google's eyes"
        );
        assert_eq!(answered.occurrences_hash(), plain);
        // The series' own fields are not the occurrences'.
        let mut retitled = series(json!([]));
        retitled.title = "Weekly (new)".into();
        assert_eq!(retitled.occurrences_hash(), plain);
        // A moved, retitled or cancelled occurrence is.
        for x in [
            json!({"original_start": {"date_time": "2027-03-08T10:00:00+01:00"},
                   "start": {"date_time": "2027-03-09T10:00:00+01:00"},
                   "end": {"date_time": "2027-03-09T10:30:00+01:00"}}),
            json!({"original_start": {"date_time": "2027-03-08T10:00:00+01:00"}, "title": "Demo"}),
            json!({"original_start": {"date_time": "2027-03-08T10:00:00+01:00"}, "cancelled": true}),
            json!({"original_start": {"date_time": "2027-03-08T10:00:00+01:00"},
                   "attendees": [{"email": "a@x.com", "response": "accepted"}]}),
        ] {
            assert_ne!(series(json!([x])).occurrences_hash(), plain, "{x}");
        }
        // A single event has no occurrences to guard.
        let mut single = series(json!([]));
        single.recurrence.clear();
        assert_eq!(single.occurrences_hash(), None);
    }

    #[test]
    fn a_crm_exception_and_the_google_instance_it_became_compare_equal() {
        let e = crm(json!({
            "title": "Weekly", "start": {"date_time": "2027-03-01T10:00:00+01:00"},
            "end": {"date_time": "2027-03-01T10:30:00+01:00"}, "time_zone": "Europe/Paris",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
            "attendees": [{"email": "a@x.com", "response": "accepted"}],
            "exceptions": [
                {"original_start": {"date_time": "2027-03-08T10:00:00+01:00"},
                 "start": {"date_time": "2027-03-08T11:00:00+01:00"},
                 "end": {"date_time": "2027-03-08T11:30:00+01:00"}},
                {"original_start": {"date_time": "2027-03-15T09:00:00Z"}, "cancelled": true},
                {"original_start": {"date_time": "2027-03-22T10:00:00+01:00"}, "title": "Weekly (demo)",
                 "attendees": [{"email": "a@x.com", "response": "declined"}]},
                {"original_start": {"date_time": "2027-03-29T10:00:00+02:00"}, "title": "Weekly"}
            ]
        }));
        let n = Normalized::from_crm(&e);
        // The last "exception" is no exception (the series' own title): dropped.
        assert_eq!(n.exceptions.len(), 3);
        assert_eq!(
            instance_suffix(&n.exceptions[0].original_start).as_deref(),
            Some("20270308T090000Z")
        );
        assert_eq!(
            instance_suffix(&When::Date("2027-03-08".into())).as_deref(),
            Some("20270308")
        );
        let mut master = Value::Object(n.to_google());
        master["id"] = json!("abc");
        let instances = vec![
            json!({"id": "abc_20270308T090000Z", "recurringEventId": "abc", "status": "confirmed",
                   "originalStartTime": {"dateTime": "2027-03-08T10:00:00+01:00", "timeZone": "Europe/Paris"},
                   "summary": "Weekly", "start": {"dateTime": "2027-03-08T11:00:00+01:00", "timeZone": "Europe/Paris"},
                   "end": {"dateTime": "2027-03-08T11:30:00+01:00", "timeZone": "Europe/Paris"},
                   "attendees": [{"email": "a@x.com", "responseStatus": "accepted"}]}),
            json!({"id": "abc_20270315T090000Z", "recurringEventId": "abc", "status": "cancelled",
                   "originalStartTime": {"dateTime": "2027-03-15T10:00:00+01:00"}}),
            json!({"id": "abc_20270322T090000Z", "recurringEventId": "abc", "status": "confirmed",
                   "originalStartTime": {"dateTime": "2027-03-22T09:00:00Z"},
                   "summary": "Weekly (demo)", "start": {"dateTime": "2027-03-22T10:00:00+01:00"},
                   "end": {"dateTime": "2027-03-22T10:30:00+01:00"},
                   "attendees": [{"email": "A@x.com", "responseStatus": "declined"}]}),
            // An instance identical to the rule, and one of another series: neither counts.
            json!({"id": "abc_20270301T090000Z", "recurringEventId": "abc", "status": "confirmed",
                   "originalStartTime": {"dateTime": "2027-03-01T10:00:00+01:00"}, "summary": "Weekly",
                   "start": {"dateTime": "2027-03-01T10:00:00+01:00"}, "end": {"dateTime": "2027-03-01T10:30:00+01:00"},
                   "attendees": [{"email": "a@x.com", "responseStatus": "accepted"}]}),
            json!({"id": "xyz_20270301T090000Z", "recurringEventId": "xyz", "status": "cancelled",
                   "originalStartTime": {"dateTime": "2027-03-01T10:00:00+01:00"}}),
        ];
        assert_eq!(Normalized::from_google_series(&master, &instances), n);
        assert_eq!(Normalized::from_crm(&n.to_crm()), n);
        // The body written to the moved occurrence's instance.
        let body = n.occurrence(&n.exceptions[0]).to_google();
        assert_eq!(body["start"]["dateTime"], "2027-03-08T10:00:00Z");
        assert_eq!(body["end"]["dateTime"], "2027-03-08T10:30:00Z");
        assert_eq!(body["summary"], "Weekly");
        // Without exceptions, the hash of a series is what it was before exceptions existed.
        let plain = Normalized {
            exceptions: Vec::new(),
            ..n.clone()
        };
        assert!(!serde_json::to_string(&plain)
            .unwrap()
            .contains("exceptions"));
    }
}
