//! `surveyor copy --to URL`: the whole catalog into another database, SQLite or Postgres either
//! way: entities and tombstones, relations, the change history, runs, refused deletions,
//! observations, identity keys and aliases, findings and leases, with their keys (change
//! sequence numbers, finding ids), in one transaction on the destination.
//!
//! The destination must be an empty catalog (a new file or schema, migrated on connect) unless
//! `--force`, which replaces what it holds. Nothing else should write to the source meanwhile:
//! the copy reads one snapshot, and runs finished after it are not in the copy.

use std::path::Path;

use clap::Args;
use surveyor_store::{Store, StoreError};

use crate::CliError;
use crate::setup::load;

/// `surveyor copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The destination catalog: sqlite://path.db or postgres://user@host/db (a schema other
    /// than public: add ?options=-csearch_path%3Dname; the schema must exist)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The source catalog [default: the configuration's [catalog] database]
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// Replace what the destination holds (its rows are deleted in the copy's transaction)
    #[arg(long)]
    pub force: bool,
}

/// A URL that is not one is the user's input (exit 2); a database that fails is not.
fn runtime(what: &str, e: StoreError) -> CliError {
    match e {
        StoreError::UnsupportedUrl | StoreError::BadUrl(_) => {
            CliError::Input(format!("{what}: {e}"))
        }
        e => CliError::Runtime(anyhow::anyhow!("{what}: {e}")),
    }
}

pub async fn run(config_path: &Path, args: CopyArgs) -> Result<(), CliError> {
    let from = match args.from {
        Some(url) => url,
        None => load(config_path)?.database_url().expose().to_string(),
    };
    if from == args.to {
        return Err(CliError::Input(
            "--to names the catalog being copied".into(),
        ));
    }
    let source = Store::connect(&from)
        .await
        .map_err(|e| runtime("the source catalog", e))?;
    let dest = Store::connect(&args.to)
        .await
        .map_err(|e| runtime("the destination catalog", e))?;
    let result = source.copy_into(&dest, args.force).await;
    source.close().await;
    dest.close().await;
    let counts = match result {
        Ok(counts) => counts,
        Err(StoreError::Invalid(why)) => {
            return Err(CliError::Input(format!(
                "{why}; nothing was copied (use --force to replace it)"
            )));
        }
        Err(e) => return Err(runtime("copy failed, nothing was written", e)),
    };
    println!("{:<18} {:>10}", "TABLE", "ROWS");
    for (table, n) in &counts.tables {
        println!("{table:<18} {n:>10}");
    }
    eprintln!("copied {} rows", counts.total());
    Ok(())
}
