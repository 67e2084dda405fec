//! Backstage's error shape for everything under `/api/catalog`, whichever layer answered (a
//! handler, the token check, the input screen, an unknown route or method):
//! `{error: {name, message}, request: {method, url}, response: {statusCode}}`.
//! `request.url` is the URL below the plugin's mount, as Backstage's express router reports it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

/// The prefix Backstage's catalog API is served under.
pub const PREFIX: &str = "/api/catalog";
/// Error bodies are small; one larger than this is passed on untouched.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Whether a request path is one of Backstage's catalog routes.
pub fn is_catalog(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|r| r.starts_with('/'))
}

/// Backstage's error name for a status, for bodies that did not name one.
fn name_for(status: u16) -> &'static str {
    match status {
        400 | 408 | 413 | 414 | 431 => "InputError",
        401 => "AuthenticationError",
        403 | 405 => "NotAllowedError",
        404 => "NotFoundError",
        409 => "ConflictError",
        503 => "ServiceUnavailableError",
        _ => "Error",
    }
}

/// The Backstage name of one of surveyor's error codes (`{"error": code, "detail": ...}`).
fn name_for_code(code: &str, status: u16) -> &'static str {
    match code {
        "bad_request" | "payload_too_large" | "uri_too_long" | "request_timeout" => "InputError",
        "not_found" => "NotFoundError",
        "unauthorized" => "AuthenticationError",
        "forbidden" | "method_not_allowed" => "NotAllowedError",
        "conflict" => "ConflictError",
        "overloaded" => "ServiceUnavailableError",
        _ => name_for(status),
    }
}

/// Rewrites error answers on `/api/catalog` routes into Backstage's shape, keeping the status
/// and headers (`Retry-After`).
pub async fn reshape(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if !is_catalog(&path) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let url = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .strip_prefix(PREFIX)
        .unwrap_or("/")
        .to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let code = status.as_u16();
    let error = match &parsed {
        // Already Backstage's (or validate-entity's `{errors}`): add what is missing.
        Value::Object(m) if m.get("error").is_some_and(Value::is_object) => m["error"].clone(),
        Value::Object(m) if m.contains_key("errors") => {
            return Response::from_parts(parts, Body::from(bytes));
        }
        Value::Object(m) if m.get("error").is_some_and(Value::is_string) => json!({
            "name": name_for_code(m["error"].as_str().unwrap_or_default(), code),
            "message": m.get("detail").and_then(Value::as_str).unwrap_or_default(),
        }),
        // A plain-text rejection (a body that is not JSON, a path that does not decode).
        _ => json!({
            "name": name_for(code),
            "message": String::from_utf8_lossy(&bytes).trim().to_string(),
        }),
    };
    let out = json!({
        "error": error,
        "request": {"method": method, "url": url},
        "response": {"statusCode": code},
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(out.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalog_paths_are_reshaped() {
        assert!(is_catalog("/api/catalog"));
        assert!(is_catalog("/api/catalog/entities"));
        assert!(!is_catalog("/api/catalogue"));
        assert!(!is_catalog("/api/v1/entities"));
        assert_eq!(name_for_code("uri_too_long", 414), "InputError");
        assert_eq!(name_for(404), "NotFoundError");
    }
}
