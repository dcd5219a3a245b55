//! A tenant's policies: products allowed, defaults for new connections, allowed CRM return
//! URLs, the CRM webhook (with a signing secret generated and shown once), pause/resume.

use super::validate::web_url;
use crate::app::App;
use crate::contacts::normal::FieldMappingPatch;
use crate::domain::settings::POLL_INTERVAL_MINUTES;
use crate::domain::{
    ConflictPolicy, ConnectionDefaults, DeletionPolicy, Direction, GoogleQuota, GuestNotifications,
    PrivateEventPolicy, Products, TenantId, TenantSettings,
};
use crate::http::ApiError;
use crate::secrets::names;
use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Google Calendar's event colour ids (`colors.get`, `event`): "1" to "11".
const EVENT_COLOR_IDS: std::ops::RangeInclusive<u8> = 1..=11;
const MAX_RETURN_URLS: usize = 20;

#[derive(Debug, Serialize)]
pub struct SettingsView {
    pub products_allowed: Products,
    pub defaults: ConnectionDefaults,
    pub allowed_return_urls: Vec<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret_set: bool,
    pub sync_paused: bool,
    pub google_quota: GoogleQuota,
    /// Only in the answer that created or rotated it: the CRM stores it to verify webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_signing_secret: Option<String>,
}

fn view(s: &TenantSettings, new_secret: Option<String>) -> SettingsView {
    SettingsView {
        products_allowed: s.products_allowed.clone(),
        defaults: s.defaults.clone(),
        allowed_return_urls: s.allowed_return_urls.clone(),
        webhook_url: s.webhook_url.clone(),
        webhook_secret_set: s.webhook_secret_ref.is_some(),
        sync_paused: s.sync_paused,
        google_quota: s.google_quota,
        webhook_signing_secret: new_secret,
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsPatch {
    pub direction: Option<Direction>,
    pub conflict_policy: Option<ConflictPolicy>,
    pub deletion_policy: Option<DeletionPolicy>,
    pub private_events: Option<PrivateEventPolicy>,
    pub sync_since_days: Option<u32>,
    /// Replaces the whole map.
    pub event_colors: Option<BTreeMap<String, String>>,
    pub contact_group_name: Option<String>,
    pub guest_notifications: Option<GuestNotifications>,
    /// The fields given replace the tenant's mapping's.
    pub contact_fields: Option<FieldMappingPatch>,
    pub poll_interval_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub products_allowed: Option<Products>,
    pub defaults: Option<DefaultsPatch>,
    pub allowed_return_urls: Option<Vec<String>>,
    /// `null` removes the webhook (and its secret).
    #[serde(default, deserialize_with = "nullable")]
    pub webhook_url: Option<Option<String>>,
    /// A new signing secret for the existing webhook.
    pub rotate_webhook_secret: Option<bool>,
    pub sync_paused: Option<bool>,
    /// The fields given replace the tenant's.
    pub google_quota: Option<GoogleQuotaPatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleQuotaPatch {
    pub calls_per_second: Option<u32>,
    pub burst: Option<u32>,
    pub calls_per_job: Option<u32>,
}

fn apply_quota(q: &mut GoogleQuota, p: &GoogleQuotaPatch) -> Result<(), ApiError> {
    let fields = [
        (
            "calls_per_second",
            p.calls_per_second,
            GoogleQuota::CALLS_PER_SECOND,
            &mut q.calls_per_second,
        ),
        ("burst", p.burst, GoogleQuota::BURST, &mut q.burst),
        (
            "calls_per_job",
            p.calls_per_job,
            GoogleQuota::CALLS_PER_JOB,
            &mut q.calls_per_job,
        ),
    ];
    for (name, value, range, slot) in fields {
        if let Some(v) = value {
            if !range.contains(&v) {
                return Err(ApiError::invalid(format!(
                    "google_quota.{name} must be {} to {}",
                    range.start(),
                    range.end()
                )));
            }
            *slot = v;
        }
    }
    Ok(())
}

fn apply_defaults(d: &mut ConnectionDefaults, p: &DefaultsPatch) -> Result<(), ApiError> {
    if let Some(v) = p.direction {
        d.direction = v;
    }
    if let Some(v) = p.conflict_policy {
        d.conflict_policy = v;
    }
    if let Some(v) = p.deletion_policy {
        d.deletion_policy = v;
    }
    if let Some(v) = p.private_events {
        d.private_events = v;
    }
    if let Some(v) = p.guest_notifications {
        d.guest_notifications = v;
    }
    if let Some(patch) = &p.contact_fields {
        let mapping = d.contact_fields.overlay(patch);
        mapping.validate()?;
        d.contact_fields = mapping;
    }
    if let Some(minutes) = p.poll_interval_minutes {
        if !POLL_INTERVAL_MINUTES.contains(&minutes) {
            return Err(ApiError::invalid(format!(
                "defaults.poll_interval_minutes must be {} to {}",
                POLL_INTERVAL_MINUTES.start(),
                POLL_INTERVAL_MINUTES.end()
            )));
        }
        d.poll_interval_minutes = minutes;
    }
    if let Some(days) = p.sync_since_days {
        if !(1..=3650).contains(&days) {
            return Err(ApiError::invalid(
                "defaults.sync_since_days must be 1 to 3650",
            ));
        }
        d.sync_since_days = days;
    }
    if let Some(colors) = p.event_colors.clone() {
        for (kind, color) in &colors {
            if crate::calendar::model::EventKind::parse(kind).is_none() {
                return Err(ApiError::invalid(format!(
                    "defaults.event_colors: unknown event type {kind:?} (expected meeting, call or task)"
                )));
            }
            if !color
                .parse::<u8>()
                .is_ok_and(|c| EVENT_COLOR_IDS.contains(&c))
            {
                return Err(ApiError::invalid(format!(
                    "defaults.event_colors.{kind}: Google event colour ids are \"1\" to \"11\""
                )));
            }
        }
        d.event_colors = colors;
    }
    if let Some(name) = &p.contact_group_name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "defaults.contact_group_name must be 1 to 100 characters",
            ));
        }
        d.contact_group_name = name.to_owned();
    }
    Ok(())
}

