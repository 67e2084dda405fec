//! The subcommands. Each loads what it needs, calls the engine or the store, and prints.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use surveyor_engine::config::parse_duration;
use surveyor_engine::lease::{self, Lease};
use surveyor_engine::{RunReport, RunStatus, run_connector};
use surveyor_model::EntityRef;
use surveyor_store::{ChangeFilter, EntityFilter, PackageFilter};

use crate::output;
use crate::setup;
use crate::setup::{audit_sources, load, open, reconcile_options};
use crate::{
    ChangesArgs, Cli, CliError, Command, DocFormat, EntitiesCommand, Format, SyncArgs, registry,
};

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("surveyor.toml"));
    match cli.command {
        Command::Init { force } => init(&config_path, force),
        Command::Validate { offline } => validate(&config_path, offline).await,
        Command::Sync(args) => sync(&config_path, args).await,
        Command::Entities(cmd) => entities(&config_path, cmd).await,
        Command::Changes(args) => changes(&config_path, args).await,
        Command::Runs {
            connector,
            limit,
            format,
        } => runs(&config_path, connector, limit, format).await,
        Command::Serve { listen } => crate::serve::serve(&config_path, listen).await,
        Command::Audit(cmd) => audit(&config_path, cmd).await,
        Command::Classify(args) => crate::classify::run(&config_path, args).await,
        Command::Score(args) => crate::score::run(&config_path, args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Export(args) => crate::export::run(&config_path, args).await,
        Command::Copy(args) => crate::copy::run(&config_path, args).await,
        Command::Completions(args) => crate::tools::completions(args),
        Command::Man(args) => crate::tools::man(args),
        Command::Config(cmd) => crate::tools::config(cmd),
    }
}

const TEMPLATE: &str = r#"# surveyor configuration. Every key is documented in docs/configuration.md and docs/connectors/.
# Secrets are written as ${ENV_VAR} references; their values are never stored or logged.

[catalog]
# Where the catalog lives: "sqlite://path.db" (relative to this file) or "postgres://user@host/db".
database = "sqlite://surveyor.db"
# How long deleted entities are kept as tombstones before they are purged (s, m, h, d, w).
retention = "30d"
# A crawl that would delete more than this share of a scope's entities of one kind deletes
# nothing and fails; `surveyor sync --allow-mass-delete` overrides it once.
max_delete_ratio = 0.2
# ...but deleting this many or fewer of one kind in one scope never counts as a mass deletion.
mass_delete_floor = 2

# Entities declared in Backstage descriptor files (catalog-info.yaml format).
[[connectors]]
id = "catalog-files"
kind = "file"
# Cron schedule used by `surveyor serve` (5 fields, or 6 with seconds first).
schedule = "*/15 * * * *"
# Glob patterns relative to this file; ** crosses directories.
paths = ["catalog/**/*.yaml"]
"#;

fn init(path: &Path, force: bool) -> Result<(), CliError> {
    if path.exists() && !force {
        return Err(CliError::Input(format!(
            "{} already exists (use --force to overwrite)",
            path.display()
        )));
    }
    std::fs::write(path, TEMPLATE)
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    eprintln!(
        "wrote {}; next: `surveyor validate`, then `surveyor sync`",
        path.display()
    );
    Ok(())
}

