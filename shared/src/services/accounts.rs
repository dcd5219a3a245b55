//! A CRM user's Google connection: status and settings (validated against what Google really
//! has), the live calendar and contact-group lists, and disconnect (Gmail tokens are
//! [`super::gmail`]'s).

use super::tokens::{access_token, google_error, with_access_token};
use crate::app::App;
use crate::clock::rfc3339;
use crate::contacts::normal::FieldMappingPatch;
use crate::domain::ContactsProgress;
use crate::domain::{
    Account, AccountEvent, AccountStatus, Direction, Product, Products, TenantId, UserId,
};
use crate::google::api::CalendarEntry;
use crate::google::people::ContactGroup;
use crate::http::ApiError;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const MAX_MONITORED_CALENDARS: usize = 50;

/// Read-modify-write of an account (see [`Store::update_account`]), in the API's errors.
///
/// [`Store::update_account`]: crate::store::repo::Store::update_account
pub async fn update(
    app: &App,
    t: &TenantId,
    u: &UserId,
    change: impl FnMut(&mut Account) -> Result<(), ApiError>,
) -> Result<Account, ApiError> {
    Ok(app
        .store
        .try_update_account(t, u, app.clock.now(), change)
        .await?)
}

/// What the CRM sees of an account (never a token).
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub user: String,
    pub status: AccountStatus,
    pub google_email: Option<String>,
    pub products: Products,
    pub reauth_reason: Option<String>,
    pub settings: SettingsView,
    /// Where the contacts sync stands (after its last pass).
    pub contacts: Option<ContactsProgress>,
    /// Read calendars Google cannot watch (`pushNotSupportedForRequestedResource`: holiday
    /// and other subscribed calendars): their changes arrive by polling, not within seconds.
    pub calendars_without_push: Vec<String>,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    pub connected_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct SettingsView {
    pub main_calendar: Option<String>,
    pub monitored_calendars: Vec<String>,
    pub direction: Option<Direction>,
    pub sync_since: Option<String>,
    pub contact_group: Option<String>,
    /// The user's overrides of the tenant's contact field mapping.
    pub contact_fields: Option<FieldMappingPatch>,
}

pub fn view(a: &Account) -> AccountView {
    AccountView {
        user: a.user.to_string(),
        status: a.status,
        google_email: a.google_email.clone(),
        products: a.products.clone(),
        reauth_reason: a.reauth_reason.clone(),
        settings: SettingsView {
            main_calendar: a.settings.main_calendar.clone(),
            monitored_calendars: a.settings.monitored_calendars.clone(),
            direction: a.settings.direction,
            sync_since: a.settings.sync_since.map(rfc3339),
            contact_group: a.settings.contact_group.clone(),
            contact_fields: a.settings.contact_fields,
        },
        contacts: a.contacts_progress.clone(),
        calendars_without_push: Vec::new(),
        last_sync_at: a.last_sync_at.map(rfc3339),
        last_error: a.last_error.clone(),
        connected_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// [`view`] with what only the store knows: the read calendars Google cannot watch.
pub async fn live_view(app: &App, a: &Account) -> Result<AccountView, ApiError> {
    let mut v = view(a);
    if a.products.contains(Product::Calendar) {
        v.calendars_without_push = crate::calendar::channels::without_push(
            app,
            &a.tenant,
            &a.user,
            &super::schedule::read_calendars(a),
        )
        .await?;
    }
    Ok(v)
}

pub async fn get(app: &App, t: &TenantId, u: &UserId) -> Result<Account, ApiError> {
    Ok(app
        .store
        .get_account(t, u)
        .await?
        .ok_or_else(|| ApiError::not_found("no Google account is connected for this user"))?
        .value)
}

fn require_product(a: &Account, p: Product, what: &str) -> Result<(), ApiError> {
    if a.products.contains(p) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "product_not_connected",
            format!("{what} needs the {p:?} product; reconnect the account with it"),
        ))
    }
}

/// The user's calendars, live from Google.
pub async fn calendars(
    app: &App,
    t: &TenantId,
    u: &UserId,
) -> Result<Vec<CalendarEntry>, ApiError> {
    require_product(
        &get(app, t, u).await?,
        Product::Calendar,
        "listing calendars",
    )?;
    with_access_token(app, t, u, |token| async move {
        app.google.calendar_list(&token).await
    })
    .await?
    .map_err(google_error)
}

/// A contact group as the CRM sees it (`GET /v1/users/{user}/google/contact-groups`): the
/// fields of Google's resource the CRM chooses by, in Google's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactGroupInfo {
    pub resource_name: String,
    pub name: Option<String>,
    pub formatted_name: Option<String>,
    pub group_type: Option<String>,
    pub member_count: Option<i64>,
}

