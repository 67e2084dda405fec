//! The page shell every console page shares: head, navigation, landmarks, the stylesheet, and
//! the error page. Everything goes through maud, which escapes every interpolated value.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::error::ApiError;

/// The stylesheet, served at [`CSS_PATH`] (no external assets, nothing from a CDN).
pub const CSS: &str = include_str!("console.css");
/// Versioned by content, so it can be cached for good.
pub const CSS_PATH: &str = "/console.css";

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Catalog,
    Ownership,
    Drift,
    Scorecards,
    Changes,
    Runs,
    Login,
}

const NAV: &[(Section, &str, &str)] = &[
    (Section::Catalog, "/", "Catalog"),
    (Section::Ownership, "/audit/ownership", "Ownership gaps"),
    (Section::Drift, "/audit/drift", "Drift"),
    (Section::Scorecards, "/scorecards", "Scorecards"),
    (Section::Changes, "/changes", "Changes"),
    (Section::Runs, "/runs", "Runs"),
];

/// What the shell needs to know about the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chrome {
    /// Show the sign-out button (the visitor signed in with a token cookie).
    pub signed_in: bool,
}

/// A whole page: `title` in the tab and as the heading's context, `body` inside `<main>`.
pub fn shell(title: &str, section: Section, chrome: Chrome, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · surveyor" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "surveyor" }
                    @if section != Section::Login {
                        nav aria-label="Console" {
                            ul {
                                @for (s, href, label) in NAV {
                                    li {
                                        @if *s == section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                                li { a href="/docs" { "API" } }
                            }
                        }
                    }
                    @if chrome.signed_in {
                        form method="post" action="/logout" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// An HTML answer with the headers every console page carries: no caching of catalog data by
/// shared caches, no framing, no sniffing, and a policy that allows nothing but our own
/// stylesheet (there is no script).
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(h);
    response
}

/// Headers for every console answer.
pub fn secure(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A console error: the API's error, shown as a page with the same status.
#[derive(Debug)]
pub struct PageError {
    pub error: ApiError,
    pub chrome: Chrome,
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            chrome: Chrome::default(),
        }
    }
}

impl From<surveyor_store::StoreError> for PageError {
    fn from(e: surveyor_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "That request cannot be answered",
            StatusCode::SERVICE_UNAVAILABLE => "Busy — try again shortly",
            _ => "Something went wrong",
        };
        let body = html! {
            h1 { (heading) }
            div.notice.error role="alert" { p { (self.error.to_string()) } }
            p { a href="/" { "Back to the catalog" } }
        };
        let mut response = respond(status, shell(heading, Section::Catalog, self.chrome, body));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::limit::RETRY_AFTER_SECS),
            );
        }
        response
    }
}
