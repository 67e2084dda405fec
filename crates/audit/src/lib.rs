//! Audits of the catalog for people who answer for it: ownership gaps (no owner, an owner that
//! is nobody, an empty team, a departed or deactivated person, no on-call, owners that sources
//! dispute, an owner only a weak source names) and drift between sources and declarations.
//!
//! Every finding names the entity, the rule, a severity and its evidence: which source said
//! what, and since when. Findings are computed from the catalog as it is now; [`record`] keeps
//! their history (first seen, last seen, resolved) in the store after each sync.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use surveyor_store::{EntityFilter, EntityRow, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Who said what, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub source: String,
    pub said: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The entity's ref as displayed.
    pub entity: String,
    pub kind: String,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The owner ref involved, when there is one (for summaries per team).
    pub owner: Option<String>,
    pub evidence: Vec<Evidence>,
}

/// Every rule, with what it means, for `--help` and reports.
pub const OWNERSHIP_RULES: &[(&str, &str)] = &[
    ("no-owner", "the entity has no spec.owner"),
    (
        "owner-unresolved",
        "spec.owner names an entity the catalog does not have",
    ),
    ("owner-group-empty", "the owner is a group with no members"),
    (
        "owner-user-removed",
        "the owner is a user who is gone from every source",
    ),
    (
        "owner-deactivated",
        "the owner is a person a source reports as deactivated",
    ),
    (
        "no-on-call",
        "a service with no on-call coverage (PagerDuty knows it but nobody is on call, or PagerDuty does not know it)",
    ),
    (
        "conflicting-owners",
        "sources name different owners: two different teams, or a person outside the team another source names (a member or lead of that team is consistent)",
    ),
    (
        "weak-owner",
        "the only owner is a Jira lead, with no declaration",
    ),
];

pub const DRIFT_RULES: &[(&str, &str)] = &[
    (
        "disagreement",
        "sources give different values for a field that holds one value (lists are merged, each source's own links and ids are kept per source)",
    ),
    (
        "cosmetic-difference",
        "sources give another title or description (off unless [audit] cosmetic = true)",
    ),
    (
        "declared-unseen",
        "declared in a descriptor, but no connector discovers it",
    ),
    (
        "workload-without-component",
        "a workload that no catalogued component claims",
    ),
    (
        "component-without-repo",
        "a component no repository source knows",
    ),
    (
        "service-unclaimed",
        "a PagerDuty service no other source knows",
    ),
];

/// What the audit needs to know of the configuration: each connector id's kind.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub kinds: BTreeMap<String, String>,
    /// Report `cosmetic-difference` findings (`[audit] cosmetic`).
    pub cosmetic: bool,
}

