//! The `github` connector: organisations' repositories, teams and members as Components, Groups
//! and Users, with owners from CODEOWNERS, dependencies from manifests and declared entities.
//!
//! Per org (one scope): members by REST (ETag-cached, so a quiet org answers 304s), teams with
//! their members by GraphQL, then repositories by GraphQL with their files in the same query —
//! about `ceil(repos/100) + ceil(teams/100)` GraphQL requests for a whole org. External ids are
//! node ids, so a renamed repository is a rename. Any failed request leaves the org partial.

mod api;
mod config;
mod map;
mod queries;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use surveyor_model::{
    Connector, ConnectorError, Entity, Observation, ObservationSink, Outcome, Problem,
};
use surveyor_repofiles::{CATALOG_INFO_FILES, Ecosystem, parse_catalog_info};

pub use api::ApiError;
pub use config::{GithubConfig, GithubConfigError, KEYS, graphql_url_for};

use crate::api::Api;
use crate::config::Settings;
use crate::queries::{
    OneTeam, RepoNode, Repositories, RestUser, TEAM_MEMBERS, TEAMS, TeamNode, Teams, UserNode,
};

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "github";

pub struct GithubConnector {
    id: String,
    settings: Arc<Settings>,
    api: Api,
}

/// What the last crawls cost, for `sync` output and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlStats {
    pub graphql_requests: u64,
    pub rest_requests: u64,
    pub rest_not_modified: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
    pub reserve_pauses: u64,
    pub page_shrinks: u64,
    pub bytes: u64,
}

impl GithubConnector {
    /// Builds the connector; `base_dir` is the config file's directory (key files, cache).
    pub fn new(id: &str, config: GithubConfig, base_dir: &Path) -> Result<Self, GithubConfigError> {
        let settings = Arc::new(config.settings(id, base_dir)?);
        let api = Api::new(Arc::clone(&settings)).map_err(|e| GithubConfigError::Invalid {
            key: match settings.auth {
                config::Auth::Token(_) => "token",
                config::Auth::App { .. } => "private_key_file",
            },
            message: e.to_string(),
        })?;
        Ok(Self {
            id: id.to_string(),
            settings,
            api,
        })
    }

    pub fn stats(&self) -> CrawlStats {
        let http = self.api.http().metrics().snapshot();
        let s = &self.api.stats;
        CrawlStats {
            graphql_requests: s.graphql_requests.load(Ordering::Relaxed),
            rest_requests: s.rest_requests.load(Ordering::Relaxed),
            rest_not_modified: http.not_modified,
            retries: http.retries,
            rate_limit_waits: http.rate_limit_waits,
            reserve_pauses: s.reserve_pauses.load(Ordering::Relaxed),
            page_shrinks: s.page_shrinks.load(Ordering::Relaxed),
            bytes: http.bytes,
        }
    }

