//! A fake GitHub on loopback that serves views of simulated orgs the way GitHub documents its
//! API: GraphQL (organization repositories, teams, team members, blobs by `object(expression:)`,
//! `rateLimit`), REST (org members, users, app installation tokens) with Link pagination, ETags
//! and 304s, rate-limit headers, and faults that tests switch on per target.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::org::{Org, Person, Repo, Team};
use crate::serve::{Answer, Dialect, Fake, Faults, Quota, header, if_none_match, weak_etag};
use crate::webhook::{Vendor, WebhookSink, Webhooks};

mod hooks;
pub use hooks::webhook_events;

pub use crate::serve::{Fault, FaultAction};

/// Counters of what the fake answered, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeStats {
    pub requests: u64,
    pub graphql: u64,
    pub rest: u64,
    pub rest_not_modified: u64,
    /// Requests refused because the primary quota was spent.
    pub rate_limited: u64,
    pub faults: u64,
    pub tokens_issued: u64,
    /// Requests per target (`graphql:repositories`, `rest:/orgs/acme/members`, ...).
    pub by_target: BTreeMap<String, u64>,
}

/// A GitHub App the fake accepts installation-token requests for.
#[derive(Debug, Clone)]
pub struct FakeApp {
    pub app_id: u64,
    pub installation_id: u64,
}

/// What a [`GithubFake`] serves and counts.
pub struct GithubState {
    orgs: BTreeMap<String, Org>,
    tokens: Vec<String>,
    /// Tokens of people outside the org: GitHub redirects their member list to the public one.
    outside_tokens: Vec<String>,
    /// Answer a spent GraphQL quota the way GitHub has since 2025 (`RATE_LIMIT`,
    /// `graphql_rate_limit`) rather than the documented `RATE_LIMITED`.
    new_rate_limit_error: bool,
    app: Option<FakeApp>,
    latency: Duration,
    faults: Faults<Fault>,
    graphql_quota: Quota,
    core_quota: Quota,
    stats: FakeStats,
    /// The fake's own URL, which webhook payloads link to.
    base: String,
    /// Where org changes are announced, once [`GithubFake::send_webhooks`] ran.
    hooks: Option<Webhooks>,
}

/// The running fake; [`url`](Fake::url) is the REST base (`api_url`), e.g.
/// `http://127.0.0.1:4567`, with GraphQL at `{url}/graphql` (the Enterprise Server layout,
/// `/api/v3` and `/api/graphql`, is served too). Faults are by target: `graphql:repositories`,
/// `graphql:teams`, `graphql:team` (one team's members), `rest:/orgs/acme/members`,
/// `rest:/users/x`, or `*`. Dropping it stops the server.
pub type GithubFake = Fake<GithubState, FaultAction, FakeStats>;

/// The token the fake accepts unless told otherwise.
pub const FAKE_TOKEN: &str = "ghp_simulatedtoken0000000000000000000000";

impl GithubFake {
    /// Serves `orgs` on a free loopback port; accepts [`FAKE_TOKEN`].
    pub async fn start(orgs: Vec<Org>) -> std::io::Result<Self> {
        let state = |base: &str| {
            let now = SystemTime::now();
            let hourly = |limit| Quota::new(limit, Duration::from_secs(3600), now);
            GithubState {
                orgs: orgs
                    .into_iter()
                    .map(|o| (o.name.to_lowercase(), o))
                    .collect(),
                tokens: vec![FAKE_TOKEN.to_string()],
                outside_tokens: Vec::new(),
                new_rate_limit_error: false,
                app: None,
                latency: Duration::ZERO,
                faults: Faults::default(),
                graphql_quota: hourly(5_000),
                core_quota: hourly(5_000),
                stats: FakeStats::default(),
                base: base.to_string(),
                hooks: None,
            }
        };
        Self::serve(state, answer, |s| &mut s.faults, |s| &mut s.stats).await
    }

