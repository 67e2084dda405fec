//! What a forge connector (GitHub, GitLab) does with repositories whatever the forge: which
//! ones it keeps, the Component it makes of one, the repository's `catalog-info.yaml` laid over
//! that, and the crawl's components sent once every producer of a package is known.

use std::collections::{BTreeMap, HashMap};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value, json};
use surveyor_model::names::entity_name;
use surveyor_model::validate::is_valid_tag;
use surveyor_model::{
    ConfigError, ConnectorError, Entity, Observation, ObservationSink, Outcome, Problem,
};

use crate::catalog::{
    Linkable, Packages, Producers, link_dependencies, link_to, overlay, producers,
};
use crate::{
    CATALOG_INFO_FILES, CodeOwners, Ecosystem, Flavor, Owner, Package, parse_catalog_info,
};

/// Topic -> `spec.type` unless configured: libraries, websites and documentation.
pub fn default_topic_types() -> BTreeMap<String, String> {
    [
        ("library", "library"),
        ("lib", "library"),
        ("sdk", "library"),
        ("website", "website"),
        ("frontend", "website"),
        ("documentation", "documentation"),
        ("docs", "documentation"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// How globs on repository paths match: always ignoring case; `*` within one path segment
/// (`**` crossing them) or across `/` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segments {
    Crossed,
    Kept,
}

/// Which repositories a forge connector keeps (`include`, `exclude`, `topics`,
/// `skip_archived`, `skip_forks`).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include: Option<GlobSet>,
    pub exclude: Option<GlobSet>,
    /// Lower-cased; a repository needs one of them, when there are any.
    pub topics: Vec<String>,
    pub skip_archived: bool,
    pub skip_forks: bool,
}

impl Filters {
    /// Whether the repository at `path` (what the globs match) is crawled.
    pub fn keeps(&self, path: &str, archived: bool, fork: bool, topics: &[String]) -> bool {
        if (self.skip_archived && archived) || (self.skip_forks && fork) {
            return false;
        }
        if self.include.as_ref().is_some_and(|g| !g.is_match(path)) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(path)) {
            return false;
        }
        self.topics.is_empty() || self.topics.iter().any(|t| topics.contains(t))
    }
}

/// The globs of `key`, `None` for none; an invalid one is an error at `key`.
pub fn globs(
    key: &'static str,
    patterns: &[String],
    segments: Segments,
) -> Result<Option<GlobSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .case_insensitive(true)
            .literal_separator(segments == Segments::Kept)
            .build()
            .map_err(|e| ConfigError::new(key, format!("invalid glob {p:?}: {}", e.kind())))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| ConfigError::new(key, format!("invalid glob {:?}: {e}", patterns.join(", "))))
}

/// Who a repository's CODEOWNERS says owns it as a whole (the owners of a file no specific
/// rule names), first owner first, as entity refs without repeats; and the owners as written.
/// `team` names the Group a team path is (`None` for a team that is none of ours), `root_user`
/// is a username that stands for the top group itself (GitLab's bare `@group`); other
/// usernames are Users, emails Users when a member shows that email, roles nobody.
pub fn codeowners_refs(
    text: &str,
    flavor: Flavor,
    namespace: &str,
    username_by_email: &BTreeMap<String, String>,
    team: impl Fn(&str) -> Option<String>,
    root_user: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let owners = CodeOwners::parse(text, flavor).repo_owners();
    let group = |name: Option<String>| name.map(|n| format!("group:{namespace}/{n}"));
    let user = |name: &str| entity_name(name).map(|n| format!("user:{namespace}/{n}"));
    let mut refs: Vec<String> = Vec::new();
    for owner in &owners {
        let r = match owner {
            Owner::Team(path) => group(team(path)),
            Owner::User(name) => match root_user {
                Some(root) if name.eq_ignore_ascii_case(root) => group(team(root)),
                _ => user(name),
            },
            Owner::Email(email) => username_by_email
                .get(&email.to_lowercase())
                .and_then(|u| user(u)),
            Owner::Role(_) => None,
        };
        if let Some(r) = r
            && !refs.contains(&r)
        {
            refs.push(r);
        }
    }
    (refs, owners.iter().map(ToString::to_string).collect())
}

