//! A fake GitLab on loopback serving the simulated org as one top-level group: teams are subgroups,
//! repositories are projects in their owner team's group (all, or those a predicate selects).
//!
//! REST (`/api/v4`): groups, descendant groups, group projects with keyset and offset pagination
//! (offset totals only up to 10,000 records, as GitLab does), direct and inherited members, users;
//! ETags and 304s; `RateLimit-*` headers and 429s with `Retry-After`. GraphQL (`/api/graphql`):
//! `projects(ids:)` with `repository.blobs(paths:)` and `languages`, and `users(ids:)`, with a
//! complexity limit. Faults per target, a token check (`PRIVATE-TOKEN` or `Bearer`), counters.
//! CODEOWNERS files are served in GitLab's dialect (sections, group paths) at GitLab's locations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use crate::github::{Fault, FaultAction};
use crate::org::{Org, Person, Repo};
use crate::serve::{
    Answer, Dialect, Fake, Faults, Quota, header, if_none_match, percent_encode, weak_etag,
};
use crate::webhook::{Vendor, WebhookSink, Webhooks};

mod hooks;
pub use hooks::webhook_events;

/// The personal access token the fake accepts unless told otherwise.
pub const GITLAB_TOKEN: &str = "glpat-simulated00000000000";

/// The top-level group's id (teams' groups keep their team ids, projects their repo ids).
pub const TOP_GROUP_ID: u64 = 4_000_000;

/// Offset pagination reports `x-total`/`x-total-pages` (and `rel="last"`) only up to this.
pub const OFFSET_TOTAL_CAP: usize = 10_000;

/// Offset pagination of projects refuses offsets past this (GitLab answers 405).
pub const MAX_PROJECT_OFFSET: usize = 50_000;

/// GitLab's `max_complexity` for authenticated GraphQL requests.
const MAX_COMPLEXITY: usize = 250;

/// Access levels (`Gitlab::Access`).
pub const DEVELOPER: u64 = 30;
pub const MAINTAINER: u64 = 40;
pub const OWNER: u64 = 50;

/// A project's global id, as GraphQL names it (the connector's external id).
pub fn project_gid(repo: &Repo) -> String {
    format!("gid://gitlab/Project/{}", repo.id)
}

pub fn user_gid(person: &Person) -> String {
    format!("gid://gitlab/User/{}", person.id)
}

pub fn group_gid(id: u64) -> String {
    format!("gid://gitlab/Group/{id}")
}

/// A predicate for a company on both services: every other repository lives on GitLab.
pub fn every_other(repo: &Repo) -> bool {
    repo.id.is_multiple_of(2)
}

/// Which repositories the fake serves as projects.
pub type RepoFilter = Arc<dyn Fn(&Repo) -> bool + Send + Sync>;

/// Counters of what the fake answered, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitlabStats {
    pub requests: u64,
    pub rest: u64,
    pub graphql: u64,
    pub not_modified: u64,
    /// Requests answered 429 (quota spent or throttled).
    pub throttled: u64,
    pub faults: u64,
    /// GraphQL queries refused for their complexity.
    pub too_complex: u64,
    /// Requests per target: `rest:projects:acme`, `rest:members:acme/payments`,
    /// `graphql:projects`, `graphql:users`, ...
    pub by_target: BTreeMap<String, u64>,
}

/// What a [`GitlabFake`] serves and counts.
pub struct GlState {
    org: Org,
    select: RepoFilter,
    tokens: Vec<String>,
    faults: Faults<Fault>,
    /// Projects per GraphQL query past which the query is "too complex".
    max_projects_per_query: usize,
    quota: Quota,
    /// The next this-many requests answer 429 regardless of the quota.
    throttle: usize,
    /// Keyset pagination of projects; when off, keyset requests get offset pages, as GitLab
    /// answers where it does not support keyset.
    keyset: bool,
    latency: Duration,
    stats: GitlabStats,
    /// The fake's own URL, which webhook payloads link to.
    base: String,
    /// Where org changes are announced, once [`GitlabFake::send_webhooks`] ran.
    hooks: Option<Webhooks>,
    /// The org laid out as groups and projects, until it changes (see [`view`]).
    layout: Option<Layout>,
}

/// The org as the fake serves it. It is laid out on the first request after a change (each
/// change goes through [`GitlabFake::with_org`], which forgets the layout), not on every one.
fn view<'a>(org: &'a Org, select: &RepoFilter, layout: &'a mut Option<Layout>) -> View<'a> {
    let layout = layout.get_or_insert_with(|| Layout::new(org, select));
    View::over(org, layout)
}

/// The running fake; [`url`](Fake::url) is the instance URL (`url` in the connector's config):
/// REST at `{url}/api/v4`, GraphQL at `{url}/api/graphql`. Faults are by target (see
/// [`GitlabStats::by_target`]); a target ending in `*` is a prefix. Dropping it stops the server.
pub type GitlabFake = Fake<GlState, FaultAction, GitlabStats>;

impl GitlabFake {
    /// Serves every repository of `org` as a project; accepts [`GITLAB_TOKEN`].
    pub async fn start(org: Org) -> std::io::Result<Self> {
        Self::start_with(org, |_: &Repo| true).await
    }

