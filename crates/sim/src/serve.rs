//! What the fake vendor APIs have in common: a loopback server around a state behind a mutex,
//! answers as status, headers and body, faults switched on per target (and, for the APIs that
//! answer JSON values, applied the same way), request quotas, ETags.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How a fake answers a request (method, URI, headers, body), with the wait before the answer
/// goes out.
pub(crate) type AnswerFn<S> = fn(&mut S, &Method, &Uri, &HeaderMap, &[u8]) -> (Answer, Duration);

/// The state, even if a handler panicked while holding it.
fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake's server on a free loopback port. Dropping it stops the server.
pub(crate) struct Server<S> {
    url: String,
    state: Arc<Mutex<S>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S: Send + 'static> Server<S> {
    /// Answers every request with `answer`, over the state `state` makes from the server's URL
    /// (`http://127.0.0.1:port`). The state is locked while `answer` runs, not while the answer
    /// waits to go out.
    pub(crate) async fn start(
        state: impl FnOnce(&str) -> S,
        answer: AnswerFn<S>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(state(&url)));
        let handler = move |State(state): State<Arc<Mutex<S>>>,
                            method: Method,
                            uri: Uri,
                            headers: HeaderMap,
                            body: Bytes| async move {
            let (answer, delay) = answer(&mut lock(&state), &method, &uri, &headers, &body);
            respond(answer, delay).await
        };
        let router = Router::new()
            .fallback(handler)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, state, task })
    }
}

impl<S> Server<S> {
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }
}

impl<S> Drop for Server<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request quota that refills at the end of each window.
pub(crate) struct Quota {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    window: Duration,
    pub(crate) reset_at: SystemTime,
}

impl Quota {
    /// A full quota whose first window starts at `now`.
    pub(crate) fn new(limit: u64, window: Duration, now: SystemTime) -> Self {
        Self {
            limit,
            remaining: limit,
            window,
            reset_at: now + window,
        }
    }

    pub(crate) fn refresh(&mut self, now: SystemTime) {
        if now >= self.reset_at {
            self.remaining = self.limit;
            self.reset_at = now + self.window;
        }
    }

    /// When the window ends, in whole seconds since the epoch (rounded up).
    pub(crate) fn reset_epoch(&self) -> u64 {
        self.reset_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0)
    }
}

/// How a vendor answers: its JSON content type and the shape of its error bodies.
pub(crate) struct Dialect {
    pub(crate) content_type: &'static str,
    pub(crate) error_body: fn(StatusCode, &str) -> Value,
}

impl Dialect {
    /// `body` as the vendor sends JSON.
    pub(crate) fn json(&self, status: StatusCode, body: &Value) -> Answer {
        Answer::json_as(status, self.content_type, body)
    }

    /// An error with this message, in the vendor's shape.
    pub(crate) fn error(&self, status: StatusCode, message: &str) -> Answer {
        self.json(status, &(self.error_body)(status, message))
    }
}

/// An answer before it is sent.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// A body sent as it is produced (a Kubernetes watch) instead of `body`.
    pub(crate) stream: Option<axum::body::Body>,
}

impl Answer {
    /// `body` as JSON with this `content-type`.
    pub(crate) fn json_as(status: StatusCode, content_type: &str, body: &Value) -> Self {
        Self::text_as(
            status,
            content_type,
            serde_json::to_vec(body).unwrap_or_default(),
        )
    }

    /// `body` as it is, with this `content-type`.
    pub(crate) fn text_as(
        status: StatusCode,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            stream: None,
        }
    }

    /// A `200` whose body is `stream`, with this `content-type`.
    pub(crate) fn streamed(content_type: &str, stream: axum::body::Body) -> Self {
        Self {
            stream: Some(stream),
            ..Self::text_as(StatusCode::OK, content_type, Vec::new())
        }
    }

    pub(crate) fn header(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.headers.push((name.into(), value.to_string()));
        self
    }
}

/// Sends `answer` after `delay`. A header that is not valid HTTP is left out.
async fn respond(answer: Answer, delay: Duration) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = match answer.stream {
        Some(stream) => (answer.status, stream).into_response(),
        None => (answer.status, answer.body).into_response(),
    };
    for (k, v) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(&v))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The first half of `text`, cut on a character boundary: a body cut off mid-way.
fn first_half(mut text: String) -> String {
    let mut half = text.len() / 2;
    while !text.is_char_boundary(half) {
        half -= 1;
    }
    text.truncate(half);
    text
}

