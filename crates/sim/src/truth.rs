//! The audit findings a simulated world should produce, per audit rule, derived from the org and
//! the fakes' state alone (never from a catalog): the benchmark's ground truth.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use surveyor_model::EntityRef;
use surveyor_model::descriptor::parse_descriptors;
use surveyor_model::names::entity_name;

use crate::jira::JiraSite;
use crate::kubernetes::Cluster;
use crate::org::{Org, Repo};
use crate::pagerduty::Account;

/// Every audit rule the truth speaks for, ownership rules first, then drift rules.
pub const RULES: [&str; 13] = [
    "no-owner",
    "owner-unresolved",
    "owner-group-empty",
    "owner-user-removed",
    "owner-deactivated",
    "no-on-call",
    "conflicting-owners",
    "weak-owner",
    "disagreement",
    "declared-unseen",
    "workload-without-component",
    "component-without-repo",
    "service-unclaimed",
];

/// The catalog namespace every connector uses by default.
const NS: &str = "default";

/// Namespaces the Kubernetes connector skips unless told otherwise.
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// What the world is made of: the org as GitHub serves it now, and each fake's state.
pub struct Views<'a> {
    pub org: &'a Org,
    /// Its `org` should be `org` (the site keeps the leads it was made with).
    pub jira: &'a JiraSite,
    pub pagerduty: &'a Account,
    pub cluster: &'a Cluster,
    /// The repositories GitLab serves too.
    pub on_gitlab: &'a dyn Fn(&Repo) -> bool,
}

/// Per rule, the entity refs that should be flagged, each with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub rules: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl Truth {
    /// The refs `rule` should flag (none for a rule the truth does not know).
    pub fn planted(&self, rule: &str) -> BTreeSet<&str> {
        self.rules
            .get(rule)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Why `entity` should be flagged by `rule`.
    pub fn why(&self, rule: &str, entity: &str) -> Option<&str> {
        self.rules.get(rule)?.get(entity).map(String::as_str)
    }

    fn add(&mut self, rule: &'static str, entity: &str, why: String) {
        self.rules
            .entry(rule)
            .or_default()
            .insert(entity.to_string(), why);
    }
}

/// The sources, in order of precedence after declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Github,
    Gitlab,
    Kubernetes,
    PagerDuty,
    Jira,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Kubernetes => "kubernetes",
            Self::PagerDuty => "pagerduty",
            Self::Jira => "jira",
        }
    }
}

/// Who a source names as owner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// An org team (index), live or disbanded.
    Team(usize),
    /// An org person (index), here or gone.
    Person(usize),
    /// A ref nothing in the org is.
    Unknown(String),
}

/// What one source says of one entity.
#[derive(Debug, Clone)]
struct Statement {
    source: Source,
    declared: bool,
    owner: Option<Owner>,
    /// Single-valued fields the source states (not filled from its configuration).
    stated: BTreeMap<&'static str, String>,
    /// `spec.type` as the source emits it, defaults included.
    kind_of: Option<String>,
    /// PagerDuty: someone is on call at level 1.
    on_call: Option<bool>,
}

impl Statement {
    fn new(source: Source) -> Self {
        Self {
            source,
            declared: false,
            owner: None,
            stated: BTreeMap::new(),
            kind_of: None,
            on_call: None,
        }
    }
}

/// One catalog entity as the sources describe it.
#[derive(Debug, Default)]
struct Thing {
    kind: &'static str,
    statements: Vec<Statement>,
    /// A workload: the component name it claims, if any.
    workload: Option<Option<String>>,
}

impl Thing {
    /// Statements in order of precedence: declared first, then by source.
    fn ranked(&self) -> Vec<&Statement> {
        let mut s: Vec<&Statement> = self.statements.iter().collect();
        s.sort_by_key(|s| (!s.declared, s.source));
        s
    }
}

/// How an owner stands in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Fine,
    Missing,
    EmptyTeam,
    Deactivated,
    Removed,
}

