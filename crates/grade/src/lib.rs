//! Grading the catalog: each Component classified from evidence (tier, stack, runtime,
//! lifecycle, domain, system), and every entity graded against the configured scorecards.
//!
//! Both read the catalog as the audits do (what they need of the whole catalog first, then one
//! entity at a time). [`record`] stores the classification by difference after each sync;
//! [`score::record`] the grades, with an event per check that turned and a trend.

mod evidence;
pub mod report;
pub mod score;
mod stack;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use surveyor_model::classify::{ClassifyRules, TIER_ANNOTATION, TierRule};
use surveyor_store::{
    Classification, ClassificationsDelta, EntityFilter, EntityRow, Store, StoreError,
};

pub use evidence::Evidence;
use evidence::{Claim, supplier};

/// One facet's value for one Component, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classified {
    pub entity: String,
    pub facet: &'static str,
    pub value: String,
    /// A source declared it (an annotation, a descriptor's field); derived values are not.
    pub declared: bool,
    pub evidence: Vec<Evidence>,
}

impl Classified {
    /// As the store keeps it.
    pub fn to_record(&self) -> Classification {
        Classification {
            entity_ref: self.entity.clone(),
            facet: self.facet.to_string(),
            value: self.value.clone(),
            declared: self.declared,
            evidence: serde_json::to_string(&self.evidence).unwrap_or_else(|_| "[]".into()),
        }
    }
}

/// A Kubernetes workload, as far as tiers and runtimes need it.
#[derive(Debug, Clone, Default)]
struct Workload {
    /// The connector that reports it.
    source: String,
    title: String,
    cluster: String,
    namespace: String,
    replicas: Option<u64>,
    images: Vec<String>,
}

/// What classification needs of the whole catalog before it looks at one Component.
#[derive(Debug, Default)]
struct Catalog {
    /// Kubernetes workloads by ref key.
    workloads: BTreeMap<String, Workload>,
    /// Each System's domain (ref key -> domain ref key), and who said it.
    system_domains: BTreeMap<String, (String, String)>,
    /// `dependsOn` targets by source ref.
    depends_on: BTreeMap<String, Vec<String>>,
    /// How many entities depend on each ref.
    dependents: BTreeMap<String, u64>,
}

