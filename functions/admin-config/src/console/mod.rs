//! The admin console under `/admin`: server-rendered forms (askama) over the same service
//! functions the JSON admin API calls, scoped to the signed-in key's tenant exactly as the
//! API is ([`session`]). Every POST carries the session's CSRF token and, when the browser
//! sends one, an `Origin` of this deployment; bad input re-renders the form with what was
//! typed (secrets excepted) and a plain message.
//!
//! * `GET|POST /admin/sign-in`, `POST /admin/sign-out`
//! * `GET|POST /admin/google-client`
//! * `GET|POST /admin/settings`, `POST /admin/settings/rotate-webhook-secret`
//! * `GET /admin/accounts?filter=attention|needs_reauth|errors`: one row per account with its
//!   health in brief; `GET /admin/accounts/{user}`: one account's records waiting and in
//!   error, push channels, held-back deletions and recent feed records;
//!   `POST /admin/accounts/{user}/{sync|confirm-deletions|pause|resume|disconnect}`;
//!   `POST /admin/connect`: a Google consent link for a user or a shared mailbox
//! * `GET /admin/deliveries`: the webhook delivery cursor, what fails, what is parked;
//!   `POST /admin/deliveries/{test|redeliver}`
//! * `GET|POST /admin/keys`, `POST /admin/keys/{key_id}/revoke`
//! * `GET|POST /admin/tenants`: the operator's tenant list and "create a tenant" (signed in
//!   with the operator key, [`session::OperatorSession`])

pub mod session;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use session::{NoSession, Session};
use shared::app::{App, AppState};
use shared::calendar::api as calendar;
use shared::calendar::model::EventKind;
use shared::clock::rfc3339;
use shared::delivery::AttemptError;
use shared::domain::{Account, AccountStatus, ApiKeyId, ApiKeyScope, Product, TenantId, UserId};
use shared::http::{ApiError, Caller};
use shared::pages;
use shared::pages::post::Form;
use shared::services::{
    accounts, api_keys, connect, deliveries, health, oauth_client_settings, settings, tenants,
};
use std::sync::LazyLock;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/accounts") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/accounts") }))
        .route("/admin/sign-in", get(sign_in_page).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/google-client", get(client_page).post(client_save))
        .route("/admin/settings", get(settings_page).post(settings_save))
        .route(
            "/admin/settings/rotate-webhook-secret",
            post(settings_rotate),
        )
        .route("/admin/accounts", get(accounts_page))
        .route("/admin/accounts/{user}", get(account_page))
        .route("/admin/connect", post(connect_start))
        .route("/admin/accounts/{user}/{action}", post(account_action))
        .route("/admin/deliveries", get(deliveries_page))
        .route("/admin/deliveries/{action}", post(delivery_action))
        .route("/admin/tenants", get(tenants_page).post(tenant_create))
        .route("/admin/keys", get(keys_page).post(key_create))
        .route("/admin/keys/{key_id}/revoke", post(key_revoke))
}

/// Reads a dropped or chosen `client_secret.json` into the form (the form also works
/// without it: paste the file's content).
const CLIENT_FILE_SCRIPT: &str = "document.getElementById('file').addEventListener('change',function(e){var f=e.target.files[0];if(f){f.text().then(function(t){document.getElementById('json').value=t;});}});";
static CLIENT_FILE_HASH: LazyLock<String> = LazyLock::new(|| pages::csp_hash(CLIENT_FILE_SCRIPT));

/// What the layout shows around every page.
struct Chrome {
    title: &'static str,
    /// The operator's pages: their own navigation.
    operator: bool,
    style: &'static str,
    csrf: Option<String>,
    tenant: String,
    notice: Option<String>,
    error: Option<String>,
    script: Option<&'static str>,
}

impl Chrome {
    fn new(title: &'static str, s: Option<&Session>) -> Self {
        Self {
            title,
            operator: false,
            style: pages::STYLE,
            csrf: s.map(|s| s.csrf.clone()),
            tenant: s.map(|s| s.tenant.to_string()).unwrap_or_default(),
            notice: None,
            error: None,
            script: None,
        }
    }
    fn operator(title: &'static str, s: &session::OperatorSession) -> Self {
        Self {
            operator: true,
            csrf: Some(s.csrf.clone()),
            ..Self::new(title, None)
        }
    }
    fn notice(mut self, n: Option<String>) -> Self {
        self.notice = n;
        self
    }
    fn error(mut self, e: Option<String>) -> Self {
        self.error = e;
        self
    }
}

fn html(
    status: StatusCode,
    rendered: Result<String, askama::Error>,
    scripts: &[String],
) -> Response {
    match rendered {
        Ok(body) => pages::respond(status, body, scripts),
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            pages::respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>This page could not be shown.</p>".into(),
                &[],
            )
        }
    }
}

fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    pages::secure(&mut r, &[]);
    r
}

// ---- sessions, CSRF ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    page: Chrome,
    minutes: i64,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Chrome,
    text: &'static str,
    link: &'static str,
    link_label: &'static str,
}

fn sign_in_form(status: StatusCode, notice: Option<String>, error: Option<String>) -> Response {
    let page = SignInPage {
        page: Chrome::new("Sign in", None).notice(notice).error(error),
        minutes: session::TTL.whole_minutes(),
    };
    html(status, page.render(), &[])
}

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    why: Option<String>,
}

