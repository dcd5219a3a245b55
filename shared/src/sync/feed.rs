//! What a pass tells the CRM, typed: each [`Change`] is one kind of feed record
//! with its data, serialized once into the record (`data` in `docs/openapi.yaml`'s
//! `ChangeRecord`). A renamed field is a compile error here, not a silent break of the CRM's
//! contract; the unit tests pin the JSON the CRM reads.

use crate::calendar::model::CrmEvent;
use crate::contacts::model::CrmContact;
use crate::domain::ChangeKind;
use crate::sync::decide::{Decision, Reason};
use serde::Serialize;
use serde_json::Value;

/// A feed record about a pair: its kind, and the data the CRM reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    EventCreated(EventChanged),
    EventUpdated(EventChanged),
    EventDeleted(EventEnded),
    /// The link is gone (`unlink_only`, or deleted in Google while the CRM keeps it).
    EventUnlinked(EventEnded),
    ContactCreated(ContactChanged),
    ContactUpdated(ContactChanged),
    ContactDeleted(ContactEnded),
    /// Out of the synced group (or deleted in Google): the CRM decides what to do.
    ContactUntag(ContactEnded),
    /// The CRM's side won a conflict and went to Google.
    ConflictResolved(Conflict),
    /// The mass-deletion guard held a scope's deletions back.
    MassDeletionBlocked(DeletionsHeld),
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::EventCreated(_) => ChangeKind::EventCreated,
            Change::EventUpdated(_) => ChangeKind::EventUpdated,
            Change::EventDeleted(_) => ChangeKind::EventDeleted,
            Change::EventUnlinked(_) => ChangeKind::EventUnlinked,
            Change::ContactCreated(_) => ChangeKind::ContactCreated,
            Change::ContactUpdated(_) => ChangeKind::ContactUpdated,
            Change::ContactDeleted(_) => ChangeKind::ContactDeleted,
            Change::ContactUntag(_) => ChangeKind::ContactUntag,
            Change::ConflictResolved(_) => ChangeKind::ConflictResolved,
            Change::MassDeletionBlocked(_) => ChangeKind::MassDeletionBlocked,
        }
    }

    /// The record's `data`.
    pub fn data(&self) -> Value {
        let data = match self {
            Change::EventCreated(d) | Change::EventUpdated(d) => serde_json::to_value(d),
            Change::EventDeleted(d) | Change::EventUnlinked(d) => serde_json::to_value(d),
            Change::ContactCreated(d) | Change::ContactUpdated(d) => serde_json::to_value(d),
            Change::ContactDeleted(d) | Change::ContactUntag(d) => serde_json::to_value(d),
            Change::ConflictResolved(d) => serde_json::to_value(d),
            Change::MassDeletionBlocked(d) => serde_json::to_value(d),
        };
        // Plain structs of strings, numbers and the CRM's records: nothing that can fail.
        data.unwrap_or(Value::Null)
    }
}

/// Which side's version won a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    Crm,
    Google,
}

/// The policy that decided a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    CrmWins,
    GoogleWins,
    LatestWins,
}

/// How a conflict was decided (`conflict` in a record's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub winner: Winner,
    pub policy: ConflictPolicy,
}

impl Conflict {
    /// The conflict `d` decided for `winner`, if `d` was one.
    pub fn of(d: &Decision, winner: Winner) -> Option<Self> {
        let policy = match d.reason {
            Reason::ConflictCrmWins => ConflictPolicy::CrmWins,
            Reason::ConflictGoogleWins => ConflictPolicy::GoogleWins,
            _ => ConflictPolicy::LatestWins,
        };
        d.conflict.then_some(Conflict { winner, policy })
    }
}

/// Why a pair ended without the CRM deleting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    DeletedInGoogle,
    RemovedFromGroup,
}

/// An event Google created or changed, as the CRM's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventChanged {
    pub calendar_id: String,
    pub event: CrmEvent,
    pub html_link: Option<String>,
    /// When Google last changed it (RFC 3339, Google's own).
    pub google_updated: Option<String>,
    pub conflict: Option<Conflict>,
    /// A Google edit brought back a record the CRM had deleted.
    pub edit_beat_delete: bool,
    /// The CRM record a Google-born copy of an event was made from (another user's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_crm_id: Option<String>,
}