async fn load(store: &Store) -> Result<Catalog, StoreError> {
    let mut cat = Catalog::default();
    for (source, kind, target) in store.relations_of_types(&["dependsOn"]).await? {
        if kind == "dependsOn" {
            *cat.dependents.entry(target.clone()).or_default() += 1;
            cat.depends_on.entry(source).or_default().push(target);
        }
    }
    let resources = EntityFilter {
        kind: Some("resource".into()),
        ..EntityFilter::default()
    };
    store
        .for_each_entity(&resources, |row| {
            let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
            let spec = &body["spec"];
            if spec["type"] == "kubernetes-workload" {
                let claims: Vec<Claim> = serde_json::from_str(&row.sources).unwrap_or_default();
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                cat.workloads.insert(
                    row.entity_ref,
                    Workload {
                        source: claims
                            .first()
                            .map_or_else(|| "kubernetes".into(), |c| c.source.clone()),
                        title: body["metadata"]["title"]
                            .as_str()
                            .map_or_else(|| text(&body["metadata"]["name"]), str::to_string),
                        cluster: text(&spec["cluster"]),
                        namespace: text(&spec["namespace"]),
                        replicas: spec["replicas"].as_u64(),
                        images: spec["images"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                    },
                );
            }
            Ok(())
        })
        .await?;
    let systems = EntityFilter {
        kind: Some("system".into()),
        ..EntityFilter::default()
    };
    store
        .for_each_entity(&systems, |row| {
            let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
            let claims: Vec<Claim> = serde_json::from_str(&row.sources).unwrap_or_default();
            let ns = body["metadata"]["namespace"].as_str().unwrap_or("default");
            if let Some(domain) = body["spec"]["domain"].as_str()
                && let Some(key) = ref_key(domain, "domain", ns)
            {
                let by = supplier(&claims, "/spec/domain").map_or("", |c| c.source.as_str());
                cat.system_domains
                    .insert(row.entity_ref, (key, by.to_string()));
            }
            Ok(())
        })
        .await?;
    Ok(cat)
}

/// `text` as a ref key, with `kind` and `namespace` when it leaves them out.
fn ref_key(text: &str, kind: &str, namespace: &str) -> Option<String> {
    surveyor_model::EntityRef::parse_with(text, Some(kind), namespace)
        .ok()
        .map(|r| r.key())
}

/// The name part of a ref key (`system:default/billing` -> `billing`).
fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Classifies every live Component, handing each value to `each` as its Component is read
/// (by entity, then facet).
async fn classify_each(
    store: &Store,
    rules: &ClassifyRules,
    mut each: impl FnMut(Classified),
) -> Result<(), StoreError> {
    let cat = load(store).await?;
    let components = EntityFilter {
        kind: Some("component".into()),
        ..EntityFilter::default()
    };
    let mut values = Vec::new();
    store
        .for_each_entity(&components, |row| {
            component(&cat, rules, &row, &mut values);
            values.drain(..).for_each(&mut each);
            Ok(())
        })
        .await
}

/// Classifies the Components and stores the result by difference, at `now`. What is stored is
/// held as keys and digests only, and each value is compared as it is made: only changes are
/// kept until they are written.
pub async fn record(
    store: &Store,
    rules: &ClassifyRules,
    now: DateTime<Utc>,
) -> Result<ClassificationsDelta, StoreError> {
    let mut changes = store.classification_changes().await?;
    classify_each(store, rules, |c| changes.see(c.to_record())).await?;
    store.apply_classifications(changes, now).await
}

fn component(cat: &Catalog, rules: &ClassifyRules, row: &EntityRow, out: &mut Vec<Classified>) {
    let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
    let claims: Vec<Claim> = serde_json::from_str(&row.sources).unwrap_or_default();
    let entity = row.entity_ref.as_str();
    let ns = body["metadata"]["namespace"].as_str().unwrap_or("default");
    let workloads: Vec<&Workload> = cat
        .depends_on
        .get(entity)
        .into_iter()
        .flatten()
        .filter_map(|t| cat.workloads.get(t))
        .collect();
    let mut push = |facet: &'static str, value: String, declared: bool, evidence| {
        out.push(Classified {
            entity: entity.to_string(),
            facet,
            value,
            declared,
            evidence,
        });
    };
    let (tier, declared, evidence) = tier(cat, rules, entity, &body, &claims, &workloads);
    push("tier", tier, declared, evidence);
    for (value, evidence) in stack::stacks(&body, &claims) {
        push("stack", value, false, evidence);
    }
    for (value, evidence) in
        stack::runtimes(workloads.iter().map(|w| (&w.title, &w.images, &w.source)))
    {
        push("runtime", value, false, evidence);
    }
    if let Some((value, declared, evidence)) = lifecycle(&body, &claims) {
        push("lifecycle", value, declared, evidence);
    }
    let system = body["spec"]["system"]
        .as_str()
        .and_then(|s| ref_key(s, "system", ns));
    if let Some((value, declared, evidence)) = domain(cat, system.as_deref(), &body, &claims) {
        push("domain", value, declared, evidence);
    }
    if let Some((value, declared, evidence)) =
        system_of(system.as_deref(), &claims, &body, &workloads)
    {
        push("system", value, declared, evidence);
    }
}

/// The signals tier rules look at, read once per Component.
struct Signals {
    on_call: Option<bool>,
    urgency: Option<String>,
    levels: Option<u64>,
    /// The production workloads (source, title, replicas).
    production: Vec<(String, String, Option<u64>)>,
    dependents: u64,
    /// Who said the on-call facts.
    on_call_by: String,
}

