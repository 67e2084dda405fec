//! The `github` connector: organisations' repositories, teams and members as Components, Groups
//! and Users, with owners from CODEOWNERS, dependencies from manifests and declared entities.
//!
//! Per org (one scope): members by REST (ETag-cached, so a quiet org answers 304s), teams with
//! their members by GraphQL, then repositories by GraphQL with their files in the same query —
//! about `ceil(repos/100) + ceil(teams/100)` GraphQL requests for a whole org. External ids are
//! node ids, so a renamed repository is a rename. Any failed request leaves the org partial.

mod api;
mod config;
mod events;
mod map;
mod queries;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::json;
use surveyor_model::{
    ConfigError, ConnectorError, Crawl, Crawled, Observation, ObservationSink, Outcome,
    ScopeStatus, Target,
};
use surveyor_repofiles::Flavor;
use surveyor_repofiles::forge::{self, Built};

pub use api::ApiError;
pub use config::{GithubConfig, graphql_url_for};
/// What the last crawls cost, for `sync` output and benchmarks.
pub use surveyor_http::ApiStats as CrawlStats;

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
    /// Per org (lower case), what its last complete crawl read that a refresh needs.
    memory: Mutex<BTreeMap<String, forge::Memory>>,
}

impl GithubConnector {
    /// Builds the connector; `base_dir` is the config file's directory (key files, cache).
    pub fn new(id: &str, config: GithubConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        let settings = Arc::new(config.settings(id, base_dir)?);
        let api = Api::new(Arc::clone(&settings))
            .map_err(|e| ConfigError::new(settings.auth.key(), e.to_string()))?;
        Ok(Self {
            id: id.to_string(),
            settings,
            api,
            memory: Mutex::default(),
        })
    }

    pub fn stats(&self) -> CrawlStats {
        self.api.stats()
    }

    /// One org: one scope.
    async fn crawl_org(&self, org: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
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
            outcome.failed(org, format!("org members: {e}"));
        }
        let members = members.unwrap_or_else(|e| {
            // Without the member list the org's people cannot be trusted as complete; its
            // repositories are still worth reading.
            outcome.partial(org, format!("org members: {e}"));
            Vec::new()
        });
        let (teams, team_members) = teams.unwrap_or_else(|e| {
            outcome.partial(org, format!("teams: {e}"));
            (Vec::new(), BTreeMap::new())
        });
        if let Some(e) = repos_error {
            let reason = format!("repositories after {} read: {e}", repos.len());
            match e {
                ApiError::OrgNotFound(_) => outcome.failed(org, reason),
                _ => outcome.partial(org, reason),
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
                    outcome.partial(org, format!("user {}: {e}", m.login));
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
                sink.send(Observation::discovered(org, &t.id, group))
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
                sink.send(Observation::discovered(org, &m.node_id, user))
                    .await?;
            }
        }

        // Components, then internal dependencies once every producer is known.
        let built: Vec<Built> = repos
            .iter()
            .filter(|r| self.keeps(r))
            .map(|r| self.build_repo(org, r, &login_by_email, outcome))
            .collect();
        let memory = forge::Memory::new(login_by_email, &built);
        forge::send(built, org, sink).await?;
        for note in self.api.take_field_errors().await {
            outcome.partial(org, format!("GraphQL: {note}"));
        }
        outcome.complete(org);
        // Only a whole read is worth refreshing from.
        if outcome.status(org) == Some(&ScopeStatus::Complete)
            && let Ok(mut m) = self.memory.lock()
        {
            m.insert(org.to_lowercase(), memory);
        }
        Ok(())
    }

    /// Whether `targets` can be read alone: repositories of orgs crawled whole before.
    fn reads_alone(&self, targets: &[Target]) -> bool {
        let Ok(memory) = self.memory.lock() else {
            return false;
        };
        targets
            .iter()
            .all(|t| t.kind == "repository" && memory.contains_key(&t.scope.to_lowercase()))
    }

    /// Reads the repositories events named, 100 to a request, mapped as a crawl maps them: a
    /// repository GitHub no longer resolves, that moved to another org, or that the filters no
    /// longer keep is confirmed gone; a failed read fails its org, deleting nothing.
    async fn refresh_repos(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        let mut by_org: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in targets {
            by_org
                .entry(t.scope.clone())
                .or_default()
                .push(t.key.clone());
        }
        for (org, ids) in by_org {
            let by_email = match self.memory.lock() {
                Ok(m) => m.get(&org.to_lowercase()).map(|m| Arc::clone(&m.by_email)),
                Err(_) => None,
            };
            let Some(by_email) = by_email else {
                outcome.failed(&org, "a refresh before the org was crawled whole");
                continue;
            };
            let mut built = Vec::new();
            let mut gone = Vec::new();
            let mut failed = None;
            for chunk in ids.chunks(100) {
                match self.api.repositories_by_id(chunk).await {
                    Ok(nodes) => {
                        for (id, node) in chunk.iter().zip(nodes) {
                            let ours = node.as_ref().is_some_and(|r| {
                                r.name_with_owner
                                    .split_once('/')
                                    .is_some_and(|(owner, _)| owner.eq_ignore_ascii_case(&org))
                            });
                            match node {
                                Some(r) if ours && self.keeps(&r) => {
                                    built.push(self.build_repo(&org, &r, &by_email, &mut outcome));
                                }
                                _ => gone.push(id.clone()),
                            }
                        }
                    }
                    Err(e) => {
                        failed = Some(format!("repositories by id: {e}"));
                        break;
                    }
                }
            }
            if let Some(reason) = failed {
                outcome.failed(&org, reason);
                continue;
            }
            if let Ok(mut m) = self.memory.lock()
                && let Some(memory) = m.get_mut(&org.to_lowercase())
            {
                memory.refreshed(&mut built, &gone, &org, &mut outcome);
            }
            forge::send_linked(built, &org, &sink).await?;
            outcome.refreshed(&org);
        }
        Ok(outcome)
    }

    fn keeps(&self, repo: &RepoNode) -> bool {
        let topics = repo.topics();
        self.settings
            .filters
            .keeps(&repo.name, repo.is_archived, repo.is_fork, &topics)
    }

    fn build_repo(
        &self,
        org: &str,
        repo: &RepoNode,
        login_by_email: &BTreeMap<String, String>,
        outcome: &mut Outcome,
    ) -> Built {
        let ns = &self.settings.mapping.namespace;
        let files = repo.files();
        let team = map::org_team(org);
        let owners = files.owners(Flavor::GitHub, ns, login_by_email, team, None);
        let packages = map::packages(&files);
        let name =
            map::entity_name(&repo.name).unwrap_or_else(|| format!("repo-{}", short_id(&repo.id)));
        let discovered = map::component(&self.settings, repo, &name, &owners, &packages);
        let at = (
            repo.name_with_owner.as_str(),
            org,
            "too large or binary: GitHub did not return its text",
        );
        Built::new(repo.id.clone(), discovered, packages, &files, at, outcome)
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

fn short_id(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase()
}

surveyor_model::connector!(GithubConnector(GithubConfig, base_dir):
    each |c| &c.settings.orgs => crawl_org, metrics |c| c.api.http().connector_metrics(),
    receive |c, delivery| events::receive(&c.settings, delivery),
    listens |c| c.settings.webhook_secret.is_some(),
    refresh |c, targets, sink| c.refresh_repos(targets, sink),
    refreshes |c, targets| c.reads_alone(targets));

#[cfg(test)]
mod tests;