/// Checks the file; unless `offline`, also that the database answers (reporting its
/// migrations) and what the connectors can check of their sources (file patterns that match
/// nothing). A database that does not answer fails; the rest are warnings.
async fn validate(path: &Path, offline: bool) -> Result<(), CliError> {
    let config = load(path)?;
    let base = config.base_dir();
    let mut errors = Vec::new();
    let mut built = Vec::new();
    for spec in &config.connectors {
        match registry::build(spec, &base) {
            Ok(connector) => built.push(connector),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::Input(errors.join("\n")));
    }
    // What builds but would crawl badly (a pattern matching no file) is worth saying, not
    // failing over: the files may simply not be there yet.
    for connector in built.iter().filter(|_| !offline) {
        for warning in connector.check() {
            eprintln!(
                "warning: {}: connector {:?}: {warning}",
                path.display(),
                connector.id()
            );
        }
    }
    let enabled = config.connectors.iter().filter(|c| c.enabled).count();
    if !offline {
        let state = surveyor_store::Store::inspect(config.database_url().expose())
            .await
            .map_err(|e| {
                CliError::Runtime(anyhow::anyhow!(
                    "{}",
                    setup::redact(&config, &e.to_string())
                ))
            })?;
        if !state.exists {
            println!(
                "database: {} not created yet (`surveyor sync` creates it)",
                state.target
            );
        } else if state.applied >= state.known {
            println!(
                "database: {} answers; migrations up to date ({} applied)",
                state.target, state.applied
            );
        } else {
            println!(
                "database: {} answers; {} of {} migrations applied (the next command that \
                 opens it applies the rest)",
                state.target, state.applied, state.known
            );
        }
    }
    println!(
        "{}: ok ({} connectors, {} enabled; catalog on {})",
        path.display(),
        config.connectors.len(),
        enabled,
        match config.catalog.database.expose().split(':').next() {
            Some("sqlite") => "SQLite",
            _ => "Postgres",
        }
    );
    Ok(())
}

async fn sync(path: &Path, args: SyncArgs) -> Result<(), CliError> {
    let config = load(path)?;
    for wanted in &args.connectors {
        if !config.connectors.iter().any(|c| &c.id == wanted) {
            let ids: Vec<&str> = config.connectors.iter().map(|c| c.id.as_str()).collect();
            return Err(CliError::Input(format!(
                "--connector {wanted:?}: no such connector in {} (have: {})",
                path.display(),
                ids.join(", ")
            )));
        }
    }
    let selected: Vec<_> = config
        .connectors
        .iter()
        .filter(|c| {
            if args.connectors.is_empty() {
                c.enabled
            } else {
                args.connectors.contains(&c.id)
            }
        })
        .collect();
    if selected.is_empty() {
        return Err(CliError::Input(format!(
            "{}: no enabled connectors to sync",
            path.display()
        )));
    }
    let base = config.base_dir();
    let mut connectors = Vec::new();
    for spec in &selected {
        connectors.push(registry::build(spec, &base).map_err(CliError::Input)?);
    }
    let store = open(&config).await?;
    let options = reconcile_options(&config, args.allow_mass_delete, args.dry_run);
    let mut reports = Vec::new();
    let mut failed_runs = 0;
    for c in &connectors {
        eprintln!(
            "syncing {} ({}){}",
            c.id(),
            c.kind(),
            if args.dry_run { " [dry run]" } else { "" }
        );
        // One connector's failure does not stop the others.
        match run_leased(&store, c.as_ref(), &options).await {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("{}: error: {e}", c.id());
                failed_runs += 1;
            }
        }
    }
    if !args.dry_run
        && failed_runs == 0
        && let Some(before) = ago(config.catalog.retention)
    {
        let (purged, _) = store.purge_tombstones(before).await?;
        if purged > 0 {
            eprintln!("purged {purged} tombstones older than the retention period");
        }
    }
    if !args.dry_run {
        let sources = audit_sources(&config);
        match surveyor_audit::record(&store, &sources, chrono::Utc::now()).await {
            Ok(r) => eprintln!(
                "findings: ownership {} new, {} resolved; drift {} new, {} resolved (surveyor audit ... --history)",
                r.ownership.opened, r.ownership.resolved, r.drift.opened, r.drift.resolved
            ),
            Err(e) => eprintln!("warning: could not record audit findings: {e}"),
        }
        match crate::setup::grade_catalog(&store, &config.classify, &config.scorecards).await {
            Ok(g) => eprintln!("{} (surveyor classify, surveyor score)", g.line()),
            Err(e) => eprintln!("warning: could not classify and grade the catalog: {e}"),
        }
    }
    store.close().await;
    print_sync(&reports, args.format);
    // Bad input data is 2 (fix the files); a failed, incomplete or refused crawl is 1.
    if reports.iter().any(|r| !r.problems.is_empty()) {
        return Err(CliError::Exit(2));
    }
    let incomplete = reports.iter().any(|r| {
        r.status != RunStatus::Succeeded || r.scopes.iter().any(|s| !s.status.is_complete())
    });
    if failed_runs > 0 || incomplete {
        return Err(CliError::Exit(1));
    }
    Ok(())
}

