//! People v1 (contacts and contact groups), shaped after Google's discovery document
//! (`infra/google-sandbox/discovery/people.v1.json`). Every call goes through the one send /
//! classify / retry step ([`Google::send_once`] under [`with_retry`]), like Calendar's.
//!
//! Resources are typed on the fields the product maps; every other field (of the person and
//! of each item) is kept in an `other` map, so a person read and written back loses nothing.
//!
//! Google asks that mutations for one user be sent one at a time: the batch methods send
//! their chunks sequentially, and callers should not run two mutations of a user at once.
//! Creates have no client-chosen id, so they are never sent twice blindly: a create is
//! retried only when Google's answer says it did nothing (a rate limit, 429). After a failure
//! that leaves the outcome unknown (a timeout, a 5xx on the way back — Google may have made
//! the contact), the create methods look for what Google made, by the `clientData` the
//! bodies carry (the CRM link), before they report the failure ([`Google::find_created`]).

use super::api::refused_before_applied;
use super::calendar::{encode_segment, parse_json};
use super::retry::{with_retry, RetryPolicy};
use super::{Google, GoogleError};
use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The `sources` of every read: the contact's own data only. Google's default adds the
/// PROFILE sources (the person's Google profile, a Workspace directory entry), merged into
/// the contact through a verified e-mail or phone: data the user never entered, which a
/// write-back would copy into the contact.
pub const READ_SOURCES: &str = "READ_SOURCE_TYPE_CONTACT";

/// Contacts per `batchCreateContacts` / `batchUpdateContacts` / `people:batchGet` request.
pub const MAX_BATCH_CONTACTS: usize = 200;
/// Resource names per `batchDeleteContacts` request.
pub const MAX_BATCH_DELETE: usize = 500;
/// Resource names added plus removed per `members:modify` request.
pub const MAX_MEMBERS_MODIFY: usize = 1000;

/// The person fields the product reads or writes (`personFields`, `readMask`,
/// `updatePersonFields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PersonField {
    Names,
    EmailAddresses,
    PhoneNumbers,
    Organizations,
    Addresses,
    Biographies,
    Memberships,
    ClientData,
    /// Read only: sources (with the contact's etag) and `deleted`.
    Metadata,
}

impl PersonField {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonField::Names => "names",
            PersonField::EmailAddresses => "emailAddresses",
            PersonField::PhoneNumbers => "phoneNumbers",
            PersonField::Organizations => "organizations",
            PersonField::Addresses => "addresses",
            PersonField::Biographies => "biographies",
            PersonField::Memberships => "memberships",
            PersonField::ClientData => "clientData",
            PersonField::Metadata => "metadata",
        }
    }

    /// Every field the product maps, `metadata` included: the read mask of a sync.
    pub const ALL: [PersonField; 9] = [
        PersonField::Names,
        PersonField::EmailAddresses,
        PersonField::PhoneNumbers,
        PersonField::Organizations,
        PersonField::Addresses,
        PersonField::Biographies,
        PersonField::Memberships,
        PersonField::ClientData,
        PersonField::Metadata,
    ];
}

