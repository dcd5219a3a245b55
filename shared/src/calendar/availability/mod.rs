//! Availability for the CRM's scheduling screens (`POST /v1/users/{user}/availability`):
//! the busy intervals of the user's calendars over a window, through Google's
//! `freebusy.query`. The request is checked against Google's own bounds first (a window of
//! at most [`MAX_WINDOW_DAYS`] days, at most [`MAX_CALENDARS`] calendars, a known time zone),
//! so the CRM gets a 422 naming the field instead of Google's 400; a calendar Google cannot
//! answer is an error of that calendar, not of the call.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::calendar::model::valid_time_zone;
use crate::domain::{Collection, TenantId, UserId};
use crate::google::calendar::TimePeriod;
use crate::google::calendar::{FreeBusyCalendar, FreeBusyRequest, FreeBusyRequestItem};
use crate::http::ApiError;
use crate::services::tokens::{google_error, with_access_token};
use crate::services::{records, schedule};

pub mod team;

/// Google answers windows of at most 90 days (`timeRangeTooLong` past it).
pub const MAX_WINDOW_DAYS: i64 = 90;
/// Google answers at most 50 calendars a query (`calendarExpansionMax`).
pub const MAX_CALENDARS: usize = 50;

/// What the CRM asks: a window (RFC 3339 with an offset), the zone to answer in (default
/// UTC) and the calendars (default: the ones the sync reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    pub time_min: Option<String>,
    pub time_max: Option<String>,
    pub time_zone: Option<String>,
    pub calendars: Option<Vec<String>>,
}

/// One busy interval: `start` inclusive, `end` exclusive, in the answer's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: String,
    pub end: String,
}

/// One calendar's answer: its busy intervals, or why Google could not answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarBusy {
    pub busy: Vec<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The answer: the window and zone, the busy intervals merged across calendars, and each
/// calendar's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    pub time_min: String,
    pub time_max: String,
    pub time_zone: String,
    pub busy: Vec<Period>,
    pub calendars: BTreeMap<String, CalendarBusy>,
}

/// A request that passed the checks.
#[derive(Debug)]
struct Query {
    min: Timestamp,
    max: Timestamp,
    zone_name: String,
    zone: TimeZone,
    calendars: Option<Vec<String>>,
}

fn instant(field: &str, value: Option<&str>) -> Result<Timestamp, ApiError> {
    value
        .and_then(|v| v.parse::<Timestamp>().ok())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{field} is required: an RFC 3339 date-time with an offset"
            ))
        })
}