    /// Changes an org between runs (`fake.with_org("acme", |o| o.rename_repo(3, "x"))`).
    /// With webhooks on, the events of the change are posted.
    pub fn with_org<R>(&self, name: &str, change: impl FnOnce(&mut Org) -> R) -> Option<R> {
        let mut state = self.server.lock();
        let GithubState {
            orgs, base, hooks, ..
        } = &mut *state;
        let org = orgs.get_mut(&name.to_lowercase())?;
        let Some(hooks) = hooks else {
            return Some(change(org));
        };
        let before = org.clone();
        let result = change(org);
        hooks.post(webhook_events(base, &before, org));
        Some(result)
    }

    /// From now on, every change made through [`with_org`](Self::with_org) is announced to
    /// `sink` as an organisation webhook would announce it (see [`crate::webhook`]). The
    /// returned sender tells what was planted.
    pub async fn send_webhooks(&self, sink: WebhookSink) -> Webhooks {
        let hooks = Webhooks::start(Vendor::GitHub, sink).await;
        self.server.lock().hooks = Some(hooks.clone());
        hooks
    }

    /// A copy of an org as the fake currently serves it.
    pub fn org(&self, name: &str) -> Option<Org> {
        self.server.lock().orgs.get(&name.to_lowercase()).cloned()
    }

    /// Added to every answer (simulated network and server time).
    pub fn set_latency(&self, latency: Duration) {
        self.server.lock().latency = latency;
    }

    /// The GraphQL points per window, and the window (GitHub: 5,000 per hour).
    pub fn set_graphql_quota(&self, limit: u64, window: Duration) {
        self.server.lock().graphql_quota = Quota::new(limit, window, SystemTime::now());
    }

    /// Accepts `token` as well as [`FAKE_TOKEN`], as a member's (tests with their own values).
    pub fn add_token(&self, token: &str) {
        self.server.lock().tokens.push(token.to_string());
    }

    /// Accepts `token` as a valid token of someone who is not a member of the orgs.
    pub fn add_outside_token(&self, token: &str) {
        let mut s = self.server.lock();
        s.tokens.push(token.to_string());
        s.outside_tokens.push(token.to_string());
    }

    /// Spent quotas answer with the error form GitHub has sent since 2025 (`type: RATE_LIMIT`,
    /// `code: graphql_rate_limit`) instead of the documented `RATE_LIMITED`.
    pub fn use_new_rate_limit_error(&self, yes: bool) {
        self.server.lock().new_rate_limit_error = yes;
    }

    /// Someone else spent the GraphQL quota: it is empty until the window resets.
    pub fn spend_graphql_quota(&self) {
        self.server.lock().graphql_quota.remaining = 0;
    }

    /// Accepts installation-token requests signed for this app.
    pub fn set_app(&self, app: FakeApp) {
        self.server.lock().app = Some(app);
    }
}

/// GitHub's node ids are opaque strings; these keep a prefix per type like the real ones.
pub fn repo_node_id(repo: &Repo) -> String {
    format!("R_kgDO{:08X}", repo.id)
}

pub fn team_node_id(team: &Team) -> String {
    format!("T_kwDO{:08X}", team.id)
}

pub fn user_node_id(person: &Person) -> String {
    format!("U_kgDO{:08X}", person.id)
}

/// How GitHub answers: JSON, and errors with a message, a link to the docs and the status.
const GITHUB: Dialect = Dialect {
    content_type: "application/json; charset=utf-8",
    error_body: |status, message| json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()}),
};

/// A refusal to go on before `retry-after` seconds.
fn retry_later(status: StatusCode, message: &str, retry_after_secs: u64) -> Answer {
    let mut a = GITHUB.error(status, message);
    a.header("retry-after", retry_after_secs);
    a
}