/// How a forge connector names what it makes of repositories.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The catalog namespace of every entity the connector makes.
    pub namespace: String,
    /// `spec.type` of a repository no topic of `topic_types` names.
    pub component_type: String,
    /// `spec.lifecycle` of a live repository; archived ones are `deprecated`.
    pub lifecycle: String,
    /// Lower-cased topic -> `spec.type`; the repository's first topic found here decides.
    pub topic_types: BTreeMap<String, String>,
}

impl Mapping {
    /// Checks `namespace` and lower-cases the topics of `topic_types`.
    pub fn new(
        namespace: String,
        component_type: String,
        lifecycle: String,
        topic_types: BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        surveyor_model::kit::ensure(
            surveyor_model::validate::is_valid_namespace(&namespace),
            "namespace",
            || {
                format!(
                    "{namespace:?} is not a valid namespace (lower-case letters, digits and '-')"
                )
            },
        )?;
        Ok(Self {
            namespace,
            component_type,
            lifecycle,
            topic_types: topic_types
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        })
    }

    /// A Group named `name`, of `type` (`team`, `organization`), with its family and members.
    pub fn group(&self, name: &str, team: &Team<'_>) -> Entity {
        let mut e = Entity::new("Group", &self.namespace, name);
        e.metadata.description = not_blank(team.description);
        e.spec.insert("type".into(), json!(team.kind));
        e.spec
            .insert("profile".into(), json!({"displayName": team.display_name}));
        if let Some(parent) = team.parent {
            e.spec.insert("parent".into(), json!(parent));
        }
        e.spec.insert("children".into(), json!(team.children));
        e.spec.insert("members".into(), json!(team.members));
        e
    }

    /// The User a forge's `login` is (`None` when nothing alphanumeric is in it to name it by),
    /// with a profile of what is not blank of `person` (name, email), member of `groups`.
    pub fn user(
        &self,
        login: &str,
        person: (Option<&str>, Option<&str>),
        groups: &[String],
    ) -> Option<Entity> {
        let mut e = Entity::new("User", &self.namespace, &entity_name(login)?);
        let (display_name, email) = person;
        let mut profile = Map::new();
        if let Some(n) = not_blank(display_name) {
            profile.insert("displayName".into(), json!(n));
        }
        if let Some(m) = not_blank(email) {
            profile.insert("email".into(), json!(m));
        }
        if !profile.is_empty() {
            e.spec.insert("profile".into(), Value::Object(profile));
        }
        e.spec.insert("memberOf".into(), json!(groups));
        Some(e)
    }

    /// The discovered Component of a repository (before its `catalog-info.yaml` is laid over
    /// it). `owners` are CODEOWNERS' refs for the whole repository and its owners as written.
    pub fn component(
        &self,
        repo: &Repo<'_>,
        name: &str,
        owners: &(Vec<String>, Vec<String>),
        packages: &Packages,
    ) -> Entity {
        let mut e = Entity::new("Component", &self.namespace, name);
        e.metadata.description = not_blank(repo.description);
        if !name.eq_ignore_ascii_case(repo.name) {
            e.metadata.title = Some(repo.name.to_string());
        }
        let a = &mut e.metadata.annotations;
        a.insert(
            format!("{}/project-slug", repo.forge),
            repo.slug.to_string(),
        );
        a.insert(
            "backstage.io/source-location".into(),
            format!("url:{}/", repo.tree),
        );
        if !owners.1.is_empty() {
            a.insert("surveyor.dev/codeowners".into(), owners.1.join(" "));
        }
        if !packages.errors.is_empty() {
            a.insert(
                "surveyor.dev/manifest-errors".into(),
                packages.errors.join("; "),
            );
        }
        if let Some(v) = repo.visibility {
            e.metadata
                .labels
                .insert(format!("{}/visibility", repo.forge), v.to_lowercase());
        }
        let mut tags: Vec<String> = Vec::new();
        let language = repo
            .language
            .map(|l| l.to_lowercase().replace([' ', '_'], "-"));
        for tag in repo.tags.iter().cloned().chain(language) {
            if is_valid_tag(&tag) && !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        e.metadata.tags = tags;
        e.metadata.links = vec![json!({"url": repo.url, "title": "Repository", "icon": repo.icon})];
        let topic_type = repo.topics.iter().find_map(|t| self.topic_types.get(t));
        let component_type = topic_type.unwrap_or(&self.component_type);
        if topic_type.is_none() {
            // No topic decides the type: it is the configured default, not a finding.
            surveyor_model::kit::mark_defaulted(&mut e, &["/spec/type"]);
        }
        let spec = &mut e.spec;
        spec.insert("type".into(), json!(component_type));
        spec.insert(
            "lifecycle".into(),
            json!(if repo.archived {
                "deprecated"
            } else {
                self.lifecycle.as_str()
            }),
        );
        if let Some(owner) = owners.0.first() {
            spec.insert("owner".into(), json!(owner));
        }
        if !packages.produces.is_empty() {
            spec.insert("packages".into(), json!(packages.produces));
        }
        if !packages.dependencies.is_empty() {
            spec.insert("packageDependencies".into(), json!(packages.dependencies));
        }
        e
    }
}

/// A team (or group) as the forge describes it, for [`Mapping::group`].
#[derive(Debug, Clone, Copy)]
pub struct Team<'a> {
    /// `spec.type`: `team`, `organization`.
    pub kind: &'a str,
    pub display_name: &'a str,
    pub description: Option<&'a str>,
    /// The parent's entity name.
    pub parent: Option<&'a str>,
    pub children: &'a [String],
    pub members: &'a [String],
}

