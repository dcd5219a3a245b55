//! A CRM contact or lead as the CRM sends it (`PUT /v1/users/{user}/contacts/{crm_id}`),
//! validated strictly at the edge: what Google would refuse or silently change is refused
//! here, with a message naming the field.

use crate::calendar::model::parse_instant;
use crate::domain::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// What the record is in the CRM; carried to Google in `clientData` (`crmKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    #[default]
    Contact,
    Lead,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Contact => "contact",
            ContactKind::Lead => "lead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contact" => Some(ContactKind::Contact),
            "lead" => Some(ContactKind::Lead),
            _ => None,
        }
    }
}

/// The parts of a person's name. `display` is informative: Google computes its own display
/// name from the parts; a name given only as `display` is carried as the given name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl CrmName {
    fn is_empty(&self) -> bool {
        [
            &self.prefix,
            &self.given,
            &self.middle,
            &self.family,
            &self.suffix,
            &self.display,
        ]
        .iter()
        .all(|p| p.as_deref().is_none_or(|s| s.trim().is_empty()))
    }
}

/// An e-mail address. `type`: `home`, `work`, `other` or a custom label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmEmail {
    pub address: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
}

/// A phone number. `type`: one of Google's (`mobile`, `work`, `home`, `main`, `workFax`, …)
/// or a custom label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmPhone {
    pub number: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
}

/// Company, job title, department.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmOrganization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

/// A postal address, in any script. `formatted` is used only for an address given without
/// structured parts (Google builds it from the parts otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2 (`JP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// `home`, `work`, `other` or a custom label.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
}

/// A CRM contact or lead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmContact {
    #[serde(default)]
    pub kind: ContactKind,
    #[serde(default)]
    pub name: CrmName,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<CrmEmail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<CrmPhone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<CrmOrganization>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<CrmAddress>,
    /// Notes / description (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The CRM's own version of the record (any string that changes with each edit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the CRM last modified it, RFC 3339 (decides "latest wins" conflicts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Links the record to an existing Google contact (`people/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_resource_name: Option<String>,
}

pub const MAX_NAME_PART: usize = 256;
pub const MAX_EMAILS: usize = 50;
pub const MAX_PHONES: usize = 50;
pub const MAX_ADDRESSES: usize = 20;
pub const MAX_ADDRESS_PART: usize = 512;
pub const MAX_NOTES: usize = 8192;
pub const MAX_LABEL: usize = 64;
pub const MAX_PHONE: usize = 64;

/// Length in characters and no control characters (line breaks and tabs only where
/// `multiline`).
fn check_text(field: &str, v: &str, max: usize, multiline: bool) -> Result<(), Invalid> {
    if v.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if v.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(())
}

fn check_opt(field: &str, v: &Option<String>, max: usize) -> Result<(), Invalid> {
    match v {
        Some(s) => check_text(field, s, max, false),
        None => Ok(()),
    }
}

fn check_label(field: &str, v: &Option<String>) -> Result<(), Invalid> {
    if let Some(l) = v {
        if l.trim().is_empty() {
            return Err(invalid(format!(
                "{field} must not be empty (leave it out for no type)"
            )));
        }
        check_text(field, l, MAX_LABEL, false)?;
    }
    Ok(())
}

/// A phone number: digits with the usual separators, an optional leading `+`, and an
/// extension (`x`, `ext`, `;ext=`, `,` pauses).
fn check_phone(field: &str, number: &str) -> Result<(), Invalid> {
    let n = number.trim();
    let digits = n.chars().filter(char::is_ascii_digit).count();
    let ok = digits >= 2
        && n.chars().count() <= MAX_PHONE
        && n.chars().all(|c| {
            c.is_ascii_digit()
                || c == ' '
                || "+-().,/;#*=".contains(c)
                || c.is_ascii_alphabetic() && "extEXT".contains(c)
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be a phone number (digits, spaces, + - ( ) . / and an extension), at most {MAX_PHONE} characters"
        )))
    }
}

/// At most one entry of a list marked primary.
fn one_primary(field: &str, flags: impl Iterator<Item = bool>) -> Result<(), Invalid> {
    if flags.filter(|p| *p).count() > 1 {
        return Err(invalid(format!("{field}: at most one can be primary")));
    }
    Ok(())
}

