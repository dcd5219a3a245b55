//! Which contact fields sync, and which way: a tenant's default and a user's overrides, as
//! stored in their settings (what the mapping does to a contact is
//! [`crate::contacts::normal`]'s).

use serde::{Deserialize, Serialize};

/// Which way a field syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    #[default]
    TwoWay,
    CrmToGoogle,
    GoogleToCrm,
    Off,
}

impl Dir {
    pub fn to_google(self) -> bool {
        matches!(self, Dir::TwoWay | Dir::CrmToGoogle)
    }

    pub fn to_crm(self) -> bool {
        matches!(self, Dir::TwoWay | Dir::GoogleToCrm)
    }
}

/// Which contact fields sync, and which way (tenant default, then the user's overrides:
/// `FieldMapping::overlay` in [`crate::contacts::normal`]). Every field syncs both ways
/// unless set otherwise. The CRM link and kind (`clientData`) always travel to Google; group
/// membership is the sync's own business, not a mapped field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMapping {
    // Keep in step with `FieldMapping::FIELDS`.
    pub names: Dir,
    pub emails: Dir,
    pub phones: Dir,
    pub organization: Dir,
    pub addresses: Dir,
    pub notes: Dir,
}

impl FieldMapping {
    /// The mapped fields as the API (and every page's form) names them, in order.
    pub const FIELDS: [&'static str; 6] = [
        "names",
        "emails",
        "phones",
        "organization",
        "addresses",
        "notes",
    ];
}

/// Overrides of a [`FieldMapping`]: the fields given replace the base's (a user's choice over
/// the tenant's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMappingPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Dir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Dir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Dir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Dir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Dir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Dir>,
}
