//! What the demo prints on stdout: each sync's runs, the catalog's summary (entities per kind,
//! merged entities, audit findings per rule) and the changes each change of the org caused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use surveyor_audit::Finding;
use surveyor_engine::RunReport;
use surveyor_store::{ChangeFilter, ChangeOp, EntityFilter, Store, StoreError};

use crate::output;

/// One connector's run in a sync: its report, or why it failed.
pub struct RunResult {
    pub connector: String,
    pub report: Result<RunReport, String>,
    pub elapsed: Duration,
}

impl RunResult {
    pub fn succeeded(&self) -> bool {
        self.report.as_ref().is_ok_and(|r| {
            r.status == surveyor_engine::RunStatus::Succeeded && r.problems.is_empty()
        })
    }
}

/// What a sync did to the catalog: each entity once, whichever runs touched it.
pub struct Totals(pub surveyor_engine::EntityCounts);

impl Totals {
    pub fn of(runs: &[RunResult]) -> Self {
        Self(surveyor_engine::EntityCounts::of_sync(
            runs.iter().filter_map(|r| r.report.as_ref().ok()),
        ))
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        output::write_totals(f, &self.0)
    }
}

/// The runs of a sync as a table, then their totals.
pub fn print_runs(runs: &[RunResult]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| match &r.report {
            Ok(report) => {
                let mut row = vec![
                    r.connector.clone(),
                    report.status.as_str().to_string(),
                    report.counts.observations.observed.to_string(),
                ];
                row.extend(output::changes(&report.counts.entities).map(|(_, n)| n.to_string()));
                row.push(format!("{:.1}s", r.elapsed.as_secs_f64()));
                row
            }
            Err(_) => {
                let mut row = vec![r.connector.clone(), "failed".into()];
                row.extend(std::iter::repeat_n("-".to_string(), 6));
                row.push(format!("{:.1}s", r.elapsed.as_secs_f64()));
                row
            }
        })
        .collect();
    output::table(
        &[
            "CONNECTOR",
            "STATUS",
            "OBSERVED",
            "CREATED",
            "UPDATED",
            "RENAMED",
            "DELETED",
            "RESTORED",
            "TIME",
        ],
        &rows,
    );
    say!("Changes: {}", Totals::of(runs));
    for r in runs {
        match &r.report {
            Err(e) => eprintln!("{}: error: {e}", r.connector),
            Ok(report) => output::run_notes(&r.connector, report, output::Notes::Demo),
        }
    }
}

/// The catalog after a sync, as the summary shows it.
pub struct Summary {
    /// Live entities per kind, most first.
    pub kinds: Vec<(String, i64)>,
    /// Live entities that more than one source describes, with those sources.
    pub merged: Vec<(String, Vec<String>)>,
    pub gaps: Vec<Finding>,
    pub drift: Vec<Finding>,
    /// Components per tier and per stack, most first.
    pub tiers: Vec<(String, i64)>,
    pub stacks: Vec<(String, i64)>,
    /// Per scorecard (its title): how many entities reached each level, the count below the
    /// lowest first.
    pub scores: Vec<(String, Vec<(String, usize)>)>,
}

