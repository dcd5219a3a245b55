//! The normalized form of a contact: what both sides are compared in, and hashed. Two
//! contacts are "the same" for sync exactly when their normalized forms are equal, whatever
//! representation details (case of e-mails, list order, spacing, line endings) differ.
//!
//! Rules: text is trimmed (notes: CRLF → LF, trailing space dropped); e-mails are
//! lower-cased and deduplicated; Google's predefined types are spelled as Google spells them
//! (`homeFax`), custom labels kept as written; e-mails and phones have exactly one primary
//! (the one marked, else the first given) and are sorted primary first, then by value;
//! addresses are sorted by their content; a country code is upper-cased; an address's
//! formatted value counts only when it has no structured part (Google builds it from the
//! parts otherwise); a name given only as a display name is carried as the given name.
//!
//! Mapping onto a Google `Person`: `names` (one), `emailAddresses`, `phoneNumbers`,
//! `organizations` (one: company, title, department), `addresses`, `biographies` (one,
//! plain text), and `clientData` with the CRM link ([`CrmLink`], keys [`KEY_TENANT`],
//! [`KEY_USER`], [`KEY_CRM_ID`], [`KEY_KIND`]). Which fields sync, and which way, is a
//! [`FieldMapping`].

use super::model::{
    ContactKind, CrmAddress, CrmContact, CrmEmail, CrmName, CrmOrganization, CrmPhone,
};
use crate::domain::validate::{invalid, Invalid};
use crate::google::people::{
    Address, Biography, ClientData, EmailAddress, Name, Organization, Person, PersonField,
    PhoneNumber,
};
use serde::{Deserialize, Serialize};

/// `clientData` keys the product owns on a contact.
pub const KEY_TENANT: &str = "crmTenant";
pub const KEY_USER: &str = "crmUser";
pub const KEY_CRM_ID: &str = "crmId";
pub const KEY_KIND: &str = "crmKind";

const OWN_KEYS: [&str; 4] = [KEY_TENANT, KEY_USER, KEY_CRM_ID, KEY_KIND];

/// Google's predefined e-mail and address types.
const HOME_WORK_OTHER: &[&str] = &["home", "work", "other"];
/// Google's predefined phone types.
const PHONE_TYPES: &[&str] = &[
    "home",
    "work",
    "mobile",
    "homeFax",
    "workFax",
    "otherFax",
    "pager",
    "workMobile",
    "workPager",
    "main",
    "googleVoice",
    "other",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NName {
    pub prefix: String,
    pub given: String,
    pub middle: String,
    pub family: String,
    pub suffix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NEmail {
    /// Lower-cased.
    pub address: String,
    pub kind: Option<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NPhone {
    /// Trimmed, inner whitespace runs collapsed to one space.
    pub number: String,
    pub kind: Option<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NOrganization {
    pub company: String,
    pub title: String,
    pub department: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NAddress {
    pub kind: Option<String>,
    pub street: String,
    pub extended: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
    /// Upper-case ISO 3166-1 alpha-2.
    pub country_code: String,
    /// Only for an address without structured parts.
    pub formatted: String,
}

/// A contact in canonical form. Hashed as canonical JSON (fields in declaration order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedContact {
    pub kind: ContactKind,
    pub name: NName,
    pub emails: Vec<NEmail>,
    pub phones: Vec<NPhone>,
    /// `None` when company, title and department are all empty.
    pub organization: Option<NOrganization>,
    pub addresses: Vec<NAddress>,
    pub notes: String,
}

/// Who a Google contact belongs to on the CRM side, kept in its `clientData`: what finds a
/// contact again after a create whose answer was lost, and keeps tenants and users apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmLink {
    pub tenant: String,
    pub user: String,
    pub crm_id: String,
}

impl CrmLink {
    /// The link a contact carries, if it carries all three keys.
    pub fn from_person(p: &Person) -> Option<Self> {
        Some(Self {
            tenant: p.client_value(KEY_TENANT)?.to_owned(),
            user: p.client_value(KEY_USER)?.to_owned(),
            crm_id: p.client_value(KEY_CRM_ID)?.to_owned(),
        })
    }
}

pub use crate::domain::field_mapping::{Dir, FieldMapping, FieldMappingPatch};

/// A direction of travel, for [`FieldMapping::project`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    CrmToGoogle,
    GoogleToCrm,
}

impl FieldMapping {
    /// Each field with the Google person field it maps to.
    fn fields(&self) -> [(Dir, PersonField); 6] {
        [
            (self.names, PersonField::Names),
            (self.emails, PersonField::EmailAddresses),
            (self.phones, PersonField::PhoneNumbers),
            (self.organization, PersonField::Organizations),
            (self.addresses, PersonField::Addresses),
            (self.notes, PersonField::Biographies),
        ]
    }

    /// This mapping with `patch`'s fields replacing its own.
    pub fn overlay(&self, patch: &FieldMappingPatch) -> Self {
        Self {
            names: patch.names.unwrap_or(self.names),
            emails: patch.emails.unwrap_or(self.emails),
            phones: patch.phones.unwrap_or(self.phones),
            organization: patch.organization.unwrap_or(self.organization),
            addresses: patch.addresses.unwrap_or(self.addresses),
            notes: patch.notes.unwrap_or(self.notes),
        }
    }

    /// A mapping that syncs nothing is refused (switch the contacts product off instead).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.fields().iter().all(|(d, _)| *d == Dir::Off) {
            return Err(invalid(
                "field_mapping: every field is off; at least one field must sync",
            ));
        }
        Ok(())
    }

    /// `updatePersonFields` of a write to Google: the fields that travel to Google, and
    /// `clientData` (the CRM link).
    pub fn update_person_fields(&self) -> Vec<PersonField> {
        let mut out: Vec<PersonField> = self
            .fields()
            .iter()
            .filter(|(d, _)| d.to_google())
            .map(|(_, f)| *f)
            .collect();
        out.push(PersonField::ClientData);
        out
    }

    /// `personFields` of a read: every field that syncs either way, and what the sync needs
    /// besides (the etag and deletion in `metadata`, `memberships`, `clientData`).
    pub fn person_fields(&self) -> Vec<PersonField> {
        let mut out: Vec<PersonField> = self
            .fields()
            .iter()
            .filter(|(d, _)| *d != Dir::Off)
            .map(|(_, f)| *f)
            .collect();
        out.extend([
            PersonField::Memberships,
            PersonField::ClientData,
            PersonField::Metadata,
        ]);
        out
    }

    /// What of `n` may travel in `flow`: the other fields emptied. Hash the CRM side
    /// projected on [`Flow::CrmToGoogle`] and the Google side on [`Flow::GoogleToCrm`], so a
    /// change to a field that does not travel that way is no change.
    pub fn project(&self, n: &NormalizedContact, flow: Flow) -> NormalizedContact {
        let keep = |d: Dir| match flow {
            Flow::CrmToGoogle => d.to_google(),
            Flow::GoogleToCrm => d.to_crm(),
        };
        NormalizedContact {
            kind: n.kind,
            name: if keep(self.names) {
                n.name.clone()
            } else {
                NName::default()
            },
            emails: if keep(self.emails) {
                n.emails.clone()
            } else {
                Vec::new()
            },
            phones: if keep(self.phones) {
                n.phones.clone()
            } else {
                Vec::new()
            },
            organization: if keep(self.organization) {
                n.organization.clone()
            } else {
                None
            },
            addresses: if keep(self.addresses) {
                n.addresses.clone()
            } else {
                Vec::new()
            },
            notes: if keep(self.notes) {
                n.notes.clone()
            } else {
                String::new()
            },
        }
    }
}