    async fn crawl_org(
        &self,
        org: &str,
        sink: &ObservationSink,
        outcome: &mut Outcome,
    ) -> Result<(), ConnectorError> {
        let scope = org.to_string();

        // Members (REST), teams and repositories (GraphQL) do not depend on each other: ask
        // for them together, so the org costs the longest of the three, not their sum.
        let members_path = format!("/orgs/{org}/members?per_page=100");
        let (members, teams, (repos, repos_error)) = tokio::join!(
            self.api.rest_list::<RestUser>(&members_path),
            self.teams(org),
            self.repositories(org),
        );
        if let (Err(e), Err(_), Some(_), true) = (&members, &teams, &repos_error, repos.is_empty())
        {
            // Nothing came back at all (bad credentials, no such org, GitHub down).
            outcome.failed(&scope, format!("org members: {e}"));
        }
        let members = members.unwrap_or_else(|e| {
            // Without the member list the org's people cannot be trusted as complete; its
            // repositories are still worth reading.
            outcome.partial(&scope, format!("org members: {e}"));
            Vec::new()
        });
        let (teams, team_members) = teams.unwrap_or_else(|e| {
            outcome.partial(&scope, format!("teams: {e}"));
            (Vec::new(), BTreeMap::new())
        });
        if let Some(e) = repos_error {
            let reason = format!("repositories after {} read: {e}", repos.len());
            match e {
                ApiError::OrgNotFound(_) => outcome.failed(&scope, reason),
                _ => outcome.partial(&scope, reason),
            }
        }

        // Users: details from the team queries, the rest from REST (ETag-cached per login).
        let mut details: BTreeMap<String, UserNode> = team_members
            .values()
            .flatten()
            .map(|u| (u.login.to_lowercase(), u.clone()))
            .collect();
        for m in &members {
            if details.contains_key(&m.login.to_lowercase()) {
                continue;
            }
            match self
                .api
                .rest_object::<RestUser>(&format!("/users/{}", m.login))
                .await
            {
                Ok(u) => {
                    details.insert(
                        m.login.to_lowercase(),
                        UserNode {
                            login: u.login,
                            name: u.name,
                            email: u.email,
                        },
                    );
                }
                Err(e) => {
                    outcome.partial(&scope, format!("user {}: {e}", m.login));
                    details.insert(
                        m.login.to_lowercase(),
                        UserNode {
                            login: m.login.clone(),
                            name: None,
                            email: None,
                        },
                    );
                }
            }
        }
        let login_by_email: BTreeMap<String, String> = details
            .values()
            .filter_map(|u| {
                let email = u.email.as_deref().filter(|e| !e.is_empty())?;
                Some((email.to_lowercase(), u.login.clone()))
            })
            .collect();

        // Groups and Users.
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &teams {
            if let (Some(parent), Some(child)) = (&t.parent_team, map::entity_name(&t.slug)) {
                children
                    .entry(parent.slug.to_lowercase())
                    .or_default()
                    .push(child);
            }
        }
        let mut teams_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &teams {
            let logins: Vec<String> = team_members
                .get(&t.slug)
                .into_iter()
                .flatten()
                .filter_map(|u| map::entity_name(&u.login))
                .collect();
            let Some(slug_name) = map::entity_name(&t.slug) else {
                continue;
            };
            for login in &logins {
                teams_of
                    .entry(login.clone())
                    .or_default()
                    .push(slug_name.clone());
            }
            let kids = children
                .get(&t.slug.to_lowercase())
                .cloned()
                .unwrap_or_default();
            if let Some(group) = map::group(&self.settings, org, t, &kids, &logins) {
                sink.send(Observation::discovered(&scope, &t.id, group))
                    .await?;
            }
        }
        for m in &members {
            let Some(u) = details.get(&m.login.to_lowercase()) else {
                continue;
            };
            let name = map::entity_name(&u.login).unwrap_or_default();
            let groups = teams_of.get(&name).cloned().unwrap_or_default();
            if let Some(user) = map::user(&self.settings, org, u, &groups) {
                sink.send(Observation::discovered(&scope, &m.node_id, user))
                    .await?;
            }
        }

        // Components, then internal dependencies once every producer is known.
        let built: Vec<BuiltRepo> = repos
            .iter()
            .filter(|r| self.keeps(r))
            .map(|r| self.build_repo(org, r, &login_by_email, outcome))
            .collect();
        let mut built = built;
        surveyor_repofiles::catalog::link_dependencies(
            &mut built
                .iter_mut()
                .map(|b| surveyor_repofiles::catalog::Linkable {
                    entity: &mut b.entity,
                    entity_ref: &b.entity_ref,
                    produces: &b.produces,
                    dependencies: &b.dependencies,
                })
                .collect::<Vec<_>>(),
        );
        for b in built {
            let entity = b.entity;
            let observation = if b.declared {
                Observation::declared(&scope, &b.external_id, entity)
            } else {
                Observation::discovered(&scope, &b.external_id, entity)
            };
            sink.send(observation).await?;
            for (external_id, extra) in b.extra {
                sink.send(Observation::declared(&scope, external_id, extra))
                    .await?;
            }
        }
        for note in self.api.take_field_errors().await {
            outcome.partial(&scope, format!("GraphQL: {note}"));
        }
        outcome.complete(&scope);
        Ok(())
    }

