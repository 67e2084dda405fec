//! The `grade` scenario: N generated components, then classification and three scorecards of
//! three checks each: the first grading (every value written), then gradings with nothing
//! changed; wall time and this process's peak RSS for each, on SQLite and Postgres.

use std::time::Instant;

use serde::Serialize;
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::classify::ClassifyRules;
use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};

use crate::db::{self, PostgresArgs};
use crate::generated::Generated;
use crate::machine::{peak_rss_mb, reset_peak_rss};
use crate::report::{Outcome, Table, median, round};

#[derive(clap::Args)]
pub struct GradeBench {
    #[arg(long, default_value_t = 100_000)]
    pub entities: usize,
    #[command(flatten)]
    pub pg: PostgresArgs,
    /// Skip SQLite
    #[arg(long)]
    pub no_sqlite: bool,
    /// Gradings with nothing changed; the median is printed
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

#[derive(Serialize)]
struct BackendResult {
    backend: &'static str,
    graded: u64,
    first_s: f64,
    first_peak_rss_mb: f64,
    unchanged_s: f64,
    unchanged_runs_s: Vec<f64>,
    unchanged_peak_rss_mb: f64,
    target_s: f64,
}

/// The three scorecards: ownership, hygiene, supply chain (as `docs/benchmarks.md` lists).
pub fn scorecards() -> Vec<Scorecard> {
    let check = Check::new;
    let card = |name: &str, levels: &[&str], checks: Vec<Check>| Scorecard {
        name: name.into(),
        title: name.into(),
        applies_to: AppliesTo::default(),
        levels: levels.iter().map(|l| l.to_string()).collect(),
        checks,
    };
    vec![
        card(
            "ownership",
            &["bronze", "silver", "gold"],
            vec![
                check("owned", "bronze", Test::Relation("ownedBy".into())),
                check("team", "silver", Test::OwnerMembers(2)),
                check(
                    "agreed",
                    "gold",
                    Test::NoFinding("conflicting-owners".into()),
                ),
            ],
        ),
        card(
            "hygiene",
            &["bronze", "silver"],
            vec![
                check(
                    "lifecycle",
                    "bronze",
                    Test::Field {
                        pointer: "/spec/lifecycle".into(),
                        equals: Some("production".into()),
                        matches: None,
                    },
                ),
                check(
                    "slug",
                    "bronze",
                    Test::Field {
                        pointer: "/metadata/annotations/github.com~1project-slug".into(),
                        equals: None,
                        matches: Some("acme/*".into()),
                    },
                ),
                check("runbook", "silver", Test::Link("runbook".into())),
            ],
        ),
        card(
            "supply-chain",
            &["bronze", "silver"],
            vec![
                check(
                    "lodash",
                    "bronze",
                    Test::Dependency {
                        ecosystem: Some("npm".into()),
                        package: "lodash".into(),
                        at_least: Some("4.17.21".into()),
                    },
                ),
                check(
                    "no-event-stream",
                    "bronze",
                    Test::Dependency {
                        ecosystem: Some("npm".into()),
                        package: "event-stream".into(),
                        at_least: None,
                    },
                ),
                check("codeowners", "silver", Test::File("CODEOWNERS".into())),
            ],
        ),
    ]
}

/// One grading as `surveyor sync` makes it after a run: classification, then the scorecards.
async fn grading(
    store: &surveyor_store::Store,
    cards: &[Scorecard],
) -> anyhow::Result<(f64, u64, f64)> {
    reset_peak_rss();
    let t = Instant::now();
    let now = chrono::Utc::now();
    surveyor_grade::record(store, &ClassifyRules::default(), now).await?;
    let scored = surveyor_grade::score::record(store, cards, now, None).await?;
    let wall = t.elapsed().as_secs_f64();
    Ok((wall, scored.values().map(|d| d.graded).sum(), peak_rss_mb()))
}

pub async fn run(b: GradeBench) -> anyhow::Result<Outcome> {
    let cards = scorecards();
    let mut results = Vec::new();
    for backend in db::backends(b.no_sqlite, &b.pg.postgres) {
        let (store, cleanup) = db::open_fresh(backend, b.pg.postgres.as_deref()).await?;
        run_connector(
            &store,
            &Generated::new(b.entities, 0),
            &ReconcileOptions::default(),
        )
        .await?;
        let (first_s, graded, first_rss) = grading(&store, &cards).await?;
        let mut runs = Vec::new();
        let mut rss: f64 = 0.0;
        for _ in 0..b.repeat.max(1) {
            let (s, _, r) = grading(&store, &cards).await?;
            runs.push(round(s, 3));
            rss = rss.max(r);
        }
        store.close().await;
        cleanup.run().await;
        let r = BackendResult {
            backend: backend.label(),
            graded,
            first_s: round(first_s, 3),
            first_peak_rss_mb: round(first_rss, 1),
            unchanged_s: round(median(runs.clone()), 3),
            unchanged_runs_s: runs,
            unchanged_peak_rss_mb: round(rss, 1),
            target_s: 5.0,
        };
        print(&r, b.entities);
        results.push(r);
    }
    Outcome::new(
        serde_json::json!({
            "entities": b.entities,
            "repeat": b.repeat.max(1),
            "scorecards": cards.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        }),
        serde_json::json!({ "backends": results }),
    )
}

fn print(r: &BackendResult, n: usize) {
    let mut t = Table::new(
        format!(
            "grade {}: {n} components, classification and 3 scorecards",
            r.backend
        ),
        &["figure", "value", "note"],
    );
    t.row(vec![
        "grades".into(),
        r.graded.to_string(),
        "entities x scorecards".into(),
    ]);
    t.row(vec![
        "first grading, s".into(),
        format!("{:.2}", r.first_s),
        format!(
            "peak RSS {:.1} MB (every value written)",
            r.first_peak_rss_mb
        ),
    ]);
    t.row(vec![
        "nothing changed, s (median)".into(),
        format!("{:.2}", r.unchanged_s),
        format!(
            "runs {:?}; peak RSS {:.1} MB; target < {} s",
            r.unchanged_runs_s, r.unchanged_peak_rss_mb, r.target_s
        ),
    ]);
    t.print();
}