fn answer(
    s: &mut GithubState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Answer, Duration) {
    s.stats.requests += 1;
    let mut delay = s.latency;
    let path = uri.path();
    let (prefix, path) = match path.strip_prefix("/api/v3") {
        Some(rest) => ("/api/v3", rest),
        None => ("", path),
    };
    let is_graphql = method == Method::POST && (path == "/graphql" || path == "/api/graphql");
    let request: Option<Value> = if is_graphql {
        serde_json::from_slice(body).ok()
    } else {
        None
    };
    let target = match &request {
        Some(r) => format!("graphql:{}", graphql_operation(r)),
        None if is_graphql => "graphql:invalid".to_string(),
        None => format!("rest:{path}"),
    };
    *s.stats.by_target.entry(target.clone()).or_default() += 1;
    if is_graphql {
        s.stats.graphql += 1;
    } else {
        s.stats.rest += 1;
    }

    // Token requests authenticate with the app's JWT, everything else with a token.
    if let Some(installation) = path
        .strip_prefix("/app/installations/")
        .and_then(|p| p.strip_suffix("/access_tokens"))
    {
        return (installation_token(s, installation, headers), delay);
    }
    if !authorised(s, headers) {
        return (
            GITHUB.error(StatusCode::UNAUTHORIZED, "Bad credentials"),
            delay,
        );
    }

    let first = request.as_ref().and_then(first_arg).unwrap_or_default();
    let fault = s
        .faults
        .due(|f| {
            (f.target == "*" || f.target == target) && f.min_page.is_none_or(|min| first >= min)
        })
        .map(|f| f.action.clone());
    if fault.is_some() {
        s.stats.faults += 1;
    }
    match &fault {
        Some(FaultAction::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = if *code == 502 {
                "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists."
            } else {
                "Server Error"
            };
            return (GITHUB.error(status, text), delay);
        }
        Some(FaultAction::SecondaryLimit { retry_after_secs }) => {
            let a = retry_later(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                *retry_after_secs,
            );
            return (a, delay);
        }
        Some(FaultAction::TooManyRequests { retry_after_secs }) => {
            let a = retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "API rate limit exceeded. Please retry after the time in the retry-after header.",
                *retry_after_secs,
            );
            return (a, delay);
        }
        Some(FaultAction::Delay(d)) => delay += *d,
        Some(FaultAction::GraphqlError(kind)) => {
            return (
                GITHUB.json(
                    StatusCode::OK,
                    &json!({"data": null, "errors": [{"type": kind, "message": format!("simulated {kind}")}]}),
                ),
                delay,
            );
        }
        _ => {}
    }

    let mut answer = match request {
        Some(r) => graphql(s, &r),
        None if is_graphql => GITHUB.error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        None if method == Method::GET => rest(s, prefix, path, uri.query(), headers),
        None => GITHUB.error(StatusCode::NOT_FOUND, "Not Found"),
    };
    match fault {
        Some(FaultAction::Truncate) => {
            let half = answer.body.len() / 2;
            answer.body.truncate(half);
        }
        Some(FaultAction::ForbiddenNode) => {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&answer.body) {
                let connection = graphql_operation_name(&v);
                if let Some(conn) = connection
                    && let Some(node) = v["data"]["organization"][&conn]["nodes"].get_mut(0)
                {
                    *node = Value::Null;
                    v["errors"] = json!([{
                        "type": "FORBIDDEN",
                        "path": ["organization", conn, "nodes", 0],
                        "extensions": {"saml_failure": true},
                        "locations": [{"line": 1, "column": 1}],
                        "message": "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."
                    }]);
                    answer.body = serde_json::to_vec(&v).unwrap_or_default();
                }
            }
        }
        Some(FaultAction::BadJson) => {
            answer.body =
                b"<html><body><h1>Unicorn!</h1>This page is taking too long to load.</body></html>"
                    .to_vec();
            answer.headers = vec![("content-type".into(), "text/html".into())];
        }
        Some(FaultAction::DropNext) => cut_listing(&mut answer, false),
        Some(FaultAction::EmptyList) => cut_listing(&mut answer, true),
        _ => {}
    }
    (answer, delay)
}

