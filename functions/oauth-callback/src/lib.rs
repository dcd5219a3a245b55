//! `oauth-callback`: where Google sends the user's browser back after consent
//! (`GET /oauth/callback`). It completes the connection, then:
//!
//! * with the CRM's return URL: `303 See Other` to it with the outcome in the query
//!   (`google_connect`, `user`, `missing`, `error`: the CRM's contract), the body being the
//!   same page as below with its "Back to the CRM" button, for a client that does not follow;
//! * without one: a page that says what happened and what to do, in the browser's language
//!   ([`texts`]: English, Vietnamese, Japanese, Russian, Czech), with every page's security
//!   headers ([`shared::pages`]).

pub mod settings;
pub mod settings_texts;
pub mod texts;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderValue, StatusCode};
use shared::app::AppState;
use shared::domain::Product;
use shared::pages::{self, Lang};
use shared::services::connect::{self, CallbackParams, ConnectError, Outcome};
use texts::{texts, Message, Texts};

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/callback", get(callback))
        .merge(settings::routes())
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

/// What a callback came to, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageKind {
    Connected,
    Partial(Vec<Product>),
    Denied,
    Expired,
    WrongAccount,
    EmailNotVerified,
    AccountInUse,
    ClientBroken,
    Failed(&'static str),
}

impl PageKind {
    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Connected { missing } if missing.is_empty() => PageKind::Connected,
            Outcome::Connected { missing } => PageKind::Partial(missing.clone()),
            Outcome::Denied => PageKind::Denied,
            Outcome::Failed(error) => Self::failed(*error),
        }
    }

    /// The page of a failed callback: its own for what the user can act on, else the
    /// generic failure with the error's code.
    fn failed(error: ConnectError) -> Self {
        match error {
            ConnectError::WrongAccount => PageKind::WrongAccount,
            ConnectError::EmailNotVerified => PageKind::EmailNotVerified,
            ConnectError::AccountInUse => PageKind::AccountInUse,
            ConnectError::GoogleClientInvalid => PageKind::ClientBroken,
            ConnectError::GoogleClientMissing
            | ConnectError::TenantNotFound
            | ConnectError::InsufficientScopes
            | ConnectError::IdentityUnavailable
            | ConnectError::TemporarilyUnavailable
            | ConnectError::Unavailable
            | ConnectError::Internal
            | ConnectError::GoogleError
            | ConnectError::MissingCode
            | ConnectError::TokenExchangeFailed
            | ConnectError::NoRefreshToken
            | ConnectError::InvalidState => PageKind::Failed(error.code()),
        }
    }

    /// The `data-outcome` of the page (stable, for tests and support).
    pub fn name(&self) -> &'static str {
        match self {
            PageKind::Connected => "connected",
            PageKind::Partial(_) => "partial",
            PageKind::Denied => "denied",
            PageKind::Expired => "expired",
            PageKind::WrongAccount => ConnectError::WrongAccount.code(),
            PageKind::EmailNotVerified => ConnectError::EmailNotVerified.code(),
            PageKind::AccountInUse => ConnectError::AccountInUse.code(),
            PageKind::ClientBroken => ConnectError::GoogleClientInvalid.code(),
            PageKind::Failed(_) => "error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            PageKind::Connected | PageKind::Partial(_) | PageKind::Denied => StatusCode::OK,
            PageKind::Expired => StatusCode::BAD_REQUEST,
            PageKind::WrongAccount | PageKind::EmailNotVerified => StatusCode::FORBIDDEN,
            PageKind::AccountInUse => StatusCode::CONFLICT,
            PageKind::ClientBroken | PageKind::Failed(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// What a CRM return URL's query says of a callback (`google_connect`, `missing`,
    /// `error`: the contract of [`connect::finish`]), as a page kind; `None` if it says
    /// nothing known.
    pub fn from_query(
        connect: Option<&str>,
        missing: Option<&str>,
        error: Option<&str>,
    ) -> Option<Self> {
        let outcome = match connect? {
            "connected" => Outcome::Connected {
                missing: Vec::new(),
            },
            "partial" => Outcome::Connected {
                missing: missing
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|p| match p {
                        "calendar" => Some(Product::Calendar),
                        "contacts" => Some(Product::Contacts),
                        "gmail" => Some(Product::Gmail),
                        _ => None,
                    })
                    .collect(),
            },
            "denied" => Outcome::Denied,
            // An unknown code is a generic failure, never echoed.
            "error" => match error.and_then(ConnectError::from_code) {
                Some(error) => Outcome::Failed(error),
                None => return Some(PageKind::Failed("error")),
            },
            _ => return None,
        };
        Some(PageKind::of(&outcome))
    }

    /// The page's tone: `ok`, `warn` or `bad`.
    pub fn tone(&self) -> &'static str {
        match self {
            PageKind::Connected => "ok",
            PageKind::Partial(_) | PageKind::Denied | PageKind::Expired => "warn",
            _ => "bad",
        }
    }

    /// The lines of a partial connection: what is off.
    pub fn missing_lines(&self, t: &'static Texts) -> Vec<&'static str> {
        match self {
            PageKind::Partial(products) => products
                .iter()
                .map(|p| match p {
                    Product::Calendar => t.missing[0],
                    Product::Contacts => t.missing[1],
                    Product::Gmail => t.missing[2],
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn message<'t>(&self, t: &'t Texts) -> &'t Message {
        match self {
            PageKind::Connected => &t.connected,
            PageKind::Partial(_) => &t.partial,
            PageKind::Denied => &t.denied,
            PageKind::Expired => &t.expired,
            PageKind::WrongAccount => &t.wrong_account,
            PageKind::EmailNotVerified => &t.email_not_verified,
            PageKind::AccountInUse => &t.account_in_use,
            PageKind::ClientBroken => &t.client_broken,
            PageKind::Failed(_) => &t.failed,
        }
    }
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage<'a> {
    lang: &'static str,
    style: &'static str,
    outcome: &'static str,
    tone: &'static str,
    texts: &'static Texts,
    message: &'static Message,
    missing: Vec<&'static str>,
    code: Option<&'a str>,
    back: Option<&'a str>,
}

/// The page for `kind` in `lang`, with a button to `back` (the CRM) if given.
pub fn render(kind: &PageKind, lang: Lang, back: Option<&str>) -> String {
    let t = texts(lang);
    let missing = kind.missing_lines(t);
    let page = ConnectPage {
        lang: lang.tag(),
        style: pages::STYLE,
        outcome: kind.name(),
        tone: kind.tone(),
        texts: t,
        message: kind.message(t),
        missing,
        code: match kind {
            PageKind::Failed(code) => Some(code),
            _ => None,
        },
        back,
    };
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the connect page did not render");
        format!("<!doctype html><title>{0}</title><p>{0}</p>", kind.name())
    })
}

