//! The tenant-level form (`POST /v1/availability`): several of the tenant's users and
//! e-mail addresses at once, for a scheduling screen that looks for a time that suits a
//! team. Each user is asked with their own grant (their calendars, as the one-user form
//! reads them); the e-mails (colleagues, rooms, people outside the CRM) in one query asked
//! as one of the users, so Google answers only what that account may see. A user or an
//! e-mail Google cannot answer is an error of theirs, not of the call.

use futures_util::future::join_all;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{format_in, MAX_CALENDARS};
use super::{free_busy, merge, per_calendar, periods, window, CalendarBusy, Period, Query};
use crate::app::App;
use crate::domain::{Collection, TenantId, UserId};
use crate::google::calendar::FreeBusyCalendar;
use crate::http::ApiError;
use crate::services::{records, schedule};

/// Users a call may name: each is one Google call, made at once.
pub const MAX_USERS: usize = 20;

/// What the CRM asks: the window and zone as in the one-user form, the tenant's users and
/// the e-mail addresses, and whose Google account asks about the e-mails.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    pub time_min: Option<String>,
    pub time_max: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    /// The user whose account asks Google about `emails` (required with them).
    pub emails_as: Option<String>,
}

/// One user's answer: the busy intervals of the calendars the sync reads, or why none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserBusy {
    pub busy: Vec<Period>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub calendars: BTreeMap<String, CalendarBusy>,
    /// The code the one-user form would have answered (`not_found`, `not_connected`,
    /// `needs_reauth`, `product_not_connected`, `google_unavailable`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The answer: everyone's busy time merged (when nobody asked is free), then each user's
/// and each e-mail's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamAvailability {
    pub time_min: String,
    pub time_max: String,
    pub time_zone: String,
    pub busy: Vec<Period>,
    pub users: BTreeMap<String, UserBusy>,
    pub emails: BTreeMap<String, CalendarBusy>,
}

/// A request that passed the checks.
struct Team {
    query: Query,
    users: Vec<UserId>,
    emails: Vec<String>,
    emails_as: Option<UserId>,
}

fn user_id(field: &str, value: &str) -> Result<UserId, ApiError> {
    UserId::parse(value)
        .map_err(|_| ApiError::invalid(format!("{field}: {value:?} is not a valid user id")))
}

/// An address as the domain checks one, in lower case (Google's calendar ids for people).
fn email(value: &str) -> Result<String, ApiError> {
    Ok(crate::domain::validate::email("emails[]", value)?.to_ascii_lowercase())
}

/// Each distinct value once, in the order given.
fn distinct<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn check(req: TeamRequest) -> Result<Team, ApiError> {
    let query = window(
        req.time_min.as_deref(),
        req.time_max.as_deref(),
        req.time_zone,
    )?;
    if req.users.is_empty() && req.emails.is_empty() {
        return Err(ApiError::invalid("users or emails names someone"));
    }
    if req.users.len() > MAX_USERS {
        return Err(ApiError::invalid(format!(
            "users names at most {MAX_USERS} users"
        )));
    }
    if req.emails.len() > MAX_CALENDARS {
        return Err(ApiError::invalid(format!(
            "emails names at most {MAX_CALENDARS} addresses"
        )));
    }
    let users = req.users.iter().map(|u| user_id("users", u));
    let emails = req.emails.iter().map(|e| email(e));
    let emails_as = match (&req.emails_as, req.emails.is_empty()) {
        (Some(u), _) => Some(user_id("emails_as", u)?),
        (None, true) => None,
        (None, false) => {
            return Err(ApiError::invalid(
                "emails_as is required with emails: the user whose Google account asks",
            ))
        }
    };
    Ok(Team {
        query,
        users: distinct(users.collect::<Result<_, _>>()?),
        emails: distinct(emails.collect::<Result<_, _>>()?),
        emails_as,
    })
}

/// What the one-user form answers becomes the user's own error, unless it is ours (a 500).
fn own_error<T>(result: Result<T, ApiError>) -> Result<Result<T, &'static str>, ApiError> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.status == http::StatusCode::INTERNAL_SERVER_ERROR => Err(e),
        Err(e) => Ok(Err(e.code)),
    }
}

type Spans = Vec<(Timestamp, Timestamp)>;

/// One `freebusy.query` as user `u` (over `ids`, or the calendars the sync reads): Google's
/// answer with the ids asked, or the code the one-user form would have answered.
async fn asked_as(
    app: &App,
    t: &TenantId,
    u: &UserId,
    q: &Query,
    ids: Option<&[String]>,
) -> Result<Result<(Vec<String>, BTreeMap<String, FreeBusyCalendar>), &'static str>, ApiError> {
    let account = match own_error(records::require_account(app, t, u, Collection::Calendar).await)?
    {
        Ok(account) => account,
        Err(code) => return Ok(Err(code)),
    };
    let ids = ids.map_or_else(|| schedule::read_calendars(&account), <[String]>::to_vec);
    Ok(own_error(free_busy(app, t, u, q, &ids).await)?.map(|got| (ids, got)))
}

