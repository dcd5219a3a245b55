//! What is POSTed for a record: its event type, the body (signed exactly as sent).

use super::DeliveryError;
use crate::domain::{ChangeKind, ChangeRecord};
use serde::Serialize;
use time::OffsetDateTime;

/// The Standard Webhooks event type of a change kind: its snake_case name (as the feed
/// spells it) with the first `_` made a `.` — `event_created` → `event.created`,
/// `account_status_changed` → `account.status_changed`, `contact_untag` → `contact.untag`.
/// Derived rather than listed, so a new kind always has a type.
pub fn event_type(kind: ChangeKind) -> String {
    let snake = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match snake.split_once('_') {
        Some((noun, rest)) => format!("{noun}.{rest}"),
        None => snake,
    }
}

/// The body POSTed for a record.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub data: &'a ChangeRecord,
}

impl<'a> Payload<'a> {
    pub fn of(record: &'a ChangeRecord) -> Self {
        Self {
            event_type: event_type(record.kind),
            timestamp: record.created_at,
            data: record,
        }
    }
}

/// The exact bytes sent (and signed) for a record: minified JSON.
pub fn body(record: &ChangeRecord) -> Result<Vec<u8>, DeliveryError> {
    Ok(serde_json::to_vec(&Payload::of(record))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TenantId, UserId};

    #[test]
    fn payload_wraps_the_feed_record() {
        let record = ChangeRecord {
            id: "01J0000000000000000000000A".into(),
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("u1").unwrap(),
            kind: ChangeKind::AccountStatusChanged,
            crm_id: None,
            google_id: None,
            data: serde_json::json!({"status": "needs_reauth"}),
            created_at: time::macros::datetime!(2026-06-01 12:00 UTC),
        };
        let bytes = body(&record).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], "account.status_changed");
        assert_eq!(v["timestamp"], "2026-06-01T12:00:00Z");
        assert_eq!(v["data"], serde_json::to_value(&record).unwrap());
        assert_eq!(v["data"]["kind"], "account_status_changed");
        assert!(!String::from_utf8(bytes).unwrap().contains('\n'));
        assert_eq!(event_type(ChangeKind::EventCreated), "event.created");
        assert_eq!(event_type(ChangeKind::ContactUntag), "contact.untag");
        assert_eq!(
            event_type(ChangeKind::ConflictResolved),
            "conflict.resolved"
        );
    }
}