impl Signals {
    /// Whether every condition of `rule` holds, and the evidence for each.
    fn check(&self, rule: &TierRule) -> Option<Vec<Evidence>> {
        let mut why = Vec::new();
        let by = |s: &str| Evidence::new(&self.on_call_by, s);
        if let Some(want) = rule.on_call {
            if self.on_call.unwrap_or(false) != want {
                return None;
            }
            why.push(by(if want {
                "covered by on-call now"
            } else {
                "not covered by on-call"
            }));
        }
        if let Some(want) = &rule.urgency {
            if !self
                .urgency
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(want))
            {
                return None;
            }
            why.push(by(&format!("incident urgency {want}")));
        }
        if let Some(min) = rule.min_escalation_levels {
            let levels = self.levels.filter(|l| *l >= min)?;
            why.push(by(&format!("{levels} escalation levels")));
        }
        if let Some(want) = rule.production {
            if self.production.is_empty() == want {
                return None;
            }
            why.push(match self.production.first() {
                Some((source, title, _)) if want => {
                    Evidence::new(source, &format!("runs in production: {title}"))
                }
                _ => Evidence::new("catalog", "no workload in production"),
            });
        }
        if let Some(min) = rule.min_replicas {
            let (source, title, n) = self
                .production
                .iter()
                .filter_map(|(s, t, r)| r.map(|r| (s, t, r)))
                .max_by_key(|(_, _, r)| *r)
                .filter(|(_, _, r)| *r >= min)?;
            why.push(Evidence::new(
                source,
                &format!("{n} replicas in production: {title}"),
            ));
        }
        if let Some(min) = rule.min_dependents {
            if self.dependents < min {
                return None;
            }
            why.push(Evidence::new(
                "catalog",
                &format!("{} entities depend on it", self.dependents),
            ));
        }
        Some(why)
    }
}

fn tier(
    cat: &Catalog,
    rules: &ClassifyRules,
    entity: &str,
    body: &Value,
    claims: &[Claim],
    workloads: &[&Workload],
) -> (String, bool, Vec<Evidence>) {
    let pointer = "/metadata/annotations/surveyor.dev~1tier";
    if let Some(declared) = body["metadata"]["annotations"][TIER_ANNOTATION].as_str() {
        let by = supplier(claims, pointer).map_or("", |c| c.source.as_str());
        return (
            declared.trim().to_ascii_lowercase(),
            true,
            vec![Evidence::new(
                by,
                &format!("declares {TIER_ANNOTATION}: {declared}"),
            )],
        );
    }
    let on_call = &body["spec"]["onCall"];
    let production = |name: &str| {
        rules
            .production
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
    };
    let signals = Signals {
        on_call: on_call["covered"].as_bool(),
        urgency: on_call["urgency"].as_str().map(str::to_string),
        levels: on_call["levels"].as_u64(),
        production: workloads
            .iter()
            .filter(|w| production(&w.cluster) || production(&w.namespace))
            .map(|w| (w.source.clone(), w.title.clone(), w.replicas))
            .collect(),
        dependents: cat.dependents.get(entity).copied().unwrap_or(0),
        on_call_by: supplier(claims, "/spec/onCall/covered")
            .map_or_else(|| "pagerduty".into(), |c| c.source.clone()),
    };
    for (i, rule) in rules.tiers.iter().enumerate() {
        if let Some(mut why) = signals.check(rule) {
            why.push(Evidence::new(
                "surveyor",
                &format!(
                    "tier rule {} ({}) holds",
                    i + 1,
                    rule.conditions().join(", ")
                ),
            ));
            return (rule.tier.to_ascii_lowercase(), false, why);
        }
    }
    (
        rules.default_tier.to_ascii_lowercase(),
        false,
        vec![Evidence::new("surveyor", "no tier rule holds")],
    )
}

