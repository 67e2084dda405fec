//! What the subcommands share to get going: the configuration, the catalog it names, the
//! reconcile options, audit sources and API settings it implies, and the stop signal of the
//! long-running commands. Every command module uses this one; it uses none of them.

use std::path::Path;
use std::sync::Arc;

use surveyor_api::{ApiConfig, ServeOptions};
use surveyor_engine::ReconcileOptions;
use surveyor_engine::config::Config;
use surveyor_store::Store;

use crate::{CliError, registry};

pub(crate) fn load(path: &Path) -> Result<Config, CliError> {
    // Said plainly: a file that is not there has no line or column to point at.
    if matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        return Err(CliError::Input(format!(
            "no config file at {} (run `surveyor init` to create one, or pass --config)",
            path.display()
        )));
    }
    Config::load(path, &registry::kinds()).map_err(|e| CliError::Input(e.to_string()))
}

pub(crate) async fn open(config: &Config) -> Result<Store, CliError> {
    Store::connect(config.database_url().expose())
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("{}", redact(config, &e.to_string()))))
}

/// `message` with the value of every `${NAME}` the config file references and the database
/// URL contains written back as `${NAME}`: a store error names the SQLite path or Postgres
/// host, which may have come from a variable that holds a secret. Values under 4 characters
/// are left alone: they would match inside ordinary words, and hide nothing.
pub(crate) fn redact(config: &Config, message: &str) -> String {
    let Ok(text) = std::fs::read_to_string(&config.file) else {
        return message.to_string();
    };
    let url = config.database_url();
    let mut out = message.to_string();
    for (i, _) in text.match_indices("${") {
        let rest = &text[i + 2..];
        let Some(end) = rest.find('}') else { continue };
        let name = &rest[..end];
        if let Ok(value) = std::env::var(name)
            && value.chars().count() >= 4
            && url.expose().contains(&value)
        {
            out = out.replace(&value, &format!("${{{name}}}"));
        }
    }
    out
}

/// The reconcile options the configuration sets; `allow_mass_delete` and `dry_run` come from
/// the command line (`surveyor sync`) and are off for scheduled runs.
pub(crate) fn reconcile_options(
    config: &Config,
    allow_mass_delete: bool,
    dry_run: bool,
) -> ReconcileOptions {
    ReconcileOptions {
        max_delete_ratio: config.catalog.max_delete_ratio,
        mass_delete_floor: config.catalog.mass_delete_floor,
        allow_mass_delete,
        dry_run,
        source_priority: config.source_priority(),
        identity: Arc::new(config.identity.clone()),
        merge: std::sync::Arc::new(config.merge.clone()),
    }
}

/// What the audits need of the configuration.
pub(crate) fn audit_sources(config: &Config) -> surveyor_audit::Sources {
    surveyor_audit::Sources {
        kinds: config
            .connectors
            .iter()
            .map(|c| (c.id.clone(), c.kind.clone()))
            .collect(),
        cosmetic: config.audit.cosmetic,
    }
}

/// The `[server]` settings the API enforces.
pub(crate) fn api_config(config: &Config) -> ApiConfig {
    ApiConfig {
        read_tokens: config.server.read_tokens.clone(),
        trigger_tokens: config.server.trigger_tokens.clone(),
        cors_origins: config.server.cors_origins.clone(),
        max_page_size: config.server.max_page_size,
        audit_cosmetic: config.audit.cosmetic,
        scorecards: config.scorecards.clone(),
        max_expensive_requests: Some(
            config
                .server
                .max_expensive_requests
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or_else(surveyor_api::default_max_expensive_requests),
        ),
        body_read_timeout: config.server.header_read_timeout,
        console: config.server.console,
    }
}

/// The `[server]` bounds on connections: timeouts and the cap (derived when not set).
pub(crate) fn serve_options(config: &Config) -> ServeOptions {
    ServeOptions {
        header_read_timeout: config.server.header_read_timeout,
        idle_timeout: config.server.idle_timeout,
        max_connections: config
            .server
            .max_connections
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(surveyor_api::default_max_connections),
        ..ServeOptions::default()
    }
}

/// Ctrl-C, or SIGTERM where there is one.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// What grading the catalog after a sync changed.
pub(crate) struct Graded {
    pub classified: surveyor_store::ClassificationsDelta,
    pub scored: std::collections::BTreeMap<String, surveyor_store::ScoresDelta>,
}

/// After a sync (and after the audits, whose findings scorecards read): classifies the
/// Components, then grades the scorecards, which may apply to a tier. Events of checks that
/// turned name the newest run.
pub(crate) async fn grade_catalog(
    store: &Store,
    classify: &surveyor_model::classify::ClassifyRules,
    scorecards: &[surveyor_model::score::Scorecard],
) -> Result<Graded, surveyor_store::StoreError> {
    let now = chrono::Utc::now();
    let classified = surveyor_grade::record(store, classify, now).await?;
    let run_id = store
        .list_runs(None, 1)
        .await?
        .into_iter()
        .next()
        .map(|r| r.id);
    let scored = surveyor_grade::score::record(store, scorecards, now, run_id.as_deref()).await?;
    Ok(Graded { classified, scored })
}

impl Graded {
    /// One line for people: `classification: 3 values given, ...; scorecards: readiness 2 checks
    /// failing, 1 passing again`.
    pub(crate) fn line(&self) -> String {
        let c = &self.classified;
        let mut out = format!(
            "classification: {} values given, {} changed, {} gone",
            c.added, c.updated, c.removed
        );
        if !self.scored.is_empty() {
            let cards: Vec<String> = self
                .scored
                .iter()
                .map(|(name, d)| {
                    format!(
                        "{name} {} graded, {} checks now failing, {} now passing",
                        d.graded, d.turned_failing, d.turned_passing
                    )
                })
                .collect();
            out.push_str(&format!("; scorecards: {}", cards.join("; ")));
        }
        out
    }
}