/// A field mask: the fields' names, sorted and deduplicated, comma-separated.
pub fn field_mask(fields: &[PersonField]) -> String {
    let mut list = fields.to_vec();
    list.sort();
    list.dedup();
    list.iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// `FieldMetadata` of an item (read only but for `sourcePrimary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_primary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Where a person's data comes from; a `CONTACT` source carries the contact's etag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Source {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `PersonMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonMetadata {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Set on a person an incremental list reports as deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    /// The names the person had before (Google renames a contact when it links it to a
    /// profile, e.g. after a verified e-mail is added); given on incremental lists only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous_resource_names: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Name` (a singleton on contacts). `displayName` and friends are computed by Google.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Name {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unstructured_name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `EmailAddress`; `type` is `home`, `work`, `other` or a custom label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_type: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `PhoneNumber`; `type` is one of Google's (`mobile`, `workFax`, …) or a custom label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhoneNumber {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_type: Option<String>,
    /// E.164, computed by Google.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical_form: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Organization`: company (`name`), job title, department.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Organization {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Address` (a postal address).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    /// Free-form; Google builds it from the structured parts when it is not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_value: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Biography` (a singleton on contacts): the notes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Biography {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `TEXT_PLAIN` or `TEXT_HTML`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `Membership`: the contact's place in a contact group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Membership {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_group_membership: Option<ContactGroupMembership>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Membership {
    /// Membership of the group `contactGroups/…` (what a create sends to file the contact).
    pub fn of_group(group_resource_name: &str) -> Self {
        Self {
            contact_group_membership: Some(ContactGroupMembership {
                contact_group_resource_name: Some(group_resource_name.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactGroupMembership {
    /// Read only (the id part of the resource name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_group_resource_name: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `ClientData`: a key/value pair any client may store on a contact (the product keeps the
/// CRM link there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<FieldMetadata>,
    pub key: String,
    pub value: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ClientData {
    pub fn new(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }
    }
}

/// Google's `Person` resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Person {
    /// `people/{id}`, given by Google; empty on a person to create.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// What an update must carry (a stale one is [`GoogleError::is_etag_conflict`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PersonMetadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<Name>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<PhoneNumber>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<Organization>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub biographies: Vec<Biography>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memberships: Vec<Membership>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_data: Vec<ClientData>,
    /// Every field not modelled above, as Google sent it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Person {
    /// Reported deleted by an incremental `connections.list`.
    pub fn is_deleted(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.deleted)
            .unwrap_or(false)
    }

    /// The person as its contact source holds it: items Google merged in from other sources
    /// (a profile, a directory entry: `metadata.source.type` other than `CONTACT`) dropped.
    pub fn contact_only(&self) -> Person {
        fn own(m: &Option<FieldMetadata>) -> bool {
            m.as_ref()
                .and_then(|m| m.source.as_ref())
                .and_then(|s| s.kind.as_deref())
                .is_none_or(|k| k == "CONTACT")
        }
        let mut p = self.clone();
        p.names.retain(|x| own(&x.metadata));
        p.email_addresses.retain(|x| own(&x.metadata));
        p.phone_numbers.retain(|x| own(&x.metadata));
        p.organizations.retain(|x| own(&x.metadata));
        p.addresses.retain(|x| own(&x.metadata));
        p.biographies.retain(|x| own(&x.metadata));
        p.memberships.retain(|x| own(&x.metadata));
        p.client_data.retain(|x| own(&x.metadata));
        if let Some(m) = p.metadata.as_mut() {
            m.sources
                .retain(|s| s.kind.as_deref().is_none_or(|k| k == "CONTACT"));
        }
        p
    }

    /// The resource names the person had before this one (`previousResourceNames`).
    pub fn previous_resource_names(&self) -> &[String] {
        self.metadata
            .as_ref()
            .map_or(&[], |m| m.previous_resource_names.as_slice())
    }

    /// The value of a `clientData` key (the first, if Google holds duplicates).
    pub fn client_value(&self, key: &str) -> Option<&str> {
        self.client_data
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.as_str())
    }

    /// The resource names of the groups the person belongs to (`contactGroups/…`).
    pub fn group_resource_names(&self) -> Vec<String> {
        self.memberships
            .iter()
            .filter_map(|m| {
                let g = m.contact_group_membership.as_ref()?;
                g.contact_group_resource_name.clone().or_else(|| {
                    g.contact_group_id
                        .as_ref()
                        .map(|id| format!("contactGroups/{id}"))
                })
            })
            .collect()
    }

    pub fn in_group(&self, group_resource_name: &str) -> bool {
        self.group_resource_names()
            .iter()
            .any(|g| g == group_resource_name)
    }
}

/// `GroupClientData`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupClientData {
    pub key: String,
    pub value: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Google's `ContactGroup` resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactGroup {
    /// `contactGroups/{id}`.
    pub resource_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_name: Option<String>,
    /// `USER_CONTACT_GROUP` or `SYSTEM_CONTACT_GROUP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_count: Option<i64>,
    /// Up to `maxMembers` members, on `contactGroups.get`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_resource_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_data: Vec<GroupClientData>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Whether contacts can be added to the group `resource_name` of type `group_type`: a user's
/// own group, or the system groups `myContacts` and `starred` — Google's other system groups
/// are deprecated and "can only have contacts removed" (discovery
/// `contactGroups.members.modify`, `ContactGroupMembership.contactGroupResourceName`).
pub fn accepts_members(resource_name: &str, group_type: Option<&str>) -> bool {
    group_type == Some("USER_CONTACT_GROUP")
        || matches!(
            resource_name,
            "contactGroups/myContacts" | "contactGroups/starred"
        )
}

/// Parameters of `people.connections.list`. Google wants every parameter of a paged or
/// incremental list to repeat the first call's, so one value is kept for the whole read and
/// only the tokens change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListConnections {
    pub person_fields: Vec<PersonField>,
    /// 1..=1000 (Google's default 100).
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
    /// Ask for `nextSyncToken` on the last page (a full read that starts incremental ones).
    pub request_sync_token: bool,
    /// Only what changed since the token was given, deletions included
    /// ([`Person::is_deleted`]). An expired one answers
    /// [`GoogleError::is_full_sync_required`].
    pub sync_token: Option<String>,
}

/// One page of `people.connections.list`; `next_sync_token` comes on the last page only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionsPage {
    pub connections: Vec<Person>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
    pub total_people: Option<i64>,
    pub total_items: Option<i64>,
}

/// The `google.rpc.Status` of one entry of a batch answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RpcStatus {
    pub code: i32,
    pub message: Option<String>,
}

/// `PersonResponse`: one entry of a batch answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonResponse {
    pub requested_resource_name: Option<String>,
    pub http_status_code: Option<u16>,
    pub person: Option<Person>,
    pub status: Option<RpcStatus>,
}

