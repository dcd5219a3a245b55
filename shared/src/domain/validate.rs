//! What the product refuses in the records and settings it is given: each check answers an
//! [`Invalid`] naming the field, which the HTTP layer turns into a 422 `invalid_request`.

/// A value the product refuses, and why (the message names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A refusal saying why.
pub fn invalid(why: impl Into<String>) -> Invalid {
    Invalid(why.into())
}

/// An e-mail address as a login hint or identity: one `@`, no spaces, at most 254 characters.
pub fn email(field: &str, value: &str) -> Result<String, Invalid> {
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(format!("{field} must be an e-mail address")))
    }
}
