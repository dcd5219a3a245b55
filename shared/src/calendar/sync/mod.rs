//! The calendar sync passes: read Google's changes (incremental `events.list` per calendar)
//! and push the CRM's waiting changes (through the batch endpoint), both through the sync
//! core ([`crate::sync`]: the cursor, the mass-deletion guard, the reconcile after a full
//! read, the plan within the job's calls, commit after write). What is the calendar's own is
//! here: the calendars read (main and monitored, with their channels), series and their
//! exceptions, private events, event bodies and the derived event ids.

use crate::app::App;
use crate::calendar::normal::content_hash;
use crate::calendar::normal::{Normalized, PROP_CRM_ID, PROP_TENANT, PROP_TYPE, PROP_USER};
use crate::domain::{
    Collection, CrmId, Direction, GuestNotifications, PairStatus, TenantId, UserId,
};
use crate::google::calendar::SendUpdates;
use crate::sync::decide::Policy;
use crate::sync::push;
use crate::sync::{Pass, Report};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use crate::sync::guard::{MASS_DELETION_MIN, MASS_DELETION_SHARE};
pub use crate::sync::SyncError;

mod event;
mod reading;
mod series;
mod writing;
use event::{insert, On};
use reading::{google_json, read_calendar, resources_of};
use series::{baseline_of, google_content, occurrences_changed, write_exceptions};

/// What one pass covers.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions<'a> {
    /// Only this calendar (a push notification), or all of the account's.
    pub calendar: Option<&'a str>,
    /// Read Google's changes (not needed when only the CRM's waiting changes are pushed).
    pub read_google: bool,
    pub confirm_mass_deletion: bool,
    /// A pair known to be waiting (read directly, in case the index has not caught up).
    pub record: Option<&'a CrmId>,
    pub deadline: Instant,
}

/// The CRM's content as the pair stores it.
fn stored(pair: &PairStatus) -> Option<Normalized> {
    pair.crm_content
        .clone()
        .and_then(|v| serde_json::from_value::<Normalized>(v).ok())
}

/// The Google event id of a CRM record: base32hex (Google's alphabet for client ids) of a
/// hash of tenant, user, CRM id and generation — the same every time, so a retried insert can
/// only answer 409, never duplicate.
pub fn google_event_id(t: &TenantId, u: &UserId, crm_id: &CrmId, generation: u32) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let digest = sha2::Sha256::digest(format!(
        "crm-google-sync/event/{t}/{u}/{crm_id}/{generation}"
    ));
    let mut out = String::with_capacity(32);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in &digest[..20] {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    out
}

fn parse_time(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// Everything a pass needs about the account.
struct Ctx<'a> {
    pass: Pass<'a>,
    main_calendar: String,
    send_updates: SendUpdates,
    /// Series with news of an occurrence on the page being read (an exception item): read
    /// again whatever their master's etag says.
    series_news: HashSet<String>,
    /// A failure of the pass as a whole met by one answer (a 401 for one part means the
    /// token is refused for all): the push stops after the chunk and the pass ends with it.
    pass_error: Option<SyncError>,
    /// The Google addresses of the tenant's other users (read once a pass, when an
    /// invitation first needs them; see `born`).
    colleagues: Option<HashSet<String>>,
    /// The CRM id named by the private properties of the Google event being read, when its
    /// pair is another event's: a new Google-born record made of it says so (`from_crm_id`).
    born_from: Option<String>,
}

crate::sync::holds_pass!(Ctx);

impl<'a> Ctx<'a> {
    /// The calendar a pair's event is in (the main calendar for one not in Google yet).
    fn calendar_of(&self, pair: &PairStatus) -> String {
        pair.container
            .clone()
            .unwrap_or_else(|| self.main_calendar.clone())
    }

    /// The pass's part in one calendar's records.
    fn on<'c>(&'c mut self, calendar: &'c str) -> On<'c, 'a> {
        On {
            ctx: self,
            calendar,
        }
    }

    /// The policy for a calendar: monitored calendars are read into the CRM, never written;
    /// a former main calendar is still written for the meetings left there (see `rehome`).
    fn policy_for(&self, calendar: &str) -> Policy {
        let settings = &self.account.settings;
        let former = settings.former_main_calendars.iter().any(|c| c == calendar)
            && !settings.monitored_calendars.iter().any(|c| c == calendar);
        if calendar == self.main_calendar || former {
            self.policy
        } else {
            Policy {
                direction: Direction::GoogleToCrm,
                ..self.policy
            }
        }
    }

    /// The body the product writes to Google for a pair: the fields it owns, its private
    /// extended properties, and the tenant's colour for the event type.
    fn google_body(&self, pair: &PairStatus, content: &Normalized) -> Map<String, Value> {
        let mut body = content.to_google();
        Normalized::leave_rsvps_to_google(&mut body, self.account.google_email.as_deref());
        if let Some(Value::Array(attendees)) = body.get_mut("attendees") {
            for resource in &pair.google_resources {
                let email = resource["email"].as_str();
                if !attendees.iter().any(|a| a["email"].as_str() == email) {
                    attendees.push(resource.clone());
                }
            }
        }
        body.insert(
            "extendedProperties".into(),
            json!({"private": {
                PROP_TENANT: self.t().as_str(),
                PROP_USER: self.u().as_str(),
                PROP_CRM_ID: pair.crm_id.as_str(),
                PROP_TYPE: content.kind.as_str(),
            }}),
        );
        if let Some(color) = self
            .tenant
            .settings
            .defaults
            .event_colors
            .get(content.kind.as_str())
        {
            body.insert("colorId".into(), json!(color));
        }
        body
    }
}

