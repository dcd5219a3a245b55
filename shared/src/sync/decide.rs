//! The sync decision: a pure function of (status row, CRM side, Google side, policy) to one
//! action, with the reason, testable without any I/O.
//!
//! Three-way: the status row remembers each side's content hash as of the last sync; a side
//! "changed" when its hash differs. One side changed → copy it to the other. Both changed to
//! different content → the conflict policy decides (default: the later modification wins).
//! Both changed to the same content → nothing to copy. Deletions: an edit on one side beats a
//! delete on the other; otherwise the deletion policy says whether the delete propagates or
//! the pair is only unlinked. The sync direction filters what may be written.

use crate::domain::{ConflictPolicy, DeletionPolicy, Direction};
use time::OffsetDateTime;

/// One side of a pair, as observed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side<'a> {
    /// Never existed on this side (as far as we know).
    Absent,
    Present {
        hash: &'a str,
        /// When this side last modified it (for "latest wins").
        modified: OffsetDateTime,
    },
    Deleted {
        at: OffsetDateTime,
    },
}

/// What the last sync left: the hashes both sides had then (`None`: never synced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Baseline<'a> {
    pub crm_hash: Option<&'a str>,
    pub google_hash: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub direction: Direction,
    pub conflicts: ConflictPolicy,
    pub deletions: DeletionPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to write.
    Nothing,
    /// Both sides hold the same content: record it as the new baseline.
    Baseline,
    /// Write the CRM's content to Google (insert when Google has none).
    PushToGoogle,
    /// Tell the CRM Google's content (create/update in the feed).
    PullToCrm,
    /// Delete the Google event.
    DeleteInGoogle,
    /// Tell the CRM the event was deleted in Google.
    DeleteInCrm,
    /// Forget the pair without deleting the other side (deletion policy `unlink_only`).
    Unlink,
    /// Both sides deleted: keep the tombstone.
    Tombstone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    InSync,
    SameContent,
    CrmChanged,
    GoogleChanged,
    ConflictLatestWins,
    ConflictCrmWins,
    ConflictGoogleWins,
    CrmNew,
    GoogleNew,
    CrmDeleted,
    GoogleDeleted,
    EditBeatsDelete,
    BothDeleted,
    DirectionForbids,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
    /// Both sides had changed (a conflict the policy resolved).
    pub conflict: bool,
}

fn decision(action: Action, reason: Reason) -> Decision {
    Decision {
        action,
        reason,
        conflict: false,
    }
}

/// Whether `direction` lets `action` happen.
fn allowed(direction: Direction, action: Action) -> bool {
    match action {
        Action::PushToGoogle | Action::DeleteInGoogle => direction != Direction::GoogleToCrm,
        Action::PullToCrm | Action::DeleteInCrm => direction != Direction::CrmToGoogle,
        _ => true,
    }
}

/// The decision for one pair.
pub fn decide(base: Baseline<'_>, crm: Side<'_>, google: Side<'_>, policy: Policy) -> Decision {
    use Side::*;
    let d = match (crm, google) {
        (Absent, Absent) => decision(Action::Nothing, Reason::InSync),
        (Present { .. }, Absent) => decision(Action::PushToGoogle, Reason::CrmNew),
        (Absent, Present { .. }) => decision(Action::PullToCrm, Reason::GoogleNew),
        (Deleted { .. }, Deleted { .. }) | (Deleted { .. }, Absent) | (Absent, Deleted { .. }) => {
            decision(Action::Tombstone, Reason::BothDeleted)
        }
        (
            Present {
                hash: c,
                modified: cm,
            },
            Present {
                hash: g,
                modified: gm,
            },
        ) => both_present(base, (c, cm), (g, gm), policy),
        (Deleted { .. }, Present { hash: g, .. }) => deleted_in_crm(base, g, policy),
        (Present { hash: c, .. }, Deleted { .. }) => deleted_in_google(base, c, policy),
    };
    if allowed(policy.direction, d.action) {
        d
    } else {
        Decision {
            action: Action::Nothing,
            reason: Reason::DirectionForbids,
            conflict: d.conflict,
        }
    }
}

/// Both sides hold the record (each as its content's hash and last change).
fn both_present(
    base: Baseline<'_>,
    (c, cm): (&str, OffsetDateTime),
    (g, gm): (&str, OffsetDateTime),
    policy: Policy,
) -> Decision {
    if c == g {
        return if base.crm_hash == Some(c) && base.google_hash == Some(g) {
            decision(Action::Nothing, Reason::InSync)
        } else {
            decision(Action::Baseline, Reason::SameContent)
        };
    }
    match (base.crm_hash != Some(c), base.google_hash != Some(g)) {
        (true, false) => decision(Action::PushToGoogle, Reason::CrmChanged),
        (false, true) => decision(Action::PullToCrm, Reason::GoogleChanged),
        // Neither changed since the last sync, though the two differ (Google stores some
        // detail differently): nothing new to copy.
        (false, false) => decision(Action::Nothing, Reason::InSync),
        (true, true) => conflict(policy, cm, gm),
    }
}

