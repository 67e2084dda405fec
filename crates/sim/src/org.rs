//! The organisation model and its generator. Everything is derived from the seed, including
//! ids and timestamps, so two runs with one seed serve byte-identical APIs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plants::Plants;
use crate::rng::Rng;

/// How big an org to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSpec {
    pub name: String,
    pub seed: u64,
    pub teams: usize,
    pub people: usize,
    pub repos: usize,
}

impl OrgSpec {
    pub fn small() -> Self {
        Self {
            name: "acme".into(),
            seed: 42,
            teams: 6,
            people: 30,
            repos: 40,
        }
    }

    pub fn medium() -> Self {
        Self {
            teams: 50,
            people: 400,
            repos: 1_000,
            ..Self::small()
        }
    }

    pub fn large() -> Self {
        Self {
            teams: 500,
            people: 4_000,
            repos: 10_000,
            ..Self::small()
        }
    }
}

/// A repository's main language, which decides its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Language {
    Rust,
    TypeScript,
    Go,
    Python,
    Java,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::TypeScript => "TypeScript",
            Self::Go => "Go",
            Self::Python => "Python",
            Self::Java => "Java",
        }
    }

    /// The manifest file at the repository root.
    pub fn manifest(self) -> &'static str {
        match self {
            Self::Rust => "Cargo.toml",
            Self::TypeScript => "package.json",
            Self::Go => "go.mod",
            Self::Python => "pyproject.toml",
            Self::Java => "pom.xml",
        }
    }

    const ALL: [Language; 5] = [
        Self::Rust,
        Self::TypeScript,
        Self::Go,
        Self::Python,
        Self::Java,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: u64,
    pub login: String,
    pub name: String,
    /// Public, verified email (some people hide theirs).
    pub email: Option<String>,
    /// Still in the org; a departed person stays in ids but not in member lists.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: u64,
    pub slug: String,
    pub name: String,
    pub parent: Option<usize>,
    /// Indexes into `Org::people`.
    pub members: Vec<usize>,
    /// Disbanded teams are gone from the APIs.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repo {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub topics: Vec<String>,
    pub language: Language,
    pub archived: bool,
    pub fork: bool,
    pub private: bool,
    /// Seconds since the epoch.
    pub pushed_at: u64,
    pub default_branch: String,
    /// The team CODEOWNERS names for `*`.
    pub owner_team: usize,
    /// The service's system, shared by a few repos.
    pub system: String,
    /// Files at HEAD, by path.
    pub files: BTreeMap<String, String>,
    /// Deleted repos are gone from the APIs.
    pub active: bool,
    /// Its workload runs in the cluster; the Kubernetes fake serves only deployed repositories.
    pub deployed: bool,
}

/// A generated organisation.
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub name: String,
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
    pub repos: Vec<Repo>,
    /// Bumped by every mutation, so fakes can serve new ETags.
    pub generation: u64,
    /// Faults planted for the audits; none unless [`Org::plant_audit_faults`] ran.
    pub plants: Plants,
    #[serde(skip)]
    rng: Rng,
}

const FIRST: &[&str] = &[
    "ada",
    "alan",
    "grace",
    "linus",
    "barbara",
    "ken",
    "margaret",
    "dennis",
    "frances",
    "edsger",
    "radia",
    "john",
    "hedy",
    "tim",
    "katherine",
    "donald",
];
const LAST: &[&str] = &[
    "lovelace", "turing", "hopper", "torvalds", "liskov", "thompson", "hamilton", "ritchie",
    "allen", "dijkstra", "perlman", "mccarthy", "lamarr", "berners", "johnson", "knuth",
];
const AREAS: &[&str] = &[
    "payments",
    "billing",
    "search",
    "identity",
    "checkout",
    "catalog",
    "shipping",
    "ledger",
    "notifications",
    "analytics",
    "platform",
    "storage",
    "mobile",
    "web",
    "growth",
    "risk",
];
const THINGS: &[&str] = &[
    "api",
    "service",
    "worker",
    "gateway",
    "ui",
    "sdk",
    "proxy",
    "scheduler",
    "indexer",
    "exporter",
    "bot",
    "core",
];

