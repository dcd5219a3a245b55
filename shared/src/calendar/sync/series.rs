//! A calendar's series: Google's picture of one (the master and the instances that differ
//! from its rule), the check of its occurrences before a CRM edit is written (read, then
//! decide), and writing the CRM's exceptions on the instances.

use super::{google_json, parse_time, Ctx};
use crate::calendar::normal::{instance_suffix, NException, Normalized, When};
use crate::domain::PairStatus;
use crate::google::calendar::{Event, ListEvents};
use crate::google::GoogleError;
use crate::sync::decide::{Action, Decision};
use crate::sync::SyncError;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The Google baseline after a write: the hash of what Google holds — except when it differs
/// from what was written only in attendees' responses someone gave in Google (the write left
/// them to Google, and the CRM had not heard): then the CRM's picture, so the next read sees
/// those responses as news and brings them to the CRM.
pub(super) fn baseline_of(actual: &Normalized, written: &Normalized) -> String {
    if actual != written
        && actual.without_responses() == written.without_responses()
        && actual.answered_since(written)
    {
        written.hash()
    } else {
        actual.hash()
    }
}

/// Google's picture of an event: for a recurring series, the master with its exceptions.
pub(super) async fn google_content(
    ctx: &Ctx<'_>,
    calendar: &str,
    event: &Event,
) -> Result<Normalized, SyncError> {
    let json = google_json(event);
    Ok(match series_instances(ctx, calendar, event).await? {
        Some(instances) => Normalized::from_google_series(&json, &instances),
        None => Normalized::from_google(&json),
    })
}

/// The instances of a series that differ from its rule (`None` for a single event): one
/// `events.list` by iCalUID, which answers the series and its exceptions, cancelled ones too.
async fn series_instances(
    ctx: &Ctx<'_>,
    calendar: &str,
    master: &Event,
) -> Result<Option<Vec<Value>>, SyncError> {
    let recurring = master.recurrence.as_ref().is_some_and(|r| !r.is_empty());
    let Some(uid) = master
        .i_cal_uid
        .clone()
        .filter(|_| recurring && !master.is_cancelled())
    else {
        return Ok(None);
    };
    let mut params = ListEvents {
        i_cal_uid: Some(uid),
        show_deleted: true,
        max_results: Some(2500),
        ..ListEvents::default()
    };
    let mut out = Vec::new();
    loop {
        let page = ctx
            .app
            .google
            .list_events(&ctx.token, calendar, &params)
            .await?;
        out.extend(
            page.items
                .iter()
                .filter(|e| e.recurring_event_id.as_deref() == Some(master.id.as_str()))
                .map(google_json),
        );
        match page.next_page_token {
            Some(next) => params.page_token = Some(next),
            None => return Ok(Some(out)),
        }
    }
}

/// What writing a series' exceptions left.
pub(super) struct ExceptionsWritten {
    /// Google's series as it now is.
    pub(super) actual: Normalized,
    /// A passing failure: write the series again on the next pass.
    pub(super) retry: bool,
    /// For the pair's `last_error`.
    pub(super) error: Option<String>,
}

