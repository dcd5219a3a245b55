//! The hosted user settings pages under `/settings`, opened from the signed link the CRM
//! asks for (`POST /v1/users/{user}/settings-link`, [`settings_link`]): connect or reconnect
//! the Google account (through the normal connect flow), pick the calendars, direction,
//! sync-since date, contact group and contact field mapping, save, disconnect.
//!
//! * `GET /settings/open?link=…`: checks the link, sets the session cookie and answers with
//!   the settings page itself (no redirect: the link often comes from another site, and a
//!   `SameSite=Strict` cookie set on that navigation is not sent on a redirect it starts);
//!   a small hashed script then puts `/settings` in the address bar, so the link is not
//!   kept in the history and a reload carries the cookie.
//! * `GET|POST /settings`: the page; save (`accounts::patch`, the service of `PATCH
//!   /v1/users/{user}/google`, with a patch deserialised as that JSON body is).
//! * `POST /settings/connect`: `connect::start_from_page`, the service of `POST
//!   /v1/users/{user}/google/connect`; Google's consent comes back, via the callback, to a
//!   fresh settings link, which opens a session again.
//! * `POST /settings/disconnect`: `accounts::disconnect`, as `DELETE /v1/users/{user}/google`.
//!
//! Every post needs the session's CSRF token and, when the browser says, a same-origin
//! source. The tenant and user come from the session only.

use crate::settings_texts::{settings_texts, SettingsTexts};
use crate::texts::texts;
use crate::{language_headers, message_page, PageKind};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared::app::{App, AppState};
use shared::domain::{Account, AccountStatus, Product, Products, Tenant};
use shared::google::api::CalendarEntry;
use shared::http::ApiError;
use shared::pages::post::{same_origin, Form};
use shared::pages::{self, Lang};
use shared::services::accounts::{self, ContactGroupInfo};
use shared::services::settings_link::{self, Refused, UserSession};
use shared::services::{connect, tenants};
use std::sync::LazyLock;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(page).post(save))
        .route("/settings/open", get(open))
        .route("/settings/connect", post(connect_google))
        .route("/settings/disconnect", post(disconnect))
}

/// After opening a link: the address bar shows `/settings`, not the link.
const CLEAN_URL_SCRIPT: &str = "history.replaceState(null,'','/settings');";
static CLEAN_URL_HASH: LazyLock<String> = LazyLock::new(|| pages::csp_hash(CLEAN_URL_SCRIPT));

/// Contact fields, in the API's names, in the order the table shows them.
const FIELDS: [&str; 6] = shared::contacts::normal::FieldMapping::FIELDS;
const FIELD_DIRS: [&str; 4] = ["two_way", "crm_to_google", "google_to_crm", "off"];
const DIRECTIONS: [&str; 3] = ["two_way", "crm_to_google", "google_to_crm"];

struct Opt {
    value: String,
    label: String,
    on: bool,
}

struct FieldRow {
    key: &'static str,
    label: &'static str,
    options: Vec<Opt>,
}

/// What a page says on top.
struct Notice {
    tone: &'static str,
    title: &'static str,
    what: &'static str,
    lines: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    lang: &'static str,
    style: &'static str,
    t: &'static SettingsTexts,
    csrf: String,
    /// `not_connected`, `needs_reauth`, `active` or `paused` (for tests and support).
    state: &'static str,
    email: Option<String>,
    status_note: Option<&'static str>,
    notice: Option<Notice>,
    error: Option<String>,
    /// "Back to the CRM" (after a save or a disconnect, when the CRM gave a return URL).
    back: Option<String>,
    /// The connect (or reconnect) form's products.
    products: Vec<Opt>,
    reconnect: bool,
    form: Option<FormView>,
    script: Option<&'static str>,
}

