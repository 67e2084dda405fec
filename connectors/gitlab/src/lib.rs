//! The `gitlab` connector: groups' projects, subgroups and members as Components, Groups and
//! Users, with owners from CODEOWNERS (GitLab's dialect), dependencies from manifests and
//! declared entities from `catalog-info.yaml`, on gitlab.com or a self-managed instance.
//!
//! Per configured group (one scope, named by its full path): the group by REST, then two
//! branches at once — subgroups (`descendant_groups`), each group's members and the members'
//! profiles (GraphQL `users(ids:)`, for the public email); and the projects by keyset
//! pagination (`Link: rel="next"`, never `x-total`, which GitLab drops past 10,000 records),
//! each page's files read by one GraphQL `projects(ids:) { repository { blobs(paths:) } }`
//! query. A whole group costs `2 × ceil(projects/100) + ceil(users/100)` requests plus one per
//! group's member page and per 100 subgroups.
//!
//! Built on crates/http and serde rather than the `gitlab` crate: the crate is not among the
//! workspace's dependencies, and what keeps request counts low here is one hand-written GraphQL
//! blob query across many projects, which a REST-per-file client cannot express.
//!
//! External ids are GitLab's global ids (`gid://gitlab/Project/42`), so a renamed or moved
//! project is a rename. A failed page, member list or batch leaves the group partial: what was
//! read is kept, nothing is deleted.

mod api;
mod config;
mod events;
mod map;
mod queries;

use std::collections::{BTreeMap, BTreeSet};
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
pub use config::{GitlabConfig, TokenHeader};
/// What the last crawls cost, for `sync` output and benchmarks.
pub use surveyor_http::ApiStats as CrawlStats;

use crate::api::Api;
use crate::config::Settings;
use crate::queries::{
    FILES, PROJECT_FILES, ProjectNode, RestGroup, RestMember, RestProject, USERS, UserNode,
    gid_number, group_gid, project_gid, user_gid,
};

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "gitlab";

/// Member lists read at once: enough to hide latency, few enough to stay polite.
const MEMBER_CONCURRENCY: usize = 4;

pub struct GitlabConnector {
    id: String,
    settings: Arc<Settings>,
    api: Arc<Api>,
    /// Per scope (as configured), what its last complete crawl read that a refresh needs.
    memory: Mutex<BTreeMap<String, GroupMemory>>,
}

/// What refreshing one project needs from its group's last whole crawl.
struct GroupMemory {
    /// The root group's full path, as GitLab spells it.
    root: String,
    forge: forge::Memory,
    /// Project id -> its component's name (names depend on the listing: earlier ones win).
    names: BTreeMap<u64, String>,
}

/// Everything about a group's people: its groups, their members and the members' profiles.
struct People {
    /// The root first, then its subgroups.
    groups: Vec<RestGroup>,
    /// Group id -> its members; groups whose list failed are absent.
    members: BTreeMap<u64, Vec<RestMember>>,
    /// User id -> profile, for members whose profile was read.
    profiles: BTreeMap<u64, UserNode>,
    /// Users whose profile could not be read.
    unreadable_profiles: BTreeSet<u64>,
    /// Why the people are incomplete, each leaving the scope partial.
    problems: Vec<String>,
}

/// A project as listed, with its files when GraphQL answered for it.
struct Listed {
    project: RestProject,
    node: Option<ProjectNode>,
}

impl GitlabConnector {
    /// Builds the connector; `base_dir` is the config file's directory (for the cache).
    pub fn new(id: &str, config: GitlabConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        let settings = Arc::new(config.settings(id, base_dir)?);
        let api = Api::new(Arc::clone(&settings))
            .map_err(|e| ConfigError::new("token", e.to_string()))?;
        Ok(Self {
            id: id.to_string(),
            settings,
            api: Arc::new(api),
            memory: Mutex::default(),
        })
    }

    pub fn stats(&self) -> CrawlStats {
        self.api.stats()
    }

