//! The published contract, `docs/openapi.yaml`, against the router the local server serves
//! (the same routes as the deployed HTTP API), on the embedded adapters: no external server.
//!
//! * The spec documents exactly the routes the router serves ([`ROUTES`], itself checked
//!   against the `.route(...)` calls in the functions' sources), each answered by its handler
//!   (never the router's "no such route" 404 or its 405), and every other method on a
//!   documented path answers 405.
//! * `not-available-yet` marks exactly the operations that answer 501.
//! * Each operation's `security` is what the code asks for: `operatorKey`, `tenantKey` (with
//!   the `admin` tag meaning the admin scope, `crm` the sync scope) or none.
//! * The documented limits of the path parameters (the id newtypes) and of `limit` are the
//!   ones the code enforces.
//!
//! The spec is read with a small line-based reader (no YAML crate in the workspace): it relies
//! on the file's block style with two-space indentation.

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use shared::app::{App, AppState};
use shared::clock::{SharedClock, SystemClock};
use shared::config::{Config, GoogleEndpoints};
use shared::queue::inprocess::InProcessQueue;
use shared::secrets::{embedded::EmbeddedSecrets, Secrets};
use shared::store::{embedded::EmbeddedTable, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

/// Every route of `local_server::router`, as `(METHOD, path)`. Keep it in step with the
/// functions' `routes()` (checked by `the_route_list_matches_the_functions_sources`) and
/// with the spec (checked by `the_spec_documents_exactly_the_routers_routes`).
const ROUTES: &[(&str, &str)] = &[
    // admin-config
    ("POST", "/v1/tenants"),
    ("GET", "/v1/tenants"),
    ("POST", "/v1/admin/api-keys"),
    ("GET", "/v1/admin/api-keys"),
    ("DELETE", "/v1/admin/api-keys/{key_id}"),
    ("GET", "/v1/admin/accounts"),
    ("GET", "/v1/admin/accounts/{user}"),
    ("GET", "/v1/admin/deliveries"),
    ("POST", "/v1/admin/deliveries/redeliver"),
    ("POST", "/v1/admin/webhook/test"),
    ("GET", "/v1/admin/google-client"),
    ("PUT", "/v1/admin/google-client"),
    ("GET", "/v1/admin/settings"),
    ("PATCH", "/v1/admin/settings"),
    // crm-api
    ("POST", "/v1/users/{user}/google/connect"),
    ("GET", "/v1/users/{user}/google"),
    ("PATCH", "/v1/users/{user}/google"),
    ("DELETE", "/v1/users/{user}/google"),
    ("GET", "/v1/users/{user}/google/calendars"),
    ("GET", "/v1/users/{user}/google/contact-groups"),
    ("POST", "/v1/users/{user}/sync"),
    ("POST", "/v1/users/{user}/availability"),
    ("POST", "/v1/availability"),
    ("GET", "/v1/users/{user}/events/{crm_id}"),
    ("PUT", "/v1/users/{user}/events/{crm_id}"),
    ("DELETE", "/v1/users/{user}/events/{crm_id}"),
    ("GET", "/v1/users/{user}/contacts/{crm_id}"),
    ("PUT", "/v1/users/{user}/contacts/{crm_id}"),
    ("DELETE", "/v1/users/{user}/contacts/{crm_id}"),
    ("POST", "/v1/users/{user}/contacts:push"),
    ("POST", "/v1/users/{user}/gmail/token"),
    ("POST", "/v1/users/{user}/settings-link"),
    ("GET", "/v1/changes"),
    ("POST", "/v1/changes/ack"),
    // oauth-callback
    ("GET", "/oauth/callback"),
    // google-webhook
    ("POST", "/webhooks/google/calendar"),
];

/// The sources whose `routes()` the local server merges.
const ROUTE_SOURCES: &[&str] = &[
    "functions/admin-config/src/lib.rs",
    "functions/crm-api/src/lib.rs",
    "functions/oauth-callback/src/lib.rs",
    "functions/google-webhook/src/lib.rs",
];

const OPERATOR_KEY: &str = "op_contract_test_operator_key_0123456789";
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];
const NOT_AVAILABLE: &str = "not-available-yet";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_owned()
}

