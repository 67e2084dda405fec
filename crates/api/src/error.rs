//! Errors as the API answers them: a status and `{"error": "...", "detail": "..."}`; the
//! Backstage-compatible routes wrap the same in Backstage's `{"error": {"name", "message"}}`.
//! An overloaded answer (503) also says when to retry (`Retry-After`), in both shapes.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// Too many expensive requests at once: 503 with `Retry-After`.
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UriTooLong(_) => "uri_too_long",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded(_) => "overloaded",
            Self::Internal(_) => "internal",
        }
    }

    /// Backstage's error names, for the `/api/catalog` routes.
    pub(crate) fn backstage(self) -> Response {
        let name = match self {
            Self::BadRequest(_)
            | Self::PayloadTooLarge(_)
            | Self::UriTooLong(_)
            | Self::RequestTimeout(_) => "InputError",
            Self::NotFound(_) => "NotFoundError",
            Self::Unauthorized(_) => "AuthenticationError",
            Self::Forbidden(_) | Self::MethodNotAllowed(_) => "NotAllowedError",
            Self::Conflict(_) => "ConflictError",
            Self::Overloaded(_) => "ServiceUnavailableError",
            Self::Unavailable(_) | Self::Internal(_) => "Error",
        };
        let status = self.status();
        let retry = self.retry_after();
        let mut response = (
            status,
            Json(json!({"error": {"name": name, "message": self.to_string()},
                "response": {"statusCode": status.as_u16()}})),
        )
            .into_response();
        with_retry_after(&mut response, retry);
        response
    }

    /// Seconds a client should wait before asking again, for the answers that have one.
    fn retry_after(&self) -> Option<u64> {
        matches!(self, Self::Overloaded(_)).then_some(crate::limit::RETRY_AFTER_SECS)
    }
}

impl From<surveyor_store::StoreError> for ApiError {
    fn from(e: surveyor_store::StoreError) -> Self {
        match e {
            surveyor_store::StoreError::Invalid(m) => Self::BadRequest(m),
            other => {
                tracing::error!(error = %other, "catalog query failed");
                Self::Internal("the catalog database failed; see the server log".into())
            }
        }
    }
}

fn with_retry_after(response: &mut Response, seconds: Option<u64>) {
    if let Some(s) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after();
        let mut response = (
            self.status(),
            Json(crate::bodies::ErrorBody {
                error: self.code().to_string(),
                detail: self.to_string(),
            }),
        )
            .into_response();
        with_retry_after(&mut response, retry);
        response
    }
}
