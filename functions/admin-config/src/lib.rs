//! `admin-config`: the operator's and the tenant admin's API.
//!
//! * `POST /v1/tenants` (operator key): a tenant and its first admin key; `GET /v1/tenants`:
//!   every tenant, paginated.
//! * `POST|GET /v1/admin/api-keys`, `DELETE /v1/admin/api-keys/{key_id}` (admin key).
//! * `GET /v1/admin/accounts` (admin key): connected accounts, paginated;
//!   `GET /v1/admin/accounts/{user}`: one account with its health (records waiting and in
//!   error, push channels, deletions held back, recent feed records).
//! * `GET|PUT /v1/admin/google-client`, `GET|PATCH /v1/admin/settings`.
//! * `GET /v1/admin/deliveries`: where webhook delivery stands;
//!   `POST /v1/admin/deliveries/redeliver`: one record sent again;
//!   `POST /v1/admin/webhook/test`: a signed test delivery.
//! * `/admin/…`: the admin console, HTML pages over the same services ([`console`]).

pub mod console;

use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shared::app::AppState;
use shared::clock::rfc3339;
use shared::delivery::Attempt;
use shared::domain::{Account, ApiKey, ApiKeyId, ApiKeyScope, TenantId, UserId};
use shared::http::{AdminCaller, ApiError, ApiJson, ApiPath, ApiQuery, OperatorCaller};
use shared::services::{
    accounts, api_keys, deliveries, health, oauth_client_settings, settings, tenants,
};

/// This function's routes, to serve alone ([`router`]) or merged with the others (the
/// local server).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(console::routes())
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/admin/api-keys", post(create_key).get(list_keys))
        .route("/v1/admin/api-keys/{key_id}", delete(delete_key))
        .route("/v1/admin/accounts", get(list_accounts))
        .route("/v1/admin/accounts/{user}", get(get_account))
        .route("/v1/admin/deliveries", get(get_deliveries))
        .route("/v1/admin/deliveries/redeliver", post(redeliver))
        .route("/v1/admin/webhook/test", post(test_webhook))
        .route(
            "/v1/admin/google-client",
            get(get_google_client).put(put_google_client),
        )
        .route(
            "/v1/admin/settings",
            get(get_settings).patch(patch_settings),
        )
}

/// The function's whole router, as Lambda runs it.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    #[serde(default)]
    id: Option<TenantId>,
    name: String,
}

#[derive(Serialize)]
struct KeyView {
    id: ApiKeyId,
    name: String,
    scope: ApiKeyScope,
    prefix: String,
    created_at: String,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scope: k.scope,
            prefix: k.prefix.clone(),
            created_at: rfc3339(k.created_at),
        }
    }
}

/// A key with its plaintext: the only time it is shown.
#[derive(Serialize)]
struct CreatedKeyView {
    #[serde(flatten)]
    key: KeyView,
    key_secret: String,
}

impl From<api_keys::CreatedKey> for CreatedKeyView {
    fn from(c: api_keys::CreatedKey) -> Self {
        Self {
            key: KeyView::from(&c.key),
            key_secret: c.plaintext,
        }
    }
}

async fn create_tenant(
    _: OperatorCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(http::StatusCode, Json<serde_json::Value>), ApiError> {
    let (tenant, key) = tenants::create(
        &app,
        tenants::NewTenant {
            id: body.id,
            name: body.name,
        },
    )
    .await?;
    Ok((
        http::StatusCode::CREATED,
        Json(serde_json::json!({
            "tenant": {"id": tenant.id, "name": tenant.name, "created_at": rfc3339(tenant.created_at)},
            "admin_key": CreatedKeyView::from(key),
        })),
    ))
}

async fn list_tenants(
    _: OperatorCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (items, next) = tenants::list(&app, params.limit()?, params.page.as_deref()).await?;
    Ok(Json(serde_json::json!({"items": items, "next_page": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    scope: ApiKeyScope,
}

async fn create_key(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(http::StatusCode, Json<CreatedKeyView>), ApiError> {
    let created = api_keys::create(&app, &caller.tenant, &body.name, body.scope).await?;
    Ok((http::StatusCode::CREATED, Json(created.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    page: Option<String>,
}

impl PageParams {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(l @ 1..=200) => Ok(l),
            Some(_) => Err(ApiError::bad_request(
                "invalid_query",
                "limit must be between 1 and 200",
            )),
        }
    }
}

async fn list_keys(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let records = api_keys::list(
        &app,
        &caller.tenant,
        params.limit()?,
        params.page.as_deref(),
    )
    .await?;
    let items: Vec<KeyView> = records.items.iter().map(KeyView::from).collect();
    Ok(Json(
        serde_json::json!({"items": items, "next_page": records.next}),
    ))
}

async fn delete_key(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiPath(key_id): ApiPath<ApiKeyId>,
) -> Result<http::StatusCode, ApiError> {
    api_keys::delete(&app, &caller.tenant, &key_id).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct AccountView {
    user: String,
    status: shared::domain::AccountStatus,
    google_email: Option<String>,
    products: shared::domain::Products,
    last_sync_at: Option<String>,
    last_error: Option<String>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            user: a.user.to_string(),
            status: a.status,
            google_email: a.google_email.clone(),
            products: a.products.clone(),
            last_sync_at: a.last_sync_at.map(rfc3339),
            last_error: a.last_error.clone(),
        }
    }
}

async fn list_accounts(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let records = app
        .store
        .list_accounts(&caller.tenant, params.limit()?, params.page.as_deref())
        .await?;
    let items: Vec<AccountView> = records.items.iter().map(AccountView::from).collect();
    Ok(Json(
        serde_json::json!({"items": items, "next_page": records.next}),
    ))
}

async fn get_google_client(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<oauth_client_settings::GoogleClientView>, ApiError> {
    Ok(Json(
        oauth_client_settings::get(&app, &caller.tenant).await?,
    ))
}

/// Accepts `{client_id, client_secret}` or Google's downloaded `client_secret.json` as is.
async fn put_google_client(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<oauth_client_settings::GoogleClientView>, ApiError> {
    Ok(Json(
        oauth_client_settings::put(&app, &caller.tenant, body).await?,
    ))
}

async fn get_settings(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<settings::SettingsView>, ApiError> {
    Ok(Json(settings::get(&app, &caller.tenant).await?))
}

async fn patch_settings(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiJson(patch): ApiJson<settings::SettingsPatch>,
) -> Result<Json<settings::SettingsView>, ApiError> {
    Ok(Json(settings::patch(&app, &caller.tenant, patch).await?))
}

/// One account as the CRM API shows it, and its health.
#[derive(Serialize)]
struct AccountDetail {
    account: accounts::AccountView,
    health: health::AccountHealth,
}

async fn get_account(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<AccountDetail>, ApiError> {
    let account = accounts::get(&app, &caller.tenant, &user).await?;
    Ok(Json(AccountDetail {
        account: accounts::live_view(&app, &account).await?,
        health: health::of(&app, &account).await?,
    }))
}

async fn get_deliveries(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<deliveries::DeliveriesView>, ApiError> {
    Ok(Json(deliveries::status(&app, &caller.tenant).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeliver {
    record: String,
}

async fn redeliver(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
    ApiJson(body): ApiJson<Redeliver>,
) -> Result<Json<Attempt>, ApiError> {
    Ok(Json(
        deliveries::redeliver(&app, &caller.tenant, &body.record).await?,
    ))
}

async fn test_webhook(
    AdminCaller(caller): AdminCaller,
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<Attempt>, ApiError> {
    Ok(Json(deliveries::send_test(&app, &caller.tenant).await?))
}
