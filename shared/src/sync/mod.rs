//! The sync core both collections share (calendar events, contacts). A pass is one machine:
//! read Google's changes ([`read`]: the cursor, page by page, the mass-deletion [`guard`],
//! the reconcile after a full read), decide every pair with the pure [`decide::decide`],
//! plan the CRM's waiting writes within the job's Google calls ([`plan`]), send them batch
//! by batch and commit each batch's answers before the next ([`push`]). A pair's status row
//! is committed only after Google applied its write; what was not sent, or met a failure of
//! the pass as a whole, stays waiting. Every pass counts into one [`Report`] and ends the
//! same way ([`Pass::end`]).
//!
//! What differs between collections is behind three small traits over one [`Part`] of a
//! pass: a [`read::Source`] (how a page is listed, which items end a pair, how one item is
//! found), an [`execute::Records`] (Google's calls and bodies for one record, the feed
//! records' kinds and data) and a [`push::Sink`] (which write a decided waiting pair needs,
//! which batch it goes in, how a batch is sent and its answers read). The core decides,
//! carries decisions out, reads records again when Google says they changed
//! ([`execute::decide_fresh`]), starts every waiting pair's plan ([`push::decide_waiting`])
//! and settles every answer ([`execute::finish`]). The calendar's part
//! ([`crate::calendar::sync`]) adds series, exceptions, privacy and channels; the contacts'
//! ([`crate::contacts::sync`]) the group, memberships and the field mapping.

pub mod decide;
pub mod execute;
pub mod feed;
pub mod guard;
pub mod pair;
pub mod plan;
pub mod push;
pub mod read;

use crate::app::App;
use crate::domain::{Account, ChangeRecord, Collection, PairStatus, Tenant, TenantId, UserId};
use crate::google::GoogleError;
use crate::services::tokens::{access_token, TokenError};
use crate::store::repo::{AccountUpdateError, Versioned};
use crate::store::StoreError;
use crate::sync::decide::{decide, Baseline, Decision, Policy, Side};
use secrecy::SecretString;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account's tenant is gone (deleted while a job was queued).
    #[error("the tenant no longer exists")]
    TenantGone,
    /// A record's Google body could not be built from its stored content.
    #[error("the Google body could not be built: {0}")]
    Body(String),
    /// Every id an insert may use is taken in Google by an event it cannot reuse.
    #[error("could not find a free event id")]
    NoFreeId,
}

impl From<AccountUpdateError<Infallible>> for SyncError {
    fn from(e: AccountUpdateError<Infallible>) -> Self {
        match e {
            AccountUpdateError::Missing => SyncError::Token(TokenError::NotConnected),
            AccountUpdateError::Store(e) => SyncError::Store(e),
            AccountUpdateError::Refused(e) => match e {},
        }
    }
}

impl SyncError {
    /// Worth trying again later (the worker leaves the message for SQS to redeliver).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Google(e) => e.is_transient(),
            SyncError::Token(TokenError::Google(e)) => e.is_transient(),
            SyncError::Token(TokenError::Api(e)) => e.status.is_server_error(),
            SyncError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// About the pass as a whole, not one record (see [`GoogleError::is_pass_level`]).
    pub fn is_pass_level(&self) -> bool {
        match self {
            SyncError::Google(e) => e.is_pass_level(),
            SyncError::Token(_) => true,
            SyncError::Store(e) => e.is_retryable(),
            SyncError::TenantGone => true,
            SyncError::Body(_) | SyncError::NoFreeId => false,
        }
    }

    /// What may be shown to the CRM (the account's `last_error`): no backend detail.
    pub fn public_message(&self) -> String {
        match self {
            SyncError::Token(e) => e.to_string(),
            SyncError::Google(e) => e.to_string(),
            SyncError::Store(_) => "the store was unavailable; the sync will be retried".into(),
            SyncError::TenantGone | SyncError::NoFreeId => self.to_string(),
            SyncError::Body(_) => "the record could not be sent to Google".into(),
        }
    }
}

