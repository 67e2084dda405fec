//! A fake Jira on loopback serving a simulated org as projects and components, as Jira Cloud
//! (REST v3, `PageBean` pages, account ids) or Data Center (REST v2, bare arrays, user keys).
//!
//! One project per area of the org (`payments-system` -> key `PAY`), grouped in categories;
//! its components are the area's repositories, each led by a member of the owning team. Some
//! projects have no lead, some leads are deactivated, some components have no lead. Faults
//! (status codes, 429 with `Retry-After`, bad JSON) are switched on per target; every request is
//! recorded with its path, query and authentication scheme. Cloud takes Basic
//! `email:api-token`, Data Center a bearer personal access token; anything else is a 401.
//! Once told where ([`JiraFake::send_webhooks`]), it announces project and component changes as
//! signed admin webhooks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::org::{Org, Repo};
use crate::rng::Rng;
use crate::serve::{Answer, Dialect, Fake, Fault, Faults, header};
use crate::webhook::{Vendor, WebhookSink, Webhooks};

mod hooks;

/// The Cloud account the fake accepts, with [`JIRA_API_TOKEN`].
pub const JIRA_EMAIL: &str = "surveyor@acme.example";
/// The Cloud API token the fake accepts for [`JIRA_EMAIL`].
pub const JIRA_API_TOKEN: &str = "sim-jira-api-token";
/// The Data Center personal access token the fake accepts.
pub const JIRA_PAT: &str = "sim-jira-personal-access-token";
/// The most items a Cloud page holds unless told otherwise, whatever `maxResults` asks for.
pub const CLOUD_MAX_RESULTS: usize = 50;

/// Which Jira the fake pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JiraFlavor {
    Cloud,
    DataCenter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraCategory {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraProject {
    pub id: String,
    pub key: String,
    pub name: String,
    /// Empty for projects nobody described.
    pub description: String,
    /// The area whose repositories are the components (`payments` for `payments-system`).
    pub area: String,
    /// Index into [`JiraSite::categories`].
    pub category: Option<usize>,
    /// Index into `Org::people`.
    pub lead: Option<usize>,
}

/// A component as the fake currently serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraComponent {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Index into `Org::people`.
    pub lead: Option<usize>,
    /// The repository it stands for (index into `Org::repos`).
    pub repo: usize,
}

/// A Jira site made from an org: projects and categories fixed when it is made, components
/// rendered from the org's live repositories on every request.
#[derive(Debug, Clone)]
pub struct JiraSite {
    pub org: Org,
    pub categories: Vec<JiraCategory>,
    pub projects: Vec<JiraProject>,
    /// Component leads by repository index, chosen when the site was made: Jira keeps a lead
    /// who moves team or leaves, which is what makes deactivated leads.
    pub component_leads: BTreeMap<usize, Option<usize>>,
    /// Ids of components deleted in Jira (their repositories live on).
    pub removed_components: BTreeSet<String>,
    /// People Jira shows as deactivated although the org still lists them.
    pub deactivated: BTreeSet<usize>,
}

/// Categories and the areas in each; the other areas' projects have none.
const CATEGORIES: &[(&str, &str, &[&str])] = &[
    (
        "Commerce",
        "Selling, charging and delivering",
        &["payments", "billing", "checkout", "ledger", "shipping"],
    ),
    (
        "Platform",
        "What every team builds on",
        &["platform", "storage", "identity", "notifications"],
    ),
];

