//! A CRM series edit never silently reverts an occurrence the user edited in Google that the
//! sync has not read yet: before a series' exceptions are written, Google's occurrences are
//! compared with those the pair last saw, and a change there is a conflict for the tenant's
//! policy. Attendees' answers are no such change (embedded store, Google sandbox).

use crate::world::{Backend, Env};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;

const USER: &str = "u-series";
const ALICE: &str = "alice@example.com";

struct Cal {
    env: Env,
    alice: SecretString,
}

impl Cal {
    async fn new() -> Self {
        let env = Env::new_on(Backend::Embedded).await;
        let q = env.connect(USER, &["calendar"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
        let cal = Self { env, alice };
        cal.env.run_job(USER, SyncReason::Scheduled).await;
        cal
    }

    /// The CRM saves the series, then its record-change job runs (no read of Google first).
    async fn put_and_push(&self, series: Value) {
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/events/SER-1"),
                &self.env.sync,
                Some(series),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        self.env.run_job(USER, SyncReason::RecordChange).await;
    }

    async fn master(&self) -> Event {
        self.env
            .google_events(&self.alice)
            .await
            .into_iter()
            .find(|e| e.recurrence.is_some())
            .expect("the series in Google")
    }

    async fn instance(&self, id: &str) -> Event {
        self.env
            .app
            .google
            .get_event(&self.alice, "primary", id)
            .await
            .unwrap()
            .unwrap()
    }

    /// The user edits one occurrence in Google Calendar.
    async fn edit_occurrence(&self, id: &str, fields: Value) {
        self.env
            .app
            .google
            .patch_event(&self.alice, "primary", id, &fields, None, SendUpdates::None)
            .await
            .unwrap();
    }

    async fn feed_of_series(&self) -> Vec<Value> {
        self.env
            .changes()
            .await
            .into_iter()
            .filter(|r| r["crm_id"] == "SER-1")
            .collect()
    }
}

fn series(title: &str, updated_at: &str) -> Value {
    json!({
        "type": "meeting", "title": title,
        "start": {"date_time": "2026-07-06T15:00:00+02:00"},
        "end": {"date_time": "2026-07-06T15:30:00+02:00"}, "time_zone": "Europe/Paris",
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
        "attendees": [
            {"email": ALICE, "response": "accepted"},
            {"email": "carol@example.org", "name": "Carol", "response": "needsAction"},
        ],
        "updated_at": updated_at,
    })
}

fn start_of(e: &Event) -> i64 {
    let t = e.start.as_ref().and_then(|s| s.date_time.clone()).unwrap();
    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn utc(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn an_occurrence_moved_in_google_survives_an_older_crm_series_edit() {
    let cal = Cal::new().await;
    cal.put_and_push(series("Weekly demo", "2026-01-01T00:00:00Z"))
        .await;
    let master = cal.master().await;
    let thirteenth = format!("{}_20260713T130000Z", master.id);

    // The user moves the occurrence of 13 July in Google (the series' own etag is unchanged).
    cal.edit_occurrence(
        &thirteenth,
        json!({"start": {"dateTime": "2026-07-14T09:00:00+02:00"},
               "end": {"dateTime": "2026-07-14T09:30:00+02:00"}}),
    )
    .await;
    assert_eq!(cal.master().await.etag, master.etag);

    // Before any read, the CRM saves a series edit made earlier than the move: its job must
    // not put the occurrence back to the rule. Both sides changed: a conflict, which the
    // later change (Google's) wins.
    cal.put_and_push(series("Weekly demo (agenda)", "2026-01-02T00:00:00Z"))
        .await;
    assert_eq!(
        start_of(&cal.instance(&thirteenth).await),
        utc("2026-07-14T07:00:00Z"),
        "the occurrence edit made in Google survives"
    );
    let feed = cal.feed_of_series().await;
    let update = feed
        .iter()
        .rev()
        .find(|r| r["kind"] == "event_updated")
        .expect("the CRM hears of Google's series");
    assert_eq!(update["data"]["conflict"]["winner"], "google", "{update}");
    let exceptions = update["data"]["event"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert_eq!(
        exceptions[0]["original_start"]["date_time"],
        "2026-07-13T13:00:00Z"
    );
    assert_eq!(cal.master().await.summary.as_deref(), Some("Weekly demo"));

    // A later CRM edit of the series, after another occurrence moved in Google: the CRM's is
    // the later change and wins — told as a conflict, not done silently.
    let twentieth = format!("{}_20260720T130000Z", master.id);
    cal.edit_occurrence(&twentieth, json!({"summary": "Demo (moved room)"}))
        .await;
    let mut edit = series("Weekly demo (final)", "2099-01-01T00:00:00Z");
    edit["exceptions"] = json!([{
        "original_start": {"date_time": "2026-07-13T15:00:00+02:00"},
        "start": {"date_time": "2026-07-14T09:00:00+02:00"},
        "end": {"date_time": "2026-07-14T09:30:00+02:00"},
    }]);
    cal.put_and_push(edit).await;
    assert_eq!(
        cal.master().await.summary.as_deref(),
        Some("Weekly demo (final)")
    );
    assert_eq!(
        start_of(&cal.instance(&thirteenth).await),
        utc("2026-07-14T07:00:00Z"),
        "the CRM kept the move it was told of"
    );
    let resolved = cal
        .feed_of_series()
        .await
        .into_iter()
        .rev()
        .find(|r| r["kind"] == "conflict_resolved")
        .expect("the CRM is told its edit won a conflict");
    assert_eq!(resolved["data"]["winner"], "crm", "{resolved}");
}

#[tokio::test]
async fn answers_to_one_occurrence_are_no_conflict_for_a_series_edit() {
    let cal = Cal::new().await;
    cal.put_and_push(series("Weekly demo", "2026-01-01T00:00:00Z"))
        .await;
    let master = cal.master().await;
    let thirteenth = format!("{}_20260713T130000Z", master.id);
    // Carol accepts only the occurrence of 13 July; the user declines it.
    let occurrence = cal.instance(&thirteenth).await;
    let attendees: Vec<Value> = occurrence
        .attendees
        .iter()
        .flatten()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap();
            v["responseStatus"] = json!(if a.email.as_deref() == Some(ALICE) {
                "declined"
            } else {
                "accepted"
            });
            v
        })
        .collect();
    cal.edit_occurrence(&thirteenth, json!({"attendees": attendees}))
        .await;
    let before = cal.feed_of_series().await.len();

    // A CRM series edit, older than the answers: answers are not edits, so no conflict, and
    // the CRM's title goes through.
    cal.put_and_push(series("Weekly demo (agenda)", "2026-01-02T00:00:00Z"))
        .await;
    assert_eq!(
        cal.master().await.summary.as_deref(),
        Some("Weekly demo (agenda)")
    );
    let after = cal.feed_of_series().await;
    assert!(
        after[before..]
            .iter()
            .all(|r| r["kind"] != "conflict_resolved" && r["data"]["conflict"].is_null()),
        "no conflict: {:?}",
        &after[before..]
    );
    let carol = cal
        .instance(&thirteenth)
        .await
        .attendees
        .into_iter()
        .flatten()
        .find(|a| a.email.as_deref() == Some("carol@example.org"))
        .and_then(|a| a.response_status);
    assert_eq!(carol.as_deref(), Some("accepted"), "Carol's answer stands");
}