impl Sources {
    fn kind(&self, source: &str) -> &str {
        self.kinds.get(source).map_or("", String::as_str)
    }
    fn any(&self, kinds: &[&str]) -> bool {
        self.kinds.values().any(|k| kinds.contains(&k.as_str()))
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claim {
    source: String,
    #[serde(default)]
    declared: bool,
    #[serde(default)]
    winner: bool,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    disagrees: BTreeMap<String, Value>,
    #[serde(default)]
    cosmetic: BTreeMap<String, Value>,
    /// Per-source values of this source that are not the ones shown.
    #[serde(default)]
    own: BTreeMap<String, Value>,
}

struct Catalog {
    live: BTreeSet<String>,
    tombstoned: BTreeSet<String>,
    /// Of the relations, only the types the audits walk ([`WALKED`]), by source: (type, target).
    relations: BTreeMap<String, Vec<(String, String)>>,
    /// Names that mean another entity (a Jira lead's own name joined to the person's User).
    aliases: BTreeMap<String, String>,
    /// People a source reports as deactivated (Jira's `active: false`).
    deactivated: BTreeSet<String>,
    /// People with a profile email: the catalog can tell who they are.
    identified: BTreeSet<String>,
}

/// The relation types the audits read: memberships and sub-teams (who belongs to a team), and
/// `dependencyOf` (which component claims a workload).
const WALKED: [&str; 4] = ["hasMember", "memberOf", "parentOf", "dependencyOf"];

/// An entity's body and its sources' claims, parsed from the stored text.
fn parsed(row: &EntityRow) -> (Value, Vec<Claim>) {
    let body = serde_json::from_str(&row.body).unwrap_or(Value::Null);
    let claims = serde_json::from_str(&row.sources).unwrap_or_default();
    (body, claims)
}

impl Catalog {
    /// The entity a ref means: itself, or the entity it is an alias of.
    fn resolve(&self, key: &str) -> String {
        self.aliases
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// Relation targets of `kind` from `from`.
    fn targets<'a>(&'a self, from: &str, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.relations
            .get(from)
            .into_iter()
            .flatten()
            .filter(move |(k, _)| k == kind)
            .map(|(_, target)| target.as_str())
    }

    /// Whether the person `user` belongs to the team `group` or one of its sub-teams.
    fn belongs(&self, user: &str, group: &str) -> bool {
        let mut teams = vec![group.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(team) = teams.pop() {
            if !seen.insert(team.clone()) || seen.len() > 64 {
                continue;
            }
            if self
                .targets(&team, "hasMember")
                .any(|m| self.resolve(m) == user)
                || self
                    .targets(user, "memberOf")
                    .any(|g| self.resolve(g) == team)
            {
                return true;
            }
            teams.extend(self.targets(&team, "parentOf").map(str::to_string));
        }
        false
    }

    /// Whether the person `user` has left: Jira shows them deactivated, and the catalog can tell
    /// who they are (an email).
    fn left(&self, user: &str) -> bool {
        self.deactivated.contains(user) && self.identified.contains(user)
    }

    /// Whether any source reports a team of the person `user`.
    fn has_teams(&self, user: &str) -> bool {
        self.targets(user, "memberOf").next().is_some()
    }

    /// Whether another source's owner `theirs` agrees with the `kept` owner as an organisation:
    /// the same entity (by any of its names), a person who belongs to the kept team, or two
    /// people of a team one of the sources (`teams`) names.
    fn same_owner(
        &self,
        kept: &str,
        theirs: &str,
        namespace: &str,
        teams: &BTreeSet<String>,
    ) -> bool {
        let (Some(kept), Some(theirs)) = (owner_key(kept, namespace), owner_key(theirs, namespace))
        else {
            return false;
        };
        let (kept, theirs) = (self.resolve(&kept), self.resolve(&theirs));
        if kept == theirs {
            return true;
        }
        if kept.starts_with("user:") && theirs.starts_with("user:") {
            // Two people: of one team a source names, or one the catalog cannot tell who
            // they are (a name only, no email, no teams).
            return teams
                .iter()
                .any(|t| self.belongs(&kept, t) && self.belongs(&theirs, t))
                || !(self.has_teams(&theirs) || self.identified.contains(&theirs));
        }
        match (kept.starts_with("group:"), theirs.starts_with("user:")) {
            // A person whose teams no source reports cannot be shown to be outside the team,
            // unless they have left: a person the catalog can tell (by their email) whom Jira
            // shows deactivated.
            (true, true) => {
                self.belongs(&theirs, &kept) || !(self.has_teams(&theirs) || self.left(&theirs))
            }
            _ => {
                kept.starts_with("user:")
                    && theirs.starts_with("group:")
                    && self.belongs(&kept, &theirs)
            }
        }
    }
}

/// What the audits know about the whole catalog before they look at one entity: which refs are
/// live or gone, who belongs where, which names are aliases. Only people's bodies are read here
/// (each audit then reads the live entities, one at a time).
async fn load(store: &Store) -> Result<Catalog, StoreError> {
    let mut relations: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (source, kind, target) in store.relations_of_types(&WALKED).await? {
        relations.entry(source).or_default().push((kind, target));
    }
    let mut aliases: BTreeMap<String, String> = store.all_aliases().await?.into_iter().collect();
    // A renamed entity still answers to its old names.
    let renames = store
        .list_changes(&surveyor_store::ChangeFilter {
            op: Some(surveyor_store::ChangeOp::Renamed),
            limit: Some(i64::MAX),
            ..Default::default()
        })
        .await?;
    let mut old_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in renames {
        if let Some(previous) = c.previous_ref
            && let Ok(r) = previous.parse::<surveyor_model::EntityRef>()
        {
            old_names.entry(c.entity_uid).or_default().push(r.key());
        }
    }
    let mut deactivated = BTreeSet::new();
    let mut identified = BTreeSet::new();
    let mut live = BTreeSet::new();
    let mut tombstoned = BTreeSet::new();
    // (old name, the entity's name now), for renamed entities that are live.
    let mut renamed: Vec<(String, String)> = Vec::new();
    for (uid, entity_ref, is_live) in store.entity_keys().await? {
        if !is_live {
            tombstoned.insert(entity_ref);
            continue;
        }
        if let Some(olds) = old_names.get(&uid) {
            renamed.extend(olds.iter().map(|o| (o.clone(), entity_ref.clone())));
        }
        live.insert(entity_ref);
    }
    // Only people's bodies say whether they left or can be told apart.
    let people = EntityFilter {
        kind: Some("user".into()),
        ..EntityFilter::default()
    };
    store
        .for_each_entity(&people, |row| {
            let (body, claims) = parsed(&row);
            const ACTIVE: &str = "/metadata/annotations/jira.surveyor.dev~1active";
            let inactive = body.pointer(ACTIVE) == Some(&Value::from("false"))
                || claims
                    .iter()
                    .any(|c| c.own.get(ACTIVE) == Some(&Value::from("false")));
            if inactive {
                deactivated.insert(row.entity_ref.clone());
            }
            if body
                .pointer("/spec/profile/email")
                .is_some_and(Value::is_string)
            {
                identified.insert(row.entity_ref);
            }
            Ok(())
        })
        .await?;
    for (old, now) in renamed {
        if !live.contains(&old) && old != now {
            aliases.entry(old).or_insert(now);
        }
    }
    Ok(Catalog {
        live,
        tombstoned,
        relations,
        aliases,
        deactivated,
        identified,
    })
}

fn owner_key(owner: &str, namespace: &str) -> Option<String> {
    surveyor_model::EntityRef::parse_with(owner, Some("group"), namespace)
        .ok()
        .map(|r| r.key())
}

/// The teams the sources name as an entity's owner (resolved).
fn named_teams(cat: &Catalog, body: &Value, claims: &[Claim], ns: &str) -> BTreeSet<String> {
    body["spec"]["owner"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .chain(
            claims
                .iter()
                .filter_map(|c| c.disagrees.get("/spec/owner").map(text)),
        )
        .filter_map(|o| owner_key(&o, ns))
        .map(|k| cat.resolve(&k))
        .filter(|k| k.starts_with("group:"))
        .collect()
}

/// Which source supplied a field: the claim listing it, else the winner.
fn supplier<'a>(claims: &'a [Claim], pointer: &str) -> Option<&'a Claim> {
    claims
        .iter()
        .find(|c| c.fields.iter().any(|f| f == pointer))
        .or_else(|| claims.iter().find(|c| c.winner))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The ownership audit.
pub async fn ownership(store: &Store, sources: &Sources) -> Result<Vec<Finding>, StoreError> {
    let has_pagerduty = sources.any(&["pagerduty"]);
    judge(store, |cat, row, out| {
        ownership_of(cat, sources, has_pagerduty, row, out)
    })
    .await
}

/// Runs an audit: what it needs of the whole catalog first ([`load`]), then `judge` on each
/// live entity as its row arrives; the findings, most severe first.
async fn judge(
    store: &Store,
    mut judge: impl FnMut(&Catalog, &EntityRow, &mut Vec<Finding>),
) -> Result<Vec<Finding>, StoreError> {
    let cat = load(store).await?;
    let mut out = Vec::new();
    store
        .for_each_entity(&EntityFilter::default(), |row| {
            judge(&cat, &row, &mut out);
            Ok(())
        })
        .await?;
    out.sort_by(|a, b| (b.severity, &a.entity, a.rule).cmp(&(a.severity, &b.entity, b.rule)));
    Ok(out)
}

/// The ownership audit's findings about one live entity.
fn ownership_of(
    cat: &Catalog,
    sources: &Sources,
    has_pagerduty: bool,
    row: &EntityRow,
    out: &mut Vec<Finding>,
) {
    let kind = row.kind.as_str();
    if !matches!(kind, "component" | "system" | "api" | "resource" | "domain") {
        return;
    }
    let (body, claims) = &parsed(row);
    let at = row.updated_at;
    let ns = row.namespace.as_str();
    let finding = |rule: &'static str,
                   severity,
                   message: String,
                   owner: Option<String>,
                   evidence: Vec<Evidence>| Finding {
        entity: row.display_ref.clone(),
        kind: body["kind"].as_str().unwrap_or(kind).to_string(),
        rule,
        severity,
        message,
        owner,
        evidence,
    };
    let said = |claim: Option<&Claim>, what: String| Evidence {
        source: claim.map_or_else(|| "?".into(), |c| c.source.clone()),
        said: what,
        at,
    };
    let owner = body["spec"]["owner"].as_str().filter(|o| !o.is_empty());
    let Some(owner) = owner else {
        let severity = if matches!(kind, "component" | "system") {
            Severity::High
        } else {
            Severity::Medium
        };
        out.push(finding(
            "no-owner",
            severity,
            "no source names an owner".into(),
            None,
            claims
                .iter()
                .map(|c| said(Some(c), "no owner".into()))
                .collect(),
        ));
        return;
    };
    let Some(key) = owner_key(owner, ns).map(|k| cat.resolve(&k)) else {
        return;
    };
    let by = supplier(claims, "/spec/owner");
    let evidence = vec![said(by, format!("owner {owner}"))];
    if cat.tombstoned.contains(&key) && key.starts_with("user:") {
        out.push(finding(
            "owner-user-removed",
            Severity::High,
            format!("the owner {key} is gone from every source"),
            Some(key.clone()),
            evidence.clone(),
        ));
    } else if !cat.live.contains(&key) {
        out.push(finding(
            "owner-unresolved",
            Severity::High,
            format!("the owner {key} is not in the catalog"),
            Some(key.clone()),
            evidence.clone(),
        ));
    } else if key.starts_with("group:")
        && !cat
            .relations
            .get(&key)
            .is_some_and(|rs| rs.iter().any(|(k, _)| k == "hasMember"))
    {
        out.push(finding(
            "owner-group-empty",
            Severity::Medium,
            format!("the owner {key} has no members"),
            Some(key.clone()),
            evidence.clone(),
        ));
    }
    // A Jira lead who owns it, with an account Jira has deactivated.
    if let Some(jira) = by.filter(|c| sources.kind(&c.source) == "jira") {
        const ACTIVE: &str = "/metadata/annotations/jira.surveyor.dev~1lead-active";
        const LEAD: &str = "/metadata/annotations/jira.surveyor.dev~1lead";
        let value = |pointer: &str| {
            jira.own
                .get(pointer)
                .or_else(|| body.pointer(pointer))
                .map(text)
        };
        if value(ACTIVE).as_deref() == Some("false") {
            let lead = value(LEAD).unwrap_or_default();
            out.push(finding(
                "owner-deactivated",
                Severity::High,
                format!("the owner {key} is deactivated in Jira"),
                Some(key.clone()),
                vec![said(Some(jira), format!("lead {lead}, deactivated"))],
            ));
        }
    }
    let teams = named_teams(cat, body, claims, ns);
    let mut disputes: Vec<Evidence> = claims
        .iter()
        .filter_map(|c| {
            c.disagrees
                .get("/spec/owner")
                .filter(|v| !cat.same_owner(owner, &text(v), ns, &teams))
                .map(|v| said(Some(c), format!("owner {}", text(v))))
        })
        .collect();
    if !disputes.is_empty() {
        disputes.insert(0, said(by, format!("owner {owner} (kept)")));
        out.push(finding(
            "conflicting-owners",
            Severity::Medium,
            format!("sources disagree on the owner; {owner} was kept"),
            Some(key.clone()),
            disputes,
        ));
    }
    if by.is_some_and(|c| sources.kind(&c.source) == "jira" && !c.declared)
        && !claims.iter().any(|c| c.declared)
    {
        out.push(finding(
            "weak-owner",
            Severity::Low,
            "only a Jira lead names the owner; nothing declares it".into(),
            Some(key.clone()),
            evidence.clone(),
        ));
    }
    if kind == "component"
        && has_pagerduty
        && body["spec"]["type"] == "service"
        && body["spec"]["onCall"]["covered"] != true
    {
        let said_by = supplier(claims, "/spec/onCall/covered");
        let message = if body["spec"]["onCall"].is_object() {
            "PagerDuty knows the service, but nobody is on call".to_string()
        } else {
            "no PagerDuty service covers it".to_string()
        };
        out.push(finding(
            "no-on-call",
            Severity::High,
            message.clone(),
            Some(key.clone()),
            vec![said(said_by, message)],
        ));
    }
}

/// What [`record`] changed, per audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub ownership: surveyor_store::FindingsDelta,
    pub drift: surveyor_store::FindingsDelta,
}

/// Runs both audits and records their findings' history at `now`.
pub async fn record(
    store: &Store,
    sources: &Sources,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let as_records = |findings: Vec<Finding>| -> Vec<surveyor_store::FindingRecord> {
        findings
            .into_iter()
            .map(|f| {
                // Drift names the owner as `spec.owner` says it (`team-a`), ownership as a key:
                // stored as keys, one team's findings count and filter together.
                let namespace = surveyor_model::EntityRef::parse_with(&f.entity, None, "default")
                    .map(|r| r.namespace().to_string())
                    .unwrap_or_else(|_| "default".into());
                let owner = f
                    .owner
                    .as_deref()
                    .map(|o| owner_key(o, &namespace).unwrap_or_else(|| o.to_string()));
                surveyor_store::FindingRecord {
                    rule: f.rule.to_string(),
                    entity_ref: f.entity,
                    kind: f.kind,
                    severity: f.severity.as_str().to_string(),
                    message: f.message,
                    owner,
                    evidence: serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into()),
                }
            })
            .collect()
    };
    let ownership = as_records(ownership(store, sources).await?);
    let drift = as_records(drift(store, sources).await?);
    Ok(Recorded {
        ownership: store.record_findings("ownership", &ownership, now).await?,
        drift: store.record_findings("drift", &drift, now).await?,
    })
}

/// The drift audit: sources against each other, declarations against discovery.
pub async fn drift(store: &Store, sources: &Sources) -> Result<Vec<Finding>, StoreError> {
    let repo_sources = sources.any(&["github", "gitlab"]);
    judge(store, |cat, row, out| {
        drift_of(cat, sources, repo_sources, row, out)
    })
    .await
}

/// The drift audit's findings about one live entity.
fn drift_of(
    cat: &Catalog,
    sources: &Sources,
    repo_sources: bool,
    row: &EntityRow,
    out: &mut Vec<Finding>,
) {
    let (body, claims) = &parsed(row);
    let at = row.updated_at;
    let kind = body["kind"].as_str().unwrap_or(&row.kind).to_string();
    let owner = body["spec"]["owner"].as_str().map(str::to_string);
    let push = |out: &mut Vec<Finding>, rule, severity, message: String, evidence| {
        out.push(Finding {
            entity: row.display_ref.clone(),
            kind: kind.clone(),
            rule,
            severity,
            message,
            owner: owner.clone(),
            evidence,
        })
    };
    let ns = row.namespace.as_str();
    let teams = named_teams(cat, body, claims, ns);
    // One finding per field a source gave another value of: the kept value and theirs.
    let differs =
        |out: &mut Vec<Finding>, rule, severity, c: &Claim, pointer: &str, theirs: &Value| {
            let kept = body.pointer(pointer).map(text).unwrap_or_default();
            let by = supplier(claims, pointer);
            push(
                out,
                rule,
                severity,
                format!(
                    "{pointer}: {} says {}, {} kept {kept}",
                    c.source,
                    text(theirs),
                    by.map_or("?", |b| b.source.as_str())
                ),
                vec![
                    Evidence {
                        source: by.map_or_else(|| "?".into(), |b| b.source.clone()),
                        said: kept,
                        at,
                    },
                    Evidence {
                        source: c.source.clone(),
                        said: text(theirs),
                        at,
                    },
                ],
            );
        };
    for c in claims {
        if sources.cosmetic {
            for (pointer, theirs) in &c.cosmetic {
                differs(
                    out,
                    "cosmetic-difference",
                    Severity::Low,
                    c,
                    pointer,
                    theirs,
                );
            }
        }
        for (pointer, theirs) in &c.disagrees {
            let owner = pointer == "/spec/owner";
            if owner {
                let kept = body.pointer(pointer).map(text).unwrap_or_default();
                if cat.same_owner(&kept, &text(theirs), ns, &teams) {
                    continue;
                }
            }
            let severity = if owner {
                Severity::Medium
            } else {
                Severity::Low
            };
            differs(out, "disagreement", severity, c, pointer, theirs);
        }
    }
    let kinds: BTreeSet<&str> = claims.iter().map(|c| sources.kind(&c.source)).collect();
    let evidence: Vec<Evidence> = claims
        .iter()
        .map(|c| Evidence {
            source: c.source.clone(),
            said: if c.declared {
                "declared".into()
            } else {
                "discovered".into()
            },
            at,
        })
        .collect();
    if !claims.is_empty()
        && claims.iter().all(|c| c.declared)
        && matches!(row.kind.as_str(), "component" | "resource")
        && sources.kinds.values().any(|k| k != "file")
    {
        push(
            out,
            "declared-unseen",
            Severity::Low,
            "declared, but no connector discovers it".into(),
            evidence.clone(),
        );
    }
    if row.kind == "resource" && body["spec"]["type"] == "kubernetes-workload" {
        let claimed = cat.relations.get(&row.entity_ref).is_some_and(|rs| {
            rs.iter()
                .any(|(k, target)| k == "dependencyOf" && cat.live.contains(target))
        });
        if !claimed {
            push(
                out,
                "workload-without-component",
                Severity::Medium,
                "no catalogued component claims this workload".into(),
                evidence.clone(),
            );
        }
    }
    if row.kind == "component"
        && repo_sources
        && !kinds
            .iter()
            .any(|k| matches!(*k, "github" | "gitlab" | "file"))
    {
        push(
            out,
            "component-without-repo",
            Severity::Low,
            "no repository source knows this component".into(),
            evidence.clone(),
        );
    }
    if row.kind == "component" && !kinds.is_empty() && kinds.iter().all(|k| *k == "pagerduty") {
        push(
            out,
            "service-unclaimed",
            Severity::Medium,
            "a PagerDuty service no other source knows".into(),
            evidence.clone(),
        );
    }
}

/// Findings per owner (`-` for none), with counts per severity: the report's summary.
pub fn summary(findings: &[Finding]) -> BTreeMap<String, BTreeMap<&'static str, usize>> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for f in findings {
        *out.entry(f.owner.clone().unwrap_or_else(|| "-".into()))
            .or_default()
            .entry(f.severity.as_str())
            .or_default() += 1;
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn evidence_text(f: &Finding) -> String {
    f.evidence
        .iter()
        .map(|e| format!("{}: {}", e.source, e.said))
        .collect::<Vec<_>>()
        .join("; ")
}

/// CSV with a header row.
pub fn to_csv(findings: &[Finding]) -> String {
    let mut out = String::from("entity,kind,rule,severity,owner,message,evidence\n");
    for f in findings {
        let row = [
            f.entity.as_str(),
            f.kind.as_str(),
            f.rule,
            f.severity.as_str(),
            f.owner.as_deref().unwrap_or(""),
            f.message.as_str(),
            &evidence_text(f),
        ]
        .map(csv_field)
        .join(",");
        out.push_str(&row);
        out.push('\n');
    }
    out
}

/// A Markdown report: a summary per owner, then every finding.
pub fn to_markdown(title: &str, findings: &[Finding]) -> String {
    let mut out = format!(
        "# {title}\n\n{} findings.\n\n## By owner\n\n| owner | high | medium | low |\n| --- | --- | --- | --- |\n",
        findings.len()
    );
    for (owner, counts) in summary(findings) {
        let n = |s: &str| counts.get(s).copied().unwrap_or(0);
        out.push_str(&format!(
            "| {owner} | {} | {} | {} |\n",
            n("high"),
            n("medium"),
            n("low")
        ));
    }
    out.push_str("\n## Findings\n\n| entity | rule | severity | message | evidence |\n| --- | --- | --- | --- | --- |\n");
    for f in findings {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&f.entity),
            f.rule,
            f.severity.as_str(),
            cell(&f.message),
            cell(&evidence_text(f))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        entity: &str,
        rule: &'static str,
        severity: Severity,
        owner: Option<&str>,
    ) -> Finding {
        Finding {
            entity: entity.into(),
            kind: "Component".into(),
            rule,
            severity,
            message: "a, \"quoted\" | piped".into(),
            owner: owner.map(str::to_string),
            evidence: vec![Evidence {
                source: "github".into(),
                said: "owner group:default/a".into(),
                at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            }],
        }
    }