    /// Serves only the repositories `select` accepts (the rest live elsewhere, on GitHub say).
    pub async fn start_with(
        org: Org,
        select: impl Fn(&Repo) -> bool + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let state = |base: &str| GlState {
            org,
            select: Arc::new(select),
            tokens: vec![GITLAB_TOKEN.to_string()],
            faults: Faults::default(),
            max_projects_per_query: 100,
            // GitLab.com: 2,000 authenticated API requests a minute.
            quota: Quota::new(2_000, Duration::from_secs(60), SystemTime::now()),
            throttle: 0,
            keyset: true,
            latency: Duration::ZERO,
            stats: GitlabStats::default(),
            base: base.to_string(),
            hooks: None,
            layout: None,
        };
        Self::serve(state, answer, |s| &mut s.faults, |s| &mut s.stats).await
    }

    /// Changes the org between runs (`fake.with_org(|o| o.rename_repo(3, "x"))`). With
    /// webhooks on, the events of the change are posted.
    pub fn with_org<R>(&self, change: impl FnOnce(&mut Org) -> R) -> R {
        let mut state = self.server.lock();
        let GlState {
            org,
            select,
            base,
            hooks,
            layout,
            ..
        } = &mut *state;
        // Whatever `change` does, the next request lays the org out afresh.
        *layout = None;
        let Some(hooks) = hooks else {
            return change(org);
        };
        let before = org.clone();
        let result = change(org);
        hooks.post(webhook_events(base, &before, org, select));
        result
    }

    /// From now on, every change made through [`with_org`](Self::with_org) is announced to
    /// `sink` as a webhook on the top-level group would announce it (see [`crate::webhook`]).
    /// The returned sender tells what was planted.
    pub async fn send_webhooks(&self, sink: WebhookSink) -> Webhooks {
        let hooks = Webhooks::start(Vendor::GitLab, sink).await;
        self.server.lock().hooks = Some(hooks.clone());
        hooks
    }

    /// A copy of the org as the fake currently serves it.
    pub fn org(&self) -> Org {
        self.server.lock().org.clone()
    }

    /// Whether `repo` is served as a project (live and selected).
    pub fn serves(&self, repo: &Repo) -> bool {
        repo.active && (self.server.lock().select)(repo)
    }

    /// Accepts another token (a second user, a group access token).
    pub fn add_token(&self, token: &str) {
        self.server.lock().tokens.push(token.to_string());
    }

    /// Added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.server.lock().latency = latency;
    }

    /// GraphQL queries over more projects than this exceed the complexity limit.
    pub fn set_max_projects_per_query(&self, n: usize) {
        self.server.lock().max_projects_per_query = n.max(1);
    }

    /// Requests per window before 429s (GitLab.com: 2,000 a minute).
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        self.server.lock().quota = Quota::new(limit, window, SystemTime::now());
    }

    /// Whether `pagination=keyset` is honoured; without it projects come in offset pages.
    pub fn set_keyset(&self, supported: bool) {
        self.server.lock().keyset = supported;
    }

    /// The next `n` requests answer 429 with `Retry-After: 1`.
    pub fn throttle(&self, n: usize) {
        self.server.lock().throttle = n;
    }
}

// ---------------------------------------------------------------------------------------------
// The org as GitLab objects

/// A group as served: the top-level group (the org) or a team's subgroup.
#[derive(Debug, Clone)]
struct GroupView {
    id: u64,
    name: String,
    path: String,
    full_path: String,
    /// Index into the view's groups.
    parent: Option<usize>,
    description: String,
    /// Direct members: (index into `Org::people`, access level).
    members: Vec<(usize, u64)>,
}

/// The org's groups and served projects as GitLab lays them out. The fake keeps it between
/// requests and lays the org out again only when it changes (see [`GlState::view`]).
struct Layout {
    groups: Vec<GroupView>,
    /// Team index -> group index, for live teams.
    group_of_team: Vec<Option<usize>>,
    /// Served projects (index into `Org::repos`) with their group index, in id order.
    projects: Vec<(usize, usize)>,
}

/// An org seen through its [`Layout`].
struct View<'a> {
    org: &'a Org,
    layout: &'a Layout,
}

impl std::ops::Deref for View<'_> {
    type Target = Layout;

    fn deref(&self) -> &Layout {
        self.layout
    }
}