/// What a job's passes leave on the account, written with the run's next due time in one
/// write (see `services::schedule::record_run`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Noted {
    /// When a calendar pass ended (`last_sync_at`).
    pub synced_at: Option<OffsetDateTime>,
    /// What a calendar pass shows in `last_error` (`Some(None)` clears it); `None` leaves it
    /// as it is.
    pub last_error: Option<Option<String>>,
    /// A pass of the job held deletions back: `last_error` shows that until the CRM
    /// confirms, and is left as it is.
    pub held: bool,
    /// Where the contacts sync stands after a contacts pass.
    pub contacts: Option<crate::domain::ContactsProgress>,
}

impl Noted {
    /// Adds what another pass of the job noted.
    pub fn add(&mut self, other: Noted) {
        self.synced_at = other.synced_at.or(self.synced_at);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.held |= other.held;
        self.contacts = other.contacts.or(self.contacts.take());
    }

    /// Writes it on the account (inside the run's one account write).
    pub fn apply(&self, a: &mut Account) {
        if let Some(at) = self.synced_at {
            a.last_sync_at = Some(at);
        }
        if let Some(error) = self.last_error.as_ref().filter(|_| !self.held) {
            a.last_error.clone_from(error);
        }
        if let Some(progress) = &self.contacts {
            a.contacts_progress = Some(progress.clone());
        }
    }
}

/// What a pass did, whatever it synced (logged by the worker, which queues a continuation
/// when [`Report::continuation_due`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Google's records read (listed or looked up).
    pub read: usize,
    /// Writes Google applied (creates and updates).
    pub pushed: usize,
    /// Records deleted in Google (or, for contacts, taken out of the synced group).
    pub removed: usize,
    /// Records appended to the CRM's feed.
    pub fed: usize,
    pub conflicts: usize,
    /// CRM changes the pass left waiting (they did not fit in the job's Google calls, or met
    /// a passing failure).
    pub waiting: usize,
    /// More CRM changes wait than the pass sent (or looked at): a continuation is due.
    pub more_waiting: bool,
    /// Scopes (`calendar:<id>`, `contacts`) whose read stopped at the deadline: a
    /// continuation resumes them from their cursor.
    pub incomplete: Vec<String>,
    /// Scopes whose deletions the mass-deletion guard held back.
    pub blocked: Vec<String>,
    /// Deletions made in the CRM that the guard held back (until confirmed).
    pub crm_deletions_held: usize,
    /// Scopes skipped for a failure of their own (shown on the account's `last_error`).
    pub errors: Vec<String>,
    /// What the pass leaves on the account (written by the worker with the next due time).
    #[serde(skip)]
    pub noted: Noted,
}

impl Report {
    /// Whether a continuation job is due (a read stopped, or writes still wait).
    pub fn continuation_due(&self) -> bool {
        !self.incomplete.is_empty() || self.more_waiting
    }

    /// Whether deletions wait for the CRM's confirmation.
    pub fn held(&self) -> bool {
        !self.blocked.is_empty() || self.crm_deletions_held > 0
    }
}

/// A collection's part of a pass: what the core's steps reach the pass through.
pub(crate) trait Part: Send {
    fn pass(&self) -> &Pass<'_>;
    fn report(&mut self) -> &mut Report;
}

/// Makes a collection's pass context (a struct holding its [`Pass`] in a `pass` field) a
/// [`Part`], with the pass's own methods on it (`Deref` to the pass).
macro_rules! holds_pass {
    ($ctx:ident) => {
        impl<'a> std::ops::Deref for $ctx<'a> {
            type Target = $crate::sync::Pass<'a>;
            fn deref(&self) -> &Self::Target {
                &self.pass
            }
        }

        impl std::ops::DerefMut for $ctx<'_> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.pass
            }
        }

        impl $crate::sync::Part for $ctx<'_> {
            fn pass(&self) -> &$crate::sync::Pass<'_> {
                &self.pass
            }
            fn report(&mut self) -> &mut $crate::sync::Report {
                &mut self.pass.report
            }
        }
    };
}
pub(crate) use holds_pass;