struct World<'a> {
    v: &'a Views<'a>,
    /// People Jira shows now (leads of projects and of served components).
    jira_people: BTreeSet<usize>,
    teams_by_name: BTreeMap<String, usize>,
    people_by_name: BTreeMap<String, usize>,
}

impl<'a> World<'a> {
    fn new(v: &'a Views<'a>) -> Self {
        let site = v.jira;
        let mut jira_people: BTreeSet<usize> =
            site.projects.iter().filter_map(|p| p.lead).collect();
        for p in &site.projects {
            jira_people.extend(site.components(p).iter().filter_map(|c| c.lead));
        }
        Self {
            v,
            jira_people,
            teams_by_name: v
                .org
                .teams
                .iter()
                .enumerate()
                .filter_map(|(i, t)| Some((entity_name(&t.slug)?, i)))
                .collect(),
            people_by_name: v
                .org
                .people
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Some((entity_name(&p.login)?, i)))
                .collect(),
        }
    }

    /// The owner a ref (`group:default/x`, `user:y`, a bare group name) stands for.
    fn owner_of_ref(&self, raw: &str) -> Owner {
        let Ok(r) = EntityRef::parse_with(raw, Some("group"), NS) else {
            return Owner::Unknown(raw.to_string());
        };
        let name = r.name().to_ascii_lowercase();
        let found = match r.kind().to_ascii_lowercase().as_str() {
            "group" if r.namespace().eq_ignore_ascii_case(NS) => {
                self.teams_by_name.get(&name).map(|t| Owner::Team(*t))
            }
            "user" if r.namespace().eq_ignore_ascii_case(NS) => {
                self.people_by_name.get(&name).map(|p| Owner::Person(*p))
            }
            _ => None,
        };
        found.unwrap_or_else(|| Owner::Unknown(r.key()))
    }

    fn standing(&self, owner: &Owner) -> Standing {
        let org = self.v.org;
        match owner {
            Owner::Team(t) => match org.teams.get(*t) {
                Some(team) if team.active && team.members.is_empty() => Standing::EmptyTeam,
                Some(team) if team.active => Standing::Fine,
                _ => Standing::Missing,
            },
            Owner::Person(p) => {
                let here = org.people.get(*p).is_some_and(|x| x.active);
                let shown = self.jira_people.contains(p);
                match (here, shown) {
                    (_, true) if !self.v.jira.user_active(*p) => Standing::Deactivated,
                    (true, _) => Standing::Fine,
                    (false, _) => Standing::Removed,
                }
            }
            Owner::Unknown(_) => Standing::Missing,
        }
    }

    fn describe(&self, owner: &Owner) -> String {
        let org = self.v.org;
        match owner {
            Owner::Team(t) => format!("group:{NS}/{}", org.teams[*t].slug),
            Owner::Person(p) => format!("person {}", org.people[*p].login),
            Owner::Unknown(r) => r.clone(),
        }
    }

    /// Whether `person` belongs to `team` or to a team under it.
    fn member(&self, person: usize, team: usize) -> bool {
        let teams = &self.v.org.teams;
        teams.iter().enumerate().any(|(i, t)| {
            t.active && t.members.contains(&person) && {
                let mut at = Some(i);
                let mut found = false;
                for _ in 0..teams.len() {
                    match at {
                        Some(x) if x == team => {
                            found = true;
                            break;
                        }
                        Some(x) => at = teams[x].parent,
                        None => break,
                    }
                }
                found
            }
        })
    }

    /// Whether a catalog can tell who `person`, named by `source`, is: a Jira lead meets the
    /// person's User only by the email Jira shows; one whose email is hidden is a name only.
    fn identifiable(&self, person: usize, source: Source) -> bool {
        source != Source::Jira || self.v.org.people[person].email.is_some()
    }

    /// Whether a catalog can tell that `person`, named by `source`, is outside a team: it
    /// can tell who they are, and it knows their teams or that they left (Jira shows them
    /// deactivated).
    fn placeable(&self, person: usize, source: Source) -> bool {
        let org = self.v.org;
        let in_some_team = org
            .teams
            .iter()
            .any(|t| t.active && t.members.contains(&person));
        let deactivated = !self.v.jira.user_active(person);
        self.identifiable(person, source) && (in_some_team || deactivated)
    }

    /// Why the owners the statements name conflict, if they do.
    fn conflict(&self, statements: &[&Statement]) -> Option<String> {
        let named: BTreeSet<(&Owner, Source)> = statements
            .iter()
            .filter_map(|s| s.owner.as_ref().map(|o| (o, s.source)))
            .collect();
        let teams: BTreeSet<usize> = named
            .iter()
            .filter_map(|(o, _)| match o {
                Owner::Team(t) if self.standing(o) != Standing::Missing => Some(*t),
                _ => None,
            })
            .collect();
        let people: BTreeSet<usize> = named
            .iter()
            .filter_map(|(o, s)| match o {
                Owner::Person(p) if self.placeable(*p, *s) => Some(*p),
                _ => None,
            })
            .collect();
        // Two people and no team: different people, if the catalog can tell who they are.
        let identified: BTreeSet<usize> = named
            .iter()
            .filter_map(|(o, s)| match o {
                Owner::Person(p) if self.identifiable(*p, *s) => Some(*p),
                _ => None,
            })
            .collect();
        let says = || {
            named
                .iter()
                .filter(|(o, _)| !matches!(o, Owner::Unknown(_)))
                .map(|(o, s)| format!("{} says {}", s.name(), self.describe(o)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let conflict = match teams.len() {
            0 => identified.len() >= 2,
            1 => {
                let team = teams.iter().next().copied().unwrap_or_default();
                people.iter().any(|p| !self.member(*p, team))
            }
            _ => true,
        };
        conflict.then(says)
    }
}

/// The refs each audit rule should flag in the world `v`, as the catalog displays them.
///
/// Each source's statements are modelled the way its connector names things (a repository's
/// descriptor laid over what its forge discovers; Jira leads as people; PagerDuty owners as
/// teams; Kubernetes owners from labels), and judged as an organisation would:
///
/// - the owner is what the highest source says (a declaration, then GitHub, GitLab, Kubernetes,
///   PagerDuty, Jira); a person who left stays catalogued as removed (the catalog saw them
///   before they left) unless Jira still shows them as a lead, which makes them deactivated;
/// - owners conflict when two sources name two different existing teams, or a person who is
///   not a member of the team another source names (a lead who moved team or left), or two
///   different people and no team; an owner that does not exist is unresolved, not a conflict;
/// - a disagreement is an owner conflict, or two sources stating different values of a
///   single-valued field (`spec.lifecycle`, `spec.system`, `spec.type`). A value a connector
///   fills from its own configuration (Jira Cloud's lifecycle and type, a forge's type when no
///   topic decides it, PagerDuty's fixed type) is not a statement; lists, titles, descriptions
///   and each source's own links and annotations are never disagreements;
/// - a service (`spec.type: service`) is covered when PagerDuty has someone on call at level 1
///   of its service's escalation policy.
pub fn planted(v: &Views<'_>) -> Truth {
    let w = World::new(v);
    let things = things(&w);
    let mut truth = Truth::default();
    for (entity, thing) in &things {
        let ranked = thing.ranked();
        judge_ownership(&w, entity, thing, &ranked, &mut truth);
        judge_drift(&w, entity, thing, &ranked, &things, &mut truth);
    }
    truth
}

fn judge_ownership(
    w: &World<'_>,
    entity: &str,
    thing: &Thing,
    ranked: &[&Statement],
    truth: &mut Truth,
) {
    let Some((by, owner)) = ranked
        .iter()
        .find_map(|s| s.owner.as_ref().map(|o| (s.source, o)))
    else {
        truth.add("no-owner", entity, "no source names an owner".into());
        return;
    };
    let who = w.describe(owner);
    let said = format!("{} says {who}", by.name());
    match w.standing(owner) {
        Standing::Fine => {}
        Standing::Missing => truth.add(
            "owner-unresolved",
            entity,
            format!("{said}, which does not exist"),
        ),
        Standing::EmptyTeam => truth.add(
            "owner-group-empty",
            entity,
            format!("{said}, a team without members"),
        ),
        Standing::Deactivated => truth.add(
            "owner-deactivated",
            entity,
            format!("{said}, whom Jira shows deactivated"),
        ),
        Standing::Removed => truth.add(
            "owner-user-removed",
            entity,
            format!("{said}, who left the org"),
        ),
    }
    if let Some(why) = w.conflict(ranked) {
        truth.add("conflicting-owners", entity, why);
    }
    let naming: Vec<&&Statement> = ranked.iter().filter(|s| s.owner.is_some()).collect();
    if naming.iter().all(|s| s.source == Source::Jira) && !ranked.iter().any(|s| s.declared) {
        truth.add(
            "weak-owner",
            entity,
            format!("only Jira names an owner ({who})"),
        );
    }
    let service = ranked.iter().find_map(|s| s.kind_of.as_deref()) == Some("service");
    if thing.kind == "component" && service && !ranked.iter().any(|s| s.on_call == Some(true)) {
        let why = if ranked.iter().any(|s| s.source == Source::PagerDuty) {
            "its PagerDuty service has nobody on call"
        } else {
            "no PagerDuty service covers it"
        };
        truth.add("no-on-call", entity, why.into());
    }
}

fn judge_drift(
    w: &World<'_>,
    entity: &str,
    thing: &Thing,
    ranked: &[&Statement],
    things: &BTreeMap<String, Thing>,
    truth: &mut Truth,
) {
    let mut why: Vec<String> = w
        .conflict(ranked)
        .map(|c| format!("owner: {c}"))
        .into_iter()
        .collect();
    for field in ["lifecycle", "system", "type"] {
        let values: BTreeSet<&str> = ranked
            .iter()
            .filter_map(|s| s.stated.get(field).map(String::as_str))
            .collect();
        if values.len() > 1 {
            let said: Vec<String> = ranked
                .iter()
                .filter_map(|s| {
                    s.stated
                        .get(field)
                        .map(|v| format!("{} says {v}", s.source.name()))
                })
                .collect();
            why.push(format!("{field}: {}", said.join(", ")));
        }
    }
    if !why.is_empty() {
        truth.add("disagreement", entity, why.join("; "));
    }
    if matches!(thing.kind, "component" | "resource")
        && !ranked.is_empty()
        && ranked.iter().all(|s| s.declared)
    {
        truth.add(
            "declared-unseen",
            entity,
            "only a descriptor declares it".into(),
        );
    }
    if let Some(claim) = &thing.workload {
        let claimed = claim
            .as_ref()
            .is_some_and(|c| things.contains_key(&format!("component:{NS}/{c}")));
        if !claimed {
            let why = match claim {
                Some(c) => format!("it names component {c}, which is not catalogued"),
                None => "no label names its component".into(),
            };
            truth.add("workload-without-component", entity, why);
        }
    }
    if thing.kind == "component" {
        let forge = ranked
            .iter()
            .any(|s| matches!(s.source, Source::Github | Source::Gitlab));
        if !forge {
            truth.add(
                "component-without-repo",
                entity,
                "no repository holds it".into(),
            );
        }
        if !ranked.is_empty() && ranked.iter().all(|s| s.source == Source::PagerDuty) {
            truth.add(
                "service-unclaimed",
                entity,
                "only PagerDuty knows it".into(),
            );
        }
    }
}

fn thing<'m>(
    things: &'m mut BTreeMap<String, Thing>,
    kind: &'static str,
    name: &str,
) -> &'m mut Thing {
    let t = things.entry(format!("{kind}:{NS}/{name}")).or_default();
    t.kind = kind;
    t
}