fn area_of(repo: &Repo) -> &str {
    repo.system.strip_suffix("-system").unwrap_or(&repo.system)
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

impl JiraSite {
    /// The site a team would have set up for `org`. Deterministic: one org, one site.
    pub fn from_org(org: &Org) -> Self {
        let categories: Vec<JiraCategory> = CATEGORIES
            .iter()
            .enumerate()
            .map(|(i, (name, description, _))| JiraCategory {
                id: (10_100 + i).to_string(),
                name: (*name).to_string(),
                description: (*description).to_string(),
            })
            .collect();
        let mut areas: Vec<&str> = org.repos.iter().map(area_of).collect();
        areas.sort_unstable();
        areas.dedup();
        let mut deactivated = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut projects = Vec::new();
        for (i, area) in areas.iter().enumerate() {
            let letters: String = area
                .chars()
                .filter(char::is_ascii_alphabetic)
                .take(3)
                .collect::<String>()
                .to_uppercase();
            let base = if letters.is_empty() {
                "PRJ".to_string()
            } else {
                letters
            };
            let mut key = base.clone();
            let mut n = 2;
            while !keys.insert(key.clone()) {
                key = format!("{base}{n}");
                n += 1;
            }
            let team = org.teams.iter().find(|t| t.slug == *area).or_else(|| {
                org.teams
                    .iter()
                    .find(|t| t.slug.split('-').next() == Some(area))
            });
            // Every fourth project has no lead, and the lead of another has been deactivated.
            let lead = team
                .and_then(|t| t.members.first().copied())
                .filter(|_| i % 4 != 2);
            if i % 4 == 1
                && let Some(l) = lead
            {
                deactivated.insert(l);
            }
            projects.push(JiraProject {
                id: (10_000 + i).to_string(),
                key,
                name: title(area),
                description: if i % 5 == 3 {
                    String::new()
                } else {
                    format!("Work of the {area} area")
                },
                area: (*area).to_string(),
                category: CATEGORIES
                    .iter()
                    .position(|(_, _, members)| members.contains(area)),
                lead,
            });
        }
        let mut component_leads = BTreeMap::new();
        for r in 0..org.repos.len() {
            // Every sixth component has no lead; every seventh's lead has been deactivated.
            let lead = component_lead(org, r);
            if r % 7 == 3
                && let Some(l) = lead
            {
                deactivated.insert(l);
            }
            component_leads.insert(r, lead);
        }
        Self {
            org: org.clone(),
            categories,
            projects,
            component_leads,
            removed_components: BTreeSet::new(),
            deactivated,
        }
    }

    pub fn project(&self, key: &str) -> Option<&JiraProject> {
        self.projects.iter().find(|p| p.key == key)
    }

    fn project_by_id_or_key(&self, id_or_key: &str) -> Option<&JiraProject> {
        self.projects
            .iter()
            .find(|p| p.id == id_or_key || p.key == id_or_key)
    }

    /// A project's components as served now, by name.
    pub fn components(&self, project: &JiraProject) -> Vec<JiraComponent> {
        let mut out: Vec<JiraComponent> = self
            .org
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active && area_of(r) == project.area)
            .map(|(i, r)| JiraComponent {
                id: component_id(i),
                name: r.name.clone(),
                description: r.description.clone(),
                lead: self.component_leads.get(&i).copied().flatten(),
                repo: i,
            })
            .filter(|c| !self.removed_components.contains(&c.id))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether Jira shows the person as active.
    pub fn user_active(&self, person: usize) -> bool {
        self.org.people.get(person).is_some_and(|p| p.active) && !self.deactivated.contains(&person)
    }

    /// The Cloud account id of a person: half in today's `712020:<uuid>` form, half in the
    /// older 24-hex-digit form, as on sites that have been around a while.
    pub fn account_id(&self, person: usize) -> String {
        let mut rng = Rng::new(0x6a69_7261 ^ person as u64);
        let (a, b) = (rng.next_u64(), rng.next_u64());
        if person.is_multiple_of(2) {
            format!(
                "712020:{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                a >> 32,
                a & 0xffff,
                (a >> 16) & 0xfff,
                b & 0xfff,
                (b >> 16) & 0xffff_ffff_ffff
            )
        } else {
            format!("{:08x}{:016x}", a >> 32, b)
        }
    }

    /// The Data Center user key: the username for accounts made before Jira 8, `JIRAUSER<n>`
    /// for the others.
    pub fn user_key(&self, person: usize) -> String {
        match self.org.people.get(person) {
            Some(p) if person.is_multiple_of(2) => p.login.clone(),
            _ => format!("JIRAUSER{}", 10_000 + person),
        }
    }

    /// Deletes a component in Jira; false if there is none with that id.
    pub fn remove_component(&mut self, id: &str) -> bool {
        let exists = self
            .projects
            .iter()
            .any(|p| self.components(p).iter().any(|c| c.id == id));
        exists && self.removed_components.insert(id.to_string())
    }

    /// Changes a project's key (its id stays); false if `old` is unknown or `new` is taken.
    pub fn set_project_key(&mut self, old: &str, new: &str) -> bool {
        if self.project(new).is_some() {
            return false;
        }
        match self.projects.iter_mut().find(|p| p.key == old) {
            Some(p) => {
                p.key = new.to_string();
                true
            }
            None => false,
        }
    }

    /// Deletes a project (and with it its components); false if there is none with that key.
    pub fn remove_project(&mut self, key: &str) -> bool {
        let before = self.projects.len();
        self.projects.retain(|p| p.key != key);
        self.projects.len() < before
    }

    pub fn set_project_lead(&mut self, key: &str, lead: Option<usize>) -> bool {
        match self.projects.iter_mut().find(|p| p.key == key) {
            Some(p) => {
                p.lead = lead;
                true
            }
            None => false,
        }
    }
}

/// The lead a site made from `org` gives repository `repo`'s component: a member of its owner
/// team, except every sixth component, which has none.
pub fn component_lead(org: &Org, repo: usize) -> Option<usize> {
    let r = org.repos.get(repo)?;
    let members = &org.teams.get(r.owner_team)?.members;
    (repo % 6 != 5 && !members.is_empty()).then(|| members[r.id as usize % members.len()])
}

/// A component's id: Jira numbers components from 10000 like everything else.
pub fn component_id(repo: usize) -> String {
    (20_000 + repo).to_string()
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JiraFaultAction {
    /// This status, with a Jira error body.
    Status(u16),
    /// 429 with `Retry-After`, as Jira Cloud answers when a client goes too fast.
    RateLimited { retry_after_secs: u64 },
    /// An HTML page where JSON was expected (a proxy's error page).
    BadJson,
    /// Wait this long before answering normally (a client timeout if long enough).
    Delay(Duration),
    /// The first half of the real body: a page cut off mid-way.
    Truncate,
    /// A Cloud page that says it is the last (`isLast: true`, no `nextPage`) while `total`
    /// still counts everything.
    DropNext,
    /// A well-formed, final page with no items (`values: []`, `total: 0`; `[]` on Data Center).
    EmptyList,
}

/// A fault for requests to `projects` (the project list), `project:KEY` (one project),
/// `components` (any component list), `components:KEY` (one project's), or `*`.
pub type JiraFault = Fault<JiraFaultAction>;

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    /// The `Authorization` scheme, lower-cased (`basic`, `bearer`), or `none`.
    pub scheme: String,
}

/// What the fake answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JiraStats {
    pub requests: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    pub faults: u64,
    /// Requests per path (without the query).
    pub by_path: BTreeMap<String, u64>,
    /// Requests per authentication scheme.
    pub by_scheme: BTreeMap<String, u64>,
    /// Every request, in order.
    pub seen: Vec<SeenRequest>,
}