struct FormView {
    directions: Vec<Opt>,
    sync_since: String,
    /// With the calendar product: the user's calendars (`None`: Google could not list them).
    calendar: Option<Option<CalendarPart>>,
    /// With the contacts product.
    contacts: Option<ContactsPart>,
}

struct CalendarPart {
    main: Vec<Opt>,
    monitored: Vec<Opt>,
}

struct ContactsPart {
    /// `None`: Google could not list them.
    groups: Option<Vec<Opt>>,
    dirs: [&'static str; 4],
    fields: Vec<FieldRow>,
}

/// The choices a form shows: stored, or as submitted.
struct Chosen {
    main: String,
    monitored: Vec<String>,
    direction: String,
    sync_since: String,
    group: String,
    fields: Vec<String>,
}

fn text_of(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_default()
}

impl Chosen {
    /// What is stored, with the tenant's defaults where the user chose nothing yet.
    fn stored(a: &Account, tenant: &Tenant, now: time::OffsetDateTime) -> Self {
        let d = &tenant.settings.defaults;
        let mapping = match &a.settings.contact_fields {
            Some(p) => d.contact_fields.overlay(p),
            None => d.contact_fields,
        };
        let mapping = serde_json::to_value(mapping).unwrap_or(Value::Null);
        let since = a
            .settings
            .sync_since
            .unwrap_or(now - time::Duration::days(i64::from(d.sync_since_days)));
        Self {
            main: a
                .settings
                .main_calendar
                .clone()
                .unwrap_or_else(|| "primary".into()),
            monitored: a.settings.monitored_calendars.clone(),
            direction: text_of(&json!(a.settings.direction.unwrap_or(d.direction))),
            sync_since: since.date().to_string(),
            group: a.settings.contact_group.clone().unwrap_or_default(),
            fields: FIELDS.iter().map(|f| text_of(&mapping[f])).collect(),
        }
    }

    fn submitted(form: &Form) -> Self {
        Self {
            main: form.text("main_calendar"),
            monitored: form
                .all("monitored")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            direction: form.text("direction"),
            sync_since: form.text("sync_since"),
            group: form.text("contact_group"),
            fields: FIELDS
                .iter()
                .map(|f| form.text(&format!("field.{f}")))
                .collect(),
        }
    }
}

fn is(entry: &CalendarEntry, id: &str) -> bool {
    entry.id == id || (id == "primary" && entry.primary == Some(true))
}

fn calendar_part(t: &SettingsTexts, list: &[CalendarEntry], c: &Chosen) -> CalendarPart {
    let label = |e: &CalendarEntry| {
        let name = e.summary.clone().unwrap_or_else(|| e.id.clone());
        if e.primary == Some(true) {
            format!("{name} {}", t.primary)
        } else {
            name
        }
    };
    CalendarPart {
        main: list
            .iter()
            .filter(|e| e.writable())
            .map(|e| Opt {
                value: e.id.clone(),
                label: label(e),
                on: is(e, &c.main),
            })
            .collect(),
        // Free/busy-only calendars list no titles or guests: nothing to read into the CRM.
        monitored: list
            .iter()
            .filter(|e| e.access_role != "freeBusyReader")
            .map(|e| Opt {
                value: e.id.clone(),
                label: label(e),
                on: c.monitored.iter().any(|m| is(e, m)),
            })
            .collect(),
    }
}

fn group_options(
    t: &SettingsTexts,
    tenant: &Tenant,
    groups: &[ContactGroupInfo],
    c: &Chosen,
) -> Vec<Opt> {
    let mut options = vec![Opt {
        value: String::new(),
        label: format!(
            "{} {}",
            t.crm_group, tenant.settings.defaults.contact_group_name
        ),
        on: c.group.is_empty(),
    }];
    options.extend(
        groups
            .iter()
            .filter(|g| {
                shared::google::people::accepts_members(&g.resource_name, g.group_type.as_deref())
            })
            .map(|g| Opt {
                value: g.resource_name.clone(),
                label: g
                    .formatted_name
                    .clone()
                    .or_else(|| g.name.clone())
                    .unwrap_or_else(|| g.resource_name.clone()),
                on: g.resource_name == c.group,
            }),
    );
    options
}

fn state_of(a: Option<&Account>) -> &'static str {
    match a.map(|a| a.status) {
        None | Some(AccountStatus::Disconnected) => "not_connected",
        Some(AccountStatus::NeedsReauth) => "needs_reauth",
        Some(AccountStatus::Active) => "active",
        Some(AccountStatus::Paused) => "paused",
    }
}