/// Both sides changed since the last sync: the direction, else the conflict policy, picks.
fn conflict(
    policy: Policy,
    crm_modified: OffsetDateTime,
    google_modified: OffsetDateTime,
) -> Decision {
    let (action, reason) = match (policy.direction, policy.conflicts) {
        (Direction::CrmToGoogle, _) => (Action::PushToGoogle, Reason::ConflictCrmWins),
        (Direction::GoogleToCrm, _) => (Action::PullToCrm, Reason::ConflictGoogleWins),
        (_, ConflictPolicy::CrmWins) => (Action::PushToGoogle, Reason::ConflictCrmWins),
        (_, ConflictPolicy::GoogleWins) => (Action::PullToCrm, Reason::ConflictGoogleWins),
        // Ties go to the CRM: it is the system of record.
        (_, ConflictPolicy::LatestWins) if google_modified > crm_modified => {
            (Action::PullToCrm, Reason::ConflictLatestWins)
        }
        (_, ConflictPolicy::LatestWins) => (Action::PushToGoogle, Reason::ConflictLatestWins),
    };
    Decision {
        action,
        reason,
        conflict: true,
    }
}

/// Deleted in the CRM, present in Google (`g`: its hash now).
fn deleted_in_crm(base: Baseline<'_>, g: &str, policy: Policy) -> Decision {
    if base.google_hash.is_some_and(|b| b != g) {
        // Google was edited after the last sync: the edit wins, the CRM gets it back.
        decision(Action::PullToCrm, Reason::EditBeatsDelete)
    } else if policy.deletions == DeletionPolicy::Propagate {
        decision(Action::DeleteInGoogle, Reason::CrmDeleted)
    } else {
        decision(Action::Unlink, Reason::CrmDeleted)
    }
}