fn new_signing_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

pub async fn get(app: &App, tenant: &TenantId) -> Result<SettingsView, ApiError> {
    Ok(view(
        &super::tenants::get(app, tenant).await?.settings,
        None,
    ))
}

/// Validates the whole patch first, then applies it; nothing changes if any part is invalid.
/// Validates the whole patch and applies it to the tenant's current settings, inside the
/// tenant's optimistic update (concurrent patches never overwrite each other); nothing
/// changes if any part is invalid. A new webhook signing secret is stored after the settings
/// that refer to it, and shown once.
pub async fn patch(
    app: &App,
    tenant: &TenantId,
    patch: SettingsPatch,
) -> Result<SettingsView, ApiError> {
    let candidate = new_signing_secret();
    let secret_name = names::webhook_signing(tenant);
    if let (Some(Some(url)), false) = (&patch.webhook_url, app.local) {
        // What the name resolves to now; deliveries check again at every connection.
        super::validate::resolves_publicly(
            "webhook_url",
            url,
            std::sync::Arc::new(super::validate::SystemResolver),
        )
        .await?;
    }
    let (saved, (new_secret, removed)) = super::tenants::update(app, tenant, |t| {
        apply(&mut t.settings, &patch, &candidate, &secret_name, app.local)
    })
    .await?;
    if let Some(secret) = &new_secret {
        app.secrets
            .put(&secret_name, SecretString::from(secret.clone()))
            .await?;
    }
    if removed {
        app.secrets.delete(&secret_name).await?;
    }
    tracing::info!(tenant = %tenant, "tenant settings changed");
    Ok(view(&saved.settings, new_secret))
}