fn spec_text() -> String {
    let path = repo_root().join("docs/openapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---- the spec, read line by line -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Security {
    Operator,
    Tenant,
    Open,
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    path: String,
    tags: Vec<String>,
    security: Option<Security>,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn not_available(&self) -> bool {
        self.tags.iter().any(|t| t == NOT_AVAILABLE)
    }

    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    fn security(&self) -> &Security {
        self.security
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no explicit `security` in the spec", self.label()))
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `key:` or `key: value` at this line's indentation, without quotes around the key.
fn key_of(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if t.starts_with('#') || t.starts_with("- ") {
        return None;
    }
    let (k, v) = t
        .split_once(':')
        .filter(|(_, v)| v.is_empty() || v.starts_with(' '))?;
    let k = k.trim().trim_matches('\'').trim_matches('"');
    Some((k, v.trim()))
}

/// A path key is the whole line up to its final `:` (paths may hold `:`, as `contacts:push`).
fn path_key(line: &str) -> Option<String> {
    let t = line.trim();
    let k = t.strip_suffix(':')?.trim_matches('\'').trim_matches('"');
    k.starts_with('/').then(|| k.to_owned())
}

fn flow_list(v: &str) -> Vec<String> {
    v.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches('\'').trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn scheme_of(name: &str) -> Security {
    match name {
        "operatorKey" => Security::Operator,
        "tenantKey" => Security::Tenant,
        other => panic!("unknown security scheme {other:?} in the spec"),
    }
}

/// The operations under `paths:`, in file order.
fn spec_operations(spec: &str) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    // Inside an operation (not a path-level key such as `parameters:`), and inside its
    // block-style `security:` or `tags:` list.
    let mut in_op = false;
    let mut in_security = false;
    let mut in_tags = false;
    for line in spec.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let ind = indent(line);
        if ind == 0 {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        match ind {
            2 => {
                path = Some(path_key(line).unwrap_or_else(|| panic!("not a path key: {line:?}")));
                (in_op, in_security, in_tags) = (false, false, false);
            }
            4 => {
                (in_security, in_tags) = (false, false);
                let (k, _) = key_of(line).unwrap_or_else(|| panic!("unexpected line {line:?}"));
                in_op = METHODS.contains(&k);
                if in_op {
                    ops.push(Operation {
                        method: k.to_ascii_uppercase(),
                        path: path.clone().expect("a method under a path"),
                        tags: Vec::new(),
                        security: None,
                    });
                }
            }
            6 if in_op => {
                (in_security, in_tags) = (false, false);
                let op = ops.last_mut().expect("inside an operation");
                match key_of(line) {
                    Some(("tags", "")) => in_tags = true,
                    Some(("tags", v)) => op.tags = flow_list(v),
                    Some(("security", "[]")) => op.security = Some(Security::Open),
                    Some(("security", "")) => in_security = true,
                    Some(("security", v)) => panic!("{}: unsupported security {v:?}", op.label()),
                    _ => {}
                }
            }
            8 if in_op && (in_tags || in_security) => {
                let op = ops.last_mut().expect("inside an operation");
                let item = line.trim().strip_prefix("- ").unwrap_or_else(|| {
                    panic!("{}: expected a list item, got {line:?}", op.label())
                });
                if in_tags {
                    op.tags
                        .push(item.trim_matches('\'').trim_matches('"').to_owned());
                } else {
                    let item = format!("  {item}");
                    let (name, scopes) = key_of(&item)
                        .unwrap_or_else(|| panic!("{}: unreadable security {item:?}", op.label()));
                    assert_eq!(
                        scopes,
                        "[]",
                        "{}: bearer schemes take no scopes",
                        op.label()
                    );
                    assert!(
                        op.security.is_none(),
                        "{}: one security requirement per operation",
                        op.label()
                    );
                    op.security = Some(scheme_of(name));
                }
            }
            _ => {}
        }
    }
    assert!(!ops.is_empty(), "no operations found under `paths:`");
    ops
}

/// The lines of the mapping `name:` at `ind` spaces inside the top-level `components:`
/// section `section` (e.g. `parameters`, `schemas`).
fn component<'a>(spec: &'a str, section: &str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut in_components, mut in_section, mut inside) = (false, false, false);
    for line in spec.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let ind = indent(line);
        match ind {
            0 => {
                in_components = line.trim_end() == "components:";
                in_section = false;
                inside = false;
            }
            2 if in_components => {
                in_section = key_of(line).is_some_and(|(k, _)| k == section);
                inside = false;
            }
            4 if in_section => inside = key_of(line).is_some_and(|(k, _)| k == name),
            _ if inside => out.push(line),
            _ => {}
        }
    }
    assert!(
        !out.is_empty(),
        "components.{section}.{name} not found in the spec"
    );
    out
}