/// Makes a list answer look like its last page: GraphQL `hasNextPage: false` (with `empty`, no
/// nodes and a `totalCount` of 0), REST without its `rel="next"` link (with `empty`, `[]`).
/// The altered answer loses its validators, so a 304 cannot carry the fault into later runs.
fn cut_listing(answer: &mut Answer, empty: bool) {
    let Ok(mut v) = serde_json::from_slice::<Value>(&answer.body) else {
        return;
    };
    if let Some(org) = v["data"]["organization"].as_object_mut() {
        for connection in org.values_mut() {
            // A team's members sit one level down (`team { members { ... } }`).
            let connection = if connection.get("pageInfo").is_some() {
                connection
            } else {
                &mut connection["members"]
            };
            if connection.get("pageInfo").is_none() {
                continue;
            }
            connection["pageInfo"]["hasNextPage"] = json!(false);
            if empty {
                connection["nodes"] = json!([]);
                connection["totalCount"] = json!(0);
                connection["pageInfo"]["endCursor"] = Value::Null;
                connection["pageInfo"]["startCursor"] = Value::Null;
            }
        }
    } else if v.is_array() {
        if empty {
            v = json!([]);
        }
        answer
            .headers
            .retain(|(k, _)| k != "link" && k != "etag" && k != "last-modified");
    } else {
        return;
    }
    answer.body = serde_json::to_vec(&v).unwrap_or_default();
}

fn authorised(s: &GithubState, headers: &HeaderMap) -> bool {
    let Some(value) = header(headers, "authorization") else {
        return false;
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .or_else(|| value.strip_prefix("token "))
        .unwrap_or_default();
    s.tokens.iter().any(|t| t == token)
}

/// `POST /app/installations/{id}/access_tokens`, authenticated by the app's JWT. The fake checks
/// the claims GitHub checks (issuer = app id, unexpired, issued no later than now + 60 s) but not
/// the RS256 signature, which would need the app's public key.
fn installation_token(s: &mut GithubState, installation: &str, headers: &HeaderMap) -> Answer {
    let Some(app) = s.app.clone() else {
        return GITHUB.error(StatusCode::NOT_FOUND, "Not Found");
    };
    let jwt = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let claims: Option<Value> = jwt
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let valid = claims.is_some_and(|c| {
        let iss = match &c["iss"] {
            Value::String(s) => s.parse::<u64>().ok(),
            v => v.as_u64(),
        };
        iss == Some(app.app_id)
            && c["exp"].as_u64().is_some_and(|e| e > now)
            && c["iat"].as_u64().is_some_and(|i| i <= now + 60)
    });
    if !valid {
        return GITHUB.error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    }
    if installation != app.installation_id.to_string() {
        return GITHUB.error(StatusCode::NOT_FOUND, "Not Found");
    }
    s.stats.tokens_issued += 1;
    let token = format!("ghs_sim{:032}", s.stats.tokens_issued);
    s.tokens.push(token.clone());
    let expires = chrono_like(now + 3600);
    GITHUB.json(
        StatusCode::CREATED,
        &json!({"token": token, "expires_at": expires, "permissions": {"members": "read", "metadata": "read", "contents": "read"}, "repository_selection": "all"}),
    )
}

/// RFC 3339 UTC for seconds since the epoch, the way GitHub writes times.
fn chrono_like(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------------------------
// GraphQL

/// Which connection a query pages through; what faults and counters are keyed by.
fn graphql_operation(request: &Value) -> &'static str {
    let q = request["query"].as_str().unwrap_or_default();
    if q.contains("nodes(ids:") {
        "nodes"
    } else if q.contains("repositories(") {
        "repositories"
    } else if q.contains("teams(") {
        "teams"
    } else if q.contains("team(") {
        "team"
    } else if q.contains("membersWithRole(") {
        "members"
    } else {
        "other"
    }
}

/// The connection an organization answer carries (`repositories`, `teams`, ...).
fn graphql_operation_name(answer: &Value) -> Option<String> {
    answer["data"]["organization"]
        .as_object()?
        .keys()
        .next()
        .cloned()
}

/// The `first:` of the paged connection.
fn first_arg(request: &Value) -> Option<u64> {
    let q = request["query"].as_str()?;
    let field = match graphql_operation(request) {
        "repositories" => "repositories",
        "teams" => "teams",
        "team" => "members",
        _ => return None,
    };
    args_of(q, field, &request["variables"])
        .get("first")
        .and_then(Value::as_u64)
}

/// The arguments of the first `field(...)` in `query`, variables resolved.
fn args_of(query: &str, field: &str, vars: &Value) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let Some(start) = find_call(query, field) else {
        return out;
    };
    let rest = &query[start..];
    let mut depth = 0usize;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' if depth == 0 => {
                end = i;
                break;
            }
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    let mut depth = 0usize;
    let mut parts = Vec::new();
    let mut current = String::new();
    for c in rest[..end].chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    for part in parts {
        let Some((key, value)) = part.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let resolved = if let Some(var) = value.strip_prefix('$') {
            vars.get(var).cloned().unwrap_or(Value::Null)
        } else if let Some(s) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Value::String(s.to_string())
        } else if let Ok(n) = value.parse::<u64>() {
            Value::from(n)
        } else if value == "null" {
            Value::Null
        } else {
            Value::String(value.to_string())
        };
        out.insert(key.trim().to_string(), resolved);
    }
    out
}