    /// `a` with no owner (high), and `b` owned by group `a` with a medium finding of `rule`.
    fn two_findings(rule: &'static str) -> Vec<Finding> {
        vec![
            finding("component:default/a", "no-owner", Severity::High, None),
            finding(
                "component:default/b",
                rule,
                Severity::Medium,
                Some("group:default/a"),
            ),
        ]
    }

    #[test]
    fn reports_have_a_stable_shape() {
        let f = two_findings("conflicting-owners");
        assert_eq!(
            to_csv(&f),
            "entity,kind,rule,severity,owner,message,evidence\n\
             component:default/a,Component,no-owner,high,,\"a, \"\"quoted\"\" | piped\",github: owner group:default/a\n\
             component:default/b,Component,conflicting-owners,medium,group:default/a,\"a, \"\"quoted\"\" | piped\",github: owner group:default/a\n"
        );
        assert_eq!(
            to_markdown("Ownership audit", &f),
            "# Ownership audit\n\n2 findings.\n\n## By owner\n\n| owner | high | medium | low |\n| --- | --- | --- | --- |\n\
             | - | 1 | 0 | 0 |\n| group:default/a | 0 | 1 | 0 |\n\n## Findings\n\n\
             | entity | rule | severity | message | evidence |\n| --- | --- | --- | --- | --- |\n\
             | component:default/a | no-owner | high | a, \"quoted\" \\| piped | github: owner group:default/a |\n\
             | component:default/b | conflicting-owners | medium | a, \"quoted\" \\| piped | github: owner group:default/a |\n"
        );
        assert_eq!(
            serde_json::to_value(&f[0]).unwrap(),
            serde_json::json!({"entity": "component:default/a", "kind": "Component", "rule": "no-owner",
                "severity": "high", "message": "a, \"quoted\" | piped", "owner": null,
                "evidence": [{"source": "github", "said": "owner group:default/a", "at": "2026-11-23T10:00:00Z"}]})
        );
    }

    #[test]
    fn reports_escape_and_summarise() {
        let f = two_findings("owner-group-empty");
        let csv = to_csv(&f);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.contains("\"a, \"\"quoted\"\" | piped\""));
        let md = to_markdown("Ownership", &f);
        assert!(md.contains("| group:default/a | 0 | 1 | 0 |"));
        assert!(md.contains("a, \"quoted\" \\| piped"));
        assert_eq!(summary(&f)["-"]["high"], 1);
    }
}