fn print_sync(reports: &[RunReport], format: Format) {
    if format == Format::Json {
        output::json(&serde_json::to_value(reports).unwrap_or(Value::Null));
        return;
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let mut row = vec![
                r.connector.clone(),
                r.status.as_str().to_string() + if r.dry_run { " (dry run)" } else { "" },
                r.counts.observations.observed.to_string(),
            ];
            row.extend(output::changes(&r.counts.entities).map(|(_, n)| n.to_string()));
            row.push(r.counts.entities.unchanged.to_string());
            row.push(
                r.scopes
                    .iter()
                    .map(|s| s.refused.len())
                    .sum::<usize>()
                    .to_string(),
            );
            row
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
            "UNCHANGED",
            "REFUSED",
        ],
        &rows,
    );
    if reports.len() > 1 {
        let mut line = String::new();
        let _ = output::write_totals(&mut line, &surveyor_engine::EntityCounts::of_sync(reports));
        println!("Changes: {line}");
    }
    for r in reports {
        output::run_notes(&r.connector, r, output::Notes::Sync);
    }
}

pub(crate) fn parse_ref(input: &str, default_kind: Option<&str>) -> Result<EntityRef, CliError> {
    EntityRef::parse_with(input, default_kind, "default")
        .map_err(|e| CliError::Input(e.to_string()))
}

async fn entities(path: &Path, cmd: EntitiesCommand) -> Result<(), CliError> {
    let config = load(path)?;
    let store = open(&config).await?;
    match cmd {
        EntitiesCommand::List {
            kind,
            namespace,
            owner,
            depends_on,
            tier,
            stack,
            runtime,
            include_deleted,
            format,
        } => {
            if let Some(k) = &kind {
                check_kind(&store, k).await?;
            }
            let classified: Vec<(String, String)> =
                [("tier", &tier), ("stack", &stack), ("runtime", &runtime)]
                    .into_iter()
                    .filter_map(|(f, v)| v.as_ref().map(|v| (f.to_string(), v.clone())))
                    .collect();
            for (facet, value) in &classified {
                check_classified(&store, &config.classify, facet, value).await?;
            }
            let owner = owner
                .map(|o| parse_ref(&o, Some("group")).map(|r| r.key()))
                .transpose()?;
            let rows = store
                .list_entities(&EntityFilter {
                    kind,
                    namespace,
                    owner,
                    include_deleted,
                    depends_on: depends_on.clone(),
                    classified,
                    ..Default::default()
                })
                .await?;
            if format == Format::Json {
                let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
                let relations = store.relations_of_many(&keys).await?;
                let items: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        let own = surveyor_api::relations_starting_at(&relations, &r.entity_ref);
                        surveyor_api::entity_document(r, own)
                    })
                    .collect();
                output::json(&Value::Array(items));
            } else {
                let keys: Vec<String> = rows.iter().map(|r| r.entity_ref.clone()).collect();
                let mut tiers: std::collections::HashMap<String, String> =
                    std::collections::HashMap::new();
                for c in store.classifications_of_many(&keys).await? {
                    if c.facet == "tier" {
                        tiers.insert(c.entity_ref, c.value);
                    }
                }
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|e| {
                        let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                        let mut row = vec![
                            output::short_ref(&e.display_ref, None),
                            body["spec"]["owner"]
                                .as_str()
                                .map_or("-".into(), |o| output::short_ref(o, Some("group"))),
                            body["spec"]["type"].as_str().unwrap_or("-").to_string(),
                            body["spec"]["lifecycle"]
                                .as_str()
                                .unwrap_or("-")
                                .to_string(),
                            tiers
                                .get(&e.entity_ref)
                                .map_or_else(|| "-".into(), Clone::clone),
                            if e.is_live() {
                                "live".into()
                            } else {
                                "deleted".into()
                            },
                        ];
                        if let Some(p) = &depends_on {
                            row.push(requirements(&body, p));
                        }
                        row
                    })
                    .collect();
                let mut header = vec!["REF", "OWNER", "TYPE", "LIFECYCLE", "TIER", "STATUS"];
                if depends_on.is_some() {
                    header.push("REQUIREMENT");
                }
                output::table(&header, &table);
            }
        }
        EntitiesCommand::Get { entity, format } => {
            let r = parse_ref_in(&store, &entity).await?;
            let Some(row) = store.get_entity(&r.key()).await? else {
                return Err(CliError::Input(format!("no entity {r} in the catalog")));
            };
            let relations = store.relations_of(&row.entity_ref).await?;
            let mut doc = surveyor_api::entity_document(&row, &relations);
            if row.kind.eq_ignore_ascii_case("component") {
                let classes = store.classifications_of(&row.entity_ref).await?;
                doc["surveyor"]["classification"] = surveyor_api::classification_document(&classes);
            }
            match format {
                DocFormat::Json => output::json(&doc),
                DocFormat::Yaml => print!("{}", yaml_serde::to_string(&doc).unwrap_or_default()),
            }
        }
    }
    store.close().await;
    Ok(())
}

