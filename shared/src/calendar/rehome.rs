//! A new main calendar takes the sync state with it. When a user's main calendar changes from
//! A to B, the meetings the sync wrote into A and that are still ahead (a meeting not over
//! yet, a series still running) are moved to B with Google's `events.move` — same event id,
//! B becomes the organizer, the guests keep their invitation — and their pairs follow
//! (`container = B`). Meetings already over stay in A, where the CRM's later edits are still
//! written ([`crate::domain::AccountSettings::former_main_calendars`]); events the user made
//! in Google (Google-born pairs) are the user's and stay where the user put them.
//!
//! The move is carried on by the worker, job after job, before the account's pass: a page of
//! pairs at a time, its moves sent in batches within the job's Google calls, the page
//! remembered on the account ([`crate::domain::Rehome`]) so a large account resumes where the
//! last job stopped. A move whose commit was lost is found again by its id in B.

use super::sync::{google_event_id, SyncError};
use crate::app::App;
use crate::calendar::model::{parse_date, parse_instant};
use crate::calendar::normal::{Normalized, When};
use crate::domain::{Account, Collection, PairStatus, Rehome, TenantId, UserId};
use crate::google::batch::{BatchResponse, MAX_PARTS};
use crate::google::calendar::{CalendarRequest, Event, SendUpdates};
use crate::google::pacing;
use crate::services::tokens::access_token;
use crate::store::repo::Versioned;
use secrecy::SecretString;
use std::time::Instant;
use time::OffsetDateTime;

/// Pairs looked at per page (one account write per page records where the move stands).
const PAGE: u32 = 200;

/// The account's main calendar as the sync names it.
pub fn main_calendar(account: &Account) -> String {
    account
        .settings
        .main_calendar
        .clone()
        .unwrap_or_else(|| "primary".to_owned())
}

/// Called when a settings change makes `new` the main calendar: the old one joins the
/// former main calendars (still written for the meetings left there), and a move of the
/// meetings still ahead starts (or starts over, when a move was under way).
pub fn start(account: &mut Account, new: &str, now: OffsetDateTime) {
    let old = main_calendar(account);
    account.settings.main_calendar = Some(new.to_owned());
    if old == new {
        return;
    }
    let former = &mut account.settings.former_main_calendars;
    if !former.contains(&old) {
        former.push(old);
    }
    former.retain(|c| c != new);
    account.settings.rehome = Some(Rehome {
        page: None,
        moved: 0,
        kept: 0,
        started_at: now,
    });
}

/// Whether the pair's event is one the sync wrote (inserted under the id derived from its
/// CRM id), as opposed to a Google event the CRM linked or acknowledged.
fn written_by_sync(t: &TenantId, u: &UserId, p: &PairStatus) -> bool {
    !p.google_born
        && p.google_id.as_deref() == Some(google_event_id(t, u, &p.crm_id, p.generation).as_str())
}

/// Whether the pair's meeting is still ahead at `now`: it ends later, or it is a series
/// whose rules do not all end (`UNTIL`) before today. Unknown content counts as ahead.
pub fn still_ahead(p: &PairStatus, now: OffsetDateTime) -> bool {
    let Some(content) = p
        .crm_content
        .clone()
        .and_then(|v| serde_json::from_value::<Normalized>(v).ok())
    else {
        return true;
    };
    if !content.recurrence.is_empty() {
        let rules: Vec<&String> = content
            .recurrence
            .iter()
            .filter(|r| r.starts_with("RRULE:") || r.starts_with("RDATE"))
            .collect();
        return rules.is_empty() || rules.iter().any(|r| !ended(r, now));
    }
    match &content.end {
        When::Instant(i) => parse_instant(i).is_none_or(|end| end > now),
        When::Date(d) => parse_date(d).is_none_or(|end| end > now.date()),
    }
}

/// Whether a recurrence line ends before today (an `RRULE` with an `UNTIL` in the past; an
/// `RDATE` list whose dates are all past). `COUNT` rules count as running: the CRM's content
/// is the master's, and only Google knows the last occurrence.
fn ended(line: &str, now: OffsetDateTime) -> bool {
    let day = |s: &str| -> Option<time::Date> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let d = digits.get(0..8)?;
        parse_date(&format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]))
    };
    if let Some(rule) = line.strip_prefix("RRULE:") {
        return rule
            .split(';')
            .find_map(|part| part.strip_prefix("UNTIL="))
            .and_then(day)
            .is_some_and(|until| until < now.date());
    }
    let dates = line.rsplit_once(':').map_or("", |(_, v)| v);
    !dates.is_empty()
        && dates
            .split(',')
            .all(|d| day(d).is_some_and(|d| d < now.date()))
}