impl Layout {
    fn new(org: &Org, select: &RepoFilter) -> Self {
        let top_members = org
            .people
            .first()
            .filter(|p| p.active)
            .map(|_| vec![(0, OWNER)])
            .unwrap_or_default();
        let mut groups = vec![GroupView {
            id: TOP_GROUP_ID,
            name: title(&org.name),
            path: org.name.clone(),
            full_path: org.name.clone(),
            parent: None,
            description: format!("Everything {} builds", title(&org.name)),
            members: top_members,
        }];
        let mut group_of_team: Vec<Option<usize>> = vec![None; org.teams.len()];
        for (i, t) in org.teams.iter().enumerate() {
            if !t.active {
                continue;
            }
            // A team whose parent was disbanded hangs from the nearest live ancestor: GitLab
            // would have deleted it with its parent, but the org model keeps it.
            let mut parent = t.parent;
            let mut hops = 0;
            let parent_group = loop {
                match parent {
                    Some(p) if hops <= org.teams.len() => {
                        if let Some(g) = group_of_team.get(p).copied().flatten() {
                            break g;
                        }
                        parent = org.teams.get(p).and_then(|x| x.parent);
                        hops += 1;
                    }
                    _ => break 0,
                }
            };
            let members = t
                .members
                .iter()
                .filter(|m| org.people.get(**m).is_some_and(|p| p.active))
                .enumerate()
                .map(|(k, m)| (*m, if k == 0 { MAINTAINER } else { DEVELOPER }))
                .collect();
            group_of_team[i] = Some(groups.len());
            groups.push(GroupView {
                id: t.id,
                name: t.name.clone(),
                path: t.slug.clone(),
                full_path: format!("{}/{}", groups[parent_group].full_path, t.slug),
                parent: Some(parent_group),
                description: format!("The {} team", t.name),
                members,
            });
        }
        let mut projects: Vec<(usize, usize)> = org
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active && select(r))
            .map(|(i, r)| {
                let g = group_of_team
                    .get(r.owner_team)
                    .copied()
                    .flatten()
                    .unwrap_or(0);
                (i, g)
            })
            .collect();
        projects.sort_by_key(|(i, _)| org.repos[*i].id);
        Self {
            groups,
            group_of_team,
            projects,
        }
    }
}

impl<'a> View<'a> {
    fn over(org: &'a Org, layout: &'a Layout) -> Self {
        Self { org, layout }
    }