/// A repository as the forge describes it, for [`Mapping::component`].
#[derive(Debug, Clone)]
pub struct Repo<'a> {
    /// The host whose annotation and label names the entity carries (`github.com`).
    pub forge: &'static str,
    /// The icon of the repository's link (`github`).
    pub icon: &'static str,
    /// The repository's own name (the title, when the entity name differs).
    pub name: &'a str,
    /// Its full path at the forge (`acme/payments-api`).
    pub slug: &'a str,
    pub description: Option<&'a str>,
    /// Its web page.
    pub url: &'a str,
    /// The web page of its default branch's tree, without the trailing `/`.
    pub tree: String,
    pub visibility: Option<&'a str>,
    /// Lower-cased topics, for `topic_types`.
    pub topics: &'a [String],
    /// Tags from its topics (the primary language's is added); invalid ones are left out.
    pub tags: Vec<String>,
    pub language: Option<&'a str>,
    pub archived: bool,
}

/// A repository's files as the forge gave them, by path: the text, or `None` for a file that is
/// there but that the forge did not give as text (binary, too large).
#[derive(Debug, Clone, Default)]
pub struct Files(pub HashMap<String, Option<String>>);

impl Files {
    /// The text of a file, when present and text.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.0.get(path)?.as_deref()
    }

    /// Present but not readable as text.
    pub fn unreadable(&self, path: &str) -> bool {
        matches!(self.0.get(path), Some(None))
    }

    /// The CODEOWNERS file, first found of `flavor`'s locations.
    pub fn codeowners(&self, flavor: Flavor) -> Option<&str> {
        flavor.locations().iter().find_map(|p| self.text(p))
    }

    /// Who the repository's CODEOWNERS says owns it ([`codeowners_refs`]); nobody without one.
    pub fn owners(
        &self,
        flavor: Flavor,
        namespace: &str,
        username_by_email: &BTreeMap<String, String>,
        team: impl Fn(&str) -> Option<String>,
        root_user: Option<&str>,
    ) -> (Vec<String>, Vec<String>) {
        self.codeowners(flavor)
            .map(|text| {
                codeowners_refs(text, flavor, namespace, username_by_email, team, root_user)
            })
            .unwrap_or_default()
    }

    /// The manifests among `paths` (in that order, so the packages come in it too).
    pub fn packages<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> Packages {
        crate::catalog::packages(
            paths
                .into_iter()
                .filter_map(|path| self.text(path).map(|text| (path, text))),
        )
    }
}

/// A repository ready to be sent: its component (descriptor laid over), the entities its
/// descriptor declares besides, and its packages for the `dependsOn` links.
pub struct Built {
    external_id: String,
    entity_ref: String,
    dependencies: Vec<(Ecosystem, String)>,
    produces: Vec<Package>,
    entity: Entity,
    declared: bool,
    extra: Vec<(String, Entity)>,
}