/// One user's calendars, as the sync reads them, and their busy spans.
async fn one_user(
    app: &App,
    t: &TenantId,
    u: &UserId,
    q: &Query,
) -> Result<(UserBusy, Spans), ApiError> {
    Ok(match asked_as(app, t, u, q, None).await? {
        Ok((ids, got)) => {
            let (spans, calendars) = per_calendar(q, &ids, &got);
            let spans = merge(spans);
            let busy = UserBusy {
                busy: periods(&spans, &q.zone),
                calendars,
                error: None,
            };
            (busy, spans)
        }
        Err(code) => {
            let busy = UserBusy {
                busy: Vec::new(),
                calendars: BTreeMap::new(),
                error: Some(code),
            };
            (busy, Vec::new())
        }
    })
}

/// The e-mails, in one query asked as `asker`, and their busy spans; if the asker cannot
/// ask, each e-mail carries the asker's error.
async fn emails(
    app: &App,
    t: &TenantId,
    asker: &UserId,
    team: &Team,
) -> Result<(BTreeMap<String, CalendarBusy>, Spans), ApiError> {
    let q = &team.query;
    Ok(
        match asked_as(app, t, asker, q, Some(&team.emails)).await? {
            Ok((ids, got)) => {
                let (spans, calendars) = per_calendar(q, &ids, &got);
                (calendars, spans)
            }
            Err(code) => {
                let unasked = |e: &String| {
                    let busy = CalendarBusy {
                        busy: Vec::new(),
                        error: Some(code),
                    };
                    (e.clone(), busy)
                };
                (team.emails.iter().map(unasked).collect(), Vec::new())
            }
        },
    )
}

/// The team's availability over the window: 422 for a bad request, else 200 with each
/// user's and e-mail's answer (a user of another tenant is `not_found`, as a user of none).
pub async fn query(
    app: &App,
    t: &TenantId,
    req: TeamRequest,
) -> Result<TeamAvailability, ApiError> {
    let team = check(req)?;
    let q = &team.query;
    let asked = join_all(team.users.iter().map(|u| one_user(app, t, u, q))).await;
    let mut users = BTreeMap::new();
    let mut spans = Vec::new();
    for (u, answer) in team.users.iter().zip(asked) {
        let (answer, own) = answer?;
        spans.extend(own);
        users.insert(u.to_string(), answer);
    }
    let emails = match &team.emails_as {
        Some(asker) if !team.emails.is_empty() => {
            let (emails, own) = emails(app, t, asker, &team).await?;
            spans.extend(own);
            emails
        }
        _ => BTreeMap::new(),
    };
    Ok(TeamAvailability {
        time_min: format_in(q.min, &q.zone),
        time_max: format_in(q.max, &q.zone),
        time_zone: q.zone_name.clone(),
        busy: periods(&merge(spans), &q.zone),
        users,
        emails,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(users: &[&str], emails: &[&str], emails_as: Option<&str>) -> TeamRequest {
        TeamRequest {
            time_min: Some("2026-03-02T00:00:00Z".into()),
            time_max: Some("2026-03-03T00:00:00Z".into()),
            time_zone: None,
            users: users.iter().map(|u| u.to_string()).collect(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            emails_as: emails_as.map(String::from),
        }
    }

    fn refused(r: TeamRequest) -> String {
        match check(r) {
            Err(e) => {
                assert_eq!((e.status.as_u16(), e.code), (422, "invalid_request"));
                e.message
            }
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(refused(req(&[], &[], None)).contains("users or emails"));
        let many: Vec<String> = (0..=MAX_USERS).map(|i| format!("u{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(req(&many, &[], None)).contains("at most 20"));
        assert!(refused(req(&["bad user"], &[], None)).contains("users"));
        assert!(refused(req(&[], &["bob@x.com"], None)).contains("emails_as"));
        assert!(refused(req(&[], &["not an address"], Some("u1"))).contains("emails"));
        assert!(refused(req(&[], &["@x.com"], Some("u1"))).contains("emails"));
        assert!(refused(req(&[], &["a@b.c"], Some("bad user"))).contains("emails_as"));
        let mut window = req(&["u1"], &[], None);
        window.time_max = None;
        assert!(refused(window).contains("time_max"));
    }

    #[test]
    fn names_are_asked_once_and_addresses_in_lower_case() {
        let team = check(req(
            &["u1", "u2", "u1"],
            &["Bob@X.com", "bob@x.com", "room@x.com"],
            Some("u1"),
        ))
        .unwrap();
        assert_eq!(team.users.len(), 2);
        assert_eq!(team.emails, ["bob@x.com", "room@x.com"]);
        assert_eq!(team.emails_as.unwrap().as_str(), "u1");
    }
}
