//! Fault injection (rate limits, 429, 5xx, latency, dropped pushes) and the middleware that
//! applies faults and writes the request log.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::errors::{ApiError, Surface};
use crate::fields::Selection;
use crate::state::{LoggedRequest, State as SandboxState};
use crate::Sandbox;

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 403 `rateLimitExceeded` (domain `usageLimits`).
    RateLimitExceeded,
    /// 403 `userRateLimitExceeded` (domain `usageLimits`).
    UserRateLimitExceeded,
    /// 429 with `Retry-After`.
    TooManyRequests,
    /// 403 `quotaExceeded` (domain `usageLimits`, "Calendar usage limits exceeded."): the
    /// user's calendar is read-only for a while (hours), not a rate limit.
    QuotaExceeded,
    /// 403 `dailyLimitExceeded` (domain `usageLimits`): the project's daily quota is used up
    /// until midnight Pacific.
    DailyLimitExceeded,
    /// 500 `backendError`.
    InternalError,
    /// 503 `backendError`.
    Unavailable,
    /// Adds `latency_ms` before the request is handled.
    Latency,
    /// Push notifications are not delivered (message numbers still advance).
    DropPush,
    /// Push notifications are delivered twice (as Google redelivers when it thinks a
    /// delivery failed).
    DuplicatePush,
    /// Push notifications are held back `latency_ms` before delivery, so later ones overtake
    /// them (Google gives no ordering guarantee; message numbers are not sequential).
    DelayPush,
}

impl FaultKind {
    fn is_push(self) -> bool {
        matches!(
            self,
            FaultKind::DropPush | FaultKind::DuplicatePush | FaultKind::DelayPush
        )
    }
}

/// A fault to inject. Without `count` and `probability` it fires on every matching request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Only requests of this user (email); all users when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Fires this many times, then disappears.
    #[serde(default)]
    pub count: Option<u32>,
    /// Fires with this probability (0..=1).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Only paths starting with this prefix; by default every Calendar and People API path.
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// "Applied, then failed": the request is carried out first and only its answer is
    /// replaced by the error — what a client sees when Google did the write but the answer
    /// was lost (a 5xx on the way back, a timeout). For error kinds only.
    #[serde(default)]
    pub applied: bool,
}

impl FaultSpec {
    pub fn new(kind: FaultKind) -> Self {
        FaultSpec {
            kind,
            user: None,
            count: None,
            probability: None,
            path_prefix: None,
            retry_after_secs: None,
            latency_ms: None,
            applied: false,
        }
    }
    pub fn user(mut self, email: &str) -> Self {
        self.user = Some(email.to_string());
        self
    }
    pub fn count(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }
    pub fn retry_after_secs(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = Some(ms);
        self
    }
    /// The request is carried out, then answered with the fault's error.
    pub fn applied(mut self) -> Self {
        self.applied = true;
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
}

pub fn inject(st: &mut SandboxState, spec: FaultSpec) -> u64 {
    st.next_fault_id += 1;
    let id = st.next_fault_id;
    st.faults.push(Fault { id, spec });
    id
}

fn matches(fault: &Fault, user: Option<&str>, path: &str, api_path: bool) -> bool {
    if let Some(u) = &fault.spec.user {
        if user != Some(u.as_str()) {
            return false;
        }
    }
    match &fault.spec.path_prefix {
        Some(prefix) => path.starts_with(prefix.as_str()),
        None => api_path,
    }
}

/// Consumes one firing of `fault` if it fires now.
fn fires(fault: &mut Fault) -> bool {
    if fault.spec.count == Some(0) {
        return false;
    }
    if let Some(p) = fault.spec.probability {
        if rand::thread_rng().gen::<f64>() >= p {
            return false;
        }
    }
    if let Some(n) = fault.spec.count.as_mut() {
        *n -= 1;
    }
    true
}

/// Picks the faults that fire for this request: total added latency and the error, if any.
fn take(
    st: &mut SandboxState,
    user: Option<&str>,
    path: &str,
    api_path: bool,
) -> (u64, Option<FaultSpec>) {
    let mut latency = 0;
    let mut error = None;
    for fault in st.faults.iter_mut() {
        if fault.spec.kind.is_push() || !matches(fault, user, path, api_path) {
            continue;
        }
        if fault.spec.kind != FaultKind::Latency && error.is_some() {
            continue;
        }
        if fires(fault) {
            if fault.spec.kind == FaultKind::Latency {
                latency += fault.spec.latency_ms.unwrap_or(0);
            } else {
                error = Some(fault.spec.clone());
            }
        }
    }
    st.faults.retain(|f| f.spec.count != Some(0));
    (latency, error)
}

/// What becomes of one push notification for `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushFate {
    /// How many times it is delivered (0: dropped).
    pub copies: u32,
    /// How long it is held back before delivery.
    pub delay_ms: u64,
}

