//! Event descriptions "can contain HTML" (Google Calendar's web UI saves rich text so): the CRM
//! receives the text they show, and its echo is no write that would flatten Google's rich
//! text (embedded store).

use crate::world::{Backend, Env};
use serde_json::json;
use shared::google::calendar::SendUpdates;
use shared::queue::SyncReason;

const USER: &str = "u-html";
const ALICE: &str = "alice@example.com";

#[tokio::test]
async fn an_html_description_reaches_the_crm_as_text_and_its_echo_writes_nothing() {
    let env = Env::new_on(Backend::Embedded).await;
    let q = env.connect(USER, &["calendar"], ALICE, "").await;
    assert_eq!(q["google_connect"], "connected");
    let alice = env.google_token(ALICE, crate::world::CALENDAR_SCOPE);
    env.run_job(USER, SyncReason::Scheduled).await;
    let (s, v) = env
        .put_event(
            USER,
            "MTG-1",
            json!({"title": "Review", "description": "Agenda",
                        "start": {"date_time": "2026-06-10T09:00:00Z"},
                        "end": {"date_time": "2026-06-10T10:00:00Z"}, "time_zone": "UTC"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::Scheduled).await;
    let id = env.google_events(&alice).await[0].id.clone();
    // The user writes rich text in Google Calendar.
    let rich =
        "<b>Agenda</b><br>1. Pricing &amp; terms<br><a href=\"https://docs.example/deck\">Deck</a>";
    env.app
        .google
        .patch_event(
            &alice,
            "primary",
            &id,
            &json!({"description": rich}),
            None,
            SendUpdates::None,
        )
        .await
        .unwrap();
    env.run_job(USER, SyncReason::Scheduled).await;
    let feed = env.changes().await;
    let update = feed
        .iter()
        .rev()
        .find(|r| r["kind"] == "event_updated")
        .expect("the edit reaches the CRM");
    assert_eq!(
        update["data"]["event"]["description"],
        "Agenda\n1. Pricing & terms\nDeck (https://docs.example/deck)"
    );
    // The CRM stores it and sends it back as it came: nothing to write, Google keeps its
    // rich text.
    let mut echo = update["data"]["event"].clone();
    echo.as_object_mut().unwrap().remove("updated_at");
    env.sandbox.clear_request_log();
    let (s, v) = env.put_event(USER, "MTG-1", echo).await;
    assert!(s.is_success(), "{v}");
    env.run_job(USER, SyncReason::RecordChange).await;
    let writes = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "the echo is no write");
    let now = env.google_events(&alice).await.remove(0);
    assert_eq!(now.description.as_deref(), Some(rich));
}