/// The byte just after `field(` where `field` is a whole word.
fn find_call(query: &str, field: &str) -> Option<usize> {
    let pattern = format!("{field}(");
    let mut from = 0;
    while let Some(pos) = query[from..].find(&pattern) {
        let at = from + pos;
        let before = query[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            return Some(at + pattern.len());
        }
        from = at + pattern.len();
    }
    None
}

/// `alias: object(expression: "HEAD:path")` pairs asked for in a repository selection.
fn blob_aliases(query: &str, vars: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = query[from..].find("object(") {
        let at = from + pos;
        from = at + "object(".len();
        let head = query[..at].trim_end();
        let Some(head) = head.strip_suffix(':') else {
            continue;
        };
        let alias: String = head
            .trim_end()
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let args = args_of(&query[at..], "object", vars);
        if let (false, Some(expr)) = (
            alias.is_empty(),
            args.get("expression").and_then(Value::as_str),
        ) {
            out.push((alias, expr.to_string()));
        }
    }
    out
}

fn cursor(index: usize) -> String {
    STANDARD.encode(format!("cursor:v2:{index}"))
}

fn from_cursor(value: Option<&Value>) -> Option<usize> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) => STANDARD
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("cursor:v2:")?.parse::<usize>().ok())
            .map(|i| i + 1),
        Some(_) => None,
    }
}

/// The nodes a query asks for at most: GitHub's cost is that over 100, at least 1.
fn cost(query: &str, vars: &Value) -> u64 {
    let mut firsts: Vec<u64> = Vec::new();
    let mut from = 0;
    while let Some(pos) = query[from..].find("first:") {
        let at = from + pos + "first:".len();
        let value: String = query[at..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '$' || *c == '_')
            .collect();
        let n = match value.strip_prefix('$') {
            Some(var) => vars.get(var).and_then(Value::as_u64).unwrap_or(1),
            None => value.parse().unwrap_or(1),
        };
        firsts.push(n);
        from = at;
    }
    // The outer connection, and each nested one once per outer node.
    let outer = firsts.first().copied().unwrap_or(1);
    let nested: u64 = firsts.iter().skip(1).map(|_| outer).sum();
    ((1 + nested) as f64 / 100.0).round().max(1.0) as u64
}