async fn sign_in_page(Query(q): Query<SignInQuery>) -> Response {
    let notice = match q.why.as_deref() {
        Some("expired") => Some("Your session has ended. Sign in again.".to_owned()),
        Some("signed-out") => Some("You are signed out.".to_owned()),
        _ => None,
    };
    sign_in_form(StatusCode::OK, notice, None)
}

async fn sign_in(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&app, &headers) {
        return forbidden();
    }
    let form = Form::parse(&body);
    let key = form.get("key").unwrap_or("").trim();
    let refused = |msg: &str| sign_in_form(StatusCode::UNAUTHORIZED, None, Some(msg.to_owned()));
    match session::is_operator_key(&app, key).await {
        Ok(true) => return operator_sign_in(&app).await,
        Ok(false) => {}
        Err(e) => return sign_in_form(e.status, None, Some(e.message)),
    }
    let caller = match Caller::authenticate_key(&app, key).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            return refused("This is not a valid API key of any tenant (check for a missing character, or ask for a new key).")
        }
        Err(e) => return sign_in_form(e.status, None, Some(e.message)),
    };
    let Ok(caller) = caller.require(ApiKeyScope::Admin) else {
        return refused("This is a sync key: the console needs a key with the admin scope.");
    };
    match session::issue(&app, &caller.tenant, &caller.key_id).await {
        Ok((cookie, _)) => {
            let mut r = see_other("/admin/accounts");
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&app, Some(&cookie))) {
                r.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            tracing::info!(tenant = %caller.tenant, key = %caller.key_id, "console sign-in");
            r
        }
        Err(e) => sign_in_form(e.status, None, Some(e.message)),
    }
}

async fn operator_sign_in(app: &App) -> Response {
    match session::issue_operator(app).await {
        Ok(cookie) => {
            let mut r = see_other("/admin/tenants");
            if let Ok(v) = HeaderValue::from_str(&session::set_operator_cookie(app, Some(&cookie)))
            {
                r.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            tracing::info!("console sign-in with the operator key");
            r
        }
        Err(e) => sign_in_form(e.status, None, Some(e.message)),
    }
}

/// Ends whichever session the post comes from (a tenant admin's or the operator's).
async fn sign_out(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if posted::<session::OperatorSession>(&app, &headers, &form)
        .await
        .is_err()
    {
        if let Err(r) = posted::<Session>(&app, &headers, &form).await {
            return r;
        }
    }
    let mut r = see_other("/admin/sign-in?why=signed-out");
    for cookie in [
        session::set_cookie(&app, None),
        session::set_operator_cookie(&app, None),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    r
}

/// A page request's session (a tenant admin's by default, or the operator's); without one,
/// the answer is the sign-in page.
struct SignedIn<S = Session>(S);

impl<S: session::Kind> FromRequestParts<AppState> for SignedIn<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        signed_in(app, &parts.headers).await.map(SignedIn)
    }
}

/// The session of a page request, or the answer to give instead (to the sign-in page).
async fn signed_in<S: session::Kind>(app: &App, headers: &HeaderMap) -> Result<S, Response> {
    match S::read(app, headers).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(NoSession::Missing)) => Err(see_other("/admin/sign-in")),
        Ok(Err(_)) => {
            let mut r = see_other("/admin/sign-in?why=expired");
            if let Ok(v) = HeaderValue::from_str(&S::ended(app)) {
                r.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            Err(r)
        }
        Err(e) => Err(error_page(None, e)),
    }
}

/// A form post's session: signed in, from this deployment's origin, with this session's
/// CSRF token.
async fn posted<S: session::Kind>(
    app: &App,
    headers: &HeaderMap,
    form: &Form,
) -> Result<S, Response> {
    if !same_origin(app, headers) {
        return Err(forbidden());
    }
    let s: S = signed_in(app, headers).await?;
    if !s.csrf_ok(form.get("csrf")) {
        tracing::warn!("console post refused: CSRF token missing or wrong");
        return Err(forbidden());
    }
    Ok(s)
}

/// A form post, checked by [`posted`]: its session (a tenant admin's by default) and its
/// fields. Refused posts answer 403 (or the sign-in page), and the handler never runs.
struct Posted<S = Session>(S, Form);

impl<S: session::Kind> FromRequest<AppState> for Posted<S> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&body);
        let s = posted(app, &headers, &form).await?;
        Ok(Posted(s, form))
    }
}

/// A form post must come from this deployment's own pages ([`pages::post::same_origin`]);
/// the CSRF token and the `SameSite=Strict` cookie are the protection, this refuses a
/// cross-site post early.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    pages::post::same_origin(&app.config.public_base_url, headers)
}

fn forbidden() -> Response {
    let page = MessagePage {
        page: Chrome::new("This form was refused", None),
        text: "The form did not come from this console's current session (it may be from an old tab, or from another site). Nothing was changed. Open the page again and resubmit.",
        link: "/admin/accounts",
        link_label: "Back to the console",
    };
    html(StatusCode::FORBIDDEN, page.render(), &[])
}

fn error_page(s: Option<&Session>, e: ApiError) -> Response {
    let page = MessagePage {
        page: Chrome::new("Something went wrong", s).error(Some(e.message)),
        text: "Nothing was changed.",
        link: "/admin/accounts",
        link_label: "Back to the console",
    };
    html(e.status, page.render(), &[])
}

#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

// ---- Google client ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "google_client.html")]
struct ClientPage {
    page: Chrome,
    csrf: String,
    view: oauth_client_settings::GoogleClientView,
    client_id: String,
}