/// Trimmed; empty → "".
fn clean(v: Option<&str>) -> String {
    v.unwrap_or("").trim().to_owned()
}

/// Multi-line text: CRLF (and lone CR) → LF, trailing whitespace dropped, leading kept.
fn text(v: Option<&str>) -> String {
    v.unwrap_or("")
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end()
        .to_owned()
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A type label: Google's predefined spelling when it is one (any case), else the custom
/// label trimmed; none when empty.
fn label(v: Option<&str>, predefined: &[&str]) -> Option<String> {
    let l = v?.trim();
    if l.is_empty() {
        return None;
    }
    Some(
        predefined
            .iter()
            .find(|p| p.eq_ignore_ascii_case(l))
            .map_or_else(|| l.to_owned(), |p| (*p).to_owned()),
    )
}

fn phone_number(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Exactly one primary (the first marked, else the first), then primary first and the rest
/// sorted; duplicates (same key) dropped, the primary kept.
fn canonical_list<T: Clone>(
    mut list: Vec<T>,
    is_primary: impl Fn(&T) -> bool,
    set_primary: impl Fn(&mut T, bool),
    key: impl Fn(&T) -> String,
) -> Vec<T> {
    if list.is_empty() {
        return list;
    }
    let primary = list.iter().position(&is_primary).unwrap_or(0);
    for (i, item) in list.iter_mut().enumerate() {
        set_primary(item, i == primary);
    }
    let first = list.remove(primary);
    let mut seen = std::collections::HashSet::from([key(&first)]);
    list.sort_by_key(|x| key(x));
    let mut out = vec![first];
    out.extend(list.into_iter().filter(|x| seen.insert(key(x))));
    out
}

fn emails(list: Vec<NEmail>) -> Vec<NEmail> {
    canonical_list(
        list.into_iter().filter(|e| !e.address.is_empty()).collect(),
        |e| e.primary,
        |e, p| e.primary = p,
        |e| e.address.clone(),
    )
}

fn phones(list: Vec<NPhone>) -> Vec<NPhone> {
    canonical_list(
        list.into_iter().filter(|p| !p.number.is_empty()).collect(),
        |p| p.primary,
        |p, v| p.primary = v,
        |p| format!("{}\u{0}{}", p.number, p.kind.as_deref().unwrap_or("")),
    )
}

fn organization(company: &str, title: &str, department: &str) -> Option<NOrganization> {
    let o = NOrganization {
        company: company.trim().to_owned(),
        title: title.trim().to_owned(),
        department: department.trim().to_owned(),
    };
    (!(o.company.is_empty() && o.title.is_empty() && o.department.is_empty())).then_some(o)
}

impl NAddress {
    fn has_parts(&self) -> bool {
        [
            &self.street,
            &self.extended,
            &self.city,
            &self.region,
            &self.postal_code,
            &self.country,
            &self.country_code,
        ]
        .iter()
        .any(|s| !s.is_empty())
    }

    /// Canonical: the formatted value only without parts; empty addresses are `None`.
    fn canonical(mut self) -> Option<Self> {
        self.country_code = self.country_code.to_ascii_uppercase();
        if self.has_parts() {
            self.formatted.clear();
        }
        (self.has_parts() || !self.formatted.is_empty()).then_some(self)
    }
}

fn addresses(list: impl Iterator<Item = NAddress>) -> Vec<NAddress> {
    let mut out: Vec<NAddress> = list.filter_map(NAddress::canonical).collect();
    out.sort();
    out.dedup();
    out
}

fn name_parts(n: &NName) -> Vec<&str> {
    [&n.prefix, &n.given, &n.middle, &n.family, &n.suffix]
        .into_iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A primary item (as Google marks it) of a list, else its first.
fn primary_of<T>(list: &[T], primary: impl Fn(&T) -> bool) -> Option<&T> {
    list.iter().find(|x| primary(x)).or_else(|| list.first())
}

fn is_primary(m: &Option<crate::google::people::FieldMetadata>) -> bool {
    m.as_ref().and_then(|m| m.primary).unwrap_or(false)
}

impl NormalizedContact {
    pub fn from_crm(c: &CrmContact) -> Self {
        let mut name = NName {
            prefix: clean(c.name.prefix.as_deref()),
            given: clean(c.name.given.as_deref()),
            middle: clean(c.name.middle.as_deref()),
            family: clean(c.name.family.as_deref()),
            suffix: clean(c.name.suffix.as_deref()),
        };
        if name_parts(&name).is_empty() {
            name.given = clean(c.name.display.as_deref());
        }
        Self {
            kind: c.kind,
            name,
            emails: emails(
                c.emails
                    .iter()
                    .map(|e| NEmail {
                        address: e.address.trim().to_lowercase(),
                        kind: label(e.kind.as_deref(), HOME_WORK_OTHER),
                        primary: e.primary,
                    })
                    .collect(),
            ),
            phones: phones(
                c.phones
                    .iter()
                    .map(|p| NPhone {
                        number: phone_number(&p.number),
                        kind: label(p.kind.as_deref(), PHONE_TYPES),
                        primary: p.primary,
                    })
                    .collect(),
            ),
            organization: c.organization.as_ref().and_then(|o| {
                organization(
                    o.company.as_deref().unwrap_or(""),
                    o.title.as_deref().unwrap_or(""),
                    o.department.as_deref().unwrap_or(""),
                )
            }),
            addresses: addresses(c.addresses.iter().map(|a| NAddress {
                kind: label(a.kind.as_deref(), HOME_WORK_OTHER),
                street: text(a.street.as_deref()).trim().to_owned(),
                extended: clean(a.extended.as_deref()),
                city: clean(a.city.as_deref()),
                region: clean(a.region.as_deref()),
                postal_code: clean(a.postal_code.as_deref()),
                country: clean(a.country.as_deref()),
                country_code: clean(a.country_code.as_deref()),
                formatted: text(a.formatted.as_deref()).trim().to_owned(),
            })),
            notes: text(c.notes.as_deref()),
        }
    }

    /// From a Google contact as read (with the mapped fields in its read mask). Items Google
    /// holds beyond what the CRM models (a second name or organization) are not part of it.
    pub fn from_person(p: &Person) -> Self {
        // The contact's own data only, whatever sources a read asked for.
        let own = p.contact_only();
        let p = &own;
        let n = primary_of(&p.names, |n: &Name| is_primary(&n.metadata));
        let mut name = NName {
            prefix: clean(n.and_then(|n| n.honorific_prefix.as_deref())),
            given: clean(n.and_then(|n| n.given_name.as_deref())),
            middle: clean(n.and_then(|n| n.middle_name.as_deref())),
            family: clean(n.and_then(|n| n.family_name.as_deref())),
            suffix: clean(n.and_then(|n| n.honorific_suffix.as_deref())),
        };
        if name_parts(&name).is_empty() {
            name.given =
                clean(n.and_then(|n| n.unstructured_name.as_deref().or(n.display_name.as_deref())));
        }
        let org = primary_of(&p.organizations, |o: &Organization| is_primary(&o.metadata));
        let bio = p.biographies.first();
        Self {
            kind: p
                .client_value(KEY_KIND)
                .and_then(ContactKind::parse)
                .unwrap_or_default(),
            name,
            emails: emails(
                p.email_addresses
                    .iter()
                    .map(|e| NEmail {
                        address: clean(e.value.as_deref()).to_lowercase(),
                        kind: label(e.kind.as_deref(), HOME_WORK_OTHER),
                        primary: is_primary(&e.metadata),
                    })
                    .collect(),
            ),
            phones: phones(
                p.phone_numbers
                    .iter()
                    .map(|ph| NPhone {
                        number: phone_number(ph.value.as_deref().unwrap_or("")),
                        kind: label(ph.kind.as_deref(), PHONE_TYPES),
                        primary: is_primary(&ph.metadata),
                    })
                    .collect(),
            ),
            organization: org.and_then(|o| {
                organization(
                    o.name.as_deref().unwrap_or(""),
                    o.title.as_deref().unwrap_or(""),
                    o.department.as_deref().unwrap_or(""),
                )
            }),
            addresses: addresses(p.addresses.iter().map(|a| NAddress {
                kind: label(a.kind.as_deref(), HOME_WORK_OTHER),
                street: text(a.street_address.as_deref()).trim().to_owned(),
                extended: clean(a.extended_address.as_deref()),
                city: clean(a.city.as_deref()),
                region: clean(a.region.as_deref()),
                postal_code: clean(a.postal_code.as_deref()),
                country: clean(a.country.as_deref()),
                country_code: clean(a.country_code.as_deref()),
                formatted: text(a.formatted_value.as_deref()).trim().to_owned(),
            })),
            notes: text(bio.and_then(|b| b.value.as_deref())),
        }
    }

    /// SHA-256 of the canonical JSON, hex.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        crate::crypto::sha256_hex(&bytes)
    }

    /// The body the product writes to Google: the fields `mapping` sends to Google (the
    /// others left empty: they are not in [`FieldMapping::update_person_fields`], so Google
    /// keeps its own), lists primary first, and `clientData` with the CRM link and kind.
    /// With `base` (the contact as last read, for an update): its etag, and its `clientData`
    /// entries of other keys, are kept.
    pub fn to_person(
        &self,
        link: &CrmLink,
        mapping: &FieldMapping,
        base: Option<&Person>,
    ) -> Person {
        let n = mapping.project(self, Flow::CrmToGoogle);
        let mut p = Person {
            etag: base.and_then(|b| b.etag.clone()),
            ..Default::default()
        };
        if !name_parts(&n.name).is_empty() {
            p.names = vec![Name {
                honorific_prefix: some(&n.name.prefix),
                given_name: some(&n.name.given),
                middle_name: some(&n.name.middle),
                family_name: some(&n.name.family),
                honorific_suffix: some(&n.name.suffix),
                ..Default::default()
            }];
        }
        p.email_addresses = n
            .emails
            .iter()
            .map(|e| EmailAddress {
                value: Some(e.address.clone()),
                kind: e.kind.clone(),
                ..Default::default()
            })
            .collect();
        p.phone_numbers = n
            .phones
            .iter()
            .map(|ph| PhoneNumber {
                value: Some(ph.number.clone()),
                kind: ph.kind.clone(),
                ..Default::default()
            })
            .collect();
        p.organizations = n
            .organization
            .iter()
            .map(|o| Organization {
                name: some(&o.company),
                title: some(&o.title),
                department: some(&o.department),
                ..Default::default()
            })
            .collect();
        p.addresses = n.addresses.iter().map(google_address).collect();
        if !n.notes.is_empty() {
            p.biographies = vec![Biography {
                value: Some(n.notes.clone()),
                content_type: Some("TEXT_PLAIN".into()),
                ..Default::default()
            }];
        }
        p.client_data = self.client_data(link, base);
        p
    }

    /// The person's `clientData`: what others keep there (from `base`), and the CRM link.
    fn client_data(&self, link: &CrmLink, base: Option<&Person>) -> Vec<ClientData> {
        let mut out: Vec<ClientData> = base
            .map(|b| {
                b.client_data
                    .iter()
                    .filter(|c| !OWN_KEYS.contains(&c.key.as_str()))
                    .map(|c| ClientData::new(&c.key, &c.value))
                    .collect()
            })
            .unwrap_or_default();
        out.extend([
            ClientData::new(KEY_TENANT, &link.tenant),
            ClientData::new(KEY_USER, &link.user),
            ClientData::new(KEY_CRM_ID, &link.crm_id),
            ClientData::new(KEY_KIND, self.kind.as_str()),
        ]);
        out
    }

    /// The contact as the CRM receives it in the change feed (no version: the CRM gives its
    /// own). `name.display` is the parts joined, for convenience.
    pub fn to_crm(&self) -> CrmContact {
        let opt = |s: &str| some(s);
        let parts = name_parts(&self.name);
        CrmContact {
            kind: self.kind,
            name: CrmName {
                prefix: opt(&self.name.prefix),
                given: opt(&self.name.given),
                middle: opt(&self.name.middle),
                family: opt(&self.name.family),
                suffix: opt(&self.name.suffix),
                display: (!parts.is_empty()).then(|| parts.join(" ")),
            },
            emails: self
                .emails
                .iter()
                .map(|e| CrmEmail {
                    address: e.address.clone(),
                    kind: e.kind.clone(),
                    primary: e.primary,
                })
                .collect(),
            phones: self
                .phones
                .iter()
                .map(|p| CrmPhone {
                    number: p.number.clone(),
                    kind: p.kind.clone(),
                    primary: p.primary,
                })
                .collect(),
            organization: self.organization.as_ref().map(|o| CrmOrganization {
                company: opt(&o.company),
                title: opt(&o.title),
                department: opt(&o.department),
            }),
            addresses: self
                .addresses
                .iter()
                .map(|a| CrmAddress {
                    street: opt(&a.street),
                    extended: opt(&a.extended),
                    city: opt(&a.city),
                    region: opt(&a.region),
                    postal_code: opt(&a.postal_code),
                    country: opt(&a.country),
                    country_code: opt(&a.country_code),
                    kind: a.kind.clone(),
                    formatted: opt(&a.formatted),
                })
                .collect(),
            notes: opt(&self.notes),
            version: None,
            updated_at: None,
            google_resource_name: None,
        }
    }
}

/// An address as People writes it.
fn google_address(a: &NAddress) -> Address {
    Address {
        kind: a.kind.clone(),
        street_address: some(&a.street),
        extended_address: some(&a.extended),
        city: some(&a.city),
        region: some(&a.region),
        postal_code: some(&a.postal_code),
        country: some(&a.country),
        country_code: some(&a.country_code),
        formatted_value: some(&a.formatted),
        ..Default::default()
    }
}

/// The hash of a contact pair's stored CRM content (`None` if unreadable).
pub fn content_hash(v: &serde_json::Value) -> Option<String> {
    serde_json::from_value::<NormalizedContact>(v.clone())
        .ok()
        .map(|n| n.hash())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_field_list_is_the_mappings_fields_in_order() {
        let v = serde_json::to_value(FieldMapping::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = FieldMapping::FIELDS.to_vec();
        listed.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, listed);
    }

    use super::*;
    use serde_json::{json, Value};

    fn crm(v: Value) -> CrmContact {
        let c: CrmContact = serde_json::from_value(v).unwrap();
        c.validate().unwrap();
        c
    }

    fn link() -> CrmLink {
        CrmLink {
            tenant: "acme".into(),
            user: "jane".into(),
            crm_id: "lead-42".into(),
        }
    }

    /// Everything the CRM models, several typed e-mails and phones (custom labels too), full
    /// addresses in three scripts.
    fn full() -> CrmContact {
        crm(json!({
            "kind": "lead",
            "name": {"prefix": "Dr.", "given": "Yuki", "middle": "K.", "family": "山田", "suffix": "PhD"},
            "emails": [
                {"address": "yuki@home.example", "type": "home"},
                {"address": "Yuki.Yamada@Example.JP", "type": "work", "primary": true},
                {"address": "y@other.example", "type": "other"},
                {"address": "press@example.jp", "type": "Press desk"}
            ],
            "phones": [
                {"number": "+81 3-1234-5678", "type": "mobile", "primary": true},
                {"number": "+81  3 5555 0000", "type": "WORK"},
                {"number": "+81 3 5555 0001", "type": "workFax"},
                {"number": "+20 2 2345 6789", "type": "Cairo office"},
                {"number": "+7 495 123-45-67", "type": "home"}
            ],
            "organization": {"company": "株式会社例", "title": "部長", "department": "営業"},
            "addresses": [
                {"street": "千代田区千代田1-1", "extended": "3階", "city": "東京都", "region": "東京",
                 "postal_code": "100-8111", "country": "日本", "country_code": "jp", "type": "work"},
                {"street": "ул. Тверская, д. 7", "city": "Москва", "postal_code": "125009",
                 "country": "Россия", "country_code": "RU", "type": "home"},
                {"street": "١ شارع التحرير", "city": "القاهرة", "region": "محافظة القاهرة",
                 "country": "مصر", "country_code": "EG", "type": "Branch"},
                {"formatted": "Unit 5\nSomewhere unstructured", "type": "other"}
            ],
            "notes": "Met at the fair.\r\nFollow up in März — 東京.\r\n"
        }))
    }

    /// What Google answers for a body we wrote: the first item of each list primary, the
    /// display and formatted values it derives, metadata with a source, our fields as sent.
    fn as_google_answers(p: &Person) -> Person {
        let mut v = serde_json::to_value(p).unwrap();
        v["resourceName"] = json!("people/c77");
        v["etag"] = json!("%EgUB");
        v["metadata"] = json!({"sources": [{"type": "CONTACT", "id": "4d", "etag": "#x"}]});
        for field in [
            "names",
            "emailAddresses",
            "phoneNumbers",
            "organizations",
            "addresses",
            "biographies",
            "clientData",
        ] {
            if let Some(list) = v.get_mut(field).and_then(Value::as_array_mut) {
                for (i, item) in list.iter_mut().enumerate() {
                    item["metadata"] =
                        json!({"primary": i == 0, "source": {"type": "CONTACT", "id": "4d"}});
                    if let Some(t) = item["type"].as_str() {
                        item["formattedType"] = json!(t.to_uppercase());
                    }
                }
            }
        }
        if let Some(n) = v.get_mut("names").and_then(|n| n.get_mut(0)) {
            n["displayName"] = json!("Dr. Yuki K. 山田, PhD");
            n["unstructuredName"] = json!("Dr. Yuki K. 山田, PhD");
        }
        for a in v
            .get_mut("addresses")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if a["formattedValue"].is_null() {
                a["formattedValue"] = json!(format!("{}\n{}", a["streetAddress"], a["city"]));
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn representation_details_do_not_change_the_hash() {
        let a = crm(json!({
            "name": {"given": " Jane ", "family": "Doe"},
            "emails": [{"address": "B@X.com", "type": "WORK"}, {"address": "a@x.com", "primary": true}],
            "phones": [{"number": "+1  555 0100"}, {"number": "+1 555 0199", "type": "Mobile"}],
            "addresses": [{"city": "Paris", "country_code": "fr"}, {"city": "Lyon"}],
            "organization": {"company": "ACME ", "title": ""},
            "notes": "a\r\nb\n\n"
        }));
        let b = crm(json!({
            "name": {"given": "Jane", "family": "Doe"},
            "emails": [{"address": "a@x.com", "primary": true}, {"address": "b@x.com", "type": "work"}],
            "phones": [{"number": "+1 555 0100", "primary": true}, {"number": "+1 555 0199", "type": "mobile"}],
            "addresses": [{"city": "Lyon"}, {"city": "Paris", "country_code": "FR", "formatted": "ignored: has parts"}],
            "organization": {"company": "ACME"},
            "notes": "a\nb"
        }));
        let (na, nb) = (
            NormalizedContact::from_crm(&a),
            NormalizedContact::from_crm(&b),
        );
        assert_eq!(na, nb);
        assert_eq!(na.hash(), nb.hash());
        assert_eq!(na.emails[0].address, "a@x.com");
        assert!(na.emails[0].primary && !na.emails[1].primary);
        // Real changes do change it: the primary, a type, a custom label's case, a digit.
        for change in [
            json!({"emails": [{"address": "a@x.com"}, {"address": "b@x.com", "type": "work", "primary": true}]}),
            json!({"emails": [{"address": "a@x.com", "primary": true}, {"address": "b@x.com", "type": "home"}]}),
            json!({"phones": [{"number": "+1 555 0100", "primary": true}, {"number": "+1 555 0199", "type": "Cell"}]}),
            json!({"phones": [{"number": "+1 555 0101", "primary": true}, {"number": "+1 555 0199", "type": "mobile"}]}),
        ] {
            let mut v = serde_json::to_value(&b).unwrap();
            for (k, x) in change.as_object().unwrap() {
                v[k] = x.clone();
            }
            assert_ne!(
                NormalizedContact::from_crm(&crm(v)).hash(),
                nb.hash(),
                "{change}"
            );
        }
    }

    #[test]
    fn crm_to_person_to_crm_keeps_every_field() {
        let c = full();
        let n = NormalizedContact::from_crm(&c);
        assert_eq!(n.emails.len(), 4);
        assert_eq!(n.emails[0].address, "yuki.yamada@example.jp");
        assert_eq!(n.phones[0].kind.as_deref(), Some("mobile"));
        assert!(n
            .phones
            .iter()
            .any(|p| p.kind.as_deref() == Some("Cairo office")));
        assert!(n.phones.iter().any(|p| p.kind.as_deref() == Some("work")));
        assert_eq!(n.addresses.len(), 4);
        assert_eq!(n.notes, "Met at the fair.\nFollow up in März — 東京.");

        let person = n.to_person(&link(), &FieldMapping::default(), None);
        // Lists go primary first; only the mapped fields and our clientData are written.
        assert_eq!(
            person.email_addresses[0].value.as_deref(),
            Some("yuki.yamada@example.jp")
        );
        assert_eq!(person.phone_numbers[0].kind.as_deref(), Some("mobile"));
        let keys: Vec<&str> = person.client_data.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, [KEY_TENANT, KEY_USER, KEY_CRM_ID, KEY_KIND]);
        assert!(person.other.is_empty() && person.memberships.is_empty());
        let body = serde_json::to_value(&person).unwrap();
        assert_eq!(body["addresses"][1]["city"], "Москва");
        assert!(body.get("resourceName").is_none() && body.get("etag").is_none());

        let read = as_google_answers(&person);
        assert_eq!(NormalizedContact::from_person(&read), n);
        assert_eq!(CrmLink::from_person(&read), Some(link()));
        let back = n.to_crm();
        back.validate().unwrap();
        assert_eq!(NormalizedContact::from_crm(&back), n);
        assert_eq!(back.kind, ContactKind::Lead);
        assert_eq!(back.name.display.as_deref(), Some("Dr. Yuki K. 山田 PhD"));
        let cairo = back
            .addresses
            .iter()
            .find(|a| a.city.as_deref() == Some("القاهرة"))
            .unwrap();
        assert_eq!(cairo.street.as_deref(), Some("١ شارع التحرير"));
        assert_eq!(cairo.country_code.as_deref(), Some("EG"));
        assert_eq!(cairo.kind.as_deref(), Some("Branch"));
    }

    #[test]
    fn person_to_crm_to_person_keeps_every_field() {
        let google: Person = serde_json::from_value(json!({
            "resourceName": "people/c5", "etag": "%abc",
            "metadata": {"sources": [{"type": "CONTACT", "id": "5", "etag": "#5"}]},
            "names": [{"metadata": {"primary": true}, "givenName": "Олег", "familyName": "Иванов",
                       "displayName": "Олег Иванов", "phoneticGivenName": "Oleg"}],
            "emailAddresses": [
                {"metadata": {"primary": false}, "value": "oleg@work.example", "type": "work", "formattedType": "Work"},
                {"metadata": {"primary": true}, "value": "Oleg@Home.Example", "type": "home"},
                {"value": "o@x.example", "type": "Newsletter"}
            ],
            "phoneNumbers": [
                {"metadata": {"primary": true}, "value": "+7 495 123-45-67", "type": "work", "canonicalForm": "+74951234567"},
                {"value": "+7 916 000-00-00", "type": "mobile"},
                {"value": "+7 495 000-00-01", "type": "otherFax"},
                {"value": "+7 495 000-00-02", "type": "Dacha"}
            ],
            "organizations": [{"metadata": {"primary": true}, "name": "ООО Пример", "title": "Директор", "department": "Продажи", "current": true},
                              {"name": "Old Corp"}],
            "addresses": [
                {"streetAddress": "ул. Тверская, д. 7", "extendedAddress": "кв. 12", "city": "Москва",
                 "region": "Москва", "postalCode": "125009", "country": "Россия", "countryCode": "RU",
                 "type": "home", "formattedValue": "ул. Тверская, д. 7, Москва"},
                {"streetAddress": "1-1 Chiyoda", "city": "東京都", "countryCode": "JP", "type": "work"},
                {"formattedValue": "القاهرة، مصر", "type": "Winter"}
            ],
            "biographies": [{"value": "Двуязычный.\nLikes tea.", "contentType": "TEXT_PLAIN"}],
            "memberships": [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/g1"}}],
            "clientData": [{"key": "otherApp", "value": "keep me"}],
            "birthdays": [{"date": {"month": 5, "day": 1}}]
        }))
        .unwrap();
        let n = NormalizedContact::from_person(&google);
        assert_eq!(
            n.kind,
            ContactKind::Contact,
            "a Google-born contact is a contact"
        );
        assert_eq!(
            n.emails[0].address, "oleg@home.example",
            "Google's primary stays primary"
        );
        assert_eq!(n.phones[0].kind.as_deref(), Some("work"));
        assert_eq!(n.organization.as_ref().unwrap().company, "ООО Пример");
        let c = n.to_crm();
        c.validate().unwrap();
        assert_eq!(NormalizedContact::from_crm(&c), n);

        let written = n.to_person(&link(), &FieldMapping::default(), Some(&google));
        assert_eq!(
            written.etag.as_deref(),
            Some("%abc"),
            "an update carries the etag read"
        );
        assert_eq!(
            written.client_value("otherApp"),
            Some("keep me"),
            "other apps' data kept"
        );
        assert_eq!(written.client_value(KEY_CRM_ID), Some("lead-42"));
        assert_eq!(
            NormalizedContact::from_person(&as_google_answers(&written)),
            n
        );
        // Field by field, what Google had is what is written back.
        let pairs = |p: &Person| -> Vec<(Option<String>, Option<String>)> {
            let mut v: Vec<_> = p
                .email_addresses
                .iter()
                .map(|e| (e.value.as_ref().map(|s| s.to_lowercase()), e.kind.clone()))
                .collect();
            v.extend(
                p.phone_numbers
                    .iter()
                    .map(|x| (x.value.clone(), x.kind.clone())),
            );
            v.sort();
            v
        };
        assert_eq!(pairs(&written), pairs(&google));
        let mut streets: Vec<_> = written
            .addresses
            .iter()
            .map(|a| {
                (
                    a.street_address.clone(),
                    a.city.clone(),
                    a.region.clone(),
                    a.postal_code.clone(),
                    a.country.clone(),
                    a.country_code.clone(),
                    a.extended_address.clone(),
                    a.kind.clone(),
                )
            })
            .collect();
        let mut expected: Vec<_> = google
            .addresses
            .iter()
            .map(|a| {
                (
                    a.street_address.clone(),
                    a.city.clone(),
                    a.region.clone(),
                    a.postal_code.clone(),
                    a.country.clone(),
                    a.country_code.clone(),
                    a.extended_address.clone(),
                    a.kind.clone(),
                )
            })
            .collect();
        streets.sort();
        expected.sort();
        assert_eq!(streets, expected);
        let winter = written
            .addresses
            .iter()
            .find(|a| a.kind.as_deref() == Some("Winter"))
            .unwrap();
        assert_eq!(winter.formatted_value.as_deref(), Some("القاهرة، مصر"));
        assert_eq!(
            written.biographies[0].value.as_deref(),
            Some("Двуязычный.\nLikes tea.")
        );
        assert_eq!(written.names[0].given_name.as_deref(), Some("Олег"));
    }

    #[test]
    fn a_display_only_name_travels_as_the_given_name() {
        let c = crm(json!({"name": {"display": "Acme Front Desk"}}));
        let n = NormalizedContact::from_crm(&c);
        assert_eq!(n.name.given, "Acme Front Desk");
        let read = as_google_answers(&n.to_person(&link(), &FieldMapping::default(), None));
        assert_eq!(NormalizedContact::from_person(&read), n);
    }

    #[test]
    fn field_mapping_masks_projection_and_settings() {
        let m: FieldMapping = serde_json::from_value(json!({
            "phones": "crm_to_google", "notes": "google_to_crm", "addresses": "off"
        }))
        .unwrap();
        m.validate().unwrap();
        assert_eq!(m.names, Dir::TwoWay);
        let mask = |f: Vec<PersonField>| crate::google::people::field_mask(&f);
        assert_eq!(
            mask(m.update_person_fields()),
            "names,emailAddresses,phoneNumbers,organizations,clientData"
        );
        assert_eq!(
            mask(m.person_fields()),
            "names,emailAddresses,phoneNumbers,organizations,biographies,memberships,clientData,metadata"
        );
        let n = NormalizedContact::from_crm(&full());
        let to_google = m.project(&n, Flow::CrmToGoogle);
        assert!(to_google.notes.is_empty() && to_google.addresses.is_empty());
        assert_eq!(to_google.phones, n.phones);
        let to_crm = m.project(&n, Flow::GoogleToCrm);
        assert!(to_crm.phones.is_empty() && !to_crm.notes.is_empty());
        // A change in a field that does not travel is no change.
        let mut edited = n.clone();
        edited.notes = "changed in the CRM".into();
        edited.addresses.pop();
        assert_eq!(
            m.project(&edited, Flow::CrmToGoogle).hash(),
            to_google.hash()
        );
        edited.phones.pop();
        assert_ne!(
            m.project(&edited, Flow::CrmToGoogle).hash(),
            to_google.hash()
        );
        // The body leaves out what does not travel to Google (the mask keeps Google's copy).
        let body = n.to_person(&link(), &m, None);
        assert!(body.biographies.is_empty() && body.addresses.is_empty());
        assert!(!body.phone_numbers.is_empty());

        let user = FieldMappingPatch {
            addresses: Some(Dir::TwoWay),
            emails: Some(Dir::Off),
            ..Default::default()
        };
        let effective = m.overlay(&user);
        assert_eq!(
            (effective.addresses, effective.emails, effective.phones),
            (Dir::TwoWay, Dir::Off, Dir::CrmToGoogle)
        );
        let off = FieldMapping {
            names: Dir::Off,
            emails: Dir::Off,
            phones: Dir::Off,
            organization: Dir::Off,
            addresses: Dir::Off,
            notes: Dir::Off,
        };
        assert!(off.validate().unwrap_err().0.contains("at least one field"));
        assert!(serde_json::from_value::<FieldMapping>(json!({"fax": "off"})).is_err());
        assert!(serde_json::from_value::<FieldMapping>(json!({"names": "sideways"})).is_err());
        assert_eq!(
            serde_json::to_value(FieldMapping::default()).unwrap()["names"],
            "two_way"
        );
        assert_eq!(
            serde_json::to_value(user).unwrap(),
            json!({"emails": "off", "addresses": "two_way"})
        );
    }
}