/// A classification filter's value must be one the catalog has (or, for a tier, one the rules
/// can give): a typo gets the values there are (exit 2), never an empty list that looks like an
/// answer.
async fn check_classified(
    store: &surveyor_store::Store,
    rules: &surveyor_model::classify::ClassifyRules,
    facet: &str,
    value: &str,
) -> Result<(), CliError> {
    let mut known = store.count_classifications(facet).await?;
    if facet == "tier" {
        for tier in rules
            .tiers
            .iter()
            .map(|r| &r.tier)
            .chain([&rules.default_tier])
        {
            if !known.iter().any(|(v, _)| v == tier) {
                known.push((tier.clone(), 0));
            }
        }
    }
    let wanted = value.to_ascii_lowercase();
    if known
        .iter()
        .any(|(v, _)| *v == wanted || v.starts_with(&format!("{wanted}/")))
    {
        return Ok(());
    }
    Err(CliError::Input(if known.is_empty() {
        format!(
            "--{facet} {value}: nothing is classified yet; run `surveyor sync` (it classifies \
             the Components after each sync)"
        )
    } else {
        let values: Vec<&str> = known.iter().map(|(v, _)| v.as_str()).collect();
        format!(
            "--{facet} {value}: no Component has it; the catalog has {}",
            values.join(", ")
        )
    }))
}

/// A ref given on the command line; one without a kind is answered with the refs the catalog
/// has by that name (`did you mean component:billing-bot-30?`).
async fn parse_ref_in(store: &surveyor_store::Store, input: &str) -> Result<EntityRef, CliError> {
    match EntityRef::parse_with(input, None, "default") {
        Ok(r) => Ok(r),
        Err(surveyor_model::RefError::MissingKind(_)) => {
            let found = refs_named(store, input).await?;
            Err(CliError::Input(if found.is_empty() {
                format!(
                    "{input:?} needs a kind (kind:name, as in component:{input}), and the catalog \
                     has no entity of that name"
                )
            } else {
                format!(
                    "{input:?} needs a kind; did you mean {}?",
                    found.join(" or ")
                )
            }))
        }
        Err(e) => Err(CliError::Input(e.to_string())),
    }
}

