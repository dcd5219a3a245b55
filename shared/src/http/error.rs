//! JSON errors: `{"error": {"code": "...", "message": "..."}}`. The message is meant for the
//! caller; internal causes go to the log only.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (a 429 or 503 the caller should wait out).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After` of `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// An internal failure: the cause chain goes to the log, the caller gets a generic
    /// message (and a retry hint where the cause is transient).
    pub fn internal(cause: &(dyn std::error::Error + 'static), retryable: bool) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        if retryable {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a backing service is unavailable; retry later",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::InvalidPageToken => {
                Self::bad_request("invalid_page_token", "the page token is not valid")
            }
            crate::store::StoreError::TooLarge { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "record_too_large",
                format!(
                    "the record is larger than the product stores (at most {} KB once normalized)",
                    crate::sync::pair::MAX_RECORD_BYTES / 1024
                ),
            ),
            e => {
                let retryable = e.is_retryable();
                Self::internal(&e, retryable)
            }
        }
    }
}

impl From<crate::secrets::SecretsError> for ApiError {
    fn from(e: crate::secrets::SecretsError) -> Self {
        Self::internal(&e, true)
    }
}

impl From<crate::queue::QueueError> for ApiError {
    fn from(e: crate::queue::QueueError) -> Self {
        Self::internal(&e, true)
    }
}

impl From<crate::domain::validate::Invalid> for ApiError {
    fn from(e: crate::domain::validate::Invalid) -> Self {
        ApiError::invalid(e.0)
    }
}

impl From<std::convert::Infallible> for ApiError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

impl<E: Into<ApiError>> From<crate::store::repo::AccountUpdateError<E>> for ApiError {
    fn from(e: crate::store::repo::AccountUpdateError<E>) -> Self {
        use crate::store::repo::AccountUpdateError;
        match e {
            AccountUpdateError::Missing => {
                ApiError::not_found("no Google account is connected for this user")
            }
            AccountUpdateError::Refused(e) => e.into(),
            AccountUpdateError::Store(crate::store::StoreError::Conflict) => ApiError::conflict(
                "concurrent_update",
                "the account was changed concurrently; retry",
            ),
            AccountUpdateError::Store(e) => e.into(),
        }
    }
}