async fn render_client(
    app: &App,
    s: &Session,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    client_id: Option<String>,
) -> Response {
    let view = match oauth_client_settings::get(app, &s.tenant).await {
        Ok(v) => v,
        Err(e) => return error_page(Some(s), e),
    };
    let mut page = Chrome::new("Google client", Some(s))
        .notice(notice)
        .error(error);
    page.script = Some(CLIENT_FILE_SCRIPT);
    let client_id = client_id.unwrap_or_else(|| view.client_id.clone().unwrap_or_default());
    let p = ClientPage {
        csrf: s.csrf.clone(),
        page,
        view,
        client_id,
    };
    html(status, p.render(), std::slice::from_ref(&*CLIENT_FILE_HASH))
}

async fn client_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Query(d): Query<Done>,
) -> Response {
    let notice = (d.done.as_deref() == Some("saved"))
        .then(|| "Google client saved. Users can connect now.".to_owned());
    render_client(&app, &s, StatusCode::OK, notice, None, None).await
}

async fn client_save(State(app): State<AppState>, Posted(s, form): Posted) -> Response {
    let json_text = form.text("json");
    let typed_id = form.text("client_id");
    let body = if !json_text.is_empty() {
        match serde_json::from_str::<Value>(&json_text) {
            Ok(v) => Ok(v),
            Err(_) => Err("The pasted or uploaded file is not JSON. Use the client_secret.json file exactly as Google's console downloaded it.".to_owned()),
        }
    } else if typed_id.is_empty() {
        Err("Give the client ID and secret, or upload the client_secret.json file.".to_owned())
    } else {
        Ok(json!({"client_id": typed_id, "client_secret": form.text("client_secret")}))
    };
    let result = match body {
        Ok(b) => oauth_client_settings::put(&app, &s.tenant, b)
            .await
            .map_err(|e| e.message),
        Err(msg) => Err(msg),
    };
    match result {
        Ok(_) => see_other("/admin/google-client?done=saved"),
        Err(msg) => {
            let msg = format!("{msg}. Nothing was saved; the secret was not kept, enter it again.");
            render_client(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(msg),
                Some(typed_id),
            )
            .await
        }
    }
}

// ---- settings ---------------------------------------------------------------------------

struct Opt {
    value: &'static str,
    label: &'static str,
    on: bool,
}

struct Select {
    name: &'static str,
    label: &'static str,
    options: Vec<Opt>,
}

struct ColorChoice {
    kind: &'static str,
    label: &'static str,
    options: Vec<Opt>,
}

struct FieldRow {
    key: &'static str,
    label: &'static str,
    options: Vec<Opt>,
}

struct SettingsForm {
    products: Vec<Opt>,
    selects: Vec<Select>,
    sync_since_days: String,
    poll_interval_minutes: String,
    contact_group_name: String,
    colors: Vec<ColorChoice>,
    directions: &'static [(&'static str, &'static str)],
    fields: Vec<FieldRow>,
    return_urls: String,
    webhook_url: String,
    webhook_secret_set: bool,
    sync_paused: bool,
}

const PRODUCTS: &[(&str, &str)] = &[
    ("calendar", "Calendar"),
    ("contacts", "Contacts"),
    ("gmail", "Gmail"),
];
/// `(value, label)` of a choice.
type Choices = &'static [(&'static str, &'static str)];
const SELECTS: &[(&str, &str, Choices)] = &[
    (
        "direction",
        "Sync direction",
        &[
            ("two_way", "Both ways"),
            ("crm_to_google", "CRM to Google only"),
            ("google_to_crm", "Google to CRM only"),
        ],
    ),
    (
        "conflict_policy",
        "When both sides changed",
        &[
            ("latest_wins", "The later change wins"),
            ("crm_wins", "The CRM wins"),
            ("google_wins", "Google wins"),
        ],
    ),
    (
        "deletion_policy",
        "When a record is deleted on one side",
        &[
            ("unlink_only", "Unlink only (keep it on the other side)"),
            ("propagate", "Delete it on the other side too"),
        ],
    ),
    (
        "private_events",
        "Private Google events",
        &[
            ("busy_only", "Copy as busy only"),
            ("skip", "Do not copy"),
            ("full", "Copy in full"),
        ],
    ),
    (
        "guest_notifications",
        "Invitation e-mails Google sends to guests",
        &[
            ("none", "None"),
            ("external_only", "Only to guests outside the organisation"),
            ("all", "To every guest"),
        ],
    ),
];
/// Google Calendar's event colour palette (`colors.get`, `event`).
const PALETTE: &[(&str, &str)] = &[
    ("", "Calendar's colour"),
    ("1", "Lavender"),
    ("2", "Sage"),
    ("3", "Grape"),
    ("4", "Flamingo"),
    ("5", "Banana"),
    ("6", "Tangerine"),
    ("7", "Peacock"),
    ("8", "Graphite"),
    ("9", "Blueberry"),
    ("10", "Basil"),
    ("11", "Tomato"),
];
const FIELD_DIRECTIONS: &[(&str, &str)] = &[
    ("two_way", "Both ways"),
    ("crm_to_google", "CRM → Google"),
    ("google_to_crm", "Google → CRM"),
    ("off", "Off"),
];
const FIELDS: &[(&str, &str)] = &[
    ("names", "Names"),
    ("emails", "E-mail addresses"),
    ("phones", "Phone numbers"),
    ("organization", "Company and job title"),
    ("addresses", "Postal addresses"),
    ("notes", "Notes"),
];

