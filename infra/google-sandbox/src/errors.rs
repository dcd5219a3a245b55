//! Google's error bodies: the Calendar (apiary) format, the People (One Platform / gRPC)
//! format, and the OAuth token-endpoint format.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Which Google surface a request belongs to; decides the error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Calendar,
    People,
    UserInfo,
}

impl Surface {
    pub fn of_path(path: &str) -> Option<Surface> {
        if path.starts_with("/calendar/v3/") || path.starts_with("/batch/calendar/v3") {
            Some(Surface::Calendar)
        } else if path.starts_with("/v1/people") || path.starts_with("/v1/contactGroups") {
            Some(Surface::People)
        } else if path.starts_with("/oauth2/v2/userinfo")
            || path.starts_with("/v1/userinfo")
            || path.starts_with("/userinfo/v2/me")
        {
            Some(Surface::UserInfo)
        } else {
            None
        }
    }
}

/// An API error, rendered in the format of its surface (boxed: errors travel in `Result`s).
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorDetail>);

impl std::ops::Deref for ApiError {
    type Target = ErrorDetail;
    fn deref(&self) -> &ErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorDetail {
        &mut self.0
    }
}

/// What an `ApiError` says.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    pub surface: Surface,
    pub status: StatusCode,
    /// Calendar `errors[].reason` (also used for the People `errors[]` array).
    pub reason: String,
    pub message: String,
    pub domain: String,
    /// People: `google.rpc.ErrorInfo` reason, if any.
    pub info_reason: Option<String>,
    pub location: Option<(&'static str, &'static str)>,
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub fn new(surface: Surface, status: StatusCode, reason: &str, message: &str) -> Self {
        ApiError(Box::new(ErrorDetail {
            surface,
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            domain: "global".to_string(),
            info_reason: None,
            location: None,
            headers: Vec::new(),
        }))
    }

    pub fn with_domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_string();
        self
    }

    pub fn with_info(mut self, info_reason: &str) -> Self {
        self.info_reason = Some(info_reason.to_string());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_location(mut self, location_type: &'static str, location: &'static str) -> Self {
        self.location = Some((location_type, location));
        self
    }

    pub fn not_found(surface: Surface) -> Self {
        match surface {
            Surface::People => Self::new(
                surface,
                StatusCode::NOT_FOUND,
                "notFound",
                "Requested entity was not found.",
            ),
            _ => Self::new(surface, StatusCode::NOT_FOUND, "notFound", "Not Found"),
        }
    }

    pub fn failed_precondition(message: &str) -> Self {
        Self::new(
            Surface::People,
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            message,
        )
        .with_grpc_status("FAILED_PRECONDITION")
    }

    /// People errors whose gRPC status is not the one implied by the HTTP code.
    pub fn with_grpc_status(mut self, status: &str) -> Self {
        self.domain = format!("grpc:{status}");
        self
    }
}

impl ErrorDetail {
    fn grpc_status(&self) -> &str {
        if let Some(s) = self.domain.strip_prefix("grpc:") {
            return s;
        }
        match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    pub fn body(&self) -> Value {
        match self.surface {
            Surface::People => {
                let mut err = json!({
                    "code": self.status.as_u16(),
                    "message": self.message,
                    "status": self.grpc_status(),
                });
                if let Some(info) = &self.info_reason {
                    err["details"] = json!([{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": info,
                        "domain": "people.googleapis.com",
                        "metadata": {"service": "people.googleapis.com"}
                    }]);
                }
                json!({ "error": err })
            }
            Surface::Calendar | Surface::UserInfo => {
                let mut item = json!({
                    "domain": self.domain,
                    "reason": self.reason,
                    "message": self.message,
                });
                if let Some((lt, l)) = self.location {
                    item["locationType"] = json!(lt);
                    item["location"] = json!(l);
                }
                json!({"error": {"errors": [item], "code": self.status.as_u16(), "message": self.message}})
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(name.clone(), v);
            }
        }
        resp
    }
}

/// An OAuth token-endpoint error (`{"error": "...", "error_description": "..."}`).
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: &str) -> Self {
        OAuthError {
            status,
            error,
            description: description.to_string(),
        }
    }

    pub fn invalid_grant(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}
