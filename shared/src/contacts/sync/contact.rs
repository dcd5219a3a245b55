//! Deciding and carrying out, for contacts ([`crate::sync::execute::Records`]): People
//! calls and bodies for one contact, and the feed records the CRM is told.

use super::{create_memberships, google_modified, Ctx, REMOVE_REFUSED};
use crate::contacts::normal::{FieldMapping, Flow, NormalizedContact};
use crate::domain::{DeletionPolicy, PairStatus};
use crate::google::people::{Membership, Person, PersonField};
use crate::sync::decide::{Action, Decision, Reason, Side};
use crate::sync::execute::{Pulled, Records, Wrote};
use crate::sync::feed::{Change, Conflict, ContactChanged, ContactEnded, EndReason, Winner};
use crate::sync::SyncError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(super) fn crm_content(pair: &PairStatus) -> Option<NormalizedContact> {
    pair.crm_content
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// The CRM's record after taking Google's content: the fields that travel from Google to the
/// CRM are Google's, the others stay as the CRM has them.
fn merged_for_crm(
    mapping: &FieldMapping,
    crm: Option<NormalizedContact>,
    google: &NormalizedContact,
) -> NormalizedContact {
    let Some(crm) = crm else {
        return google.clone();
    };
    fn pick<T: Clone>(d: crate::contacts::normal::Dir, google: &T, crm: T) -> T {
        if d.to_crm() {
            google.clone()
        } else {
            crm
        }
    }
    NormalizedContact {
        kind: crm.kind,
        name: pick(mapping.names, &google.name, crm.name),
        emails: pick(mapping.emails, &google.emails, crm.emails),
        phones: pick(mapping.phones, &google.phones, crm.phones),
        organization: pick(mapping.organization, &google.organization, crm.organization),
        addresses: pick(mapping.addresses, &google.addresses, crm.addresses),
        notes: pick(mapping.notes, &google.notes, crm.notes),
    }
}

/// What was written, for the pair.
fn record_written(ctx: &Ctx<'_>, pair: &mut PairStatus, written: &Person) {
    pair.google_id = Some(written.resource_name.clone());
    pair.google_etag = written.etag.clone();
    pair.google_hash = Some(ctx.google_content(written).hash());
    pair.crm_hash = pair
        .crm_content
        .as_ref()
        .and_then(crate::contacts::normal::content_hash);
    pair.deleted_at = None;
    pair.last_error = None;
}

impl Records for Ctx<'_> {
    type Item = Person;
    type Content = NormalizedContact;

    fn etag(p: &Person) -> Option<String> {
        p.etag.clone()
    }

    fn modified(p: &Person) -> Option<OffsetDateTime> {
        google_modified(p)
    }

    fn live(p: &Person) -> bool {
        !p.is_deleted()
    }

    fn hash(c: &NormalizedContact) -> String {
        c.hash()
    }

    fn stored(pair: &PairStatus) -> Option<NormalizedContact> {
        crm_content(pair)
    }

    async fn fetch(
        &mut self,
        pair: &PairStatus,
    ) -> Result<(Option<Person>, Option<NormalizedContact>), SyncError> {
        let rn = pair.google_id.clone().unwrap_or_default();
        let fields = self.mapping.person_fields();
        let person = self
            .app
            .google
            .get_person(&self.token, &rn, &fields)
            .await?;
        let content = person
            .as_ref()
            .filter(|p| !p.is_deleted() && p.in_group(&self.group))
            .map(|p| self.google_content(p));
        Ok((person, content))
    }

    /// A contact still in Google but no longer in the group: the user took it out of the
    /// sync, which only ever unlinks (a CRM record is deleted only for a contact deleted in
    /// Google, under the `propagate` policy).
    fn decide(
        &self,
        pair: &mut PairStatus,
        google: Side<'_>,
        person: Option<&Person>,
        _content: Option<&NormalizedContact>,
    ) -> Decision {
        let mut policy = self.policy;
        if person.is_some_and(|p| !p.is_deleted() && !p.in_group(&self.group)) {
            policy.deletions = DeletionPolicy::UnlinkOnly;
        }
        let crm_hash = pair
            .crm_content
            .as_ref()
            .and_then(crate::contacts::normal::content_hash);
        crate::sync::decide_pair(pair, crm_hash.as_deref(), google, policy)
    }

    fn baseline(
        &self,
        pair: &mut PairStatus,
        person: Option<&Person>,
        _content: Option<&NormalizedContact>,
        hash: Option<String>,
    ) {
        pair.crm_hash = pair
            .crm_content
            .as_ref()
            .and_then(crate::contacts::normal::content_hash);
        pair.google_hash = hash;
        pair.google_etag = person.and_then(|p| p.etag.clone());
    }

    async fn pull(
        &mut self,
        pair: &mut PairStatus,
        d: &Decision,
        person: Option<&Person>,
        google: NormalizedContact,
    ) -> Result<Pulled, SyncError> {
        let now = self.now();
        let created = pair.crm_content.is_none() || d.reason == Reason::EditBeatsDelete;
        let merged = merged_for_crm(&self.mapping, crm_content(pair), &google);
        let data = ContactChanged {
            contact: merged.to_crm(),
            contact_group: self.group.clone(),
            google_updated: person
                .and_then(google_modified)
                .and_then(|t| t.format(&Rfc3339).ok()),
            conflict: Conflict::of(d, Winner::Google),
            edit_beat_delete: d.reason == Reason::EditBeatsDelete,
        };
        pair.crm_deleted_at = None;
        let change = if created {
            Change::ContactCreated(data)
        } else {
            Change::ContactUpdated(data)
        };
        self.pass.feed(change, pair).await?;
        // What the CRM keeps that Google lacks (its kind, fields that only travel to
        // Google): the record goes back to Google with it. A Google-born contact the CRM
        // has not acknowledged yet has nothing of the CRM's to add.
        let dirty = !pair.crm_id.is_google_born()
            && self.mapping.project(&merged, Flow::CrmToGoogle)
                != self.mapping.project(&google, Flow::CrmToGoogle);
        pair.crm_content = serde_json::to_value(&merged).ok();
        pair.crm_hash = (!dirty).then(|| merged.hash());
        pair.google_hash = Some(google.hash());
        pair.crm_modified = person.and_then(google_modified).or(Some(now));
        pair.google_etag = person.and_then(|p| p.etag.clone());
        Ok(Pulled::Told { dirty })
    }

    /// Still in Google (perhaps taken out of the group): the edit brings it back into the
    /// group, the same contact — never a second one.
    async fn update(
        &mut self,
        pair: &PairStatus,
        p: &Person,
        crm: &NormalizedContact,
    ) -> Result<Wrote<Person>, SyncError> {
        let mut body = crm.to_person(&self.link(pair), &self.mapping, Some(p));
        let mut update = self.mapping.update_person_fields();
        if !p.in_group(&self.group) {
            // Back into the group in the same write (a separate members:modify would change
            // the etag under it).
            body.memberships.clone_from(&p.memberships);
            body.memberships.push(Membership::of_group(&self.group));
            update.push(PersonField::Memberships);
        }
        match self
            .app
            .google
            .update_contact(
                &self.token,
                &p.resource_name,
                &body,
                &update,
                &self.mapping.person_fields(),
            )
            .await
        {
            Ok(w) => Ok(Wrote::Done(w)),
            // Changed again since we read it: the next pass reads and decides anew.
            Err(e) if e.is_etag_conflict() => Ok(Wrote::Stale),
            Err(e) => Err(e.into()),
        }
    }

    /// Deleted in Google, edited in the CRM: the edit wins with a new contact in the group.
    async fn create(
        &mut self,
        pair: &mut PairStatus,
        crm: &NormalizedContact,
    ) -> Result<Person, SyncError> {
        let mut body = crm.to_person(&self.link(pair), &self.mapping, None);
        body.memberships = create_memberships(&self.group);
        Ok(self
            .app
            .google
            .create_contact(&self.token, &body, &self.mapping.person_fields())
            .await?)
    }

    async fn written(
        &mut self,
        pair: &mut PairStatus,
        written: &Person,
        _content: &NormalizedContact,
    ) -> bool {
        record_written(self, pair, written);
        false
    }

    async fn delete(
        &mut self,
        pair: &PairStatus,
        _person: Option<&Person>,
    ) -> Result<Wrote<()>, SyncError> {
        if let Some(rn) = pair.google_id.as_deref() {
            self.app.google.delete_contact(&self.token, rn).await?;
            self.report.removed += 1;
        }
        Ok(Wrote::Done(()))
    }

    async fn end(
        &mut self,
        pair: &mut PairStatus,
        action: Action,
        person: Option<&Person>,
    ) -> Result<(), SyncError> {
        // The state that ended it, so that only a later one can bring it back.
        pair.google_etag = person.and_then(|p| p.etag.clone());
        let group = self.group.clone();
        if action == Action::DeleteInCrm {
            let ended = ContactEnded {
                contact_group: group,
                reason: None,
            };
            return self.pass.feed(Change::ContactDeleted(ended), pair).await;
        }
        if pair.crm_deleted_at.is_some() {
            // Deleted in the CRM: out of the group, the contact itself stays in Google.
            if let Some(rn) = pair.google_id.clone() {
                if person.is_some_and(|p| p.in_group(&group)) {
                    let left = self
                        .app
                        .google
                        .remove_from_group(&self.token, &group, &[rn])
                        .await?;
                    if left
                        .can_not_remove_last_contact_group_resource_names
                        .is_empty()
                    {
                        self.report.removed += 1;
                    } else {
                        pair.last_error = Some(REMOVE_REFUSED.to_owned());
                    }
                }
            }
            return Ok(());
        }
        let reason = if person.is_some_and(Person::is_deleted) {
            EndReason::DeletedInGoogle
        } else {
            EndReason::RemovedFromGroup
        };
        let ended = ContactEnded {
            contact_group: group,
            reason: Some(reason),
        };
        self.pass.feed(Change::ContactUntag(ended), pair).await
    }
}