impl From<ContactGroup> for ContactGroupInfo {
    fn from(g: ContactGroup) -> Self {
        Self {
            resource_name: g.resource_name,
            name: g.name,
            formatted_name: g.formatted_name,
            group_type: g.group_type,
            member_count: g.member_count,
        }
    }
}

/// The user's contact groups, live from Google.
pub async fn contact_groups(
    app: &App,
    t: &TenantId,
    u: &UserId,
) -> Result<Vec<ContactGroupInfo>, ApiError> {
    require_product(
        &get(app, t, u).await?,
        Product::Contacts,
        "listing contact groups",
    )?;
    let groups = with_access_token(app, t, u, |token| async move {
        app.google.contact_groups(&token).await
    })
    .await?
    .map_err(google_error)?;
    Ok(groups.into_iter().map(ContactGroupInfo::from).collect())
}

/// Accepts `2026-01-31` or an RFC 3339 date-time.
fn parse_since(v: &str) -> Result<OffsetDateTime, ApiError> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Ok(t);
    }
    crate::calendar::model::parse_date(v)
        .map(|d| d.midnight().assume_utc())
        .ok_or_else(|| {
            ApiError::invalid("sync_since must be a date (2026-01-31) or an RFC 3339 date-time")
        })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub main_calendar: Option<String>,
    pub monitored_calendars: Option<Vec<String>>,
    pub direction: Option<Direction>,
    pub sync_since: Option<String>,
    pub contact_group: Option<String>,
    /// Overrides of the tenant's contact field mapping (the fields given replace it).
    pub contact_fields: Option<FieldMappingPatch>,
    /// Pause or resume this account's sync.
    pub paused: Option<bool>,
}

/// Changes a connection's settings; calendars and groups must exist in the user's Google
/// account (checked live), and nothing changes if any part is invalid.
pub async fn patch(
    app: &App,
    t: &TenantId,
    u: &UserId,
    p: AccountPatch,
) -> Result<Account, ApiError> {
    let account = get(app, t, u).await?;
    if account.status == AccountStatus::Disconnected {
        return Err(ApiError::conflict(
            "not_connected",
            "the account is disconnected",
        ));
    }
    let checked = check_patch(app, t, u, &account, &p).await?;
    let now = app.clock.now();
    let mut changed = Changed::default();
    let updated = update(app, t, u, |a| {
        changed = apply_patch(a, &p, &checked, now)?;
        Ok(())
    })
    .await?;
    if changed.status.is_some() {
        super::feed::account_status(app, &updated, None).await?;
    }
    if changed.status == Some(AccountStatus::Active) {
        // What the CRM sent while the sync was paused goes now, not at the next safety poll.
        super::schedule::queue_pass(app, &updated, "resumed").await;
    }
    if checked.main.is_some() || checked.monitored.is_some() {
        stop_unread_channels(app, &account, &updated).await?;
    }
    if changed.rehoming {
        // The move starts now, not at the next safety poll.
        super::schedule::queue_pass(app, &updated, "main_calendar").await;
    }
    Ok(updated)
}

/// A patch's parts checked against the user's Google account, as they are stored.
struct Checked {
    main: Option<String>,
    monitored: Option<Vec<String>>,
    group: Option<String>,
    since: Option<OffsetDateTime>,
}

/// What a patch changed that needs more than the account write.
#[derive(Default)]
struct Changed {
    /// Paused or resumed: the new status.
    status: Option<AccountStatus>,
    /// The main calendar changed: the meetings still ahead move (see `calendar::rehome`).
    rehoming: bool,
}

async fn check_patch(
    app: &App,
    t: &TenantId,
    u: &UserId,
    account: &Account,
    p: &AccountPatch,
) -> Result<Checked, ApiError> {
    let (mut main, mut monitored) = (None, None);
    if p.main_calendar.is_some() || p.monitored_calendars.is_some() {
        require_product(account, Product::Calendar, "calendar settings")?;
        let list = calendars(app, t, u).await?;
        if let Some(id) = &p.main_calendar {
            main = Some(check_main_calendar(&list, id)?);
        }
        if let Some(ids) = &p.monitored_calendars {
            monitored = Some(check_monitored(&list, ids)?);
        }
    }
    let mut group = None;
    if let Some(g) = &p.contact_group {
        require_product(account, Product::Contacts, "the contact group")?;
        group = Some(check_group(app, t, u, g).await?);
    }
    if let Some(fields) = &p.contact_fields {
        let tenant = super::tenants::get(app, t).await?;
        tenant
            .settings
            .defaults
            .contact_fields
            .overlay(fields)
            .validate()?;
    }
    let since = p.sync_since.as_deref().map(parse_since).transpose()?;
    Ok(Checked {
        main,
        monitored,
        group,
        since,
    })
}