impl Summary {
    pub async fn read(
        store: &Store,
        sources: &surveyor_audit::Sources,
        scorecards: &[surveyor_model::score::Scorecard],
    ) -> Result<Self, StoreError> {
        let mut scores = Vec::new();
        for card in scorecards {
            let rows = store.scores(&card.name, None).await?;
            let counts = surveyor_grade::report::levels(card, &rows);
            let mut named = vec![("below".to_string(), counts[0])];
            named.extend(card.levels.iter().cloned().zip(counts[1..].iter().copied()));
            scores.push((card.title.clone(), named));
        }
        let mut kinds = store.facet_counts("kind", &EntityFilter::default()).await?;
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut merged = Vec::new();
        for row in store.list_entities(&EntityFilter::default()).await? {
            let claims: Vec<Value> = serde_json::from_str(&row.sources).unwrap_or_default();
            let names: BTreeSet<String> = claims
                .iter()
                .filter_map(|c| c["source"].as_str().map(str::to_string))
                .collect();
            if names.len() > 1 {
                // In the order the claims list them: the winning source first.
                let mut ordered: Vec<String> = Vec::new();
                for c in &claims {
                    if let Some(s) = c["source"].as_str()
                        && !ordered.iter().any(|o| o == s)
                    {
                        ordered.push(s.to_string());
                    }
                }
                merged.push((row.display_ref, ordered));
            }
        }
        Ok(Self {
            kinds,
            merged,
            gaps: surveyor_audit::ownership(store, sources).await?,
            drift: surveyor_audit::drift(store, sources).await?,
            tiers: store.count_classifications("tier").await?,
            stacks: store.count_classifications("stack").await?,
            scores,
        })
    }

    pub fn print(&self) {
        let live: i64 = self.kinds.iter().map(|(_, n)| n).sum();
        say!("\nEntities: {live} live");
        for (kind, n) in &self.kinds {
            say!("  {kind:<12} {n:>6}");
        }
        say!(
            "\nMerged: {} entities are described by more than one source",
            self.merged.len()
        );
        let mut widest: Vec<&(String, Vec<String>)> = self.merged.iter().collect();
        widest.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        for (entity, sources) in widest.iter().take(3) {
            say!("  e.g. {entity}: {}", sources.join(", "));
        }
        let counted = |counts: &[(String, i64)], most: usize| {
            let mut shown: Vec<String> = counts
                .iter()
                .take(most)
                .map(|(v, n)| format!("{v} {n}"))
                .collect();
            if counts.len() > most {
                shown.push(format!("{} more", counts.len() - most));
            }
            shown.join(", ")
        };
        say!(
            "\nClassified from evidence (surveyor classify; surveyor entities list --tier, --stack):"
        );
        say!("  tiers   {}", counted(&self.tiers, 6));
        say!("  stacks  {}", counted(&self.stacks, 6));
        if !self.scores.is_empty() {
            say!("\nScorecards (surveyor score --format markdown for the roll-up per team):");
            for (title, levels) in &self.scores {
                let shown: Vec<String> = levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
                say!("  {title:<22} {}", shown.join(", "));
            }
        }
        print_findings("Ownership gaps", &self.gaps);
        print_findings("Drift findings", &self.drift);
    }
}

/// A count per rule, most first, each with one finding to act on (the most severe).
fn print_findings(title: &str, findings: &[Finding]) {
    say!("\n{title}: {}", findings.len());
    let mut per_rule: BTreeMap<&str, (usize, &Finding)> = BTreeMap::new();
    for f in findings {
        let e = per_rule.entry(f.rule).or_insert((0, f));
        e.0 += 1;
        if f.severity > e.1.severity {
            e.1 = f;
        }
    }
    let mut rules: Vec<(&str, (usize, &Finding))> = per_rule.into_iter().collect();
    rules.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
    for (rule, (n, example)) in rules {
        say!(
            "  {rule:<28} {n:>6}   e.g. {}: {}",
            example.entity,
            short(&example.message)
        );
    }
}

