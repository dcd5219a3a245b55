//! Google → CRM: the group's members read through the sync core ([`crate::sync::read`]),
//! and which pair each person is news of (by the CRM link it carries, or its resource
//! name, current or previous).

use super::Ctx;
use crate::contacts::normal::CrmLink;
use crate::domain::{Collection, CrmId, Cursor, PairStatus};
use crate::google::people::{ListConnections, Person, MAX_BATCH_CONTACTS};
use crate::google::GoogleError;
use crate::store::repo::Versioned;
use crate::sync::execute;
use crate::sync::read::{Page, Source};
use crate::sync::{Held, SyncError};

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

    fn held(&self) -> Held {
        Held {
            what: "contacts".into(),
            noun: "contacts",
            scope: crate::sync::feed::HeldScope::Contacts {
                contact_group: self.group.clone(),
            },
        }
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