impl Built {
    /// `discovered`, with the repository's `catalog-info.yaml` (the first of
    /// [`CATALOG_INFO_FILES`] there) laid over it: its first Component is the repository's own
    /// and wins over what was discovered; its other documents are entities of their own
    /// (`<external_id>#<file>#<ref key>`). `at` is the repository's full path, the scope and what
    /// to say of a descriptor the forge gave no text of; problems are the scope's, located at
    /// `<full path>:<file>:<line>`.
    pub fn new(
        external_id: String,
        discovered: Entity,
        packages: Packages,
        files: &Files,
        at: (&str, &str, &str),
        outcome: &mut Outcome,
    ) -> Self {
        let (slug, scope, why_unreadable) = at;
        let problem = |location: String, field: Option<String>, message: String| Problem {
            scope: scope.to_string(),
            location,
            field,
            message,
        };
        for file in CATALOG_INFO_FILES {
            if files.unreadable(file) {
                outcome.problem(problem(
                    format!("{slug}:{file}"),
                    None,
                    why_unreadable.to_string(),
                ));
            }
        }
        let mut entity = discovered.clone();
        let mut declared = false;
        let mut extra = Vec::new();
        if let Some((file, text)) = CATALOG_INFO_FILES
            .iter()
            .find_map(|f| files.text(f).map(|t| (*f, t)))
        {
            let mut claimed = false;
            for doc in parse_catalog_info(text) {
                let location = format!(
                    "{slug}:{file}{}",
                    doc.line.map(|l| format!(":{l}")).unwrap_or_default()
                );
                match doc.result {
                    // The first Component describes the repository itself.
                    Ok(d) if !claimed && d.kind.eq_ignore_ascii_case("Component") => {
                        claimed = true;
                        match overlay(&discovered, &d) {
                            Ok(merged) => {
                                entity = merged;
                                declared = true;
                            }
                            Err(message) => outcome.problem(problem(location, None, message)),
                        }
                    }
                    Ok(d) => match d.entity_ref() {
                        Ok(r) => extra.push((format!("{external_id}#{file}#{}", r.key()), d)),
                        Err(e) => outcome.problem(problem(
                            location,
                            Some("metadata.name".into()),
                            e.to_string(),
                        )),
                    },
                    Err(e) => outcome.problem(problem(
                        location,
                        e.field().map(str::to_string),
                        e.to_string(),
                    )),
                }
            }
        }
        let entity_ref = entity
            .entity_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| {
                let (ns, name) = (discovered.namespace(), &discovered.metadata.name);
                format!("component:{ns}/{name}")
            });
        Self {
            external_id,
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

    fn linkable(&mut self) -> Linkable<'_> {
        Linkable {
            entity: &mut self.entity,
            entity_ref: &self.entity_ref,
            produces: &self.produces,
            dependencies: &self.dependencies,
        }
    }

    fn kept(&self) -> Kept {
        Kept {
            entity_ref: self.entity_ref.clone(),
            produces: self.produces.clone(),
            declared: self.extra.iter().map(|(id, _)| id.clone()).collect(),
        }
    }
}

/// What refreshing one repository needs from the last whole crawl of its scope, kept in memory
/// by a forge connector: whose each commit email is, which repository produces each package
/// (for `dependsOn`), and what each repository's descriptor declared besides its component. A
/// complete crawl replaces it; a refresh updates the repositories it read. What a refresh
/// cannot know (another repository starting to use a package the refreshed one now produces)
/// waits for the next crawl.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// Commit email (lower case) -> login, as the crawl's owners mapping takes it.
    pub by_email: std::sync::Arc<BTreeMap<String, String>>,
    producers: Producers,
    repos: BTreeMap<String, Kept>,
}

/// One repository as the last read saw it.
#[derive(Debug, Clone)]
struct Kept {
    entity_ref: String,
    produces: Vec<Package>,
    /// External ids of the entities its descriptor declared besides its component.
    declared: Vec<String>,
}

impl Memory {
    /// What a whole crawl of a scope read: `by_email` and every repository it built.
    pub fn new(by_email: BTreeMap<String, String>, built: &[Built]) -> Self {
        let repos: BTreeMap<String, Kept> = built
            .iter()
            .map(|b| (b.external_id.clone(), b.kept()))
            .collect();
        Self {
            by_email: std::sync::Arc::new(by_email),
            producers: producers(
                repos
                    .values()
                    .map(|k| (k.entity_ref.as_str(), k.produces.as_slice())),
            ),
            repos,
        }
    }

    /// How many repositories are remembered.
    pub fn len(&self) -> usize {
        self.repos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
    }