/// A Google contact's resource name: `people/` and an id of letters, digits, `_` and `-`.
pub fn valid_person_resource_name(rn: &str) -> bool {
    rn.strip_prefix("people/").is_some_and(|id| {
        !id.is_empty()
            && id.len() <= 256
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

impl CrmAddress {
    fn structured(&self) -> [&Option<String>; 7] {
        [
            &self.street,
            &self.extended,
            &self.city,
            &self.region,
            &self.postal_code,
            &self.country,
            &self.country_code,
        ]
    }

    fn has_parts(&self) -> bool {
        self.structured()
            .iter()
            .any(|p| p.as_deref().is_some_and(|s| !s.trim().is_empty()))
    }

    fn validate(&self, p: &str) -> Result<(), Invalid> {
        for (name, v) in [
            ("street", &self.street),
            ("extended", &self.extended),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country", &self.country),
        ] {
            match v {
                Some(s) if name == "street" => {
                    check_text(&format!("{p}{name}"), s, MAX_ADDRESS_PART, true)?
                }
                _ => check_opt(&format!("{p}{name}"), v, MAX_ADDRESS_PART)?,
            }
        }
        if let Some(cc) = &self.country_code {
            let cc = cc.trim();
            if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(invalid(format!(
                    "{p}country_code must be an ISO 3166-1 alpha-2 code (JP, DE, EG)"
                )));
            }
        }
        check_label(&format!("{p}type"), &self.kind)?;
        if let Some(f) = &self.formatted {
            check_text(&format!("{p}formatted"), f, MAX_ADDRESS_PART * 2, true)?;
        }
        let formatted = self
            .formatted
            .as_deref()
            .is_some_and(|f| !f.trim().is_empty());
        if !self.has_parts() && !formatted {
            return Err(invalid(format!("{p}: an address needs at least one part")));
        }
        Ok(())
    }
}

impl CrmContact {
    /// Strict validation: what Google would refuse, or would silently change, is refused here.
    pub fn validate(&self) -> Result<(), Invalid> {
        let n = &self.name;
        for (field, v) in [
            ("name.prefix", &n.prefix),
            ("name.given", &n.given),
            ("name.middle", &n.middle),
            ("name.family", &n.family),
            ("name.suffix", &n.suffix),
            ("name.display", &n.display),
        ] {
            check_opt(field, v, MAX_NAME_PART)?;
        }
        self.validate_emails()?;
        self.validate_phones()?;
        if let Some(o) = &self.organization {
            check_opt("organization.company", &o.company, MAX_NAME_PART)?;
            check_opt("organization.title", &o.title, MAX_NAME_PART)?;
            check_opt("organization.department", &o.department, MAX_NAME_PART)?;
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(invalid(format!("addresses: at most {MAX_ADDRESSES}")));
        }
        for (i, a) in self.addresses.iter().enumerate() {
            a.validate(&format!("addresses[{i}]."))?;
        }
        if let Some(notes) = &self.notes {
            check_text("notes", notes, MAX_NOTES, true)?;
        }
        if self.name.is_empty()
            && self.emails.is_empty()
            && self.phones.is_empty()
            && !self.has_organization()
        {
            return Err(invalid(
                "a contact needs a name, an e-mail, a phone or an organization",
            ));
        }
        self.validate_sync_fields()
    }

    fn validate_emails(&self) -> Result<(), Invalid> {
        if self.emails.len() > MAX_EMAILS {
            return Err(invalid(format!("emails: at most {MAX_EMAILS}")));
        }
        let mut seen = HashSet::new();
        for (i, e) in self.emails.iter().enumerate() {
            let p = format!("emails[{i}].");
            crate::domain::validate::email(&format!("{p}address"), e.address.trim())?;
            if !seen.insert(e.address.trim().to_lowercase()) {
                return Err(invalid(format!("emails: {} appears twice", e.address)));
            }
            check_label(&format!("{p}type"), &e.kind)?;
        }
        one_primary("emails", self.emails.iter().map(|e| e.primary))
    }

    fn validate_phones(&self) -> Result<(), Invalid> {
        if self.phones.len() > MAX_PHONES {
            return Err(invalid(format!("phones: at most {MAX_PHONES}")));
        }
        let mut seen = HashSet::new();
        for (i, ph) in self.phones.iter().enumerate() {
            let p = format!("phones[{i}].");
            check_phone(&format!("{p}number"), &ph.number)?;
            check_label(&format!("{p}type"), &ph.kind)?;
            let key = (
                ph.number.split_whitespace().collect::<Vec<_>>().join(" "),
                ph.kind.clone(),
            );
            if !seen.insert(key) {
                return Err(invalid(format!(
                    "phones: {} appears twice with the same type",
                    ph.number
                )));
            }
        }
        one_primary("phones", self.phones.iter().map(|p| p.primary))
    }

    /// Whether the organization says anything.
    fn has_organization(&self) -> bool {
        self.organization.as_ref().is_some_and(|o| {
            [&o.company, &o.title, &o.department]
                .iter()
                .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()))
        })
    }

    /// The fields about the sync rather than the contact: its time, version and Google link.
    fn validate_sync_fields(&self) -> Result<(), Invalid> {
        if let Some(u) = &self.updated_at {
            if parse_instant(u).is_none() {
                return Err(invalid("updated_at must be RFC 3339"));
            }
        }
        if let Some(v) = &self.version {
            check_text("version", v, 128, false)?;
        }
        if let Some(rn) = &self.google_resource_name {
            if !valid_person_resource_name(rn) {
                return Err(invalid(
                    "google_resource_name must be a Google contact's resource name (people/…)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lead() -> CrmContact {
        serde_json::from_value(json!({
            "kind": "lead",
            "name": {"given": "Yuki", "family": "山田", "prefix": "Dr."},
            "emails": [{"address": "yuki@example.jp", "type": "work", "primary": true},
                       {"address": "y@home.example", "type": "home"}],
            "phones": [{"number": "+81 3-1234-5678", "type": "mobile"},
                       {"number": "+81 3 1234 0000 ext. 12", "type": "Direct line"}],
            "organization": {"company": "株式会社例", "title": "部長"},
            "addresses": [{"street": "千代田区1-1", "city": "東京都", "postal_code": "100-0001",
                           "country": "日本", "country_code": "JP", "type": "work"}],
            "notes": "met at the fair\r\nfollow up",
            "version": "7", "updated_at": "2026-03-01T10:00:00+01:00",
            "google_resource_name": "people/c123"
        }))
        .unwrap()
    }

    #[test]
    fn valid_contacts_pass() {
        lead().validate().unwrap();
        let only_email: CrmContact =
            serde_json::from_value(json!({"emails": [{"address": "a@b.co"}]})).unwrap();
        only_email.validate().unwrap();
        assert_eq!(only_email.kind, ContactKind::Contact);
        let unstructured: CrmContact = serde_json::from_value(json!({
            "name": {"display": "القاهرة Office"},
            "addresses": [{"formatted": "١ شارع التحرير\nالقاهرة"}]
        }))
        .unwrap();
        unstructured.validate().unwrap();
    }

    fn refused(mutate: impl Fn(&mut CrmContact)) -> String {
        let mut c = lead();
        mutate(&mut c);
        c.validate().expect_err("accepted").to_string()
    }

    #[test]
    fn bad_contacts_are_refused_with_the_field_named() {
        type Mutation = Box<dyn Fn(&mut CrmContact)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|c| c.emails[0].address = "not-an-email".into()),
                "emails[0].address",
            ),
            (
                Box::new(|c| c.emails[1].address = "YUKI@example.jp".into()),
                "appears twice",
            ),
            (
                Box::new(|c| c.emails[1].primary = true),
                "at most one can be primary",
            ),
            (
                Box::new(|c| c.emails[0].kind = Some(" ".into())),
                "emails[0].type",
            ),
            (
                Box::new(|c| c.phones[0].number = "call me".into()),
                "phones[0].number",
            ),
            (
                Box::new(|c| c.phones[0].number = "1".repeat(70)),
                "phones[0].number",
            ),
            (
                Box::new(|c| {
                    c.phones[0].primary = true;
                    c.phones[1].primary = true;
                }),
                "phones: at most one",
            ),
            (
                Box::new(|c| c.name.given = Some("x".repeat(300))),
                "name.given",
            ),
            (
                Box::new(|c| c.name.family = Some("a\u{7}b".into())),
                "name.family",
            ),
            (
                Box::new(|c| c.addresses[0].country_code = Some("JPN".into())),
                "country_code",
            ),
            (
                Box::new(|c| c.addresses[0] = CrmAddress::default()),
                "at least one part",
            ),
            (
                Box::new(|c| c.addresses = vec![c.addresses[0].clone(); 21]),
                "addresses: at most",
            ),
            (
                Box::new(|c| c.notes = Some("n".repeat(MAX_NOTES + 1))),
                "notes",
            ),
            (
                Box::new(|c| c.updated_at = Some("yesterday".into())),
                "updated_at",
            ),
            (
                Box::new(|c| c.google_resource_name = Some("people/../x".into())),
                "google_resource_name",
            ),
            (
                Box::new(|c| c.google_resource_name = Some("contactGroups/x".into())),
                "google_resource_name",
            ),
            (
                Box::new(|c| {
                    *c = CrmContact {
                        name: CrmName {
                            display: Some("  ".into()),
                            ..Default::default()
                        },
                        ..Default::default()
                    }
                }),
                "needs a name",
            ),
        ];
        for (i, (mutate, expected)) in cases.iter().enumerate() {
            let msg = refused(mutate);
            assert!(
                msg.contains(expected),
                "case {i}: {msg:?} lacks {expected:?}"
            );
        }
        for bad in [
            json!({"name": {"given": "x"}, "bogus": 1}),
            json!({"kind": "customer", "name": {"given": "x"}}),
            json!({"emails": [{"address": "a@b.co", "label": "x"}]}),
        ] {
            assert!(serde_json::from_value::<CrmContact>(bad).is_err());
        }
    }
}