/// A message cut to fit a line.
fn short(message: &str) -> String {
    const MAX: usize = 90;
    if message.chars().count() <= MAX {
        return message.to_string();
    }
    let cut: String = message.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

/// New and resolved findings per audit: `ownership 2 new, 1 resolved; drift 0 new, 3 resolved`.
pub fn delta(recorded: &surveyor_audit::Recorded) -> String {
    format!(
        "ownership {} new, {} resolved; drift {} new, {} resolved",
        recorded.ownership.opened,
        recorded.ownership.resolved,
        recorded.drift.opened,
        recorded.drift.resolved
    )
}

/// How many example changes a change of the org shows.
const EXAMPLES: usize = 6;

/// What one change of the org did to the catalog: the totals, the connectors that changed
/// something, and a few of the changes themselves.
pub async fn print_round(
    store: &Store,
    runs: &[RunResult],
    findings: Option<&surveyor_audit::Recorded>,
    since: DateTime<Utc>,
    after_events: bool,
) -> Result<(), StoreError> {
    let what = if after_events {
        "sync after the events (what they missed)"
    } else {
        "sync"
    };
    say!("  {what}: {}", Totals::of(runs));
    if let Some(recorded) = findings {
        say!("  findings: {}", delta(recorded));
    }
    for r in runs {
        match &r.report {
            Ok(report) if report.counts.entities.changes() > 0 => {
                let parts: Vec<String> = output::changes(&report.counts.entities)
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(op, n)| format!("{op} {n}"))
                    .collect();
                say!("    {:<10} {}", r.connector, parts.join(", "));
            }
            Ok(report) if report.status != surveyor_engine::RunStatus::Succeeded => {
                say!("    {:<10} {}", r.connector, report.status.as_str());
            }
            Ok(_) => {}
            Err(e) => say!("    {:<10} failed: {e}", r.connector),
        }
    }
    let run_ids: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.report.as_ref().ok())
        .map(|r| r.run_id.as_str())
        .collect();
    let changes = store
        .list_changes(&ChangeFilter {
            since: Some(since),
            ..ChangeFilter::default()
        })
        .await?;
    let ours: Vec<_> = changes
        .iter()
        .filter(|c| run_ids.contains(c.run_id.as_str()))
        .collect();
    print_examples(&ours);
    Ok(())
}

/// Up to [`EXAMPLES`] changes, taken in turns from each kind, so every kind that happened is
/// shown.
fn print_examples(changes: &[&surveyor_store::ChangeRow]) {
    let by_op: Vec<Vec<&surveyor_store::ChangeRow>> = ChangeOp::ALL
        .iter()
        .map(|op| changes.iter().copied().filter(|c| c.op == *op).collect())
        .collect();
    let most = by_op.iter().map(Vec::len).max().unwrap_or(0);
    let shown = (0..most).flat_map(|i| by_op.iter().filter_map(move |of_op| of_op.get(i)));
    for c in shown.take(EXAMPLES) {
        let what = match &c.previous_ref {
            Some(prev) if c.op == ChangeOp::Renamed => format!("{prev} -> {}", c.entity_ref),
            _ => c.entity_ref.clone(),
        };
        say!("    {:<9} {what} ({})", c.op.as_str(), c.source);
    }
}

/// How long the demo waits for the events of one change to reach the catalog.
const EVENT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits for what the events of a change made at `since` bring into the catalog (until the
/// changes stop coming for half a second, at most [`EVENT_PATIENCE`]), and prints it with how
/// long the first took.
pub async fn print_events(store: &Store, since: DateTime<Utc>) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let filter = ChangeFilter {
        since: Some(since),
        ..ChangeFilter::default()
    };
    let mut first: Option<std::time::Duration> = None;
    let mut seen = 0;
    let mut quiet_since = std::time::Instant::now();
    let changes = loop {
        let changes = store.list_changes(&filter).await?;
        if changes.len() != seen {
            seen = changes.len();
            quiet_since = std::time::Instant::now();
            first.get_or_insert(started.elapsed());
        }
        let settled =
            first.is_some() && quiet_since.elapsed() >= std::time::Duration::from_millis(500);
        if settled || started.elapsed() >= EVENT_PATIENCE {
            break changes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    match first {
        Some(took) => {
            say!(
                "  events: {} changes in the catalog, the first {} ms after the change",
                changes.len(),
                took.as_millis()
            );
            print_examples(&changes.iter().collect::<Vec<_>>());
        }
        None => say!(
            "  events: nothing came within {}s (no source announces this change; the sync reads it)",
            EVENT_PATIENCE.as_secs()
        ),
    }
    Ok(())
}
