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

/// A display name (a tenant's, an API key's): trimmed, 1 to 200 characters, no control
/// characters.
pub fn name(field: &str, value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be 1 to 200 characters without control characters"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_bounded() {
        assert_eq!(name("name", "  Acme  ").unwrap(), "Acme");
        assert_eq!(name("name", &"é".repeat(200)).unwrap().chars().count(), 200);
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(201)] {
            let e = name("name", bad).unwrap_err();
            assert!(e.0.starts_with("name must be 1 to 200"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn an_email_has_one_at_and_a_dotted_domain() {
        assert!(email("login_hint", "ana@example.com").is_ok());
        for bad in [
            "ana",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(email("login_hint", bad).is_err(), "{bad:?}");
        }
    }
}