const THIRD_PARTY: &[(Language, &[(&str, &str)])] = &[
    (
        Language::Rust,
        &[
            ("serde", "1.0"),
            ("tokio", "1.40"),
            ("tracing", "0.1"),
            ("reqwest", "0.12"),
        ],
    ),
    (
        Language::TypeScript,
        &[
            ("react", "^18.2.0"),
            ("express", "^4.19.0"),
            ("zod", "^3.23.0"),
            ("lodash", "^4.17.21"),
        ],
    ),
    (
        Language::Go,
        &[
            ("github.com/google/uuid", "v1.6.0"),
            ("github.com/spf13/cobra", "v1.8.1"),
            ("go.uber.org/zap", "v1.27.0"),
        ],
    ),
    (
        Language::Python,
        &[
            ("requests", ">=2.31"),
            ("pydantic", ">=2,<3"),
            ("fastapi", ">=0.110"),
        ],
    ),
    (
        Language::Java,
        &[
            ("org.apache.logging.log4j:log4j-core", "2.23.1"),
            ("com.fasterxml.jackson.core:jackson-databind", "2.17.1"),
        ],
    ),
];

impl Org {
    /// Generates an org from `spec`; the same spec always gives the same org.
    pub fn generate(spec: &OrgSpec) -> Self {
        let mut rng = Rng::new(spec.seed);
        let mut org = Self {
            name: spec.name.clone(),
            people: Vec::new(),
            teams: Vec::new(),
            repos: Vec::new(),
            generation: 0,
            plants: Plants::default(),
            rng: Rng::new(0),
        };
        for i in 0..spec.people.max(1) {
            let first = rng.pick(FIRST);
            let last = rng.pick(LAST);
            let login = format!("{first}-{last}-{i}");
            org.people.push(Person {
                id: 1_000_000 + i as u64,
                email: (!rng.chance(25))
                    .then(|| format!("{first}.{last}.{i}@{}.example", spec.name)),
                name: format!(
                    "{}{} {}{}",
                    first[..1].to_uppercase(),
                    &first[1..],
                    last[..1].to_uppercase(),
                    &last[1..]
                ),
                login,
                active: true,
            });
        }
        for i in 0..spec.teams.max(1) {
            let area = AREAS[i % AREAS.len()];
            let slug = if i < AREAS.len() {
                area.to_string()
            } else {
                format!("{area}-{}", i / AREAS.len())
            };
            // The first few teams are roots; later ones nest under an earlier team.
            let parent = (i >= 4).then(|| rng.below(i));
            let size = 2 + rng.below(6);
            let mut members: Vec<usize> = (0..size).map(|_| rng.below(org.people.len())).collect();
            members.sort_unstable();
            members.dedup();
            org.teams.push(Team {
                id: 2_000_000 + i as u64,
                name: format!("{} team", title(&slug)),
                slug,
                parent,
                members,
                active: true,
            });
        }
        // Everyone belongs to at least one team, as in most orgs that use teams at all.
        let mut placed = vec![false; org.people.len()];
        for t in &org.teams {
            for m in &t.members {
                placed[*m] = true;
            }
        }
        for (person, _) in placed.iter().enumerate().filter(|(_, p)| !**p) {
            let team = rng.below(org.teams.len());
            org.teams[team].members.push(person);
            org.teams[team].members.sort_unstable();
        }
        let mut produced: Vec<(Language, String)> = Vec::new();
        for i in 0..spec.repos.max(1) {
            let owner_team = rng.below(org.teams.len());
            let area = org.teams[owner_team]
                .slug
                .split('-')
                .next()
                .unwrap_or("core")
                .to_string();
            let name = format!("{area}-{}-{i}", rng.pick(THINGS));
            let language = *rng.pick(&Language::ALL);
            let system = format!("{area}-system");
            let mut repo = Repo {
                id: 3_000_000 + i as u64,
                description: format!("The {} of the {area} area", name.replace('-', " ")),
                topics: vec![area.clone(), language.name().to_lowercase()],
                language,
                archived: rng.chance(5),
                fork: rng.chance(3),
                private: rng.chance(60),
                pushed_at: 1_700_000_000 + rng.below(30_000_000) as u64,
                default_branch: if rng.chance(85) { "main" } else { "master" }.into(),
                owner_team,
                system,
                files: BTreeMap::new(),
                active: true,
                deployed: true,
                name,
            };
            // Internal dependencies: packages that earlier repos of the same language produce.
            let same: Vec<&(Language, String)> =
                produced.iter().filter(|(l, _)| *l == language).collect();
            let internal: Vec<String> = (0..rng.below(3))
                .filter(|_| !same.is_empty())
                .map(|_| same[rng.below(same.len())].1.clone())
                .collect();
            let package = package_name(&org.name, &repo.name, language);
            repo.files.insert(
                language.manifest().to_string(),
                manifest(&org.name, &package, language, &internal, &mut rng),
            );
            repo.files.insert(
                codeowners_path(&mut rng).to_string(),
                codeowners(&org, &org.teams[owner_team].slug, &mut rng),
            );
            if rng.chance(20) {
                repo.files
                    .insert("catalog-info.yaml".into(), catalog_info(&org, &repo));
            }
            produced.push((language, package));
            org.repos.push(repo);
        }
        org.rng = rng;
        org
    }

