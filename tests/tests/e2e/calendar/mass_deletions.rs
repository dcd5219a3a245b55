//! The mass-deletion guard across passes and in both directions: a trickle of deletions, one
//! per push job, is held back like a burst once it adds up within the guard's window; the
//! CRM's own mass deletions under `propagate` are held back the same way; each block is told
//! once, and the CRM's confirmation carries it out (embedded store, Google sandbox).

use crate::world::{Backend, Env};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::domain::UserId;
use shared::google::calendar::SendUpdates;
use shared::queue::{SyncJob, SyncReason};
use std::time::{Duration, Instant};

const USER: &str = "u-guard";
const ALICE: &str = "alice@example.com";

struct Cal {
    env: Env,
    alice: SecretString,
}

impl Cal {
    /// `n` CRM meetings, synced to Google.
    async fn with_meetings(defaults: Value, n: usize) -> Self {
        let env = Env::new_on(Backend::Embedded).await;
        env.set_defaults(defaults).await;
        let q = env.connect(USER, &["calendar"], ALICE, "").await;
        assert_eq!(q["google_connect"], "connected");
        let alice = crate::world::backlog::token(&env, ALICE);
        let cal = Self { env, alice };
        cal.env.run_job(USER, SyncReason::Scheduled).await;
        for i in 0..n {
            cal.put(&format!("MTG-{i}")).await;
        }
        cal.env.run_job(USER, SyncReason::RecordChange).await;
        cal.env.run_job(USER, SyncReason::Scheduled).await;
        assert_eq!(cal.live_in_google().await.len(), n);
        cal
    }

    async fn put(&self, crm_id: &str) {
        let (s, v) = self
            .env
            .call(
                "PUT",
                &format!("/v1/users/{USER}/events/{crm_id}"),
                &self.env.sync,
                Some(json!({
                    "type": "meeting", "title": crm_id,
                    "start": {"date_time": "2026-06-10T09:00:00+02:00"},
                    "end": {"date_time": "2026-06-10T10:00:00+02:00"},
                    "time_zone": "Europe/Paris",
                })),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }

    async fn live_in_google(&self) -> Vec<String> {
        self.env
            .google_events(&self.alice)
            .await
            .into_iter()
            .filter(|e| !e.is_cancelled())
            .map(|e| e.id)
            .collect()
    }

    async fn count(&self, kind: &str) -> usize {
        self.env
            .changes()
            .await
            .iter()
            .filter(|r| r["kind"] == kind)
            .count()
    }

    async fn last_error(&self) -> String {
        let (_, account) = self.env.account(USER).await;
        account["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// "Sync now" with the deletions confirmed.
    async fn confirm(&self) {
        let job = SyncJob {
            tenant: self.env.tenant.clone(),
            user: UserId::parse(USER).unwrap(),
            calendar: None,
            reason: SyncReason::Manual,
            confirm_mass_deletion: true,
            record: None,
        };
        sync_worker::run(
            &self.env.app,
            &job,
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_trickle_of_google_deletions_is_held_back_like_a_burst() {
    let cal = Cal::with_meetings(json!({}), 40).await;
    // A rogue app deletes one event at a time; each deletion has its push job.
    for id in cal.live_in_google().await.into_iter().take(30) {
        cal.env
            .app
            .google
            .delete_event(&cal.alice, "primary", &id, None, SendUpdates::None)
            .await
            .unwrap();
        cal.env.run_job(USER, SyncReason::Push).await;
    }
    assert_eq!(
        cal.count("event_unlinked").await,
        24,
        "the 25th deletion within the window is held back"
    );
    assert_eq!(cal.count("mass_deletion_blocked").await, 1);
    assert!(cal.last_error().await.contains("held back"));

    // Told once: neither a pass that reads nothing (a CRM change's job, which rewrites the
    // account's last error) nor the next read repeats the record.
    cal.put("MTG-new").await;
    cal.env.run_job(USER, SyncReason::RecordChange).await;
    cal.env.run_job(USER, SyncReason::Scheduled).await;
    cal.env.run_job(USER, SyncReason::Push).await;
    assert_eq!(cal.count("mass_deletion_blocked").await, 1);
    assert_eq!(cal.count("event_unlinked").await, 24);

    // Confirmed: carried out, and the count starts over.
    cal.confirm().await;
    assert_eq!(cal.count("event_unlinked").await, 30);
    let next = cal.live_in_google().await.remove(0);
    cal.env
        .app
        .google
        .delete_event(&cal.alice, "primary", &next, None, SendUpdates::None)
        .await
        .unwrap();
    cal.env.run_job(USER, SyncReason::Push).await;
    assert_eq!(cal.count("event_unlinked").await, 31);
    assert_eq!(cal.count("mass_deletion_blocked").await, 1);
}

#[tokio::test]
async fn crm_mass_deletions_are_held_back_until_confirmed() {
    let cal = Cal::with_meetings(json!({"deletion_policy": "propagate"}), 40).await;
    // A few deletions go through.
    for i in 0..3 {
        let (s, _) = cal
            .env
            .call(
                "DELETE",
                &format!("/v1/users/{USER}/events/MTG-{i}"),
                &cal.env.sync,
                None,
            )
            .await;
        assert!(s.is_success());
        cal.env.run_job(USER, SyncReason::RecordChange).await;
    }
    assert_eq!(cal.live_in_google().await.len(), 37);
    // A CRM bug deletes most of the rest at once.
    for i in 3..33 {
        let (s, _) = cal
            .env
            .call(
                "DELETE",
                &format!("/v1/users/{USER}/events/MTG-{i}"),
                &cal.env.sync,
                None,
            )
            .await;
        assert!(s.is_success());
    }
    cal.env.run_job(USER, SyncReason::RecordChange).await;
    cal.env.run_job(USER, SyncReason::Scheduled).await;
    assert_eq!(
        cal.live_in_google().await.len(),
        37,
        "nothing more deleted in Google"
    );
    let feed = cal.env.changes().await;
    let blocks: Vec<&Value> = feed
        .iter()
        .filter(|r| r["kind"] == "mass_deletion_blocked")
        .collect();
    assert_eq!(blocks.len(), 1, "told once: {blocks:?}");
    assert_eq!(blocks[0]["data"]["deleted_in"], "crm");
    assert_eq!(blocks[0]["data"]["deletions"], 33);
    assert!(cal.last_error().await.contains("held back"));
    // Other CRM changes still go through meanwhile.
    cal.put("MTG-new").await;
    cal.env.run_job(USER, SyncReason::RecordChange).await;
    assert_eq!(cal.live_in_google().await.len(), 38);

    cal.confirm().await;
    assert_eq!(cal.live_in_google().await.len(), 8);
    assert_eq!(cal.count("mass_deletion_blocked").await, 1);
}