/// Applies a patch to settings; returns the new signing secret (when one is due) and whether
/// the webhook's secret was removed.
fn apply(
    next: &mut TenantSettings,
    patch: &SettingsPatch,
    candidate_secret: &str,
    secret_name: &str,
    local: bool,
) -> Result<(Option<String>, bool), ApiError> {
    let had_secret = next.webhook_secret_ref.is_some();
    if let Some(p) = &patch.products_allowed {
        next.products_allowed = p.clone();
    }
    if let Some(d) = &patch.defaults {
        apply_defaults(&mut next.defaults, d)?;
    }
    if let Some(urls) = &patch.allowed_return_urls {
        if urls.len() > MAX_RETURN_URLS {
            return Err(ApiError::invalid(format!(
                "allowed_return_urls holds at most {MAX_RETURN_URLS} URLs"
            )));
        }
        let mut clean = Vec::with_capacity(urls.len());
        for u in urls {
            let parsed = web_url("allowed_return_urls", u)?;
            if parsed.query().is_some() {
                return Err(ApiError::invalid(
                    "allowed_return_urls: list URLs without a query string",
                ));
            }
            clean.push(parsed.to_string());
        }
        clean.dedup();
        next.allowed_return_urls = clean;
    }
    if let Some(sync_paused) = patch.sync_paused {
        next.sync_paused = sync_paused;
    }
    if let Some(q) = &patch.google_quota {
        apply_quota(&mut next.google_quota, q)?;
    }
    // The webhook: a new URL gets a secret if it has none; rotation replaces it.
    let rotate = patch.rotate_webhook_secret == Some(true);
    let mut new_secret = false;
    match &patch.webhook_url {
        Some(Some(url)) => {
            next.webhook_url =
                Some(super::validate::server_url("webhook_url", url, local)?.to_string());
            new_secret = !had_secret || rotate;
        }
        Some(None) if rotate => {
            return Err(ApiError::invalid(
                "rotate_webhook_secret needs a webhook_url",
            ));
        }
        Some(None) => next.webhook_url = None,
        None if rotate => {
            if next.webhook_url.is_none() {
                return Err(ApiError::invalid(
                    "rotate_webhook_secret needs a webhook_url",
                ));
            }
            new_secret = true;
        }
        None => {}
    }
    if new_secret {
        next.webhook_secret_ref = Some(secret_name.to_owned());
    }
    let removed = next.webhook_url.is_none() && had_secret;
    if removed {
        next.webhook_secret_ref = None;
    }
    Ok((new_secret.then(|| candidate_secret.to_owned()), removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_validated() {
        let mut d = ConnectionDefaults::default();
        let bad_color = DefaultsPatch {
            event_colors: Some(BTreeMap::from([("meeting".into(), "12".into())])),
            ..Default::default()
        };
        assert!(apply_defaults(&mut d, &bad_color).is_err());
        let bad_kind = DefaultsPatch {
            event_colors: Some(BTreeMap::from([("party".into(), "1".into())])),
            ..Default::default()
        };
        assert!(apply_defaults(&mut d, &bad_kind).is_err());
        let ok = DefaultsPatch {
            event_colors: Some(BTreeMap::from([("call".into(), "11".into())])),
            sync_since_days: Some(90),
            ..Default::default()
        };
        apply_defaults(&mut d, &ok).unwrap();
        assert_eq!(d.sync_since_days, 90);
        assert!(apply_defaults(
            &mut d,
            &DefaultsPatch {
                sync_since_days: Some(0),
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn patches_reject_unknown_fields_and_tell_null_from_absent() {
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"nope": 1}"#).is_err());
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"defaults": {"nope": 1}}"#).is_err());
        let p: SettingsPatch = serde_json::from_str(r#"{"webhook_url": null}"#).unwrap();
        assert_eq!(p.webhook_url, Some(None));
        let p: SettingsPatch = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(p.webhook_url, None);
        assert!(new_signing_secret().starts_with("whsec_"));
    }
}