/// The HTTP status and gRPC name of a `google.rpc.Code`.
fn rpc_code(code: i32) -> (u16, &'static str) {
    match code {
        0 => (200, "OK"),
        3 => (400, "INVALID_ARGUMENT"),
        9 => (400, "FAILED_PRECONDITION"),
        11 => (400, "OUT_OF_RANGE"),
        5 => (404, "NOT_FOUND"),
        6 => (409, "ALREADY_EXISTS"),
        10 => (409, "ABORTED"),
        7 => (403, "PERMISSION_DENIED"),
        8 => (429, "RESOURCE_EXHAUSTED"),
        16 => (401, "UNAUTHENTICATED"),
        4 => (504, "DEADLINE_EXCEEDED"),
        14 => (503, "UNAVAILABLE"),
        _ => (500, "INTERNAL"),
    }
}

impl PersonResponse {
    /// The entry's person, or its error sorted like any Google answer.
    pub fn into_result(self) -> Result<Person, GoogleError> {
        let (status, name) = match (&self.status, self.http_status_code) {
            (Some(s), _) if s.code != 0 => rpc_code(s.code),
            (_, Some(code)) => (code, ""),
            _ => (200, ""),
        };
        if (200..300).contains(&status) {
            return self.person.ok_or_else(|| GoogleError::Rejected {
                status,
                reason: "a batch entry without its person".into(),
            });
        }
        let message = self.status.and_then(|s| s.message).unwrap_or_default();
        let body = json!({"error": {"code": status, "status": name, "message": message}});
        Err(super::api::classify_status(
            status,
            body.to_string().as_bytes(),
        ))
    }
}

/// The answers of one `batchCreateContacts` request, in the order of the bodies: a created
/// person goes to the body whose `clientData` it carries; the rest keep their position.
fn match_created(
    chunk: &[Person],
    answers: Vec<PersonResponse>,
) -> Vec<Result<Person, GoogleError>> {
    let mut slots: Vec<Option<Result<Person, GoogleError>>> =
        (0..chunk.len()).map(|_| None).collect();
    let mut rest = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let at = answer.person.as_ref().and_then(|got| {
            (0..chunk.len()).find(|&j| slots[j].is_none() && carries_client_data(&chunk[j], got))
        });
        match at {
            Some(j) => slots[j] = Some(answer.into_result()),
            None => rest.push((i, answer)),
        }
    }
    for (i, answer) in rest {
        let j = if slots.get(i).is_some_and(Option::is_none) {
            i
        } else {
            slots.iter().position(Option::is_none).unwrap_or(i)
        };
        if let Some(slot) = slots.get_mut(j) {
            *slot = Some(answer.into_result());
        }
    }
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(bad_request("batchCreateContacts left a contact out"))))
        .collect()
}