/// Kinds `entities list --kind` may name: the model's and whatever the catalog holds.
async fn known_kinds(store: &surveyor_store::Store) -> Result<Vec<String>, CliError> {
    let mut kinds: Vec<String> = surveyor_model::entity::KNOWN_KINDS
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();
    let all = EntityFilter {
        include_deleted: true,
        ..Default::default()
    };
    for (kind, _) in store.facet_counts("kind", &all).await? {
        kinds.push(kind.to_ascii_lowercase());
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// An unknown `--kind` is a typo, not an empty result: exit 2 naming the nearest kind.
async fn check_kind(store: &surveyor_store::Store, kind: &str) -> Result<(), CliError> {
    let kinds = known_kinds(store).await?;
    if kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
        return Ok(());
    }
    Err(CliError::Input(match did_you_mean(kind, &kinds) {
        Some(near) => format!("unknown kind {kind}; did you mean {near}?"),
        None => format!("unknown kind {kind}; known kinds: {}", kinds.join(", ")),
    }))
}

/// The candidate closest to `input` when it is close enough to be a typo.
fn did_you_mean<'a>(input: &str, candidates: &'a [String]) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&input, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The catalog's refs (short form) of entities named `name` (`ns/name` too), any kind: what a
/// ref without its kind most likely meant.
async fn refs_named(store: &surveyor_store::Store, name: &str) -> Result<Vec<String>, CliError> {
    let (namespace, bare) = name.split_once('/').unwrap_or(("default", name));
    let rows = store
        .list_entities(&EntityFilter {
            text: Some(bare.to_string()),
            limit: Some(500),
            ..Default::default()
        })
        .await?;
    Ok(rows
        .iter()
        .filter_map(|e| EntityRef::parse_with(&e.display_ref, None, "default").ok())
        .filter(|r| {
            r.name().eq_ignore_ascii_case(bare) && r.namespace().eq_ignore_ascii_case(namespace)
        })
        .map(|r| output::short_ref(&r.to_string(), None))
        .collect())
}

/// The entity's dependencies on `package`, for the REQUIREMENT column: `^18.2.0 (package.json,
/// runtime)`, several joined by `; `, each led by its ecosystem when the filter named none.
fn requirements(body: &Value, package: &PackageFilter) -> String {
    let Some(deps) = body["spec"]["packageDependencies"].as_array() else {
        return "-".into();
    };
    let found: Vec<String> = deps
        .iter()
        .filter(|d| package.matches(d))
        .map(|d| {
            let field = |k: &str| d.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let mut text = String::new();
            if package.ecosystem.is_none() {
                text.push_str(field("ecosystem").unwrap_or("?"));
                text.push(' ');
            }
            text.push_str(field("requirement").unwrap_or("*"));
            let place: Vec<&str> = [field("file"), field("scope")]
                .into_iter()
                .flatten()
                .collect();
            if !place.is_empty() {
                text.push_str(&format!(" ({})", place.join(", ")));
            }
            text
        })
        .collect();
    if found.is_empty() {
        "-".into()
    } else {
        found.join("; ")
    }
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let age = parse_duration(s).map_err(|_| {
        CliError::Input(format!(
            "--since {s:?}: expected an RFC 3339 time (2026-01-31T12:00:00Z) or an age (90m, 12h, 7d)"
        ))
    })?;
    ago(age).ok_or_else(|| CliError::Input(format!("--since {s:?}: too far in the past")))
}

/// `now - age`, or None when that is before the calendar's start.
fn ago(age: std::time::Duration) -> Option<DateTime<Utc>> {
    Utc::now().checked_sub_signed(chrono::Duration::from_std(age).ok()?)
}