fn graphql(s: &mut GithubState, request: &Value) -> Answer {
    let query = request["query"].as_str().unwrap_or_default();
    let vars = &request["variables"];
    let now = SystemTime::now();
    s.graphql_quota.refresh(now);
    let cost = cost(query, vars);
    if s.graphql_quota.remaining < cost {
        s.stats.rate_limited += 1;
        let error = if s.new_rate_limit_error {
            json!({"type": "RATE_LIMIT", "code": "graphql_rate_limit", "message": "API rate limit exceeded for user ID 1."})
        } else {
            json!({"type": "RATE_LIMITED", "message": "API rate limit already exceeded for user ID 1."})
        };
        let mut a = GITHUB.json(StatusCode::OK, &json!({"errors": [error]}));
        a.headers.extend(rate_headers(&s.graphql_quota, "graphql"));
        return a;
    }
    s.graphql_quota.remaining -= cost;
    let rate_limit = json!({
        "limit": s.graphql_quota.limit,
        "cost": cost,
        "remaining": s.graphql_quota.remaining,
        "used": s.graphql_quota.limit - s.graphql_quota.remaining,
        "resetAt": chrono_like(s.graphql_quota.reset_epoch()),
    });
    let headers = rate_headers(&s.graphql_quota, "graphql");

    if graphql_operation(request) == "nodes" {
        let mut body = nodes_by_id(s, query, vars);
        if query.contains("rateLimit") {
            body["data"]["rateLimit"] = rate_limit;
        }
        let mut a = GITHUB.json(StatusCode::OK, &body);
        a.headers.extend(headers);
        return a;
    }
    let login = args_of(query, "organization", vars)
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let data = match s.orgs.get(&login) {
        None => Err(
            json!({"type": "NOT_FOUND", "path": ["organization"], "locations": [{"line": 1, "column": 1}],
            "message": format!("Could not resolve to an Organization with the login of '{login}'.")}),
        ),
        Some(org) => match graphql_operation(request) {
            "repositories" => repositories(org, query, vars),
            "teams" => teams(org, query, vars),
            "team" => team_members(org, query, vars),
            _ => Err(json!({"message": "the simulator does not answer this query"})),
        },
    };
    let mut body = match data {
        Ok(organization) => json!({"data": {"organization": organization}}),
        Err(error) => json!({"data": {"organization": null}, "errors": [error]}),
    };
    if query.contains("rateLimit") {
        body["data"]["rateLimit"] = rate_limit;
    }
    let mut a = GITHUB.json(StatusCode::OK, &body);
    a.headers.extend(headers);
    a
}

/// `nodes(ids:)`: each id's live repository, or `null` with a `NOT_FOUND` error at its index,
/// as GitHub answers an id that resolves to nothing.
fn nodes_by_id(s: &GithubState, query: &str, vars: &Value) -> Value {
    let ids: Vec<String> = args_of(query, "nodes", vars)
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let blobs = blob_aliases(query, vars);
    let mut errors = Vec::new();
    let nodes: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // The id names the repository's database id: look that up, then check the whole id.
            let database_id = id
                .strip_prefix("R_kgDO")
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            let found = s.orgs.values().find_map(|org| {
                org.live_repos()
                    .filter(|r| Some(r.id) == database_id)
                    .find(|r| repo_node_id(r) == *id)
                    .map(|r| repository(org, r, &blobs))
            });
            found.unwrap_or_else(|| {
                errors.push(json!({"type": "NOT_FOUND", "path": ["nodes", i], "locations": [{"line": 3, "column": 3}],
                    "message": format!("Could not resolve to a node with the global id of '{id}'")}));
                Value::Null
            })
        })
        .collect();
    let mut body = json!({"data": {"nodes": nodes}});
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    body
}

fn page_args(query: &str, field: &str, vars: &Value) -> Result<(usize, usize), Value> {
    let args = args_of(query, field, vars);
    let first = args.get("first").and_then(Value::as_u64).unwrap_or(0);
    if first == 0 || first > 100 {
        return Err(json!({"type": "EXCESSIVE_PAGINATION", "message": format!(
            "Requesting {first} records on the `{field}` connection exceeds the `first` limit of 100 records."
        )}));
    }
    let start = from_cursor(args.get("after")).ok_or_else(
        || json!({"type": "INVALID_CURSOR_ARGUMENTS", "message": "`after` is not a valid cursor"}),
    )?;
    Ok((first as usize, start))
}

fn connection(nodes: Vec<Value>, start: usize, total: usize) -> Value {
    let end = start + nodes.len();
    json!({
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": end < total,
            "endCursor": if nodes.is_empty() { Value::Null } else { Value::String(cursor(end - 1)) },
            "hasPreviousPage": start > 0,
            "startCursor": if nodes.is_empty() { Value::Null } else { Value::String(cursor(start)) },
        },
        "nodes": nodes,
    })
}

fn repositories(org: &Org, query: &str, vars: &Value) -> Result<Value, Value> {
    let (first, start) = page_args(query, "repositories", vars)?;
    let live: Vec<&Repo> = org.live_repos().collect();
    let blobs = blob_aliases(query, vars);
    let nodes: Vec<Value> = live
        .iter()
        .skip(start)
        .take(first)
        .map(|r| repository(org, r, &blobs))
        .collect();
    Ok(json!({"repositories": connection(nodes, start, live.len())}))
}