/// Carries the account's move on within this job; `true` when nothing (more) is to move,
/// `false` when the job's calls or time ran out first (a continuation is due).
pub async fn carry_on(
    app: &App,
    t: &TenantId,
    u: &UserId,
    deadline: Instant,
) -> Result<bool, SyncError> {
    let token = access_token(app, t, u).await?;
    let account = token.account.clone();
    let Some(mut state) = account.settings.rehome.clone() else {
        return Ok(true);
    };
    let main = main_calendar(&account);
    let from: Vec<String> = account
        .settings
        .former_main_calendars
        .iter()
        .filter(|c| **c != main)
        .cloned()
        .collect();
    let now = app.clock.now();
    loop {
        if Instant::now() >= deadline {
            save(app, t, u, &state, false).await?;
            return Ok(false);
        }
        let records = app
            .store
            .list_pairs(t, u, Collection::Calendar, PAGE, state.page.as_deref())
            .await?;
        let mut candidates = Vec::new();
        let mut kept = 0u64;
        for p in records.items {
            let in_former = p
                .container
                .as_deref()
                .is_some_and(|c| from.iter().any(|f| f == c));
            if !in_former || p.deleted_at.is_some() || !written_by_sync(t, u, &p) {
                continue;
            }
            if p.crm_deleted_at.is_none() && still_ahead(&p, now) {
                candidates.push(p.crm_id.to_string());
            } else {
                kept += 1;
            }
        }
        let mover = Mover {
            app,
            token: &token.token,
            t,
            u,
            main: &main,
            from: &from,
            now,
        };
        let outcome = mover.move_pairs(candidates).await?;
        state.moved += outcome.moved;
        if !outcome.complete {
            // The page is looked at again by the next job: what moved is in `main` by then.
            save(app, t, u, &state, false).await?;
            return Ok(false);
        }
        state.kept += kept + outcome.kept;
        match records.next {
            Some(next) => {
                state.page = Some(next);
                save(app, t, u, &state, false).await?;
            }
            None => {
                tracing::info!(tenant = %t, user = %u, calendar = %main, moved = state.moved, kept = state.kept, "meetings re-homed into the new main calendar");
                save(app, t, u, &state, true).await?;
                return Ok(true);
            }
        }
    }
}

/// Records where the move stands (or that it is over), unless a newer move started since.
async fn save(
    app: &App,
    t: &TenantId,
    u: &UserId,
    state: &Rehome,
    done: bool,
) -> Result<(), SyncError> {
    app.store
        .update_account(t, u, app.clock.now(), |a| {
            if a.settings.rehome.as_ref().map(|r| r.started_at) == Some(state.started_at) {
                a.settings.rehome = (!done).then(|| state.clone());
            }
        })
        .await?;
    Ok(())
}

struct Moved {
    moved: u64,
    kept: u64,
    /// Every candidate was settled (not stopped by the job's calls).
    complete: bool,
}

/// A move of the meetings still ahead from the former calendars (`from`) into `main`.
struct Mover<'m> {
    app: &'m App,
    token: &'m SecretString,
    t: &'m TenantId,
    u: &'m UserId,
    main: &'m str,
    from: &'m [String],
    now: OffsetDateTime,
}

