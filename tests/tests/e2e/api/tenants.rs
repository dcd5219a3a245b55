//! Tenants and API keys end to end, through the public HTTP API, on the production adapters
//! (DynamoDB Local, Secrets Manager and SQS on moto): creation, scopes, revocation, bad
//! input, and tenant isolation.

use reqwest::StatusCode;
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Self {
        let app = crate::world::aws_app().await;
        Self {
            base: crate::world::serve(local_server::router(app)).await,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            assert!(
                ctype.starts_with("application/json"),
                "{path}: non-JSON answer {ctype}: {text}"
            );
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    async fn create_tenant(&self, body: Value) -> (String, String) {
        let (status, v) = self
            .call(
                "POST",
                "/v1/tenants",
                Some(crate::world::OPERATOR_KEY),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (
            v["tenant"]["id"].as_str().unwrap().to_owned(),
            v["admin_key"]["key_secret"].as_str().unwrap().to_owned(),
        )
    }
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn operator_creates_tenants_with_a_first_admin_key() {
    let api = Api::start().await;
    let (tenant, admin) = api
        .create_tenant(json!({"id": "acme-corp", "name": "Acme Corp"}))
        .await;
    assert_eq!(tenant, "acme-corp");
    assert!(admin.starts_with("cgs_"));

    // The first key works and is an admin key; its plaintext is never shown again.
    let (status, keys) = api
        .call("GET", "/v1/admin/api-keys", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    assert_eq!(keys["items"][0]["scope"], "admin");
    assert!(!keys.to_string().contains(&admin[20..]));
    assert!(keys["items"][0].get("key_secret").is_none());

    // Same id again: conflict. Generated ids are distinct.
    let (status, v) = api
        .call(
            "POST",
            "/v1/tenants",
            Some(crate::world::OPERATOR_KEY),
            Some(json!({"id": "acme-corp", "name": "Again"})),
        )
        .await;
    assert_error(status, &v, StatusCode::CONFLICT, "tenant_exists");
    let (a, _) = api.create_tenant(json!({"name": "No id 1"})).await;
    let (b, _) = api.create_tenant(json!({"name": "No id 2"})).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn only_the_operator_creates_tenants() {
    let api = Api::start().await;
    let (_, admin) = api.create_tenant(json!({"name": "T"})).await;
    let body = Some(json!({"name": "Sneaky"}));
    let (s, v) = api.call("POST", "/v1/tenants", None, body.clone()).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v) = api
        .call("POST", "/v1/tenants", Some("op_wrong"), body.clone())
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v) = api.call("POST", "/v1/tenants", Some(&admin), body).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn keys_are_created_scoped_listed_and_revoked() {
    let api = Api::start().await;
    let (_, admin) = api.create_tenant(json!({"name": "T"})).await;
    let (s, created) = api
        .call(
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": "CRM backend", "scope": "sync"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let sync_key = created["key_secret"].as_str().unwrap().to_owned();
    let sync_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["scope"], "sync");

    // A sync key cannot administer; it reaches the data plane.
    let (s, v) = api
        .call("GET", "/v1/admin/api-keys", Some(&sync_key), None)
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = api.call("GET", "/v1/changes", Some(&sync_key), None).await;
    assert_ne!(s, StatusCode::FORBIDDEN, "{v}");
    assert_ne!(s, StatusCode::UNAUTHORIZED, "{v}");

    // Pagination over the tenant's keys.
    for i in 0..4 {
        api.call(
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": format!("k{i}"), "scope": "admin"})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/admin/api-keys?limit=2".to_owned();
    loop {
        let (s, page) = api.call("GET", &path, Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for k in page["items"].as_array().unwrap() {
            seen.push(k["id"].as_str().unwrap().to_owned());
        }
        match page["next_page"].as_str() {
            Some(next) => path = format!("/v1/admin/api-keys?limit=2&page={next}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);

    // Revoked keys stop working at once; deleting again is a 404.
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/v1/admin/api-keys/{sync_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api.call("GET", "/v1/changes", Some(&sync_key), None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/v1/admin/api-keys/{sync_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_last_admin_key_cannot_be_deleted() {
    let api = Api::start().await;
    let (_, admin) = api.create_tenant(json!({"name": "T"})).await;
    let (_, keys) = api
        .call("GET", "/v1/admin/api-keys", Some(&admin), None)
        .await;
    let id = keys["items"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/v1/admin/api-keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "last_admin_key");
    let (s, _) = api
        .call("GET", "/v1/admin/api-keys", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_never_sees_or_touches_another() {
    let api = Api::start().await;
    let (_, admin_a) = api
        .create_tenant(json!({"id": "tenant-a", "name": "A"}))
        .await;
    let (_, admin_b) = api
        .create_tenant(json!({"id": "tenant-b", "name": "B"}))
        .await;
    let (_, key_b) = api
        .call(
            "POST",
            "/v1/admin/api-keys",
            Some(&admin_b),
            Some(json!({"name": "b sync", "scope": "sync"})),
        )
        .await;
    let b_key_id = key_b["id"].as_str().unwrap();

    // A lists only its own keys.
    let (_, list_a) = api
        .call("GET", "/v1/admin/api-keys", Some(&admin_a), None)
        .await;
    assert_eq!(list_a["items"].as_array().unwrap().len(), 1);
    assert!(!list_a.to_string().contains(b_key_id));

    // A cannot delete B's key (and cannot tell it exists).
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/v1/admin/api-keys/{b_key_id}"),
            Some(&admin_a),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, _) = api
        .call(
            "GET",
            "/v1/changes",
            Some(key_b["key_secret"].as_str().unwrap()),
            None,
        )
        .await;
    assert_ne!(s, StatusCode::UNAUTHORIZED);

    // A's page token cannot be replayed to read B's partition.
    let (_, page) = api
        .call("GET", "/v1/admin/api-keys?limit=1", Some(&admin_b), None)
        .await;
    {
        let token = page["next_page"]
            .as_str()
            .expect("B has two keys: a second page");
        let (s, v) = api
            .call(
                "GET",
                &format!("/v1/admin/api-keys?limit=1&page={token}"),
                Some(&admin_a),
                None,
            )
            .await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_page_token");
    }

    // Accounts are per tenant too.
    let (s, v) = api
        .call("GET", "/v1/admin/accounts", Some(&admin_a), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"], json!([]));

    // A forged key that reuses B's key id with another secret is refused.
    let forged = format!("cgs_{b_key_id}_{}", "A".repeat(43));
    let (s, v) = api
        .call("GET", "/v1/admin/api-keys", Some(&forged), None)
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let api = Api::start().await;
    let (_, admin) = api.create_tenant(json!({"name": "T"})).await;
    let op = Some(crate::world::OPERATOR_KEY);
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<Value>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/tenants",
            op,
            Some(json!({"name": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/tenants",
            op,
            Some(json!({"name": "x", "id": "UPPER"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/tenants",
            op,
            Some(json!({"name": "x", "extra": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/tenants",
            op,
            Some(json!(["not an object"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/tenants",
            op,
            Some(json!({"name": "a\u{0}b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": "k", "scope": "root"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": "k"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "GET",
            "/v1/admin/api-keys?limit=0",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "GET",
            "/v1/admin/api-keys?limit=abc",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "GET",
            "/v1/admin/api-keys?page=%%%",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_page_token",
        ),
        (
            "GET",
            "/v1/admin/api-keys?page=bm90LWEtdG9rZW4",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_page_token",
        ),
        (
            "DELETE",
            "/v1/admin/api-keys/not-a-ulid",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "GET",
            "/v1/users/bad%23user/google",
            Some(&admin),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "GET",
            "/v1/nope",
            Some(&admin),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "PUT",
            "/v1/tenants",
            op,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "GET",
            "/v1/admin/api-keys",
            Some("Basic abc"),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "GET",
            "/v1/admin/api-keys",
            Some("cgs_garbage"),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
    ];
    for (method, path, key, body, status, code) in cases {
        let (s, v) = api.call(method, path, key, body).await;
        assert_error(s, &v, status, code);
        let text = v.to_string();
        assert!(
            !text.contains("panicked") && !text.contains("dynamodb") && !text.contains("Dynamo"),
            "{text}"
        );
    }

    // Not JSON at all, or the wrong media type.
    let resp = api
        .http
        .post(format!("{}/v1/admin/api-keys", api.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");
    let resp = api
        .http
        .post(format!("{}/v1/admin/api-keys", api.base))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported_media_type");
}

/// The stored key is a hash: the raw table holds no key plaintext.
#[tokio::test]
async fn keys_are_stored_hashed() {
    let app = crate::world::aws_app().await;
    let base = crate::world::serve(local_server::router(app.clone())).await;
    let http = reqwest::Client::new();
    let v: Value = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(crate::world::OPERATOR_KEY)
        .json(&json!({"id": "hashed", "name": "H"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let plaintext = v["admin_key"]["key_secret"].as_str().unwrap();
    let secret_part = &plaintext[4 + 27..];
    let id = shared::domain::ApiKeyId::parse(v["admin_key"]["id"].as_str().unwrap()).unwrap();
    let item = app
        .store
        .table()
        .get(&shared::store::keys::api_key(&id))
        .await
        .unwrap()
        .unwrap();
    let raw = item.data.to_string();
    assert!(!raw.contains(secret_part), "{raw}");
    assert_eq!(item.data["hash"].as_str().unwrap().len(), 64);
}

/// Two admins deleting each other's key at the same moment: one wins, the other is told it
/// holds the last admin key — the tenant is never locked out.
#[tokio::test]
async fn concurrent_deletes_never_remove_the_last_admin_key() {
    let api = std::sync::Arc::new(Api::start().await);
    for round in 0..8 {
        let (_, a) = api
            .create_tenant(json!({"name": format!("Race {round}")}))
            .await;
        let (s, b) = api
            .call(
                "POST",
                "/v1/admin/api-keys",
                Some(&a),
                Some(json!({"name": "second", "scope": "admin"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let b_secret = b["key_secret"].as_str().unwrap().to_owned();
        let b_id = b["id"].as_str().unwrap().to_owned();
        let (_, keys) = api.call("GET", "/v1/admin/api-keys", Some(&a), None).await;
        let a_id = keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .find(|id| *id != b_id)
            .unwrap();
        let (api1, api2) = (api.clone(), api.clone());
        let (a1, b1) = (a.clone(), b_secret.clone());
        let one = tokio::spawn(async move {
            api1.call(
                "DELETE",
                &format!("/v1/admin/api-keys/{a_id}"),
                Some(&b1),
                None,
            )
            .await
        });
        let two = tokio::spawn(async move {
            api2.call(
                "DELETE",
                &format!("/v1/admin/api-keys/{b_id}"),
                Some(&a1),
                None,
            )
            .await
        });
        let (r1, r2) = (one.await.unwrap(), two.await.unwrap());
        let statuses = [r1.0, r2.0];
        assert!(statuses.contains(&StatusCode::NO_CONTENT), "{statuses:?}");
        // The loser either saw the last-key rule or had its own key deleted under it.
        assert!(
            statuses.iter().all(|s| [
                StatusCode::NO_CONTENT,
                StatusCode::CONFLICT,
                StatusCode::UNAUTHORIZED
            ]
            .contains(s)),
            "{statuses:?}"
        );
        let a_works = api
            .call("GET", "/v1/admin/api-keys", Some(&a), None)
            .await
            .0
            == StatusCode::OK;
        let b_works = api
            .call("GET", "/v1/admin/api-keys", Some(&b_secret), None)
            .await
            .0
            == StatusCode::OK;
        assert!(
            a_works ^ b_works,
            "exactly one admin key is left (a: {a_works}, b: {b_works})"
        );
    }
}

#[tokio::test]
async fn bodies_must_be_json_objects() {
    let api = Api::start().await;
    let (_, admin) = api.create_tenant(json!({"name": "T"})).await;
    let (s, v) = api
        .call(
            "POST",
            "/v1/tenants",
            Some(crate::world::OPERATOR_KEY),
            Some(json!(["arr-tenant", "From an array"])),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let (s, v) = api
        .call(
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(json!(["from an array", "admin"])),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    let (s, v) = api
        .call(
            "GET",
            "/v1/changes?after=ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            Some(&admin),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn the_operator_lists_every_tenant_page_by_page_and_no_one_else_can() {
    let api = Api::start().await;
    let mut made = Vec::new();
    for i in 0..5 {
        let (id, _) = api
            .create_tenant(json!({"name": format!("Listed {i}")}))
            .await;
        made.push(id);
    }
    let (_, admin) = api.create_tenant(json!({"name": "An admin"})).await;
    // Two at a time, to the end: every tenant made is listed once, with what the operator
    // needs and no secret.
    let mut seen: Vec<String> = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let path = match &page {
            Some(p) => format!("/v1/tenants?limit=2&page={}", urlencoding(p)),
            None => "/v1/tenants?limit=2".to_owned(),
        };
        let (s, v) = api
            .call("GET", &path, Some(crate::world::OPERATOR_KEY), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for t in items {
            assert!(t["name"].is_string() && t["created_at"].is_string(), "{t}");
            assert_eq!(t["google_client_set"], false);
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match v["next_page"].as_str() {
            Some(p) => page = Some(p.to_owned()),
            None => break,
        }
    }
    for id in &made {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} in {seen:?}"
        );
    }
    // Neither an admin key nor no key lists tenants; a bad limit is a 400.
    let (s, v) = api.call("GET", "/v1/tenants", Some(&admin), None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v) = api.call("GET", "/v1/tenants", None, None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v) = api
        .call(
            "GET",
            "/v1/tenants?limit=0",
            Some(crate::world::OPERATOR_KEY),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
