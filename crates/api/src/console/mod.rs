//! The console: server-rendered HTML pages for the people who read the catalog (search, each
//! entity with its provenance, classification, grades and history, its graph as SVG, audits,
//! scorecards, changes, runs).
//!
//! Pages read the same store queries as `/api/v1`; nothing runs in the browser (there is no
//! script), so every page works with JavaScript off. maud escapes every value it writes.

mod audit;
mod auth;
mod catalog;
mod changes;
mod entity;
mod graph;
mod page;
mod runs;
mod score;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

pub(crate) use auth::cookie_token;
pub use page::CSS_PATH;

/// The console's routes. They check read tokens themselves (a cookie, or a bearer header),
/// so they sit outside the API's bearer-only guard.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/", get(catalog::page))
        .route("/entities/{kind}/{namespace}/{name}", get(entity::page))
        .route(
            "/entities/{kind}/{namespace}/{name}/graph",
            get(graph::page),
        )
        .route("/changes", get(changes::page))
        .route("/runs", get(runs::page))
        .route("/audit/ownership", get(audit::ownership))
        .route("/audit/drift", get(audit::drift))
        .route("/scorecards", get(score::list))
        .route("/scorecards/{name}", get(score::page))
        .route_layer(axum::middleware::from_fn_with_state(state, auth::guard));
    Router::new()
        .merge(guarded)
        .route("/login", get(auth::form).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .route(CSS_PATH, get(stylesheet))
}

async fn stylesheet() -> Response {
    let mut r = page::CSS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console page of an entity, from its ref (`kind:namespace/name`, any case).
pub(crate) fn entity_href(entity_ref: &str) -> String {
    match surveyor_model::EntityRef::parse_with(entity_ref, None, "default") {
        Ok(r) => format!(
            "/entities/{}/{}/{}",
            segment(&r.kind().to_ascii_lowercase()),
            segment(r.namespace()),
            segment(r.name())
        ),
        // Not a ref (a finding about something else): search for it instead.
        Err(_) => format!("/?{}", query(&[("q", entity_ref)])),
    }
}

/// A query string from pairs, leaving out empty values.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// A form value trimmed, `None` when empty (an empty filter box filters nothing).
pub(crate) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A time as people read it in a table: `2026-12-03 16:31 UTC`.
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