/// What a [`JiraFake`] serves and counts.
pub struct JiraState {
    site: JiraSite,
    flavor: JiraFlavor,
    base_url: String,
    max_results_cap: usize,
    /// API tokens (Cloud) or personal access tokens (Data Center) accepted besides the constants.
    extra_tokens: Vec<String>,
    faults: Faults<JiraFault>,
    stats: JiraStats,
    /// Where site changes are announced, once [`JiraFake::send_webhooks`] ran.
    hooks: Option<Webhooks>,
}

/// A running fake Jira; [`url`](Fake::url) is the site URL (`url` in the connector's config).
/// Dropping it stops it.
pub type JiraFake = Fake<JiraState, JiraFaultAction, JiraStats>;

impl JiraFake {
    /// Serves the site made from `org` on a free loopback port.
    pub async fn start(org: &Org, flavor: JiraFlavor) -> std::io::Result<Self> {
        Self::start_site(JiraSite::from_org(org), flavor).await
    }

    pub async fn start_site(site: JiraSite, flavor: JiraFlavor) -> std::io::Result<Self> {
        let state = |url: &str| JiraState {
            site,
            flavor,
            base_url: url.to_string(),
            max_results_cap: CLOUD_MAX_RESULTS,
            extra_tokens: Vec::new(),
            faults: Faults::default(),
            stats: JiraStats::default(),
            hooks: None,
        };
        Self::serve(state, answer, |s| &mut s.faults, |s| &mut s.stats).await
    }