fn repository(org: &Org, r: &Repo, blobs: &[(String, String)]) -> Value {
    let mut node = json!({
        "__typename": "Repository",
        "id": repo_node_id(r),
        "databaseId": r.id,
        "name": r.name,
        "nameWithOwner": format!("{}/{}", org.name, r.name),
        "description": r.description,
        "url": format!("https://github.com/{}/{}", org.name, r.name),
        "isArchived": r.archived,
        "isFork": r.fork,
        "isPrivate": r.private,
        "visibility": if r.private { "PRIVATE" } else { "PUBLIC" },
        "pushedAt": chrono_like(r.pushed_at),
        "primaryLanguage": {"name": r.language.name()},
        "repositoryTopics": {"nodes": r.topics.iter().map(|t| json!({"topic": {"name": t}})).collect::<Vec<_>>()},
        "defaultBranchRef": {"name": r.default_branch},
    });
    for (alias, expression) in blobs {
        let path = expression
            .split_once(':')
            .map_or(expression.as_str(), |(_, p)| p);
        node[alias] = match r.files.get(path) {
            Some(text) => {
                json!({"__typename": "Blob", "text": text, "byteSize": text.len(), "isBinary": false, "isTruncated": false})
            }
            None => Value::Null,
        };
    }
    node
}

fn teams(org: &Org, query: &str, vars: &Value) -> Result<Value, Value> {
    let (first, start) = page_args(query, "teams", vars)?;
    let members_first = args_of(query, "members", vars)
        .get("first")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let live: Vec<&Team> = org.live_teams().collect();
    let nodes: Vec<Value> = live
        .iter()
        .skip(start)
        .take(first)
        .map(|t| {
            let parent = t
                .parent
                .and_then(|p| org.teams.get(p))
                .filter(|p| p.active)
                .map(|p| json!({"id": team_node_id(p), "slug": p.slug}));
            json!({
                "id": team_node_id(t),
                "databaseId": t.id,
                "slug": t.slug,
                "name": t.name,
                "description": format!("The {} team", t.name),
                "privacy": "VISIBLE",
                "parentTeam": parent,
                "members": members_page(org, t, 0, members_first),
            })
        })
        .collect();
    Ok(json!({"teams": connection(nodes, start, live.len())}))
}

fn team_members(org: &Org, query: &str, vars: &Value) -> Result<Value, Value> {
    let slug = args_of(query, "team", vars)
        .get("slug")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (first, start) = page_args(query, "members", vars)?;
    let team = org.live_teams().find(|t| t.slug == slug);
    Ok(
        json!({"team": team.map(|t| json!({"id": team_node_id(t), "slug": t.slug, "members": members_page(org, t, start, first)}))}),
    )
}

fn members_page(org: &Org, team: &Team, start: usize, first: usize) -> Value {
    let members: Vec<&Person> = team
        .members
        .iter()
        .filter_map(|i| org.people.get(*i))
        .filter(|p| p.active)
        .collect();
    let nodes = members
        .iter()
        .skip(start)
        .take(first)
        .map(|p| graphql_user(p))
        .collect();
    connection(nodes, start, members.len())
}

fn graphql_user(p: &Person) -> Value {
    // `email` is the public profile email: an empty string, never null, when hidden.
    json!({"id": user_node_id(p), "databaseId": p.id, "login": p.login, "name": p.name,
        "email": p.email.clone().unwrap_or_default()})
}

// ---------------------------------------------------------------------------------------------
// REST