/// A scalar of a schema (`maxLength`, `minimum`, …), following one `$ref` to a schema.
fn schema_number(spec: &str, lines: &[&str], key: &str) -> Option<usize> {
    for line in lines {
        match key_of(line) {
            Some((k, v)) if k == key => {
                return Some(v.parse().unwrap_or_else(|_| panic!("{key}: {v:?}")))
            }
            Some(("$ref", v)) => {
                let target = v.trim_matches('\'').trim_matches('"');
                let name = target
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unsupported $ref {target}"));
                if let Some(n) = schema_number(spec, &component(spec, "schemas", name), key) {
                    return Some(n);
                }
            }
            _ => {}
        }
    }
    None
}

fn parameter_number(spec: &str, parameter: &str, key: &str) -> usize {
    schema_number(spec, &component(spec, "parameters", parameter), key)
        .unwrap_or_else(|| panic!("components.parameters.{parameter} has no {key}"))
}

// ---- the product on embedded adapters ----------------------------------------------------

struct Api {
    router: axum::Router,
    admin_key: String,
    sync_key: String,
}

async fn app() -> AppState {
    let clock: SharedClock = Arc::new(SystemClock);
    let secrets = EmbeddedSecrets::in_memory();
    secrets
        .put(
            shared::secrets::names::OPERATOR_KEY,
            OPERATOR_KEY.to_owned().into(),
        )
        .await
        .expect("seed the operator key");
    // Jobs are queued and never run: the worker is not this test's subject.
    let (queue, _jobs) = InProcessQueue::new();
    Arc::new(App::new(
        Config {
            table_name: "contract-test".into(),
            secrets_prefix: "contract-test/".into(),
            queue_url: None,
            public_base_url: "http://127.0.0.1:9".into(),
            // Nothing listens there: no request of these tests reaches Google.
            google: GoogleEndpoints::single_host("http://127.0.0.1:9"),
        },
        Store::new(Arc::new(EmbeddedTable::in_memory(clock.clone()))),
        Arc::new(secrets),
        Arc::new(queue),
        clock,
    ))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The router's own answers: no route for the path, or not for this method.
    fn is_routing_miss(&self) -> bool {
        self.status == StatusCode::METHOD_NOT_ALLOWED
            || (self.status == StatusCode::NOT_FOUND
                && self.body["error"]["message"] == "no such route")
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(key) = key {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let req = match body {
        Some(b) => req
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = if bytes.is_empty() {
        Value::Null
    } else if !json {
        // The OAuth callback answers HTML pages.
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        headers,
        body,
    }
}

impl Api {
    async fn start() -> Self {
        let router = local_server::router(app().await);
        let a = call(
            &router,
            "POST",
            "/v1/tenants",
            Some(OPERATOR_KEY),
            Some(json!({"id": "contract", "name": "Contract test"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let admin_key = a.body["admin_key"]["key_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let s = call(
            &router,
            "POST",
            "/v1/admin/api-keys",
            Some(&admin_key),
            Some(json!({"name": "crm backend", "scope": "sync"})),
        )
        .await;
        assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
        let sync_key = s.body["key_secret"].as_str().unwrap().to_owned();
        Self {
            router,
            admin_key,
            sync_key,
        }
    }

    /// The key an operation documents (the admin key for tenant keys: it has every scope).
    fn key_for(&self, op: &Operation) -> Option<&str> {
        match op.security() {
            Security::Operator => Some(OPERATOR_KEY),
            Security::Tenant => Some(&self.admin_key),
            Security::Open => None,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        call(&self.router, method, path, key, body).await
    }
}

/// A concrete, valid path for a templated one.
fn concrete(path: &str) -> String {
    let mut out = path.to_owned();
    for (param, value) in [
        ("{user}", "jane.doe@example.com"),
        ("{crm_id}", "MTG-2024_0001"),
        ("{key_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ] {
        out = out.replace(param, value);
    }
    assert!(
        !out.contains('{'),
        "{path}: a path parameter this test does not know; add a valid value to `concrete`"
    );
    out
}

/// A body that lets a request reach its handler (the handlers of 501 routes read none).
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/v1/tenants") => Some(json!({"name": "Contract tenant"})),
        ("POST", "/v1/admin/api-keys") => Some(json!({"name": "contract key", "scope": "sync"})),
        ("POST" | "PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    }
}

fn set(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeSet<(String, String)> {
    pairs.into_iter().collect()
}

// ---- the tests ---------------------------------------------------------------------------

#[test]
fn the_spec_documents_exactly_the_routers_routes() {
    let ops = spec_operations(&spec_text());
    let spec = set(ops.iter().map(|o| (o.method.clone(), o.path.clone())));
    assert_eq!(spec.len(), ops.len(), "an operation is documented twice");
    let router = set(ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    assert_eq!(router.len(), ROUTES.len(), "ROUTES lists a route twice");
    let undocumented: Vec<_> = router.difference(&spec).collect();
    let unrouted: Vec<_> = spec.difference(&router).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes the router serves but docs/openapi.yaml does not document: {undocumented:?}\n\
         operations docs/openapi.yaml documents but the router does not serve: {unrouted:?}"
    );
}

/// The `(METHOD, path)` pairs of every `.route("path", method(..).method(..))` call.
fn source_routes(source: &str, file: &str) -> Vec<(String, String)> {
    assert!(
        !source.contains(".nest(") && !source.contains(".route_service("),
        "{file}: nested routers or services: teach this test to read them"
    );
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(at) = source[rest..].find(".route(") {
        let start = rest + at + ".route(".len();
        let open = start + source[start..].find('"').expect("a path literal");
        let close = open + 1 + source[open + 1..].find('"').expect("the literal's end");
        let path = &source[open + 1..close];
        // The method router: up to the parenthesis that closes `.route(`.
        let (mut depth, mut i, mut in_str) = (1usize, close + 1, false);
        while depth > 0 {
            match bytes[i] {
                b'\\' if in_str => i += 1,
                b'"' => in_str = !in_str,
                b'(' if !in_str => depth += 1,
                b')' if !in_str => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        let expr = &source[close + 1..i - 1];
        let mut found = false;
        for m in METHODS {
            let mut from = 0;
            while let Some(p) = expr[from..].find(&format!("{m}(")) {
                let p = from + p;
                let before = expr[..p].chars().last().unwrap_or(' ');
                if !(before.is_ascii_alphanumeric() || before == '_') {
                    out.push((m.to_ascii_uppercase(), path.to_owned()));
                    found = true;
                }
                from = p + m.len();
            }
        }
        assert!(found, "{file}: no method found for route {path}");
        rest = i;
    }
    out
}

/// Each route has its own API Gateway route in the SAM template (one the template leaves
/// out would still reach crm-api through `$default`, but another function's would not, and
/// per-route throttling and metrics need the key).
#[test]
fn the_sam_template_routes_every_route() {
    let path = repo_root().join("template.yaml");
    let template = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let keys = set(template.lines().filter_map(|line| {
        let key = line.trim().strip_prefix("RouteKey: ")?;
        let (method, path) = key.split_once(' ')?;
        Some((method.to_owned(), path.to_owned()))
    }));
    let unrouted: Vec<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .filter(|route| !keys.contains(route))
        .collect();
    assert!(
        unrouted.is_empty(),
        "routes template.yaml has no RouteKey for: {unrouted:?}"
    );
}

#[test]
fn the_route_list_matches_the_functions_sources() {
    let mut from_sources = Vec::new();
    for file in ROUTE_SOURCES {
        let path = repo_root().join(file);
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        from_sources.extend(source_routes(&source, file));
    }
    let sources = set(from_sources);
    let listed = set(ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    let missing: Vec<_> = sources.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&sources).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes in the functions' sources missing from ROUTES (and so from the contract \
         check): {missing:?}\nROUTES entries no source declares: {stale:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_other_methods_answer_405() {
    let api = Api::start().await;
    let ops = spec_operations(&spec_text());
    let paths: BTreeSet<&str> = ops.iter().map(|o| o.path.as_str()).collect();
    for path in paths {
        let url = concrete(path);
        let documented: Vec<&Operation> = ops.iter().filter(|o| o.path == path).collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            match documented.iter().find(|o| o.method == method) {
                Some(op) => {
                    let a = api
                        .call(method, &url, api.key_for(op), body_for(method, path))
                        .await;
                    assert!(
                        !a.is_routing_miss(),
                        "{}: the router does not route it: {} {}",
                        op.label(),
                        a.status,
                        a.body
                    );
                }
                None => {
                    let a = api
                        .call(method, &url, Some(&api.admin_key), body_for(method, path))
                        .await;
                    assert_eq!(
                        a.status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path} is not documented but answers {}: {}",
                        a.status,
                        a.body
                    );
                    assert_eq!(a.code(), "method_not_allowed", "{}", a.body);
                    let allow = a
                        .headers
                        .get(http::header::ALLOW)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
                    for op in &documented {
                        assert!(
                            allow.split(',').any(|m| m.trim() == op.method),
                            "{method} {path}: Allow {allow:?} lacks {}",
                            op.method
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn exactly_the_operations_marked_not_available_yet_answer_501() {
    let api = Api::start().await;
    for op in spec_operations(&spec_text()) {
        let a = api
            .call(
                &op.method,
                &concrete(&op.path),
                api.key_for(&op),
                body_for(&op.method, &op.path),
            )
            .await;
        if op.not_available() {
            assert_eq!(
                a.status,
                StatusCode::NOT_IMPLEMENTED,
                "{} is tagged {NOT_AVAILABLE} but answers {}: {}",
                op.label(),
                a.status,
                a.body
            );
            assert_eq!(a.code(), "not_implemented", "{}", a.body);
        } else {
            assert_ne!(
                a.status,
                StatusCode::NOT_IMPLEMENTED,
                "{} answers 501: tag it {NOT_AVAILABLE} in the spec",
                op.label()
            );
        }
    }
}

#[tokio::test]
async fn each_operation_asks_for_the_key_its_spec_names() {
    let api = Api::start().await;
    for op in spec_operations(&spec_text()) {
        let url = concrete(&op.path);
        let body = || body_for(&op.method, &op.path);
        let label = op.label();
        let none = api.call(&op.method, &url, None, body()).await;
        match op.security() {
            Security::Open => {
                assert_ne!(
                    none.status,
                    StatusCode::UNAUTHORIZED,
                    "{label} has security: []"
                );
                continue;
            }
            _ => {
                assert_eq!(
                    none.status,
                    StatusCode::UNAUTHORIZED,
                    "{label}: {}",
                    none.body
                );
                assert_eq!(none.code(), "unauthenticated");
                assert_eq!(
                    none.headers.get(http::header::WWW_AUTHENTICATE).unwrap(),
                    "Bearer",
                    "{label}"
                );
            }
        }
        let bogus = api
            .call(&op.method, &url, Some("cgs_not_a_key"), body())
            .await;
        assert_eq!(bogus.status, StatusCode::UNAUTHORIZED, "{label}");
        match op.security() {
            Security::Operator => {
                let a = api
                    .call(&op.method, &url, Some(&api.admin_key), body())
                    .await;
                assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{label}: a tenant key");
            }
            Security::Tenant => {
                let a = api.call(&op.method, &url, Some(OPERATOR_KEY), body()).await;
                assert_eq!(
                    a.status,
                    StatusCode::UNAUTHORIZED,
                    "{label}: the operator key"
                );
                let s = api
                    .call(&op.method, &url, Some(&api.sync_key), body())
                    .await;
                if op.has_tag("admin") {
                    assert_eq!(s.status, StatusCode::FORBIDDEN, "{label}: a sync key");
                    assert_eq!(s.code(), "forbidden");
                } else {
                    assert!(
                        op.has_tag("crm"),
                        "{label}: tag tenant-key operations `admin` or `crm` (their scope)"
                    );
                    assert!(
                        !matches!(s.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                        "{label}: a sync key is refused: {} {}",
                        s.status,
                        s.body
                    );
                }
            }
            Security::Open => unreachable!(),
        }
    }
}

#[tokio::test]
async fn path_parameters_are_validated_within_the_documented_limits() {
    let spec = spec_text();
    let api = Api::start().await;
    let user_max = parameter_number(&spec, "User", "maxLength");
    let crm_max = parameter_number(&spec, "CrmId", "maxLength");
    let key_min = parameter_number(&spec, "KeyId", "minLength");
    let key_max = parameter_number(&spec, "KeyId", "maxLength");
    assert_eq!((key_min, key_max), (26, 26), "API key ids are ULIDs");

    let cases: Vec<(&str, String, bool)> = vec![
        ("{user}", "u".repeat(user_max), true),
        ("{user}", "u".repeat(user_max + 1), false),
        ("{user}", "a%20b".into(), false),
        ("{user}", "a%23b".into(), false),
        ("{user}", "Jane.Doe_1+crm=x@example.com".into(), true),
        ("{crm_id}", "c".repeat(crm_max), true),
        ("{crm_id}", "c".repeat(crm_max + 1), false),
        ("{crm_id}", "a%2Fb".into(), false),
        ("{key_id}", "0".repeat(key_max), true),
        ("{key_id}", "0".repeat(key_min - 1), false),
        ("{key_id}", "01arz3ndektsv4rrffq69g5fav".into(), false),
    ];
    for op in spec_operations(&spec) {
        for (param, value, valid) in &cases {
            if !op.path.contains(param) {
                continue;
            }
            let url = concrete(&op.path.replace(param, value));
            let a = api
                .call(
                    &op.method,
                    &url,
                    api.key_for(&op),
                    body_for(&op.method, &op.path),
                )
                .await;
            let what = format!("{} with {param} = {value:?}", op.label());
            if *valid {
                assert_ne!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.body);
                assert!(!a.is_routing_miss(), "{what}: {}", a.body);
            } else {
                assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.body);
                assert_eq!(a.code(), "invalid_path", "{what}");
            }
        }
    }
}

/// The documented bounds of an operation's `limit` query parameter, if it has one: the shared
/// `Limit` parameter or one of its own.
fn limit_bounds(spec: &str, op: &Operation) -> Option<(usize, usize)> {
    let lines = spec_operation_lines(spec, op);
    if lines
        .iter()
        .any(|l| l.contains("#/components/parameters/Limit"))
    {
        return Some((
            parameter_number(spec, "Limit", "minimum"),
            parameter_number(spec, "Limit", "maximum"),
        ));
    }
    let at = lines.iter().position(|l| l.trim() == "- name: limit")?;
    let end = lines[at + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with("- "))
        .map_or(lines.len(), |p| at + 1 + p);
    let own = &lines[at..end];
    Some((
        schema_number(spec, own, "minimum").expect("limit has a minimum"),
        schema_number(spec, own, "maximum").expect("limit has a maximum"),
    ))
}

#[tokio::test]
async fn page_size_limits_are_the_documented_ones() {
    let spec = spec_text();
    let api = Api::start().await;
    let mut checked = 0;
    for op in spec_operations(&spec) {
        if op.not_available() || op.method != "GET" {
            continue;
        }
        let Some((min, max)) = limit_bounds(&spec, &op) else {
            continue;
        };
        checked += 1;
        let url = concrete(&op.path);
        for (limit, ok) in [
            (min.to_string(), true),
            (max.to_string(), true),
            ((min - 1).to_string(), false),
            ((max + 1).to_string(), false),
            ("ten".to_owned(), false),
        ] {
            let a = api
                .call(
                    "GET",
                    &format!("{url}?limit={limit}"),
                    api.key_for(&op),
                    None,
                )
                .await;
            let what = format!("{} limit={limit}", op.label());
            if ok {
                assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.body);
            } else {
                assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}");
                assert_eq!(a.code(), "invalid_query", "{what}");
            }
        }
        let documents_page = spec_operation_lines(&spec, &op)
            .iter()
            .any(|l| l.contains("#/components/parameters/Page"));
        if documents_page {
            let a = api
                .call(
                    "GET",
                    &format!("{url}?page=not-a-token"),
                    api.key_for(&op),
                    None,
                )
                .await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", op.label());
            assert_eq!(a.code(), "invalid_page_token");
        }
        let a = api
            .call("GET", &format!("{url}?unknown=1"), api.key_for(&op), None)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", op.label());
        assert_eq!(a.code(), "invalid_query");
    }
    assert!(
        checked >= 3,
        "the paginated lists were not found in the spec"
    );
}

/// The lines of one operation in the spec.
fn spec_operation_lines<'a>(spec: &'a str, op: &Operation) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut in_paths, mut in_path, mut inside) = (false, false, false);
    for line in spec.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match indent(line) {
            0 => {
                in_paths = line.trim_end() == "paths:";
                in_path = false;
                inside = false;
            }
            2 if in_paths => {
                in_path = path_key(line).as_deref() == Some(op.path.as_str());
                inside = false;
            }
            4 if in_path => {
                inside = key_of(line).is_some_and(|(k, _)| k.eq_ignore_ascii_case(&op.method));
            }
            _ if inside => out.push(line),
            _ => {}
        }
    }
    out
}

#[test]
fn the_line_reader_reads_the_specs_shape() {
    let spec = "openapi: 3.0.3\npaths:\n  /a/{x}:\n    parameters:\n      - name: x\n    get:\n      tags: [admin, not-available-yet]\n      security:\n        - tenantKey: []\n      responses:\n        '200':\n          description: ok\n    post:\n      tags:\n        - operator\n      security:\n        - operatorKey: []\n  '/b:c':\n    delete:\n      security: []\ncomponents:\n  parameters:\n    X:\n      schema:\n        $ref: '#/components/schemas/Y'\n  schemas:\n    Y:\n      type: string\n      maxLength: 7\n";
    let ops = spec_operations(spec);
    let labels: Vec<String> = ops.iter().map(Operation::label).collect();
    assert_eq!(labels, ["GET /a/{x}", "POST /a/{x}", "DELETE /b:c"]);
    assert_eq!(ops[0].tags, ["admin", NOT_AVAILABLE]);
    assert_eq!(ops[0].security, Some(Security::Tenant));
    assert_eq!(ops[1].tags, ["operator"]);
    assert_eq!(ops[1].security, Some(Security::Operator));
    assert_eq!(ops[2].security, Some(Security::Open));
    assert_eq!(parameter_number(spec, "X", "maxLength"), 7);
}
