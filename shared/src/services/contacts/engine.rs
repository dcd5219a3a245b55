//! The contacts sync pass: read the People API's changes (`connections.list`, incremental
//! with a sync token, checkpointed page by page), decide every pair with the same pure
//! decision as the calendar, then push the CRM's waiting changes in batches of up to 200 —
//! one request at a time, as Google asks of mutations for one user. A pair's status row is
//! committed only after Google accepted the write.
//!
//! Only the members of the user's synced contact group are the CRM's business: a contact
//! leaving the group (or deleted) ends its pair. With the default deletion policy a deletion
//! never destroys data on the other side: the CRM deleting a contact removes it from the
//! group (the contact stays in Google), and Google deleting it (or taking it out of the group)
//! asks the CRM to untag the record (`contact_untag`). `propagate` deletes on both sides.

use crate::app::App;
use crate::calendar::decide::{decide, Action, Baseline, Decision, Policy, Reason, Side};
use crate::contacts::normal::{CrmLink, FieldMapping, Flow, NormalizedContact};
use crate::domain::{
    Account, ChangeKind, ChangeRecord, Collection, ContactsProgress, CrmId, Cursor, DeletionPolicy,
    PairStatus, Tenant, TenantId, UserId,
};
use crate::google::people::{ListConnections, Membership, Person, PersonField};
use crate::google::GoogleError;
use crate::services::calendar::engine::{
    unseen_by_full_read, SyncError, MASS_DELETION_MIN, MASS_DELETION_SHARE,
};
use crate::services::records;
use crate::services::tokens::access_token;
use crate::store::repo::Versioned;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How many waiting CRM changes one pass carries to Google (5 batch requests of 200); the
/// rest is carried on by a continuation job.
pub const PUSH_PER_PASS: usize = 1000;

/// What a contacts pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactsReport {
    pub google_contacts_read: usize,
    pub pushed_to_google: usize,
    pub removed_in_google: usize,
    pub changes_for_crm: usize,
    pub conflicts: usize,
    /// CRM changes still waiting after the pass (beyond the pass's cap, or after a passing
    /// failure).
    pub waiting: usize,
    /// More changes wait than one pass carries: a continuation is due.
    pub capped: bool,
    /// The read stopped at the deadline; a continuation resumes it.
    pub incomplete: bool,
    /// Deletions held back by the mass-deletion guard.
    pub blocked: bool,
}

struct Ctx<'a> {
    app: &'a App,
    tenant: Tenant,
    account: Account,
    token: SecretString,
    policy: Policy,
    mapping: FieldMapping,
    group: String,
    confirm_mass_deletion: bool,
    /// While a full read is applied: its id (see the calendar's).
    full_read: Option<String>,
    report: ContactsReport,
}