/// The fate of a push notification for `user` sent now, after the push faults that fire.
pub fn push_fate(st: &mut SandboxState, user: &str) -> PushFate {
    let mut fate = PushFate {
        copies: 1,
        delay_ms: 0,
    };
    for fault in st.faults.iter_mut() {
        if !fault.spec.kind.is_push() || fault.spec.user.as_deref().is_some_and(|u| u != user) {
            continue;
        }
        if fires(fault) {
            match fault.spec.kind {
                FaultKind::DropPush => fate.copies = 0,
                FaultKind::DuplicatePush if fate.copies > 0 => fate.copies = 2,
                FaultKind::DelayPush => fate.delay_ms += fault.spec.latency_ms.unwrap_or(0),
                _ => {}
            }
        }
    }
    st.faults.retain(|f| f.spec.count != Some(0));
    fate
}

pub fn error_for(spec: &FaultSpec, surface: Surface) -> ApiError {
    let people = surface == Surface::People;
    match spec.kind {
        FaultKind::RateLimitExceeded => rate_limited(
            surface,
            StatusCode::FORBIDDEN,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ),
        FaultKind::UserRateLimitExceeded => rate_limited(
            surface,
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        ),
        FaultKind::TooManyRequests => rate_limited(
            surface,
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        )
        .with_header(
            header::RETRY_AFTER,
            spec.retry_after_secs.unwrap_or(1).to_string(),
        ),
        FaultKind::QuotaExceeded | FaultKind::DailyLimitExceeded => quota_error(spec.kind, surface),
        FaultKind::InternalError => ApiError::new(
            surface,
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            if people {
                "Internal error encountered."
            } else {
                "Backend Error"
            },
        ),
        FaultKind::Unavailable
        | FaultKind::Latency
        | FaultKind::DropPush
        | FaultKind::DuplicatePush
        | FaultKind::DelayPush => ApiError::new(
            surface,
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "The service is currently unavailable.",
        ),
    }
}

/// A rate limit, in the `usageLimits` domain; People adds its `RATE_LIMIT_EXCEEDED` ErrorInfo.
fn rate_limited(surface: Surface, status: StatusCode, reason: &str, message: &str) -> ApiError {
    let e = ApiError::new(surface, status, reason, message).with_domain("usageLimits");
    if surface == Surface::People {
        e.with_info("RATE_LIMIT_EXCEEDED")
    } else {
        e
    }
}

/// Calendar's quota errors (403 `quotaExceeded`, `dailyLimitExceeded`). People has no such
/// reasons: its quotas answer 429 RESOURCE_EXHAUSTED.
fn quota_error(kind: FaultKind, surface: Surface) -> ApiError {
    if surface == Surface::People {
        return ApiError::new(
            surface,
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'people.googleapis.com'.",
        )
        .with_info("RATE_LIMIT_EXCEEDED");
    }
    let (reason, message) = match kind {
        FaultKind::DailyLimitExceeded => ("dailyLimitExceeded", "Daily Limit Exceeded"),
        _ => ("quotaExceeded", "Calendar usage limits exceeded."),
    };
    ApiError::new(surface, StatusCode::FORBIDDEN, reason, message).with_domain("usageLimits")
}

