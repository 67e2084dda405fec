//! `surveyor score`: grades the configured scorecards now, records the grades, and shows them
//! (per entity, CSV, or a Markdown report with the per-team roll-up); `--fail-under` gates CI.

use std::path::Path;

use clap::Args;
use surveyor_model::score::Scorecard;

use crate::setup::{grade_catalog, load, open};
use crate::{CliError, ReportFormat, output};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Only this scorecard (by its `name` in surveyor.toml)
    #[arg(long, value_name = "NAME")]
    pub scorecard: Option<String>,
    /// Only entities owned by this ref (`team-a` means `group:default/team-a`)
    #[arg(long, value_name = "REF")]
    pub owner: Option<String>,
    /// Output: a table, JSON, CSV, or a Markdown report with the roll-up per team
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Exit 3 when an entity is below this level on a scorecard that has it (for CI gates)
    #[arg(long, value_name = "LEVEL")]
    pub fail_under: Option<String>,
    /// The checks that turned from pass to fail or back instead, newest first, with the run
    /// that caused each
    #[arg(long)]
    pub history: bool,
}

pub async fn run(path: &Path, args: ScoreArgs) -> Result<(), CliError> {
    let config = load(path)?;
    if config.scorecards.is_empty() {
        return Err(CliError::Input(format!(
            "{} has no [[scorecards]]; docs/scorecards.md shows how to write one",
            config.file.display()
        )));
    }
    let cards: Vec<&Scorecard> = match &args.scorecard {
        None => config.scorecards.iter().collect(),
        Some(name) => {
            let wanted = name.to_ascii_lowercase();
            let found: Vec<&Scorecard> = config
                .scorecards
                .iter()
                .filter(|c| c.name == wanted)
                .collect();
            if found.is_empty() {
                let names: Vec<&str> = config.scorecards.iter().map(|c| c.name.as_str()).collect();
                return Err(CliError::Input(format!(
                    "no scorecard {name:?}; surveyor.toml has {}",
                    names.join(", ")
                )));
            }
            found
        }
    };
    if let Some(level) = &args.fail_under
        && !cards.iter().any(|c| c.rank(level).is_some())
    {
        return Err(CliError::Input(format!(
            "--fail-under {level}: no scorecard here has that level"
        )));
    }
    let owner = args
        .owner
        .as_deref()
        .map(|o| crate::commands::parse_ref(o, Some("group")).map(|r| r.key()))
        .transpose()?;
    let store = open(&config).await?;
    let graded = grade_catalog(&store, &config.classify, &config.scorecards).await?;
    eprintln!("{}", graded.line());
    if args.history {
        let mut events = Vec::new();
        for card in &cards {
            events.extend(store.score_events(Some(&card.name), None, 1000).await?);
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.id));
        store.close().await;
        return history(&events, args.format);
    }
    let mut rows = Vec::new();
    for card in &cards {
        rows.push((*card, store.scores(&card.name, owner.as_deref()).await?));
    }
    store.close().await;
    match args.format {
        ReportFormat::Json => {
            let all: Vec<serde_json::Value> = rows
                .iter()
                .flat_map(|(_, rows)| rows.iter())
                .map(|r| {
                    serde_json::json!({
                        "scorecard": r.scorecard,
                        "entity": r.entity_ref,
                        "owner": r.owner,
                        "level": r.level,
                        "since": r.since,
                        "failing": serde_json::from_str::<serde_json::Value>(&r.failing)
                            .unwrap_or_default(),
                    })
                })
                .collect();
            output::json(&all);
        }
        ReportFormat::Csv => {
            let all: Vec<_> = rows.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
            print!("{}", surveyor_grade::report::to_csv(&all));
        }
        ReportFormat::Markdown => {
            for (card, r) in &rows {
                println!("{}", surveyor_grade::report::to_markdown(card, r));
            }
        }
        ReportFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .flat_map(|(_, r)| r.iter())
                .map(|r| {
                    vec![
                        r.scorecard.clone(),
                        output::short_ref(&r.entity_ref, None),
                        r.owner
                            .as_deref()
                            .map_or("-".into(), |o| output::short_ref(o, Some("group"))),
                        r.level.clone().unwrap_or_else(|| "-".into()),
                        surveyor_grade::report::failing_text(r),
                    ]
                })
                .collect();
            output::table(
                &["SCORECARD", "ENTITY", "OWNER", "LEVEL", "FAILING"],
                &table,
            );
            for (card, r) in &rows {
                let counts = surveyor_grade::report::levels(card, r);
                let mut parts = vec![format!("below {} {}", card.levels[0], counts[0])];
                parts.extend(
                    card.levels
                        .iter()
                        .zip(&counts[1..])
                        .map(|(l, n)| format!("{l} {n}")),
                );
                eprintln!("{}: {}", card.title, parts.join(", "));
            }
        }
    }
    if let Some(level) = &args.fail_under {
        let below: usize = rows
            .iter()
            .filter_map(|(card, r)| card.rank(level).map(|want| (card, want, r)))
            .map(|(card, want, r)| {
                r.iter()
                    .filter(|row| {
                        row.level
                            .as_deref()
                            .and_then(|l| card.rank(l))
                            .is_none_or(|got| got < want)
                    })
                    .count()
            })
            .sum();
        if below > 0 {
            eprintln!("{below} graded entities are below {level}");
            return Err(CliError::Exit(3));
        }
    }
    Ok(())
}

fn history(events: &[surveyor_store::ScoreEventRow], format: ReportFormat) -> Result<(), CliError> {
    match format {
        ReportFormat::Json => output::json(&events),
        _ => {
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.run_id.clone().unwrap_or_else(|| "-".into()),
                        e.scorecard.clone(),
                        output::short_ref(&e.entity_ref, None),
                        e.check_name.clone(),
                        if e.passed { "passes" } else { "fails" }.into(),
                        e.detail.clone(),
                    ]
                })
                .collect();
            output::table(
                &["AT", "RUN", "SCORECARD", "ENTITY", "CHECK", "NOW", "WHY"],
                &rows,
            );
        }
    }
    Ok(())
}