/// Brings a just-written series' exceptions in line with the CRM's: each occurrence that
/// differs is patched (moved or edited), deleted (cancelled) or put back to the rule (an
/// exception the CRM no longer has). Instances are addressed by Google's instance ids
/// (`{series id}_{original start}`), so nothing needs listing the occurrences.
pub(super) async fn write_exceptions(
    ctx: &Ctx<'_>,
    calendar: &str,
    master: &Event,
    content: &Normalized,
) -> ExceptionsWritten {
    let master_json = google_json(master);
    let mut instances = match series_instances(ctx, calendar, master).await {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => {
            return ExceptionsWritten {
                actual: Normalized::from_google(&master_json),
                retry: e.is_pass_level(),
                error: Some(e.public_message()),
            }
        }
    };
    let current = Normalized::from_google_series(&master_json, &instances);
    let mut starts: Vec<&When> = content
        .exceptions
        .iter()
        .chain(&current.exceptions)
        .map(|x| &x.original_start)
        .collect();
    starts.sort();
    starts.dedup();
    let (mut retry, mut error) = (false, None);
    for original_start in starts {
        let want = content
            .exceptions
            .iter()
            .find(|x| &x.original_start == original_start);
        let have = current
            .exceptions
            .iter()
            .find(|x| &x.original_start == original_start);
        let Some(suffix) = instance_suffix(original_start) else {
            continue;
        };
        if want == have {
            continue;
        }
        let id = format!("{}_{suffix}", master.id);
        let written =
            write_occurrence(ctx, calendar, master, content, &id, original_start, want).await;
        match written {
            Ok(instance) => {
                instances.retain(|i| i["id"].as_str() != Some(id.as_str()));
                instances.push(instance);
            }
            Err(GoogleError::NotFound(_)) => {
                error = Some(format!(
                    "exception {}: not an occurrence of the series",
                    when_text(original_start)
                ));
            }
            // Held back or refused for the whole pass (pacing, the grant, Google down): the
            // series stays waiting and the next pass goes on from here (occurrences already
            // in line are not written again).
            Err(e) if e.is_pass_level() => {
                error = Some(e.to_string());
                retry = true;
                break;
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    ExceptionsWritten {
        actual: Normalized::from_google_series(&master_json, &instances),
        retry,
        error,
    }
}

/// Writes one occurrence `id` of the series as the CRM has it: cancelled (deleted), or
/// patched to `want` (moved or edited), or put back to the rule (`want` is `None`: an
/// exception the CRM no longer has). Answers the instance as Google now holds it.
async fn write_occurrence(
    ctx: &Ctx<'_>,
    calendar: &str,
    master: &Event,
    content: &Normalized,
    id: &str,
    original_start: &When,
    want: Option<&NException>,
) -> Result<Value, GoogleError> {
    if want.is_some_and(|x| x.cancelled) {
        let send = ctx.send_updates;
        ctx.app
            .google
            .delete_event(&ctx.token, calendar, id, None, send)
            .await?;
        return Ok(cancelled_instance(&master.id, id, original_start));
    }
    let back_to_rule = NException::plain(original_start.clone());
    let mut body = content
        .occurrence(want.unwrap_or(&back_to_rule))
        .to_google();
    Normalized::leave_rsvps_to_google(&mut body, ctx.account.google_email.as_deref());
    body.remove("recurrence");
    body.insert("status".into(), json!("confirmed"));
    let body = Value::Object(body);
    let send = ctx.send_updates;
    let written = ctx
        .app
        .google
        .patch_event(&ctx.token, calendar, id, &body, None, send);
    Ok(google_json(&written.await?))
}

fn when_text(w: &When) -> &str {
    match w {
        When::Date(s) | When::Instant(s) => s,
    }
}

/// The instance Google keeps for a deleted occurrence.
fn cancelled_instance(series: &str, id: &str, original_start: &When) -> Value {
    let start = match original_start {
        When::Date(d) => json!({"date": d}),
        When::Instant(i) => json!({"dateTime": i}),
    };
    json!({"id": id, "recurringEventId": series, "originalStartTime": start, "status": "cancelled"})
}

/// Google's series as just read, when its occurrences are no longer those the pair last saw.
pub(super) struct Fresh {
    pub(super) event: Event,
    pub(super) content: Normalized,
    /// The latest change of the series or any of its occurrences.
    pub(super) modified: OffsetDateTime,
}

/// Whether a CRM series edit about to be written (`d`: a push over Google's series) would
/// overwrite occurrences Google changed since the last sync (edited, moved or cancelled in
/// Google and not read yet: a record-change job writes without reading). Costs a read of the
/// series and one list of its occurrences, counted in the write's cost ([`write_cost`]).
/// Attendees' answers are not edits ([`Normalized::occurrences_hash`]).
pub(super) async fn occurrences_changed(
    ctx: &Ctx<'_>,
    calendar: &str,
    pair: &PairStatus,
    d: &Decision,
    content: Option<&Normalized>,
) -> Result<Option<Fresh>, SyncError> {
    let (Some(gid), Some(seen)) = (&pair.google_id, &pair.google_occurrences) else {
        return Ok(None);
    };
    if d.action != Action::PushToGoogle || content.is_none_or(|c| c.recurrence.is_empty()) {
        return Ok(None);
    }
    let Some(event) = ctx.app.google.get_event(&ctx.token, calendar, gid).await? else {
        return Ok(None);
    };
    if event.is_cancelled() {
        // Gone: the write's own answer settles it.
        return Ok(None);
    }
    let instances = series_instances(ctx, calendar, &event).await?;
    let json = google_json(&event);
    let content = match &instances {
        Some(list) => Normalized::from_google_series(&json, list),
        None => Normalized::from_google(&json),
    };
    if content.occurrences_hash().as_ref() == Some(seen) {
        return Ok(None);
    }
    let modified = std::iter::once(event.updated.as_deref())
        .chain(instances.iter().flatten().map(|i| i["updated"].as_str()))
        .filter_map(|t| parse_time(t))
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(Some(Fresh {
        event,
        content,
        modified,
    }))
}