/// Successful JSON API responses: applies the `fields` selection and sets `ETag` from the
/// resource's `etag`.
async fn postprocess(resp: Response, selection: Option<Selection>) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !resp.status().is_success() || !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "response too large").into_response();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if let Some(etag) = value.get("etag").and_then(serde_json::Value::as_str) {
        if let Ok(v) = header::HeaderValue::from_str(etag) {
            parts.headers.insert(header::ETAG, v);
        }
    }
    let value = match selection {
        Some(sel) => sel.apply(&value),
        None => return Response::from_parts(parts, axum::body::Body::from(bytes)),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Applies injected faults to Google API requests and records every request in the log.
pub async fn log_and_faults(State(sandbox): State<Sandbox>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let surface = Surface::of_path(&path);
    let user = crate::auth::bearer(req.headers()).and_then(|t| sandbox.state().user_of_token(t));
    let api_path = matches!(surface, Some(Surface::Calendar | Surface::People))
        && !path.starts_with("/batch/");
    let (latency, error) = take(&mut sandbox.state(), user.as_deref(), &path, api_path);
    let fields = crate::params::Params::parse(query.as_deref().unwrap_or(""))
        .non_empty("fields")
        .map(str::to_string);
    // People: "Mutate requests for the same user should be sent sequentially" — a mutation
    // that arrives while another of the same user's is in progress is refused (409
    // `ABORTED`, nothing applied).
    let people_write = surface == Some(Surface::People) && method != "GET";
    let slot = match (&user, people_write, &error) {
        (Some(u), true, None) => MutationSlot::take(&sandbox, u),
        (Some(u), true, Some(spec)) if spec.applied => MutationSlot::take(&sandbox, u),
        _ => Ok(None),
    };
    let resp = match (slot, error) {
        (Err(()), _) => ApiError::new(
            Surface::People,
            StatusCode::CONFLICT,
            "aborted",
            "The operation was aborted.",
        )
        .with_grpc_status("ABORTED")
        .into_response(),
        (Ok(slot), error) => {
            if latency > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
            }
            let resp = answer(req, next, error, surface, fields).await;
            drop(slot);
            resp
        }
    };
    let at = crate::clock::rfc3339_millis(sandbox.now());
    sandbox.state().log.push(LoggedRequest {
        method,
        path,
        query,
        status: resp.status().as_u16(),
        user,
        at,
    });
    resp
}

/// A user's People mutation in progress: released when dropped (the request answered or
/// abandoned).
struct MutationSlot {
    sandbox: Sandbox,
    user: String,
}

impl MutationSlot {
    fn take(sandbox: &Sandbox, user: &str) -> Result<Option<MutationSlot>, ()> {
        if sandbox.state().people_mutating.insert(user.to_string()) {
            Ok(Some(MutationSlot {
                sandbox: sandbox.clone(),
                user: user.to_string(),
            }))
        } else {
            Err(())
        }
    }
}

impl Drop for MutationSlot {
    fn drop(&mut self) {
        self.sandbox.state().people_mutating.remove(&self.user);
    }
}

async fn answer(
    req: Request,
    next: Next,
    error: Option<FaultSpec>,
    surface: Option<Surface>,
    fields: Option<String>,
) -> Response {
    match error {
        Some(spec) if spec.applied => {
            // The write happens; the client never learns it.
            let _done = next.run(req).await;
            error_for(&spec, surface.unwrap_or(Surface::Calendar)).into_response()
        }
        Some(spec) => error_for(&spec, surface.unwrap_or(Surface::Calendar)).into_response(),
        None => match (surface, fields.as_deref().map(Selection::parse)) {
            (Some(s), Some(None)) => ApiError::new(
                s,
                StatusCode::BAD_REQUEST,
                "invalidParameter",
                "Invalid field selection",
            )
            .with_location("parameter", "fields")
            .into_response(),
            (Some(s), Some(Some(sel))) => {
                match crate::discovery::check_fields(req.method().as_str(), req.uri().path(), &sel)
                {
                    Ok(()) => postprocess(next.run(req).await, Some(sel)).await,
                    Err(bad) => ApiError::new(
                        s,
                        StatusCode::BAD_REQUEST,
                        "invalidParameter",
                        &format!("Invalid field selection {bad}"),
                    )
                    .with_location("parameter", "fields")
                    .into_response(),
                }
            }
            (Some(_), selection) => postprocess(next.run(req).await, selection.flatten()).await,
            (None, _) => next.run(req).await,
        },
    }
}