    /// Changes the site between runs (`fake.with_site(|s| s.set_project_key("PAY", "PMT"))`).
    /// With webhooks on, the events of the change are posted.
    pub fn with_site<R>(&self, change: impl FnOnce(&mut JiraSite) -> R) -> R {
        let mut state = self.server.lock();
        if state.hooks.is_none() {
            return change(&mut state.site);
        }
        let before = hooks::snapshot(&state);
        let result = change(&mut state.site);
        let events = hooks::webhook_events(&before, &hooks::snapshot(&state));
        if let Some(h) = &state.hooks {
            h.post(events);
        }
        result
    }

    /// Changes the org behind the site (a deleted repository's component goes too).
    pub fn with_org<R>(&self, change: impl FnOnce(&mut Org) -> R) -> R {
        self.with_site(|site| change(&mut site.org))
    }

    /// From now on, every change made through [`with_site`](Self::with_site) or
    /// [`with_org`](Self::with_org) is announced to `sink` as an admin webhook with a secret
    /// would announce it (see [`crate::webhook`]). The returned sender tells what was planted.
    pub async fn send_webhooks(&self, sink: WebhookSink) -> Webhooks {
        let hooks = Webhooks::start(Vendor::Jira, sink).await;
        self.server.lock().hooks = Some(hooks.clone());
        hooks
    }

    pub fn remove_project(&self, key: &str) -> bool {
        self.with_site(|s| s.remove_project(key))
    }

    /// A copy of the site as served now.
    pub fn site(&self) -> JiraSite {
        self.server.lock().site.clone()
    }

    pub fn org(&self) -> Org {
        self.server.lock().site.org.clone()
    }

    pub fn remove_component(&self, id: &str) -> bool {
        self.with_site(|s| s.remove_component(id))
    }

    pub fn set_project_key(&self, old: &str, new: &str) -> bool {
        self.with_site(|s| s.set_project_key(old, new))
    }

    /// Cloud pages hold at most this many items (Jira's own cap; 50 unless changed).
    pub fn set_max_results_cap(&self, n: usize) {
        self.server.lock().max_results_cap = n.max(1);
    }

    /// Accepts `token` as well: with [`JIRA_EMAIL`] on Cloud, as a bearer PAT on Data Center.
    pub fn add_token(&self, token: &str) {
        self.server.lock().extra_tokens.push(token.to_string());
    }
}

/// How Jira answers: JSON, and errors as `{"errorMessages": [...], "errors": {}}`.
const JIRA: Dialect = Dialect {
    content_type: "application/json;charset=UTF-8",
    error_body: |_, message| json!({"errorMessages": [message], "errors": {}}),
};

/// What a request is for: the project list, one project, or one project's component list.
enum Route {
    Projects,
    Project(String),
    Components(String),
}

fn route(flavor: JiraFlavor, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (flavor, segments.as_slice()) {
        (JiraFlavor::Cloud, ["rest", "api", "3", "project", "search"])
        | (JiraFlavor::DataCenter, ["rest", "api", "2", "project"]) => Some(Route::Projects),
        (JiraFlavor::Cloud, ["rest", "api", "3", "project", id])
        | (JiraFlavor::DataCenter, ["rest", "api", "2", "project", id]) => {
            Some(Route::Project((*id).to_string()))
        }
        // Cloud has both the paged `component` and the older `components` array.
        (
            JiraFlavor::Cloud,
            [
                "rest",
                "api",
                "3",
                "project",
                id,
                "component" | "components",
            ],
        )
        | (JiraFlavor::DataCenter, ["rest", "api", "2", "project", id, "components"]) => {
            Some(Route::Components((*id).to_string()))
        }
        _ => None,
    }
}