/// Everything a render needs besides the session.
struct Render {
    status: StatusCode,
    notice: Option<Notice>,
    error: Option<String>,
    back: Option<String>,
    /// The submitted choices, to show again after a refusal.
    chosen: Option<Chosen>,
    clean_url: bool,
}

impl Render {
    fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            notice: None,
            error: None,
            back: None,
            chosen: None,
            clean_url: false,
        }
    }
}

fn lang_of(s: &UserSession, headers: &HeaderMap) -> Lang {
    s.lang.unwrap_or_else(|| Lang::of(headers))
}

async fn account_of(app: &App, s: &UserSession) -> Result<Option<Account>, ApiError> {
    match accounts::get(app, &s.tenant, &s.user).await {
        Ok(a) => Ok(Some(a)),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// The origin of Google's consent page: the connect form's redirect goes there.
fn google_origin(app: &App) -> Vec<String> {
    url::Url::parse(&app.config.google.auth_url)
        .map(|u| vec![u.origin().ascii_serialization()])
        .unwrap_or_default()
}

async fn render(app: &App, s: &UserSession, lang: Lang, r: Render) -> Response {
    let t = settings_texts(lang);
    let tenant = match tenants::get(app, &s.tenant).await {
        Ok(t) => t,
        Err(e) => return failure(lang, e),
    };
    let account = match account_of(app, s).await {
        Ok(a) => a,
        Err(e) => return failure(lang, e),
    };
    let state = state_of(account.as_ref());
    let connected = account
        .as_ref()
        .filter(|a| a.status != AccountStatus::Disconnected);
    let form = match connected {
        Some(a) if matches!(a.status, AccountStatus::Active | AccountStatus::Paused) => {
            let chosen = r
                .chosen
                .unwrap_or_else(|| Chosen::stored(a, &tenant, app.clock.now()));
            Some(form_view(app, s, t, &tenant, a, &chosen).await)
        }
        _ => None,
    };
    let page = SettingsPage {
        lang: lang.tag(),
        style: pages::STYLE,
        t,
        csrf: s.csrf.clone(),
        state,
        email: connected.and_then(|a| a.google_email.clone()),
        status_note: match state {
            "not_connected" => Some(t.not_connected),
            "needs_reauth" => Some(t.needs_reauth),
            "paused" => Some(t.paused),
            _ => None,
        },
        notice: r.notice,
        error: r.error,
        back: r.back,
        products: product_options(t, &tenant, connected),
        reconnect: connected.is_some(),
        form,
        script: r.clean_url.then_some(CLEAN_URL_SCRIPT),
    };
    respond(app, lang, &page, r.status, r.clean_url)
}

/// The products the connect form offers: the tenant's, those of the connection ticked.
fn product_options(t: &SettingsTexts, tenant: &Tenant, connected: Option<&Account>) -> Vec<Opt> {
    tenant
        .settings
        .products_allowed
        .iter()
        .map(|p| Opt {
            value: text_of(&json!(p)),
            label: t.product_names[match p {
                Product::Calendar => 0,
                Product::Contacts => 1,
                Product::Gmail => 2,
            }]
            .to_owned(),
            on: connected.is_none_or(|a| a.products.contains(p)),
        })
        .collect()
}

/// The settings form of a connected account, with what is `chosen`; a part Google could not
/// list (calendars, groups) is shown as such.
async fn form_view(
    app: &App,
    s: &UserSession,
    t: &'static SettingsTexts,
    tenant: &Tenant,
    a: &Account,
    chosen: &Chosen,
) -> FormView {
    let calendar = match a.products.contains(Product::Calendar) {
        true => Some(match accounts::calendars(app, &s.tenant, &s.user).await {
            Ok(list) => Some(calendar_part(t, &list, chosen)),
            Err(e) => {
                tracing::warn!(tenant = %s.tenant, user = %s.user, error = %e.message, "settings page: calendars not listed");
                None
            }
        }),
        false => None,
    };
    let contacts = match a.products.contains(Product::Contacts) {
        true => {
            let groups = match accounts::contact_groups(app, &s.tenant, &s.user).await {
                Ok(list) => Some(group_options(t, tenant, &list, chosen)),
                Err(e) => {
                    tracing::warn!(tenant = %s.tenant, user = %s.user, error = %e.message, "settings page: contact groups not listed");
                    None
                }
            };
            Some(contacts_part(t, groups, chosen))
        }
        false => None,
    };
    FormView {
        directions: DIRECTIONS
            .iter()
            .enumerate()
            .map(|(i, d)| Opt {
                value: (*d).to_owned(),
                label: t.directions[i].to_owned(),
                on: chosen.direction == *d,
            })
            .collect(),
        sync_since: chosen.sync_since.clone(),
        calendar,
        contacts,
    }
}

/// The contact group and the field × direction mapping.
fn contacts_part(
    t: &'static SettingsTexts,
    groups: Option<Vec<Opt>>,
    chosen: &Chosen,
) -> ContactsPart {
    ContactsPart {
        groups,
        dirs: t.field_dirs,
        fields: FIELDS
            .iter()
            .enumerate()
            .map(|(i, key)| FieldRow {
                key,
                label: t.field_names[i],
                options: FIELD_DIRS
                    .iter()
                    .enumerate()
                    .map(|(j, d)| Opt {
                        value: (*d).to_owned(),
                        label: t.field_dirs[j].to_owned(),
                        on: chosen.fields[i] == *d,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The rendered page with its security and language headers (the address-cleaning script
/// allowed by its hash when `clean_url`).
fn respond(
    app: &App,
    lang: Lang,
    page: &SettingsPage,
    status: StatusCode,
    clean_url: bool,
) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "the settings page did not render");
            return failure(
                lang,
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", ""),
            );
        }
    };
    let scripts: Vec<String> = if clean_url {
        vec![CLEAN_URL_HASH.clone()]
    } else {
        Vec::new()
    };
    let mut response = (status, axum::response::Html(body)).into_response();
    pages::secure_with(&mut response, &scripts, &google_origin(app));
    language_headers(response.headers_mut(), lang);
    response
}

/// A page for a failure of ours (the store, the secrets): what to do, no detail.
fn failure(lang: Lang, e: ApiError) -> Response {
    if e.status.is_server_error() {
        tracing::error!(code = e.code, "settings page failed");
    }
    let t = texts(lang);
    let mut r = message_page(
        if e.status.is_server_error() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            e.status
        },
        lang,
        "error",
        &t.failed,
    );
    r.headers_mut().remove(http::header::SET_COOKIE);
    r
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    r
}

fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    pages::secure(&mut r, &[]);
    r
}

/// The answer to a request without a (valid) session: the session has ended; the CRM opens
/// a new one. The cookie is cleared if there was one.
fn no_session(app: &App, lang: Lang, why: Refused) -> Response {
    let r = message_page(
        StatusCode::UNAUTHORIZED,
        lang,
        "session_ended",
        &settings_texts(lang).session_ended,
    );
    match why {
        Refused::Missing => r,
        _ => with_cookie(r, &settings_link::set_cookie(app, None)),
    }
}

fn refused(lang: Lang) -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        lang,
        "refused",
        &settings_texts(lang).refused,
    )
}

#[derive(Deserialize, Default)]
struct OpenQuery {
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    google_connect: Option<String>,
    #[serde(default)]
    missing: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn open(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OpenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let browser = Lang::of(&headers);
    let (cookie, s) = match settings_link::open(&app, q.link.as_deref().unwrap_or("")).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(Refused::Expired)) => {
            let t = settings_texts(browser);
            return message_page(StatusCode::GONE, browser, "link_expired", &t.link_expired);
        }
        Ok(Err(_)) => {
            let t = settings_texts(browser);
            return message_page(
                StatusCode::BAD_REQUEST,
                browser,
                "link_invalid",
                &t.link_invalid,
            );
        }
        Err(e) => return failure(browser, e),
    };
    let lang = lang_of(&s, &headers);
    // Back from Google's consent (the connect flow's return query): what happened.
    let notice = PageKind::from_query(
        q.google_connect.as_deref(),
        q.missing.as_deref(),
        q.error.as_deref(),
    )
    .map(|kind| {
        let t = texts(lang);
        let m = kind.message(t);
        Notice {
            tone: kind.tone(),
            title: m.title,
            what: m.what,
            lines: kind.missing_lines(t),
        }
    });
    let r = Render {
        notice,
        clean_url: true,
        ..Render::ok()
    };
    with_cookie(
        render(&app, &s, lang, r).await,
        &settings_link::set_cookie(&app, Some(&cookie)),
    )
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The CRM's return URL with what was done (`google_settings=saved|disconnected`, `user`).
fn back_to_crm(s: &UserSession, done: &str) -> Option<String> {
    let mut url = url::Url::parse(s.return_url.as_deref()?).ok()?;
    url.query_pairs_mut()
        .append_pair("google_settings", done)
        .append_pair("user", s.user.as_str());
    Some(url.to_string())
}

async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match settings_link::read(&app, &headers).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return no_session(&app, Lang::of(&headers), why),
        Err(e) => return failure(Lang::of(&headers), e),
    };
    let lang = lang_of(&s, &headers);
    let t = settings_texts(lang);
    let done = query.ok().and_then(|Query(q)| q.done);
    let (notice, back) = match done.as_deref() {
        Some("saved") => (
            Some(Notice {
                tone: "ok",
                title: t.saved,
                what: "",
                lines: Vec::new(),
            }),
            back_to_crm(&s, "saved"),
        ),
        Some("disconnected") => (
            Some(Notice {
                tone: "ok",
                title: t.disconnected,
                what: "",
                lines: Vec::new(),
            }),
            back_to_crm(&s, "disconnected"),
        ),
        _ => (None, None),
    };
    let r = Render {
        notice,
        back,
        ..Render::ok()
    };
    render(&app, &s, lang, r).await
}