async fn changes(path: &Path, args: ChangesArgs) -> Result<(), CliError> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let config = load(path)?;
    let store = open(&config).await?;
    let entity_uid = match &args.entity {
        None => None,
        Some(e) => {
            let r = parse_ref_in(&store, e).await?;
            match store.resolve_uid(&r.key()).await? {
                Some(uid) => Some(uid),
                None => {
                    return Err(CliError::Input(format!(
                        "no entity {r} in the catalog or its history"
                    )));
                }
            }
        }
    };
    let mut rows = store
        .list_changes(&ChangeFilter {
            since,
            entity_uid,
            ..Default::default()
        })
        .await?;
    let total = rows.len();
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    if !args.all && rows.len() > limit {
        rows.drain(..rows.len() - limit);
    }
    store.close().await;
    if args.format == Format::Json {
        output::json(&serde_json::to_value(&rows).unwrap_or(Value::Null));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let what = match (&c.previous_ref, c.op) {
                (Some(prev), _) => format!(
                    "{} -> {}",
                    output::short_ref(prev, None),
                    output::short_ref(&c.entity_ref, None)
                ),
                (None, _) => output::short_ref(&c.entity_ref, None),
            };
            let detail = summarize_patch(&c.patch, c.op);
            vec![
                c.seq.to_string(),
                c.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                c.op.to_string(),
                what,
                c.source.clone(),
                detail,
            ]
        })
        .collect();
    output::table(
        &["SEQ", "AT (UTC)", "OP", "ENTITY", "SOURCE", "FIELDS"],
        &table,
    );
    if rows.len() < total {
        eprintln!(
            "the last {} of {total} changes (--limit N for more, --all for every one)",
            rows.len()
        );
    }
    Ok(())
}

/// The paths a patch touches, short enough for a table cell.
fn summarize_patch(patch: &Value, op: surveyor_store::ChangeOp) -> String {
    if matches!(
        op,
        surveyor_store::ChangeOp::Created | surveyor_store::ChangeOp::Deleted
    ) {
        return String::new();
    }
    let paths: Vec<&str> = patch
        .as_array()
        .map(|ops| ops.iter().filter_map(|o| o["path"].as_str()).collect())
        .unwrap_or_default();
    let mut readable: Vec<String> = paths.iter().map(|p| output::readable_pointer(p)).collect();
    readable.dedup();
    // The table cuts what does not fit; `--wide` or `--format json` show every path.
    readable.join(", ")
}