    /// One configured group (the scope, as configured) with its subgroups.
    async fn crawl_group(&self, scope: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let top: RestGroup = match self
            .api
            .rest_object(&format!("/groups/{}", encode_path(scope)))
            .await
        {
            Ok(g) => g,
            Err(e) => {
                let reason = if e.is_not_found() {
                    format!("group {scope} not found, or not visible to this token")
                } else {
                    format!("group {scope}: {e}")
                };
                outcome.failed(scope, reason);
                return Ok(());
            }
        };
        // The group's own path as GitLab spells it; the configured one may differ in case.
        let root = top.full_path.clone();

        // People and projects do not depend on each other: read them together.
        let (people, (listed, project_problems)) =
            tokio::join!(self.people(&top), self.projects(&top));
        for p in people.problems.iter().chain(&project_problems) {
            outcome.partial(scope, p.clone());
        }

        let username_by_email: BTreeMap<String, String> = people
            .profiles
            .values()
            .filter_map(|u| {
                let email = u.public_email.as_deref().filter(|e| !e.trim().is_empty())?;
                Some((email.to_lowercase(), u.username.clone()))
            })
            .collect();
        self.emit_people(&root, &people, sink, scope).await?;

        // Components, then internal dependencies once every producer is known.
        let names = component_names(&root, &listed);
        let ctx = GroupContext {
            root: &root,
            scope,
            username_by_email: &username_by_email,
        };
        let names: BTreeMap<u64, String> = listed.iter().map(|l| l.project.id).zip(names).collect();
        let built: Vec<Built> = listed
            .iter()
            .filter_map(|l| {
                let node = l.node.as_ref()?;
                let name = names.get(&l.project.id)?.clone();
                Some(self.build_project(&ctx, &l.project, node, name, outcome))
            })
            .collect();
        let memory = GroupMemory {
            forge: forge::Memory::new(username_by_email, &built),
            root,
            names,
        };
        forge::send(built, scope, sink).await?;
        outcome.complete(scope);
        // Only a whole read is worth refreshing from.
        if outcome.status(scope) == Some(&ScopeStatus::Complete)
            && let Ok(mut m) = self.memory.lock()
        {
            m.insert(scope.to_string(), memory);
        }
        Ok(())
    }

    /// Whether `targets` can be read alone: projects of groups crawled whole before.
    fn reads_alone(&self, targets: &[Target]) -> bool {
        let Ok(memory) = self.memory.lock() else {
            return false;
        };
        targets
            .iter()
            .all(|t| t.kind == "project" && memory.contains_key(&t.scope))
    }