/// What every pass holds, whatever it syncs: the account, its token and policy, the full
/// read under way, and the feed records written.
pub struct Pass<'a> {
    pub app: &'a App,
    pub tenant: Tenant,
    pub account: Account,
    pub token: SecretString,
    pub policy: Policy,
    pub collection: Collection,
    pub confirm_mass_deletion: bool,
    /// What the pass did so far.
    pub report: Report,
    /// While a full read is applied: its id (the pairs it sees are marked with it, so that a
    /// read resumed across runs knows what it saw before).
    full_read: Mutex<Option<String>>,
    /// Records this pass appended to the CRM's feed.
    fed: AtomicUsize,
    /// While a page is applied: its feed records and the commits of the pairs they tell of,
    /// held for [`Pass::flush`].
    outbox: Mutex<Option<Outbox>>,
}

/// A page's feed records, appended together (one counter add for the page), and the commits
/// of the pairs they tell of, which follow the append: no pair is committed before the CRM
/// can learn of it, no record is appended without its pair's commit, and the cursor moves
/// past the page only after both.
#[derive(Default)]
struct Outbox {
    /// Each with the CRM id of its pair.
    records: Vec<(String, ChangeRecord)>,
    /// The pairs with records held (by CRM id).
    told: std::collections::HashSet<String>,
    commits: Vec<(PairStatus, PairStatus, Option<u64>, bool)>,
}

