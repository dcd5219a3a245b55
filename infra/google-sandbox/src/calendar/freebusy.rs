//! `freebusy.query` (`POST /calendar/v3/freeBusy`): the busy intervals of calendars over a
//! window, refused and answered as Google does.
//!
//! * `timeMin` and `timeMax` are required RFC 3339 instants *with an offset* (400
//!   `badRequest` otherwise); an empty window is 400 `timeRangeEmpty`, one longer than
//!   [`MAX_WINDOW_DAYS`] days 400 `timeRangeTooLong`.
//! * `calendarExpansionMax` is at most [`MAX_CALENDARS`] (400 `invalid` above it): the items
//!   past the cap are answered `tooManyCalendarsRequested`, the others computed. A calendar
//!   the caller cannot see is answered `notFound` with `busy: []`; neither fails the query.
//!   The primary calendars of the caller's own Workspace domain are seen (free/busy only).
//! * Busy: the opaque, non-cancelled occurrences (series expanded, exceptions substituted)
//!   the calendar's owner has not declined, all-day ones in the calendar's zone, clipped to
//!   the window and merged where they overlap or touch.
//! * `timeZone` (default UTC) must name a zone; the answer's times are UTC with `Z`, as
//!   Google is widely observed to answer whatever zone is asked for.

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

use super::events::{event_range, occurrences, parse_body, resolve_calendar, time_range_empty};
use super::recurrence::time_zone;
use crate::clock::rfc3339_millis;
use crate::errors::{ApiError, Surface};
use crate::state::{hosted_domain, Calendar, State};

/// The longest window Google answers (cal.com issues #11704 and #11962 observed the cap).
pub const MAX_WINDOW_DAYS: i64 = 90;
/// `calendarExpansionMax`'s maximum and default (the discovery document: "Maximum value is
/// 50").
pub const MAX_CALENDARS: usize = 50;

fn bad_request() -> ApiError {
    ApiError::new(
        Surface::Calendar,
        StatusCode::BAD_REQUEST,
        "badRequest",
        "Bad Request",
    )
}

fn time_range_too_long() -> ApiError {
    ApiError::new(
        Surface::Calendar,
        StatusCode::BAD_REQUEST,
        "timeRangeTooLong",
        "The requested time range is too long.",
    )
}

/// The window of a request: both ends present, with an offset, non-empty, not too long.
fn window(body: &Map<String, Value>) -> Result<(Timestamp, Timestamp), ApiError> {
    let end = |name: &'static str| -> Result<Timestamp, ApiError> {
        let raw = body.get(name).ok_or_else(|| {
            ApiError::new(
                Surface::Calendar,
                StatusCode::BAD_REQUEST,
                "required",
                &format!("Missing {name} parameter."),
            )
        })?;
        // jiff reads an instant only with its offset (`Z` or `±hh:mm`): a civil time or a
        // bare date is refused, as Google refuses it.
        raw.as_str()
            .and_then(|s| s.parse::<Timestamp>().ok())
            .ok_or_else(bad_request)
    };
    let (min, max) = (end("timeMin")?, end("timeMax")?);
    if max <= min {
        return Err(time_range_empty());
    }
    if max.duration_since(min) > SignedDuration::from_hours(24 * MAX_WINDOW_DAYS) {
        return Err(time_range_too_long());
    }
    Ok((min, max))
}

/// `calendarExpansionMax`: 1 to 50, 50 when left out.
fn expansion_max(body: &Map<String, Value>) -> Result<usize, ApiError> {
    match body.get("calendarExpansionMax") {
        None | Some(Value::Null) => Ok(MAX_CALENDARS),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_CALENDARS).contains(n))
            .ok_or_else(|| {
                super::events::invalid("Invalid value for: calendarExpansionMax")
                    .with_location("parameter", "calendarExpansionMax")
            }),
    }
}

