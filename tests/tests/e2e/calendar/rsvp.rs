//! Attendees' responses are Google's: a CRM edit never writes back a response the attendee
//! gave since, the CRM's own copy of other people's responses is never sent, and an RSVP is
//! not an edit that brings back a meeting the CRM deleted (embedded store).

use crate::world::{Backend, Env};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::google::calendar::{Event, SendUpdates};
use shared::queue::SyncReason;

const USER: &str = "u-rsvp";
const ALICE: &str = "alice@example.com";

struct Cal {
    env: Env,
    alice: SecretString,
}

impl Cal {
    async fn new(defaults: Value) -> Self {
        let env = Env::new_on(Backend::Embedded).await;
        env.set_defaults(defaults).await;
        let q = env.connect(USER, &["calendar"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = crate::world::backlog::token(&env, ALICE);
        let cal = Self { env, alice };
        cal.run().await;
        cal
    }

    async fn run(&self) {
        self.env.run_job(USER, SyncReason::Scheduled).await;
    }

    async fn put(&self, crm_id: &str, event: Value) {
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/events/{crm_id}"),
                &self.env.sync,
                Some(event),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }

    async fn event(&self) -> Event {
        let mut all = self.env.google_events(&self.alice).await;
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn response_of(e: &Event, email: &str) -> String {
        e.attendees
            .iter()
            .flatten()
            .find(|a| a.email.as_deref() == Some(email))
            .and_then(|a| a.response_status.clone())
            .unwrap_or_default()
    }

    /// An attendee answers the invitation (Google updates the organiser's copy).
    async fn rsvp(&self, email: &str, response: &str) {
        let e = self.event().await;
        let attendees: Vec<Value> = e
            .attendees
            .iter()
            .flatten()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap();
                if a.email.as_deref() == Some(email) {
                    v["responseStatus"] = json!(response);
                }
                v
            })
            .collect();
        self.env
            .app
            .google
            .patch_event(
                &self.alice,
                "primary",
                &e.id,
                &json!({"attendees": attendees}),
                None,
                SendUpdates::None,
            )
            .await
            .unwrap();
    }
}

fn meeting(title: &str, carol: &str) -> Value {
    json!({
        "type": "meeting", "title": title,
        "start": {"date_time": "2026-06-10T09:00:00+02:00"},
        "end": {"date_time": "2026-06-10T10:00:00+02:00"},
        "time_zone": "Europe/Paris",
        "attendees": [
            {"email": ALICE, "response": "accepted"},
            {"email": "carol@example.org", "name": "Carol", "response": carol},
        ]
    })
}

#[tokio::test]
async fn a_crm_edit_keeps_the_responses_attendees_gave_in_google() {
    let cal = Cal::new(json!({})).await;
    // The CRM's copy says Carol accepted: not the CRM's to say. Google invites her
    // (needsAction); the user's own response is the CRM's to give.
    cal.put("MTG-1", meeting("Kick-off", "accepted")).await;
    cal.run().await;
    let e = cal.event().await;
    assert_eq!(Cal::response_of(&e, "carol@example.org"), "needsAction");
    assert_eq!(Cal::response_of(&e, ALICE), "accepted");

    // Carol declines in Google; before the CRM hears of it, the CRM edits the title with its
    // stale copy of the attendees.
    cal.rsvp("carol@example.org", "declined").await;
    let mut edit = meeting("Kick-off (new room)", "needsAction");
    // The CRM's edit is the later change (on Google's clock).
    let later = time::OffsetDateTime::parse(
        &cal.env.sandbox.now_rfc3339(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        + time::Duration::seconds(5);
    edit["updated_at"] = json!(later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap());
    cal.put("MTG-1", edit).await;
    cal.run().await;
    cal.run().await;
    let e = cal.event().await;
    assert_eq!(e.summary.as_deref(), Some("Kick-off (new room)"));
    assert_eq!(
        Cal::response_of(&e, "carol@example.org"),
        "declined",
        "Carol's answer stands"
    );
    // And the CRM learns it.
    let feed = cal.env.changes().await;
    let last = feed
        .iter()
        .rev()
        .find(|r| r["crm_id"] == "MTG-1" && r["kind"] == "event_updated")
        .expect("the CRM hears of Carol's answer");
    let carol = last["data"]["event"]["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "carol@example.org")
        .cloned()
        .unwrap();
    assert_eq!(carol["response"], "declined", "{last}");
}

#[tokio::test]
async fn an_rsvp_does_not_bring_back_a_meeting_the_crm_deleted() {
    let cal = Cal::new(json!({"deletion_policy": "propagate"})).await;
    cal.put("MTG-1", meeting("Kick-off", "needsAction")).await;
    cal.run().await;
    let before = cal.env.changes().await.len();
    // Carol accepts; the CRM deletes the meeting before it heard (its delete's If-Match
    // meets the new etag).
    cal.rsvp("carol@example.org", "accepted").await;
    let (s, _) = cal
        .env
        .call(
            "DELETE",
            &format!("/v1/users/{USER}/events/MTG-1"),
            &cal.env.sync,
            None,
        )
        .await;
    assert!(s.is_success());
    cal.env.run_job(USER, SyncReason::RecordChange).await;
    cal.run().await;
    let all = cal.env.google_events(&cal.alice).await;
    assert!(
        all.iter().all(|e| e.status.as_deref() == Some("cancelled")),
        "deleted in Google too: {all:?}"
    );
    let after: Vec<Value> = cal.env.changes().await.split_off(before);
    assert!(
        !after.iter().any(|r| r["kind"] == "event_created"),
        "not resurrected: {after:?}"
    );
}