    /// Served projects with their group index, in id order.
    fn projects(&self) -> impl Iterator<Item = (&'a Repo, usize)> + use<'a> {
        let repos = &self.org.repos;
        self.layout
            .projects
            .iter()
            .filter_map(|(i, g)| Some((repos.get(*i)?, *g)))
    }

    /// The served project with this id, with its group index.
    fn project(&self, id: u64) -> Option<(&'a Repo, usize)> {
        let repos = &self.org.repos;
        let projects = &self.layout.projects;
        let at = projects.partition_point(|(i, _)| repos.get(*i).is_some_and(|r| r.id < id));
        projects
            .get(at)
            .and_then(|(i, g)| Some((repos.get(*i)?, *g)))
            .filter(|(r, _)| r.id == id)
    }

    /// A group by numeric id or (URL-decoded) full path.
    fn find_group(&self, key: &str) -> Option<usize> {
        match key.parse::<u64>() {
            Ok(id) => self.groups.iter().position(|g| g.id == id),
            Err(_) => self
                .groups
                .iter()
                .position(|g| g.full_path.eq_ignore_ascii_case(key)),
        }
    }

    fn is_within(&self, group: usize, ancestor: usize) -> bool {
        let mut at = Some(group);
        let mut hops = 0;
        while let Some(g) = at {
            if g == ancestor {
                return true;
            }
            hops += 1;
            if hops > self.groups.len() {
                return false;
            }
            at = self.groups[g].parent;
        }
        false
    }

    /// Direct members, or with `inherited` those of every ancestor too (highest access wins).
    fn members(&self, group: usize, inherited: bool) -> Vec<(usize, u64)> {
        let mut all: BTreeMap<usize, u64> = BTreeMap::new();
        let mut at = Some(group);
        let mut hops = 0;
        while let Some(g) = at {
            for (p, level) in &self.groups[g].members {
                let e = all.entry(*p).or_insert(*level);
                *e = (*e).max(*level);
            }
            if !inherited || hops > self.groups.len() {
                break;
            }
            hops += 1;
            at = self.groups[g].parent;
        }
        let mut out: Vec<(usize, u64)> = all.into_iter().collect();
        // GitLab lists members by id.
        out.sort_by_key(|(p, _)| self.org.people.get(*p).map_or(0, |x| x.id));
        out
    }

    fn group_json(&self, base: &str, g: usize) -> Value {
        let group = &self.groups[g];
        let full_name: Vec<String> = self
            .ancestry(g)
            .iter()
            .map(|i| self.groups[*i].name.clone())
            .collect();
        json!({
            "id": group.id,
            "web_url": format!("{base}/groups/{}", group.full_path),
            "name": group.name,
            "path": group.path,
            "description": group.description,
            "visibility": "private",
            "full_name": full_name.join(" / "),
            "full_path": group.full_path,
            "created_at": "2024-01-15T09:00:00.000Z",
            "parent_id": group.parent.map(|p| self.groups[p].id),
            "avatar_url": null,
        })
    }

    /// Root first, `g` last.
    fn ancestry(&self, g: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut at = Some(g);
        while let Some(i) = at {
            if chain.len() > self.groups.len() {
                break;
            }
            chain.push(i);
            at = self.groups[i].parent;
        }
        chain.reverse();
        chain
    }

    fn project_json(&self, base: &str, repo: &Repo, g: usize) -> Value {
        let group = &self.groups[g];
        let full_path = format!("{}/{}", group.full_path, repo.name);
        let names: Vec<String> = self
            .ancestry(g)
            .iter()
            .map(|i| self.groups[*i].name.clone())
            .chain([repo.name.clone()])
            .collect();
        let mut p = json!({
            "id": repo.id,
            "description": repo.description,
            "name": repo.name,
            "name_with_namespace": names.join(" / "),
            "path": repo.name,
            "path_with_namespace": full_path,
            "created_at": "2024-02-01T10:00:00.000Z",
            "default_branch": repo.default_branch,
            "tag_list": repo.topics,
            "topics": repo.topics,
            "ssh_url_to_repo": format!("git@gitlab.example:{full_path}.git"),
            "http_url_to_repo": format!("{base}/{full_path}.git"),
            "web_url": format!("{base}/{full_path}"),
            "readme_url": format!("{base}/{full_path}/-/blob/{}/README.md", repo.default_branch),
            "forks_count": 0,
            "star_count": 0,
            "last_activity_at": rfc3339(repo.pushed_at),
            "namespace": {
                "id": group.id,
                "name": group.name,
                "path": group.path,
                "kind": "group",
                "full_path": group.full_path,
                "parent_id": group.parent.map(|p| self.groups[p].id),
                "web_url": format!("{base}/groups/{}", group.full_path),
            },
            "archived": repo.archived,
            "visibility": if repo.private { "private" } else { "internal" },
            "empty_repo": false,
            "marked_for_deletion_at": null,
            "marked_for_deletion_on": null,
        });
        if repo.fork {
            p["forked_from_project"] = json!({
                "id": 1,
                "name": repo.name,
                "path": repo.name,
                "path_with_namespace": format!("upstream/{}", repo.name),
            });
        }
        p
    }

    /// The project's files as GitLab would hold them: CODEOWNERS in GitLab's dialect at GitLab's
    /// locations, the descriptor pointing at the GitLab project.
    fn files(&self, repo: &Repo, g: usize) -> BTreeMap<String, String> {
        let full_path = format!("{}/{}", self.groups[g].full_path, repo.name);
        repo.files
            .iter()
            .map(|(path, text)| match path.as_str() {
                ".github/CODEOWNERS" | "CODEOWNERS" | "docs/CODEOWNERS" => {
                    let at = if path == ".github/CODEOWNERS" {
                        ".gitlab/CODEOWNERS".to_string()
                    } else {
                        path.clone()
                    };
                    (at, self.codeowners(text, repo.id.is_multiple_of(3)))
                }
                "catalog-info.yaml" => (
                    path.clone(),
                    text.lines()
                        .map(|l| match l.split_once("github.com/project-slug:") {
                            Some((indent, _)) => {
                                format!("{indent}gitlab.com/project-slug: {full_path}")
                            }
                            None => l.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                        + "\n",
                ),
                _ => (path.clone(), text.clone()),
            })
            .collect()
    }

    /// GitHub-syntax CODEOWNERS (`* @acme/team`) in GitLab's: team slugs become group paths,
    /// the whole-repository rule goes in an `[Owners]` section (with the owners as the section's
    /// defaults when `defaults` is set), documentation rules in a `[Documentation]` section.
    fn codeowners(&self, text: &str, defaults: bool) -> String {
        let org = &self.org.name;
        let mut owners_rules: Vec<String> = Vec::new();
        let mut docs_rules: Vec<String> = Vec::new();
        let mut header_owners: Option<String> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let pattern = words.next().unwrap_or_default().to_string();
            let owners: Vec<String> = words
                .map(|w| match w.strip_prefix(&format!("@{org}/")) {
                    Some(slug) => {
                        let path = self
                            .org
                            .teams
                            .iter()
                            .position(|t| t.slug == slug)
                            .and_then(|t| self.group_of_team.get(t).copied().flatten())
                            .map_or_else(
                                || format!("{org}/{slug}"),
                                |g| self.groups[g].full_path.clone(),
                            );
                        format!("@{path}")
                    }
                    None => w.to_string(),
                })
                .collect();
            if pattern.starts_with("/docs") {
                docs_rules.push(format!("{pattern} {}", owners.join(" ")));
            } else if pattern == "*" && defaults && header_owners.is_none() {
                header_owners = Some(owners.join(" "));
                owners_rules.push("*".to_string());
            } else {
                owners_rules.push(format!("{pattern} {}", owners.join(" ")).trim().to_string());
            }
        }
        let mut out = String::from("# Code owners (GitLab sections)\n");
        match header_owners {
            Some(o) => out.push_str(&format!("[Owners] {o}\n")),
            None => out.push_str("[Owners]\n"),
        }
        for r in owners_rules {
            out.push_str(&r);
            out.push('\n');
        }
        if !docs_rules.is_empty() {
            out.push_str("\n[Documentation]\n");
            for r in docs_rules {
                out.push_str(&r);
                out.push('\n');
            }
        }
        out
    }
}

fn member_json(base: &str, p: &Person, level: u64) -> Value {
    json!({
        "id": p.id,
        "username": p.login,
        "name": p.name,
        "state": "active",
        "locked": false,
        "avatar_url": format!("https://secure.gravatar.com/avatar/{}?s=80&d=identicon", p.id),
        "web_url": format!("{base}/{}", p.login),
        "access_level": level,
        "created_at": "2024-03-01T08:00:00.000Z",
        "expires_at": null,
        "membership_state": "active",
    })
}

// ---------------------------------------------------------------------------------------------
// Serving

/// How GitLab answers: JSON, and REST errors as `{"message": "404 Group Not Found"}`.
const GITLAB: Dialect = Dialect {
    content_type: "application/json",
    error_body: |_, message| json!({"message": message}),
};

/// A request's parts the answer depends on.
struct Request<'a> {
    method: &'a Method,
    /// Below `/api/v4`, percent-decoded per segment.
    segments: Vec<String>,
    params: Vec<(String, String)>,
    base: String,
    graphql: Option<Value>,
    headers: &'a HeaderMap,
}

impl Request<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn answer(
    s: &mut GlState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Answer, Duration) {
    s.stats.requests += 1;
    let mut delay = s.latency;
    let host = header(headers, "host").unwrap_or("localhost");
    let path = uri.path();
    let is_graphql = path == "/api/graphql";
    let request = Request {
        method,
        segments: path
            .strip_prefix("/api/v4")
            .unwrap_or(path)
            .trim_matches('/')
            .split('/')
            .map(|seg| percent_decode(seg, false))
            .collect(),
        params: uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (percent_decode(k, true), percent_decode(v, true)))
            .collect(),
        base: format!("http://{host}"),
        graphql: if is_graphql && method == Method::POST {
            serde_json::from_slice(body).ok()
        } else {
            None
        },
        headers,
    };
    let target = target_of(
        &request,
        is_graphql,
        &view(&s.org, &s.select, &mut s.layout),
    );
    *s.stats.by_target.entry(target.clone()).or_default() += 1;
    if is_graphql {
        s.stats.graphql += 1;
    } else {
        s.stats.rest += 1;
    }