/// The ids asked for, in order, without repeats (the answer is keyed by id).
fn item_ids(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let items = match body.get("items") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad_request()),
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(bad_request)?;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// Whether an occurrence makes its calendar busy: not cancelled, not transparent, not
/// declined by the calendar's owner.
fn is_busy(body: &Map<String, Value>, owner: &str) -> bool {
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let declined = body
        .get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|a| {
            let me = a.get("self").and_then(Value::as_bool) == Some(true)
                || a.get("email").and_then(Value::as_str) == Some(owner);
            me && a.get("responseStatus").and_then(Value::as_str) == Some("declined")
        });
    field("status") != Some("cancelled")
        && field("transparency") != Some("transparent")
        && !declined
}

/// The calendar's busy intervals in `[min, max)`, clipped, sorted and merged.
pub fn busy(cal: &Calendar, min: Timestamp, max: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let mut spans: Vec<(Timestamp, Timestamp)> = occurrences(cal, max)
        .iter()
        .filter(|body| is_busy(body, &cal.owner))
        .filter_map(|body| event_range(body, &cal.time_zone))
        .map(|(s, e)| (s.max(min), e.min(max)))
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn calendar_error(reason: &str) -> Value {
    json!({"errors": [{"domain": "global", "reason": reason}], "busy": []})
}

/// A colleague's primary calendar: Workspace shares at least free/busy within the domain
/// by default (internal sharing), so a user sees the busy times of another user of their
/// hosted domain; a consumer account or another domain sees nothing (`notFound`).
fn colleague<'a>(st: &'a State, user: &str, id: &str) -> Option<&'a Calendar> {
    let domain = hosted_domain(user)?;
    st.calendars
        .get(id)
        .filter(|cal| cal.id == cal.owner && hosted_domain(&cal.owner) == Some(domain))
}

/// One calendar's entry of the answer.
fn entry(st: &State, user: &str, id: &str, min: Timestamp, max: Timestamp) -> Value {
    let cal = resolve_calendar(st, user, id)
        .ok()
        .and_then(|real| st.calendars.get(&real))
        .or_else(|| colleague(st, user, id));
    match cal {
        Some(cal) => {
            let spans: Vec<Value> = busy(cal, min, max)
                .into_iter()
                .map(|(s, e)| json!({"start": utc(s), "end": utc(e)}))
                .collect();
            json!({ "busy": spans })
        }
        None => calendar_error("notFound"),
    }
}