async fn runs(
    path: &Path,
    connector: Option<String>,
    limit: i64,
    format: Format,
) -> Result<(), CliError> {
    let config = load(path)?;
    let store = open(&config).await?;
    let rows = store.list_runs(connector.as_deref(), limit).await?;
    store.close().await;
    if format == Format::Json {
        output::json(&serde_json::to_value(&rows).unwrap_or(Value::Null));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.connector.clone(),
                r.status.clone(),
                r.counts
                    .as_ref()
                    .map(output::counts_cell)
                    .unwrap_or_default(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &["STARTED (UTC)", "CONNECTOR", "STATUS", "COUNTS", "ERROR"],
        &table,
    );
    if !rows.is_empty() && format == Format::Table {
        eprintln!("COUNTS: +created ~updated -deleted >renamed ^restored =unchanged");
    }
    Ok(())
}

/// Stored findings with first seen, last seen and resolved times (`--history`).
fn print_history(
    rows: Vec<surveyor_store::FindingRow>,
    cmd: &crate::AuditCommand,
) -> Result<(), CliError> {
    use crate::{AuditCommand, ReportFormat};
    let args = match cmd {
        AuditCommand::Ownership(a) | AuditCommand::Drift(a) => a,
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|f| {
            args.kind.as_deref().is_none_or(|k| {
                f.entity_ref
                    .split(':')
                    .next()
                    .is_some_and(|fk| fk.eq_ignore_ascii_case(k))
            })
        })
        .collect();
    let open = rows.iter().filter(|f| f.resolved_at.is_none()).count();
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Machine formats keep the stored text; the table shortens it as other tables do.
    let cells = |f: &surveyor_store::FindingRow| {
        vec![
            f.rule.clone(),
            f.entity_ref.clone(),
            f.severity.clone(),
            f.message.clone(),
            time(f.first_seen),
            time(f.last_seen),
            f.resolved_at.map(time).unwrap_or_else(|| "open".into()),
        ]
    };
    let table_time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let table_cells = |f: &surveyor_store::FindingRow| {
        vec![
            f.rule.clone(),
            output::short_ref(&f.entity_ref, None),
            f.severity.clone(),
            output::readable_text(&f.message),
            table_time(f.first_seen),
            table_time(f.last_seen),
            f.resolved_at
                .map(table_time)
                .unwrap_or_else(|| "open".into()),
        ]
    };
    const HEADER: [&str; 7] = [
        "RULE",
        "ENTITY",
        "SEVERITY",
        "FINDING",
        "FIRST SEEN",
        "LAST SEEN",
        "RESOLVED",
    ];
    match args.format {
        ReportFormat::Json => output::json(&json!({ "findings": rows })),
        ReportFormat::Table => {
            let table: Vec<Vec<String>> = rows.iter().map(table_cells).collect();
            let mut header = HEADER;
            header[4] = "FIRST SEEN (UTC)";
            header[5] = "LAST SEEN (UTC)";
            output::table(&header, &table);
            eprintln!("{} findings, {open} open", rows.len());
        }
        ReportFormat::Csv => {
            let mut out = HEADER
                .map(|h| h.to_ascii_lowercase().replace(' ', "_"))
                .join(",");
            out.push('\n');
            for f in &rows {
                out.push_str(
                    &cells(f)
                        .iter()
                        .map(|c| csv_field(c))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                out.push('\n');
            }
            print!("{out}");
        }
        ReportFormat::Markdown => {
            let title = match cmd {
                AuditCommand::Ownership(_) => "Ownership findings over time",
                AuditCommand::Drift(_) => "Drift findings over time",
            };
            let mut out = format!(
                "# {title}\n\n{} findings, {open} open.\n\n| {} |\n|{}\n",
                rows.len(),
                HEADER.map(|h| h.to_ascii_lowercase()).join(" | "),
                " --- |".repeat(HEADER.len())
            );
            for f in &rows {
                let row: Vec<String> = cells(f)
                    .iter()
                    .map(|c| c.replace('|', "\\|").replace('\n', " "))
                    .collect();
                out.push_str(&format!("| {} |\n", row.join(" | ")));
            }
            print!("{out}");
        }
    }
    if args.fail_on_gaps && open > 0 {
        return Err(CliError::Exit(3));
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The EVIDENCE cell: what each source said, leaving out what the FINDING cell already says.
fn evidence_cell(f: &surveyor_audit::Finding) -> String {
    let parts: Vec<String> = f
        .evidence
        .iter()
        .filter(|e| !e.said.is_empty() && !f.message.contains(e.said.as_str()))
        .map(|e| format!("{}: {}", e.source, output::readable_text(&e.said)))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

async fn audit(path: &Path, cmd: crate::AuditCommand) -> Result<(), CliError> {
    use crate::{AuditCommand, ReportFormat};
    let config = load(path)?;
    let sources = audit_sources(&config);
    let store = open(&config).await?;
    let (audit_name, history) = match &cmd {
        AuditCommand::Ownership(a) => ("ownership", a.history),
        AuditCommand::Drift(a) => ("drift", a.history),
    };
    if history {
        let rows = store.findings(audit_name, true).await;
        store.close().await;
        return print_history(rows?, &cmd);
    }
    let (title, args, findings) = match cmd {
        AuditCommand::Ownership(a) => (
            "Ownership audit",
            a,
            surveyor_audit::ownership(&store, &sources).await?,
        ),
        AuditCommand::Drift(a) => (
            "Drift audit",
            a,
            surveyor_audit::drift(&store, &sources).await?,
        ),
    };
    store.close().await;
    let owner = args
        .owner
        .as_deref()
        .map(|o| {
            surveyor_model::EntityRef::parse_with(o, Some("group"), "default")
                .map(|r| r.key())
                .map_err(|e| CliError::Input(format!("--owner: {e}")))
        })
        .transpose()?;
    let findings: Vec<surveyor_audit::Finding> = findings
        .into_iter()
        .filter(|f| {
            args.kind
                .as_deref()
                .is_none_or(|k| f.kind.eq_ignore_ascii_case(k))
        })
        .filter(|f| {
            owner.as_deref().is_none_or(|o| {
                f.owner
                    .as_deref()
                    .is_some_and(|fo| fo.eq_ignore_ascii_case(o))
            })
        })
        .collect();
    match args.format {
        ReportFormat::Json => {
            /// The report, serialised from the findings as they are (no JSON tree of them).
            #[derive(serde::Serialize)]
            struct Report<'f> {
                findings: &'f [surveyor_audit::Finding],
                summary: std::collections::BTreeMap<
                    String,
                    std::collections::BTreeMap<&'static str, usize>,
                >,
            }
            output::json(&Report {
                findings: &findings,
                summary: surveyor_audit::summary(&findings),
            })
        }
        ReportFormat::Csv => print!("{}", surveyor_audit::to_csv(&findings)),
        ReportFormat::Markdown => print!("{}", surveyor_audit::to_markdown(title, &findings)),
        ReportFormat::Table => {
            let rows: Vec<Vec<String>> = findings
                .iter()
                .map(|f| {
                    vec![
                        f.severity.as_str().to_string(),
                        f.rule.to_string(),
                        output::short_ref(&f.entity, None),
                        output::readable_text(&f.message),
                        evidence_cell(f),
                    ]
                })
                .collect();
            output::table(
                &["SEVERITY", "RULE", "ENTITY", "FINDING", "EVIDENCE"],
                &rows,
            );
            eprintln!("{} findings", findings.len());
        }
    }
    if args.fail_on_gaps && !findings.is_empty() {
        return Err(CliError::Exit(3));
    }
    Ok(())
}

/// Runs one connector under its lease, as `serve` does, so that a sync never runs beside
/// another process's run of the same connector (nor marks that run abandoned). A dry run
/// writes nothing and needs no lease.
async fn run_leased(
    store: &surveyor_store::Store,
    connector: &dyn surveyor_model::Connector,
    options: &surveyor_engine::ReconcileOptions,
) -> anyhow::Result<RunReport> {
    if options.dry_run {
        return Ok(run_connector(store, connector, options).await?);
    }
    let id = connector.id();
    let Some(mut lease) = Lease::take(
        store,
        id,
        &lease::this_process(),
        chrono::Utc::now(),
        lease::default_ttl(store.backend()),
    )
    .await?
    else {
        let who = match lease::holder_of(store, id).await {
            Some(l) => format!(
                "{} has been running it since {} (its lease runs to {} unless renewed)",
                l.holder,
                l.taken_at.unwrap_or(l.tick).to_rfc3339(),
                l.expires_at.to_rfc3339()
            ),
            None => "another process is running it".into(),
        };
        anyhow::bail!("not run: {who}; try again when that run is over");
    };
    let result = tokio::select! {
        r = run_connector(store, connector, options) => r.map_err(anyhow::Error::from),
        reason = lease.lost() => Err(anyhow::anyhow!("stopped: {reason}")),
    };
    lease.release().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_nearest_kind_and_nonsense_finds_none() {
        let kinds: Vec<String> = ["api", "component", "group", "resource", "system", "user"]
            .map(String::from)
            .to_vec();
        assert_eq!(did_you_mean("compnent", &kinds), Some("component"));
        assert_eq!(did_you_mean("Grop", &kinds), Some("group"));
        assert_eq!(did_you_mean("sytsem", &kinds), Some("system"));
        assert_eq!(did_you_mean("pipeline", &kinds), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