    fn keeps(&self, repo: &RepoNode) -> bool {
        let s = &self.settings;
        if (s.skip_archived && repo.is_archived) || (s.skip_forks && repo.is_fork) {
            return false;
        }
        if s.include.as_ref().is_some_and(|g| !g.is_match(&repo.name)) {
            return false;
        }
        if s.exclude.as_ref().is_some_and(|g| g.is_match(&repo.name)) {
            return false;
        }
        if !s.topics.is_empty() {
            let topics = repo.topics();
            return s.topics.iter().any(|t| topics.contains(t));
        }
        true
    }

    fn build_repo(
        &self,
        org: &str,
        repo: &RepoNode,
        login_by_email: &BTreeMap<String, String>,
        outcome: &mut Outcome,
    ) -> BuiltRepo {
        let ns = &self.settings.namespace;
        let codeowners = surveyor_repofiles::Flavor::GitHub
            .locations()
            .iter()
            .find_map(|p| repo.file(p));
        let owners = codeowners
            .map(|text| map::codeowners_refs(text, org, ns, login_by_email))
            .unwrap_or_default();
        let packages = map::packages(repo);
        let name =
            map::entity_name(&repo.name).unwrap_or_else(|| format!("repo-{}", short_id(&repo.id)));
        let discovered = map::component(&self.settings, repo, &name, &owners, &packages);
        let mut entity = discovered.clone();
        let mut declared = false;
        let mut extra = Vec::new();
        for unreadable in repo.unreadable_files() {
            if CATALOG_INFO_FILES.contains(&unreadable) {
                outcome.problem(Problem {
                    scope: org.to_string(),
                    location: format!("{}:{unreadable}", repo.name_with_owner),
                    field: None,
                    message: "too large or binary: GitHub did not return its text".into(),
                });
            }
        }
        if let Some((file, text)) = CATALOG_INFO_FILES
            .iter()
            .find_map(|f| repo.file(f).map(|t| (*f, t)))
        {
            let mut claimed = false;
            for doc in parse_catalog_info(text) {
                let location = format!(
                    "{}:{file}{}",
                    repo.name_with_owner,
                    doc.line.map(|l| format!(":{l}")).unwrap_or_default()
                );
                match doc.result {
                    // The first Component describes the repository itself.
                    Ok(d) if !claimed && d.kind.eq_ignore_ascii_case("Component") => {
                        claimed = true;
                        match map::overlay(&discovered, &d) {
                            Ok(merged) => {
                                entity = merged;
                                declared = true;
                            }
                            Err(message) => outcome.problem(Problem {
                                scope: org.to_string(),
                                location,
                                field: None,
                                message,
                            }),
                        }
                    }
                    Ok(d) => match d.entity_ref() {
                        Ok(r) => extra.push((format!("{}#{file}#{}", repo.id, r.key()), d)),
                        Err(e) => outcome.problem(Problem {
                            scope: org.to_string(),
                            location,
                            field: Some("metadata.name".into()),
                            message: e.to_string(),
                        }),
                    },
                    Err(e) => outcome.problem(Problem {
                        scope: org.to_string(),
                        location,
                        field: e.field().map(str::to_string),
                        message: e.to_string(),
                    }),
                }
            }
        }
        let entity_ref = entity
            .entity_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| format!("component:{ns}/{name}"));
        BuiltRepo {
            external_id: repo.id.clone(),
            entity_ref,
            dependencies: packages
                .dependencies
                .iter()
                .map(|d| (d.ecosystem, d.package.clone()))
                .collect(),
            produces: packages.produces,
            entity,
            declared,
            extra,
        }
    }

    /// Every repository of the org, page by page; on a failure, what was read and the error.
    async fn repositories(&self, org: &str) -> (Vec<RepoNode>, Option<ApiError>) {
        let mut repos = Vec::new();
        let mut first = self.settings.page_size;
        let mut after: Option<String> = None;
        let query = queries::repositories_query();
        // Nodes read, `null` ones (items behind SAML) included, to hold against `totalCount`.
        let mut read = 0;
        loop {
            let vars = json!({"login": org, "after": after});
            let page: Repositories =
                match self.api.graphql_page(&query, vars, org, &mut first).await {
                    Ok(p) => p,
                    Err(e) => return (repos, Some(e)),
                };
            read += page.repositories.nodes.len() as u64;
            repos.extend(page.repositories.nodes.into_iter().flatten());
            if !page.repositories.page_info.has_next_page {
                // A last page short of the total means the list was cut (or changed while it
                // was read): what is missing must not read as deleted.
                let error = ended_early("repositories", read, page.repositories.total_count);
                return (repos, error);
            }
            after = page.repositories.page_info.end_cursor;
            if after.is_none() {
                return (repos, Some(no_cursor()));
            }
        }
    }

    /// Every team with all its direct members (extra pages only for teams that overflow).
    async fn teams(
        &self,
        org: &str,
    ) -> Result<(Vec<TeamNode>, BTreeMap<String, Vec<UserNode>>), ApiError> {
        let mut teams = Vec::new();
        let mut members: BTreeMap<String, Vec<UserNode>> = BTreeMap::new();
        let mut first = self.settings.page_size;
        let mut after: Option<String> = None;
        let mut read = 0;
        loop {
            let vars = json!({"login": org, "after": after, "members": 100});
            let page: Teams = self.api.graphql_page(TEAMS, vars, org, &mut first).await?;
            read += page.teams.nodes.len() as u64;
            for mut team in page.teams.nodes.into_iter().flatten() {
                let mut list: Vec<UserNode> = std::mem::take(&mut team.members.nodes)
                    .into_iter()
                    .flatten()
                    .collect();
                let mut cursor = team.members.page_info.end_cursor.clone();
                let mut more = team.members.page_info.has_next_page;
                while more {
                    let mut size = 100;
                    let vars = json!({"login": org, "slug": team.slug, "after": cursor});
                    let page: OneTeam = self
                        .api
                        .graphql_page(TEAM_MEMBERS, vars, org, &mut size)
                        .await?;
                    let Some(t) = page.team else { break };
                    list.extend(t.members.nodes.into_iter().flatten());
                    more = t.members.page_info.has_next_page;
                    cursor = t.members.page_info.end_cursor;
                    if more && cursor.is_none() {
                        return Err(no_cursor());
                    }
                }
                members.insert(team.slug.clone(), list);
                teams.push(team);
            }
            if !page.teams.page_info.has_next_page {
                if let Some(e) = ended_early("teams", read, page.teams.total_count) {
                    return Err(e);
                }
                break;
            }
            after = page.teams.page_info.end_cursor;
            if after.is_none() {
                // Asking again without a cursor would start over, and never end.
                return Err(no_cursor());
            }
        }
        Ok((teams, members))
    }
}

/// A list whose last page came before its `totalCount` was reached.
fn ended_early(what: &'static str, read: u64, total: Option<u64>) -> Option<ApiError> {
    total
        .filter(|t| read < *t)
        .map(|total| ApiError::EndedEarly { what, read, total })
}

fn no_cursor() -> ApiError {
    ApiError::Graphql {
        kind: None,
        message: "a page said there was more but gave no cursor".into(),
    }
}

struct BuiltRepo {
    external_id: String,
    entity_ref: String,
    dependencies: Vec<(Ecosystem, String)>,
    produces: Vec<surveyor_repofiles::Package>,
    entity: Entity,
    declared: bool,
    extra: Vec<(String, Entity)>,
}

fn short_id(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

#[async_trait::async_trait]
impl Connector for GithubConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn metrics(&self) -> Vec<surveyor_model::ConnectorMetric> {
        self.api.http().metrics().snapshot().connector_metrics()
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        for org in &self.settings.orgs {
            self.crawl_org(org, &sink, &mut outcome).await?;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