/// The user's calendar `id` (or their primary one), as a main calendar.
fn find_calendar<'l>(list: &'l [CalendarEntry], id: &str) -> Option<&'l CalendarEntry> {
    list.iter()
        .find(|c| c.id == id || (id == "primary" && c.primary == Some(true)))
}

/// A main calendar must be one the user can write to; the primary one is kept as `primary`,
/// the name the sync uses for it.
fn check_main_calendar(list: &[CalendarEntry], id: &str) -> Result<String, ApiError> {
    let entry = find_calendar(list, id).ok_or_else(|| {
        ApiError::invalid(format!("main_calendar: the user has no calendar {id:?}"))
    })?;
    if !entry.writable() {
        return Err(ApiError::invalid(format!(
            "main_calendar: the user cannot write to {id:?} (access role {})",
            entry.access_role
        )));
    }
    Ok(if entry.primary == Some(true) {
        "primary".to_owned()
    } else {
        entry.id.clone()
    })
}

/// Monitored calendars: at most [`MAX_MONITORED_CALENDARS`], each one the user sees in full.
fn check_monitored(list: &[CalendarEntry], ids: &[String]) -> Result<Vec<String>, ApiError> {
    if ids.len() > MAX_MONITORED_CALENDARS {
        return Err(ApiError::invalid(format!(
            "monitored_calendars holds at most {MAX_MONITORED_CALENDARS} calendars"
        )));
    }
    let mut resolved = Vec::new();
    for id in ids {
        let entry = find_calendar(list, id).ok_or_else(|| {
            ApiError::invalid(format!(
                "monitored_calendars: the user has no calendar {id:?}"
            ))
        })?;
        // Free/busy only: Google lists its events without titles or guests — busy blocks,
        // not meetings for the CRM.
        if entry.access_role == "freeBusyReader" {
            return Err(ApiError::invalid(format!(
                "monitored_calendars: the user sees only free/busy of {id:?} (access role freeBusyReader)"
            )));
        }
        if !resolved.contains(&entry.id) {
            resolved.push(entry.id.clone());
        }
    }
    Ok(resolved)
}

/// The contact group must be one of the user's that takes members.
async fn check_group(app: &App, t: &TenantId, u: &UserId, g: &str) -> Result<String, ApiError> {
    let groups = contact_groups(app, t, u).await?;
    let Some(found) = groups.iter().find(|x| x.resource_name == g) else {
        return Err(ApiError::invalid(format!(
            "contact_group: the user has no contact group {g:?} (use its resourceName, contactGroups/…)"
        )));
    };
    if !crate::google::people::accepts_members(g, found.group_type.as_deref()) {
        return Err(ApiError::invalid(format!(
            "contact_group: Google does not let contacts be added to {g:?} (a deprecated system group); choose one of the user's own groups, myContacts or starred"
        )));
    }
    Ok(g.to_owned())
}

/// Writes a checked patch on the account (inside its read–modify–write).
fn apply_patch(
    a: &mut Account,
    p: &AccountPatch,
    checked: &Checked,
    now: OffsetDateTime,
) -> Result<Changed, ApiError> {
    let mut changed = Changed::default();
    if let Some(m) = &checked.main {
        // The meetings still ahead move with the main calendar (see `calendar::rehome`).
        let before = crate::calendar::rehome::main_calendar(a);
        crate::calendar::rehome::start(a, m, now);
        changed.rehoming = before != *m;
    }
    if let Some(m) = &checked.monitored {
        a.settings.monitored_calendars = m.clone();
    }
    if let Some(d) = p.direction {
        a.settings.direction = Some(d);
    }
    if let Some(s) = checked.since {
        a.settings.sync_since = Some(s);
    }
    if let Some(g) = &checked.group {
        a.settings.contact_group = Some(g.clone());
    }
    if let Some(f) = &p.contact_fields {
        a.settings.contact_fields = Some(*f);
    }
    if let Some(pause) = p.paused {
        changed.status = pause_or_resume(a, pause)?;
    }
    Ok(changed)
}

/// Pauses or resumes the account; the new status if it changed.
fn pause_or_resume(a: &mut Account, pause: bool) -> Result<Option<AccountStatus>, ApiError> {
    let (event, wanted) = if pause {
        (AccountEvent::Pause, AccountStatus::Paused)
    } else {
        (AccountEvent::Resume, AccountStatus::Active)
    };
    if a.status == wanted {
        return Ok(None);
    }
    a.status = a.status.on(event).map_err(|e| {
        ApiError::conflict(
            "invalid_transition",
            format!("cannot {}: {e}", if pause { "pause" } else { "resume" }),
        )
    })?;
    Ok(Some(a.status))
}