/// `s` with every byte but the unreserved characters of RFC 3986 written as `%XX`: how the
/// fakes write a path segment or a query value into a URL, and how a test can.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A weak ETag over `value`.
pub(crate) fn weak_etag(value: &impl Hash) -> String {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

/// A request header's value, if it is text.
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request's `If-None-Match` names `etag`.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    header(headers, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status and a GitHub-style JSON message.
    Status(u16),
    /// A secondary rate limit: 403 with `retry-after` and GitHub's message.
    SecondaryLimit { retry_after_secs: u64 },
    /// Wait this long before answering normally (a slow page; a client timeout if long enough).
    Delay(Duration),
    /// The first half of the real body: a page cut off mid-way.
    Truncate,
    /// An HTML error page where JSON was expected.
    BadJson,
    /// HTTP 200 with a GraphQL `errors` entry of this type and no data.
    GraphqlError(String),
    /// The page's first node comes back `null` with a `FORBIDDEN` error at its path (what an
    /// item behind SAML enforcement looks like); the rest of the page is intact.
    ForbiddenNode,
    /// `429 Too Many Requests` with `retry-after` (seconds).
    TooManyRequests { retry_after_secs: u64 },
    /// The page as served, minus its way to the next one, so it looks like the last page
    /// (`hasNextPage: false`; no `rel="next"` link, continue token, `more` or `nextPage`)
    /// while the totals it carries (`totalCount`, `remainingItemCount`, `total`) stay true.
    DropNext,
    /// A well-formed, final page with no items: the list looks empty although it is not.
    EmptyList,
}

/// A fault switched on for requests to one target (each fake says what its targets are), doing
/// `A` to them: a [`FaultAction`] on every fake but Jira's, which has its own actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault<A = FaultAction> {
    pub target: String,
    pub action: A,
    /// Matching requests let through before the fault starts.
    pub skip: usize,
    /// How many matching requests fail; `None` is forever.
    pub times: Option<usize>,
    /// Only GraphQL pages asking for at least this many nodes fail (a query too big to answer;
    /// the GitHub and GitLab fakes check it, the others ignore it).
    pub min_page: Option<u64>,
}

impl<A> Fault<A> {
    pub fn new(target: &str, action: A) -> Self {
        Self {
            target: target.to_string(),
            action,
            skip: 0,
            times: None,
            min_page: None,
        }
    }

    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    pub fn min_page(mut self, n: u64) -> Self {
        self.min_page = Some(n);
        self
    }

    /// Whether the fault is for `target`: a target ending in `*` is a prefix; `*` alone matches
    /// everything. (The GitHub fake matches exact targets only, the Jira fake its own way.)
    pub(crate) fn matches(&self, target: &str) -> bool {
        self.target == "*"
            || self.target == target
            || self
                .target
                .strip_suffix('*')
                .is_some_and(|prefix| target.starts_with(prefix))
    }
}

/// A running fake vendor API over its state `S`, whose faults do `A` and whose counters are
/// `St`: [`GithubFake`](crate::GithubFake), [`GitlabFake`](crate::GitlabFake),
/// [`JiraFake`](crate::JiraFake), [`KubeFake`](crate::KubeFake),
/// [`PagerDutyFake`](crate::PagerDutyFake). Dropping it stops its server.
pub struct Fake<S, A, St> {
    pub(crate) server: Server<S>,
    /// Where the state keeps the faults a test switched on.
    faults: fn(&mut S) -> &mut Faults<Fault<A>>,
    /// Where the state keeps its counters.
    stats: fn(&mut S) -> &mut St,
}

impl<S: Send + 'static, A, St> Fake<S, A, St> {
    /// Serves the state (see [`Server::start`]) whose faults and counters are where `faults`
    /// and `stats` say.
    pub(crate) async fn serve(
        state: impl FnOnce(&str) -> S,
        answer: AnswerFn<S>,
        faults: fn(&mut S) -> &mut Faults<Fault<A>>,
        stats: fn(&mut S) -> &mut St,
    ) -> std::io::Result<Self> {
        Ok(Self {
            server: Server::start(state, answer).await?,
            faults,
            stats,
        })
    }
}

impl<S, A, St: Clone + Default> Fake<S, A, St> {
    /// The server's base URL, `http://127.0.0.1:port` (each fake says what it stands for).
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Switches a fault on (each fake says what its targets are); `skip` counts matching
    /// requests, pages included.
    pub fn add_fault(&self, fault: Fault<A>) {
        (self.faults)(&mut self.server.lock()).add(fault.skip, fault.times, fault);
    }

    pub fn clear_faults(&self) {
        (self.faults)(&mut self.server.lock()).clear();
    }

    /// What the fake answered so far.
    pub fn stats(&self) -> St {
        (self.stats)(&mut self.server.lock()).clone()
    }