/// Deleted in Google, present in the CRM (`c`: its hash now).
fn deleted_in_google(base: Baseline<'_>, c: &str, policy: Policy) -> Decision {
    if base.crm_hash.is_some_and(|b| b != c) {
        decision(Action::PushToGoogle, Reason::EditBeatsDelete)
    } else if policy.deletions == DeletionPolicy::Propagate {
        decision(Action::DeleteInCrm, Reason::GoogleDeleted)
    } else {
        decision(Action::Unlink, Reason::GoogleDeleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);
    const T1: OffsetDateTime = time::macros::datetime!(2026-01-02 00:00 UTC);

    fn policy() -> Policy {
        Policy {
            direction: Direction::TwoWay,
            conflicts: ConflictPolicy::LatestWins,
            deletions: DeletionPolicy::UnlinkOnly,
        }
    }

    fn p(hash: &str, modified: OffsetDateTime) -> Side<'_> {
        Side::Present { hash, modified }
    }

    fn base<'a>(c: &'a str, g: &'a str) -> Baseline<'a> {
        Baseline {
            crm_hash: Some(c),
            google_hash: Some(g),
        }
    }

    #[test]
    fn one_side_changed_is_copied() {
        let d = decide(base("a", "a"), p("b", T1), p("a", T0), policy());
        assert_eq!((d.action, d.conflict), (Action::PushToGoogle, false));
        let d = decide(base("a", "a"), p("a", T0), p("b", T1), policy());
        assert_eq!(d.action, Action::PullToCrm);
        let d = decide(base("a", "a"), p("a", T0), p("a", T1), policy());
        assert_eq!(d.action, Action::Nothing);
    }

    #[test]
    fn conflicts_follow_the_policy() {
        let b = base("a", "a");
        assert_eq!(
            decide(b, p("c", T0), p("g", T1), policy()).action,
            Action::PullToCrm
        );
        assert_eq!(
            decide(b, p("c", T1), p("g", T0), policy()).action,
            Action::PushToGoogle
        );
        assert_eq!(
            decide(b, p("c", T0), p("g", T0), policy()).action,
            Action::PushToGoogle
        );
        let crm_wins = Policy {
            conflicts: ConflictPolicy::CrmWins,
            ..policy()
        };
        assert_eq!(
            decide(b, p("c", T0), p("g", T1), crm_wins).action,
            Action::PushToGoogle
        );
        let google_wins = Policy {
            conflicts: ConflictPolicy::GoogleWins,
            ..policy()
        };
        assert_eq!(
            decide(b, p("c", T1), p("g", T0), google_wins).action,
            Action::PullToCrm
        );
        // Equal content is no conflict.
        let d = decide(b, p("x", T0), p("x", T1), policy());
        assert_eq!((d.action, d.conflict), (Action::Baseline, false));
    }

    #[test]
    fn an_edit_beats_a_delete() {
        let b = base("a", "a");
        let del = Side::Deleted { at: T1 };
        assert_eq!(
            decide(b, del, p("g2", T0), policy()).action,
            Action::PullToCrm
        );
        assert_eq!(
            decide(b, p("c2", T0), del, policy()).action,
            Action::PushToGoogle
        );
        assert_eq!(decide(b, del, p("a", T0), policy()).action, Action::Unlink);
        let propagate = Policy {
            deletions: DeletionPolicy::Propagate,
            ..policy()
        };
        assert_eq!(
            decide(b, del, p("a", T0), propagate).action,
            Action::DeleteInGoogle
        );
        assert_eq!(
            decide(b, p("a", T0), del, propagate).action,
            Action::DeleteInCrm
        );
    }

    #[test]
    fn direction_filters_writes() {
        let b = base("a", "a");
        let crm_only = Policy {
            direction: Direction::CrmToGoogle,
            ..policy()
        };
        let d = decide(b, p("a", T0), p("g", T1), crm_only);
        assert_eq!(
            (d.action, d.reason),
            (Action::Nothing, Reason::DirectionForbids)
        );
        assert_eq!(
            decide(b, p("c", T0), p("g", T1), crm_only).action,
            Action::PushToGoogle
        );
        let google_only = Policy {
            direction: Direction::GoogleToCrm,
            ..policy()
        };
        assert_eq!(
            decide(b, p("c", T1), p("a", T0), google_only).action,
            Action::Nothing
        );
        assert_eq!(
            decide(Baseline::default(), Side::Absent, p("g", T0), google_only).action,
            Action::PullToCrm
        );
    }

    fn side() -> impl Strategy<Value = (u8, u8, i64)> {
        // kind: 0 absent, 1 present, 2 deleted; content id; minutes
        (0u8..3, 0u8..3, 0i64..100)
    }

    fn make(kind: u8, content: &str, minutes: i64) -> Side<'_> {
        let at = T0 + time::Duration::minutes(minutes);
        match kind {
            0 => Side::Absent,
            1 => Side::Present {
                hash: content,
                modified: at,
            },
            _ => Side::Deleted { at },
        }
    }

    proptest! {
        /// Whatever the inputs: a write only goes where the direction allows, nothing is ever
        /// written when both sides already agree with the baseline, and a side that changed
        /// since the last sync is never deleted.
        #[test]
        fn decisions_are_safe(
            (ck, cc, cm) in side(), (gk, gc, gm) in side(),
            bc in proptest::option::of(0u8..3), bg in proptest::option::of(0u8..3),
            dir in 0u8..3, conf in 0u8..3, del in 0u8..2,
        ) {
            let names = ["h0", "h1", "h2"];
            let policy = Policy {
                direction: [Direction::TwoWay, Direction::CrmToGoogle, Direction::GoogleToCrm][dir as usize],
                conflicts: [ConflictPolicy::LatestWins, ConflictPolicy::CrmWins, ConflictPolicy::GoogleWins][conf as usize],
                deletions: [DeletionPolicy::UnlinkOnly, DeletionPolicy::Propagate][del as usize],
            };
            let base = Baseline { crm_hash: bc.map(|i| names[i as usize]), google_hash: bg.map(|i| names[i as usize]) };
            let crm = make(ck, names[cc as usize], cm);
            let google = make(gk, names[gc as usize], gm);
            let d = decide(base, crm, google, policy);
            prop_assert!(allowed(policy.direction, d.action));
            if let (Side::Present { hash: c, .. }, Side::Present { hash: g, .. }) = (crm, google) {
                if Some(c) == base.crm_hash && Some(g) == base.google_hash && c == g {
                    prop_assert_eq!(d.action, Action::Nothing);
                }
                prop_assert!(!matches!(d.action, Action::DeleteInCrm | Action::DeleteInGoogle | Action::Unlink));
            }
            if let (Side::Deleted { .. }, Side::Present { hash: g, .. }) = (crm, google) {
                if base.google_hash.is_some_and(|b| b != g) {
                    prop_assert!(d.action != Action::DeleteInGoogle && d.action != Action::Unlink);
                }
            }
            if let (Side::Present { hash: c, .. }, Side::Deleted { .. }) = (crm, google) {
                if base.crm_hash.is_some_and(|b| b != c) {
                    prop_assert!(d.action != Action::DeleteInCrm && d.action != Action::Unlink);
                }
            }
        }
    }
}