    pub fn live_repos(&self) -> impl Iterator<Item = &Repo> {
        self.repos.iter().filter(|r| r.active)
    }

    pub fn live_teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter().filter(|t| t.active)
    }

    pub fn live_people(&self) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(|p| p.active)
    }

    /// Applies `change` to one repository, if there is one at `index`, as a new generation.
    fn change_repo(&mut self, index: usize, change: impl FnOnce(&mut Repo)) {
        if let Some(r) = self.repos.get_mut(index) {
            change(r);
            self.generation += 1;
        }
    }

    /// Renames a repository (its id stays: a rename, not a delete and a create).
    pub fn rename_repo(&mut self, index: usize, new_name: &str) {
        self.change_repo(index, |r| r.name = new_name.to_string());
    }

    pub fn archive_repo(&mut self, index: usize) {
        self.change_repo(index, |r| r.archived = true);
    }

    pub fn delete_repo(&mut self, index: usize) {
        self.change_repo(index, |r| r.active = false);
    }

    /// Points a repository's CODEOWNERS at another team.
    pub fn set_owner(&mut self, repo: usize, team: usize) {
        let Some(slug) = self.teams.get(team).map(|t| t.slug.clone()) else {
            return;
        };
        let org = self.name.clone();
        if let Some(r) = self.repos.get_mut(repo) {
            r.owner_team = team;
            let path = r
                .files
                .keys()
                .find(|k| k.ends_with("CODEOWNERS"))
                .cloned()
                .unwrap_or_else(|| ".github/CODEOWNERS".into());
            r.files.insert(path, format!("* @{org}/{slug}\n"));
            self.generation += 1;
        }
    }

    pub fn move_person(&mut self, person: usize, from: usize, to: usize) {
        if let Some(t) = self.teams.get_mut(from) {
            t.members.retain(|m| *m != person);
        }
        if let Some(t) = self.teams.get_mut(to)
            && !t.members.contains(&person)
        {
            t.members.push(person);
            t.members.sort_unstable();
        }
        self.generation += 1;
    }

    pub fn disband_team(&mut self, team: usize) {
        if let Some(t) = self.teams.get_mut(team) {
            t.active = false;
            self.generation += 1;
        }
    }

    pub fn remove_person(&mut self, person: usize) {
        if let Some(p) = self.people.get_mut(person) {
            p.active = false;
        }
        for t in &mut self.teams {
            t.members.retain(|m| *m != person);
        }
        self.generation += 1;
    }

    /// Takes a repository's workload out of the cluster (the repository stays).
    pub fn undeploy(&mut self, repo: usize) {
        self.change_repo(repo, |r| r.deployed = false);
    }

    /// Adds a repository owned by `team`, generated like the others (manifest, CODEOWNERS,
    /// internal dependencies); returns its index.
    pub fn add_repo(&mut self, team: usize) -> Option<usize> {
        let area = self
            .teams
            .get(team)?
            .slug
            .split('-')
            .next()
            .unwrap_or("core")
            .to_string();
        // The generator's helpers take the org and its rng apart.
        let mut rng = std::mem::replace(&mut self.rng, Rng::new(0));
        let i = self.repos.len();
        let name = format!("{area}-{}-{i}", rng.pick(THINGS));
        let language = *rng.pick(&Language::ALL);
        let produced: Vec<String> = self
            .live_repos()
            .filter(|r| r.language == language)
            .map(|r| package_name(&self.name, &r.name, language))
            .collect();
        let internal: Vec<String> = (0..rng.below(3))
            .filter(|_| !produced.is_empty())
            .map(|_| produced[rng.below(produced.len())].clone())
            .collect();
        let package = package_name(&self.name, &name, language);
        let mut files = BTreeMap::new();
        files.insert(
            language.manifest().to_string(),
            manifest(&self.name, &package, language, &internal, &mut rng),
        );
        files.insert(
            codeowners_path(&mut rng).to_string(),
            codeowners(self, &self.teams[team].slug, &mut rng),
        );
        self.repos.push(Repo {
            id: 3_000_000 + i as u64,
            description: format!("The {} of the {area} area", name.replace('-', " ")),
            topics: vec![area.clone(), language.name().to_lowercase()],
            language,
            archived: false,
            fork: false,
            private: rng.chance(60),
            pushed_at: 1_730_000_000 + rng.below(1_000_000) as u64,
            default_branch: "main".into(),
            owner_team: team,
            system: format!("{area}-system"),
            files,
            active: true,
            deployed: true,
            name,
        });
        self.rng = rng;
        self.generation += 1;
        Some(i)
    }

    /// One change of the given kind to a randomly chosen target; returns what happened, or
    /// None when nothing fits (no live repository left, or the org would shrink below half).
    pub fn mutate_as(&mut self, kind: Mutation) -> Option<String> {
        match kind {
            Mutation::RenameRepo => {
                let repo = pick(&mut self.rng, self.repos.len(), |i| {
                    self.repos[i].active && undeclared(&self.repos[i])
                })?;
                let old = self.repos[repo].name.clone();
                let new = next_version(&old);
                self.rename_repo(repo, &new);
                Some(format!("repository {old} renamed to {new}"))
            }
            Mutation::ChangeOwner => {
                let repo = pick(&mut self.rng, self.repos.len(), |i| {
                    self.repos[i].active && undeclared(&self.repos[i])
                })?;
                let current = self.repos[repo].owner_team;
                let team = pick(&mut self.rng, self.teams.len(), |i| {
                    self.teams[i].active && i != current
                })?;
                self.set_owner(repo, team);
                Some(format!(
                    "CODEOWNERS of {} now names {} instead of {}",
                    self.repos[repo].name, self.teams[team].slug, self.teams[current].slug
                ))
            }
            Mutation::RemoveWorkload => {
                let repo = pick(&mut self.rng, self.repos.len(), |i| {
                    self.repos[i].active && self.repos[i].deployed
                })?;
                self.undeploy(repo);
                Some(format!(
                    "workload of {} removed from the cluster",
                    self.repos[repo].name
                ))
            }
            Mutation::DisbandTeam => {
                if self.live_teams().count() * 2 <= self.teams.len() {
                    return None;
                }
                // A team with live sub-teams would orphan them; disband a leaf.
                let parents: Vec<usize> = self.live_teams().filter_map(|t| t.parent).collect();
                let team = pick(&mut self.rng, self.teams.len(), |i| {
                    self.teams[i].active && !parents.contains(&i)
                })?;
                self.disband_team(team);
                Some(format!("team {} disbanded", self.teams[team].slug))
            }
            Mutation::AddRepo => {
                let team = pick(&mut self.rng, self.teams.len(), |i| self.teams[i].active)?;
                let repo = self.add_repo(team)?;
                Some(format!(
                    "repository {} created by {}",
                    self.repos[repo].name, self.teams[team].slug
                ))
            }
            Mutation::PersonLeaves => {
                let person =
                    pick_to_remove(&mut self.rng, self.people.len(), |i| self.people[i].active)?;
                self.remove_person(person);
                Some(format!("{} left the org", self.people[person].login))
            }
            Mutation::ArchiveRepo => {
                let repo = pick(&mut self.rng, self.repos.len(), |i| {
                    self.repos[i].active && !self.repos[i].archived && undeclared(&self.repos[i])
                })?;
                self.archive_repo(repo);
                Some(format!("repository {} archived", self.repos[repo].name))
            }
            Mutation::DeleteRepo => {
                let repo =
                    pick_to_remove(&mut self.rng, self.repos.len(), |i| self.repos[i].active)?;
                self.delete_repo(repo);
                Some(format!("repository {} deleted", self.repos[repo].name))
            }
        }
    }

    /// One random, realistic change (for the living demo); returns what happened.
    pub fn mutate(&mut self) -> String {
        let start = self.rng.below(Mutation::ALL.len());
        (0..Mutation::ALL.len())
            .find_map(|k| self.mutate_as(Mutation::ALL[(start + k) % Mutation::ALL.len()]))
            .unwrap_or_else(|| "nothing left to change".into())
    }
}

