//! The contacts sync pass: read the People API's changes (`connections.list`, incremental
//! with a sync token, checkpointed page by page) and push the CRM's waiting changes in
//! People batch requests — both through the sync core ([`crate::sync`]: the cursor, the
//! mass-deletion guard, the reconcile after a full read, the plan within the job's calls,
//! commit after write). What is the contacts' own is here: the synced contact group and its
//! memberships, the field mapping, People bodies, and a refused batch broken down until the
//! contact Google refuses is found (it alone gets the error; the others go through).
//!
//! Only the members of the user's synced contact group are the CRM's business: a contact
//! leaving the group (or deleted) ends its pair. With the default deletion policy a deletion
//! never destroys data on the other side: the CRM deleting a contact removes it from the
//! group (the contact stays in Google), and Google deleting it (or taking it out of the group)
//! asks the CRM to untag the record (`contact_untag`). `propagate` deletes on both sides.

use crate::app::App;
use crate::calendar::decide::Policy;
use crate::calendar::decide::{Action, Decision, Reason, Side};
use crate::contacts::normal::{CrmLink, FieldMapping, Flow, NormalizedContact};
use crate::domain::{
    Account, ChangeKind, Collection, ContactsProgress, CrmId, Cursor, DeletionPolicy, PairStatus,
    Tenant, TenantId, UserId,
};
use crate::google::people::{
    ListConnections, Membership, Person, PersonField, MAX_BATCH_CONTACTS, MAX_BATCH_DELETE,
    MAX_MEMBERS_MODIFY,
};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use crate::sync::execute::{self, Answer, Pulled, Records, Tally, Wrote};
use crate::sync::plan::{BatchKind, WriteCost};
use crate::sync::push::{self, Sink};
use crate::sync::push::{after_answer, after_refusal, as_refusal, Next};
use crate::sync::read::{self, Page, Read, Source};
use crate::sync::{self, conflict_data, Part, Pass, SyncError};
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a contacts pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactsReport {
    pub google_contacts_read: usize,
    pub pushed_to_google: usize,
    pub removed_in_google: usize,
    pub changes_for_crm: usize,
    pub conflicts: usize,
    /// CRM changes the pass decided but left waiting (beyond what fitted in the job's Google
    /// calls, or after a passing failure); with `capped`, more may wait that this pass did
    /// not look at.
    pub waiting: usize,
    /// More changes wait than the pass sent: a continuation is due.
    pub capped: bool,
    /// The read stopped at the deadline; a continuation resumes it.
    pub incomplete: bool,
    /// Deletions held back by the mass-deletion guard.
    pub blocked: bool,
    /// What the pass leaves on the account (written by the worker with the next due time).
    #[serde(skip)]
    pub noted: sync::Noted,
}

struct Ctx<'a> {
    pass: Pass<'a>,
    mapping: FieldMapping,
    group: String,
    report: ContactsReport,
}

impl<'a> Deref for Ctx<'a> {
    type Target = Pass<'a>;
    fn deref(&self) -> &Pass<'a> {
        &self.pass
    }
}

impl DerefMut for Ctx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.pass
    }
}

impl Part for Ctx<'_> {
    fn pass(&self) -> &Pass<'_> {
        &self.pass
    }
}

impl Ctx<'_> {
    fn link(&self, pair: &PairStatus) -> CrmLink {
        CrmLink {
            tenant: self.t().to_string(),
            user: self.u().to_string(),
            crm_id: pair.crm_id.to_string(),
        }
    }

    /// Google's side of a person, as the CRM may see it.
    fn google_content(&self, p: &Person) -> NormalizedContact {
        self.mapping
            .project(&NormalizedContact::from_person(p), Flow::GoogleToCrm)
    }
}