/// Every entity the ownership and drift audits look at, with what each source says of it.
fn things(w: &World<'_>) -> BTreeMap<String, Thing> {
    let mut out = BTreeMap::new();
    forges(w, &mut out);
    jira(w, &mut out);
    pagerduty(w, &mut out);
    kubernetes(w, &mut out);
    out
}

/// What a forge says of a repository: CODEOWNERS' team, lifecycle from `archived`, and its
/// descriptor laid over that (the descriptor's other documents are entities of their own).
fn forges(w: &World<'_>, out: &mut BTreeMap<String, Thing>) {
    let org = w.v.org;
    let topic_types = surveyor_repofiles::forge::default_topic_types();
    for repo in org.live_repos() {
        let Some(name) = entity_name(&repo.name) else {
            continue;
        };
        let mut discovered = Statement::new(Source::Github);
        discovered.owner = Some(Owner::Team(repo.owner_team));
        discovered.stated.insert(
            "lifecycle",
            if repo.archived {
                "deprecated"
            } else {
                "production"
            }
            .into(),
        );
        // Topics the forge connectors turn into `spec.type` by default; other repositories
        // get the configured default type, which is not a statement.
        let topic_type = repo.topics.iter().find_map(|t| topic_types.get(t).cloned());
        if let Some(t) = &topic_type {
            discovered.stated.insert("type", t.clone());
        }
        discovered.kind_of = Some(topic_type.unwrap_or_else(|| "service".into()));
        let mut statements = vec![(name.clone(), discovered)];
        if let Some(text) = repo.files.get("catalog-info.yaml") {
            let mut own = true;
            for doc in parse_descriptors(text) {
                let Ok(e) = doc.result else { continue };
                let Some(doc_name) = entity_name(&e.metadata.name) else {
                    continue;
                };
                let is_component = e.kind.eq_ignore_ascii_case("component");
                let base = if own && is_component {
                    own = false;
                    statements[0].1.clone()
                } else if is_component {
                    Statement::new(Source::Github)
                } else {
                    // The sim declares only components.
                    continue;
                };
                let mut s = base;
                s.declared = true;
                if let Some(o) = e.spec_str("owner") {
                    s.owner = Some(w.owner_of_ref(o));
                }
                for field in ["lifecycle", "system", "type"] {
                    if let Some(v) = e.spec_str(field) {
                        s.stated.insert(field, v.to_string());
                    }
                }
                if let Some(t) = e.spec_str("type") {
                    s.kind_of = Some(t.to_string());
                }
                if doc_name == name {
                    statements[0].1 = s;
                } else {
                    statements.push((doc_name, s));
                }
            }
        }
        let gitlab = (w.v.on_gitlab)(repo);
        for (n, s) in statements {
            let t = thing(out, "component", &n);
            if gitlab {
                let mut g = s.clone();
                g.source = Source::Gitlab;
                t.statements.push(g);
            }
            t.statements.push(s);
        }
    }
}