impl Ctx<'_> {
    fn t(&self) -> &TenantId {
        &self.tenant.id
    }

    fn u(&self) -> &UserId {
        &self.account.user
    }

    fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }

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

    async fn feed(
        &mut self,
        kind: ChangeKind,
        pair: &PairStatus,
        data: Value,
    ) -> Result<(), SyncError> {
        let mut record =
            ChangeRecord::new(self.t().clone(), self.u().clone(), kind, data, self.now());
        record.crm_id = (!pair.crm_id.is_google_born()).then(|| pair.crm_id.to_string());
        record.google_id = pair.google_id.clone();
        self.app.store.append_change(&mut record).await?;
        self.report.changes_for_crm += 1;
        Ok(())
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
/// CRM's waiting changes (up to [`PUSH_PER_PASS`]).
pub async fn sync_contacts(
    app: &App,
    t: &TenantId,
    u: &UserId,
    confirm_mass_deletion: bool,
    deadline: Instant,
) -> Result<ContactsReport, SyncError> {
    let token = access_token(app, t, u).await?;
    let tenant = super::super::tenants::get(app, t).await?;
    let account = token.account.clone();
    let defaults = &tenant.settings.defaults;
    let mapping = match &account.settings.contact_fields {
        Some(patch) => defaults.contact_fields.overlay(patch),
        None => defaults.contact_fields,
    };
    let policy = Policy {
        direction: account.settings.direction.unwrap_or(defaults.direction),
        conflicts: defaults.conflict_policy,
        deletions: defaults.deletion_policy,
    };
    let group = ensure_group(app, &token.token, &tenant, &account).await?;
    let mut ctx = Ctx {
        app,
        tenant,
        account,
        token: token.token,
        policy,
        mapping,
        group,
        confirm_mass_deletion,
        full_read: None,
        report: ContactsReport::default(),
    };
    let read = read_contacts(&mut ctx, deadline).await;
    ctx.full_read = None;
    read?;
    if !ctx.report.incomplete {
        push_waiting(&mut ctx).await?;
    }
    let progress = ContactsProgress {
        waiting: ctx.report.waiting,
        pushed_last_pass: ctx.report.pushed_to_google + ctx.report.removed_in_google,
        pulled_last_pass: ctx.report.changes_for_crm,
        group: Some(ctx.group.clone()),
        last_pass_at: ctx.now(),
    };
    super::super::accounts::update(app, t, u, |a| {
        a.contacts_progress = Some(progress.clone());
        Ok(())
    })
    .await?;
    Ok(ctx.report)
}

// ---- Google → CRM ------------------------------------------------------------------------

const SCOPE: &str = "contacts";

async fn read_contacts(ctx: &mut Ctx<'_>, deadline: Instant) -> Result<(), SyncError> {
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    let (mut cursor, mut version) = match ctx.app.store.get_cursor(&t, &u, SCOPE).await? {
        Some(Versioned { value, version }) => (value, Some(version)),
        None => (
            Cursor::new(ctx.account.id.clone(), SCOPE.to_owned(), ctx.now()),
            None,
        ),
    };
    // The group and the fields read: Google's tokens are only good for the same request.
    let fields: Vec<&str> = ctx
        .mapping
        .person_fields()
        .into_iter()
        .map(|f| f.as_str())
        .collect();
    let shape = format!(
        "group={}; fields={}; sources={}",
        ctx.group,
        fields.join(","),
        crate::google::people::READ_SOURCES
    );
    if cursor.reshape(shape) {
        tracing::info!(tenant = %t, user = %u, "contact group or field mapping changed; full read");
    }
    let mut reset = false;
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        ctx.full_read = cursor.start_page();
        let params = ListConnections {
            person_fields: ctx.mapping.person_fields(),
            page_size: Some(1000),
            page_token: cursor.page_token.clone(),
            request_sync_token: true,
            sync_token: cursor.sync_token.clone(),
        };
        let with_token = params.page_token.is_some() || params.sync_token.is_some();
        let page = match ctx.app.google.list_connections(&ctx.token, &params).await {
            Ok(page) => page,
            // Expired, or refused as not matching the call that gave it (Google binds page and
            // sync tokens to the other parameters): the read starts over in full, once.
            Err(e)
                if (e.is_full_sync_required() || (with_token && e.is_bad_request())) && !reset =>
            {
                reset = true;
                tracing::info!(tenant = %t, user = %u, error = %e, "contacts sync or page token refused; full resync");
                cursor.sync_token = None;
                cursor.page_token = None;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        ctx.report.google_contacts_read += page.connections.len();
        seen.extend(page.connections.iter().map(|p| p.resource_name.clone()));
        let ending: Vec<&Person> = page
            .connections
            .iter()
            .filter(|p| p.is_deleted() || !p.in_group(&ctx.group))
            .collect();
        if guard_blocks(ctx, &ending).await? {
            return Ok(());
        }
        for person in &page.connections {
            apply_person(ctx, person).await?;
        }
        if cursor.idle_page(
            !page.connections.is_empty() || page.next_page_token.is_some(),
            ctx.now(),
        ) {
            // Nothing changed: the stored sync token still says where the read stands.
            return Ok(());
        }
        cursor.updated_at = ctx.now();
        match page.next_page_token {
            Some(next) => cursor.page_token = Some(next),
            None => {
                if ctx.full_read.is_some() && reconcile_missing(ctx, &seen).await? {
                    return Ok(());
                }
                cursor.full_read = None;
                cursor.page_token = None;
                cursor.sync_token = page.next_sync_token.or(cursor.sync_token.take());
            }
        }
        version = Some(ctx.app.store.put_cursor(&t, &u, &cursor, version).await?);
        if cursor.page_token.is_none() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            ctx.report.incomplete = true;
            return Ok(());
        }
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

/// The mass-deletion guard: `ending` would end live pairs; too many (count and share) stop
/// the pass before anything is deleted, reported once.
async fn guard_blocks(ctx: &mut Ctx<'_>, ending: &[&Person]) -> Result<bool, SyncError> {
    if ctx.confirm_mass_deletion || ending.len() < MASS_DELETION_MIN {
        return Ok(false);
    }
    let mut live_ending = 0;
    for p in ending {
        if pair_of(ctx, p)
            .await?
            .is_some_and(|v| v.value.deleted_at.is_none())
        {
            live_ending += 1;
        }
    }
    let live = live_pairs(ctx).await?;
    if live_ending < MASS_DELETION_MIN || (live_ending as f64) < MASS_DELETION_SHARE * live as f64 {
        return Ok(false);
    }
    block(ctx, live_ending, live).await?;
    Ok(true)
}

async fn live_pairs(ctx: &Ctx<'_>) -> Result<usize, SyncError> {
    let (mut page, mut n) = (None::<String>, 0);
    loop {
        let records = ctx
            .app
            .store
            .list_pairs(
                ctx.t(),
                ctx.u(),
                Collection::Contacts,
                1000,
                page.as_deref(),
            )
            .await?;
        n += records
            .items
            .iter()
            .filter(|p| p.deleted_at.is_none())
            .count();
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(n),
        }
    }
}

async fn block(ctx: &mut Ctx<'_>, deletions: usize, pairs: usize) -> Result<(), SyncError> {
    tracing::warn!(tenant = %ctx.t(), user = %ctx.u(), deletions, pairs, "contacts mass deletion held back");
    ctx.report.blocked = true;
    let message = format!("contacts: {deletions} deletions held back (of {pairs} contacts); confirm to carry them out");
    if ctx.account.last_error.as_deref() == Some(message.as_str()) {
        return Ok(());
    }
    let mut record = ChangeRecord::new(
        ctx.t().clone(),
        ctx.u().clone(),
        ChangeKind::MassDeletionBlocked,
        json!({
            "contact_group": ctx.group,
            "deletions": deletions,
            "pairs": pairs,
            "resume": "POST /v1/users/{user}/sync with {\"confirm_mass_deletion\": true}",
        }),
        ctx.now(),
    );
    ctx.app.store.append_change(&mut record).await?;
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    super::super::accounts::update(ctx.app, &t, &u, |a| {
        a.last_error = Some(message.clone());
        Ok(())
    })
    .await?;
    Ok(())
}

/// After a full read (the first, or after Google expired the sync token): a full list shows
/// no deletions, so each live pair the read did not return is looked up (`batchGet`, 200 per
/// request) and, if gone or out of the group, ended like any deletion — under the guard.
async fn reconcile_missing(ctx: &mut Ctx<'_>, seen: &HashSet<String>) -> Result<bool, SyncError> {
    let (mut page, mut unseen) = (None::<String>, Vec::new());
    loop {
        let records = ctx
            .app
            .store
            .list_pairs(
                ctx.t(),
                ctx.u(),
                Collection::Contacts,
                1000,
                page.as_deref(),
            )
            .await?;
        unseen.extend(
            records
                .items
                .into_iter()
                .filter(|p| p.deleted_at.is_none() && p.google_hash.is_some())
                // Seen by an earlier run of this read.
                .filter(|p| unseen_by_full_read(ctx.full_read.as_deref(), p))
                .filter_map(|p| p.google_id)
                .filter(|g| !seen.contains(g)),
        );
        match records.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    if unseen.is_empty() {
        return Ok(false);
    }
    let answers = ctx
        .app
        .google
        .batch_get(&ctx.token, &unseen, &ctx.mapping.person_fields())
        .await?;
    let mut gone = Vec::new();
    for (rn, answer) in unseen.iter().zip(answers) {
        match answer.into_result().map(|p| renamed_from(p, rn)) {
            // Still a member: applied like a listed contact (which marks it seen).
            Ok(p) if p.in_group(&ctx.group) && !p.is_deleted() => apply_person(ctx, &p).await?,
            Ok(p) => gone.push(p),
            Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => gone.push(Person {
                resource_name: rn.clone(),
                metadata: Some(crate::google::people::PersonMetadata {
                    deleted: Some(true),
                    ..Default::default()
                }),
                ..Person::default()
            }),
            Err(e) => return Err(e.into()),
        }
    }
    let ending: Vec<&Person> = gone.iter().collect();
    if guard_blocks(ctx, &ending).await? {
        return Ok(true);
    }
    for p in &gone {
        apply_person(ctx, p).await?;
    }
    Ok(false)
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
    let hash = content.as_ref().map(NormalizedContact::hash);
    let modified = google_modified(p).unwrap_or_else(|| ctx.now());
    let google = match &hash {
        Some(h) => Side::Present { hash: h, modified },
        None => Side::Deleted { at: modified },
    };
    execute(ctx, pair, version, google, Some(p), content).await
}

// ---- deciding and carrying out ------------------------------------------------------------

fn crm_content(pair: &PairStatus) -> Option<NormalizedContact> {
    pair.crm_content
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

fn crm_side<'p>(pair: &'p PairStatus, hash: &'p Option<String>) -> Side<'p> {
    if let Some(at) = pair.crm_deleted_at {
        return Side::Deleted { at };
    }
    match hash {
        Some(h) => Side::Present {
            hash: h,
            modified: pair.crm_modified.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        None => Side::Absent,
    }
}

/// Decides one pair. `left_group`: the contact still exists in Google but is no longer in
/// the group — the user took it out of the sync, which only ever unlinks (a CRM record is
/// deleted only for a contact deleted in Google, under the `propagate` policy).
fn decide_pair(ctx: &Ctx<'_>, pair: &PairStatus, google: Side<'_>, left_group: bool) -> Decision {
    let crm_hash = pair.crm_content.as_ref().and_then(super::content_hash);
    let mut policy = ctx.policy;
    if left_group {
        policy.deletions = DeletionPolicy::UnlinkOnly;
    }
    decide(
        Baseline {
            crm_hash: pair.crm_hash.as_deref(),
            google_hash: pair.google_hash.as_deref(),
        },
        crm_side(pair, &crm_hash),
        google,
        policy,
    )
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
    let pick = |d: crate::contacts::normal::Dir| d.to_crm();
    NormalizedContact {
        kind: crm.kind,
        name: if pick(mapping.names) {
            google.name.clone()
        } else {
            crm.name
        },
        emails: if pick(mapping.emails) {
            google.emails.clone()
        } else {
            crm.emails
        },
        phones: if pick(mapping.phones) {
            google.phones.clone()
        } else {
            crm.phones
        },
        organization: if pick(mapping.organization) {
            google.organization.clone()
        } else {
            crm.organization
        },
        addresses: if pick(mapping.addresses) {
            google.addresses.clone()
        } else {
            crm.addresses
        },
        notes: if pick(mapping.notes) {
            google.notes.clone()
        } else {
            crm.notes
        },
    }
}

fn conflict_data(d: &Decision, winner: &str) -> Value {
    json!({
        "winner": winner,
        "policy": match d.reason {
            Reason::ConflictCrmWins => "crm_wins",
            Reason::ConflictGoogleWins => "google_wins",
            _ => "latest_wins",
        },
    })
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

/// Decides one pair against a person just read (or its absence) and carries the decision out.
async fn execute(
    ctx: &mut Ctx<'_>,
    mut pair: PairStatus,
    version: Option<u64>,
    google: Side<'_>,
    person: Option<&Person>,
    content: Option<NormalizedContact>,
) -> Result<(), SyncError> {
    let loaded = pair.clone();
    let left_group = person.is_some_and(|p| !p.is_deleted() && !p.in_group(&ctx.group));
    let d = decide_pair(ctx, &pair, google, left_group);
    if d.conflict {
        ctx.report.conflicts += 1;
    }
    let now = ctx.now();
    let hash = content.as_ref().map(NormalizedContact::hash);
    let mut dirty = false;
    match d.action {
        Action::Nothing => {
            let etag = person.and_then(|p| p.etag.clone());
            if etag.is_some() && etag != pair.google_etag {
                pair.google_etag = etag;
            } else if loaded.google_id == pair.google_id
                && !unseen_by_full_read(ctx.full_read.as_deref(), &pair)
            {
                return Ok(());
            }
        }
        Action::Baseline => {
            pair.crm_hash = pair.crm_content.as_ref().and_then(super::content_hash);
            pair.google_hash = hash;
            pair.google_etag = person.and_then(|p| p.etag.clone());
        }
        Action::PullToCrm => {
            let Some(google) = content else {
                return Ok(());
            };
            let created = pair.crm_content.is_none() || d.reason == Reason::EditBeatsDelete;
            let merged = merged_for_crm(&ctx.mapping, crm_content(&pair), &google);
            let data = json!({
                "contact": merged.to_crm(),
                "contact_group": ctx.group,
                // When Google last changed it: a CRM holding a newer edit of its own can tell
                // this record is superseded (its edit is pushed, and wins as the later one).
                "google_updated": person
                    .and_then(google_modified)
                    .and_then(|t| t.format(&Rfc3339).ok()),
                "conflict": d.conflict.then(|| conflict_data(&d, "google")),
                "edit_beat_delete": d.reason == Reason::EditBeatsDelete,
            });
            pair.crm_deleted_at = None;
            let kind = if created {
                ChangeKind::ContactCreated
            } else {
                ChangeKind::ContactUpdated
            };
            ctx.feed(kind, &pair, data).await?;
            // What the CRM keeps that Google lacks (its kind, fields that only travel to
            // Google): the record goes back to Google with it. A Google-born contact the CRM
            // has not acknowledged yet has nothing of the CRM's to add.
            dirty = !pair.crm_id.is_google_born()
                && ctx.mapping.project(&merged, Flow::CrmToGoogle)
                    != ctx.mapping.project(&google, Flow::CrmToGoogle);
            pair.crm_content = serde_json::to_value(&merged).ok();
            pair.crm_hash = (!dirty).then(|| merged.hash());
            pair.google_hash = hash;
            pair.crm_modified = person.and_then(google_modified).or(Some(now));
            pair.google_etag = person.and_then(|p| p.etag.clone());
        }
        Action::PushToGoogle => {
            let Some(crm) = crm_content(&pair) else {
                return Ok(());
            };
            // Still in Google (perhaps taken out of the group): the edit brings it back into
            // the group, the same contact — never a second one.
            let live = person.filter(|p| !p.is_deleted());
            let written = match live {
                Some(p) => {
                    let mut body = crm.to_person(&ctx.link(&pair), &ctx.mapping, Some(p));
                    let mut update = ctx.mapping.update_person_fields();
                    if !p.in_group(&ctx.group) {
                        // Back into the group in the same write (a separate members:modify
                        // would change the etag under it).
                        body.memberships.clone_from(&p.memberships);
                        body.memberships.push(Membership::of_group(&ctx.group));
                        update.push(PersonField::Memberships);
                    }
                    match ctx
                        .app
                        .google
                        .update_contact(
                            &ctx.token,
                            &p.resource_name,
                            &body,
                            &update,
                            &ctx.mapping.person_fields(),
                        )
                        .await
                    {
                        Ok(w) => w,
                        // Changed again since we read it: the next pass reads and decides anew.
                        Err(e) if e.is_etag_conflict() => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    // Deleted in Google, edited in the CRM: the edit wins with a new contact
                    // in the group.
                    let mut body = crm.to_person(&ctx.link(&pair), &ctx.mapping, None);
                    body.memberships = vec![Membership::of_group(&ctx.group)];
                    ctx.app
                        .google
                        .create_contact(&ctx.token, &body, &ctx.mapping.person_fields())
                        .await?
                }
            };
            if d.conflict {
                ctx.feed(
                    ChangeKind::ConflictResolved,
                    &pair,
                    conflict_data(&d, "crm"),
                )
                .await?;
            }
            record_written(ctx, &mut pair, &written);
            ctx.report.pushed_to_google += 1;
        }
        Action::DeleteInGoogle => {
            if let Some(rn) = pair.google_id.clone() {
                ctx.app.google.delete_contact(&ctx.token, &rn).await?;
                ctx.report.removed_in_google += 1;
            }
            pair.deleted_at = Some(now);
        }
        Action::DeleteInCrm => {
            pair.google_etag = person.and_then(|p| p.etag.clone());
            ctx.feed(
                ChangeKind::ContactDeleted,
                &pair,
                json!({"contact_group": ctx.group}),
            )
            .await?;
            pair.deleted_at = Some(now);
        }
        Action::Unlink => {
            // The state that ended it, so that only a later one can bring it back.
            pair.google_etag = person.and_then(|p| p.etag.clone());
            if pair.crm_deleted_at.is_some() {
                // Deleted in the CRM: out of the group, the contact itself stays in Google.
                if let Some(rn) = pair.google_id.clone() {
                    if person.is_some_and(|p| p.in_group(&ctx.group)) {
                        ctx.app
                            .google
                            .modify_contact_group_members(&ctx.token, &ctx.group, &[], &[rn])
                            .await?;
                        ctx.report.removed_in_google += 1;
                    }
                }
            } else {
                let reason = if person.is_some_and(Person::is_deleted) {
                    "deleted_in_google"
                } else {
                    "removed_from_group"
                };
                ctx.feed(
                    ChangeKind::ContactUntag,
                    &pair,
                    json!({"contact_group": ctx.group, "reason": reason}),
                )
                .await?;
            }
            pair.deleted_at = Some(now);
        }
        Action::Tombstone => {
            pair.deleted_at.get_or_insert(now);
        }
    }
    pair.last_synced_at = Some(now);
    if ctx.full_read.is_some() {
        pair.seen_in_read.clone_from(&ctx.full_read);
    }
    Ok(records::commit(ctx.app, ctx.t(), ctx.u(), &loaded, pair, version, dirty).await?)
}

// ---- CRM → Google: the waiting changes, in batches ----------------------------------------

async fn push_waiting(ctx: &mut Ctx<'_>) -> Result<(), SyncError> {
    let (t, u) = (ctx.t().clone(), ctx.u().clone());
    let mut waiting: Vec<Versioned<PairStatus>> = Vec::new();
    let mut page: Option<String> = None;
    let mut more = 0usize;
    loop {
        let records = ctx
            .app
            .store
            .list_dirty_pairs(&t, &u, Collection::Contacts, 500, page.as_deref())
            .await?;
        for v in records.items {
            if waiting.len() < PUSH_PER_PASS {
                waiting.push(v);
            } else {
                more += 1;
            }
        }
        match records.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    let mut creates: Vec<(Versioned<PairStatus>, Person)> = Vec::new();
    let mut updates: BTreeMap<String, (Versioned<PairStatus>, Person)> = BTreeMap::new();
    let mut removals: Vec<Versioned<PairStatus>> = Vec::new();
    let mut deletions: Vec<Versioned<PairStatus>> = Vec::new();
    for v in waiting {
        let pair = &v.value;
        if pair.deleted_at.is_some() {
            settle(ctx, v, |_| {}).await?;
            continue;
        }
        if pair.google_id.is_some() && pair.google_hash.is_none() {
            // Linked by the CRM to a contact we have not read yet: read it and decide.
            decide_fresh(ctx, v).await?;
            continue;
        }
        let google = match (&pair.google_id, &pair.google_hash) {
            (Some(_), Some(h)) => Side::Present {
                hash: h,
                modified: OffsetDateTime::UNIX_EPOCH,
            },
            _ => Side::Absent,
        };
        let d = decide_pair(ctx, pair, google, false);
        match (d.action, &pair.google_id, crm_content(pair)) {
            (Action::PushToGoogle, None, Some(c)) => {
                let mut body = c.to_person(&ctx.link(pair), &ctx.mapping, None);
                body.memberships = vec![Membership::of_group(&ctx.group)];
                creates.push((v, body));
            }
            (Action::PushToGoogle, Some(rn), Some(c)) => {
                let mut body = c.to_person(&ctx.link(pair), &ctx.mapping, None);
                body.etag.clone_from(&pair.google_etag);
                updates.insert(rn.clone(), (v, body));
            }
            (Action::DeleteInGoogle, Some(_), _) => deletions.push(v),
            (Action::Unlink, Some(_), _) if pair.crm_deleted_at.is_some() => removals.push(v),
            (Action::Unlink | Action::Tombstone, _, _) => {
                settle(ctx, v, |p| {
                    p.deleted_at.get_or_insert(OffsetDateTime::UNIX_EPOCH);
                })
                .await?
            }
            (Action::Baseline, _, _) => {
                settle(ctx, v, |p| {
                    p.crm_hash = p.crm_content.as_ref().and_then(super::content_hash);
                })
                .await?
            }
            _ => settle(ctx, v, |_| {}).await?,
        }
    }
    let read = ctx.mapping.person_fields();
    if !creates.is_empty() {
        let bodies: Vec<Person> = creates.iter().map(|(_, b)| b.clone()).collect();
        let answers = ctx
            .app
            .google
            .batch_create_contacts(&ctx.token, &bodies, &read)
            .await;
        for ((v, _), answer) in creates.into_iter().zip(answers) {
            finish(ctx, v, answer).await?;
        }
    }
    if !updates.is_empty() {
        let bodies: BTreeMap<String, Person> = updates
            .iter()
            .map(|(rn, (_, b))| (rn.clone(), b.clone()))
            .collect();
        let mut answers = ctx
            .app
            .google
            .batch_update_contacts(
                &ctx.token,
                &bodies,
                &ctx.mapping.update_person_fields(),
                &read,
            )
            .await;
        for (rn, (v, _)) in updates {
            let answer = answers
                .remove(&rn)
                .unwrap_or_else(|| Err(GoogleError::Transient("no answer for the contact".into())));
            match answer {
                Err(e) if e.is_etag_conflict() => decide_fresh(ctx, v).await?,
                answer => finish(ctx, v, answer).await?,
            }
        }
    }
    if !removals.is_empty() {
        let names: Vec<String> = removals
            .iter()
            .filter_map(|v| v.value.google_id.clone())
            .collect();
        let result = ctx
            .app
            .google
            .modify_contact_group_members(&ctx.token, &ctx.group, &[], &names)
            .await;
        for v in removals {
            let now = ctx.now();
            match &result {
                Ok(_) => {
                    ctx.report.removed_in_google += 1;
                    settle(ctx, v, |p| p.deleted_at = Some(now)).await?;
                }
                Err(e) if e.is_transient() => ctx.report.waiting += 1,
                Err(e) => {
                    let message = e.to_string();
                    settle(ctx, v, |p| p.last_error = Some(message.clone())).await?;
                }
            }
        }
    }
    if !deletions.is_empty() {
        let names: Vec<String> = deletions
            .iter()
            .filter_map(|v| v.value.google_id.clone())
            .collect();
        let result = ctx
            .app
            .google
            .batch_delete_contacts(&ctx.token, &names)
            .await;
        for v in deletions {
            let now = ctx.now();
            match &result {
                Ok(()) => {
                    ctx.report.removed_in_google += 1;
                    settle(ctx, v, |p| p.deleted_at = Some(now)).await?;
                }
                Err(e) if e.is_transient() => ctx.report.waiting += 1,
                Err(e) => {
                    let message = e.to_string();
                    settle(ctx, v, |p| p.last_error = Some(message.clone())).await?;
                }
            }
        }
    }
    ctx.report.waiting += more;
    ctx.report.capped = more > 0;
    Ok(())
}

/// Commits a waiting pair after `change`, out of the dirty index.
async fn settle(
    ctx: &Ctx<'_>,
    v: Versioned<PairStatus>,
    change: impl FnOnce(&mut PairStatus),
) -> Result<(), SyncError> {
    let loaded = v.value.clone();
    let mut pair = v.value;
    change(&mut pair);
    pair.last_synced_at = Some(ctx.now());
    Ok(records::commit(
        ctx.app,
        ctx.t(),
        ctx.u(),
        &loaded,
        pair,
        Some(v.version),
        false,
    )
    .await?)
}

/// Records the answer to a batched create or update.
async fn finish(
    ctx: &mut Ctx<'_>,
    v: Versioned<PairStatus>,
    answer: Result<Person, GoogleError>,
) -> Result<(), SyncError> {
    match answer {
        Ok(written) => {
            ctx.report.pushed_to_google += 1;
            let loaded = v.value.clone();
            let mut pair = v.value;
            record_written(ctx, &mut pair, &written);
            pair.last_synced_at = Some(ctx.now());
            Ok(records::commit(
                ctx.app,
                ctx.t(),
                ctx.u(),
                &loaded,
                pair,
                Some(v.version),
                false,
            )
            .await?)
        }
        // A passing failure: the pair stays waiting for the next pass.
        Err(e) if e.is_transient() => {
            ctx.report.waiting += 1;
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            settle(ctx, v, |p| p.last_error = Some(message.clone())).await
        }
    }
}

/// Reads the pair's person now and decides with what Google really holds.
async fn decide_fresh(ctx: &mut Ctx<'_>, v: Versioned<PairStatus>) -> Result<(), SyncError> {
    let rn = v.value.google_id.clone().unwrap_or_default();
    let person = ctx
        .app
        .google
        .get_person(&ctx.token, &rn, &ctx.mapping.person_fields())
        .await?;
    let mut pair = v.value;
    let member = person
        .as_ref()
        .is_some_and(|p| !p.is_deleted() && p.in_group(&ctx.group));
    let content = person
        .as_ref()
        .filter(|_| member)
        .map(|p| ctx.google_content(p));
    let hash = content.as_ref().map(NormalizedContact::hash);
    let alive = person.as_ref().filter(|p| !p.is_deleted());
    let google = match (&hash, alive) {
        (Some(h), Some(p)) => Side::Present {
            hash: h,
            modified: google_modified(p).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        // In Google but not in the group: the CRM's record puts that same contact (back)
        // into the group, never a second one.
        (None, Some(_)) => Side::Absent,
        _ if pair.google_hash.is_some() => Side::Deleted { at: ctx.now() },
        // A link to a contact that does not exist (or is not in the group yet): the CRM's
        // record is new to Google.
        _ => {
            pair.google_id = None;
            Side::Absent
        }
    };
    execute(ctx, pair, Some(v.version), google, person.as_ref(), content).await
}