/// What `members:modify` could not do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModifyMembersOutcome {
    /// No such contact (deleted meanwhile, or never there).
    pub not_found_resource_names: Vec<String>,
    /// Not removed: the group is the contact's last one (Google keeps every contact in at
    /// least one group).
    pub can_not_remove_last_contact_group_resource_names: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ContactGroupsPage {
    contact_groups: Vec<ContactGroup>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BatchCreated {
    created_people: Vec<PersonResponse>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BatchUpdated {
    update_result: BTreeMap<String, PersonResponse>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BatchGot {
    responses: Vec<PersonResponse>,
}

fn bad_request(reason: &str) -> GoogleError {
    GoogleError::Rejected {
        status: 0,
        reason: reason.to_owned(),
    }
}

/// `/v1/people/{id}` for `people/{id}` (the id percent-encoded: a resource name never
/// reaches the URL as a path).
fn person_path(resource_name: &str, action: &str) -> Result<String, GoogleError> {
    let id = resource_name
        .strip_prefix("people/")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad_request("not a person resource name (people/…)"))?;
    Ok(format!("/v1/people/{}{action}", encode_segment(id)))
}

/// `/v1/contactGroups/{id}` for `contactGroups/{id}`.
fn group_path(resource_name: &str, action: &str) -> Result<String, GoogleError> {
    let id = resource_name
        .strip_prefix("contactGroups/")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad_request("not a contact group resource name (contactGroups/…)"))?;
    Ok(format!("/v1/contactGroups/{}{action}", encode_segment(id)))
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, GoogleError> {
    serde_json::to_value(v).map_err(|e| bad_request(&format!("body not serializable: {e}")))
}

/// A create failed in a way that does not say whether Google made the contact (a timeout, a
/// lost connection, a 5xx): [`Google::find_created`] before anything is created again.
pub fn outcome_unknown(e: &GoogleError) -> bool {
    e.is_transient() && !refused_before_applied(e)
}

/// Whether `got` carries every `clientData` entry of `wanted` (a body that carries none
/// cannot be recognised).
fn carries_client_data(wanted: &Person, got: &Person) -> bool {
    !wanted.client_data.is_empty()
        && wanted
            .client_data
            .iter()
            .all(|c| got.client_value(&c.key) == Some(c.value.as_str()))
}

impl Google {
    /// One People call under the ambient retry policy, its answer read as `T`.
    async fn people_call<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, GoogleError> {
        self.people_send(token, method, path, query, body, true)
            .await
    }

    /// [`Self::people_call`]; a call that is not `idempotent` (a create) is retried only
    /// after an answer saying Google did nothing ([`refused_before_applied`]), never after a
    /// 5xx or a timeout, which may come after the write was done.
    async fn people_send<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<T, GoogleError> {
        let base = format!("{}{path}", self.endpoints.people_base);
        let url = reqwest::Url::parse_with_params(&base, query)
            .map_err(|_| bad_request("invalid Google URL in configuration"))?;
        let bytes = match body {
            Some(v) => Some(
                serde_json::to_vec(v)
                    .map_err(|e| bad_request(&format!("body not serializable: {e}")))?,
            ),
            None => None,
        };
        let answer = with_retry(&RetryPolicy::current(), || async {
            let sent = self
                .send_once(
                    token,
                    method.clone(),
                    url.as_str(),
                    &[],
                    bytes.as_deref().map(|b| ("application/json", b)),
                )
                .await;
            match sent {
                // Not retried: the outcome is the caller's to find out.
                Err(e) if !idempotent && outcome_unknown(&e) => Ok(Err(e)),
                other => other.map(Ok),
            }
        })
        .await??;
        parse_json(&answer)
    }

    /// After a create whose outcome is unknown: the contacts Google holds that carry each
    /// body's `clientData` (the CRM link), one entry per body, read with the `read` fields.
    /// A full list without a sync token (Google's propagation delay is documented for sync
    /// reads), pages of 1000, stopping once every body is found.
    pub async fn find_created(
        &self,
        token: &SecretString,
        persons: &[Person],
        read: &[PersonField],
    ) -> Result<Vec<Option<Person>>, GoogleError> {
        let mut out: Vec<Option<Person>> = vec![None; persons.len()];
        if persons.iter().all(|p| p.client_data.is_empty()) {
            return Ok(out);
        }
        let mut fields = read.to_vec();
        fields.push(PersonField::ClientData);
        let mut params = ListConnections {
            person_fields: fields,
            page_size: Some(1000),
            ..Default::default()
        };
        loop {
            let page = self.list_connections(token, &params).await?;
            for got in page.connections {
                let slot = persons
                    .iter()
                    .zip(out.iter())
                    .position(|(w, o)| o.is_none() && carries_client_data(w, &got));
                if let Some(i) = slot {
                    out[i] = Some(got);
                }
            }
            match page.next_page_token {
                Some(next) if out.iter().any(Option::is_none) => params.page_token = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// `people.connections.list` of `people/me`: one page. Loop on `next_page_token`; keep
    /// the last page's `next_sync_token` for the next incremental read.
    pub async fn list_connections(
        &self,
        token: &SecretString,
        params: &ListConnections,
    ) -> Result<ConnectionsPage, GoogleError> {
        let fields = field_mask(&params.person_fields);
        let size = params.page_size.map(|n| n.to_string());
        let mut query: Vec<(&str, &str)> =
            vec![("personFields", &fields), ("sources", READ_SOURCES)];
        if let Some(n) = &size {
            query.push(("pageSize", n));
        }
        if let Some(t) = &params.page_token {
            query.push(("pageToken", t));
        }
        if params.request_sync_token {
            query.push(("requestSyncToken", "true"));
        }
        if let Some(t) = &params.sync_token {
            query.push(("syncToken", t));
        }
        self.people_call(
            token,
            Method::GET,
            "/v1/people/me/connections",
            &query,
            None,
        )
        .await
    }

    /// `people.get`; `None` when there is no such contact (or it was deleted).
    pub async fn get_person(
        &self,
        token: &SecretString,
        resource_name: &str,
        fields: &[PersonField],
    ) -> Result<Option<Person>, GoogleError> {
        let path = person_path(resource_name, "")?;
        let mask = field_mask(fields);
        match self
            .people_call(
                token,
                Method::GET,
                &path,
                &[("personFields", &mask), ("sources", READ_SOURCES)],
                None,
            )
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `people.getBatchGet`, [`MAX_BATCH_CONTACTS`] names per request: one entry per name, in
    /// the order asked (a missing contact is an entry whose [`PersonResponse::into_result`]
    /// is [`GoogleError::NotFound`]).
    pub async fn batch_get(
        &self,
        token: &SecretString,
        resource_names: &[String],
        fields: &[PersonField],
    ) -> Result<Vec<PersonResponse>, GoogleError> {
        let mask = field_mask(fields);
        let mut out = Vec::with_capacity(resource_names.len());
        for chunk in resource_names.chunks(MAX_BATCH_CONTACTS) {
            let mut query: Vec<(&str, &str)> =
                vec![("personFields", &mask), ("sources", READ_SOURCES)];
            query.extend(chunk.iter().map(|rn| ("resourceNames", rn.as_str())));
            let got: BatchGot = self
                .people_call(token, Method::GET, "/v1/people:batchGet", &query, None)
                .await?;
            let mut by_name: BTreeMap<String, PersonResponse> = got
                .responses
                .into_iter()
                .filter_map(|r| Some((r.requested_resource_name.clone()?, r)))
                .collect();
            out.extend(chunk.iter().map(|rn| {
                by_name.remove(rn).unwrap_or_else(|| PersonResponse {
                    requested_resource_name: Some(rn.clone()),
                    http_status_code: Some(404),
                    ..Default::default()
                })
            }));
        }
        Ok(out)
    }

    /// `people.createContact`; answers the contact with the `read` fields. Never sent twice
    /// blindly: after a failure that leaves the outcome unknown, the contact Google may have
    /// made (found by the body's `clientData`) is the answer; only if none is found is the
    /// failure reported.
    pub async fn create_contact(
        &self,
        token: &SecretString,
        person: &Person,
        read: &[PersonField],
    ) -> Result<Person, GoogleError> {
        let mask = field_mask(read);
        let body = to_value(person)?;
        let sent = self
            .people_send(
                token,
                Method::POST,
                "/v1/people:createContact",
                &[("personFields", &mask), ("sources", READ_SOURCES)],
                Some(&body),
                false,
            )
            .await;
        match sent {
            Err(e) if outcome_unknown(&e) => {
                match self
                    .find_created(token, std::slice::from_ref(person), read)
                    .await
                {
                    Ok(found) => found.into_iter().flatten().next().ok_or(e),
                    Err(_) => Err(e),
                }
            }
            other => other,
        }
    }

    /// `people.batchCreateContacts`, [`MAX_BATCH_CONTACTS`] per request, sent one after the
    /// other. One result per person, in order: each created person is matched to its body by
    /// the `clientData` it carries (Google promises no order), by position otherwise. A
    /// request that fails as a whole gives its error to each of its persons, and the persons
    /// of the requests not sent yet get it too (sending stops there: the caller retries them
    /// later). Never sent twice blindly: after a failure that leaves the outcome unknown, the
    /// persons Google did make are found ([`Self::find_created`]) and answered as created.
    pub async fn batch_create_contacts(
        &self,
        token: &SecretString,
        persons: &[Person],
        read: &[PersonField],
    ) -> Vec<Result<Person, GoogleError>> {
        let mask = field_mask(read);
        let mut out: Vec<Result<Person, GoogleError>> = Vec::with_capacity(persons.len());
        for chunk in persons.chunks(MAX_BATCH_CONTACTS) {
            let sent = async {
                let contacts = chunk
                    .iter()
                    .map(|p| Ok(json!({ "contactPerson": to_value(p)? })))
                    .collect::<Result<Vec<Value>, GoogleError>>()?;
                let body =
                    json!({"contacts": contacts, "readMask": mask, "sources": [READ_SOURCES]});
                self.people_send::<BatchCreated>(
                    token,
                    Method::POST,
                    "/v1/people:batchCreateContacts",
                    &[],
                    Some(&body),
                    false,
                )
                .await
            }
            .await;
            match sent {
                Ok(got) if got.created_people.len() == chunk.len() => {
                    out.extend(match_created(chunk, got.created_people));
                }
                Err(e) if outcome_unknown(&e) => {
                    let found = self
                        .find_created(token, chunk, read)
                        .await
                        .unwrap_or_else(|_| vec![None; chunk.len()]);
                    out.extend(found.into_iter().map(|f| f.ok_or_else(|| e.clone())));
                    out.resize_with(persons.len(), || Err(e.clone()));
                    return out;
                }
                Ok(got) => {
                    let e = bad_request(&format!(
                        "batchCreateContacts answered {} entries for {}",
                        got.created_people.len(),
                        chunk.len()
                    ));
                    out.resize_with(persons.len(), || Err(e.clone()));
                    return out;
                }
                Err(e) => {
                    out.resize_with(persons.len(), || Err(e.clone()));
                    return out;
                }
            }
        }
        out
    }

    /// `people.updateContact`: replaces the `update` fields (a field left empty in `person`
    /// is cleared), nothing else. `person.etag` must be the etag last read: a stale one is
    /// [`GoogleError::is_etag_conflict`].
    pub async fn update_contact(
        &self,
        token: &SecretString,
        resource_name: &str,
        person: &Person,
        update: &[PersonField],
        read: &[PersonField],
    ) -> Result<Person, GoogleError> {
        let path = person_path(resource_name, ":updateContact")?;
        let update_mask = field_mask(update);
        let read_mask = field_mask(read);
        let mut body = to_value(person)?;
        body["resourceName"] = json!(resource_name);
        self.people_call(
            token,
            Method::PATCH,
            &path,
            &[
                ("updatePersonFields", &update_mask),
                ("personFields", &read_mask),
                ("sources", READ_SOURCES),
            ],
            Some(&body),
        )
        .await
    }

    /// `people.batchUpdateContacts`, [`MAX_BATCH_CONTACTS`] per request, sent one after the
    /// other: each person (keyed by resource name, carrying its etag) gets its `update` fields
    /// replaced. One result per resource name; like [`Self::batch_create_contacts`], a request
    /// that fails as a whole (Google checks every etag first: one stale etag fails its
    /// request with [`GoogleError::is_etag_conflict`]) gives its error to its persons and to
    /// those not sent yet.
    pub async fn batch_update_contacts(
        &self,
        token: &SecretString,
        persons: &BTreeMap<String, Person>,
        update: &[PersonField],
        read: &[PersonField],
    ) -> BTreeMap<String, Result<Person, GoogleError>> {
        let update_mask = field_mask(update);
        let read_mask = field_mask(read);
        let all: Vec<(&String, &Person)> = persons.iter().collect();
        let mut out = BTreeMap::new();
        let mut failed: Option<GoogleError> = None;
        for chunk in all.chunks(MAX_BATCH_CONTACTS) {
            if let Some(e) = &failed {
                out.extend(chunk.iter().map(|(rn, _)| ((*rn).clone(), Err(e.clone()))));
                continue;
            }
            let sent = async {
                let mut contacts = Map::new();
                for (rn, p) in chunk {
                    let mut v = to_value(*p)?;
                    v["resourceName"] = json!(rn);
                    contacts.insert((*rn).clone(), v);
                }
                let body = json!({
                    "contacts": contacts,
                    "updateMask": update_mask,
                    "readMask": read_mask,
                    "sources": [READ_SOURCES],
                });
                self.people_call::<BatchUpdated>(
                    token,
                    Method::POST,
                    "/v1/people:batchUpdateContacts",
                    &[],
                    Some(&body),
                )
                .await
            }
            .await;
            match sent {
                Ok(mut got) => {
                    for (rn, _) in chunk {
                        let result = match got.update_result.remove(*rn) {
                            Some(r) => r.into_result(),
                            None => Err(bad_request("batchUpdateContacts left a contact out")),
                        };
                        out.insert((*rn).clone(), result);
                    }
                }
                Err(e) => {
                    out.extend(chunk.iter().map(|(rn, _)| ((*rn).clone(), Err(e.clone()))));
                    failed = Some(e);
                }
            }
        }
        out
    }

    /// `people.deleteContact`. Already deleted (404) counts as deleted.
    pub async fn delete_contact(
        &self,
        token: &SecretString,
        resource_name: &str,
    ) -> Result<(), GoogleError> {
        let path = person_path(resource_name, ":deleteContact")?;
        match self
            .people_call::<Value>(token, Method::DELETE, &path, &[], None)
            .await
        {
            Ok(_) | Err(GoogleError::NotFound(_) | GoogleError::Gone(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `people.batchDeleteContacts`, [`MAX_BATCH_DELETE`] per request. Google refuses a whole
    /// request when one contact is already gone (404, as the sandbox answers; a 400 is
    /// treated alike, since Google does not document which); such a request is done again
    /// one contact at a time, so a retried delete still completes.
    pub async fn batch_delete_contacts(
        &self,
        token: &SecretString,
        resource_names: &[String],
    ) -> Result<(), GoogleError> {
        for chunk in resource_names.chunks(MAX_BATCH_DELETE) {
            let body = json!({ "resourceNames": chunk });
            match self
                .people_call::<Value>(
                    token,
                    Method::POST,
                    "/v1/people:batchDeleteContacts",
                    &[],
                    Some(&body),
                )
                .await
            {
                Ok(_) => {}
                Err(GoogleError::NotFound(_) | GoogleError::Rejected { status: 400, .. }) => {
                    for rn in chunk {
                        self.delete_contact(token, rn).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `contactGroups.list`: every group of the user (system groups included).
    pub async fn contact_groups(
        &self,
        token: &SecretString,
    ) -> Result<Vec<ContactGroup>, GoogleError> {
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("pageSize", "1000"),
                (
                    "groupFields",
                    "clientData,groupType,memberCount,metadata,name",
                ),
            ];
            if let Some(p) = &page {
                query.push(("pageToken", p));
            }
            let got: ContactGroupsPage = self
                .people_call(token, Method::GET, "/v1/contactGroups", &query, None)
                .await?;
            out.extend(got.contact_groups);
            match got.next_page_token {
                Some(next) => page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// `contactGroups.create`. A group of that name already exists →
    /// [`GoogleError::Conflict`] (find it with [`Self::contact_groups`]).
    pub async fn create_contact_group(
        &self,
        token: &SecretString,
        name: &str,
        client_data: &[GroupClientData],
    ) -> Result<ContactGroup, GoogleError> {
        let mut group = json!({ "name": name });
        if !client_data.is_empty() {
            group["clientData"] = to_value(&client_data)?;
        }
        // `memberCount` is not among the fields `contactGroups.create` may return (discovery:
        // CreateContactGroupRequest.readGroupFields); a new group has none anyway.
        let body = json!({
            "contactGroup": group,
            "readGroupFields": "clientData,groupType,metadata,name",
        });
        self.people_call(token, Method::POST, "/v1/contactGroups", &[], Some(&body))
            .await
    }

    /// `contactGroups.get` with up to `max_members` member resource names; `None` when
    /// there is no such group.
    pub async fn get_contact_group(
        &self,
        token: &SecretString,
        resource_name: &str,
        max_members: u32,
    ) -> Result<Option<ContactGroup>, GoogleError> {
        let path = group_path(resource_name, "")?;
        let max = max_members.to_string();
        let query = [
            ("maxMembers", max.as_str()),
            (
                "groupFields",
                "clientData,groupType,memberCount,metadata,name",
            ),
        ];
        match self
            .people_call(token, Method::GET, &path, &query, None)
            .await
        {
            Ok(g) => Ok(Some(g)),
            Err(GoogleError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `contactGroups.members.modify`, [`MAX_MEMBERS_MODIFY`] names (added plus removed) per
    /// request, sent one after the other; what could not be done is gathered.
    pub async fn modify_contact_group_members(
        &self,
        token: &SecretString,
        group_resource_name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<ModifyMembersOutcome, GoogleError> {
        let path = group_path(group_resource_name, "/members:modify")?;
        let changes: Vec<(bool, &String)> = add
            .iter()
            .map(|rn| (true, rn))
            .chain(remove.iter().map(|rn| (false, rn)))
            .collect();
        let mut out = ModifyMembersOutcome::default();
        for chunk in changes.chunks(MAX_MEMBERS_MODIFY) {
            let (adds, removes): (Vec<_>, Vec<_>) = chunk.iter().partition(|(a, _)| *a);
            let mut body = Map::new();
            if !adds.is_empty() {
                let names: Vec<&String> = adds.iter().map(|(_, rn)| *rn).collect();
                body.insert("resourceNamesToAdd".into(), json!(names));
            }
            if !removes.is_empty() {
                let names: Vec<&String> = removes.iter().map(|(_, rn)| *rn).collect();
                body.insert("resourceNamesToRemove".into(), json!(names));
            }
            let got: ModifyMembersOutcome = self
                .people_call(token, Method::POST, &path, &[], Some(&Value::Object(body)))
                .await?;
            out.not_found_resource_names
                .extend(got.not_found_resource_names);
            out.can_not_remove_last_contact_group_resource_names
                .extend(got.can_not_remove_last_contact_group_resource_names);
        }
        Ok(out)
    }

    /// Takes contacts out of a group, keeping each in Google: one whose last group it is
    /// (Google keeps every contact in at least one, and refuses with
    /// `canNotRemoveLastContactGroupResourceNames`) is filed in My Contacts first, then taken
    /// out. The outcome names what still could not be done.
    pub async fn remove_from_group(
        &self,
        token: &SecretString,
        group_resource_name: &str,
        names: &[String],
    ) -> Result<ModifyMembersOutcome, GoogleError> {
        let mut out = self
            .modify_contact_group_members(token, group_resource_name, &[], names)
            .await?;
        let last = std::mem::take(&mut out.can_not_remove_last_contact_group_resource_names);
        if last.is_empty() || group_resource_name == MY_CONTACTS {
            out.can_not_remove_last_contact_group_resource_names = last;
            return Ok(out);
        }
        self.modify_contact_group_members(token, MY_CONTACTS, &last, &[])
            .await?;
        let again = self
            .modify_contact_group_members(token, group_resource_name, &[], &last)
            .await?;
        out.not_found_resource_names
            .extend(again.not_found_resource_names);
        out.can_not_remove_last_contact_group_resource_names =
            again.can_not_remove_last_contact_group_resource_names;
        Ok(out)
    }
}

/// The "My Contacts" system group: every contact the user sees in Google Contacts.
pub const MY_CONTACTS: &str = "contactGroups/myContacts";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persons_round_trip_without_loss() {
        let google = json!({
            "resourceName": "people/c123",
            "etag": "%EgUBAgMuNxoEAQIFByIMSGRPRkFOR1R1b0k9",
            "metadata": {"sources": [{"type": "CONTACT", "id": "7b", "etag": "#abc",
                                      "updateTime": "2026-01-01T00:00:00.000Z"}],
                         "objectType": "PERSON", "previousResourceNames": ["people/c9"]},
            "names": [{"metadata": {"primary": true, "source": {"type": "CONTACT", "id": "7b"}},
                       "givenName": "Zoë", "familyName": "山田", "displayName": "Zoë 山田",
                       "phoneticGivenName": "zo-e"}],
            "emailAddresses": [{"value": "z@x.com", "type": "work", "formattedType": "Work",
                                "displayName": "Z"}],
            "phoneNumbers": [{"value": "+81 3-1234-5678", "type": "mobile",
                              "canonicalForm": "+81312345678"}],
            "organizations": [{"name": "ACME", "title": "CEO", "current": true}],
            "addresses": [{"city": "東京都", "countryCode": "JP", "poBox": "12"}],
            "biographies": [{"value": "notes", "contentType": "TEXT_PLAIN"}],
            "memberships": [{"contactGroupMembership": {"contactGroupId": "abc",
                             "contactGroupResourceName": "contactGroups/abc"}}],
            "clientData": [{"key": "crmId", "value": "42"}],
            "birthdays": [{"date": {"year": 1990, "month": 1, "day": 2}}],
            "urls": [{"value": "https://x.com"}]
        });
        let p: Person = serde_json::from_value(google.clone()).unwrap();
        assert_eq!(p.client_value("crmId"), Some("42"));
        assert_eq!(p.group_resource_names(), ["contactGroups/abc"]);
        assert!(p.in_group("contactGroups/abc") && !p.is_deleted());
        assert!(p.other.contains_key("birthdays") && p.other.contains_key("urls"));
        assert!(p.names[0].other.contains_key("phoneticGivenName"));
        assert_eq!(serde_json::to_value(&p).unwrap(), google);
        let deleted: Person = serde_json::from_value(json!({
            "resourceName": "people/c1", "etag": "%x",
            "metadata": {"deleted": true, "sources": [{"type": "CONTACT", "id": "1"}]}
        }))
        .unwrap();
        assert!(deleted.is_deleted());
        assert_eq!(serde_json::to_value(Person::default()).unwrap(), json!({}));
    }

    #[test]
    fn masks_are_canonical_and_paths_safe() {
        assert_eq!(
            field_mask(&[
                PersonField::Metadata,
                PersonField::Names,
                PersonField::Names,
                PersonField::ClientData
            ]),
            "names,clientData,metadata"
        );
        assert_eq!(
            person_path("people/c12", ":updateContact").unwrap(),
            "/v1/people/c12:updateContact"
        );
        assert_eq!(
            person_path("people/../x?y", "").unwrap(),
            "/v1/people/..%2Fx%3Fy"
        );
        assert!(person_path("contactGroups/x", "").is_err());
        assert!(person_path("people/", "").is_err());
        assert_eq!(
            group_path("contactGroups/myContacts", "/members:modify").unwrap(),
            "/v1/contactGroups/myContacts/members:modify"
        );
        assert!(group_path("people/c1", "").is_err());
    }

    #[test]
    fn created_people_are_matched_by_their_client_data_not_their_order() {
        let body = |id: &str| Person {
            client_data: vec![ClientData::new("crmId", id)],
            ..Default::default()
        };
        let made = |rn: &str, id: &str| PersonResponse {
            http_status_code: Some(200),
            person: Some(Person {
                resource_name: rn.into(),
                client_data: vec![ClientData::new("crmId", id)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let chunk = [body("a"), body("b"), Person::default()];
        let bare = PersonResponse {
            http_status_code: Some(200),
            person: Some(Person {
                resource_name: "people/c3".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = match_created(
            &chunk,
            vec![made("people/c2", "b"), bare, made("people/c1", "a")],
        );
        let names: Vec<String> = got.into_iter().map(|r| r.unwrap().resource_name).collect();
        assert_eq!(names, ["people/c1", "people/c2", "people/c3"]);
        assert!(carries_client_data(&body("a"), &chunk[0]));
        assert!(!carries_client_data(&Person::default(), &chunk[0]));
        assert!(outcome_unknown(&GoogleError::Transient(
            "HTTP 500 backendError".into()
        )));
        assert!(outcome_unknown(&GoogleError::Transient(
            "request failed: timed out".into()
        )));
        assert!(!outcome_unknown(&GoogleError::Transient(
            "HTTP 429 rateLimitExceeded".into()
        )));
        assert!(!outcome_unknown(&GoogleError::Transient(
            "HTTP 403 userRateLimitExceeded".into()
        )));
    }

    #[test]
    fn batch_entries_are_sorted_like_answers() {
        let ok: PersonResponse = serde_json::from_value(json!({
            "httpStatusCode": 200, "person": {"resourceName": "people/c1"}, "status": {}
        }))
        .unwrap();
        assert_eq!(ok.into_result().unwrap().resource_name, "people/c1");
        let missing: PersonResponse = serde_json::from_value(json!({
            "requestedResourceName": "people/c2", "httpStatusCode": 404,
            "status": {"code": 5, "message": "Requested entity was not found."}
        }))
        .unwrap();
        assert!(matches!(
            missing.into_result(),
            Err(GoogleError::NotFound(_))
        ));
        let stale: PersonResponse = serde_json::from_value(json!({
            "status": {"code": 9, "message": "Request person.etag is different than the current person.etag."}
        }))
        .unwrap();
        assert!(stale.into_result().unwrap_err().is_etag_conflict());
    }
}
