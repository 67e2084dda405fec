//! Errors as the API answers them: a status and `{"error": "...", "detail": "..."}`; the
//! Backstage-compatible routes wrap the same in Backstage's `{"error": {"name", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
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
    Unavailable(String),
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
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// Backstage's error names, for the `/api/catalog` routes.
    pub(crate) fn backstage(self) -> Response {
        let name = match self {
            Self::BadRequest(_) | Self::PayloadTooLarge(_) | Self::UriTooLong(_) => "InputError",
            Self::NotFound(_) => "NotFoundError",
            Self::Unauthorized(_) => "AuthenticationError",
            Self::Forbidden(_) | Self::MethodNotAllowed(_) => "NotAllowedError",
            Self::Conflict(_) => "ConflictError",
            Self::Unavailable(_) | Self::Internal(_) => "Error",
        };
        let status = self.status();
        (
            status,
            Json(json!({"error": {"name": name, "message": self.to_string()},
                "response": {"statusCode": status.as_u16()}})),
        )
            .into_response()
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({"error": self.code(), "detail": self.to_string()})),
        )
            .into_response()
    }
}