/// The answer to a request, and how long to wait before sending it.
fn answer(
    s: &mut JiraState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    _body: &[u8],
) -> (Answer, Duration) {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let authorization = header(headers, "authorization").unwrap_or_default();
    let scheme = authorization
        .split(' ')
        .next()
        .filter(|s| !s.is_empty())
        .map_or_else(|| "none".to_string(), str::to_lowercase);
    s.stats.requests += 1;
    *s.stats.by_path.entry(path.clone()).or_default() += 1;
    *s.stats.by_scheme.entry(scheme.clone()).or_default() += 1;
    s.stats.seen.push(SeenRequest {
        path: path.clone(),
        query: query.clone(),
        scheme,
    });

    if !authorised(s.flavor, &s.extra_tokens, authorization) {
        s.stats.unauthorized += 1;
        let mut a = JIRA.error(
            StatusCode::UNAUTHORIZED,
            "The credentials were not accepted by the simulated Jira.",
        );
        let challenge = match s.flavor {
            JiraFlavor::Cloud => "Basic realm=\"simulated Jira Cloud\"",
            JiraFlavor::DataCenter => "Bearer realm=\"simulated Jira Data Center\"",
        };
        a.header("www-authenticate", challenge);
        return (a, Duration::ZERO);
    }
    if method != Method::GET {
        let a = JIRA.error(StatusCode::METHOD_NOT_ALLOWED, "Only GET is simulated.");
        return (a, Duration::ZERO);
    }
    let Some(route) = route(s.flavor, &path) else {
        let a = JIRA.error(StatusCode::NOT_FOUND, "No such resource on this site.");
        return (a, Duration::ZERO);
    };
    let target = match &route {
        Route::Projects => "projects".to_string(),
        Route::Project(id) => {
            let key = s
                .site
                .project_by_id_or_key(id)
                .map_or_else(|| id.clone(), |p| p.key.clone());
            format!("project:{key}")
        }
        Route::Components(id) => {
            let key = s
                .site
                .project_by_id_or_key(id)
                .map_or_else(|| id.clone(), |p| p.key.clone());
            format!("components:{key}")
        }
    };
    let fault = s
        .faults
        .due(|f| {
            f.target == "*"
                || f.target == target
                || (f.target == "components" && target.starts_with("components:"))
        })
        .map(|f| f.action.clone());
    if let Some(action) = fault {
        s.stats.faults += 1;
        let a = match action {
            JiraFaultAction::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                JIRA.error(status, "Simulated failure.")
            }
            JiraFaultAction::RateLimited { retry_after_secs } => {
                s.stats.rate_limited += 1;
                let mut a = JIRA.error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.");
                a.header("retry-after", retry_after_secs);
                a
            }
            JiraFaultAction::BadJson => Answer::text_as(
                StatusCode::OK,
                "text/html",
                b"<html><body>Service temporarily unavailable</body></html>",
            ),
            late @ (JiraFaultAction::Delay(_)
            | JiraFaultAction::Truncate
            | JiraFaultAction::DropNext
            | JiraFaultAction::EmptyList) => {
                let answer = route_answer(s, &path, &query, route);
                return late_fault(late, answer);
            }
        };
        return (a, Duration::ZERO);
    }
    (route_answer(s, &path, &query, route), Duration::ZERO)
}

/// A fault applied to the answer a request would have had, and the wait before sending it.
fn late_fault(fault: JiraFaultAction, mut answer: Answer) -> (Answer, Duration) {
    let mut delay = Duration::ZERO;
    match fault {
        JiraFaultAction::Delay(d) => delay = d,
        JiraFaultAction::Truncate => {
            let half = answer.body.len() / 2;
            answer.body.truncate(half);
        }
        JiraFaultAction::DropNext | JiraFaultAction::EmptyList => {
            let empty = fault == JiraFaultAction::EmptyList;
            match serde_json::from_slice::<Value>(&answer.body) {
                Ok(Value::Array(_)) if empty => answer.body = b"[]".to_vec(),
                Ok(mut page) if page["values"].is_array() => {
                    page["isLast"] = json!(true);
                    if let Some(o) = page.as_object_mut() {
                        o.remove("nextPage");
                    }
                    if empty {
                        page["values"] = json!([]);
                        page["total"] = json!(0);
                    }
                    answer.body = serde_json::to_vec(&page).unwrap_or_default();
                }
                _ => {}
            }
        }
        _ => {}
    }
    (answer, delay)
}

