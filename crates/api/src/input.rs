//! Limits on what a request may carry, checked before any handler or query runs: URI and body
//! size, how long a body may take, NUL characters, and the length of single values, so hostile
//! input is a 4xx, not a 500.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The longest path and query accepted; a longer one is no legitimate catalog query.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// The largest request body read (only the sync trigger takes POSTs, and it reads nothing).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The longest single parameter value (a ref, a search term, a label, a cursor).
pub const MAX_VALUE_BYTES: usize = 1024;

/// Refuses oversized URIs and bodies and NUL anywhere in the URI (Postgres rejects NUL in text,
/// and no entity field can hold one).
pub async fn screen(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if target.len() > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request target is {} bytes; at most {MAX_URI_BYTES} are accepted",
            target.len()
        ))
        .into_response();
    }
    if has_nul(target) {
        return ApiError::BadRequest(
            "NUL characters are not allowed in paths or parameters".into(),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    if chunked {
        // No length up front: read at most the limit, within the time allowed, so a body that
        // never ends (or arrives a byte at a time) cannot hold memory or the connection.
        let (parts, body) = request.into_parts();
        let allowed = state.config.body_read_timeout;
        return match tokio::time::timeout(allowed, axum::body::to_bytes(body, MAX_BODY_BYTES)).await
        {
            Ok(Ok(bytes)) => {
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            }
            Ok(Err(_)) => too_large(),
            Err(_) => ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                allowed.as_secs_f64()
            ))
            .into_response(),
        };
    }
    next.run(request).await
}

fn too_large() -> Response {
    ApiError::PayloadTooLarge(format!("the request body is over {MAX_BODY_BYTES} bytes"))
        .into_response()
}

/// `%00` (the only way a NUL reaches a request line) or a literal NUL.
fn has_nul(target: &str) -> bool {
    target.contains("%00") || target.contains('\0')
}

/// A parameter value fit for a query: not too long, no NUL (a decoded cursor can hold one even
/// when the URI did not).
pub fn value<'a>(name: &str, v: &'a str) -> Result<&'a str, ApiError> {
    if v.len() > MAX_VALUE_BYTES {
        return Err(ApiError::BadRequest(format!(
            "{name}: {} bytes is longer than the {MAX_VALUE_BYTES} allowed",
            v.len()
        )));
    }
    if v.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "{name}: NUL characters are not allowed"
        )));
    }
    Ok(v)
}

/// [`value`] for an optional parameter.
pub fn opt(name: &str, v: Option<&str>) -> Result<(), ApiError> {
    v.map(|v| value(name, v)).transpose().map(|_| ())
}

/// The key of the entity a path names (`/{kind}/{namespace}/{name}`), or a 400 saying which
/// part cannot be part of any entity's ref (so nothing unvalidated reaches a query).
pub fn path_ref(kind: &str, namespace: &str, name: &str) -> Result<String, ApiError> {
    for (part, v) in [("kind", kind), ("namespace", namespace), ("name", name)] {
        value(part, v)?;
    }
    surveyor_model::EntityRef::new(kind, namespace, name)
        .map(|r| r.key())
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A path that did not decode (invalid UTF-8 after percent-decoding, a missing segment).
pub fn bad_path(e: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::BadRequest(format!("path: {}", e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_in_paths_are_validated_before_use() {
        assert_eq!(
            path_ref("Component", "Default", "Web").ok().as_deref(),
            Some("component:default/web")
        );
        for (k, ns, n) in [
            ("component", "default", "../etc"),
            ("component", "..", "x"),
            ("comp'onent", "default", "x"),
            ("component", "default", "a\0b"),
            ("component", "default", ""),
        ] {
            assert!(
                matches!(path_ref(k, ns, n), Err(ApiError::BadRequest(_))),
                "{k}/{ns}/{n}"
            );
        }
        assert!(value("q", &"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
        assert!(has_nul("/a?q=%00") && !has_nul("/a?q=%2500"));
    }
}