async fn context<'a>(
    app: &'a App,
    t: &TenantId,
    u: &UserId,
    confirm: bool,
) -> Result<Ctx<'a>, SyncError> {
    let pass = Pass::open(app, t, u, Collection::Calendar, confirm).await?;
    let send_updates = match pass.tenant.settings.defaults.guest_notifications {
        GuestNotifications::None => SendUpdates::None,
        GuestNotifications::All => SendUpdates::All,
        GuestNotifications::ExternalOnly => SendUpdates::ExternalOnly,
    };
    Ok(Ctx {
        main_calendar: pass
            .account
            .settings
            .main_calendar
            .clone()
            .unwrap_or_else(|| "primary".to_owned()),
        pass,
        send_updates,
        series_news: HashSet::new(),
        pass_error: None,
        colleagues: None,
        born_from: None,
    })
}

/// A full pass for an account: Google's changes on every synced calendar (or only
/// `calendar`), then the CRM's waiting changes. Stops between pages at `deadline`.
pub async fn sync_account(
    app: &App,
    t: &TenantId,
    u: &UserId,
    options: PassOptions<'_>,
) -> Result<Report, SyncError> {
    let PassOptions {
        calendar,
        read_google,
        confirm_mass_deletion,
        record,
        deadline,
    } = options;
    let mut ctx = context(app, t, u, confirm_mass_deletion).await?;
    let outcome = run_pass(&mut ctx, calendar, read_google, record, deadline).await;
    let mut report = ctx.pass.end(outcome).await?;
    let errors = (!report.errors.is_empty()).then(|| report.errors.join("; "));
    report.noted.synced_at = Some(ctx.now());
    report.noted.last_error = Some(errors);
    Ok(report)
}

async fn run_pass(
    ctx: &mut Ctx<'_>,
    calendar: Option<&str>,
    read_google: bool,
    record: Option<&CrmId>,
    deadline: Instant,
) -> Result<(), SyncError> {
    let (app, t, u) = (ctx.app, ctx.t().clone(), ctx.u().clone());
    if read_google {
        let mut calendars = vec![ctx.main_calendar.clone()];
        for c in &ctx.account.settings.monitored_calendars {
            if !calendars.contains(c) {
                calendars.push(c.clone());
            }
        }
        if let Some(only) = calendar {
            calendars.retain(|c| c == only || (only == "primary" && *c == ctx.main_calendar));
        }
        for cal in calendars {
            // (The read clears its full-read mark however it ends.)
            match read_calendar(ctx, &cal, deadline).await {
                Ok(()) => {}
                Err(e) if e.is_pass_level() => return Err(e),
                // This calendar's own failure (a monitored calendar the user can no longer
                // see, one Google refuses to list): reported on the account, and the other
                // calendars and the CRM's waiting changes go on.
                Err(e) => {
                    tracing::warn!(tenant = %t, user = %u, calendar = %cal, error = %e, "calendar skipped");
                    ctx.report
                        .errors
                        .push(format!("calendar {cal}: {}", e.public_message()));
                    continue;
                }
            }
            let account = ctx.account.id.clone();
            crate::calendar::channels::ensure(app, &ctx.token, &t, &u, &account, &cal).await?;
        }
    }
    // The CRM's waiting changes (see [`crate::sync::push`]): as many as fit in the job's
    // remaining Google calls, in batch requests of [`MAX_PARTS`], each chunk's answers
    // committed before the next is sent; the rest stays waiting for a continuation.
    push::push(ctx, record, deadline).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_base32hex() {
        let t = TenantId::parse("acme").unwrap();
        let u = UserId::parse("u1").unwrap();
        let c = CrmId::parse("MTG-1").unwrap();
        let a = google_event_id(&t, &u, &c, 0);
        assert_eq!(a, google_event_id(&t, &u, &c, 0));
        assert_ne!(a, google_event_id(&t, &u, &c, 1));
        assert_ne!(
            a,
            google_event_id(&TenantId::parse("other").unwrap(), &u, &c, 0)
        );
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='v').contains(&ch)));
    }
}