    /// Reads the projects events named (each by REST, their files in one GraphQL query per
    /// scope), mapped as a crawl maps them: a project GitLab no longer has (404), that moved
    /// out of the group, or that the filters no longer keep is confirmed gone; a failed read
    /// fails its scope, deleting nothing.
    async fn refresh_projects(
        &self,
        targets: &[Target],
        sink: ObservationSink,
    ) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        let mut by_scope: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for t in targets {
            match t.key.parse::<u64>() {
                Ok(id) => {
                    by_scope.entry(&t.scope).or_default().insert(id);
                }
                Err(_) => outcome.failed(&t.scope, format!("{:?} is not a project id", t.key)),
            }
        }
        for (scope, ids) in by_scope {
            let known = self.memory.lock().ok().and_then(|m| {
                m.get(scope)
                    .map(|g| (g.root.clone(), Arc::clone(&g.forge.by_email)))
            });
            let Some((root, by_email)) = known else {
                outcome.failed(scope, "a refresh before the group was crawled whole");
                continue;
            };
            match self.read_projects(scope, &root, &ids).await {
                Err(reason) => outcome.failed(scope, reason),
                Ok((listed, gone)) => {
                    let ctx = GroupContext {
                        root: &root,
                        scope,
                        username_by_email: &by_email,
                    };
                    let mut built = Vec::new();
                    for l in &listed {
                        let Some(node) = &l.node else { continue };
                        let name = self.remembered_name(scope, &root, &l.project);
                        built.push(self.build_project(&ctx, &l.project, node, name, &mut outcome));
                    }
                    let gone: Vec<String> = gone.into_iter().map(project_gid).collect();
                    if let Ok(mut m) = self.memory.lock()
                        && let Some(g) = m.get_mut(scope)
                    {
                        g.forge.refreshed(&mut built, &gone, scope, &mut outcome);
                    }
                    forge::send_linked(built, scope, &sink).await?;
                    outcome.refreshed(scope);
                }
            }
        }
        Ok(outcome)
    }

    /// The projects `ids` now, with their files, and those no longer in the catalog's view of
    /// `root`; or why they could not be read.
    async fn read_projects(
        &self,
        scope: &str,
        root: &str,
        ids: &BTreeSet<u64>,
    ) -> Result<(Vec<Listed>, Vec<u64>), String> {
        let mut kept = Vec::new();
        let mut gone = Vec::new();
        let under = format!("{}/", root.to_lowercase());
        for id in ids {
            match self
                .api
                .rest_object::<RestProject>(&format!("/projects/{id}"))
                .await
            {
                Ok(p) => {
                    let path = p.path_with_namespace.to_lowercase();
                    let namespace = path.rsplit_once('/').map_or("", |(ns, _)| ns);
                    let inside = path.starts_with(&under)
                        && (self.settings.include_subgroups || namespace == root.to_lowercase());
                    if inside && self.keeps(&p) {
                        kept.push(p);
                    } else {
                        gone.push(*id);
                    }
                }
                Err(e) if e.is_not_found() => gone.push(*id),
                Err(e) => return Err(format!("project {id} in {scope}: {e}")),
            }
        }
        let ids: Vec<u64> = kept.iter().map(|p| p.id).collect();
        let extra = json!({"paths": FILES});
        let batch = self
            .api
            .by_ids::<ProjectNode>(PROJECT_FILES, "projects", &ids, project_gid, &extra)
            .await;
        if let Some((id, why)) = batch.failed.first() {
            return Err(format!("files of project {id}: {why}"));
        }
        let mut nodes: BTreeMap<u64, ProjectNode> = batch
            .nodes
            .into_iter()
            .filter_map(|n| Some((gid_number(&n.id)?, n)))
            .collect();
        let mut listed = Vec::new();
        for project in kept {
            let Some(node) = nodes.remove(&project.id) else {
                return Err(format!(
                    "files of project {}: not returned by GraphQL",
                    project.id
                ));
            };
            listed.push(Listed {
                project,
                node: Some(node),
            });
        }
        Ok((listed, gone))
    }

    /// A refreshed project's component name, as a crawl would give it: a crawl lists by id,
    /// so the names taken before it are those of the projects with smaller ids.
    fn remembered_name(&self, scope: &str, root: &str, project: &RestProject) -> String {
        let Ok(mut m) = self.memory.lock() else {
            return name_for(root, project, &BTreeSet::new());
        };
        let Some(g) = m.get_mut(scope) else {
            return name_for(root, project, &BTreeSet::new());
        };
        let taken: BTreeSet<String> = g
            .names
            .range(..project.id)
            .map(|(_, n)| n.clone())
            .collect();
        let name = name_for(root, project, &taken);
        g.names.insert(project.id, name.clone());
        name
    }

    /// Groups (with their members) and Users.
    async fn emit_people(
        &self,
        root: &str,
        people: &People,
        sink: &ObservationSink,
        scope: &str,
    ) -> Result<(), ConnectorError> {
        let name_of: BTreeMap<u64, String> = people
            .groups
            .iter()
            .filter_map(|g| Some((g.id, map::group_name(root, &g.full_path)?)))
            .collect();
        let mut children: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for g in &people.groups {
            if let (Some(parent), Some(name)) = (g.parent_id, name_of.get(&g.id))
                && name_of.contains_key(&parent)
            {
                children.entry(parent).or_default().push(name.clone());
            }
        }
        // User id -> (group names, group path -> access level).
        let mut memberships: BTreeMap<u64, (Vec<String>, BTreeMap<String, u64>)> = BTreeMap::new();
        let mut fallback: BTreeMap<u64, &RestMember> = BTreeMap::new();
        for g in &people.groups {
            let (Some(members), Some(group)) = (people.members.get(&g.id), name_of.get(&g.id))
            else {
                continue;
            };
            let mut names: Vec<String> = Vec::new();
            for m in members {
                let Some(user) = map::entity_name(&m.username) else {
                    continue;
                };
                names.push(user);
                let entry = memberships.entry(m.id).or_default();
                entry.0.push(group.clone());
                entry.1.insert(g.full_path.clone(), m.access_level);
                fallback.entry(m.id).or_insert(m);
            }
            names.sort();
            names.dedup();
            let mut kids = children.get(&g.id).cloned().unwrap_or_default();
            kids.sort();
            let parent = g
                .parent_id
                .and_then(|p| name_of.get(&p))
                .map(String::as_str);
            if let Some(entity) = map::group(&self.settings, root, g, parent, &kids, &names) {
                sink.send(Observation::discovered(scope, group_gid(g.id), entity))
                    .await?;
            }
        }
        // Users only from complete member lists: a user missing from a failed list would lose
        // that group from `memberOf` and flap back next run.
        if people.members.len() < people.groups.len() {
            return Ok(());
        }
        for (id, (mut groups, access)) in memberships {
            if people.unreadable_profiles.contains(&id) {
                continue;
            }
            // GitLab leaves some users out of `users(ids:)` (bots, hidden profiles): the member
            // entry is all there is, and it is the same every run.
            let profile = people.profiles.get(&id).cloned().or_else(|| {
                fallback.get(&id).map(|m| UserNode {
                    id: user_gid(m.id),
                    username: m.username.clone(),
                    name: m.name.clone(),
                    public_email: None,
                    state: m.state.clone(),
                })
            });
            let Some(profile) = profile else { continue };
            groups.sort();
            groups.dedup();
            // A username with nothing alphanumeric in it cannot be named; it is skipped, not a
            // problem, because it would leave the group partial (and undeletable) for good.
            match map::user(&self.settings, root, &profile, &groups, &access) {
                Some(user) => {
                    sink.send(Observation::discovered(scope, user_gid(id), user))
                        .await?
                }
                None => {
                    tracing::warn!(username = %profile.username, "no valid entity name; user skipped")
                }
            }
        }
        Ok(())
    }

    /// The root's subgroups, every group's members, and the members' profiles.
    async fn people(&self, top: &RestGroup) -> People {
        let mut people = People {
            groups: vec![top.clone()],
            members: BTreeMap::new(),
            profiles: BTreeMap::new(),
            unreadable_profiles: BTreeSet::new(),
            problems: Vec::new(),
        };
        let n = self.settings.page_size;
        if self.settings.include_subgroups {
            let path = format!("/groups/{}/descendant_groups?per_page={n}", top.id);
            match self.api.rest_list::<RestGroup>(&path).await {
                Ok(list) => people.groups.extend(list),
                Err(e) => people.problems.push(format!("subgroups: {e}")),
            }
        }
        let suffix = if self.settings.inherited_members {
            "members/all"
        } else {
            "members"
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut task_group: BTreeMap<tokio::task::Id, u64> = BTreeMap::new();
        let mut pending = people.groups.iter();
        let path_of: BTreeMap<u64, String> = people
            .groups
            .iter()
            .map(|g| (g.id, g.full_path.clone()))
            .collect();
        loop {
            while tasks.len() < MEMBER_CONCURRENCY {
                let Some(g) = pending.next() else { break };
                let api = Arc::clone(&self.api);
                let path = format!("/groups/{}/{suffix}?per_page={n}", g.id);
                let handle = tasks.spawn(async move { api.rest_list::<RestMember>(&path).await });
                task_group.insert(handle.id(), g.id);
            }
            let Some(done) = tasks.join_next_with_id().await else {
                break;
            };
            let (task, result) = match done {
                Ok((task, result)) => (task, result.map_err(|e| e.to_string())),
                Err(e) => (e.id(), Err(format!("the request task failed: {e}"))),
            };
            let Some(group) = task_group.get(&task).copied() else {
                continue;
            };
            match result {
                Ok(list) => {
                    people.members.insert(group, list);
                }
                Err(e) => {
                    let path = path_of.get(&group).cloned().unwrap_or_default();
                    people.problems.push(format!("members of {path}: {e}"));
                }
            }
        }
        let ids: Vec<u64> = people
            .members
            .values()
            .flatten()
            .map(|m| m.id)
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .collect();
        let batch = self
            .api
            .by_ids::<UserNode>(USERS, "users", &ids, user_gid, &json!({}))
            .await;
        for u in batch.nodes {
            if let Some(id) = gid_number(&u.id) {
                people.profiles.insert(id, u);
            }
        }
        if let Some((_, why)) = batch.failed.first() {
            people
                .problems
                .push(format!("profiles of {} users: {why}", batch.failed.len()));
        }
        people
            .unreadable_profiles
            .extend(batch.failed.iter().map(|(id, _)| *id));
        people
    }

    /// Every project under the root that the filters keep, page by page, each page's files
    /// read in one GraphQL query; and why the list is incomplete, if it is.
    async fn projects(&self, top: &RestGroup) -> (Vec<Listed>, Vec<String>) {
        let s = &self.settings;
        let mut url = format!(
            "{}/groups/{}/projects?include_subgroups={}&with_shared=false&pagination=keyset&order_by=id&sort=asc&per_page={}{}",
            self.api.api_url(),
            top.id,
            s.include_subgroups,
            s.page_size,
            if s.filters.skip_archived {
                "&archived=false"
            } else {
                ""
            },
        );
        let first_url = url.clone();
        let mut listed: Vec<Listed> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        let mut unread: Vec<(u64, String)> = Vec::new();
        let extra = json!({"paths": FILES});
        loop {
            let (page, next) = match self.api.rest_page::<RestProject>(&url).await {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("projects after {} listed: {e}", listed.len()));
                    break;
                }
            };
            let full_after = (page.len() >= s.page_size as usize)
                .then(|| page.iter().map(|p| p.id).max())
                .flatten();
            let kept: Vec<RestProject> = page.into_iter().filter(|p| self.keeps(p)).collect();
            let ids: Vec<u64> = kept.iter().map(|p| p.id).collect();
            let mut batch = self
                .api
                .by_ids::<ProjectNode>(PROJECT_FILES, "projects", &ids, project_gid, &extra)
                .await;
            let mut nodes: BTreeMap<u64, ProjectNode> = batch
                .nodes
                .drain(..)
                .filter_map(|n| Some((gid_number(&n.id)?, n)))
                .collect();
            let failed: BTreeSet<u64> = batch.failed.iter().map(|(id, _)| *id).collect();
            unread.append(&mut batch.failed);
            for project in kept {
                let node = nodes.remove(&project.id);
                if node.is_none() && !failed.contains(&project.id) {
                    // Listed a moment ago, gone or hidden now: its files are unknown.
                    unread.push((project.id, "not returned by GraphQL".into()));
                }
                listed.push(Listed { project, node });
            }
            match (next, full_after) {
                (Some(n), _) => url = n,
                (None, Some(last)) => {
                    // Keyset pages carry no totals: a full page without a next link is the
                    // exact end or a cut list, and one more page after its last id tells.
                    if let Some(problem) = self.projects_after(&first_url, last).await {
                        problems.push(format!("projects after {} listed: {problem}", listed.len()));
                    }
                    break;
                }
                (None, None) => break,
            }
        }
        if let Some((id, why)) = unread.first() {
            problems.push(format!(
                "files of {} projects (first: project {id}): {why}",
                unread.len()
            ));
        }
        (listed, problems)
    }

    /// Why the project list is not over after project `last`, if it is not: the keyset page
    /// after it holds projects. (Where keyset is not served, `id_after` is ignored and the
    /// first page comes back, whose ids are not after `last`: the end stands.)
    async fn projects_after(&self, first_url: &str, last: u64) -> Option<String> {
        let probe = format!("{first_url}&id_after={last}");
        match self.api.rest_page::<RestProject>(&probe).await {
            Ok((more, _)) => {
                let beyond = more.iter().filter(|p| p.id > last).count();
                (beyond > 0).then(|| {
                    format!(
                        "a full page came without a next link, yet {beyond} more projects followed it"
                    )
                })
            }
            Err(e) => Some(e.to_string()),
        }
    }

    fn keeps(&self, p: &RestProject) -> bool {
        // A project waiting out delayed deletion has been renamed `<path>-deletion_scheduled-<id>`
        // by GitLab: it is going, not renamed.
        let topics = p.topics();
        !p.pending_deletion()
            && self
                .settings
                .filters
                .keeps(&p.path_with_namespace, p.archived, p.is_fork(), &topics)
    }

    fn build_project(
        &self,
        ctx: &GroupContext<'_>,
        project: &RestProject,
        node: &ProjectNode,
        name: String,
        outcome: &mut Outcome,
    ) -> Built {
        let files = node.files();
        // CODEOWNERS (each section's owners of a file no specific rule names): groups under the
        // root are Groups, a bare `@root` the root group; groups outside it and roles
        // (`@@maintainer`) are nobody.
        let under_root = |path: &str| map::group_name(ctx.root, path);
        let (ns, by_email) = (&self.settings.mapping.namespace, ctx.username_by_email);
        let owners = files.owners(Flavor::GitLab, ns, by_email, under_root, Some(ctx.root));
        let packages = map::packages(&files);
        let language = queries::primary_language(node);
        let discovered = map::component(
            &self.settings,
            project,
            &name,
            language.as_deref(),
            &owners,
            &packages,
        );
        let at = (
            project.path_with_namespace.as_str(),
            ctx.scope,
            "binary or unreadable: GitLab did not return its text",
        );
        let id = project_gid(project.id);
        Built::new(id, discovered, packages, &files, at, outcome)
    }
}