    if !authorised(s, headers) {
        let a = if is_graphql {
            GITLAB.json(
                StatusCode::UNAUTHORIZED,
                &json!({"errors": [{"message": "Invalid token"}]}),
            )
        } else {
            GITLAB.error(StatusCode::UNAUTHORIZED, "401 Unauthorized")
        };
        return (a, delay);
    }

    // Rate limit: every authenticated request counts, 304s included.
    let now = SystemTime::now();
    s.quota.refresh(now);
    let throttled = s.throttle > 0 || s.quota.remaining == 0;
    if s.throttle > 0 {
        s.throttle -= 1;
    }
    if !throttled {
        s.quota.remaining -= 1;
    }
    let rate_headers = |q: &Quota| {
        vec![
            (
                "ratelimit-name".to_string(),
                "throttle_authenticated_api".to_string(),
            ),
            ("ratelimit-limit".to_string(), q.limit.to_string()),
            (
                "ratelimit-observed".to_string(),
                (q.limit - q.remaining).to_string(),
            ),
            ("ratelimit-remaining".to_string(), q.remaining.to_string()),
            ("ratelimit-reset".to_string(), q.reset_epoch().to_string()),
        ]
    };
    if throttled {
        s.stats.throttled += 1;
        let mut a = GITLAB.error(StatusCode::TOO_MANY_REQUESTS, "Retry later");
        a.headers = vec![("content-type".into(), "text/plain".into())];
        a.body = b"Retry later\n".to_vec();
        let wait = s
            .quota
            .reset_at
            .duration_since(now)
            .map_or(1, |d| d.as_secs().clamp(1, 60));
        let wait = if s.quota.remaining == 0 { wait } else { 1 };
        a.headers.extend(rate_headers(&s.quota));
        a.headers.push(("retry-after".into(), wait.to_string()));
        return (a, delay);
    }

