//! What every page for people shares: the security headers (strict CSP with hashes of the
//! inline stylesheet and scripts, no framing, no referrer, no caching), the one inline
//! stylesheet, and the browser's language ([`lang`]).
//!
//! Pages are server-rendered from askama templates in the function that serves them; this
//! module holds only what they have in common, so every page answers with the same headers.

pub mod lang;
pub mod post;
pub mod signed;

use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub use lang::Lang;

/// The one stylesheet of every page, inlined (no third-party or even first-party assets);
/// readable at 360 px wide, visible keyboard focus.
pub const STYLE: &str = r#"
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--accent:#0b57d0;--bad:#b3261e;--ok:#146c2e;--warn:#8a5300}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);margin:0;padding:1rem}
main{max-width:56rem;margin:1rem auto}
main.narrow{max-width:36rem;margin-top:3rem}
h1{font-size:1.5rem;margin:.2em 0 .6em}h2{font-size:1.2rem;margin:1.6em 0 .5em}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;border:1px solid var(--line)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.notice{border-left:4px solid var(--accent);padding:.5em 1em;background:#f3f6fc;margin:1em 0}
.notice.error{border-color:var(--bad);background:#fcf3f2}
.notice.success{border-color:var(--ok);background:#f2faf4}
.button,button{display:inline-block;font:inherit;padding:.5em 1.1em;border-radius:.4em;border:1px solid var(--accent);background:var(--accent);color:#fff;text-decoration:none;cursor:pointer}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
label{display:block;font-weight:600;margin:.8em 0 .2em}
input[type=text],input[type=password],input[type=url],input[type=number],select,textarea{font:inherit;width:100%;max-width:32rem;padding:.4em;border:1px solid var(--line);border-radius:.3em}
textarea{min-height:6em}
fieldset{border:1px solid var(--line);border-radius:.4em;margin:1em 0;padding:.5em 1em;min-width:0}
.table{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid var(--line);vertical-align:top}
@media (max-width:26rem){body{padding:.75rem}fieldset{padding:.5em .6em}th,td{padding:.35em .25em}}
nav{display:flex;flex-wrap:wrap;gap:.3em 1em;border-bottom:1px solid var(--line);padding-bottom:.5em}
nav form{margin-left:auto}
.muted{color:var(--muted)}code{overflow-wrap:anywhere}
.swatch{display:inline-block;width:1em;height:1em;border-radius:50%;vertical-align:middle;border:1px solid #0002}
.inline{display:inline}
.c1{background:#a4bdfc}.c2{background:#7ae7bf}.c3{background:#dbadff}.c4{background:#ff887c}.c5{background:#fbd75b}.c6{background:#ffb878}.c7{background:#46d6db}.c8{background:#e1e1e1}.c9{background:#5484ed}.c10{background:#51b749}.c11{background:#dc2127}
"#;

/// `sha256-…` of `text`, as a CSP source.
pub fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", B64.encode(Sha256::digest(text.as_bytes())))
}

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp_hash(STYLE));

/// The Content-Security-Policy of a page: nothing loads, only the inline stylesheet (by its
/// hash) and the given inline scripts (by theirs) run; forms post to this origin only.
pub fn content_security_policy(script_hashes: &[String]) -> String {
    content_security_policy_with(script_hashes, &[])
}

/// [`content_security_policy`] where forms may also lead to `form_targets` (origins): a
/// form post answered with a redirect elsewhere — the settings page's "Connect", which goes
/// on to Google's consent page — is checked against `form-action` too.
pub fn content_security_policy_with(script_hashes: &[String], form_targets: &[String]) -> String {
    let scripts = if script_hashes.is_empty() {
        String::new()
    } else {
        format!("; script-src {}", script_hashes.join(" "))
    };
    format!(
        "default-src 'none'; style-src {style}{scripts}; img-src 'self' data:; form-action 'self'{targets}; \
         frame-ancestors 'none'; base-uri 'none'",
        style = *STYLE_HASH,
        targets = form_targets
            .iter()
            .map(|t| format!(" {t}"))
            .collect::<String>(),
    )
}

/// An HTML answer with every page's security headers.
pub fn respond(status: StatusCode, body: String, script_hashes: &[String]) -> Response {
    let mut response = (status, Html(body)).into_response();
    secure(&mut response, script_hashes);
    response
}

/// Adds every page's security headers to a response (also a redirect's).
pub fn secure(response: &mut Response, script_hashes: &[String]) {
    secure_with(response, script_hashes, &[]);
}

/// [`secure`] with forms that may lead to `form_targets` too (see
/// [`content_security_policy_with`]).
pub fn secure_with(response: &mut Response, script_hashes: &[String], form_targets: &[String]) {
    let h = response.headers_mut();
    if let Ok(csp) =
        HeaderValue::from_str(&content_security_policy_with(script_hashes, form_targets))
    {
        h.insert(http::header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_the_hashed_stylesheet_and_scripts() {
        let csp = content_security_policy(&[csp_hash("x()")]);
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(csp.contains("script-src 'sha256-"));
        assert!(!csp.contains("unsafe"));
        assert!(!content_security_policy(&[]).contains("script-src"));
    }
}