/// A form post's session: from this deployment's pages, signed in, with this session's
/// CSRF token.
async fn posted(app: &App, headers: &HeaderMap, form: &Form) -> Result<UserSession, Response> {
    let browser = Lang::of(headers);
    if !same_origin(&app.config.public_base_url, headers) {
        return Err(refused(browser));
    }
    let s = match settings_link::read(app, headers).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return Err(no_session(app, browser, why)),
        Err(e) => return Err(failure(browser, e)),
    };
    if !s.csrf_ok(form.get("csrf")) {
        tracing::warn!(tenant = %s.tenant, user = %s.user, "settings post refused: CSRF token missing or wrong");
        return Err(refused(lang_of(&s, headers)));
    }
    Ok(s)
}

/// The API's account patch from the submitted form (deserialised as the JSON body of
/// `PATCH /v1/users/{user}/google` is, so the same validation applies). Only the parts the
/// page showed are sent: a part Google could not list is left as it is.
fn account_patch(form: &Form) -> Result<accounts::AccountPatch, String> {
    let mut p = Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_owned(), v);
    };
    let direction = form.text("direction");
    if !direction.is_empty() {
        put("direction", json!(direction));
    }
    let since = form.text("sync_since");
    if !since.is_empty() {
        put("sync_since", json!(since));
    }
    if form.get("calendars_shown") == Some("1") {
        let main = form.text("main_calendar");
        if !main.is_empty() {
            put("main_calendar", json!(main));
        }
        put("monitored_calendars", json!(form.all("monitored")));
    }
    if form.get("groups_shown") == Some("1") {
        let group = form.text("contact_group");
        if !group.is_empty() {
            put("contact_group", json!(group));
        }
    }
    if form.get("fields_shown") == Some("1") {
        let mut fields = Map::new();
        for f in FIELDS {
            let d = form.text(&format!("field.{f}"));
            if !d.is_empty() {
                fields.insert(f.to_owned(), json!(d));
            }
        }
        put("contact_fields", Value::Object(fields));
    }
    serde_json::from_value(Value::Object(p)).map_err(|_| {
        "one of the choices is not a known value; reload the page and try again".into()
    })
}

