//! Signing in to the console: when `[server] read_tokens` are set, a page asks for a token and
//! keeps it in an `HttpOnly`, `SameSite=Strict` cookie, never in a URL. A bearer header works
//! too (for scripts and proxies that add one).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::Deserialize;

use super::page::{Chrome, Section, respond, shell};
use crate::AppState;

/// The cookie holding the token (base64url, so any token is a valid cookie value).
pub const COOKIE: &str = "surveyor_token";

/// The token in the console's cookie, if one was sent.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| URL_SAFE_NO_PAD.decode(value.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|t| !t.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// Whether `token` may read: any read or trigger token.
fn may_read(state: &AppState, token: &str) -> bool {
    let c = &state.config;
    c.read_tokens
        .iter()
        .chain(&c.trigger_tokens)
        .any(|t| t.matches(token))
}

fn tokens_needed(state: &AppState) -> bool {
    !state.config.read_tokens.is_empty()
}

/// A local path to go back to after signing in; anything else (another host, `//evil`) is
/// replaced by the catalog.
fn local(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// Lets a request through when no tokens are configured or it presents a valid one; sends a
/// browser to the sign-in page otherwise.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !tokens_needed(&state) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let ok = bearer(headers).is_some_and(|t| may_read(&state, t))
        || cookie_token(headers).is_some_and(|t| may_read(&state, &t));
    if ok {
        return next.run(request).await;
    }
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let stale = cookie_token(request.headers()).is_some();
    if request.method() == Method::GET || request.method() == Method::HEAD {
        let mut to = format!("/login?{}", super::query(&[("next", target)]));
        if stale {
            to.push_str("&expired=1");
        }
        return see_other(&to);
    }
    respond(
        StatusCode::UNAUTHORIZED,
        shell(
            "Sign in",
            Section::Login,
            Chrome::default(),
            html! { h1 { "Sign in" } p { "A read token is required." } },
        ),
    )
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    super::page::secure(r.headers_mut());
    r
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

fn login_page(status: StatusCode, next: &str, message: Option<&str>) -> Response {
    let body = html! {
        section.login aria-labelledby="signin" {
            h1 #signin { "Sign in" }
            p { "This catalog needs a read token. It is kept in a cookie only this site can read, "
                "and is never put in a URL." }
            @if let Some(m) = message {
                div.notice.error role="alert" { p { (m) } }
            }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Read token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                p { button.primary type="submit" { "Sign in" } }
            }
        }
    };
    respond(
        status,
        shell("Sign in", Section::Login, Chrome::default(), body),
    )
}

/// `GET /login`: the form (or straight on when no token is needed).
pub async fn form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let next = local(q.next.as_deref());
    if !tokens_needed(&state) {
        return see_other(next);
    }
    let message = q
        .expired
        .is_some()
        .then_some("That token is no longer accepted; sign in again.");
    login_page(StatusCode::OK, next, message)
}

/// `POST /login` with `token` and `next` (a form): sets the cookie and goes back.
pub async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let mut token = None;
    let mut next = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "token" => token = Some(v.trim().to_string()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let next = local(next.as_deref()).to_string();
    if !tokens_needed(&state) {
        return see_other(&next);
    }
    match token.filter(|t| !t.is_empty()) {
        Some(t) if may_read(&state, &t) => {
            let mut r = see_other(&next);
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                URL_SAFE_NO_PAD.encode(t.as_bytes())
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not one this server accepts."),
        ),
        None => login_page(StatusCode::BAD_REQUEST, &next, Some("Enter a token.")),
    }
}

/// `POST /logout`: forgets the cookie.
pub async fn logout() -> Response {
    let mut r = see_other("/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("surveyor_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Chrome {
            signed_in: tokens_needed(state) && cookie_token(&parts.headers).is_some(),
        })
    }
}