fn opts(list: &[(&'static str, &'static str)], on: impl Fn(&str) -> bool) -> Vec<Opt> {
    list.iter()
        .map(|(value, label)| Opt {
            value,
            label,
            on: on(value),
        })
        .collect()
}

impl SettingsForm {
    /// The form from its values as strings (the stored settings, or what was submitted).
    fn build(
        get: impl Fn(&str) -> String,
        products: &[String],
        webhook_secret_set: bool,
        sync_paused: bool,
    ) -> Self {
        Self {
            products: opts(PRODUCTS, |v| products.iter().any(|p| p == v)),
            selects: SELECTS
                .iter()
                .map(|(name, label, list)| {
                    let current = get(name);
                    Select {
                        name,
                        label,
                        options: opts(list, |v| v == current),
                    }
                })
                .collect(),
            sync_since_days: get("sync_since_days"),
            poll_interval_minutes: get("poll_interval_minutes"),
            contact_group_name: get("contact_group_name"),
            colors: EventKind::ALL
                .iter()
                .map(|kind| kind.as_str())
                .map(|kind| {
                    let current = get(&format!("color.{kind}"));
                    ColorChoice {
                        kind,
                        label: kind,
                        options: opts(PALETTE, |v| v == current),
                    }
                })
                .collect(),
            directions: FIELD_DIRECTIONS,
            fields: FIELDS
                .iter()
                .map(|(key, label)| {
                    let current = get(&format!("field.{key}"));
                    FieldRow {
                        key,
                        label,
                        options: opts(FIELD_DIRECTIONS, |v| v == current),
                    }
                })
                .collect(),
            return_urls: get("allowed_return_urls"),
            webhook_url: get("webhook_url"),
            webhook_secret_set,
            sync_paused,
        }
    }