/// freebusy.query for `user`, on a request body.
pub fn query(st: &State, user: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let body = parse_body(raw)?;
    let (min, max) = window(&body)?;
    if let Some(tz) = body.get("timeZone").filter(|v| !v.is_null()) {
        let name = tz.as_str().ok_or_else(bad_request)?;
        time_zone(name).map_err(|m| super::events::invalid(&m))?;
    }
    let cap = expansion_max(&body)?;
    let mut calendars = Map::new();
    for (i, id) in item_ids(&body)?.iter().enumerate() {
        let answer = if i < cap {
            entry(st, user, id, min, max)
        } else {
            calendar_error("tooManyCalendarsRequested")
        };
        calendars.insert(id.clone(), answer);
    }
    Ok(json!({
        "kind": "calendar#freeBusy",
        "timeMin": rfc3339_millis(min),
        "timeMax": rfc3339_millis(max),
        "calendars": calendars,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoredEvent;

    const ME: &str = "me@example.com";

    fn state() -> State {
        let mut st = State::new(3600);
        let now: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        super::super::create_calendar(&mut st, ME, ME, "Me", "Europe/Berlin", now);
        for (id, owner) in [
            ("other@example.com", "other@example.com"),
            ("outsider@elsewhere.org", "outsider@elsewhere.org"),
            ("team@example.com", "other@example.com"),
            ("a@gmail.com", "a@gmail.com"),
            ("b@gmail.com", "b@gmail.com"),
        ] {
            super::super::create_calendar(&mut st, id, owner, "O", "UTC", now);
        }
        st
    }

    fn put(st: &mut State, id: &str, body: Value) {
        let mut body = body.as_object().unwrap().clone();
        body.insert("id".into(), json!(id));
        let cal = st.calendars.get_mut(ME).unwrap();
        let order = cal.events.len() as u64;
        cal.events.insert(
            id.to_string(),
            StoredEvent {
                body,
                mod_seq: order,
                order,
            },
        );
    }

    fn timed(start: &str, end: &str) -> Value {
        json!({"start": {"dateTime": start}, "end": {"dateTime": end}})
    }

    fn ask(st: &State, body: Value) -> Result<Value, ApiError> {
        query(st, ME, body.to_string().as_bytes())
    }

    fn window_body(min: &str, max: &str, ids: &[&str]) -> Value {
        let items: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
        json!({"timeMin": min, "timeMax": max, "items": items})
    }

    fn reason(e: ApiError) -> (u16, String) {
        (e.status.as_u16(), e.reason.clone())
    }

    const DAY: (&str, &str) = ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z");

    #[test]
    fn refuses_times_without_an_offset_missing_empty_or_too_long() {
        let st = state();
        let bad =
            |min: &str, max: &str| reason(ask(&st, window_body(min, max, &[ME])).unwrap_err());
        assert_eq!(
            bad("2026-03-02T00:00:00", DAY.1),
            (400, "badRequest".into())
        );
        assert_eq!(bad(DAY.0, "2026-03-03"), (400, "badRequest".into()));
        assert_eq!(bad(DAY.1, DAY.0), (400, "timeRangeEmpty".into()));
        assert_eq!(bad(DAY.0, DAY.0), (400, "timeRangeEmpty".into()));
        assert_eq!(
            bad("2026-01-01T00:00:00Z", "2026-04-01T00:00:01Z"),
            (400, "timeRangeTooLong".into())
        );
        // Exactly 90 days is answered.
        assert!(ask(
            &st,
            window_body("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", &[ME])
        )
        .is_ok());
        let missing = ask(&st, json!({"timeMax": DAY.1, "items": []})).unwrap_err();
        assert_eq!(reason(missing.clone()), (400, "required".into()));
        assert_eq!(missing.message, "Missing timeMin parameter.");
    }

    #[test]
    fn refuses_an_unknown_time_zone_and_an_expansion_cap_above_fifty() {
        let st = state();
        let mut body = window_body(DAY.0, DAY.1, &[ME]);
        body["timeZone"] = json!("Mars/Olympus");
        assert_eq!(
            reason(ask(&st, body.clone()).unwrap_err()),
            (400, "invalid".into())
        );
        body["timeZone"] = json!("America/New_York");
        assert!(ask(&st, body.clone()).is_ok());
        body["calendarExpansionMax"] = json!(51);
        assert_eq!(reason(ask(&st, body).unwrap_err()), (400, "invalid".into()));
    }

    #[test]
    fn calendars_past_the_cap_are_too_many_and_unseen_ones_not_found() {
        let st = state();
        let mut ids: Vec<String> = (0..50).map(|i| format!("c{i}@example.com")).collect();
        ids.insert(0, "primary".into());
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let got = ask(&st, window_body(DAY.0, DAY.1, &refs)).unwrap();
        let cals = got["calendars"].as_object().unwrap();
        assert_eq!(cals.len(), 51);
        assert_eq!(cals["primary"], json!({"busy": []}));
        assert_eq!(cals["c0@example.com"]["errors"][0]["reason"], "notFound");
        assert_eq!(cals["c0@example.com"]["busy"], json!([]));
        assert_eq!(
            cals["c49@example.com"]["errors"][0],
            json!({"domain": "global", "reason": "tooManyCalendarsRequested"})
        );
        // A colleague's primary calendar is seen; another domain's, or a colleague's
        // secondary calendar, is not; consumer accounts see each other's nothing.
        let ids = [
            "other@example.com",
            "outsider@elsewhere.org",
            "team@example.com",
        ];
        let other = ask(&st, window_body(DAY.0, DAY.1, &ids)).unwrap();
        assert_eq!(other["calendars"]["other@example.com"], json!({"busy": []}));
        for unseen in &ids[1..] {
            assert_eq!(
                other["calendars"][unseen]["errors"][0]["reason"],
                "notFound"
            );
        }
        let consumer = query(
            &st,
            "a@gmail.com",
            window_body(DAY.0, DAY.1, &["b@gmail.com"])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            consumer["calendars"]["b@gmail.com"]["errors"][0]["reason"],
            "notFound"
        );
        let mut capped = window_body(DAY.0, DAY.1, &["primary", ME]);
        capped["calendarExpansionMax"] = json!(1);
        let got = ask(&st, capped).unwrap();
        assert_eq!(
            got["calendars"][ME]["errors"][0]["reason"],
            "tooManyCalendarsRequested"
        );
    }

    #[test]
    fn busy_keeps_opaque_live_accepted_events_clipped_and_merged() {
        let mut st = state();
        put(
            &mut st,
            "a",
            timed("2026-03-01T23:00:00Z", "2026-03-02T01:00:00Z"),
        );
        put(
            &mut st,
            "b",
            timed("2026-03-02T09:00:00+01:00", "2026-03-02T10:00:00+01:00"),
        );
        put(
            &mut st,
            "c",
            timed("2026-03-02T08:30:00Z", "2026-03-02T09:30:00Z"),
        );
        put(
            &mut st,
            "d",
            timed("2026-03-02T09:30:00Z", "2026-03-02T10:00:00Z"),
        );
        let mut transparent = timed("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z");
        transparent["transparency"] = json!("transparent");
        put(&mut st, "e", transparent);
        let mut cancelled = timed("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z");
        cancelled["status"] = json!("cancelled");
        put(&mut st, "f", cancelled);
        let mut declined = timed("2026-03-02T16:00:00Z", "2026-03-02T17:00:00Z");
        declined["attendees"] = json!([{"email": ME, "self": true, "responseStatus": "declined"}]);
        put(&mut st, "g", declined);
        let mut accepted = timed("2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z");
        accepted["attendees"] = json!([{"email": ME, "responseStatus": "accepted"}]);
        put(&mut st, "h", accepted);
        put(
            &mut st,
            "later",
            timed("2026-03-04T08:00:00Z", "2026-03-04T09:00:00Z"),
        );
        let got = ask(&st, window_body(DAY.0, DAY.1, &[ME])).unwrap();
        assert_eq!(got["timeMin"], "2026-03-02T00:00:00.000Z");
        assert_eq!(
            got["calendars"][ME]["busy"],
            json!([
                {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T01:00:00Z"},
                {"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T10:00:00Z"},
                {"start": "2026-03-02T18:00:00Z", "end": "2026-03-02T19:00:00Z"},
            ])
        );
    }

    #[test]
    fn busy_expands_series_and_places_all_day_events_in_the_calendar_zone() {
        let mut st = state();
        let mut series = json!({
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-02T09:30:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        });
        series["summary"] = json!("standup");
        put(&mut st, "s", series);
        let mut exception = timed("2026-03-03T08:00:00Z", "2026-03-03T08:30:00Z");
        exception["status"] = json!("cancelled");
        exception["recurringEventId"] = json!("s");
        put(&mut st, "s_20260303T080000Z", exception);
        put(
            &mut st,
            "holiday",
            json!({"start": {"date": "2026-03-05"}, "end": {"date": "2026-03-06"}}),
        );
        let got = ask(
            &st,
            window_body("2026-03-02T00:00:00Z", "2026-03-06T00:00:00Z", &["primary"]),
        )
        .unwrap();
        assert_eq!(
            got["calendars"]["primary"]["busy"],
            json!([
                {"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:30:00Z"},
                {"start": "2026-03-04T08:00:00Z", "end": "2026-03-04T08:30:00Z"},
                {"start": "2026-03-04T23:00:00Z", "end": "2026-03-05T23:00:00Z"},
            ])
        );
    }
}