fn rest(
    s: &mut GithubState,
    prefix: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Answer {
    let params: HashMap<&str, &str> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let host = header(headers, "host").unwrap_or("localhost");
    let base = format!("http://{host}{prefix}");
    let token = header(headers, "authorization")
        .unwrap_or_default()
        .to_string();
    let outside = s.outside_tokens.iter().any(|t| token.ends_with(t.as_str()));
    if let ["orgs", org, "members"] = segments.as_slice()
        && outside
    {
        // GitHub: "302 if requester is not an organization member" -> the public members.
        let mut a = GITHUB.error(StatusCode::FOUND, "Found");
        a.headers.push((
            "location".into(),
            format!(
                "{base}/orgs/{org}/public_members?{}",
                query.unwrap_or_default()
            ),
        ));
        return a;
    }
    let (body, link) = match segments.as_slice() {
        ["orgs", org, kind @ ("members" | "public_members")] => {
            let public_only = *kind == "public_members";
            let Some(org) = s.orgs.get(&org.to_lowercase()) else {
                return GITHUB.error(StatusCode::NOT_FOUND, "Not Found");
            };
            let per_page = params
                .get("per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page = params
                .get("page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            // Public membership is each person's choice; here, those who show their email.
            let members: Vec<&Person> = org
                .live_people()
                .filter(|p| !public_only || p.email.is_some())
                .collect();
            let last = members.len().div_ceil(per_page).max(1);
            let items: Vec<Value> = members
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|p| simple_user(&base, p))
                .collect();
            let url = |n: usize| {
                format!(
                    "{base}/orgs/{}/members?per_page={per_page}&page={n}",
                    org.name
                )
            };
            let mut links = Vec::new();
            if page < last {
                links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
                links.push(format!("<{}>; rel=\"last\"", url(last)));
            }
            if page > 1 {
                links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
                links.push(format!("<{}>; rel=\"first\"", url(1)));
            }
            (Value::Array(items), links.join(", "))
        }
        ["users", login] => {
            let person = s
                .orgs
                .values()
                .flat_map(|o| o.people.iter())
                .find(|p| p.login.eq_ignore_ascii_case(login));
            match person {
                Some(p) => {
                    let mut user = simple_user(&base, p);
                    user["name"] = json!(p.name);
                    user["email"] = json!(p.email);
                    (user, String::new())
                }
                None => return GITHUB.error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => return GITHUB.error(StatusCode::NOT_FOUND, "Not Found"),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    // GitHub's ETags cover the credentials too: a new token (an app's hourly one) gets 200s.
    let etag = weak_etag(&(&token, &bytes));
    let now = SystemTime::now();
    s.core_quota.refresh(now);
    let not_modified = if_none_match(headers, &etag);
    let mut answer = if not_modified {
        // A 304 to an authorised conditional request costs no quota (GitHub documents this).
        s.stats.rest_not_modified += 1;
        Answer {
            status: StatusCode::NOT_MODIFIED,
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
        }
    } else if s.core_quota.remaining == 0 {
        s.stats.rate_limited += 1;
        GITHUB.error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1.",
        )
    } else {
        s.core_quota.remaining -= 1;
        Answer {
            status: StatusCode::OK,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: bytes,
            stream: None,
        }
    };
    answer.headers.push(("etag".into(), etag));
    answer.headers.push((
        "cache-control".into(),
        "private, max-age=60, s-maxage=60".into(),
    ));
    // A 304 repeats the validators but not the pagination (observed on GitHub).
    if !link.is_empty() && !not_modified {
        answer.headers.push(("link".into(), link));
    }
    answer.headers.extend(rate_headers(&s.core_quota, "core"));
    answer
}

/// GitHub's `x-ratelimit-*` headers for the quota of one resource (`core`, `graphql`).
fn rate_headers(q: &Quota, resource: &str) -> [(String, String); 5] {
    [
        ("x-ratelimit-limit".to_string(), q.limit.to_string()),
        ("x-ratelimit-remaining".to_string(), q.remaining.to_string()),
        (
            "x-ratelimit-used".to_string(),
            (q.limit - q.remaining).to_string(),
        ),
        ("x-ratelimit-reset".to_string(), q.reset_epoch().to_string()),
        ("x-ratelimit-resource".to_string(), resource.to_string()),
    ]
}

fn simple_user(base: &str, p: &Person) -> Value {
    json!({
        "login": p.login,
        "id": p.id,
        "node_id": user_node_id(p),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", p.id),
        "url": format!("{base}/users/{}", p.login),
        "html_url": format!("https://github.com/{}", p.login),
        "type": "User",
        "site_admin": false,
    })
}

#[cfg(test)]
mod tests;