    let batch = request
        .graphql
        .as_ref()
        .map(|g| g["variables"]["ids"].as_array().map_or(0, Vec::len) as u64)
        .or_else(|| request.param("per_page").and_then(|v| v.parse().ok()))
        .unwrap_or_default();
    let fault = s
        .faults
        .due(|f| f.matches(&target) && f.min_page.is_none_or(|min| batch >= min))
        .map(|f| f.action.clone());
    if fault.is_some() {
        s.stats.faults += 1;
    }
    match &fault {
        Some(FaultAction::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            );
            let mut a = GITLAB.error(status, &text);
            a.headers.extend(rate_headers(&s.quota));
            return (a, delay);
        }
        Some(
            FaultAction::SecondaryLimit { retry_after_secs }
            | FaultAction::TooManyRequests { retry_after_secs },
        ) => {
            s.stats.throttled += 1;
            let mut a = GITLAB.error(StatusCode::TOO_MANY_REQUESTS, "Retry later");
            a.headers.extend(rate_headers(&s.quota));
            a.headers
                .push(("retry-after".into(), retry_after_secs.to_string()));
            return (a, delay);
        }
        Some(FaultAction::Delay(d)) => delay += *d,
        Some(FaultAction::GraphqlError(message)) => {
            return (
                GITLAB.json(StatusCode::OK, &json!({"errors": [{"message": message}]})),
                delay,
            );
        }
        _ => {}
    }

    let mut answer = if is_graphql {
        match &request.graphql {
            Some(g) if method == Method::POST => graphql(s, g),
            _ => GITLAB.json(
                StatusCode::BAD_REQUEST,
                &json!({"errors": [{"message": "Unexpected end of document"}]}),
            ),
        }
    } else if method == Method::GET {
        let a = rest(s, &request);
        // A broken answer gets no validators: a 304 would hide the fault behind the cache.
        if matches!(
            fault,
            Some(
                FaultAction::Truncate
                    | FaultAction::BadJson
                    | FaultAction::DropNext
                    | FaultAction::EmptyList
            )
        ) {
            a
        } else {
            with_etag(s, &request, a)
        }
    } else {
        GITLAB.error(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed")
    };
    answer.headers.extend(rate_headers(&s.quota));
    match fault {
        Some(FaultAction::Truncate) => {
            let half = answer.body.len() / 2;
            answer.body.truncate(half);
        }
        Some(FaultAction::BadJson) => {
            answer.body = b"<!DOCTYPE html><html><body><h1>502</h1>Whoops, GitLab is taking too much time to respond.</body></html>".to_vec();
            answer.headers.retain(|(k, _)| k != "content-type");
            answer
                .headers
                .push(("content-type".into(), "text/html".into()));
        }
        Some(FaultAction::ForbiddenNode) => {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&answer.body)
                && let Some(node) = v["data"]["projects"]["nodes"].get_mut(0)
            {
                node["repository"] = Value::Null;
                v["errors"] = json!([{
                    "message": "Internal server error: 4:Deadline Exceeded. debug_error_string:{UNKNOWN:Deadline Exceeded}",
                    "locations": [{"line": 6, "column": 7}],
                    "path": ["projects", "nodes", 0, "repository"],
                }]);
                answer.body = serde_json::to_vec(&v).unwrap_or_default();
            }
        }
        Some(FaultAction::DropNext) => cut_listing(&mut answer, false),
        Some(FaultAction::EmptyList) => cut_listing(&mut answer, true),
        _ => {}
    }
    (answer, delay)
}

/// Makes a REST list answer look like its last page: no `rel="next"` link and an empty
/// `x-next-page` (with `empty`, also no items and totals of 0).
fn cut_listing(answer: &mut Answer, empty: bool) {
    if !answer.body.starts_with(b"[") {
        return;
    }
    for (k, v) in &mut answer.headers {
        match k.as_str() {
            "link" => {
                *v = v
                    .split(", ")
                    .filter(|part| !part.ends_with("rel=\"next\""))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
            "x-next-page" => v.clear(),
            "x-total" | "x-total-pages" if empty => *v = "0".into(),
            _ => {}
        }
    }
    answer.headers.retain(|(k, v)| k != "link" || !v.is_empty());
    if empty {
        answer.body = b"[]".to_vec();
    }
}

fn authorised(s: &GlState, headers: &HeaderMap) -> bool {
    let private = header(headers, "private-token").map(str::to_string);
    let bearer = header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_string);
    [private, bearer]
        .into_iter()
        .flatten()
        .any(|t| s.tokens.contains(&t))
}

/// What faults and counters key a request by.
fn target_of(r: &Request<'_>, is_graphql: bool, view: &View<'_>) -> String {
    if is_graphql {
        let q = r
            .graphql
            .as_ref()
            .and_then(|g| g["query"].as_str())
            .unwrap_or_default();
        return if q.contains("projects(") {
            "graphql:projects".into()
        } else if q.contains("users(") {
            "graphql:users".into()
        } else {
            "graphql:other".into()
        };
    }
    let seg: Vec<&str> = r.segments.iter().map(String::as_str).collect();
    let group_path = |key: &str| {
        view.find_group(key)
            .map_or_else(|| key.to_string(), |g| view.groups[g].full_path.clone())
    };
    match seg.as_slice() {
        ["groups", id] => format!("rest:group:{}", group_path(id)),
        ["groups", id, "members", "all"] => format!("rest:members/all:{}", group_path(id)),
        ["groups", id, what] => format!("rest:{what}:{}", group_path(id)),
        ["users", _] => "rest:user".into(),
        ["projects", _] => "rest:project".into(),
        _ => format!("rest:/{}", seg.join("/")),
    }
}