/// Projects as Systems owned by their lead, categories as Domains, components owned by their
/// lead or else their project's, in their project's System.
fn jira(w: &World<'_>, out: &mut BTreeMap<String, Thing>) {
    let site = w.v.jira;
    // The operator's other names: a project key is the name of the system it tracks.
    let other = crate::names::other_names(w.v.org, site);
    let mut categories = BTreeSet::new();
    for p in &site.projects {
        let key = p.key.to_ascii_lowercase();
        let named = other
            .systems
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(system, _)| system.clone());
        let Some(system) = named.or_else(|| entity_name(&p.key)) else {
            continue;
        };
        if let Some(c) = p.category.and_then(|c| site.categories.get(c))
            && let Some(domain) = entity_name(&c.name)
        {
            categories.insert(domain);
        }
        let mut s = Statement::new(Source::Jira);
        s.owner = p.lead.map(Owner::Person);
        thing(out, "system", &system).statements.push(s);
        for c in site.components(p) {
            let Some(name) = entity_name(&c.name) else {
                continue;
            };
            let mut s = Statement::new(Source::Jira);
            s.owner = c.lead.or(p.lead).map(Owner::Person);
            s.stated.insert("system", system.clone());
            s.kind_of = Some("service".into());
            thing(out, "component", &name).statements.push(s);
        }
    }
    for d in categories {
        thing(out, "domain", &d);
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Services as Components owned by the service's team, else its escalation policy's, and
/// covered when someone is on call at level 1 of that policy.
fn pagerduty(w: &World<'_>, out: &mut BTreeMap<String, Thing>) {
    let a = w.v.pagerduty;
    let team_name = |id: &str| {
        a.teams
            .get(id)
            .and_then(|t| str_at(t, "/name"))
            .and_then(entity_name)
    };
    for service in a.services.values() {
        let Some(name) = str_at(service, "/name").and_then(entity_name) else {
            continue;
        };
        let policy_id = str_at(service, "/escalation_policy/id");
        let policy = policy_id.and_then(|p| a.policies.get(p));
        let team = service["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                policy
                    .and_then(|p| p["teams"].as_array())
                    .into_iter()
                    .flatten(),
            )
            .find_map(|t| t["id"].as_str().and_then(team_name));
        let mut s = Statement::new(Source::PagerDuty);
        s.owner = team.map(|t| w.owner_of_ref(&format!("group:{NS}/{t}")));
        let disabled = str_at(service, "/status") == Some("disabled");
        s.stated.insert(
            "lifecycle",
            if disabled { "deprecated" } else { "production" }.into(),
        );
        s.kind_of = Some("service".into());
        let covered = policy_id.is_some_and(|p| a.on_call_at_level_one(p));
        s.on_call = Some(covered);
        thing(out, "component", &name).statements.push(s);
    }
}

/// Workloads, Services and Ingresses outside the system namespaces as Resources, owned by the
/// first owner label or annotation on them or else on their namespace.
fn kubernetes(w: &World<'_>, out: &mut BTreeMap<String, Thing>) {
    let c = w.v.cluster;
    const OWNER_KEYS: [&str; 3] = ["owner", "team", "app.kubernetes.io/owner"];
    const COMPONENT_KEYS: [&str; 3] = [
        "app.kubernetes.io/name",
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/instance",
    ];
    let meta = |v: &Value, key: &str| -> Option<String> {
        ["labels", "annotations"]
            .iter()
            .find_map(|m| str_at(v, &format!("/metadata/{m}/{}", key.replace('/', "~1"))))
            .map(str::to_string)
    };
    let resources = [
        ("deployments", "", true),
        ("statefulsets", "", true),
        ("daemonsets", "", true),
        ("cronjobs", "", true),
        ("services", ".svc", false),
        ("ingresses", ".ing", false),
    ];
    for (resource, infix, workload) in resources {
        for (ns, name) in c.names(resource) {
            if SYSTEM_NAMESPACES.contains(&ns.as_str()) {
                continue;
            }
            let Some(object) = c.object(resource, &ns, &name) else {
                continue;
            };
            let Some(entity) = entity_name(&format!("{name}{infix}.{ns}.{}", c.name)) else {
                continue;
            };
            let namespace = c.object("namespaces", "", &ns);
            let owner = OWNER_KEYS.iter().find_map(|k| meta(object, k)).or_else(|| {
                OWNER_KEYS
                    .iter()
                    .find_map(|k| namespace.and_then(|n| meta(n, k)))
            });
            let mut s = Statement::new(Source::Kubernetes);
            s.owner = owner.and_then(|o| {
                if o.contains(':') {
                    Some(w.owner_of_ref(&o))
                } else {
                    entity_name(&o).map(|n| w.owner_of_ref(&format!("group:{NS}/{n}")))
                }
            });
            let t = thing(out, "resource", &entity);
            t.statements.push(s);
            if workload {
                let id = meta(object, "backstage.io/kubernetes-id").or_else(|| {
                    COMPONENT_KEYS
                        .iter()
                        .find_map(|k| {
                            str_at(
                                object,
                                &format!("/metadata/labels/{}", k.replace('/', "~1")),
                            )
                        })
                        .map(str::to_string)
                });
                t.workload = Some(id.and_then(|i| entity_name(&i)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
