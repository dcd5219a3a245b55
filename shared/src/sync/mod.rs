//! The sync core both collections share (calendar events, contacts). A pass is one machine:
//! read Google's changes ([`read`]: the cursor, page by page, the mass-deletion [`guard`],
//! the reconcile after a full read), decide every pair with the pure
//! [`crate::calendar::decide::decide`], plan the CRM's waiting writes within the job's
//! Google calls ([`plan`]), send them batch by batch and commit each batch's answers before
//! the next ([`push`]). A pair's status row is committed only after Google applied its write;
//! what was not sent, or met a failure of the pass as a whole, stays waiting.
//!
//! What differs between collections is behind two small traits: a [`read::Source`] (how a
//! page is listed, which items end a pair, how one item is applied) and a [`push::Sink`] (how
//! a waiting pair is decided, which batch it goes in, how a batch is sent). The calendar
//! engine adds series, exceptions, privacy and channels; the contacts engine the group,
//! memberships and the field mapping.

pub mod execute;
pub mod guard;
pub mod plan;
pub mod push;
pub mod read;

use crate::app::App;
use crate::calendar::decide::{decide, Baseline, Decision, Policy, Reason, Side};
use crate::domain::{
    Account, ChangeKind, ChangeRecord, Collection, PairStatus, Tenant, TenantId, UserId,
};
use crate::google::GoogleError;
use crate::http::ApiError;
use crate::services::records;
use crate::services::tokens::{access_token, TokenError};
use crate::store::repo::Versioned;
use crate::store::StoreError;
use secrecy::SecretString;
use serde_json::{json, Value};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl SyncError {
    /// Worth trying again later (the worker leaves the message for SQS to redeliver).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Google(e) => e.is_transient(),
            SyncError::Token(TokenError::Google(e)) => e.is_transient(),
            SyncError::Token(TokenError::Api(e)) | SyncError::Api(e) => e.status.is_server_error(),
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
            SyncError::Api(e) => e.status.is_server_error(),
        }
    }

    /// What may be shown to the CRM (the account's `last_error`): no backend detail.
    pub fn public_message(&self) -> String {
        match self {
            SyncError::Token(e) => e.to_string(),
            SyncError::Google(e) => e.to_string(),
            SyncError::Store(_) => "the store was unavailable; the sync will be retried".into(),
            SyncError::Api(e) => e.message.clone(),
        }
    }
}

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
    /// While a full read is applied: its id (the pairs it sees are marked with it, so that a
    /// read resumed across runs knows what it saw before).
    pub full_read: Option<String>,
    /// Records this pass appended to the CRM's feed.
    pub fed: usize,
    /// While a page is applied: its feed records and the commits of the pairs they tell of,
    /// held for [`Pass::flush`].
    outbox: Option<Outbox>,
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
        let tenant = crate::services::tenants::get(app, t).await?;
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
            full_read: None,
            fed: 0,
            outbox: None,
        })
    }

    /// After a pass that ended in `outcome`: a token Google refused (401) is dropped, so the
    /// next job refreshes it (and learns whether the grant is gone); what waits keeps waiting
    /// until then.
    pub async fn forget_refused_token<T>(
        &self,
        outcome: &Result<T, SyncError>,
    ) -> Result<(), SyncError> {
        if let Err(SyncError::Google(e)) = outcome {
            if e.is_unauthorized() {
                crate::services::tokens::forget_access_token(
                    self.app,
                    self.t(),
                    self.u(),
                    &self.token,
                )
                .await?;
            }
        }
        Ok(())
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
    pub async fn feed(
        &mut self,
        kind: ChangeKind,
        pair: &PairStatus,
        data: Value,
    ) -> Result<(), SyncError> {
        let mut record =
            ChangeRecord::new(self.t().clone(), self.u().clone(), kind, data, self.now());
        record.crm_id = (!pair.crm_id.is_google_born()).then(|| pair.crm_id.to_string());
        record.google_id = pair.google_id.clone();
        self.fed += 1;
        if let Some(outbox) = &mut self.outbox {
            outbox.told.insert(pair.crm_id.to_string());
            outbox.records.push((pair.crm_id.to_string(), record));
            return Ok(());
        }
        self.app.store.append_change(&mut record).await?;
        Ok(())
    }

    /// Holds the feed records (and the commits of their pairs) until [`Self::flush`]: the
    /// read does so while it applies a page.
    pub fn hold(&mut self) {
        self.outbox.get_or_insert_with(Outbox::default);
    }

    /// Appends the held records in one go, then commits their pairs, in order.
    pub async fn flush(&mut self) -> Result<(), SyncError> {
        let Some(outbox) = self.outbox.take() else {
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
            records::commit(self.app, self.t(), self.u(), &loaded, pair, version, dirty).await?;
        }
        Ok(())
    }

    /// Saves a pair after its decision was carried out (see [`records::commit`]); while a
    /// page's records are held, a pair they tell of is committed after them.
    pub async fn commit(
        &mut self,
        loaded: &PairStatus,
        pair: PairStatus,
        version: Option<u64>,
        dirty: bool,
    ) -> Result<(), SyncError> {
        if let Some(outbox) = &mut self.outbox {
            if outbox.told.contains(loaded.crm_id.as_str()) {
                outbox.commits.push((loaded.clone(), pair, version, dirty));
                return Ok(());
            }
        }
        Ok(records::commit(self.app, self.t(), self.u(), loaded, pair, version, dirty).await?)
    }

    /// Commits a waiting pair after `change`, out of the waiting set.
    pub async fn settle(
        &mut self,
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
        unseen_by_full_read(self.full_read.as_deref(), pair)
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

    /// Reports deletions the guard held back: the account's `last_error` (`scope`: "calendar
    /// primary", "contacts"), and with `tell` a `mass_deletion_blocked` record. Told once: the
    /// caller keeps that it told with the scope's cursor (not in `last_error`, which other
    /// passes rewrite), and passes meeting the same block again only show it on the account.
    pub async fn block(
        &self,
        scope: &str,
        noun: &str,
        mut data: Value,
        deletions: usize,
        pairs: usize,
        tell: bool,
    ) -> Result<(), SyncError> {
        tracing::warn!(tenant = %self.t(), user = %self.u(), scope, deletions, pairs, "mass deletion held back");
        let message = format!("{scope}: {deletions} deletions held back (of {pairs} {noun}); confirm to carry them out");
        if let Some(map) = data.as_object_mut() {
            map.insert("deletions".into(), json!(deletions));
            map.insert("pairs".into(), json!(pairs));
            map.insert(
                "resume".into(),
                json!("POST /v1/users/{user}/sync with {\"confirm_mass_deletion\": true}"),
            );
        }
        if tell {
            let mut record = ChangeRecord::new(
                self.t().clone(),
                self.u().clone(),
                ChangeKind::MassDeletionBlocked,
                data,
                self.now(),
            );
            self.app.store.append_change(&mut record).await?;
        }
        if self.account.last_error.as_deref() == Some(message.as_str()) {
            return Ok(());
        }
        crate::services::accounts::update(self.app, self.t(), self.u(), |a| {
            a.last_error = Some(message.clone());
            Ok(())
        })
        .await?;
        Ok(())
    }
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

/// What a feed record says of a conflict the policy settled.
pub fn conflict_data(d: &Decision, winner: &str) -> Value {
    json!({
        "winner": winner,
        "policy": match d.reason {
            Reason::ConflictCrmWins => "crm_wins",
            Reason::ConflictGoogleWins => "google_wins",
            _ => "latest_wins",
        },
    })
}

/// Whether the full read `read` has not yet seen the pair; `false` outside a full read.
pub fn unseen_by_full_read(read: Option<&str>, pair: &PairStatus) -> bool {
    read.is_some_and(|r| pair.seen_in_read.as_deref() != Some(r))
}