async fn save(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let s = match posted(&app, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = match account_patch(&form) {
        Ok(patch) => accounts::patch(&app, &s.tenant, &s.user, patch)
            .await
            .map_err(|e| (e.status, e.message)),
        Err(msg) => Err((StatusCode::UNPROCESSABLE_ENTITY, msg)),
    };
    match result {
        Ok(_) => {
            tracing::info!(tenant = %s.tenant, user = %s.user, "settings saved on the settings page");
            see_other("/settings?done=saved")
        }
        Err((status, message)) => {
            let lang = lang_of(&s, &headers);
            let r = Render {
                status: if status.is_server_error() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    status
                },
                error: Some(message),
                chosen: Some(Chosen::submitted(&form)),
                ..Render::ok()
            };
            render(&app, &s, lang, r).await
        }
    }
}

async fn connect_google(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let s = match posted(&app, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = lang_of(&s, &headers);
    let refused_with = |e: ApiError| Render {
        status: if e.status.is_server_error() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            e.status
        },
        error: Some(format!(
            "{} {}",
            settings_texts(lang).connect_failed,
            e.message
        )),
        ..Render::ok()
    };
    let products: Products = match serde_json::from_value(json!(form.all("products"))) {
        Ok(p) => p,
        Err(_) => {
            let e = ApiError::invalid("one of the products is not a known value; reload the page");
            return render(&app, &s, lang, refused_with(e)).await;
        }
    };
    // The account to reconnect is the one connected (another needs a disconnect first), else
    // the one the CRM named.
    let connected_email = match account_of(&app, &s).await {
        Ok(a) => a
            .filter(|a| a.status != AccountStatus::Disconnected)
            .and_then(|a| a.google_email),
        Err(e) => return failure(lang, e),
    };
    let hint = connected_email.or_else(|| s.login_hint.clone());
    let back = match settings_link::relink(&app, &s).await {
        Ok(b) => b,
        Err(e) => return failure(lang, e),
    };
    match connect::start_from_page(&app, &s.tenant, &s.user, products, hint, back).await {
        Ok(link) => see_other(&link.authorization_url),
        Err(e) => render(&app, &s, lang, refused_with(e)).await,
    }
}

async fn disconnect(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let s = match posted(&app, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match accounts::disconnect(&app, &s.tenant, &s.user, true).await {
        Ok(_) => {
            tracing::info!(tenant = %s.tenant, user = %s.user, "disconnected on the settings page");
            see_other("/settings?done=disconnected")
        }
        Err(e) => {
            let lang = lang_of(&s, &headers);
            let r = Render {
                status: if e.status.is_server_error() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    e.status
                },
                error: Some(e.message),
                ..Render::ok()
            };
            render(&app, &s, lang, r).await
        }
    }
}