/// An event's pair ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventEnded {
    pub calendar_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
}

/// A contact Google created or changed, as the CRM's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactChanged {
    pub contact: CrmContact,
    pub contact_group: String,
    /// When Google last changed it: a CRM holding a newer edit of its own can tell this
    /// record is superseded (its edit is pushed, and wins as the later one).
    pub google_updated: Option<String>,
    pub conflict: Option<Conflict>,
    pub edit_beat_delete: bool,
}

/// A contact's pair ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactEnded {
    pub contact_group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
}

/// Whose deletions the guard holds back, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HeldScope {
    /// Google's deletions in a calendar.
    Calendar { calendar_id: String },
    /// Google's deletions in (or removals from) the contact group.
    Contacts { contact_group: String },
    /// The CRM's deletions of a collection ("calendar", "contacts").
    Crm {
        collection: &'static str,
        deleted_in: &'static str,
    },
}

impl HeldScope {
    pub fn crm(collection: crate::domain::Collection) -> Self {
        HeldScope::Crm {
            collection: collection.as_str(),
            deleted_in: "crm",
        }
    }
}

/// Deletions held back (`mass_deletion_blocked`): where, how many of how many, and how the
/// CRM carries them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionsHeld {
    #[serde(flatten)]
    pub scope: HeldScope,
    pub deletions: usize,
    pub pairs: usize,
    pub resume: &'static str,
}

impl DeletionsHeld {
    /// How the CRM confirms.
    pub const RESUME: &'static str =
        "POST /v1/users/{user}/sync with {\"confirm_mass_deletion\": true}";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::decide::Action;
    use serde_json::json;

    fn conflict(reason: Reason) -> Decision {
        Decision {
            action: Action::PullToCrm,
            reason,
            conflict: true,
        }
    }

    #[test]
    fn a_conflict_says_who_won_and_by_which_policy() {
        let c = Conflict::of(&conflict(Reason::ConflictCrmWins), Winner::Crm);
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            json!({"winner": "crm", "policy": "crm_wins"})
        );
        let c = Conflict::of(&conflict(Reason::ConflictLatestWins), Winner::Google);
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            json!({"winner": "google", "policy": "latest_wins"})
        );
        let calm = Decision {
            conflict: false,
            ..conflict(Reason::ConflictGoogleWins)
        };
        assert_eq!(Conflict::of(&calm, Winner::Google), None);
    }

    #[test]
    fn held_deletions_say_where_how_many_and_how_to_resume() {
        let held = Change::MassDeletionBlocked(DeletionsHeld {
            scope: HeldScope::crm(crate::domain::Collection::Contacts),
            deletions: 30,
            pairs: 31,
            resume: DeletionsHeld::RESUME,
        });
        assert_eq!(held.kind(), ChangeKind::MassDeletionBlocked);
        assert_eq!(
            held.data(),
            json!({
                "collection": "contacts", "deleted_in": "crm", "deletions": 30, "pairs": 31,
                "resume": "POST /v1/users/{user}/sync with {\"confirm_mass_deletion\": true}",
            })
        );
        let calendar = HeldScope::Calendar {
            calendar_id: "primary".into(),
        };
        assert_eq!(
            serde_json::to_value(calendar).unwrap(),
            json!({"calendar_id": "primary"})
        );
    }

    #[test]
    fn ended_records_carry_the_reason_only_when_there_is_one() {
        let deleted = Change::EventDeleted(EventEnded {
            calendar_id: "primary".into(),
            reason: None,
        });
        assert_eq!(deleted.kind(), ChangeKind::EventDeleted);
        assert_eq!(deleted.data(), json!({"calendar_id": "primary"}));
        let untag = Change::ContactUntag(ContactEnded {
            contact_group: "contactGroups/g".into(),
            reason: Some(EndReason::RemovedFromGroup),
        });
        assert_eq!(untag.kind(), ChangeKind::ContactUntag);
        assert_eq!(
            untag.data(),
            json!({"contact_group": "contactGroups/g", "reason": "removed_from_group"})
        );
    }
}