/// The window and the zone, checked against Google's bounds; no calendars yet.
fn window(
    time_min: Option<&str>,
    time_max: Option<&str>,
    time_zone: Option<String>,
) -> Result<Query, ApiError> {
    let min = instant("time_min", time_min)?;
    let max = instant("time_max", time_max)?;
    if max <= min {
        return Err(ApiError::invalid("time_max must be after time_min"));
    }
    if max.duration_since(min) > SignedDuration::from_hours(24 * MAX_WINDOW_DAYS) {
        return Err(ApiError::invalid(format!(
            "time_min to time_max spans at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let zone_name = time_zone.unwrap_or_else(|| "UTC".to_owned());
    let zone = Some(&zone_name)
        .filter(|name| valid_time_zone(name))
        .and_then(|name| TimeZone::get(name).ok())
        .ok_or_else(|| {
            ApiError::invalid(format!("time_zone {zone_name:?} is not an IANA time zone"))
        })?;
    Ok(Query {
        min,
        max,
        zone_name,
        zone,
        calendars: None,
    })
}

fn check(req: AvailabilityRequest) -> Result<Query, ApiError> {
    let q = window(
        req.time_min.as_deref(),
        req.time_max.as_deref(),
        req.time_zone,
    )?;
    if let Some(ids) = &req.calendars {
        if ids.is_empty() || ids.len() > MAX_CALENDARS {
            return Err(ApiError::invalid(format!(
                "calendars names 1 to {MAX_CALENDARS} calendars"
            )));
        }
        if ids.iter().any(|id| id.trim().is_empty() || id.len() > 1024) {
            return Err(ApiError::invalid("calendars holds an empty or overlong id"));
        }
    }
    Ok(Query {
        calendars: req.calendars,
        ..q
    })
}

/// Google's per-calendar error reasons, as the API names them.
fn error_code(reason: &str) -> &'static str {
    match reason {
        "notFound" => "not_found",
        "tooManyCalendarsRequested" => "too_many_calendars",
        "groupTooBig" => "group_too_big",
        "internalError" => "internal_error",
        _ => "google_error",
    }
}

/// An instant in the answer's zone (`Z` for UTC).
fn format_in(ts: Timestamp, zone: &TimeZone) -> String {
    let z = ts.to_zoned(zone.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

fn spans(periods: &[TimePeriod]) -> Vec<(Timestamp, Timestamp)> {
    periods
        .iter()
        .filter_map(|p| Some((p.start.parse().ok()?, p.end.parse().ok()?)))
        .collect()
}

/// Sorted, with overlapping or touching intervals joined.
fn merge(mut spans: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    spans.sort();
    let mut out: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn periods(spans: &[(Timestamp, Timestamp)], zone: &TimeZone) -> Vec<Period> {
    spans
        .iter()
        .map(|(s, e)| Period {
            start: format_in(*s, zone),
            end: format_in(*e, zone),
        })
        .collect()
}

/// The answer from Google's, for the ids asked for (one Google left out is an error).
fn answer(q: &Query, ids: &[String], got: &BTreeMap<String, FreeBusyCalendar>) -> Availability {
    let (all, calendars) = per_calendar(q, ids, got);
    Availability {
        time_min: format_in(q.min, &q.zone),
        time_max: format_in(q.max, &q.zone),
        time_zone: q.zone_name.clone(),
        busy: periods(&merge(all), &q.zone),
        calendars,
    }
}

/// Each id's answer, and the busy spans of all of them (unmerged).
fn per_calendar(
    q: &Query,
    ids: &[String],
    got: &BTreeMap<String, FreeBusyCalendar>,
) -> (Vec<(Timestamp, Timestamp)>, BTreeMap<String, CalendarBusy>) {
    let mut all = Vec::new();
    let mut calendars = BTreeMap::new();
    for id in ids {
        let entry = match got.get(id) {
            Some(cal) if cal.errors.is_empty() => {
                let own = merge(spans(&cal.busy));
                all.extend(own.iter().copied());
                CalendarBusy {
                    busy: periods(&own, &q.zone),
                    error: None,
                }
            }
            found => CalendarBusy {
                busy: Vec::new(),
                error: Some(
                    found
                        .and_then(|c| c.errors.first())
                        .map_or("google_error", |e| error_code(&e.reason)),
                ),
            },
        };
        calendars.insert(id.clone(), entry);
    }
    (all, calendars)
}

/// The user's availability over the window (404 for a user of no account in the caller's
/// tenant, 409 without the calendar product or, from the access token, when the account must
/// reconnect).
pub async fn query(
    app: &App,
    t: &TenantId,
    u: &UserId,
    req: AvailabilityRequest,
) -> Result<Availability, ApiError> {
    let q = check(req)?;
    let account = records::require_account(app, t, u, Collection::Calendar).await?;
    let ids = q
        .calendars
        .clone()
        .unwrap_or_else(|| schedule::read_calendars(&account));
    let got = free_busy(app, t, u, &q, &ids).await?;
    Ok(answer(&q, &ids, &got))
}

/// One `freebusy.query` over `ids` with the user's own access token.
async fn free_busy(
    app: &App,
    t: &TenantId,
    u: &UserId,
    q: &Query,
    ids: &[String],
) -> Result<BTreeMap<String, FreeBusyCalendar>, ApiError> {
    let request = FreeBusyRequest {
        time_min: q.min.to_string(),
        time_max: q.max.to_string(),
        time_zone: Some(q.zone_name.clone()),
        calendar_expansion_max: Some(MAX_CALENDARS as u32),
        items: ids
            .iter()
            .map(|id| FreeBusyRequestItem { id: id.clone() })
            .collect(),
    };
    let request = &request;
    let got = with_access_token(app, t, u, |token| async move {
        app.google.free_busy(&token, request).await
    })
    .await?
    .map_err(google_error)?;
    Ok(got.calendars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::calendar::FreeBusyError;

    fn req(min: &str, max: &str) -> AvailabilityRequest {
        AvailabilityRequest {
            time_min: Some(min.into()),
            time_max: Some(max.into()),
            ..Default::default()
        }
    }

    fn refused(r: AvailabilityRequest) -> String {
        let e = check(r).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "invalid_request"));
        e.message
    }

    #[test]
    fn refusals_name_the_field() {
        let day = ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z");
        assert!(refused(AvailabilityRequest::default()).contains("time_min"));
        assert!(refused(req(day.0, "2026-03-03T00:00:00")).contains("time_max"));
        assert!(refused(req(day.1, day.0)).contains("after time_min"));
        assert!(refused(req("2026-01-01T00:00:00Z", "2026-04-01T00:00:01Z")).contains("90 days"));
        assert!(check(req("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")).is_ok());
        let mut zone = req(day.0, day.1);
        zone.time_zone = Some("Mars/Olympus".into());
        assert!(refused(zone).contains("time_zone"));
        let mut many = req(day.0, day.1);
        many.calendars = Some((0..51).map(|i| format!("c{i}")).collect());
        assert!(refused(many).contains("calendars"));
        let mut none = req(day.0, day.1);
        none.calendars = Some(Vec::new());
        assert!(refused(none).contains("calendars"));
    }

    #[test]
    fn answers_merge_across_calendars_in_the_asked_zone() {
        let mut r = req("2026-03-02T00:00:00+01:00", "2026-03-03T00:00:00+01:00");
        r.time_zone = Some("Europe/Berlin".into());
        let q = check(r).unwrap();
        let period = |s: &str, e: &str| TimePeriod {
            start: s.into(),
            end: e.into(),
        };
        let mut got = BTreeMap::new();
        got.insert(
            "a".to_string(),
            FreeBusyCalendar {
                busy: vec![period("2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z")],
                errors: vec![],
            },
        );
        got.insert(
            "b".to_string(),
            FreeBusyCalendar {
                busy: vec![period("2026-03-02T08:30:00Z", "2026-03-02T10:00:00Z")],
                errors: vec![],
            },
        );
        got.insert(
            "c".to_string(),
            FreeBusyCalendar {
                busy: vec![],
                errors: vec![FreeBusyError {
                    domain: "global".into(),
                    reason: "notFound".into(),
                }],
            },
        );
        let ids = ["a", "b", "c", "d"].map(String::from);
        let a = answer(&q, &ids, &got);
        assert_eq!(a.time_min, "2026-03-02T00:00:00+01:00");
        assert_eq!(a.time_zone, "Europe/Berlin");
        assert_eq!(
            a.busy,
            vec![Period {
                start: "2026-03-02T09:00:00+01:00".into(),
                end: "2026-03-02T11:00:00+01:00".into()
            }]
        );
        assert_eq!(a.calendars["c"].error, Some("not_found"));
        assert_eq!(a.calendars["d"].error, Some("google_error"));
        assert_eq!(a.calendars["a"].busy.len(), 1);
    }
}