    fn of_view(view: &settings::SettingsView) -> Self {
        let v = serde_json::to_value(view).unwrap_or(Value::Null);
        let d = &v["defaults"];
        let s = |x: &Value| match x {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let get = |name: &str| -> String {
            if let Some(kind) = name.strip_prefix("color.") {
                return s(&d["event_colors"][kind]);
            }
            if let Some(field) = name.strip_prefix("field.") {
                return s(&d["contact_fields"][field]);
            }
            match name {
                "allowed_return_urls" => view.allowed_return_urls.join("\n"),
                "webhook_url" => view.webhook_url.clone().unwrap_or_default(),
                other => s(&d[other]),
            }
        };
        let products: Vec<String> = v["products_allowed"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        Self::build(get, &products, view.webhook_secret_set, view.sync_paused)
    }

    fn of_form(form: &Form, webhook_secret_set: bool) -> Self {
        let products: Vec<String> = form
            .all("products")
            .into_iter()
            .map(str::to_owned)
            .collect();
        Self::build(
            |name| form.get(name).unwrap_or("").to_owned(),
            &products,
            webhook_secret_set,
            form.get("sync_paused") == Some("true"),
        )
    }
}

/// The API's settings patch from the submitted form (so the same validation applies).
fn settings_patch(form: &Form) -> Result<settings::SettingsPatch, String> {
    let number = |name: &str, label: &str| -> Result<Value, String> {
        let t = form.text(name);
        t.parse::<u32>()
            .map(|n| json!(n))
            .map_err(|_| format!("{label} must be a whole number"))
    };
    let mut defaults = Map::new();
    for (name, _, _) in SELECTS {
        defaults.insert((*name).into(), json!(form.text(name)));
    }
    defaults.insert(
        "sync_since_days".into(),
        number("sync_since_days", "Sync events from (days)")?,
    );
    defaults.insert(
        "poll_interval_minutes".into(),
        number("poll_interval_minutes", "The polling interval")?,
    );
    defaults.insert(
        "contact_group_name".into(),
        json!(form.text("contact_group_name")),
    );
    let mut colors = Map::new();
    for kind in EventKind::ALL.map(EventKind::as_str) {
        let c = form.text(&format!("color.{kind}"));
        if !c.is_empty() {
            colors.insert(kind.into(), json!(c));
        }
    }
    defaults.insert("event_colors".into(), Value::Object(colors));
    let mut fields = Map::new();
    for (key, _) in FIELDS {
        let d = form.text(&format!("field.{key}"));
        if !d.is_empty() {
            fields.insert((*key).into(), json!(d));
        }
    }
    defaults.insert("contact_fields".into(), Value::Object(fields));
    let urls: Vec<String> = form
        .text("allowed_return_urls")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let webhook = form.text("webhook_url");
    let patch = json!({
        "products_allowed": form.all("products"),
        "defaults": defaults,
        "allowed_return_urls": urls,
        "webhook_url": if webhook.is_empty() { Value::Null } else { json!(webhook) },
        "sync_paused": form.get("sync_paused") == Some("true"),
    });
    serde_json::from_value(patch).map_err(|_| {
        "One of the choices is not a known value; reload the page and try again".to_owned()
    })
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: Chrome,
    csrf: String,
    form: SettingsForm,
}

fn secret_notice(view: &settings::SettingsView, what: &str) -> Option<String> {
    view.webhook_signing_secret.as_ref().map(|secret| {
        format!("{what} The webhook signing secret, shown only this once (give it to the CRM to verify deliveries): {secret}")
    })
}

async fn settings_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Query(d): Query<Done>,
) -> Response {
    let view = match settings::get(&app, &s.tenant).await {
        Ok(v) => v,
        Err(e) => return error_page(Some(&s), e),
    };
    let notice = (d.done.as_deref() == Some("saved")).then(|| "Settings saved.".to_owned());
    let p = SettingsPage {
        page: Chrome::new("Settings", Some(&s)).notice(notice),
        csrf: s.csrf.clone(),
        form: SettingsForm::of_view(&view),
    };
    html(StatusCode::OK, p.render(), &[])
}

async fn settings_save(State(app): State<AppState>, Posted(s, form): Posted) -> Response {
    let result = match settings_patch(&form) {
        Ok(patch) => settings::patch(&app, &s.tenant, patch)
            .await
            .map_err(|e| e.message),
        Err(msg) => Err(msg),
    };
    match result {
        Ok(view) => match secret_notice(&view, "Settings saved.") {
            // The new secret is shown once, on this answer only.
            Some(notice) => {
                let p = SettingsPage {
                    page: Chrome::new("Settings", Some(&s)).notice(Some(notice)),
                    csrf: s.csrf.clone(),
                    form: SettingsForm::of_view(&view),
                };
                html(StatusCode::OK, p.render(), &[])
            }
            None => see_other("/admin/settings?done=saved"),
        },
        Err(msg) => {
            let secret_set = settings::get(&app, &s.tenant)
                .await
                .map(|v| v.webhook_secret_set)
                .unwrap_or(false);
            let p = SettingsPage {
                page: Chrome::new("Settings", Some(&s)).error(Some(format!(
                    "{msg}. Nothing was saved; your changes are still in the form."
                ))),
                csrf: s.csrf.clone(),
                form: SettingsForm::of_form(&form, secret_set),
            };
            html(StatusCode::UNPROCESSABLE_ENTITY, p.render(), &[])
        }
    }
}

async fn settings_rotate(State(app): State<AppState>, Posted(s, _): Posted) -> Response {
    let patch = settings::SettingsPatch {
        rotate_webhook_secret: Some(true),
        ..Default::default()
    };
    match settings::patch(&app, &s.tenant, patch).await {
        Ok(view) => {
            let p = SettingsPage {
                page: Chrome::new("Settings", Some(&s))
                    .notice(secret_notice(&view, "New signing secret made.")),
                csrf: s.csrf.clone(),
                form: SettingsForm::of_view(&view),
            };
            html(StatusCode::OK, p.render(), &[])
        }
        Err(e) => error_page(Some(&s), e),
    }
}

// ---- accounts ---------------------------------------------------------------------------

struct FilterLink {
    label: &'static str,
    query: &'static str,
    on: bool,
}

struct AccountRow {
    user: String,
    status: &'static str,
    tone: &'static str,
    reauth_reason: Option<String>,
    email: String,
    products: String,
    last_sync: String,
    last_error: Option<String>,
    connected: bool,
    paused: bool,
    /// A mass deletion is held back until someone confirms it.
    deletions_held: bool,
    /// Records waiting for the worker ("1000+" past the count's cap).
    waiting: String,
    /// The push channels of the calendars read, in words.
    push: String,
    push_tone: &'static str,
}

/// Rows per page of the accounts list (each row costs a few bounded store queries).
const ACCOUNTS_PER_PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    page: Chrome,
    csrf: String,
    filters: Vec<FilterLink>,
    filtered: bool,
    filter_query: String,
    rows: Vec<AccountRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct AccountsQuery {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn status_name(s: AccountStatus) -> (&'static str, &'static str) {
    match s {
        AccountStatus::Active => ("active", "ok"),
        AccountStatus::NeedsReauth => ("needs_reauth", "bad"),
        AccountStatus::Paused => ("paused", "warn"),
        AccountStatus::Disconnected => ("disconnected", "muted"),
    }
}

fn products_of(a: &Account) -> String {
    serde_json::to_value(&a.products)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The push channels of an account's calendars, in words, and their tone.
fn push_words(h: &health::Summary) -> (String, &'static str) {
    if h.calendars == 0 {
        return ("—".into(), "muted");
    }
    let polled = h.calendars - h.watching;
    let words = match (h.watching, polled) {
        (w, 0) => format!("{w} of {} calendars watched", h.calendars),
        (w, p) if p == h.push_unsupported => format!(
            "{w} of {} calendars watched; {p} polled (no push from Google)",
            h.calendars
        ),
        (w, _) => format!("{w} of {} calendars watched; the rest polled", h.calendars),
    };
    let tone = if h.watching + h.push_unsupported == h.calendars {
        "ok"
    } else {
        "warn"
    };
    (words, tone)
}

fn row(a: &Account, h: &health::Summary) -> AccountRow {
    let (status, tone) = status_name(a.status);
    let (push, push_tone) = push_words(h);
    AccountRow {
        user: a.user.to_string(),
        status,
        tone,
        reauth_reason: a.reauth_reason.clone(),
        email: a.google_email.clone().unwrap_or_default(),
        products: products_of(a),
        last_sync: a
            .last_sync_at
            .map(rfc3339)
            .unwrap_or_else(|| "never".into()),
        last_error: a.last_error.clone(),
        connected: a.status != AccountStatus::Disconnected,
        paused: a.status == AccountStatus::Paused,
        deletions_held: h.deletions_held,
        waiting: match h.waiting_more {
            true => format!("{}+", h.waiting),
            false => h.waiting.to_string(),
        },
        push,
        push_tone,
    }
}

async fn accounts_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Query(q): Query<AccountsQuery>,
) -> Response {
    let filter = q.filter.as_deref().unwrap_or("");
    let keep = |a: &Account| match filter {
        "attention" => a.status == AccountStatus::NeedsReauth || a.last_error.is_some(),
        "needs_reauth" => a.status == AccountStatus::NeedsReauth,
        "errors" => a.last_error.is_some(),
        _ => true,
    };
    let found = match app
        .store
        .list_accounts(&s.tenant, ACCOUNTS_PER_PAGE, q.page.as_deref())
        .await
    {
        Ok(f) => f,
        Err(e) => return error_page(Some(&s), e.into()),
    };
    let shown: Vec<&Account> = found.items.iter().filter(|a| keep(a)).collect();
    let summaries =
        futures_util::future::join_all(shown.iter().map(|a| health::summary(&app, a))).await;
    let mut rows = Vec::with_capacity(shown.len());
    for (a, h) in shown.into_iter().zip(summaries) {
        match h {
            Ok(h) => rows.push(row(a, &h)),
            Err(e) => return error_page(Some(&s), e),
        }
    }
    let filters = [
        ("All", "", ""),
        ("Needs attention", "?filter=attention", "attention"),
        (
            "Needs reauthorization",
            "?filter=needs_reauth",
            "needs_reauth",
        ),
        ("With errors", "?filter=errors", "errors"),
    ]
    .into_iter()
    .map(|(label, query, key)| FilterLink {
        label,
        query,
        on: key == filter,
    })
    .collect();
    let p = AccountsPage {
        page: Chrome::new("Accounts", Some(&s)).notice(action_notice(q.done.as_deref())),
        csrf: s.csrf.clone(),
        filtered: !filter.is_empty(),
        filter_query: if filter.is_empty() {
            String::new()
        } else {
            format!("&filter={filter}")
        },
        filters,
        rows,
        next: found
            .next
            .map(|n| form_urlencoded::byte_serialize(n.as_bytes()).collect()),
    };
    html(StatusCode::OK, p.render(), &[])
}

/// What an account action did, in words.
fn action_notice(done: Option<&str>) -> Option<String> {
    match done {
        Some("sync") => Some("Sync queued.".to_owned()),
        Some("confirm-deletions") => {
            Some("Deletions confirmed: the next pass carries them out.".to_owned())
        }
        Some("pause") => Some("Account paused.".to_owned()),
        Some("resume") => Some("Account resumed.".to_owned()),
        Some("disconnect") => {
            Some("Account disconnected; its Google grant was revoked.".to_owned())
        }
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: Chrome,
    csrf: String,
    row: AccountRow,
    view: accounts::AccountView,
    health: health::AccountHealth,
    errors_shown: usize,
    errors_scanned: usize,
}

async fn account_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Path(user): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let Ok(user) = UserId::parse(&user) else {
        return error_page(Some(&s), ApiError::not_found("no such account"));
    };
    let loaded = async {
        let a = accounts::get(&app, &s.tenant, &user).await?;
        let view = accounts::live_view(&app, &a).await?;
        let h = health::of(&app, &a).await?;
        Ok::<_, ApiError>((row(&a, &h.summary()), view, h))
    };
    match loaded.await {
        Ok((row, view, health)) => {
            let p = AccountPage {
                page: Chrome::new("Account", Some(&s)).notice(action_notice(q.done.as_deref())),
                csrf: s.csrf.clone(),
                row,
                view,
                health,
                errors_shown: health::ERRORS_SHOWN,
                errors_scanned: health::ERRORS_SCANNED,
            };
            html(StatusCode::OK, p.render(), &[])
        }
        Err(e) => error_page(Some(&s), e),
    }
}

async fn account_action(
    State(app): State<AppState>,
    Path((user, action)): Path<(String, String)>,
    Posted(s, form): Posted,
) -> Response {
    let Ok(user) = UserId::parse(&user) else {
        return error_page(Some(&s), ApiError::not_found("no such account"));
    };
    let (t, u) = (&s.tenant, &user);
    let result = match action.as_str() {
        "sync" => calendar::sync_now(&app, t, u, false).await,
        // What `POST /v1/users/{user}/sync {"confirm_mass_deletion": true}` does.
        "confirm-deletions" => calendar::sync_now(&app, t, u, true).await,
        "pause" | "resume" => {
            let patch = accounts::AccountPatch {
                paused: Some(action == "pause"),
                ..Default::default()
            };
            accounts::patch(&app, t, u, patch).await.map(|_| ())
        }
        "disconnect" => accounts::disconnect(&app, t, u, true).await.map(|_| ()),
        _ => Err(ApiError::not_found("no such action")),
    };
    // The account's own page posts `back=account` to come back to it.
    let back = match form.get("back") {
        Some("account") if action != "disconnect" => format!("/admin/accounts/{user}"),
        _ => "/admin/accounts".to_owned(),
    };
    match result {
        Ok(()) => see_other(&format!("{back}?done={action}")),
        Err(e) => error_page(Some(&s), e),
    }
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ConnectPage {
    page: Chrome,
    user: String,
    email: String,
    link: String,
    expires_at: String,
}

/// "Connect an account": the same link `POST /v1/users/{user}/google/connect` gives, for
/// the admin to open (a shared mailbox: signed in to Google as the team's account).
async fn connect_start(State(app): State<AppState>, Posted(s, form): Posted) -> Response {
    let user = form.text("user");
    let Ok(u) = UserId::parse(&user) else {
        let e = ApiError::invalid(
            "The CRM user or mailbox id: letters, digits and -_.@+= only, at most 128 characters.",
        );
        return error_page(Some(&s), e);
    };
    let products: Vec<Product> = form
        .all("products")
        .into_iter()
        .filter_map(|p| serde_json::from_value(Value::String(p.to_owned())).ok())
        .collect();
    let email = form.text("email");
    let req = connect::ConnectRequest {
        products: products.into(),
        return_url: None,
        login_hint: (!email.is_empty()).then(|| email.clone()),
    };
    match connect::start(&app, &s.tenant, &u, req).await {
        Ok(link) => {
            let p = ConnectPage {
                page: Chrome::new("Connect a Google account", Some(&s)),
                user: u.to_string(),
                email,
                link: link.authorization_url,
                expires_at: link.expires_at,
            };
            html(StatusCode::OK, p.render(), &[])
        }
        Err(e) => error_page(Some(&s), e),
    }
}

// ---- webhook deliveries -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    page: Chrome,
    csrf: String,
    view: deliveries::DeliveriesView,
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    failure: Option<String>,
}

/// What a test delivery or a redelivery did, in words (from the redirect's query: known
/// words only, never text from the query itself).
fn delivery_notice(q: &DeliveriesQuery) -> (Option<String>, Option<String>) {
    let why = match (q.status, q.failure.as_deref()) {
        (Some(status), _) => format!("the CRM answered HTTP {status}"),
        (None, Some("timeout")) => "the CRM did not answer in time".to_owned(),
        (None, Some("connect")) => "the CRM's webhook could not be reached".to_owned(),
        _ => "the connection failed".to_owned(),
    };
    match q.done.as_deref() {
        Some("test-delivered") => (
            Some("Test delivery sent: the CRM answered 2xx.".into()),
            None,
        ),
        Some("test-failed") => (None, Some(format!("The test delivery failed: {why}."))),
        Some("redelivered") => (
            Some("Record delivered again: the CRM answered 2xx.".into()),
            None,
        ),
        Some("unparked") => (
            Some("Record delivered again and taken off the parked list.".into()),
            None,
        ),
        Some("redeliver-failed") => (None, Some(format!("The redelivery failed: {why}."))),
        _ => (None, None),
    }
}

async fn deliveries_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    match deliveries::status(&app, &s.tenant).await {
        Ok(view) => {
            let (notice, error) = delivery_notice(&q);
            let p = DeliveriesPage {
                page: Chrome::new("Webhook deliveries", Some(&s))
                    .notice(notice)
                    .error(error),
                csrf: s.csrf.clone(),
                view,
            };
            html(StatusCode::OK, p.render(), &[])
        }
        Err(e) => error_page(Some(&s), e),
    }
}

/// `test`: a signed test delivery; `redeliver`: the record named in the form, again.
async fn delivery_action(
    State(app): State<AppState>,
    Path(action): Path<String>,
    Posted(s, form): Posted,
) -> Response {
    let (attempt, ok, failed) = match action.as_str() {
        "test" => (
            deliveries::send_test(&app, &s.tenant).await,
            "test-delivered",
            "test-failed",
        ),
        "redeliver" => (
            deliveries::redeliver(&app, &s.tenant, &form.text("record")).await,
            "redelivered",
            "redeliver-failed",
        ),
        _ => return error_page(Some(&s), ApiError::not_found("no such action")),
    };
    let attempt = match attempt {
        Ok(a) => a,
        Err(e) => return error_page(Some(&s), e),
    };
    let to = match (&attempt.error, attempt.unparked) {
        (None, true) => "/admin/deliveries?done=unparked".to_owned(),
        (None, false) => format!("/admin/deliveries?done={ok}"),
        (Some(AttemptError::Status { status }), _) => {
            format!("/admin/deliveries?done={failed}&status={status}")
        }
        (Some(e), _) => {
            let kind = match e {
                AttemptError::Timeout => "timeout",
                AttemptError::Connect => "connect",
                _ => "transport",
            };
            format!("/admin/deliveries?done={failed}&failure={kind}")
        }
    };
    see_other(&to)
}

// ---- the operator's tenants ----------------------------------------------------------------

struct TenantRow {
    id: String,
    name: String,
    created: String,
    client_set: bool,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    page: Chrome,
    csrf: String,
    rows: Vec<TenantRow>,
    next: Option<String>,
    /// A tenant just made: its name, id and first admin key (shown this once).
    created: Option<(String, String, String)>,
    name: String,
    id: String,
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

async fn render_tenants(
    app: &App,
    s: &session::OperatorSession,
    page: Option<&str>,
    status: StatusCode,
    form: (String, String),
    created: Option<(String, String, String)>,
    error: Option<String>,
) -> Response {
    let (items, next) = match tenants::list(app, 50, page).await {
        Ok(found) => found,
        Err(e) => return operator_error(s, e),
    };
    let rows = items
        .into_iter()
        .map(|t| TenantRow {
            id: t.id.to_string(),
            name: t.name,
            created: t.created_at,
            client_set: t.google_client_set,
        })
        .collect();
    let p = TenantsPage {
        page: Chrome::operator("Tenants", s).error(error),
        csrf: s.csrf.clone(),
        rows,
        next: next.map(|n| form_urlencoded::byte_serialize(n.as_bytes()).collect()),
        created,
        name: form.0,
        id: form.1,
    };
    html(status, p.render(), &[])
}

fn operator_error(s: &session::OperatorSession, e: ApiError) -> Response {
    let page = MessagePage {
        page: Chrome::operator("Something went wrong", s).error(Some(e.message)),
        text: "Nothing was changed.",
        link: "/admin/tenants",
        link_label: "Back to the tenants",
    };
    html(e.status, page.render(), &[])
}

async fn tenants_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn<session::OperatorSession>,
    Query(q): Query<PageQuery>,
) -> Response {
    let form = (String::new(), String::new());
    render_tenants(
        &app,
        &s,
        q.page.as_deref(),
        StatusCode::OK,
        form,
        None,
        None,
    )
    .await
}

/// "Create a tenant": the tenant and its first admin key, shown once.
async fn tenant_create(
    State(app): State<AppState>,
    Posted(s, form): Posted<session::OperatorSession>,
) -> Response {
    let typed = (form.text("name"), form.text("id"));
    let id = match typed.1.as_str() {
        "" => None,
        id => match TenantId::parse(id) {
            Ok(id) => Some(id),
            Err(e) => {
                let why = Some(format!("The {e}."));
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return render_tenants(&app, &s, None, status, typed, None, why).await;
            }
        },
    };
    let new = tenants::NewTenant {
        id,
        name: typed.0.clone(),
    };
    match tenants::create(&app, new).await {
        Ok((tenant, key)) => {
            let created = Some((tenant.name, tenant.id.to_string(), key.plaintext));
            let form = (String::new(), String::new());
            render_tenants(&app, &s, None, StatusCode::CREATED, form, created, None).await
        }
        Err(e) => render_tenants(&app, &s, None, e.status, typed, None, Some(e.message)).await,
    }
}

// ---- API keys ---------------------------------------------------------------------------

struct KeyRow {
    id: String,
    name: String,
    scope: &'static str,
    prefix: String,
    created: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    page: Chrome,
    csrf: String,
    keys: Vec<KeyRow>,
    next: Option<String>,
    created: Option<(String, String)>,
    name: String,
}

#[derive(Deserialize)]
struct KeysQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// What the keys page says besides the list.
#[derive(Default)]
struct KeysSay {
    notice: Option<String>,
    error: Option<String>,
    /// A key just created: its name and plaintext, shown this once.
    created: Option<(String, String)>,
    /// The name typed in the create form (kept when it was refused).
    name: String,
}

async fn render_keys(
    app: &App,
    s: &Session,
    status: StatusCode,
    page_token: Option<&str>,
    say: KeysSay,
) -> Response {
    let KeysSay {
        notice,
        error,
        created,
        name,
    } = say;
    let list = match api_keys::list(app, &s.tenant, 200, page_token).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(s), e),
    };
    let keys = list
        .items
        .iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            scope: match k.scope {
                ApiKeyScope::Admin => "admin",
                ApiKeyScope::Sync => "sync",
            },
            prefix: k.prefix.clone(),
            created: rfc3339(k.created_at),
            current: k.id == s.key_id,
        })
        .collect();
    let p = KeysPage {
        page: Chrome::new("API keys", Some(s)).notice(notice).error(error),
        csrf: s.csrf.clone(),
        keys,
        next: list
            .next
            .map(|n| form_urlencoded::byte_serialize(n.as_bytes()).collect()),
        created,
        name,
    };
    html(status, p.render(), &[])
}