    /// Takes in repositories read alone: `built` (read now) are linked to the producers
    /// remembered, and what their descriptors no longer declare is confirmed gone; `gone`
    /// (external ids the forge says no longer exist, or no longer belong in the catalog) are
    /// confirmed gone with everything they declared. Send `built` with [`send_linked`] next.
    pub fn refreshed(
        &mut self,
        built: &mut [Built],
        gone: &[String],
        scope: &str,
        outcome: &mut Outcome,
    ) {
        for id in gone {
            outcome.confirm_gone(scope, id.clone());
            if let Some(old) = self.forget(id) {
                for declared in old.declared {
                    outcome.confirm_gone(scope, declared);
                }
            }
        }
        for b in built.iter() {
            let kept = b.kept();
            if let Some(old) = self.forget(&b.external_id) {
                for declared in old.declared {
                    if !kept.declared.contains(&declared) {
                        outcome.confirm_gone(scope, declared);
                    }
                }
            }
            for p in &kept.produces {
                self.producers
                    .insert((p.ecosystem, p.name.clone()), kept.entity_ref.clone());
            }
            self.repos.insert(b.external_id.clone(), kept);
        }
        for b in built.iter_mut() {
            link_to(&mut b.linkable(), &self.producers);
        }
    }

    /// Drops a repository and the packages it produced.
    fn forget(&mut self, external_id: &str) -> Option<Kept> {
        let old = self.repos.remove(external_id)?;
        for p in &old.produces {
            let key = (p.ecosystem, p.name.clone());
            if self.producers.get(&key) == Some(&old.entity_ref) {
                self.producers.remove(&key);
            }
        }
        Some(old)
    }
}

/// Links the repositories that use each other's packages (`dependsOn`), then sends each one's
/// component (declared when its descriptor claimed it) and the entities its descriptor declares.
pub async fn send(
    mut built: Vec<Built>,
    scope: &str,
    sink: &ObservationSink,
) -> Result<(), ConnectorError> {
    link_dependencies(&mut built.iter_mut().map(Built::linkable).collect::<Vec<_>>());
    send_linked(built, scope, sink).await
}

/// Sends each repository's component (declared when its descriptor claimed it) and the
/// entities its descriptor declares, their `dependsOn` already linked.
pub async fn send_linked(
    built: Vec<Built>,
    scope: &str,
    sink: &ObservationSink,
) -> Result<(), ConnectorError> {
    for b in built {
        let observation = if b.declared {
            Observation::declared(scope, &b.external_id, b.entity)
        } else {
            Observation::discovered(scope, &b.external_id, b.entity)
        };
        sink.send(observation).await?;
        for (external_id, extra) in b.extra {
            sink.send(Observation::declared(scope, external_id, extra))
                .await?;
        }
    }
    Ok(())
}

fn not_blank(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty()).map(str::to_string)
}

