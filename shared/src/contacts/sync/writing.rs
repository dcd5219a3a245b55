//! CRM → Google: the waiting changes in People batch requests ([`crate::sync::push::Sink`]);
//! a refused batch is split until the contact Google refuses is found.

use super::{crm_content, Ctx};
use crate::domain::PairStatus;
use crate::google::people::{
    Membership, Person, MAX_BATCH_CONTACTS, MAX_BATCH_DELETE, MAX_MEMBERS_MODIFY,
};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use crate::sync::decide::Action;
use crate::sync::decide::Policy;
use crate::sync::execute::{self, Answer};
use crate::sync::plan::{BatchKind, WriteCost};
use crate::sync::push::{self, Sink};
use crate::sync::push::{after_answer, after_refusal, as_refusal, Next};
use crate::sync::SyncError;
use std::collections::BTreeMap;

/// What a waiting pair's write is.
enum Op {
    Create(Person),
    Update(String, Person),
    /// Out of the group (deleted in the CRM; the contact stays in Google).
    Remove(String),
    Delete(String),
}

pub(super) struct Planned {
    v: Versioned<PairStatus>,
    op: Op,
}

/// How long a create whose outcome is unknown waits before it is made again: longer than
/// People's write-propagation delay ("several minutes" for sync reads), so the reads in
/// between have found the contact if Google made it.
pub const CREATE_SETTLE: time::Duration = time::Duration::minutes(10);

/// A new contact's groups: the synced group, and My Contacts (every contact needs a group it
/// can be left in: taken out of the synced group when the CRM deletes it, it stays in the
/// user's contacts — Google may or may not add My Contacts by itself).
pub(super) fn create_memberships(group: &str) -> Vec<Membership> {
    let mut out = vec![Membership::of_group(group)];
    if group != crate::google::people::MY_CONTACTS {
        out.push(Membership::of_group(crate::google::people::MY_CONTACTS));
    }
    out
}

/// Why a contact deleted in the CRM is still in the group.
pub(super) const REMOVE_REFUSED: &str =
    "Google refused to take the contact out of its last contact group (canNotRemoveLastContactGroup)";

const CREATE: usize = 0;
const UPDATE: usize = 1;
const REMOVE: usize = 2;
const DELETE: usize = 3;

impl Sink for Ctx<'_> {
    type Planned = Planned;

    /// `batchCreateContacts` and `batchUpdateContacts` take 200 contacts,
    /// `contactGroups.members.modify` 1,000 names, `batchDeleteContacts` 500; each request is
    /// one call whatever it carries.
    const KINDS: &'static [BatchKind] = &[
        BatchKind {
            limit: MAX_BATCH_CONTACTS,
            per_part: false,
        },
        BatchKind {
            limit: MAX_BATCH_CONTACTS,
            per_part: false,
        },
        BatchKind {
            limit: MAX_MEMBERS_MODIFY,
            per_part: false,
        },
        BatchKind {
            limit: MAX_BATCH_DELETE,
            per_part: false,
        },
    ];

    const NOUN: &'static str = "contacts";

    fn deletes(p: &Planned) -> bool {
        matches!(p.op, Op::Delete(_))
    }

    fn crm_hash(pair: &PairStatus) -> Option<String> {
        pair.crm_content
            .as_ref()
            .and_then(crate::contacts::normal::content_hash)
    }

    fn policy(&self, _pair: &PairStatus) -> Policy {
        self.policy
    }

    async fn fresh(&mut self, v: Versioned<PairStatus>) -> Result<(), SyncError> {
        execute::decide_fresh(self, v).await
    }

    async fn plan(
        &mut self,
        value: PairStatus,
        version: u64,
    ) -> Result<Option<Planned>, SyncError> {
        let Some((v, d)) = push::decide_waiting(self, Versioned { value, version }).await? else {
            return Ok(None);
        };
        let pair = &v.value;
        let op = match (d.action, &pair.google_id, crm_content(pair)) {
            // A create whose outcome is unknown, made too recently for Google's reads to show
            // it yet: made again only once they had time to (the read links it if it exists).
            (Action::PushToGoogle, None, Some(_))
                if pair
                    .create_unsure_since
                    .is_some_and(|at| self.now() - at < CREATE_SETTLE) =>
            {
                self.report.waiting += 1;
                return Ok(None);
            }
            (Action::PushToGoogle, None, Some(c)) => {
                let mut body = c.to_person(&self.link(pair), &self.mapping, None);
                body.memberships = create_memberships(&self.group);
                Op::Create(body)
            }
            (Action::PushToGoogle, Some(rn), Some(c)) => {
                let mut body = c.to_person(&self.link(pair), &self.mapping, None);
                body.etag.clone_from(&pair.google_etag);
                Op::Update(rn.clone(), body)
            }
            (Action::DeleteInGoogle, Some(rn), _) => Op::Delete(rn.clone()),
            (Action::Unlink, Some(rn), _) if pair.crm_deleted_at.is_some() => {
                Op::Remove(rn.clone())
            }
            _ => {
                push::settle_decided(self, v, &d).await?;
                return Ok(None);
            }
        };
        Ok(Some(Planned { v, op }))
    }

    fn batch_of(p: &Planned) -> (usize, WriteCost) {
        let kind = match p.op {
            Op::Create(_) => CREATE,
            Op::Update(..) => UPDATE,
            Op::Remove(_) => REMOVE,
            Op::Delete(_) => DELETE,
        };
        (
            kind,
            WriteCost {
                parts: 1,
                followups: 0,
                planning: 0,
            },
        )
    }

    async fn send(
        &mut self,
        kind: usize,
        batch: Vec<Planned>,
    ) -> Result<Option<SyncError>, SyncError> {
        let mut todo = vec![batch];
        while let Some(batch) = todo.pop() {
            let answers = match request(self, kind, &batch).await {
                Ok(answers) => answers,
                Err(e) => match after_refusal(&e, batch.len()) {
                    Next::Stop => {
                        self.report.waiting +=
                            batch.len() + todo.iter().map(Vec::len).sum::<usize>();
                        return Ok(Some(e.into()));
                    }
                    Next::Split => {
                        let mut first = batch;
                        let second = first.split_off(first.len() / 2);
                        todo.push(second);
                        todo.push(first);
                        continue;
                    }
                    _ => batch.iter().map(|_| Err(e.clone())).collect(),
                },
            };
            for (Planned { v, op }, answer) in batch.into_iter().zip(answers) {
                let answer = answer_of(&op, answer);
                execute::finish(self, v.value.clone(), v.value, v.version, answer).await?;
            }
        }
        Ok(None)
    }
}