impl<'a> Pass<'a> {
    /// The account's pass: a valid access token, the tenant's settings, the policy.
    pub async fn open(
        app: &'a App,
        t: &TenantId,
        u: &UserId,
        collection: Collection,
        confirm_mass_deletion: bool,
    ) -> Result<Pass<'a>, SyncError> {
        let token = access_token(app, t, u).await?;
        let tenant = app
            .store
            .get_tenant(t)
            .await?
            .ok_or(SyncError::TenantGone)?
            .value;
        let account = token.account.clone();
        let defaults = &tenant.settings.defaults;
        let policy = Policy {
            direction: account.settings.direction.unwrap_or(defaults.direction),
            conflicts: defaults.conflict_policy,
            deletions: defaults.deletion_policy,
        };
        Ok(Pass {
            app,
            tenant,
            account,
            token: token.token,
            policy,
            collection,
            confirm_mass_deletion,
            report: Report::default(),
            full_read: Mutex::new(None),
            fed: AtomicUsize::new(0),
            outbox: Mutex::new(None),
        })
    }

    /// The full read under way, if any (see [`Pass::set_full_read`]).
    pub fn full_read(&self) -> Option<String> {
        lock(&self.full_read).clone()
    }

    pub fn set_full_read(&self, read: Option<String>) {
        *lock(&self.full_read) = read;
    }

    /// Records this pass appended to the CRM's feed.
    pub fn fed(&self) -> usize {
        self.fed.load(Ordering::Relaxed)
    }

    /// Ends a pass that came to `outcome`: its report, with what every pass notes on the
    /// account. A token Google refused (401) is dropped, so the next job refreshes it (and
    /// learns whether the grant is gone); what waits keeps waiting until then.
    pub async fn end(&mut self, outcome: Result<(), SyncError>) -> Result<Report, SyncError> {
        if let Err(SyncError::Google(e)) = &outcome {
            if e.is_unauthorized() {
                crate::services::tokens::forget_access_token(
                    self.app,
                    self.t(),
                    self.u(),
                    &self.token,
                )
                .await
                .map_err(TokenError::Api)?;
            }
        }
        outcome?;
        let mut report = std::mem::take(&mut self.report);
        report.fed = self.fed();
        report.noted.held = report.held();
        Ok(report)
    }

    pub fn t(&self) -> &TenantId {
        &self.tenant.id
    }

    pub fn u(&self) -> &UserId {
        &self.account.user
    }

    pub fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }

    /// Tells the CRM about a pair (its CRM id unless Google-born, its Google id).
    pub async fn feed(&self, change: feed::Change, pair: &PairStatus) -> Result<(), SyncError> {
        let (kind, data) = (change.kind(), change.data());
        let mut record =
            ChangeRecord::new(self.t().clone(), self.u().clone(), kind, data, self.now());
        record.crm_id = (!pair.crm_id.is_google_born()).then(|| pair.crm_id.to_string());
        record.google_id = pair.google_id.clone();
        self.fed.fetch_add(1, Ordering::Relaxed);
        if let Some(outbox) = lock(&self.outbox).as_mut() {
            outbox.told.insert(pair.crm_id.to_string());
            outbox.records.push((pair.crm_id.to_string(), record));
            return Ok(());
        }
        self.app.store.append_change(&mut record).await?;
        Ok(())
    }

    /// Holds the feed records (and the commits of their pairs) until [`Self::flush`]: the
    /// read does so while it applies a page.
    pub fn hold(&self) {
        lock(&self.outbox).get_or_insert_with(Outbox::default);
    }

    /// Appends the held records in one go, then commits their pairs, in order.
    pub async fn flush(&self) -> Result<(), SyncError> {
        let Some(outbox) = lock(&self.outbox).take() else {
            return Ok(());
        };
        // Only records whose pair's commit follows (a decision cut short between its record
        // and its commit tells nothing; the next pass decides it again).
        let committed: std::collections::HashSet<&str> =
            outbox.commits.iter().map(|c| c.0.crm_id.as_str()).collect();
        let mut records: Vec<ChangeRecord> = outbox
            .records
            .into_iter()
            .filter(|(id, _)| committed.contains(id.as_str()))
            .map(|(_, r)| r)
            .collect();
        self.app.store.append_changes(&mut records).await?;
        for (loaded, pair, version, dirty) in outbox.commits {
            pair::commit(
                &self.app.store,
                self.t(),
                self.u(),
                &loaded,
                pair,
                version,
                dirty,
            )
            .await?;
        }
        Ok(())
    }

    /// Saves a pair after its decision was carried out (see [`pair::commit`]); while a
    /// page's records are held, a pair they tell of is committed after them.
    pub async fn commit(
        &self,
        loaded: &PairStatus,
        pair: PairStatus,
        version: Option<u64>,
        dirty: bool,
    ) -> Result<(), SyncError> {
        let pair = match lock(&self.outbox).as_mut() {
            Some(outbox) if outbox.told.contains(loaded.crm_id.as_str()) => {
                outbox.commits.push((loaded.clone(), pair, version, dirty));
                return Ok(());
            }
            _ => pair,
        };
        Ok(pair::commit(
            &self.app.store,
            self.t(),
            self.u(),
            loaded,
            pair,
            version,
            dirty,
        )
        .await?)
    }

    /// Commits a waiting pair after `change`, out of the waiting set.
    pub async fn settle(
        &self,
        v: Versioned<PairStatus>,
        change: impl FnOnce(&mut PairStatus),
    ) -> Result<(), SyncError> {
        let loaded = v.value.clone();
        let mut pair = v.value;
        change(&mut pair);
        pair.last_synced_at = Some(self.now());
        self.commit(&loaded, pair, Some(v.version), false).await
    }

    /// Whether the full read under way has not seen the pair yet (`false` outside one).
    pub fn unseen(&self, pair: &PairStatus) -> bool {
        unseen_by_full_read(lock(&self.full_read).as_deref(), pair)
    }

    /// Every pair of the pass's collection (read page by page).
    pub async fn all_pairs(&self) -> Result<Vec<PairStatus>, SyncError> {
        let mut page: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let records = self
                .app
                .store
                .list_pairs(self.t(), self.u(), self.collection, 1000, page.as_deref())
                .await?;
            out.extend(records.items);
            match records.next {
                Some(next) => page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Reports deletions the guard held back: the account's `last_error` (`what`: "calendar
    /// primary", "contacts"), and with `tell` a `mass_deletion_blocked` record. Told once: the
    /// caller keeps that it told with the scope's cursor (not in `last_error`, which other
    /// passes rewrite), and passes meeting the same block again only show it on the account.
    pub async fn block(
        &self,
        held: Held,
        deletions: usize,
        pairs: usize,
        tell: bool,
    ) -> Result<(), SyncError> {
        let Held {
            what: scope,
            noun,
            scope: at,
        } = held;
        tracing::warn!(tenant = %self.t(), user = %self.u(), scope, deletions, pairs, "mass deletion held back");
        let message = format!("{scope}: {deletions} deletions held back (of {pairs} {noun}); confirm to carry them out");
        if tell {
            let change = feed::Change::MassDeletionBlocked(feed::DeletionsHeld {
                scope: at,
                deletions,
                pairs,
                resume: feed::DeletionsHeld::RESUME,
            });
            let mut record = ChangeRecord::new(
                self.t().clone(),
                self.u().clone(),
                change.kind(),
                change.data(),
                self.now(),
            );
            self.app.store.append_change(&mut record).await?;
        }
        if self.account.last_error.as_deref() == Some(message.as_str()) {
            return Ok(());
        }
        self.app
            .store
            .update_account(self.t(), self.u(), self.now(), |a| {
                a.last_error = Some(message.clone());
            })
            .await?;
        Ok(())
    }
}

/// What a collection says of deletions the guard holds back (see [`Pass::block`]).
pub struct Held {
    /// The scope in words: "calendar primary", "contacts".
    pub what: String,
    /// What the scope holds: "events", "contacts".
    pub noun: &'static str,
    /// Where, for the `mass_deletion_blocked` record.
    pub scope: feed::HeldScope,
}

/// A pass's own state, locked only between awaits (never held across one).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decides one pair (pure, [`decide`]): its baseline (the hashes of the last sync), the CRM
/// side as stored (`crm_hash`: the hash of its stored content now) and Google's.
pub fn decide_pair(
    pair: &PairStatus,
    crm_hash: Option<&str>,
    google: Side<'_>,
    policy: Policy,
) -> Decision {
    let crm = match (pair.crm_deleted_at, crm_hash) {
        (Some(at), _) => Side::Deleted { at },
        (None, Some(hash)) => Side::Present {
            hash,
            modified: pair.crm_modified.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        },
        (None, None) => Side::Absent,
    };
    let base = Baseline {
        crm_hash: pair.crm_hash.as_deref(),
        google_hash: pair.google_hash.as_deref(),
    };
    decide(base, crm, google, policy)
}

/// Whether the full read `read` has not yet seen the pair; `false` outside a full read.
pub fn unseen_by_full_read(read: Option<&str>, pair: &PairStatus) -> bool {
    read.is_some_and(|r| pair.seen_in_read.as_deref() != Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContactsProgress;
    use serde_json::json;

    fn account() -> Account {
        serde_json::from_value(json!({
            "id": "01J00000000000000000000000", "tenant": "acme", "user": "u1",
            "status": "active", "products": ["calendar", "contacts"],
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "last_error": "calendar team: gone",
        }))
        .unwrap()
    }

    #[test]
    fn what_the_passes_noted_goes_on_the_account_in_one_write() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let progress = ContactsProgress {
            waiting: 3,
            pushed_last_pass: 1,
            pulled_last_pass: 2,
            group: Some("contactGroups/g".into()),
            last_pass_at: at,
        };
        let mut noted = Noted {
            synced_at: Some(at),
            last_error: Some(None),
            held: false,
            contacts: None,
        };
        noted.add(Noted {
            contacts: Some(progress.clone()),
            ..Noted::default()
        });
        let mut a = account();
        noted.apply(&mut a);
        assert_eq!(a.last_sync_at, Some(at));
        assert_eq!(a.last_error, None, "the calendar pass cleared its errors");
        assert_eq!(a.contacts_progress, Some(progress));
        // A later pass of the job held deletions back: its report stays on the account.
        noted.add(Noted {
            held: true,
            ..Noted::default()
        });
        let mut a = account();
        noted.apply(&mut a);
        assert_eq!(a.last_error.as_deref(), Some("calendar team: gone"));
        let mut a = account();
        Noted::default().apply(&mut a);
        assert_eq!(a.last_sync_at, None, "nothing noted, nothing written");
    }
}
