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
use crate::contacts::normal::{CrmLink, FieldMapping, Flow, NormalizedContact};
use crate::domain::{Account, Collection, ContactsProgress, PairStatus, Tenant, TenantId, UserId};
use crate::google::people::Person;
use crate::google::GoogleError;
use crate::sync::push;
use crate::sync::read::{self, Read};
use crate::sync::{Pass, Report, SyncError};
use secrecy::SecretString;
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod contact;
mod reading;
mod writing;
use contact::crm_content;
pub use writing::CREATE_SETTLE;
use writing::{create_memberships, REMOVE_REFUSED};

struct Ctx<'a> {
    pass: Pass<'a>,
    mapping: FieldMapping,
    group: String,
}

crate::sync::holds_pass!(Ctx);

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
    app.store
        .update_account(&tenant.id, &account.user, app.clock.now(), |a| {
            a.settings.contact_group.get_or_insert(chosen.clone());
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
) -> Result<Report, SyncError> {
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
    };
    let outcome = read_then_push(&mut ctx, deadline).await;
    let mut report = ctx.pass.end(outcome).await?;
    report.noted.contacts = Some(ContactsProgress {
        waiting: report.waiting,
        pushed_last_pass: report.pushed + report.removed,
        pulled_last_pass: report.fed,
        group: Some(ctx.group.clone()),
        last_pass_at: ctx.now(),
    });
    Ok(report)
}

/// Google's changes first, then (unless the read stopped at the deadline) the CRM's.
async fn read_then_push(ctx: &mut Ctx<'_>, deadline: Instant) -> Result<(), SyncError> {
    if read::read(ctx, deadline).await? != Read::Incomplete {
        push::push(ctx, None, deadline).await?;
    }
    Ok(())
}