/// Deprecated when any source says so (an archived repository, a disabled PagerDuty service),
/// unless a descriptor declares the lifecycle; else the catalog's value.
fn lifecycle(body: &Value, claims: &[Claim]) -> Option<(String, bool, Vec<Evidence>)> {
    const POINTER: &str = "/spec/lifecycle";
    let shown = body["spec"]["lifecycle"].as_str()?.to_ascii_lowercase();
    let shown_by = supplier(claims, POINTER);
    let said = |c: &Claim, v: &str| Evidence::new(&c.source, &format!("spec.lifecycle: {v}"));
    if let Some(c) = shown_by.filter(|c| c.declared) {
        return Some((shown.clone(), true, vec![said(c, &shown)]));
    }
    let mut evidence: Vec<Evidence> = shown_by.map(|c| said(c, &shown)).into_iter().collect();
    let others: Vec<(&Claim, String)> = claims
        .iter()
        .filter_map(|c| {
            c.disagrees
                .get(POINTER)
                .and_then(Value::as_str)
                .map(|v| (c, v.to_ascii_lowercase()))
        })
        .collect();
    evidence.extend(others.iter().map(|(c, v)| said(c, v)));
    let deprecated = shown == "deprecated" || others.iter().any(|(_, v)| v == "deprecated");
    let value = if deprecated {
        "deprecated".into()
    } else {
        shown
    };
    Some((value, false, evidence))
}

/// The domain of the Component's System; else the GitLab group the project sits in under the
/// top group (`acme/payments/...` -> `payments`).
fn domain(
    cat: &Catalog,
    system: Option<&str>,
    body: &Value,
    claims: &[Claim],
) -> Option<(String, bool, Vec<Evidence>)> {
    if let Some(system) = system
        && let Some((domain, by)) = cat.system_domains.get(system)
    {
        let system_by = supplier(claims, "/spec/system").map_or("", |c| c.source.as_str());
        return Some((
            name_of(domain).to_string(),
            false,
            vec![
                Evidence::new(system_by, &format!("part of {system}")),
                Evidence::new(by, &format!("{system} is in {domain}")),
            ],
        ));
    }
    let slug = body["metadata"]["annotations"]["gitlab.com/project-slug"].as_str()?;
    let groups: Vec<&str> = slug.split('/').collect();
    // top group / subgroup / ... / project: the first subgroup names the area.
    let area = (groups.len() >= 3).then(|| groups[1])?;
    let name = surveyor_model::names::entity_name(area)?;
    let by = supplier(claims, "/metadata/annotations/gitlab.com~1project-slug")
        .map_or("gitlab", |c| c.source.as_str());
    Some((
        name,
        false,
        vec![Evidence::new(
            by,
            &format!("project {slug} is in group {area}"),
        )],
    ))
}

/// The declared System; else the Kubernetes namespace its workloads share.
fn system_of(
    system: Option<&str>,
    claims: &[Claim],
    body: &Value,
    workloads: &[&Workload],
) -> Option<(String, bool, Vec<Evidence>)> {
    if let Some(system) = system {
        let by = supplier(claims, "/spec/system");
        let declared = by.is_some_and(|c| c.declared);
        let raw = body["spec"]["system"].as_str().unwrap_or(system);
        return Some((
            name_of(system).to_string(),
            declared,
            vec![Evidence::new(
                by.map_or("", |c| c.source.as_str()),
                &format!("spec.system: {raw}"),
            )],
        ));
    }
    let namespaces: BTreeSet<&str> = workloads.iter().map(|w| w.namespace.as_str()).collect();
    match namespaces.into_iter().collect::<Vec<_>>()[..] {
        [ns] if !ns.is_empty() && ns != "default" => Some((
            surveyor_model::names::entity_name(ns)?,
            false,
            workloads
                .iter()
                .map(|w| Evidence::new(&w.source, &format!("{} in namespace {ns}", w.title)))
                .collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