/// Whether a forge's push payload (GitHub's or GitLab's: `commits[]` with `added`, `modified`
/// and `removed` paths) touches a file a crawl reads ([`crate::read_by_crawl`]). Both list at
/// most 20 commits: a longer push is assumed to touch one.
pub fn push_touches_read_files(push: &Value) -> bool {
    let commits = push["commits"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if commits.len() >= 20 || push["total_commits_count"].as_u64().unwrap_or(0) > 20 {
        return true;
    }
    commits
        .iter()
        .chain(std::iter::once(&push["head_commit"]))
        .flat_map(|c| ["added", "modified", "removed"].map(|k| &c[k]))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .any(crate::read_by_crawl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        Mapping::new(
            "default".into(),
            "service".into(),
            "production".into(),
            default_topic_types(),
        )
        .unwrap()
    }

    fn repo(topics: &[String]) -> Repo<'_> {
        Repo {
            forge: "github.com",
            icon: "github",
            name: "Payments API",
            slug: "acme/payments-api",
            description: Some(" "),
            url: "https://github.com/acme/payments-api",
            tree: "https://github.com/acme/payments-api/tree/main".into(),
            visibility: Some("PRIVATE"),
            topics,
            tags: topics.to_vec(),
            language: Some("Rust"),
            archived: true,
        }
    }

    #[test]
    fn globs_keep_or_cross_path_segments() {
        let pattern = ["acme/*".to_string()];
        let crossed = globs("include", &pattern, Segments::Crossed)
            .unwrap()
            .unwrap();
        assert!(crossed.is_match("ACME/a/b"));
        let kept = globs("include", &pattern, Segments::Kept).unwrap().unwrap();
        assert!(kept.is_match("acme/a") && !kept.is_match("acme/a/b"));
        assert!(globs("exclude", &[], Segments::Kept).unwrap().is_none());
        let e = globs("exclude", &["[".to_string()], Segments::Kept).unwrap_err();
        assert_eq!(e.key, "exclude");
        assert!(e.message.starts_with("invalid glob \"[\""), "{e}");
    }

    #[test]
    fn filters_keep_what_every_rule_lets_through() {
        let f = Filters {
            include: globs("include", &["pay*".to_string()], Segments::Crossed).unwrap(),
            exclude: globs("exclude", &["*-old".to_string()], Segments::Crossed).unwrap(),
            topics: vec!["payments".into()],
            skip_archived: true,
            skip_forks: false,
        };
        let topics = ["payments".to_string()];
        assert!(f.keeps("payments-api", false, true, &topics));
        assert!(!f.keeps("payments-api", true, false, &topics), "archived");
        assert!(!f.keeps("ledger", false, false, &topics), "not included");
        assert!(!f.keeps("payments-old", false, false, &topics), "excluded");
        assert!(
            !f.keeps("payments-api", false, false, &[]),
            "no topic of the filter"
        );
        assert!(Filters::default().keeps("anything", true, true, &[]));
    }

    #[test]
    fn a_repository_becomes_a_component() {
        let topics = ["library".to_string(), "payments".to_string()];
        let owners = (
            vec!["group:default/payments".to_string()],
            vec!["@acme/payments".into()],
        );
        let e = mapping().component(
            &repo(&topics),
            "payments-api",
            &owners,
            &Packages::default(),
        );
        assert_eq!(e.metadata.title.as_deref(), Some("Payments API"));
        assert_eq!(e.metadata.description, None, "a blank description is none");
        assert_eq!(e.metadata.tags, ["library", "payments", "rust"]);
        assert_eq!(e.metadata.labels["github.com/visibility"], "private");
        assert_eq!(
            e.metadata.annotations["backstage.io/source-location"],
            "url:https://github.com/acme/payments-api/tree/main/"
        );
        assert_eq!(e.spec_str("type"), Some("library"));
        assert_eq!(e.spec_str("lifecycle"), Some("deprecated"));
        assert_eq!(e.spec_str("owner"), Some("group:default/payments"));
        assert!(Mapping::new("Bad Ns".into(), "s".into(), "p".into(), BTreeMap::new()).is_err());
    }

    #[test]
    fn codeowners_name_groups_users_and_the_root_without_repeats() {
        let emails = BTreeMap::from([("ada@acme.example".to_string(), "Ada".to_string())]);
        let team = |path: &str| path.strip_prefix("acme/").and_then(entity_name);
        let text = "* @acme @acme/payments @bob ada@acme.example @bob @other/team\n";
        let (refs, raw) =
            codeowners_refs(text, Flavor::GitLab, "default", &emails, team, Some("acme"));
        assert_eq!(
            refs,
            [
                "group:default/payments",
                "user:default/bob",
                "user:default/ada"
            ],
            "the root group has no name below itself here, and @bob counts once"
        );
        assert_eq!(
            raw,
            [
                "@acme",
                "@acme/payments",
                "@bob",
                "ada@acme.example",
                "@other/team"
            ]
        );
    }

    #[test]
    fn a_descriptor_claims_the_repository_and_declares_the_rest() {
        let discovered =
            mapping().component(&repo(&[]), "api", &Default::default(), &Packages::default());
        let descriptor = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: api\n  description: declared\nspec:\n  owner: team-a\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-v1\nspec:\n  type: openapi\n";
        let files = Files(HashMap::from([
            (
                "catalog-info.yaml".to_string(),
                Some(descriptor.to_string()),
            ),
            ("catalog-info.yml".to_string(), None),
        ]));
        let mut outcome = Outcome::default();
        let at = ("acme/api", "acme", "binary");
        let built = Built::new(
            "id-1".into(),
            discovered,
            Packages::default(),
            &files,
            at,
            &mut outcome,
        );
        assert!(built.declared);
        assert_eq!(
            built.entity.metadata.description.as_deref(),
            Some("declared")
        );
        assert_eq!(built.entity.spec_str("owner"), Some("team-a"));
        assert_eq!(
            built.entity.spec_str("lifecycle"),
            Some("deprecated"),
            "discovered, kept"
        );
        assert_eq!(built.extra.len(), 1);
        assert!(
            built.extra[0].0.starts_with("id-1#catalog-info.yaml#"),
            "{}",
            built.extra[0].0
        );
        let problems: Vec<String> = outcome.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems, ["acme/api:catalog-info.yml: binary"]);
    }
}
