//! Identifier newtypes. Each parses once and rejects anything that could break a key,
//! a path or a log line (`#` is the store's key separator and is never allowed).

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    pub kind: &'static str,
    pub reason: &'static str,
}

fn check(
    value: &str,
    kind: &'static str,
    max: usize,
    allowed: fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError {
            kind,
            reason: "must not be empty",
        });
    }
    if value.len() > max {
        return Err(IdError {
            kind,
            reason: "too long",
        });
    }
    if !value.chars().all(allowed) {
        return Err(IdError {
            kind,
            reason: "contains characters that are not allowed",
        });
    }
    Ok(())
}

fn slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Characters allowed in ids that come from the CRM (user ids, record ids).
fn external_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+' | '=')
}

fn ulid_char(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_uppercase()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A tenant: one CRM customer. Lowercase letters, digits and `-`, 3 to 63 characters,
    /// starting with a letter or digit (chosen by the operator or generated).
    TenantId,
    "tenant id",
    |v| {
        check(v, "tenant id", 63, slug_char)?;
        if v.len() < 3 || v.starts_with('-') {
            return Err(IdError {
                kind: "tenant id",
                reason: "must be 3 to 63 characters and start with a letter or digit",
            });
        }
        Ok(())
    }
);

id_type!(
    /// A CRM user, as the CRM names it (letters, digits, `-_.@+=`, at most 128).
    UserId,
    "user id",
    |v| check(v, "user id", 128, external_char)
);

id_type!(
    /// A CRM record (event, contact), as the CRM names it (letters, digits, `-_.@+=`, at most 256).
    CrmId,
    "CRM id",
    |v| check(v, "CRM id", 256, external_char)
);

id_type!(
    /// A connected Google account (ULID; kept across reconnects).
    AccountId,
    "account id",
    |v| {
        check(v, "account id", 26, ulid_char)?;
        if v.len() != 26 {
            return Err(IdError {
                kind: "account id",
                reason: "must be a 26-character ULID",
            });
        }
        Ok(())
    }
);

id_type!(
    /// An API key's public id (ULID), also embedded in the key itself.
    ApiKeyId,
    "API key id",
    |v| {
        check(v, "API key id", 26, ulid_char)?;
        if v.len() != 26 {
            return Err(IdError {
                kind: "API key id",
                reason: "must be a 26-character ULID",
            });
        }
        Ok(())
    }
);

impl TenantId {
    /// A fresh tenant id (`t-` and a lowercase ULID).
    pub fn generate() -> Self {
        Self(format!(
            "t-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ))
    }
}

impl CrmId {
    /// The placeholder id of a record born in Google that the CRM has not named yet: `~`
    /// and the Google id. `~` is outside the CRM id alphabet, so it never collides.
    pub fn google_born(google_id: &str) -> Self {
        Self(format!("~{google_id}"))
    }

    pub fn is_google_born(&self) -> bool {
        self.0.starts_with('~')
    }

    /// Reads a CRM id as stored, where the Google-born placeholder form is allowed too (the
    /// API never accepts it).
    pub fn deserialize_stored<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.strip_prefix('~') {
            Some(rest)
                if !rest.is_empty()
                    && rest.len() <= 1024
                    // Calendar event ids, People resource names (`people/c…`).
                    && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/') =>
            {
                Ok(Self(s))
            }
            _ => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl AccountId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

impl ApiKeyId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("acme-42").is_ok());
        assert!(TenantId::parse(&TenantId::generate().0).is_ok());
        for bad in ["", "ab", "Acme", "-acme", "ac#me", "a b c", &"x".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn external_ids_reject_key_separators_and_paths() {
        assert!(UserId::parse("jane.doe@example.com").is_ok());
        assert!(CrmId::parse("MTG-2024_0001").is_ok());
        for bad in ["", "a#b", "a/b", "a b", "é", "a\nb"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} accepted");
            assert!(CrmId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(UserId::parse(&"u".repeat(129)).is_err());
    }

    #[test]
    fn ulid_ids() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()), Ok(id));
        assert!(AccountId::parse("01ARZ3NDEKTSV4RRFFQ69G5FA").is_err());
        assert!(ApiKeyId::parse("01arz3ndektsv4rrffq69g5fav").is_err());
    }

    #[test]
    fn deserialize_validates() {
        let ok: Result<TenantId, _> = serde_json::from_str("\"acme\"");
        assert!(ok.is_ok());
        let bad: Result<TenantId, _> = serde_json::from_str("\"AC#ME\"");
        assert!(bad.is_err());
    }
}