/// The kinds of change a living org goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// A repository gets a new name (its id stays).
    RenameRepo,
    /// CODEOWNERS names another team.
    ChangeOwner,
    /// A repository's workload is taken out of the cluster.
    RemoveWorkload,
    /// A team without sub-teams is disbanded; what it owned still names it.
    DisbandTeam,
    /// A new repository appears.
    AddRepo,
    /// A person leaves: gone from every team and member list.
    PersonLeaves,
    ArchiveRepo,
    DeleteRepo,
}

impl Mutation {
    pub const ALL: [Mutation; 8] = [
        Self::RenameRepo,
        Self::ChangeOwner,
        Self::RemoveWorkload,
        Self::DisbandTeam,
        Self::AddRepo,
        Self::PersonLeaves,
        Self::ArchiveRepo,
        Self::DeleteRepo,
    ];
}

/// A repository without a `catalog-info.yaml`. A descriptor's fields win over what is
/// discovered, so renames, owner changes and archives are made where the catalog shows them.
fn undeclared(repo: &Repo) -> bool {
    !repo.files.contains_key("catalog-info.yaml")
}

/// A random index in `0..n` among those `keep` accepts.
fn pick(rng: &mut Rng, n: usize, keep: impl Fn(usize) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..n).filter(|i| keep(*i)).collect();
    (!candidates.is_empty()).then(|| candidates[rng.below(candidates.len())])
}

