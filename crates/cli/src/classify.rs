//! `surveyor classify`: classifies the Components now with the configured rules, records it,
//! and shows either the counts per facet or one Component's values with their evidence.

use std::path::Path;

use clap::Args;
use surveyor_model::classify::FACETS;

use crate::setup::{load, open};
use crate::{CliError, Format, output};

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// One Component (`component:checkout`, or `checkout`): its values and why; without it,
    /// how many Components have each value
    #[arg(value_name = "REF")]
    pub entity: Option<String>,
    /// Only this facet: tier, stack, runtime, lifecycle, domain or system
    #[arg(long, value_name = "FACET", value_parser = clap::builder::PossibleValuesParser::new(FACETS))]
    pub facet: Option<String>,
    /// Output: a table for people, or JSON for scripts
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(path: &Path, args: ClassifyArgs) -> Result<(), CliError> {
    let config = load(path)?;
    let store = open(&config).await?;
    let delta = surveyor_grade::record(&store, &config.classify, chrono::Utc::now()).await?;
    eprintln!(
        "classified: {} values given, {} changed, {} gone, {} as they were",
        delta.added, delta.updated, delta.removed, delta.unchanged
    );
    let facets: Vec<&str> = match &args.facet {
        Some(f) => vec![f.as_str()],
        None => FACETS.to_vec(),
    };
    match &args.entity {
        None => {
            let mut counts = Vec::new();
            for facet in &facets {
                for (value, n) in store.count_classifications(facet).await? {
                    counts.push((facet.to_string(), value, n));
                }
            }
            if args.format == Format::Json {
                let rows: Vec<serde_json::Value> = counts
                    .iter()
                    .map(|(f, v, n)| serde_json::json!({"facet": f, "value": v, "components": n}))
                    .collect();
                output::json(&rows);
            } else {
                let rows: Vec<Vec<String>> = counts
                    .into_iter()
                    .map(|(f, v, n)| vec![f, v, n.to_string()])
                    .collect();
                output::table(&["FACET", "VALUE", "COMPONENTS"], &rows);
            }
        }
        Some(entity) => {
            let r = surveyor_model::EntityRef::parse_with(entity, Some("component"), "default")
                .map_err(|e| CliError::Input(format!("{entity:?}: {e}")))?;
            let Some(row) = store.get_entity(&r.key()).await? else {
                return Err(CliError::Input(format!("no entity {r} in the catalog")));
            };
            if !row.kind.eq_ignore_ascii_case("component") || !row.is_live() {
                return Err(CliError::Input(format!(
                    "{r} is not a live Component: only Components are classified"
                )));
            }
            let rows: Vec<_> = store
                .classifications_of(&row.entity_ref)
                .await?
                .into_iter()
                .filter(|c| facets.contains(&c.facet.as_str()))
                .collect();
            if args.format == Format::Json {
                output::json(&surveyor_api::classification_document(&rows));
            } else {
                let mut table = Vec::new();
                for c in rows {
                    let evidence: Vec<surveyor_grade::Evidence> =
                        serde_json::from_str(&c.evidence).unwrap_or_default();
                    let why: Vec<String> = evidence
                        .iter()
                        .map(|e| format!("{}: {}", e.source, e.said))
                        .collect();
                    table.push(vec![
                        c.facet,
                        c.value,
                        if c.declared { "declared" } else { "derived" }.into(),
                        why.join("; "),
                    ]);
                }
                output::table(&["FACET", "VALUE", "HOW", "EVIDENCE"], &table);
            }
        }
    }
    store.close().await;
    Ok(())
}
