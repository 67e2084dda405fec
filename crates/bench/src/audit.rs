//! The `audit` scenario: each audit rule's precision and recall against what the simulated org
//! planted (`surveyor_sim::truth`), after two syncs of every connector around the org's history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;
use surveyor_engine::run_connector;
use surveyor_sim::gitlab::every_other;
use surveyor_sim::truth::{RULES, Truth, Views, planted};
use surveyor_sim::{Account, Cluster};
use surveyor_store::Store;

use crate::db::{self, Backend};
use crate::fakes::{CONNECTORS, Fakes, Size, reconcile_options};
use crate::report::{Outcome, Table, ratio, round};

/// The targets every rule is held to.
const RECALL_TARGET: f64 = 1.0;
const PRECISION_TARGET: f64 = 0.95;
/// How many refs of each kind of miss a table shows (the JSON report has them all).
const SHOWN: usize = 3;
/// How many planted refs per rule the JSON report shows as examples.
const EXAMPLES: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizes {
    Small,
    Medium,
    Large,
    All,
}

impl Sizes {
    fn sizes(self) -> Vec<Size> {
        match self {
            Self::Small => vec![Size::Small],
            Self::Medium => vec![Size::Medium],
            Self::Large => vec![Size::Large],
            Self::All => vec![Size::Small, Size::Medium, Size::Large],
        }
    }
}

#[derive(Serialize, clap::Args)]
pub struct AuditBench {
    /// The org sizes to measure
    #[arg(long, value_enum, default_value_t = Sizes::All)]
    pub size: Sizes,
    #[arg(long, default_value_t = 1000)]
    pub requests_per_second: u32,
}

#[derive(Serialize)]
struct RuleFigures {
    rule: &'static str,
    audit: &'static str,
    planted: usize,
    found: usize,
    true_positives: usize,
    /// NaN (null) when the audit found nothing.
    precision: f64,
    /// NaN (null) when nothing was planted.
    recall: f64,
    below_target: bool,
    /// Found but not planted, each with what the audit said.
    false_positives: Vec<Miss>,
    /// Planted but not found, each with why it was planted.
    false_negatives: Vec<Miss>,
    /// The first few planted, with why, to see what the rule is held to.
    planted_examples: Vec<Miss>,
}

/// An entity a rule got wrong, and why: the audit's message for a false positive, what was
/// planted for a false negative.
#[derive(Serialize)]
struct Miss {
    entity: String,
    why: String,
}

#[derive(Serialize)]
struct SizeFigures {
    size: Size,
    repos: usize,
    teams: usize,
    people: usize,
    planted_faults: Vec<String>,
    history: Vec<String>,
    /// Each sync: connector -> status.
    syncs: Vec<BTreeMap<String, String>>,
    entities: i64,
    seconds: f64,
    rules: Vec<RuleFigures>,
    /// Findings of rules the truth does not speak for, by rule.
    other_findings: BTreeMap<String, usize>,
}

pub async fn run(b: AuditBench) -> anyhow::Result<Outcome> {
    let mut results = Vec::new();
    for size in b.size.sizes() {
        let r = run_size(size, b.requests_per_second).await?;
        print(&r);
        results.push(r);
    }
    Outcome::new(&b, serde_json::json!({ "sizes": results }))
}