/// The answer for a route, faults aside.
fn route_answer(s: &JiraState, path: &str, query: &str, route: Route) -> Answer {
    let params = parse_query(query);
    let expand: BTreeSet<&str> = params
        .get("expand")
        .map(|e| e.split(',').map(str::trim).collect())
        .unwrap_or_default();
    match route {
        Route::Projects => {
            let mut projects: Vec<&JiraProject> = s.site.projects.iter().collect();
            projects.sort_by(|a, b| a.key.cmp(&b.key));
            let values: Vec<Value> = projects
                .iter()
                .map(|p| project_json(s, p, &expand))
                .collect();
            match s.flavor {
                JiraFlavor::Cloud => JIRA.json(StatusCode::OK, &page(s, path, &params, values)),
                JiraFlavor::DataCenter => JIRA.json(StatusCode::OK, &Value::Array(values)),
            }
        }
        Route::Project(id) => match s.site.project_by_id_or_key(&id) {
            Some(p) => JIRA.json(StatusCode::OK, &project_json(s, p, &expand)),
            None => JIRA.error(
                StatusCode::NOT_FOUND,
                &format!("No project could be found with key '{id}'."),
            ),
        },
        Route::Components(id) => {
            let Some(project) = s.site.project_by_id_or_key(&id) else {
                return JIRA.error(
                    StatusCode::NOT_FOUND,
                    &format!("No project could be found with key or id '{id}'."),
                );
            };
            let values: Vec<Value> = s
                .site
                .components(project)
                .iter()
                .map(|c| component_json(s, project, c))
                .collect();
            let paged = s.flavor == JiraFlavor::Cloud && path.ends_with("/component");
            if paged {
                JIRA.json(StatusCode::OK, &page(s, path, &params, values))
            } else {
                JIRA.json(StatusCode::OK, &Value::Array(values))
            }
        }
    }
}

fn authorised(flavor: JiraFlavor, extra: &[String], authorization: &str) -> bool {
    match flavor {
        JiraFlavor::Cloud => authorization
            .strip_prefix("Basic ")
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|pair| {
                String::from_utf8(pair)
                    .ok()?
                    .strip_prefix(&format!("{JIRA_EMAIL}:"))
                    .map(str::to_string)
            })
            .is_some_and(|t| t == JIRA_API_TOKEN || extra.contains(&t)),
        JiraFlavor::DataCenter => authorization
            .strip_prefix("Bearer ")
            .map(str::trim)
            .is_some_and(|t| t == JIRA_PAT || extra.iter().any(|e| e == t)),
    }
}

/// A Cloud `PageBean` of `values` for the request's `startAt` and `maxResults`.
fn page(s: &JiraState, path: &str, params: &BTreeMap<String, String>, values: Vec<Value>) -> Value {
    let start = params
        .get("startAt")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let max = params
        .get("maxResults")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(CLOUD_MAX_RESULTS)
        .min(s.max_results_cap);
    let total = values.len();
    let items: Vec<Value> = values.into_iter().skip(start).take(max).collect();
    let is_last = start + items.len() >= total;
    let link = |at: usize| format!("{}{path}?startAt={at}&maxResults={max}", s.base_url);
    let mut page = json!({
        "self": link(start),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": items,
    });
    if !is_last {
        page["nextPage"] = json!(link(start + max));
    }
    page
}

fn avatars(base: &str, kind: &str, id: &str) -> Value {
    let url = |size: &str| format!("{base}/secure/{kind}avatar?size={size}&avatarId={id}");
    json!({"48x48": url("large"), "24x24": url("small"), "16x16": url("xsmall"), "32x32": url("medium")})
}

