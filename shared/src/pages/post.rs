//! What a page's form post needs: the form's fields, a cookie of the request, and whether
//! the post came from this deployment's own pages.

/// A submitted `application/x-www-form-urlencoded` form.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a field, trimmed (`""` when absent).
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_owned()
    }

    /// Every value of a field (checkboxes of one name).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One cookie's value from the `Cookie` header(s); an empty value counts as none.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Whether a post comes from this deployment's pages: `Sec-Fetch-Site: same-origin` when the
/// browser sends it, else an `Origin` of this deployment when it sends one that is not
/// `null` (the pages' `no-referrer` policy makes browsers send `Origin: null` on their own
/// form posts). The CSRF token is checked on top of this.
pub fn same_origin(public_base_url: &str, headers: &http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return true;
    };
    if origin.as_bytes() == b"null" {
        return true;
    }
    let ours = url::Url::parse(public_base_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    origin.to_str().is_ok_and(|o| o == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_cookies_and_origins() {
        let f = Form::parse(b"a=1&b=x+y&a=2&c=%3Cz%3E");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.all("a"), vec!["1", "2"]);
        assert_eq!(f.text("b"), "x y");
        assert_eq!(f.text("c"), "<z>");
        assert_eq!(f.text("nope"), "");

        let mut h = http::HeaderMap::new();
        h.append(http::header::COOKIE, "x=1; cgs_s=abc".parse().unwrap());
        h.append(http::header::COOKIE, "empty=".parse().unwrap());
        assert_eq!(cookie(&h, "cgs_s"), Some("abc"));
        assert_eq!(cookie(&h, "empty"), None);
        assert_eq!(cookie(&h, "cgs"), None);

        let base = "https://sync.example.com";
        let mut h = http::HeaderMap::new();
        assert!(same_origin(base, &h));
        h.insert(
            http::header::ORIGIN,
            "https://evil.example".parse().unwrap(),
        );
        assert!(!same_origin(base, &h));
        h.insert(
            http::header::ORIGIN,
            "https://sync.example.com".parse().unwrap(),
        );
        assert!(same_origin(base, &h));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(base, &h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(base, &h));
    }
}