/// One of `n` that is `live`, to take away, unless half or fewer are live: random changes
/// never shrink the org below half its size.
fn pick_to_remove(rng: &mut Rng, n: usize, live: impl Fn(usize) -> bool) -> Option<usize> {
    if (0..n).filter(|&i| live(i)).count() * 2 <= n {
        return None;
    }
    pick(rng, n, live)
}

/// `name-v2` for `name`, `name-v3` for `name-v2`, ... within Backstage's 63 characters.
fn next_version(name: &str) -> String {
    let (base, version) = match name.rsplit_once("-v") {
        Some((base, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
            (base, n.parse::<u64>().unwrap_or(1) + 1)
        }
        _ => (name, 2),
    };
    let suffix = format!("-v{version}");
    let keep = 63usize.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}

fn title(slug: &str) -> String {
    let mut c = slug.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The package a repository produces, in its ecosystem's naming.
pub fn package_name(org: &str, repo: &str, language: Language) -> String {
    match language {
        Language::Rust => format!("{org}-{repo}"),
        Language::TypeScript => format!("@{org}/{repo}"),
        Language::Go => format!("github.com/{org}/{repo}"),
        Language::Python => format!("{org}-{repo}"),
        Language::Java => format!("com.{org}:{repo}"),
    }
}

/// Where CODEOWNERS lives; `.github/` is the most common choice.
const CODEOWNERS_PATHS: [&str; 4] = [
    ".github/CODEOWNERS",
    ".github/CODEOWNERS",
    "CODEOWNERS",
    "docs/CODEOWNERS",
];

fn codeowners_path(rng: &mut Rng) -> &'static str {
    CODEOWNERS_PATHS[rng.below(CODEOWNERS_PATHS.len())]
}

fn codeowners(org: &Org, team: &str, rng: &mut Rng) -> String {
    let mut text = format!("# Owners of this repository\n* @{}/{team}\n", org.name);
    if rng.chance(40) {
        let person = &org.people[rng.below(org.people.len())];
        text.push_str(&format!("/docs/ @{}\n", person.login));
    }
    if rng.chance(10) {
        text.push_str("*.lock\n");
    }
    text
}

fn manifest(
    org: &str,
    package: &str,
    language: Language,
    internal: &[String],
    rng: &mut Rng,
) -> String {
    let third = THIRD_PARTY
        .iter()
        .find(|(l, _)| *l == language)
        .map(|(_, deps)| *deps)
        .unwrap_or(&[]);
    let mut deps: Vec<(String, String)> = (0..1 + rng.below(3))
        .map(|_| {
            let (p, v) = rng.pick(third);
            (p.to_string(), v.to_string())
        })
        .collect();
    deps.extend(
        internal
            .iter()
            .map(|p| (p.clone(), internal_version(language))),
    );
    deps.sort();
    deps.dedup_by(|a, b| a.0 == b.0);
    match language {
        Language::Rust => {
            let mut s = format!(
                "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"
            );
            for (p, v) in deps {
                s.push_str(&format!("{p} = \"{v}\"\n"));
            }
            s
        }
        Language::TypeScript => {
            let entries: Vec<String> = deps
                .iter()
                .map(|(p, v)| format!("    \"{p}\": \"{v}\""))
                .collect();
            format!(
                "{{\n  \"name\": \"{package}\",\n  \"version\": \"1.0.0\",\n  \"dependencies\": {{\n{}\n  }},\n  \"devDependencies\": {{\n    \"typescript\": \"~5.4.0\"\n  }}\n}}\n",
                entries.join(",\n")
            )
        }
        Language::Go => {
            let mut s = format!("module {package}\n\ngo 1.22\n\nrequire (\n");
            for (p, v) in deps {
                s.push_str(&format!("\t{p} {v}\n"));
            }
            s.push_str(")\n");
            s
        }
        Language::Python => {
            let entries: Vec<String> = deps.iter().map(|(p, v)| format!("  \"{p}{v}\",")).collect();
            format!(
                "[project]\nname = \"{package}\"\nversion = \"1.0.0\"\ndependencies = [\n{}\n]\n",
                entries.join("\n")
            )
        }
        Language::Java => {
            let artifact = package.rsplit(':').next().unwrap_or(package);
            let mut s = format!(
                "<project>\n  <groupId>com.{org}</groupId>\n  <artifactId>{artifact}</artifactId>\n  <version>1.0.0</version>\n  <dependencies>\n"
            );
            for (p, v) in deps {
                let (g, a) = p.split_once(':').unwrap_or((&p, &p));
                s.push_str(&format!(
                    "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>\n"
                ));
            }
            s.push_str("  </dependencies>\n</project>\n");
            s
        }
    }
}

fn internal_version(language: Language) -> String {
    match language {
        Language::Rust => "0.1".into(),
        Language::TypeScript => "^1.0.0".into(),
        Language::Go => "v1.0.0".into(),
        Language::Python => ">=1.0".into(),
        Language::Java => "1.0.0".into(),
    }
}

fn catalog_info(org: &Org, repo: &Repo) -> String {
    let team = &org.teams[repo.owner_team].slug;
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\n  description: {}\n  annotations:\n    github.com/project-slug: {}/{}\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/{team}\n  system: {}\n",
        repo.name, repo.description, org.name, repo.name, repo.system
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use surveyor_repofiles::{CodeOwners, Flavor, parse_manifest};

    #[test]
    fn the_same_seed_gives_the_same_org() {
        let a = serde_json::to_string(&Org::generate(&OrgSpec::small())).unwrap();
        let b = serde_json::to_string(&Org::generate(&OrgSpec::small())).unwrap();
        assert_eq!(a, b);
        let other = OrgSpec {
            seed: 7,
            ..OrgSpec::small()
        };
        assert_ne!(a, serde_json::to_string(&Org::generate(&other)).unwrap());
    }

    #[test]
    fn sizes_are_as_asked_and_names_unique() {
        let spec = OrgSpec {
            teams: 40,
            people: 200,
            repos: 500,
            ..OrgSpec::small()
        };
        let org = Org::generate(&spec);
        assert_eq!(
            (org.teams.len(), org.people.len(), org.repos.len()),
            (40, 200, 500)
        );
        let mut names: Vec<&str> = org.repos.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 500);
        let mut slugs: Vec<&str> = org.teams.iter().map(|t| t.slug.as_str()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), 40);
        assert!(org.teams.iter().any(|t| t.parent.is_some()), "teams nest");
    }

    #[test]
    fn generated_files_parse_and_name_the_owner_team() {
        let org = Org::generate(&OrgSpec::medium());
        let mut internal_links = 0;
        let produced: std::collections::HashSet<String> = org
            .repos
            .iter()
            .map(|r| package_name(&org.name, &r.name, r.language))
            .collect();
        for repo in &org.repos {
            let (path, text) = repo
                .files
                .iter()
                .find(|(k, _)| k.ends_with("CODEOWNERS"))
                .unwrap();
            let co = CodeOwners::parse(text, Flavor::GitHub);
            assert!(co.errors.is_empty(), "{path}: {:?}", co.errors);
            let owners: Vec<String> = co.repo_owners().iter().map(ToString::to_string).collect();
            assert_eq!(
                owners,
                vec![format!("@acme/{}", org.teams[repo.owner_team].slug)]
            );
            let manifest = parse_manifest(
                repo.language.manifest(),
                &repo.files[repo.language.manifest()],
            )
            .unwrap_or_else(|e| panic!("{}: {e}", repo.name));
            assert_eq!(
                manifest.produces[0].name,
                package_name(&org.name, &repo.name, repo.language)
            );
            internal_links += manifest
                .dependencies
                .iter()
                .filter(|d| produced.contains(&d.package))
                .count();
            if let Some(ci) = repo.files.get("catalog-info.yaml") {
                let docs = surveyor_model::descriptor::parse_descriptors(ci);
                assert!(
                    docs[0].result.is_ok(),
                    "{}: {:?}",
                    repo.name,
                    docs[0].result
                );
            }
        }
        assert!(
            internal_links > 100,
            "repos depend on each other: {internal_links}"
        );
    }

    #[test]
    fn mutations_change_what_they_say() {
        let mut org = Org::generate(&OrgSpec::small());
        let id = org.repos[3].id;
        org.rename_repo(3, "renamed-repo");
        assert_eq!(
            (org.repos[3].id, org.repos[3].name.as_str()),
            (id, "renamed-repo")
        );
        org.set_owner(3, 1);
        let co = org.repos[3]
            .files
            .iter()
            .find(|(k, _)| k.ends_with("CODEOWNERS"))
            .unwrap()
            .1;
        assert!(co.contains(&org.teams[1].slug));
        org.delete_repo(4);
        assert_eq!(org.live_repos().count(), org.repos.len() - 1);
        org.remove_person(0);
        assert!(org.teams.iter().all(|t| !t.members.contains(&0)));
        let before = org.generation;
        let what = org.mutate();
        assert!(!what.is_empty() && org.generation > before);
    }

    #[test]
    fn every_kind_of_change_does_what_it_says() {
        let mut org = Org::generate(&OrgSpec::small());
        let fresh = org.clone();
        for kind in Mutation::ALL {
            let before = org.generation;
            let what = org
                .mutate_as(kind)
                .unwrap_or_else(|| panic!("{kind:?} applies"));
            assert!(!what.is_empty() && org.generation > before, "{kind:?}");
        }
        let renamed: Vec<&Repo> = org
            .repos
            .iter()
            .filter(|r| r.name.ends_with("-v2"))
            .collect();
        assert_eq!(renamed.len(), 1);
        assert!(
            fresh
                .repos
                .iter()
                .any(|r| r.id == renamed[0].id && r.name != renamed[0].name)
        );
        let undeployed: Vec<&Repo> = org.repos.iter().filter(|r| !r.deployed).collect();
        assert_eq!(undeployed.len(), 1);
        let cluster = crate::kubernetes::Cluster::from_org(&org, "prod");
        let deployed_names: Vec<String> = ["deployments", "statefulsets", "daemonsets", "cronjobs"]
            .iter()
            .flat_map(|r| cluster.names(r))
            .map(|(_, n)| n)
            .collect();
        assert!(!deployed_names.contains(&undeployed[0].name));
        let disbanded: Vec<usize> = (0..org.teams.len())
            .filter(|t| !org.teams[*t].active)
            .collect();
        assert_eq!(disbanded.len(), 1);
        assert!(
            !org.live_teams().any(|t| t.parent == Some(disbanded[0])),
            "a leaf team was disbanded"
        );
        assert_eq!(org.repos.len(), fresh.repos.len() + 1);
        let added = &org.repos[fresh.repos.len()];
        assert!(added.active && added.files.keys().any(|k| k.ends_with("CODEOWNERS")));
        parse_manifest(
            added.language.manifest(),
            &added.files[added.language.manifest()],
        )
        .expect("the new repository's manifest parses");
        let gone: Vec<usize> = (0..org.people.len())
            .filter(|p| !org.people[*p].active)
            .collect();
        assert_eq!(gone.len(), 1);
        assert!(org.teams.iter().all(|t| !t.members.contains(&gone[0])));
        assert_eq!(
            org.repos.iter().filter(|r| r.archived).count(),
            fresh.repos.iter().filter(|r| r.archived).count() + 1
        );
        assert_eq!(org.live_repos().count(), fresh.repos.len());
    }

    #[test]
    fn the_org_does_not_shrink_below_half() {
        let mut org = Org::generate(&OrgSpec::small());
        while org.mutate_as(Mutation::DeleteRepo).is_some() {}
        assert_eq!(org.live_repos().count(), org.repos.len() / 2);
        while org.mutate_as(Mutation::DisbandTeam).is_some() {}
        assert!(org.live_teams().count() * 2 >= org.teams.len());
        assert_eq!(next_version("a-b-3"), "a-b-3-v2");
        assert_eq!(next_version("a-b-3-v2"), "a-b-3-v3");
        assert_eq!(next_version(&"x".repeat(63)).len(), 63);
    }
}