async fn keys_page(
    State(app): State<AppState>,
    SignedIn(s): SignedIn,
    Query(q): Query<KeysQuery>,
) -> Response {
    let notice = (q.done.as_deref() == Some("revoked"))
        .then(|| "Key revoked: it no longer works.".to_owned());
    render_keys(
        &app,
        &s,
        StatusCode::OK,
        q.page.as_deref(),
        KeysSay {
            notice,
            ..KeysSay::default()
        },
    )
    .await
}

async fn key_create(State(app): State<AppState>, Posted(s, form): Posted) -> Response {
    let name = form.text("name");
    let scope = match form.get("scope") {
        Some("admin") => ApiKeyScope::Admin,
        _ => ApiKeyScope::Sync,
    };
    match api_keys::create(&app, &s.tenant, &name, scope).await {
        Ok(created) => {
            let shown = (created.key.name.clone(), created.plaintext);
            render_keys(
                &app,
                &s,
                StatusCode::CREATED,
                None,
                KeysSay {
                    created: Some(shown),
                    ..KeysSay::default()
                },
            )
            .await
        }
        Err(e) => {
            render_keys(
                &app,
                &s,
                e.status,
                None,
                KeysSay {
                    error: Some(format!("{}. No key was created.", e.message)),
                    name,
                    ..KeysSay::default()
                },
            )
            .await
        }
    }
}

async fn key_revoke(
    State(app): State<AppState>,
    Path(key_id): Path<String>,
    Posted(s, _): Posted,
) -> Response {
    let Ok(id) = ApiKeyId::parse(&key_id) else {
        return error_page(Some(&s), ApiError::not_found("no such key"));
    };
    match api_keys::delete(&app, &s.tenant, &id).await {
        Ok(()) => see_other("/admin/keys?done=revoked"),
        Err(e) => error_page(Some(&s), e),
    }
}