    pub fn reset_stats(&self) {
        *(self.stats)(&mut self.server.lock()) = St::default();
    }
}

/// The faults a test switched on, each with when it starts (after `skip` matching requests)
/// and how often it fires (`times`; `None` is forever).
pub(crate) struct Faults<F>(Vec<Armed<F>>);

struct Armed<F> {
    fault: F,
    skip: usize,
    times: Option<usize>,
    /// Matching requests so far.
    seen: usize,
    /// Times it fired.
    applied: usize,
}

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<F> Faults<F> {
    pub(crate) fn add(&mut self, skip: usize, times: Option<usize>, fault: F) {
        self.0.push(Armed {
            fault,
            skip,
            times,
            seen: 0,
            applied: 0,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The first fault that `matches` the request and is due, counting the request against
    /// each matching fault up to that one.
    pub(crate) fn due(&mut self, matches: impl Fn(&F) -> bool) -> Option<&F> {
        for a in &mut self.0 {
            if !matches(&a.fault) {
                continue;
            }
            a.seen += 1;
            if a.seen > a.skip && a.times.is_none_or(|t| a.applied < t) {
                a.applied += 1;
                return Some(&a.fault);
            }
        }
        None
    }
}

/// An answer whose body is a JSON value, before a fault is applied to it: status, headers
/// besides `content-type`, body.
pub(crate) type ValueAnswer = (StatusCode, Vec<(&'static str, String)>, Value);

/// An API that answers JSON values (Kubernetes, PagerDuty), with faults by request path that
/// act on the value a request would have had.
pub(crate) trait JsonApi {
    /// The `content-type` of its JSON.
    const CONTENT_TYPE: &'static str;
    /// What a proxy in front of it answers when it is down (a `BadJson` fault).
    const PROXY_ERROR_PAGE: &'static str;
    fn faults(&mut self) -> &mut Faults<Fault>;
    /// The answer, faults aside.
    fn answer(&mut self, uri: &Uri, headers: &HeaderMap) -> ValueAnswer;
    /// A `Status` fault's answer.
    fn failure(status: StatusCode) -> ValueAnswer;
    /// A `TooManyRequests` or `SecondaryLimit` fault's answer.
    fn too_many_requests(retry_after_secs: u64) -> ValueAnswer;
    /// Makes a list answer look like its last page (with `empty`, also without items).
    fn cut_list(body: &mut Value, empty: bool);
}

/// `text` with the API's content type and `headers`.
fn json_text<A: JsonApi>(status: StatusCode, headers: Vec<(&str, String)>, text: String) -> Answer {
    let mut a = Answer::text_as(status, A::CONTENT_TYPE, text);
    for (k, v) in headers {
        a.header(k, v);
    }
    a
}

/// Answers a request on a [`JsonApi`] (it reads only the URI and the headers), with the fault
/// due for its path applied.
pub(crate) fn answer_json_api<A: JsonApi>(
    api: &mut A,
    _: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    _: &[u8],
) -> (Answer, Duration) {
    let fault = api
        .faults()
        .due(|f| f.matches(uri.path()))
        .map(|f| f.action.clone());
    let (status, headers, mut body) = api.answer(uri, headers);
    let answer = match fault {
        None | Some(FaultAction::GraphqlError(_)) | Some(FaultAction::ForbiddenNode) => {
            json_text::<A>(status, headers, body.to_string())
        }
        Some(FaultAction::Status(code)) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (status, headers, body) = A::failure(code);
            json_text::<A>(status, headers, body.to_string())
        }
        Some(
            FaultAction::TooManyRequests { retry_after_secs }
            | FaultAction::SecondaryLimit { retry_after_secs },
        ) => {
            let (status, headers, body) = A::too_many_requests(retry_after_secs);
            json_text::<A>(status, headers, body.to_string())
        }
        Some(FaultAction::Delay(d)) => {
            return (json_text::<A>(status, headers, body.to_string()), d);
        }
        Some(FaultAction::Truncate) => {
            json_text::<A>(status, headers, first_half(body.to_string()))
        }
        Some(FaultAction::BadJson) => {
            Answer::text_as(StatusCode::OK, "text/html", A::PROXY_ERROR_PAGE)
        }
        Some(FaultAction::DropNext) => {
            A::cut_list(&mut body, false);
            json_text::<A>(status, headers, body.to_string())
        }
        Some(FaultAction::EmptyList) => {
            A::cut_list(&mut body, true);
            json_text::<A>(status, headers, body.to_string())
        }
    };
    (answer, Duration::ZERO)
}