async fn run_size(size: Size, rps: u32) -> anyhow::Result<SizeFigures> {
    let started = Instant::now();
    let (spec, mut org) = size.org(None);
    let planted_faults = org.plant_audit_faults();
    println!(
        "\norg {size:?}: {} repos, {} teams, {} people; {} faults planted",
        spec.repos,
        spec.teams,
        spec.people,
        planted_faults.len()
    );
    let fakes = Fakes::start(org.clone()).await?;
    let (store, cleanup) = db::open_fresh(Backend::Sqlite, None).await?;
    let dir = db::tempfile_dir()?;
    let mut syncs = vec![sync_all(&fakes, &store, &dir, rps).await?];

    let history = org.plant_history();
    publish(&fakes, &org);
    syncs.push(sync_all(&fakes, &store, &dir, rps).await?);

    let sources = surveyor_audit::Sources {
        kinds: [
            ("github", "github"),
            ("gitlab", "gitlab"),
            ("k8s", "kubernetes"),
            ("pagerduty", "pagerduty"),
            ("jira", "jira"),
        ]
        .into_iter()
        .map(|(id, kind)| (id.to_string(), kind.to_string()))
        .collect(),
        cosmetic: false,
    };
    // Rule -> entity -> the audit's messages.
    let mut found: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let audits = [
        (
            "ownership",
            surveyor_audit::ownership(&store, &sources).await?,
        ),
        ("drift", surveyor_audit::drift(&store, &sources).await?),
    ];
    for (_, findings) in &audits {
        for f in findings {
            found
                .entry(f.rule.to_string())
                .or_default()
                .entry(f.entity.to_ascii_lowercase())
                .or_default()
                .push(explain(f));
        }
    }
    let entities = store.table_counts().await.map(|c| c.entities).unwrap_or(0);
    store.close().await;
    cleanup.run().await;
    let _ = std::fs::remove_dir_all(&dir);

    let jira = fakes.jira.site();
    let pagerduty: Account = fakes.pagerduty.with_account(|a| a.clone());
    let cluster: Cluster = fakes.kube.with_cluster(|c| c.clone());
    let truth = planted(&Views {
        org: &org,
        jira: &jira,
        pagerduty: &pagerduty,
        cluster: &cluster,
        on_gitlab: &every_other,
    });
    let audit_of = |rule: &str| {
        if surveyor_audit::DRIFT_RULES.iter().any(|(r, _)| *r == rule) {
            "drift"
        } else {
            "ownership"
        }
    };
    let rules = RULES
        .iter()
        .map(|rule| compare(rule, audit_of(rule), &truth, found.get(*rule)))
        .collect();
    let other_findings = found
        .iter()
        .filter(|(rule, _)| !RULES.contains(&rule.as_str()))
        .map(|(rule, refs)| (rule.clone(), refs.len()))
        .collect();
    Ok(SizeFigures {
        size,
        repos: spec.repos,
        teams: spec.teams,
        people: spec.people,
        planted_faults,
        history,
        syncs,
        entities,
        seconds: round(started.elapsed().as_secs_f64(), 2),
        rules,
        other_findings,
    })
}

/// A finding's message and its evidence, for a person reading a false positive.
fn explain(f: &surveyor_audit::Finding) -> String {
    let evidence: Vec<String> = f
        .evidence
        .iter()
        .map(|e| format!("{}: {}", e.source, e.said))
        .collect();
    format!("{} [{}]", f.message, evidence.join("; "))
}

/// Runs every connector once, in order; a run that does not succeed is an error (the figures
/// would measure a partial catalog).
async fn sync_all(
    fakes: &Fakes,
    store: &Store,
    dir: &std::path::Path,
    rps: u32,
) -> anyhow::Result<BTreeMap<String, String>> {
    let options = with_other_names(reconcile_options(), fakes);
    let mut statuses = BTreeMap::new();
    for c in fakes.connectors(dir, rps)? {
        let r = run_connector(store, c.as_ref(), &options).await?;
        let status = r.status.as_str().to_string();
        anyhow::ensure!(
            status == "succeeded",
            "sync of {} {status}: {}",
            c.id(),
            r.error.as_deref().unwrap_or("no error given")
        );
        statuses.insert(c.id().to_string(), status);
    }
    debug_assert_eq!(statuses.len(), CONNECTORS.len());
    Ok(statuses)
}

/// What an operator of this org writes once (as the demo's config does): the systems' Jira
/// project keys and the teams' GitLab subgroup names as their other names.
fn with_other_names(
    mut options: surveyor_engine::ReconcileOptions,
    fakes: &Fakes,
) -> surveyor_engine::ReconcileOptions {
    use surveyor_engine::identity::{Identity, IdentityRule};
    let names = surveyor_sim::other_names(&fakes.jira.org(), &fakes.jira.site());
    let rule = IdentityRule {
        kinds: vec!["system".into()],
        aliases: names
            .systems
            .iter()
            .map(|(system, key)| (key.clone(), system.clone()))
            .collect(),
        ..IdentityRule::default()
    };
    let gitlab = names
        .gitlab_groups
        .iter()
        .map(|(slug, path)| (path.clone(), slug.clone()))
        .collect();
    options.identity = std::sync::Arc::new(Identity {
        rules: vec![rule],
        groups: [("gitlab".to_string(), gitlab)].into(),
    });
    options
}