fn parse_time(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// When Google last changed the person (its contact source's `updateTime`, not a linked
/// profile's), for "latest wins".
fn google_modified(p: &Person) -> Option<OffsetDateTime> {
    p.metadata
        .as_ref()?
        .sources
        .iter()
        .filter(|s| s.kind.as_deref().is_none_or(|k| k == "CONTACT"))
        .filter_map(|s| parse_time(s.update_time.as_deref()))
        .max()
}

/// The synced contact group: the user's choice, else the group named by the tenant's
/// setting — found among the user's groups, or created (once: the name is then kept on the
/// account, so later passes cost no group call).
async fn ensure_group(
    app: &App,
    token: &SecretString,
    tenant: &Tenant,
    account: &Account,
) -> Result<String, SyncError> {
    if let Some(g) = &account.settings.contact_group {
        return Ok(g.clone());
    }
    let name = tenant.settings.defaults.contact_group_name.clone();
    let groups = app.google.contact_groups(token).await?;
    let found = groups.into_iter().find(|g| {
        g.group_type.as_deref() == Some("USER_CONTACT_GROUP") && g.name.as_deref() == Some(&name)
    });
    let group = match found {
        Some(g) => g.resource_name,
        None => match app.google.create_contact_group(token, &name, &[]).await {
            Ok(g) => g.resource_name,
            // Made meanwhile (a racing pass), or the user has one whose name differs only in
            // case or spaces (Google's uniqueness rule is not documented further): use it.
            Err(GoogleError::Conflict(_)) => app
                .google
                .contact_groups(token)
                .await?
                .into_iter()
                .filter(|g| g.group_type.as_deref() == Some("USER_CONTACT_GROUP"))
                .find(|g| {
                    g.name
                        .as_deref()
                        .is_some_and(|n| n.trim().to_lowercase() == name.trim().to_lowercase())
                })
                .map(|g| g.resource_name)
                .ok_or_else(|| {
                    SyncError::Google(GoogleError::Conflict(format!(
                        "contact group {name:?} exists but cannot be listed"
                    )))
                })?,
            Err(e) => return Err(e.into()),
        },
    };
    let chosen = group.clone();
    super::super::accounts::update(app, &tenant.id, &account.user, |a| {
        a.settings.contact_group.get_or_insert(chosen.clone());
        Ok(())
    })
    .await?;
    Ok(group)
}

/// One contacts pass for an account: Google's changes to the group's members, then the
/// CRM's waiting changes (as many as fit in the job's Google calls).
pub async fn sync_contacts(
    app: &App,
    t: &TenantId,
    u: &UserId,
    confirm_mass_deletion: bool,
    deadline: Instant,
) -> Result<ContactsReport, SyncError> {
    let pass = Pass::open(app, t, u, Collection::Contacts, confirm_mass_deletion).await?;
    let defaults = &pass.tenant.settings.defaults;
    let mapping = match &pass.account.settings.contact_fields {
        Some(patch) => defaults.contact_fields.overlay(patch),
        None => defaults.contact_fields,
    };
    let group = ensure_group(app, &pass.token, &pass.tenant, &pass.account).await?;
    let mut ctx = Ctx {
        pass,
        mapping,
        group,
        report: ContactsReport::default(),
    };
    let outcome = read_then_push(&mut ctx, deadline).await;
    ctx.report.changes_for_crm = ctx.pass.fed();
    ctx.pass.forget_refused_token(&outcome).await?;
    outcome?;
    ctx.report.noted.held = ctx.report.blocked;
    ctx.report.noted.contacts = Some(ContactsProgress {
        waiting: ctx.report.waiting,
        pushed_last_pass: ctx.report.pushed_to_google + ctx.report.removed_in_google,
        pulled_last_pass: ctx.report.changes_for_crm,
        group: Some(ctx.group.clone()),
        last_pass_at: ctx.now(),
    });
    Ok(ctx.report)
}

/// Google's changes first, then (unless the read stopped at the deadline) the CRM's.
async fn read_then_push(ctx: &mut Ctx<'_>, deadline: Instant) -> Result<(), SyncError> {
    ctx.report.incomplete = read::read(ctx, deadline).await? == Read::Incomplete;
    if !ctx.report.incomplete {
        let pushed = push::push(ctx, None, deadline).await?;
        ctx.report.waiting += pushed.left;
        ctx.report.capped = pushed.more || pushed.left > 0;
        ctx.report.blocked |= pushed.held > 0;
    }
    Ok(())
}

// ---- Google → CRM ------------------------------------------------------------------------

const SCOPE: &str = "contacts";

impl Source for Ctx<'_> {
    type Item = Person;

    fn scope(&self) -> String {
        SCOPE.to_owned()
    }

    /// The group and the fields read: Google's tokens are only good for the same request.
    fn shape(&self) -> Option<String> {
        let fields: Vec<&str> = self
            .mapping
            .person_fields()
            .into_iter()
            .map(|f| f.as_str())
            .collect();
        Some(format!(
            "group={}; fields={}; sources={}",
            self.group,
            fields.join(","),
            crate::google::people::READ_SOURCES
        ))
    }

    async fn list(&mut self, cursor: &Cursor) -> Result<Page<Person>, GoogleError> {
        let params = ListConnections {
            person_fields: self.mapping.person_fields(),
            page_size: Some(1000),
            page_token: cursor.page_token.clone(),
            request_sync_token: true,
            sync_token: cursor.sync_token.clone(),
        };
        let page = self
            .app
            .google
            .list_connections(&self.token, &params)
            .await?;
        self.report.google_contacts_read += page.connections.len();
        Ok(Page {
            items: page.connections,
            next_page_token: page.next_page_token,
            next_sync_token: page.next_sync_token,
        })
    }

    fn id(p: &Person) -> &str {
        &p.resource_name
    }

    /// The members leaving the group (deleted, or taken out of it) that end a live pair.
    async fn ending(&mut self, items: &[Person]) -> Result<usize, SyncError> {
        let mut n = 0;
        let ending: Vec<&Person> = items.iter().filter(|p| self.ends(p)).collect();
        for p in ending {
            if pair_of(self, p)
                .await?
                .is_some_and(|v| v.value.deleted_at.is_none())
            {
                n += 1;
            }
        }
        Ok(n)
    }

    fn in_scope(&self, _pair: &PairStatus) -> bool {
        true
    }

    async fn block(&mut self, deletions: usize, live: usize, tell: bool) -> Result<(), SyncError> {
        self.report.blocked = true;
        let data = json!({ "contact_group": self.group });
        self.pass
            .block("contacts", "contacts", data, deletions, live, tell)
            .await
    }

    async fn apply(&mut self, item: &Person) -> Result<(), SyncError> {
        apply_person(self, item).await
    }

    const LOOK_UP: usize = MAX_BATCH_CONTACTS;

    /// `people.getBatchGet`, 200 per request; a contact Google no longer has comes back as a
    /// deleted person.
    async fn look_up(&mut self, ids: Vec<String>) -> Result<Vec<Person>, SyncError> {
        let answers = self
            .app
            .google
            .batch_get(&self.token, &ids, &self.mapping.person_fields())
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (rn, answer) in ids.into_iter().zip(answers) {
            match answer.into_result().map(|p| renamed_from(p, &rn)) {
                Ok(p) => out.push(p),
                Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => out.push(Person {
                    resource_name: rn,
                    metadata: Some(crate::google::people::PersonMetadata {
                        deleted: Some(true),
                        ..Default::default()
                    }),
                    ..Person::default()
                }),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    fn ends(&self, p: &Person) -> bool {
        p.is_deleted() || !p.in_group(&self.group)
    }
}

/// The CRM id of this tenant's and user's link the person carries in `clientData`.
fn our_link(ctx: &Ctx<'_>, p: &Person) -> Option<CrmId> {
    CrmLink::from_person(p)
        .filter(|l| l.tenant == ctx.t().as_str() && l.user == ctx.u().as_str())
        .and_then(|l| CrmId::parse(&l.crm_id).ok())
}

/// The pair a person belongs to: by the CRM link it carries (same tenant and user), or by its
/// resource name — the current one or one Google gave it before (`previousResourceNames`:
/// Google renames a contact it links to a profile; the pair follows it, never a new one).
async fn pair_of(ctx: &Ctx<'_>, p: &Person) -> Result<Option<Versioned<PairStatus>>, SyncError> {
    let (t, u) = (ctx.t(), ctx.u());
    let previous = p.previous_resource_names();
    if let Some(crm_id) = our_link(ctx, p) {
        let found = ctx
            .app
            .store
            .get_pair(t, u, Collection::Contacts, crm_id.as_str())
            .await?
            .filter(|v| {
                v.value
                    .google_id
                    .as_deref()
                    .is_none_or(|g| g == p.resource_name || previous.iter().any(|n| n == g))
            });
        if found.is_some() {
            return Ok(found);
        }
    }
    for rn in std::iter::once(&p.resource_name).chain(previous) {
        let found = ctx
            .app
            .store
            .find_pair_by_google_id(t, u, Collection::Contacts, rn)
            .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// A contact carrying the CRM link of a pair that is linked to another contact: a second copy
/// of a contact the CRM already has (a create whose answer was lost, made again), never a
/// new contact for the CRM.
async fn copy_of_linked(ctx: &Ctx<'_>, p: &Person) -> Result<bool, SyncError> {
    let Some(crm_id) = our_link(ctx, p) else {
        return Ok(false);
    };
    Ok(ctx
        .app
        .store
        .get_pair(ctx.t(), ctx.u(), Collection::Contacts, crm_id.as_str())
        .await?
        .is_some())
}

/// A person Google answered for the name `asked`: under another name, it was renamed (Google
/// answers an old name with the person as it is now), and the old name is one of its
/// previous ones.
fn renamed_from(mut p: Person, asked: &str) -> Person {
    if p.resource_name != asked && !p.resource_name.is_empty() {
        let m = p.metadata.get_or_insert_with(Default::default);
        if !m.previous_resource_names.iter().any(|n| n == asked) {
            m.previous_resource_names.push(asked.to_owned());
        }
    }
    p
}

async fn apply_person(ctx: &mut Ctx<'_>, p: &Person) -> Result<(), SyncError> {
    let member = !p.is_deleted() && p.in_group(&ctx.group);
    let found = pair_of(ctx, p).await?;
    let (mut pair, version) = match found {
        Some(Versioned { value, version }) => (value, Some(version)),
        // Not a member, and never ours: not the CRM's business.
        None if !member => return Ok(()),
        None if copy_of_linked(ctx, p).await? => {
            tracing::warn!(tenant = %ctx.t(), user = %ctx.u(), "a second Google contact carries the CRM link of a synced contact; not imported");
            return Ok(());
        }
        None => {
            let mut pair = PairStatus::new(
                ctx.account.id.clone(),
                Collection::Contacts,
                CrmId::google_born(&p.resource_name),
            );
            pair.google_born = true;
            (pair, None)
        }
    };
    if pair.deleted_at.is_some() {
        // A tombstone: late news neither resurrects nor re-deletes it. A contact put back
        // into the group since (a state of it we have not seen) is news: it comes to the CRM
        // again as a new contact, under the CRM id it carries.
        if !member || p.etag.is_none() || p.etag == pair.google_etag {
            return Ok(());
        }
        pair.deleted_at = None;
        pair.crm_deleted_at = None;
        pair.crm_content = None;
        pair.crm_hash = None;
        pair.google_hash = None;
        pair.crm_modified = None;
    }
    pair.google_id = Some(p.resource_name.clone());
    let content = member.then(|| ctx.google_content(p));
    execute::apply(ctx, pair, version, p, content).await
}

// ---- deciding and carrying out ------------------------------------------------------------

fn crm_content(pair: &PairStatus) -> Option<NormalizedContact> {
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
    pair.crm_hash = pair.crm_content.as_ref().and_then(super::content_hash);
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

    fn count(&mut self, what: Tally) {
        match what {
            Tally::Conflict => self.report.conflicts += 1,
            Tally::Pushed => self.report.pushed_to_google += 1,
            Tally::Removed => self.report.removed_in_google += 1,
            Tally::Waiting => self.report.waiting += 1,
        }
    }

    /// The person's content, if it is still in the group.
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
        let crm_hash = pair.crm_content.as_ref().and_then(super::content_hash);
        sync::decide_pair(pair, crm_hash.as_deref(), google, policy)
    }

    fn baseline(
        &self,
        pair: &mut PairStatus,
        person: Option<&Person>,
        _content: Option<&NormalizedContact>,
        hash: Option<String>,
    ) {
        pair.crm_hash = pair.crm_content.as_ref().and_then(super::content_hash);
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
        let data = json!({
            "contact": merged.to_crm(),
            "contact_group": self.group,
            // When Google last changed it: a CRM holding a newer edit of its own can tell
            // this record is superseded (its edit is pushed, and wins as the later one).
            "google_updated": person
                .and_then(google_modified)
                .and_then(|t| t.format(&Rfc3339).ok()),
            "conflict": d.conflict.then(|| conflict_data(d, "google")),
            "edit_beat_delete": d.reason == Reason::EditBeatsDelete,
        });
        pair.crm_deleted_at = None;
        let kind = if created {
            ChangeKind::ContactCreated
        } else {
            ChangeKind::ContactUpdated
        };
        self.pass.feed(kind, pair, data).await?;
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
            self.report.removed_in_google += 1;
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
            return self
                .pass
                .feed(
                    ChangeKind::ContactDeleted,
                    pair,
                    json!({"contact_group": group}),
                )
                .await;
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
                        self.report.removed_in_google += 1;
                    } else {
                        pair.last_error = Some(REMOVE_REFUSED.to_owned());
                    }
                }
            }
            return Ok(());
        }
        let reason = if person.is_some_and(Person::is_deleted) {
            "deleted_in_google"
        } else {
            "removed_from_group"
        };
        self.pass
            .feed(
                ChangeKind::ContactUntag,
                pair,
                json!({"contact_group": group, "reason": reason}),
            )
            .await
    }
}

// ---- CRM → Google: the waiting changes, in People batches --------------------------------

/// What a waiting pair's write is.
enum Op {
    Create(Person),
    Update(String, Person),
    /// Out of the group (deleted in the CRM; the contact stays in Google).
    Remove(String),
    Delete(String),
}

struct Planned {
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
fn create_memberships(group: &str) -> Vec<Membership> {
    let mut out = vec![Membership::of_group(group)];
    if group != crate::google::people::MY_CONTACTS {
        out.push(Membership::of_group(crate::google::people::MY_CONTACTS));
    }
    out
}

/// Why a contact deleted in the CRM is still in the group.
const REMOVE_REFUSED: &str =
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
        pair.crm_content.as_ref().and_then(super::content_hash)
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