impl Mover<'_> {
    /// Moves the candidates' events into `main`, batch by batch within the job's calls, and
    /// commits each pair Google moved.
    async fn move_pairs(&self, candidates: Vec<String>) -> Result<Moved, SyncError> {
        let mut out = Moved {
            moved: 0,
            kept: 0,
            complete: true,
        };
        let mut pending = candidates.into_iter().peekable();
        while pending.peek().is_some() {
            let left = pacing::remaining().unwrap_or(u32::MAX) as usize;
            if left == 0 {
                out.complete = false;
                return Ok(out);
            }
            let chunk = self.next_chunk(&mut pending, MAX_PARTS.min(left)).await?;
            if chunk.is_empty() {
                continue;
            }
            let requests: Vec<CalendarRequest> = chunk.iter().map(|p| self.request(p)).collect();
            let answers = self.app.google.batch(self.token, requests).await?;
            for (p, answer) in chunk.into_iter().zip(answers) {
                match self.moved_to(&p, answer).await? {
                    Some(event) => {
                        self.commit(p, event).await?;
                        out.moved += 1;
                    }
                    None => out.kept += 1,
                }
            }
        }
        Ok(out)
    }

    /// The next pairs to move, up to `n`, each read again consistently (a pass may have
    /// written it since the listing) and still movable.
    async fn next_chunk(
        &self,
        pending: &mut impl Iterator<Item = String>,
        n: usize,
    ) -> Result<Vec<Versioned<PairStatus>>, SyncError> {
        let mut chunk = Vec::new();
        while chunk.len() < n {
            let Some(id) = pending.next() else { break };
            let found = self
                .app
                .store
                .get_pair(self.t, self.u, Collection::Calendar, &id);
            if let Some(p) = found.await?.filter(|p| self.movable(&p.value)) {
                chunk.push(p);
            }
        }
        Ok(chunk)
    }

    fn movable(&self, p: &PairStatus) -> bool {
        p.deleted_at.is_none()
            && p.crm_deleted_at.is_none()
            && p.container
                .as_deref()
                .is_some_and(|c| self.from.iter().any(|f| f == c))
            && written_by_sync(self.t, self.u, p)
            && still_ahead(p, self.now)
    }

    fn request(&self, p: &Versioned<PairStatus>) -> CalendarRequest {
        CalendarRequest::move_event(
            p.value.container.as_deref().unwrap_or_default(),
            p.value.google_id.as_deref().unwrap_or_default(),
            self.main,
            // An organizer change within the user's own calendars: nothing for the guests to
            // act on.
            SendUpdates::None,
        )
    }

    /// The event in `main` after Google's answer to its move; `None`: it stays where it is.
    async fn moved_to(
        &self,
        p: &Versioned<PairStatus>,
        answer: BatchResponse,
    ) -> Result<Option<Event>, SyncError> {
        if answer.is_success() {
            return Ok(serde_json::from_value(answer.body).ok());
        }
        if answer.status == 404 {
            // Not in the old calendar: moved by a run whose commit was lost (then it is in
            // the main calendar already), or deleted there.
            let gid = p.value.google_id.clone().unwrap_or_default();
            let found = self
                .app
                .google
                .get_event(self.token, self.main, &gid)
                .await?;
            return Ok(found.filter(|e| !e.is_cancelled()));
        }
        match answer.error() {
            Some(e) if e.is_pass_level() => Err(e.into()),
            e => {
                // The record's own refusal (an event whose organizer is someone else, a
                // calendar no longer writable): the meeting stays where it is, still written
                // there.
                let reason = e.map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(tenant = %self.t, user = %self.u, crm_id = %p.value.crm_id, %reason, "meeting kept in its calendar: Google refused the move");
                Ok(None)
            }
        }
    }

    /// Commits a pair whose event is now in `main`.
    async fn commit(&self, p: Versioned<PairStatus>, event: Event) -> Result<(), SyncError> {
        let loaded = p.value.clone();
        let mut pair = p.value;
        pair.container = Some(self.main.to_owned());
        pair.google_etag = event.etag;
        let dirty = crate::sync::pair::waiting(&loaded);
        crate::sync::pair::commit(
            &self.app.store,
            self.t,
            self.u,
            &loaded,
            pair,
            Some(p.version),
            dirty,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pair_with(content: serde_json::Value) -> PairStatus {
        let mut p = PairStatus::new(
            crate::domain::AccountId::generate(),
            Collection::Calendar,
            crate::domain::CrmId::parse("MTG-1").unwrap(),
        );
        p.crm_content = Some(content);
        p
    }

    fn content(end: &str, recurrence: &[&str]) -> serde_json::Value {
        json!({
            "kind": "meeting", "title": "t", "description": "", "location": "",
            "start": {"instant": "2026-01-01T10:00:00Z"}, "end": {"instant": end},
            "time_zone": null, "attendees": [], "recurrence": recurrence,
            "visibility": "default",
        })
    }

    #[test]
    fn meetings_ahead_and_series_still_running_move() {
        let now = OffsetDateTime::parse(
            "2026-06-01T00:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let over = pair_with(content("2026-01-01T11:00:00Z", &[]));
        let ahead = pair_with(content("2026-07-01T11:00:00Z", &[]));
        assert!(serde_json::from_value::<Normalized>(over.crm_content.clone().unwrap()).is_ok());
        assert!(!still_ahead(&over, now));
        assert!(still_ahead(&ahead, now));
        let ended = pair_with(content(
            "2026-01-01T11:00:00Z",
            &["RRULE:FREQ=WEEKLY;UNTIL=20260301T000000Z"],
        ));
        let running = pair_with(content(
            "2026-01-01T11:00:00Z",
            &["RRULE:FREQ=WEEKLY;UNTIL=20261231"],
        ));
        let counted = pair_with(content(
            "2026-01-01T11:00:00Z",
            &["RRULE:FREQ=DAILY;COUNT=3"],
        ));
        let endless = pair_with(content("2026-01-01T11:00:00Z", &["RRULE:FREQ=MONTHLY"]));
        assert!(!still_ahead(&ended, now));
        assert!(still_ahead(&running, now));
        assert!(still_ahead(&counted, now));
        assert!(still_ahead(&endless, now));
    }

    #[test]
    fn a_new_main_calendar_remembers_the_old_one() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut a: Account = serde_json::from_value(json!({
            "id": crate::domain::AccountId::generate(), "tenant": "acme", "user": "u1", "status": "active",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        start(&mut a, "team@group.calendar.google.com", now);
        assert_eq!(a.settings.former_main_calendars, ["primary"]);
        assert!(a.settings.rehome.is_some());
        // And back: the calendar that is main again is no longer a former one.
        start(&mut a, "primary", now);
        assert_eq!(
            a.settings.former_main_calendars,
            ["team@group.calendar.google.com"]
        );
        a.settings.rehome = None;
        start(&mut a, "primary", now);
        assert!(a.settings.rehome.is_none(), "no change, no move");
        assert_eq!(a.settings.main_calendar.as_deref(), Some("primary"));
    }
}