fn rest(s: &mut GlState, r: &Request<'_>) -> Answer {
    let view = view(&s.org, &s.select, &mut s.layout);
    let seg: Vec<&str> = r.segments.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["groups", id, rest @ ..] => {
            let Some(g) = view.find_group(id) else {
                return GITLAB.error(StatusCode::NOT_FOUND, "404 Group Not Found");
            };
            match rest {
                [] => GITLAB.json(StatusCode::OK, &view.group_json(&r.base, g)),
                ["descendant_groups"] | ["subgroups"] => {
                    let direct = rest == ["subgroups"];
                    let list: Vec<usize> = (0..view.groups.len())
                        .filter(|i| {
                            *i != g
                                && if direct {
                                    view.groups[*i].parent == Some(g)
                                } else {
                                    view.is_within(*i, g)
                                }
                        })
                        .collect();
                    offset(r, &list, false, |i| view.group_json(&r.base, *i))
                }
                ["projects"] => {
                    let subgroups = r.param("include_subgroups") == Some("true");
                    let archived = r.param("archived").map(|v| v == "true");
                    let list: Vec<(u64, (&Repo, usize))> = view
                        .projects()
                        .filter(|(_, pg)| *pg == g || (subgroups && view.is_within(*pg, g)))
                        .filter(|(repo, _)| archived.is_none_or(|a| repo.archived == a))
                        .map(|(repo, pg)| (repo.id, (repo, pg)))
                        .collect();
                    // Only the page is rendered: listing 10,000 projects stays linear.
                    let render =
                        |(repo, pg): &(&Repo, usize)| view.project_json(&r.base, repo, *pg);
                    if s.keyset && r.param("pagination") == Some("keyset") {
                        if r.param("order_by").unwrap_or("created_at") != "id" {
                            return GITLAB.json(
                                StatusCode::METHOD_NOT_ALLOWED,
                                &json!({"error": "Keyset pagination is not yet available for this type of request"}),
                            );
                        }
                        keyset(r, &list, render)
                    } else {
                        let items: Vec<(&Repo, usize)> = list.into_iter().map(|(_, p)| p).collect();
                        offset(r, &items, true, render)
                    }
                }
                ["members"] | ["members", "all"] => {
                    let inherited = rest.len() == 2;
                    let list: Vec<(usize, u64)> = view.members(g, inherited);
                    let people = &s.org.people;
                    offset(r, &list, false, |(p, level)| {
                        people
                            .get(*p)
                            .map_or(Value::Null, |p| member_json(&r.base, p, *level))
                    })
                }
                _ => GITLAB.error(StatusCode::NOT_FOUND, "404 Not Found"),
            }
        }
        ["projects", id] => {
            let found = id
                .parse::<u64>()
                .ok()
                .and_then(|id| view.project(id))
                .map(|(repo, pg)| view.project_json(&r.base, repo, pg));
            match found {
                Some(p) => GITLAB.json(StatusCode::OK, &p),
                None => GITLAB.error(StatusCode::NOT_FOUND, "404 Project Not Found"),
            }
        }
        ["users", id] => {
            let person = id
                .parse::<u64>()
                .ok()
                .and_then(|id| s.org.people.iter().find(|p| p.id == id && p.active));
            match person {
                Some(p) => {
                    let mut u = member_json(&r.base, p, 0);
                    if let Some(o) = u.as_object_mut() {
                        o.remove("access_level");
                        o.remove("expires_at");
                        o.remove("membership_state");
                    }
                    u["public_email"] = json!(p.email.clone().unwrap_or_default());
                    u["bio"] = json!("");
                    GITLAB.json(StatusCode::OK, &u)
                }
                None => GITLAB.error(StatusCode::NOT_FOUND, "404 User Not Found"),
            }
        }
        _ => GITLAB.error(StatusCode::NOT_FOUND, "404 Not Found"),
    }
}

/// The request's URL with `key` set to `value` (for Link headers).
fn url_with(r: &Request<'_>, key: &str, value: &str) -> String {
    let mut params: Vec<String> = r
        .params
        .iter()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    params.push(format!("{key}={value}"));
    let path: Vec<String> = r.segments.iter().map(|s| percent_encode(s)).collect();
    format!("{}/api/v4/{}?{}", r.base, path.join("/"), params.join("&"))
}

fn per_page(r: &Request<'_>) -> usize {
    r.param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100)
}

/// Keyset pagination by id: `id_after`, a `rel="next"` link while more remain, no totals.
fn keyset<T>(r: &Request<'_>, list: &[(u64, T)], render: impl Fn(&T) -> Value) -> Answer {
    let per_page = per_page(r);
    let after = r
        .param("id_after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let start = list.partition_point(|(id, _)| *id <= after);
    let page = &list[start..(start + per_page).min(list.len())];
    let more = start + page.len() < list.len();
    let mut a = GITLAB.json(
        StatusCode::OK,
        &Value::Array(page.iter().map(|(_, t)| render(t)).collect()),
    );
    if more && let Some((last, _)) = page.last() {
        a.headers.push((
            "link".into(),
            format!(
                "<{}>; rel=\"next\"",
                url_with(r, "id_after", &last.to_string())
            ),
        ));
    }
    a
}

/// Offset pagination: `page`/`per_page`, `x-*` headers, Link first/prev/next/last; totals and
/// `rel="last"` only when there are at most [`OFFSET_TOTAL_CAP`] records.
fn offset<T>(r: &Request<'_>, list: &[T], capped: bool, render: impl Fn(&T) -> Value) -> Answer {
    let per_page = per_page(r);
    let page = r
        .param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let skip = (page - 1) * per_page;
    if capped && skip >= MAX_PROJECT_OFFSET {
        return GITLAB.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Project. Remaining records can be retrieved using keyset pagination.",
        );
    }
    let total = list.len();
    let items: Vec<Value> = list.iter().skip(skip).take(per_page).map(render).collect();
    let more = skip + items.len() < total;
    let mut a = GITLAB.json(StatusCode::OK, &Value::Array(items));
    let mut links = vec![format!("<{}>; rel=\"first\"", url_with(r, "page", "1"))];
    a.headers.push(("x-page".into(), page.to_string()));
    a.headers.push(("x-per-page".into(), per_page.to_string()));
    a.headers.push((
        "x-next-page".into(),
        if more {
            (page + 1).to_string()
        } else {
            String::new()
        },
    ));
    a.headers.push((
        "x-prev-page".into(),
        if page > 1 {
            (page - 1).to_string()
        } else {
            String::new()
        },
    ));
    if page > 1 {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            url_with(r, "page", &(page - 1).to_string())
        ));
    }
    if more {
        links.push(format!(
            "<{}>; rel=\"next\"",
            url_with(r, "page", &(page + 1).to_string())
        ));
    }
    if total <= OFFSET_TOTAL_CAP {
        let pages = total.div_ceil(per_page).max(1);
        a.headers.push(("x-total".into(), total.to_string()));
        a.headers.push(("x-total-pages".into(), pages.to_string()));
        links.push(format!(
            "<{}>; rel=\"last\"",
            url_with(r, "page", &pages.to_string())
        ));
    }
    a.headers.push(("link".into(), links.join(", ")));
    a
}