/// Shows every fake the org as it is now (Jira keeps the projects and leads it was made with;
/// its components follow the repositories).
fn publish(fakes: &Fakes, org: &surveyor_sim::Org) {
    fakes.github.with_org(&org.name, |o| *o = org.clone());
    fakes.gitlab.with_org(|o| *o = org.clone());
    fakes
        .kube
        .with_cluster(|c| *c = Cluster::from_org(org, "prod"));
    fakes
        .pagerduty
        .with_account(|a| *a = Account::from_org(org));
    fakes.jira.with_org(|o| *o = org.clone());
}

fn compare(
    rule: &'static str,
    audit: &'static str,
    truth: &Truth,
    found: Option<&BTreeMap<String, Vec<String>>>,
) -> RuleFigures {
    let planted: BTreeSet<String> = truth
        .planted(rule)
        .into_iter()
        .map(str::to_ascii_lowercase)
        .collect();
    let empty = BTreeMap::new();
    let messages = found.unwrap_or(&empty);
    let found: BTreeSet<String> = messages.keys().cloned().collect();
    let true_positives = planted.intersection(&found).count();
    let precision = ratio(true_positives as f64, found.len() as f64);
    let recall = ratio(true_positives as f64, planted.len() as f64);
    // Nothing planted and nothing found meets the target; NaN compares false.
    let below_target = !(recall >= RECALL_TARGET || planted.is_empty())
        || !(precision >= PRECISION_TARGET || found.is_empty());
    RuleFigures {
        rule,
        audit,
        planted: planted.len(),
        found: found.len(),
        true_positives,
        precision: round(precision, 3),
        recall: round(recall, 3),
        below_target,
        false_positives: found
            .difference(&planted)
            .map(|e| Miss {
                why: messages.get(e).map(|m| m.join("; ")).unwrap_or_default(),
                entity: e.clone(),
            })
            .collect(),
        false_negatives: planted
            .difference(&found)
            .map(|e| Miss {
                why: truth
                    .rules
                    .get(rule)
                    .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(e)))
                    .map(|(_, why)| why.clone())
                    .unwrap_or_default(),
                entity: e.clone(),
            })
            .collect(),
        planted_examples: truth
            .rules
            .get(rule)
            .into_iter()
            .flatten()
            .take(EXAMPLES)
            .map(|(entity, why)| Miss {
                entity: entity.clone(),
                why: why.clone(),
            })
            .collect(),
    }
}

fn percent(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * v)
    }
}

fn print(r: &SizeFigures) {
    let mut t = Table::new(
        format!(
            "audit on the {:?} org ({} repos, {} teams, {} people): findings against what was planted",
            r.size, r.repos, r.teams, r.people
        ),
        &[
            "rule",
            "planted",
            "found",
            "true pos",
            "precision",
            "recall",
            "",
        ],
    );
    for f in &r.rules {
        t.row(vec![
            f.rule.to_string(),
            f.planted.to_string(),
            f.found.to_string(),
            f.true_positives.to_string(),
            percent(f.precision),
            percent(f.recall),
            if f.below_target {
                "below target".into()
            } else {
                String::new()
            },
        ]);
    }
    t.note(format!(
        "targets: recall {}, precision >= {}; {} entities in the catalog; {:.1} s",
        percent(RECALL_TARGET),
        percent(PRECISION_TARGET),
        r.entities,
        r.seconds
    ));
    if !r.other_findings.is_empty() {
        t.note(format!(
            "findings of rules without a truth: {:?}",
            r.other_findings
        ));
    }
    t.print();
    for f in r.rules.iter().filter(|f| f.below_target) {
        if !f.false_positives.is_empty() {
            println!(
                "  {} false positives ({}): {}",
                f.rule,
                f.false_positives.len(),
                f.false_positives
                    .iter()
                    .take(SHOWN)
                    .map(|m| format!("{} ({})", m.entity, m.why))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !f.false_negatives.is_empty() {
            println!(
                "  {} false negatives ({}): {}",
                f.rule,
                f.false_negatives.len(),
                f.false_negatives
                    .iter()
                    .take(SHOWN)
                    .map(|m| format!("{} ({})", m.entity, m.why))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