/// A page that says one thing (`message`) and what to do, with no way back but the CRM's:
/// the settings pages' refusals (link expired, session ended, form refused).
pub(crate) fn message_page(
    status: StatusCode,
    lang: Lang,
    outcome: &'static str,
    message: &'static Message,
) -> Response {
    let page = ConnectPage {
        lang: lang.tag(),
        style: pages::STYLE,
        outcome,
        tone: "warn",
        texts: texts(lang),
        message,
        missing: Vec::new(),
        code: None,
        back: None,
    };
    let body = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a message page did not render");
        format!("<!doctype html><title>{outcome}</title><p>{outcome}</p>")
    });
    let mut response = pages::respond(status, body, &[]);
    language_headers(response.headers_mut(), lang);
    response
}

fn page(kind: &PageKind, lang: Lang, back: Option<&str>) -> Response {
    let mut response = pages::respond(kind.status(), render(kind, lang, back), &[]);
    language_headers(response.headers_mut(), lang);
    response
}

pub(crate) fn language_headers(h: &mut HeaderMap, lang: Lang) {
    h.insert(
        http::header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    h.insert(
        http::header::VARY,
        HeaderValue::from_static("Accept-Language"),
    );
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lang = Lang::of(&headers);
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let finished = match connect::finish(&app, params).await {
        Ok(f) => f,
        Err(connect::InvalidState) => return page(&PageKind::Expired, lang, None),
    };
    let kind = PageKind::of(&finished.outcome);
    match finished.redirect {
        Some(to) => match HeaderValue::from_str(&to) {
            Ok(location) => {
                let mut response = page(&kind, lang, Some(&to));
                *response.status_mut() = StatusCode::SEE_OTHER;
                response
                    .headers_mut()
                    .insert(http::header::LOCATION, location);
                response
            }
            Err(_) => page(&kind, lang, None),
        },
        None => page(&kind, lang, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_renders_in_every_language_with_its_lang_attribute() {
        let kinds = [
            PageKind::Connected,
            PageKind::Partial(vec![Product::Contacts, Product::Gmail]),
            PageKind::Denied,
            PageKind::Expired,
            PageKind::WrongAccount,
            PageKind::EmailNotVerified,
            PageKind::AccountInUse,
            PageKind::ClientBroken,
            PageKind::Failed("token_exchange_failed"),
        ];
        for lang in Lang::ALL {
            let t = texts(lang);
            for kind in &kinds {
                let html = render(kind, lang, Some("https://crm.example/back?a=1&b=<2>"));
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.tag())));
                let title = kind.message(t).title.replace('\'', "&#39;");
                assert!(html.contains(&title), "{lang:?} {kind:?}");
                assert!(html.contains(&format!("data-outcome=\"{}\"", kind.name())));
                // The return URL is an attribute value: escaped, never markup.
                assert!(
                    html.contains("href=\"https://crm.example/back?a=1&#38;b=&#60;2&#62;\""),
                    "{html}"
                );
                assert!(html.contains(t.back));
            }
            let partial = render(&kinds[1], lang, None);
            assert!(partial.contains(t.missing[1]) && partial.contains(t.missing[2]));
            assert!(!partial.contains(t.missing[0]));
            assert!(partial.contains(t.close));
        }
    }

    #[test]
    fn the_return_query_of_a_callback_reads_back_as_its_page() {
        let q = |c, m, e| PageKind::from_query(c, m, e);
        assert_eq!(q(Some("connected"), None, None), Some(PageKind::Connected));
        assert_eq!(
            q(Some("partial"), Some("contacts,bogus,gmail"), None),
            Some(PageKind::Partial(vec![Product::Contacts, Product::Gmail]))
        );
        assert_eq!(q(Some("denied"), None, None), Some(PageKind::Denied));
        assert_eq!(
            q(Some("error"), None, Some("google_account_in_use")),
            Some(PageKind::AccountInUse)
        );
        assert_eq!(
            q(Some("error"), None, Some("google_client_invalid")),
            Some(PageKind::ClientBroken)
        );
        assert_eq!(
            q(Some("error"), None, Some("token_exchange_failed")),
            Some(PageKind::Failed("token_exchange_failed"))
        );
        // An unknown code is a generic failure, never echoed.
        assert_eq!(
            q(Some("error"), None, Some("<script>")),
            Some(PageKind::Failed("error"))
        );
        assert_eq!(q(Some("nope"), None, None), None);
        assert_eq!(q(None, None, None), None);
    }

    #[test]
    fn every_language_has_its_own_settings_words() {
        let en = settings_texts::settings_texts(Lang::En);
        for lang in Lang::ALL.into_iter().filter(|l| *l != Lang::En) {
            let t = settings_texts::settings_texts(lang);
            for (a, b) in [
                (t.title, en.title),
                (t.save, en.save),
                (t.connect, en.connect),
                (t.disconnect, en.disconnect),
                (t.link_expired.title, en.link_expired.title),
                (t.session_ended.title, en.session_ended.title),
                (t.refused.title, en.refused.title),
                (t.field_names[5], en.field_names[5]),
            ] {
                assert!(!a.is_empty() && a != b, "{lang:?}: {a:?}");
            }
        }
    }

    #[test]
    fn the_stylesheet_is_the_hashed_one() {
        let html = render(&PageKind::Connected, Lang::En, None);
        assert!(html.contains(&format!("<style>{}</style>", pages::STYLE)));
    }
}