fn user_json(s: &JiraState, person: usize) -> Value {
    let site = &s.site;
    let Some(p) = site.org.people.get(person) else {
        return Value::Null;
    };
    let base = &s.base_url;
    let mut u = match s.flavor {
        JiraFlavor::Cloud => {
            let id = site.account_id(person);
            json!({
                "self": format!("{base}/rest/api/3/user?accountId={id}"),
                "accountId": id,
                "accountType": "atlassian",
                "avatarUrls": avatars(base, "user", &person.to_string()),
                "displayName": p.name,
                "active": site.user_active(person),
                "timeZone": "Etc/UTC",
            })
        }
        JiraFlavor::DataCenter => json!({
            "self": format!("{base}/rest/api/2/user?username={}", p.login),
            "key": site.user_key(person),
            "name": p.login,
            "avatarUrls": avatars(base, "user", &person.to_string()),
            "displayName": p.name,
            "active": site.user_active(person),
            "timeZone": "Etc/UTC",
        }),
    };
    // Cloud shows an email only when the person's privacy settings allow; people without a
    // public email in the org stand for those.
    if let Some(email) = &p.email {
        u["emailAddress"] = json!(email);
    }
    u
}

fn project_json(s: &JiraState, p: &JiraProject, expand: &BTreeSet<&str>) -> Value {
    let base = &s.base_url;
    let version = match s.flavor {
        JiraFlavor::Cloud => 3,
        JiraFlavor::DataCenter => 2,
    };
    let mut v = json!({
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        "self": format!("{base}/rest/api/{version}/project/{}", p.id),
        "id": p.id,
        "key": p.key,
        "name": p.name,
        "avatarUrls": avatars(base, "project", &p.id),
        "projectTypeKey": "software",
        "archived": false,
    });
    if s.flavor == JiraFlavor::Cloud {
        v["simplified"] = json!(false);
        v["style"] = json!("classic");
        v["isPrivate"] = json!(false);
        v["properties"] = json!({});
    }
    if let Some(c) = p.category.and_then(|i| s.site.categories.get(i)) {
        v["projectCategory"] = json!({
            "self": format!("{base}/rest/api/{version}/projectCategory/{}", c.id),
            "id": c.id,
            "name": c.name,
            "description": c.description,
        });
    }
    // Like Jira, lead and description only when asked for.
    if expand.contains("description") {
        v["description"] = json!(p.description);
    }
    if expand.contains("lead")
        && let Some(lead) = p.lead
    {
        v["lead"] = user_json(s, lead);
    }
    v
}

fn component_json(s: &JiraState, p: &JiraProject, c: &JiraComponent) -> Value {
    let base = &s.base_url;
    let project_id: u64 = p.id.parse().unwrap_or_default();
    let version = match s.flavor {
        JiraFlavor::Cloud => 3,
        JiraFlavor::DataCenter => 2,
    };
    let assignee_type = if c.lead.is_some() {
        "COMPONENT_LEAD"
    } else {
        "PROJECT_DEFAULT"
    };
    let mut v = json!({
        "self": format!("{base}/rest/api/{version}/component/{}", c.id),
        "id": c.id,
        "name": c.name,
        "assigneeType": assignee_type,
        "realAssigneeType": assignee_type,
        "isAssigneeTypeValid": c.lead.is_none_or(|l| s.site.user_active(l)),
        "project": p.key,
        "projectId": project_id,
    });
    if !c.description.is_empty() {
        v["description"] = json!(c.description);
    }
    if let Some(lead) = c.lead {
        v["lead"] = user_json(s, lead);
        if let (JiraFlavor::DataCenter, Some(person)) = (s.flavor, s.site.org.people.get(lead)) {
            v["leadUserName"] = json!(person.login);
        }
    }
    match s.flavor {
        // The paged Cloud list counts each component's issues.
        JiraFlavor::Cloud => v["issueCount"] = json!(c.repo % 37),
        JiraFlavor::DataCenter => v["archived"] = json!(false),
    }
    v
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Percent-decoding for query values (`lead%2Cdescription`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