/// What building a group's components needs to know about the group.
struct GroupContext<'a> {
    /// The root group's full path, as GitLab spells it.
    root: &'a str,
    /// The scope, as configured.
    scope: &'a str,
    username_by_email: &'a BTreeMap<String, String>,
}

/// Component names for listed projects, in listing (id) order: the project's path; when an
/// earlier project already took it (same path in another subgroup), the path below the root
/// with `-` for `/`; failing that, the path and the project id. A name depends only on
/// projects listed before it, so a crawl cut short names what it read as a full one would.
fn component_names(root: &str, listed: &[Listed]) -> Vec<String> {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    listed
        .iter()
        .map(|l| {
            let name = name_for(root, &l.project, &taken);
            taken.insert(name.clone());
            name
        })
        .collect()
}

/// A project's component name when `taken` are held by projects listed before it.
fn name_for(root: &str, p: &RestProject, taken: &BTreeSet<String>) -> String {
    let with_id = |base: &str| {
        let suffix = format!("-{}", p.id);
        let head: String = base.chars().take(63 - suffix.len()).collect();
        let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        format!("{head}{suffix}")
    };
    let base = map::entity_name(&p.path).unwrap_or_else(|| format!("project-{}", p.id));
    let candidates = [
        Some(base.clone()),
        map::group_name(root, &p.path_with_namespace),
        Some(with_id(&base)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| with_id(&base))
}

/// A group path as one URL path segment (`acme/platform` -> `acme%2Fplatform`).
fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

surveyor_model::connector!(GitlabConnector(GitlabConfig, base_dir):
    each |c| &c.settings.groups => crawl_group, metrics |c| c.api.http().connector_metrics(),
    receive |c, delivery| events::receive(&c.settings, delivery),
    listens |c| c.settings.webhook_secret.is_some(),
    refresh |c, targets, sink| c.refresh_projects(targets, sink),
    refreshes |c, targets| c.reads_alone(targets));

#[cfg(test)]
mod tests;
