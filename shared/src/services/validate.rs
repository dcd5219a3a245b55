//! Input checks shared by several use cases.

use crate::http::ApiError;
use url::Url;

/// A URL the product may send a browser or a webhook to: https, or http on the loopback
/// interface (local development); no credentials, no fragment.
pub fn web_url(field: &str, value: &str) -> Result<Url, ApiError> {
    let bad = |why: &str| ApiError::invalid(format!("{field}: {why}"));
    if value.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    let url = Url::parse(value).map_err(|_| bad("not an absolute URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be https (http only on 127.0.0.1 or localhost)")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("needs a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(url)
}

/// Whether a URL points at this machine (the local server's own public URL, say).
pub fn is_loopback(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// A URL the product will POST to from its servers (the CRM webhook): a [`web_url`] that, in
/// a deployment that is not itself local, must not name this machine or a private network
/// by address (no requests to the runtime's or the VPC's internal services).
pub fn server_url(field: &str, value: &str, local_deployment: bool) -> Result<Url, ApiError> {
    let url = web_url(field, value)?;
    if local_deployment {
        return Ok(url);
    }
    let internal = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        None => true,
    };
    if internal {
        return Err(ApiError::invalid(format!(
            "{field}: must be a public address"
        )));
    }
    Ok(url)
}

/// Whether `candidate` is allowed by one of `allowed`: same scheme, host and port, and a path
/// equal to the allowed path or below it (`/settings` allows `/settings` and
/// `/settings/google`, not `/settingsX`). Query strings are free.
pub fn return_url_allowed(allowed: &[String], candidate: &Url) -> bool {
    allowed.iter().filter_map(|a| Url::parse(a).ok()).any(|a| {
        let same_origin = a.scheme() == candidate.scheme()
            && a.host_str() == candidate.host_str()
            && a.port_or_known_default() == candidate.port_or_known_default();
        let base = a.path();
        let path = candidate.path();
        let below = path == base
            || base.ends_with('/') && path.starts_with(base)
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'));
        same_origin && below
    })
}

/// An e-mail address as a login hint or identity: one `@`, no spaces, at most 254 characters.
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be an e-mail address"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls() {
        assert!(web_url("u", "https://crm.example.com/settings?x=1").is_ok());
        assert!(web_url("u", "http://127.0.0.1:3000/back").is_ok());
        for bad in [
            "http://crm.example.com/",
            "javascript:alert(1)",
            "https://user:pw@crm.example.com/",
            "https://crm.example.com/#frag",
            "/relative",
            "ftp://x.example/",
        ] {
            assert!(web_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn return_urls_are_allow_listed() {
        let allowed = vec!["https://crm.example.com/settings".to_owned()];
        let ok = |u: &str| return_url_allowed(&allowed, &Url::parse(u).unwrap());
        assert!(ok("https://crm.example.com/settings"));
        assert!(ok("https://crm.example.com/settings/google?tab=1"));
        assert!(!ok("https://crm.example.com/settingsX"));
        assert!(!ok("https://crm.example.com/other"));
        assert!(!ok("https://crm.example.com.evil.io/settings"));
        assert!(!ok("https://crm.example.com:8443/settings"));
        assert!(!ok("http://crm.example.com/settings"));
        assert!(!return_url_allowed(
            &[],
            &Url::parse("https://crm.example.com/settings").unwrap()
        ));
    }

    #[test]
    fn server_urls_stay_public_outside_local_runs() {
        for bad in [
            "http://127.0.0.1:9001/2018-06-01/runtime",
            "https://localhost/x",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://192.168.1.2/",
        ] {
            assert!(server_url("u", bad, false).is_err(), "{bad}");
        }
        assert!(server_url("u", "https://crm.example.com/hooks", false).is_ok());
        assert!(server_url("u", "http://127.0.0.1:3000/hooks", true).is_ok());
        assert!(is_loopback("http://127.0.0.1:8080") && !is_loopback("https://api.example.com"));
    }

    #[test]
    fn emails() {
        assert!(email("e", "a.b+c@example.co.uk").is_ok());
        for bad in ["", "no-at", "a@b", "a @b.com", "@b.com", "a@b@c.com"] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }
}