/// A weak ETag over the body; a matching `If-None-Match` gets a 304 with the same headers.
fn with_etag(s: &mut GlState, r: &Request<'_>, mut a: Answer) -> Answer {
    if a.status != StatusCode::OK || r.method != Method::GET {
        return a;
    }
    let etag = weak_etag(&a.body);
    if if_none_match(r.headers, &etag) {
        s.stats.not_modified += 1;
        a.status = StatusCode::NOT_MODIFIED;
        a.body.clear();
    }
    a.headers.push(("etag".into(), etag));
    a
}

// ---------------------------------------------------------------------------------------------
// GraphQL

fn graphql(s: &mut GlState, request: &Value) -> Answer {
    let query = request["query"].as_str().unwrap_or_default();
    let vars = &request["variables"];
    let ids: Vec<u64> = vars["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter_map(|gid| gid.rsplit('/').next()?.parse().ok())
        .collect();
    // GitLab caps connection pages at 100 whatever `first` asks.
    let first = vars["first"].as_u64().unwrap_or(100).min(100) as usize;
    let view = view(&s.org, &s.select, &mut s.layout);
    if query.contains("projects(") {
        if ids.len() > s.max_projects_per_query {
            s.stats.too_complex += 1;
            let complexity = ids.len() * MAX_COMPLEXITY / s.max_projects_per_query + 1;
            return GITLAB.json(
                StatusCode::OK,
                &json!({"errors": [{"message": format!(
                    "Query has complexity of {complexity}, which exceeds max complexity of {MAX_COMPLEXITY}"
                )}]}),
            );
        }
        let paths: Vec<&str> = vars["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // In id order, as the served projects are.
        let wanted: BTreeSet<u64> = ids.iter().copied().collect();
        let found: Vec<(&Repo, usize)> = wanted.iter().filter_map(|id| view.project(*id)).collect();
        let nodes: Vec<Value> = found
            .iter()
            .take(first)
            .map(|(repo, g)| {
                let files = view.files(repo, *g);
                let blobs: Vec<Value> = paths
                    .iter()
                    .filter_map(|p| {
                        files.get(*p).map(|text| {
                            json!({"path": p, "name": p.rsplit('/').next(), "size": text.len(), "rawTextBlob": text})
                        })
                    })
                    .collect();
                json!({
                    "id": project_gid(repo),
                    "name": repo.name,
                    "fullPath": format!("{}/{}", view.groups[*g].full_path, repo.name),
                    "languages": [{"name": repo.language.name(), "share": 100.0}],
                    "repository": {"rootRef": repo.default_branch, "blobs": {"nodes": blobs}},
                })
            })
            .collect();
        let found = found.len();
        let end = if nodes.is_empty() {
            Value::Null
        } else {
            json!(format!("eyJpZCI6I{}", nodes.len()))
        };
        return GITLAB.json(
            StatusCode::OK,
            &json!({"data": {"projects": {
                "pageInfo": {"hasNextPage": found > nodes.len(), "endCursor": end},
                "nodes": nodes,
            }}}),
        );
    }
    if query.contains("users(") {
        let wanted: BTreeSet<u64> = ids.iter().copied().collect();
        let nodes: Vec<Value> = s
            .org
            .people
            .iter()
            .filter(|p| p.active && wanted.contains(&p.id))
            .take(first)
            .map(|p| {
                json!({
                    "id": user_gid(p),
                    "username": p.login,
                    "name": p.name,
                    // GitLab sends an empty string for a hidden public email.
                    "publicEmail": p.email.clone().unwrap_or_default(),
                    "state": "active",
                    "webUrl": format!("https://gitlab.example/{}", p.login),
                })
            })
            .collect();
        return GITLAB.json(
            StatusCode::OK,
            &json!({"data": {"users": {
                "pageInfo": {"hasNextPage": false, "endCursor": null},
                "nodes": nodes,
            }}}),
        );
    }
    GITLAB.json(
        StatusCode::OK,
        &json!({"errors": [{"message": "the simulator does not answer this query"}]}),
    )
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn title(slug: &str) -> String {
    let mut c = slug.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `%XX` escapes decoded (and `+` as a space in query strings).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3339 UTC with milliseconds, as GitLab writes times.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