/// Stops the channels of calendars the account no longer reads (dropped from the monitored
/// calendars, or no longer the main calendar): Google would otherwise keep notifying us of
/// a calendar we ignore until the channel expires.
async fn stop_unread_channels(
    app: &App,
    before: &Account,
    after: &Account,
) -> Result<(), ApiError> {
    let now_read = super::schedule::read_calendars(after);
    let dropped: Vec<String> = super::schedule::read_calendars(before)
        .into_iter()
        .filter(|c| !now_read.contains(c))
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    let token = access_token(app, &after.tenant, &after.user).await.ok();
    let mut page: Option<String> = None;
    loop {
        let records = app
            .store
            .list_channels(&after.tenant, &after.user, 100, page.as_deref())
            .await?;
        for ch in records.items.iter().filter(|c| {
            c.state == crate::domain::ChannelState::Active && dropped.contains(&c.calendar_id)
        }) {
            crate::calendar::channels::stop(app, token.as_ref().map(|t| &t.token), ch).await;
            tracing::info!(tenant = %after.tenant, user = %after.user, calendar = %ch.calendar_id, "channel stopped: the calendar is no longer read");
        }
        match records.next {
            Some(next) => page = Some(next),
            None => return Ok(()),
        }
    }
}

/// The result of a disconnect.
#[derive(Debug, Serialize)]
pub struct Disconnected {
    #[serde(flatten)]
    pub account: AccountView,
    /// Whether Google confirmed the revocation (false if Google could not be reached; the
    /// tokens are deleted either way).
    pub revoked: bool,
    pub pairs_kept: bool,
}

/// Disconnects: stops the account's watch channels, revokes the grant at Google, deletes the
/// tokens, marks the account `disconnected`, and keeps or purges its pairs. Idempotent.
pub async fn disconnect(
    app: &App,
    t: &TenantId,
    u: &UserId,
    keep_pairs: bool,
) -> Result<Disconnected, ApiError> {
    let account = get(app, t, u).await?;
    let mut revoked = account.status == AccountStatus::Disconnected;
    if account.status != AccountStatus::Disconnected {
        // Channels first: stopping them needs a live token, which revocation kills.
        stop_channels(app, t, u).await?;
        if let Some(sealed) = &account.refresh_token_ciphertext {
            let cipher = crate::crypto::TokenCipher::load(app.secrets.as_ref())
                .await
                .map_err(|e| ApiError::internal(&e, true))?;
            match cipher.open(sealed, t, &account.id) {
                Ok(refresh) => {
                    let policy = crate::google::retry::RetryPolicy::current().with_max_attempts(3);
                    match crate::google::retry::with_retry(&policy, || app.google.revoke(&refresh))
                        .await
                    {
                        Ok(()) => revoked = true,
                        Err(e) => {
                            tracing::warn!(tenant = %t, user = %u, error = %e, "revoking the grant failed; tokens deleted anyway");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(tenant = %t, user = %u, error = %e, "stored token unreadable")
                }
            }
        }
    }
    let updated = update(app, t, u, |a| {
        a.status = a
            .status
            .on(AccountEvent::Disconnect)
            .map_err(|e| ApiError::conflict("invalid_transition", e.to_string()))?;
        a.refresh_token_ciphertext = None;
        a.access_token_ciphertext = None;
        a.access_token_expires_at = None;
        a.reauth_reason = None;
        Ok(())
    })
    .await?;
    if !keep_pairs {
        let purged = app.store.purge_sync_state(t, u).await?;
        tracing::info!(tenant = %t, user = %u, purged, "sync state purged");
    }
    if account.status != AccountStatus::Disconnected {
        tracing::info!(tenant = %t, user = %u, revoked, "account disconnected");
        super::feed::account_status(app, &updated, None).await?;
    }
    Ok(Disconnected {
        account: view(&updated),
        revoked,
        pairs_kept: keep_pairs,
    })
}

/// Stops every active watch channel of the user (best effort at Google; always in the store).
async fn stop_channels(app: &App, t: &TenantId, u: &UserId) -> Result<(), ApiError> {
    let token = access_token(app, t, u).await.ok();
    crate::calendar::channels::stop_all(app, t, u, token.as_ref().map(|t| &t.token)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_since_accepts_dates_and_times() {
        assert_eq!(
            parse_since("2026-01-31").unwrap().unix_timestamp(),
            1_769_817_600
        );
        assert!(parse_since("2026-01-31T10:00:00+02:00").is_ok());
        assert!(parse_since("31/01/2026").is_err());
    }
}