/// Sends one request for `batch` (all of one kind): one answer per contact (a written
/// person, or `None` for a removal or deletion), or the refusal of the whole request.
async fn request(
    ctx: &Ctx<'_>,
    kind: usize,
    batch: &[Planned],
) -> Result<Vec<Result<Option<Person>, GoogleError>>, GoogleError> {
    match kind {
        CREATE => create_request(ctx, batch).await,
        UPDATE => update_request(ctx, batch).await,
        REMOVE => remove_request(ctx, batch).await,
        _ => {
            ctx.app
                .google
                .batch_delete_contacts(&ctx.token, &names(batch))
                .await?;
            Ok(batch.iter().map(|_| Ok(None)).collect())
        }
    }
}

/// The resource names a removal or deletion request carries.
fn names(batch: &[Planned]) -> Vec<String> {
    batch
        .iter()
        .filter_map(|p| match &p.op {
            Op::Remove(rn) | Op::Delete(rn) => Some(rn.clone()),
            _ => None,
        })
        .collect()
}

type Answers = Result<Vec<Result<Option<Person>, GoogleError>>, GoogleError>;

async fn create_request(ctx: &Ctx<'_>, batch: &[Planned]) -> Answers {
    let bodies: Vec<Person> = batch
        .iter()
        .filter_map(|p| match &p.op {
            Op::Create(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let read = ctx.mapping.person_fields();
    let answers = ctx
        .app
        .google
        .batch_create_contacts(&ctx.token, &bodies, &read)
        .await;
    // Creates whose outcome is unknown are each the pair's to remember (see `answer_of`),
    // not a refusal of the request.
    if let Some(e) = as_refusal(&answers).filter(|e| !crate::google::people::outcome_unknown(e)) {
        return Err(e);
    }
    Ok(answers.into_iter().map(|a| a.map(Some)).collect())
}

async fn update_request(ctx: &Ctx<'_>, batch: &[Planned]) -> Answers {
    let bodies: BTreeMap<String, Person> = batch
        .iter()
        .filter_map(|p| match &p.op {
            Op::Update(rn, b) => Some((rn.clone(), b.clone())),
            _ => None,
        })
        .collect();
    let (update, read) = (
        ctx.mapping.update_person_fields(),
        ctx.mapping.person_fields(),
    );
    let mut answers = ctx
        .app
        .google
        .batch_update_contacts(&ctx.token, &bodies, &update, &read)
        .await;
    let all: Vec<Result<Person, GoogleError>> = answers.values().cloned().collect();
    if let Some(e) = as_refusal(&all) {
        return Err(e);
    }
    Ok(batch
        .iter()
        .map(|p| match &p.op {
            Op::Update(rn, _) => answers
                .remove(rn)
                .unwrap_or_else(|| Err(GoogleError::Transient("no answer for the contact".into())))
                .map(Some),
            _ => Ok(None),
        })
        .collect())
}

/// A contact Google will not take out of the group (its last one even after being filed in
/// My Contacts) keeps an error; one already gone is out of the group.
async fn remove_request(ctx: &Ctx<'_>, batch: &[Planned]) -> Answers {
    let left = ctx
        .app
        .google
        .remove_from_group(&ctx.token, &ctx.group, &names(batch))
        .await?;
    let refused = &left.can_not_remove_last_contact_group_resource_names;
    Ok(batch
        .iter()
        .map(|p| match &p.op {
            Op::Remove(rn) if refused.contains(rn) => Err(GoogleError::Rejected {
                status: 400,
                reason: REMOVE_REFUSED.to_owned(),
            }),
            _ => Ok(None),
        })
        .collect())
}

/// What Google's answer for one planned write comes to (see [`execute::finish`]).
fn answer_of(op: &Op, answer: Result<Option<Person>, GoogleError>) -> Answer<Person> {
    match answer {
        Ok(Some(written)) => Answer::Written(written),
        Ok(None) => Answer::Removed,
        Err(e) => match after_answer(&e) {
            // Google may have made the contact; it was not found, perhaps not shown yet.
            None if matches!(op, Op::Create(_)) && crate::google::people::outcome_unknown(&e) => {
                Answer::Unsure
            }
            // A passing failure: the pair stays waiting for the next pass.
            None => Answer::Wait,
            Some(Next::Fresh) if matches!(op, Op::Update(..)) => Answer::Fresh,
            Some(_) => Answer::Failed(e.to_string()),
        },
    }
}
