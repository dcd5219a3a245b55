//! Calendar two-way sync end to end: CRM pushes through the public API, Google edits through
//! the Google sandbox, the worker's passes, the change feed — on DynamoDB Local and moto.

use crate::world::Env;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::calendar::normal::Normalized;
use shared::domain::{Collection, TenantId, UserId};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::{SyncJob, SyncReason};
use std::time::{Duration, Instant};

const USER: &str = "u-alice";
const ALICE: &str = "alice@example.com";

struct Cal {
    env: Env,
    /// A token of alice's, as Google Calendar's own UI would act.
    alice: SecretString,
}

impl Cal {
    async fn new() -> Self {
        Self::with_settings(json!({})).await
    }

    async fn with_settings(defaults: Value) -> Self {
        let env = Env::new().await;
        env.set_defaults(defaults).await;
        let q = env.connect(USER, &["calendar"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
        // The first pass: the initial (empty) read of the calendar.
        let cal = Self { env, alice };
        cal.run(SyncReason::Scheduled).await;
        cal
    }

    fn tenant(&self) -> &TenantId {
        &self.env.tenant
    }

    async fn run(&self, reason: SyncReason) {
        self.env.run_job(USER, reason).await;
    }

    async fn put(&self, crm_id: &str, event: Value) -> (StatusCode, Value) {
        self.env.put_event(USER, crm_id, event).await
    }

    async fn google_events(&self) -> Vec<Event> {
        self.env.google_events(&self.alice).await
    }

    /// The user edits an event in Google Calendar (a patch of the given fields).
    async fn edit_in_google(&self, id: &str, fields: &Value) {
        self.env
            .app
            .google
            .patch_event(&self.alice, "primary", id, fields, None, SendUpdates::None)
            .await
            .unwrap();
    }

    async fn feed(&self) -> Vec<Value> {
        self.env.changes().await
    }

    fn google_requests(&self, path_prefix: &str) -> usize {
        self.env
            .sandbox
            .request_log()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .count()
    }
}

fn meeting(title: &str) -> Value {
    json!({
        "type": "meeting", "title": title,
        "description": "Agenda:\n1. Pricing\n2. Next steps",
        "location": "Room 4",
        "start": {"date_time": "2026-06-10T09:00:00+02:00"},
        "end": {"date_time": "2026-06-10T10:00:00+02:00"},
        "time_zone": "Europe/Paris",
        "attendees": [
            {"email": "carol@example.org", "name": "Carol", "response": "accepted"},
            {"email": "dan@example.org", "response": "tentative", "optional": true}
        ]
    })
}

#[tokio::test]
async fn a_crm_meeting_appears_in_google_with_our_id_and_properties() {
    let cal = Cal::with_settings(json!({"event_colors": {"call": "11"}})).await;
    let (s, v) = cal.put("MTG-1", meeting("Kick-off")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["state"], "pending");
    cal.run(SyncReason::RecordChange).await;

    let events = cal.google_events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.summary.as_deref(), Some("Kick-off"));
    assert_eq!(
        e.start.as_ref().unwrap().time_zone.as_deref(),
        Some("Europe/Paris")
    );
    let private = &e.extended_properties.as_ref().unwrap().private;
    assert_eq!(private["crmId"], "MTG-1");
    assert_eq!(private["crmTenant"], cal.tenant().as_str());
    assert_eq!(private["crmType"], "meeting");
    assert!(e
        .id
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)));

    let (_, v) = cal
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/events/MTG-1"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(v["state"], "synced", "{v}");
    assert_eq!(v["google_event_id"], e.id.as_str());

    // Nothing lost in the trip: Google's event normalizes to exactly the CRM's — but for the
    // guests' responses, which are theirs to give in Google (they are invited, needsAction).
    let crm: shared::calendar::model::CrmEvent =
        serde_json::from_value(meeting("Kick-off")).unwrap();
    let google = Normalized::from_google(&serde_json::to_value(e).unwrap());
    assert_eq!(
        google.without_responses(),
        Normalized::from_crm(&crm).without_responses()
    );
    assert!(google
        .attendees
        .iter()
        .all(|a| a.response == shared::calendar::model::Response::NeedsAction));

    // A call gets the tenant's colour for calls.
    let mut call = meeting("Follow-up call");
    call["type"] = json!("call");
    cal.put("CALL-1", call).await;
    cal.run(SyncReason::RecordChange).await;
    let events = cal.google_events().await;
    let call = events
        .iter()
        .find(|e| e.summary.as_deref() == Some("Follow-up call"))
        .unwrap();
    assert_eq!(call.color_id.as_deref(), Some("11"));

    // Guests are not e-mailed by the sync unless the tenant asks for it.
    let inserts = |cal: &Cal| -> Vec<String> {
        cal.env
            .sandbox
            .request_log()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/calendar/v3/calendars/primary/events")
            .map(|r| r.query.unwrap_or_default())
            .collect()
    };
    assert!(
        inserts(&cal).iter().all(|q| q.contains("sendUpdates=none")),
        "{:?}",
        inserts(&cal)
    );
    let (s, v) = cal
        .env
        .call(
            "PATCH",
            "/v1/admin/settings",
            &cal.env.admin,
            Some(json!({"defaults": {"guest_notifications": "external_only"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["defaults"]["guest_notifications"], "external_only");
    cal.env.sandbox.clear_request_log();
    cal.put("MTG-2", meeting("Announced")).await;
    cal.run(SyncReason::RecordChange).await;
    assert_eq!(inserts(&cal), vec!["sendUpdates=externalOnly".to_owned()]);
}

#[tokio::test]
async fn retried_and_stale_pushes_change_nothing() {
    let cal = Cal::new().await;
    let mut m = meeting("Review");
    m["updated_at"] = json!("2026-06-01T10:00:00Z");
    assert_eq!(cal.put("MTG-1", m.clone()).await.0, StatusCode::ACCEPTED);
    cal.run(SyncReason::RecordChange).await;
    // The same delivery again: nothing to do.
    let (s, v) = cal.put("MTG-1", m.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A newer edit, then a late retry of an older one: the older one is ignored.
    let mut newer = meeting("Review (moved)");
    newer["updated_at"] = json!("2026-06-01T11:00:00Z");
    assert_eq!(cal.put("MTG-1", newer).await.0, StatusCode::ACCEPTED);
    let mut late = meeting("Review (stale)");
    late["updated_at"] = json!("2026-06-01T10:30:00Z");
    assert_eq!(cal.put("MTG-1", late).await.0, StatusCode::OK);
    cal.run(SyncReason::RecordChange).await;
    cal.run(SyncReason::RecordChange).await;
    let events = cal.google_events().await;
    assert_eq!(events.len(), 1, "no duplicates");
    assert_eq!(events[0].summary.as_deref(), Some("Review (moved)"));
}

#[tokio::test]
async fn google_edits_reach_the_crm_feed_and_patches_keep_attendees() {
    let cal = Cal::new().await;
    cal.put("MTG-1", meeting("Planning")).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);

    // The user renames it in Google.
    cal.edit_in_google(&e.id, &json!({"summary": "Planning (Q3)"}))
        .await;
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    let updated: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "event_updated")
        .collect();
    assert_eq!(updated.len(), 1, "{feed:?}");
    assert_eq!(updated[0]["crm_id"], "MTG-1");
    assert_eq!(updated[0]["data"]["event"]["title"], "Planning (Q3)");
    assert_eq!(
        updated[0]["data"]["event"]["attendees"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The CRM then changes the location: a patch of our fields only; Google's own additions
    // (a reminder, and a meeting room booked in Google) survive, and attendees stay.
    let room = "c_1880rooms4th@resource.calendar.google.com";
    let mut attendees = serde_json::to_value(e.attendees.clone().unwrap()).unwrap();
    attendees.as_array_mut().unwrap().push(
        json!({"email": room, "displayName": "4th floor", "resource": true, "responseStatus": "accepted"}),
    );
    cal.edit_in_google(&e.id, &json!({"reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 5}]}, "attendees": attendees})).await;
    cal.run(SyncReason::Push).await;
    assert_eq!(
        cal.feed().await.len(),
        feed.len(),
        "a room is not the CRM's business: no record"
    );
    let mut m = meeting("Planning (Q3)");
    m["location"] = json!("Room 7");
    cal.put("MTG-1", m).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    assert_eq!(e.location.as_deref(), Some("Room 7"));
    let attendees = e.attendees.as_ref().unwrap();
    assert_eq!(attendees.len(), 3, "{attendees:?}");
    assert!(attendees
        .iter()
        .any(|a| a.email.as_deref() == Some(room) && a.resource == Some(true)));
    assert_eq!(e.reminders.as_ref().unwrap().use_default, Some(false));

    // Removing a person in the CRM still removes them, and keeps the room.
    let mut m = meeting("Planning (Q3)");
    m["location"] = json!("Room 7");
    m["attendees"].as_array_mut().unwrap().pop();
    cal.put("MTG-1", m).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    let emails: Vec<_> = e
        .attendees
        .unwrap()
        .into_iter()
        .filter_map(|a| a.email)
        .collect();
    assert_eq!(
        emails,
        vec!["carol@example.org".to_owned(), room.to_owned()]
    );
}

#[tokio::test]
async fn google_born_events_are_acknowledged_then_updated_not_duplicated() {
    let cal = Cal::new().await;
    let born: Event = serde_json::from_value(json!({
        "summary": "Lunch with Erin",
        "start": {"date": "2026-06-12"}, "end": {"date": "2026-06-13"}
    }))
    .unwrap();
    let born = cal
        .env
        .app
        .google
        .insert_event(&cal.alice, "primary", &born, SendUpdates::None)
        .await
        .unwrap();
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    let created: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "event_created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["crm_id"], Value::Null);
    assert_eq!(created[0]["google_id"], born.id.as_str());
    assert_eq!(created[0]["data"]["event"]["start"]["date"], "2026-06-12");
    assert_eq!(created[0]["data"]["event"]["end"]["date"], "2026-06-13");

    // The CRM creates its record and says which id it gave it.
    let (s, v) = cal
        .env
        .call(
            "POST",
            "/v1/changes/ack",
            &cal.env.sync,
            Some(
                json!({"items": [{"user": USER, "google_event_id": born.id, "crm_id": "CRM-77"}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["result"], "linked");

    // Its next push of the record is an update of the same Google event.
    let (s, _) = cal
        .put("CRM-77", json!({"title": "Lunch with Erin & Frank", "start": {"date": "2026-06-12"}, "end": {"date": "2026-06-13"}}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    cal.run(SyncReason::RecordChange).await;
    let events = cal.google_events().await;
    assert_eq!(events.len(), 1, "no duplicate");
    assert_eq!(events[0].id, born.id);
    assert_eq!(
        events[0].summary.as_deref(),
        Some("Lunch with Erin & Frank")
    );
    // Acknowledging again, or for an unknown event, is harmless.
    let (_, v) = cal
        .env
        .call(
            "POST",
            "/v1/changes/ack",
            &cal.env.sync,
            Some(json!({"items": [
                {"user": USER, "google_event_id": born.id, "crm_id": "CRM-77"},
                {"user": USER, "google_event_id": "nosuchevent", "crm_id": "CRM-78"}
            ]})),
        )
        .await;
    assert_eq!(v["items"][0]["result"], "already_linked");
    assert_eq!(v["items"][1]["result"], "unknown");
}

#[tokio::test]
async fn conflicts_follow_the_later_edit_by_default() {
    let cal = Cal::new().await;
    let mut m = meeting("Budget");
    m["updated_at"] = json!("2026-01-01T00:00:00Z");
    cal.put("MTG-1", m).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    // Google edited now; the CRM's edit carries an older time: Google wins.
    cal.edit_in_google(&e.id, &json!({"summary": "Budget (Google)"}))
        .await;
    let mut crm_edit = meeting("Budget (CRM)");
    crm_edit["updated_at"] = json!("2026-01-02T00:00:00Z");
    cal.put("MTG-1", crm_edit).await;
    cal.run(SyncReason::Push).await;
    let e = cal.google_events().await.remove(0);
    assert_eq!(e.summary.as_deref(), Some("Budget (Google)"));
    let feed = cal.feed().await;
    let last = feed
        .iter()
        .rev()
        .find(|r| r["kind"] == "event_updated")
        .unwrap();
    assert_eq!(last["data"]["event"]["title"], "Budget (Google)");
    assert_eq!(last["data"]["conflict"]["winner"], "google");

    // A CRM edit later than Google's wins.
    let mut crm_edit = meeting("Budget (final)");
    crm_edit["updated_at"] = "2099-01-01T00:00:00Z".into();
    cal.put("MTG-1", crm_edit).await;
    cal.run(SyncReason::Push).await;
    assert_eq!(
        cal.google_events().await[0].summary.as_deref(),
        Some("Budget (final)")
    );
}

#[tokio::test]
async fn deletions_unlink_by_default_and_propagate_when_asked() {
    let cal = Cal::new().await;
    cal.put("MTG-1", meeting("Stays in Google")).await;
    cal.put("MTG-2", meeting("Deleted in Google")).await;
    cal.run(SyncReason::RecordChange).await;
    // CRM deletes MTG-1: unlinked, the Google event stays.
    let (s, v) = cal
        .env
        .call(
            "DELETE",
            &format!("/v1/users/{USER}/events/MTG-1"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    cal.run(SyncReason::RecordChange).await;
    assert_eq!(cal.google_events().await.len(), 2);
    // Google deletes MTG-2's event: the CRM is told the link is gone, not to delete.
    let e2 = cal
        .google_events()
        .await
        .into_iter()
        .find(|e| e.summary.as_deref() == Some("Deleted in Google"))
        .unwrap();
    cal.env
        .app
        .google
        .delete_event(&cal.alice, "primary", &e2.id, None, SendUpdates::None)
        .await
        .unwrap();
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    assert!(
        feed.iter()
            .any(|r| r["kind"] == "event_unlinked" && r["crm_id"] == "MTG-2"),
        "{feed:?}"
    );
    assert!(!feed.iter().any(|r| r["kind"] == "event_deleted"));

    // With propagation: a CRM delete deletes in Google.
    let cal = Cal::with_settings(json!({"deletion_policy": "propagate"})).await;
    cal.put("MTG-1", meeting("Goes away")).await;
    cal.run(SyncReason::RecordChange).await;
    cal.env.delete_event(USER, "MTG-1").await;
    cal.run(SyncReason::RecordChange).await;
    assert!(cal.google_events().await.is_empty());
    // A late retry of the old PUT cannot resurrect it.
    let mut late = meeting("Goes away");
    late["updated_at"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(cal.put("MTG-1", late).await.0, StatusCode::OK);
    cal.run(SyncReason::RecordChange).await;
    assert!(cal.google_events().await.is_empty());
}

#[tokio::test]
async fn an_edit_beats_a_delete() {
    let cal = Cal::with_settings(json!({"deletion_policy": "propagate"})).await;
    cal.put("MTG-1", meeting("Contested")).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    // Google edits, the CRM deletes before it heard: the edit wins, the CRM gets it back.
    cal.edit_in_google(&e.id, &json!({"summary": "Contested (edited)"}))
        .await;
    cal.env.delete_event(USER, "MTG-1").await;
    cal.run(SyncReason::Push).await;
    assert_eq!(cal.google_events().await.len(), 1, "not deleted");
    let feed = cal.feed().await;
    let back = feed.iter().rev().find(|r| r["crm_id"] == "MTG-1").unwrap();
    assert_eq!(back["kind"], "event_created");
    assert_eq!(back["data"]["edit_beat_delete"], true);
}

#[tokio::test]
async fn pushing_many_events_uses_the_batch_endpoint() {
    let cal = Cal::new().await;
    for i in 0..120 {
        let mut m = meeting(&format!("Meeting {i}"));
        m["start"] = json!({"date_time": format!("2026-07-{:02}T09:00:00+02:00", 1 + i % 28)});
        m["end"] = json!({"date_time": format!("2026-07-{:02}T10:00:00+02:00", 1 + i % 28)});
        assert_eq!(
            cal.put(&format!("MTG-{i}"), m).await.0,
            StatusCode::ACCEPTED
        );
    }
    cal.env.sandbox.clear_request_log();
    cal.run(SyncReason::RecordChange).await;
    let calendar_calls = cal.google_requests("/calendar/v3");
    let batch_calls = cal.google_requests("/batch/calendar/v3");
    assert_eq!(batch_calls, 3, "⌈120/50⌉ batch requests");
    // The sandbox logs each batch part as a Calendar request too: exactly the 120 inserts,
    // so nothing was sent outside the batches.
    assert_eq!(calendar_calls, 120);
    let events = cal.google_events().await;
    assert_eq!(events.len(), 120);
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
}

#[tokio::test]
async fn status_entries_of_google_are_not_crm_events() {
    let cal = Cal::new().await;
    let before = cal.feed().await.len();
    for body in [
        json!({"summary": "Out of office", "eventType": "outOfOffice",
               "start": {"dateTime": "2027-01-04T09:00:00Z"}, "end": {"dateTime": "2027-01-05T09:00:00Z"},
               "outOfOfficeProperties": {"autoDeclineMode": "declineOnlyNewConflictingInvitations"}}),
        json!({"summary": "Focus", "eventType": "focusTime",
               "start": {"dateTime": "2027-01-06T09:00:00Z"}, "end": {"dateTime": "2027-01-06T11:00:00Z"}}),
        json!({"summary": "Office", "eventType": "workingLocation", "visibility": "public", "transparency": "transparent",
               "start": {"date": "2027-01-07"}, "end": {"date": "2027-01-08"},
               "workingLocationProperties": {"type": "officeLocation", "officeLocation": {"label": "HQ"}}}),
        json!({"summary": "Customer call", "start": {"dateTime": "2027-01-08T09:00:00Z"}, "end": {"dateTime": "2027-01-08T09:30:00Z"}}),
    ] {
        let event: Event = serde_json::from_value(body).unwrap();
        cal.env
            .app
            .google
            .insert_event(&cal.alice, "primary", &event, SendUpdates::None)
            .await
            .unwrap();
    }
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    let titles: Vec<&str> = feed[before..]
        .iter()
        .filter_map(|r| r["data"]["event"]["title"].as_str())
        .collect();
    assert_eq!(titles, vec!["Customer call"]);
}

#[tokio::test]
async fn an_idle_incremental_pass_costs_one_list_per_calendar() {
    let cal = Cal::new().await;
    cal.put("MTG-1", meeting("Something")).await;
    cal.run(SyncReason::RecordChange).await;
    cal.run(SyncReason::Scheduled).await;
    cal.env.sandbox.clear_request_log();
    cal.run(SyncReason::Scheduled).await;
    let log = cal.env.sandbox.request_log();
    let google: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        google,
        vec!["GET /calendar/v3/calendars/primary/events".to_owned()],
        "{google:?}"
    );
}

#[tokio::test]
async fn an_expired_sync_token_resyncs_without_duplicates() {
    let cal = Cal::new().await;
    cal.put("MTG-1", meeting("Kept")).await;
    cal.run(SyncReason::RecordChange).await;
    let born: Event = serde_json::from_value(json!({
        "summary": "Google side", "start": {"date": "2026-06-20"}, "end": {"date": "2026-06-21"}
    }))
    .unwrap();
    cal.env
        .app
        .google
        .insert_event(&cal.alice, "primary", &born, SendUpdates::None)
        .await
        .unwrap();
    // (In the read window: the full read covers what ends after the "sync since" date.)
    let mut next_year = meeting("Deleted while the token was stale");
    next_year["start"] = json!({"date_time": "2027-06-10T09:00:00+02:00"});
    next_year["end"] = json!({"date_time": "2027-06-10T10:00:00+02:00"});
    cal.put("MTG-2", next_year).await;
    cal.run(SyncReason::RecordChange).await;
    cal.run(SyncReason::Push).await;
    let before = cal.feed().await.len();
    // The user deletes MTG-2 in Google, and Google expires the sync token before we hear of
    // it: the full read that follows does not list deleted events.
    let gone = cal
        .google_events()
        .await
        .into_iter()
        .find(|e| e.summary.as_deref() == Some("Deleted while the token was stale"))
        .unwrap();
    cal.env
        .app
        .google
        .delete_event(&cal.alice, "primary", &gone.id, None, SendUpdates::None)
        .await
        .unwrap();
    cal.env.sandbox.invalidate_sync_tokens(ALICE);
    cal.run(SyncReason::Push).await;
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    let news: Vec<_> = feed[before..]
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["crm_id"].as_str()))
        .collect();
    assert_eq!(
        news,
        vec![("event_unlinked", Some("MTG-2"))],
        "a full resync re-announces nothing, and finds the deletion it was not told of"
    );
    assert_eq!(cal.google_events().await.len(), 2);
    let pairs = cal
        .env
        .app
        .store
        .list_pairs(
            cal.tenant(),
            &UserId::parse(USER).unwrap(),
            Collection::Calendar,
            1000,
            None,
        )
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.deleted_at.is_none())
        .count();
    assert_eq!(pairs, 2);
}

#[tokio::test]
async fn a_mass_deletion_in_google_is_held_back_until_confirmed() {
    let cal = Cal::new().await;
    for i in 0..30 {
        cal.put(&format!("MTG-{i}"), meeting(&format!("M{i}")))
            .await;
    }
    cal.run(SyncReason::RecordChange).await;
    cal.run(SyncReason::Push).await;
    for e in cal.google_events().await {
        cal.env
            .app
            .google
            .delete_event(&cal.alice, "primary", &e.id, None, SendUpdates::None)
            .await
            .unwrap();
    }
    cal.run(SyncReason::Push).await;
    let feed = cal.feed().await;
    assert!(
        feed.iter().any(|r| r["kind"] == "mass_deletion_blocked"),
        "{feed:?}"
    );
    assert!(!feed.iter().any(|r| r["kind"] == "event_unlinked"));
    let (_, account) = cal.env.account(USER).await;
    assert!(account["last_error"]
        .as_str()
        .unwrap()
        .contains("held back"));

    // Confirmed through "sync now": carried out.
    let (s, _) = cal
        .env
        .call(
            "POST",
            &format!("/v1/users/{USER}/sync"),
            &cal.env.sync,
            Some(json!({"confirm_mass_deletion": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let job = SyncJob {
        tenant: cal.env.tenant.clone(),
        user: UserId::parse(USER).unwrap(),
        calendar: None,
        reason: SyncReason::Manual,
        confirm_mass_deletion: true,
        record: None,
    };
    sync_worker::run(&cal.env.app, &job, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let unlinked = cal
        .feed()
        .await
        .iter()
        .filter(|r| r["kind"] == "event_unlinked")
        .count();
    assert_eq!(unlinked, 30);
}

#[tokio::test]
async fn bad_events_are_refused_with_clear_errors() {
    let cal = Cal::new().await;
    for (bad, why) in [
        (
            json!({"title": "x", "start": {"date": "2026-01-02"}, "end": {"date": "2026-01-02"}}),
            "exclusive",
        ),
        (
            json!({"title": "x", "start": {"date_time": "2026-01-02T10:00:00"}, "end": {"date_time": "2026-01-02T11:00:00Z"}}),
            "offset",
        ),
        (
            json!({"title": "x", "start": {"date_time": "2026-01-02T10:00:00Z"}, "end": {"date_time": "2026-01-02T11:00:00Z"}, "time_zone": "Nowhere/Land"}),
            "IANA",
        ),
        (
            json!({"title": "", "start": {"date": "2026-01-02"}, "end": {"date": "2026-01-03"}}),
            "title",
        ),
        (
            json!({"title": "x", "start": {"date": "2026-01-02"}, "end": {"date": "2026-01-03"}, "colour": "red"}),
            "unknown field",
        ),
    ] {
        let (s, v) = cal.put("MTG-BAD", bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {v}"
        );
    }
    let (s, _) = cal
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/events/MTG-BAD"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stale_etag_is_settled_by_reading_the_event_again() {
    let cal = Cal::new().await;
    cal.put("MTG-1", meeting("Etags")).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    // Google changes something we do not sync (its etag changes); no read pass follows.
    cal.edit_in_google(&e.id, &json!({"reminders": {"useDefault": false}}))
        .await;
    let mut m = meeting("Etags");
    m["location"] = json!("Room 9");
    cal.put("MTG-1", m).await;
    cal.run(SyncReason::RecordChange).await;
    let e = cal.google_events().await.remove(0);
    assert_eq!(e.location.as_deref(), Some("Room 9"));
    let (_, v) = cal
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/events/MTG-1"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(v["state"], "synced", "{v}");
}

#[tokio::test]
async fn exceptions_of_a_series_follow_edits_both_ways() {
    let cal = Cal::new().await;
    let series = |exceptions: Value| {
        json!({
            "title": "Weekly demo", "start": {"date_time": "2026-07-06T15:00:00+02:00"},
            "end": {"date_time": "2026-07-06T15:30:00+02:00"}, "time_zone": "Europe/Paris",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"], "exceptions": exceptions,
        })
    };
    let moved = json!({"original_start": {"date_time": "2026-07-13T15:00:00+02:00"},
        "start": {"date_time": "2026-07-14T09:00:00+02:00"}, "end": {"date_time": "2026-07-14T09:30:00+02:00"}});
    assert_eq!(
        cal.put("SER-1", series(json!([moved]))).await.0,
        StatusCode::ACCEPTED
    );
    cal.run(SyncReason::RecordChange).await;
    let master = cal
        .google_events()
        .await
        .into_iter()
        .find(|e| e.recurrence.is_some())
        .unwrap();
    let instance = |suffix: &str| format!("{}_{suffix}", master.id);
    let got = |id: String| {
        let alice = &cal.alice;
        let app = &cal.env.app;
        async move {
            app.google
                .get_event(alice, "primary", &id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let starts_at = |e: Event| {
        let t = e.start.and_then(|s| s.date_time).unwrap();
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    let utc = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    let e = got(instance("20260713T130000Z")).await;
    assert_eq!(starts_at(e), utc("2026-07-14T07:00:00Z"), "moved in Google");

    // The user cancels the occurrence of 20 July in Google: the CRM hears of the series with
    // both exceptions, for the cost of the incremental list plus one read of the series.
    cal.env
        .app
        .google
        .delete_event(
            &cal.alice,
            "primary",
            &instance("20260720T130000Z"),
            None,
            SendUpdates::None,
        )
        .await
        .unwrap();
    cal.env.sandbox.clear_request_log();
    cal.run(SyncReason::Push).await;
    let lists = cal.google_requests("/calendar/v3/calendars/primary/events");
    assert!(
        lists <= 3,
        "{lists} Calendar requests for one changed occurrence"
    );
    let feed = cal.feed().await;
    let update = feed
        .iter()
        .rev()
        .find(|r| r["kind"] == "event_updated" && r["crm_id"] == "SER-1")
        .expect("the series' update");
    let exceptions = update["data"]["event"]["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 2, "{exceptions:?}");
    assert_eq!(exceptions[1]["cancelled"], true);
    assert_eq!(
        exceptions[1]["original_start"]["date_time"],
        "2026-07-20T13:00:00Z"
    );

    // The CRM takes that in and drops the move: the occurrence of 13 July goes back to the
    // rule's time, the cancellation stays.
    let cancelled =
        json!({"original_start": {"date_time": "2026-07-20T15:00:00+02:00"}, "cancelled": true});
    assert_eq!(
        cal.put("SER-1", series(json!([cancelled]))).await.0,
        StatusCode::ACCEPTED
    );
    cal.run(SyncReason::RecordChange).await;
    let e = got(instance("20260713T130000Z")).await;
    assert_eq!(
        starts_at(e),
        utc("2026-07-13T13:00:00Z"),
        "back to the rule"
    );
    let e = got(instance("20260720T130000Z")).await;
    assert!(e.is_cancelled());
    // And nothing echoes back to the CRM.
    let before = cal.feed().await.len();
    cal.run(SyncReason::Scheduled).await;
    assert_eq!(cal.feed().await.len(), before);

    // An occurrence the rule does not have is reported on the pair, not retried forever.
    let bogus =
        json!({"original_start": {"date_time": "2026-07-15T15:00:00+02:00"}, "title": "Nope"});
    cal.put("SER-1", series(json!([cancelled, bogus]))).await;
    cal.run(SyncReason::RecordChange).await;
    let (s, v) = cal
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/events/SER-1"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not an occurrence")),
        "{v}"
    );
}

#[tokio::test]
async fn an_oversized_series_is_refused_with_the_limit_and_the_largest_supported_syncs() {
    let cal = Cal::new().await;
    // One occurrence more than the product keeps: refused at once, naming the limit.
    let (s, v) = cal.put("ALL-HANDS-XL", crate::world::all_hands(8)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "record_too_large", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("256 KB"),
        "{v}"
    );
    // The largest supported (300 attendees, 7 occurrences with attendee lists of their own)
    // is stored on DynamoDB and reaches Google.
    let (s, v) = cal.put("ALL-HANDS", crate::world::all_hands(7)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    cal.run(SyncReason::RecordChange).await;
    let (_, v) = cal
        .env
        .call(
            "GET",
            &format!("/v1/users/{USER}/events/ALL-HANDS"),
            &cal.env.sync,
            None,
        )
        .await;
    assert_eq!(v["state"], "synced", "{v}");
}
