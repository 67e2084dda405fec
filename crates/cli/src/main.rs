//! `surveyor`: the command-line tool. Parses arguments, loads `surveyor.toml`, wires connector
//! kinds to their crates, and prints results (tables for people, JSON for scripts).

mod classify;
mod commands;
mod copy;
mod demo;
mod export;
mod output;
mod registry;
mod schema;
mod score;
mod serve;
mod setup;
mod telemetry;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use surveyor_store::PackageFilter;

/// Keeps a software catalog true by itself: crawls your tools, reconciles what it finds into
/// a SQLite or Postgres catalog with full change history, and never deletes on a failed crawl.
#[derive(Debug, Parser)]
#[command(
    name = "surveyor",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 ok; 1 runtime failure (a failed crawl, a refused mass deletion, \
                  an unreachable database); 2 bad input (configuration, arguments, descriptors); \
                  3 audit findings with --fail-on-gaps or --fail-on-findings.\n\
                  Results go to stdout, progress and errors to stderr."
)]
pub struct Cli {
    /// Configuration file [default: ./surveyor.toml]
    #[arg(
        long,
        short,
        global = true,
        help_heading = GLOBAL,
        env = "SURVEYOR_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Log level for messages on stderr (error, warn, info, debug, trace) [default: warn;
    /// info for `serve`, which logs a line per run]
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SURVEYOR_LOG",
        value_name = "LEVEL"
    )]
    pub log: Option<String>,

    /// Log lines as text for people or JSON for log collectors
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SURVEYOR_LOG_FORMAT",
        value_enum,
        default_value_t = telemetry::LogFormat::Text
    )]
    pub log_format: telemetry::LogFormat,

    /// Print tables whole; by default they fit 120 columns, long cells cut with `…`
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub wide: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The help section of the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented surveyor.toml to start from
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration and every connector's settings, that the database answers
    /// and which migrations it has, and that the file connectors' patterns match files
    Validate {
        /// Check the file only: no database connection, no look at the file connectors' files
        #[arg(long)]
        offline: bool,
    },
    /// Crawl the configured connectors once and reconcile into the catalog
    Sync(SyncArgs),
    /// List or show catalog entities
    #[command(subcommand)]
    Entities(EntitiesCommand),
    /// Show the catalog's change history
    Changes(ChangesArgs),
    /// Audit the catalog: ownership gaps, or drift between sources
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Classify the Components from evidence (tier, stack, runtime, lifecycle, domain, system)
    /// with the configured rules, and show the counts or one Component's values and why
    ///
    /// `surveyor sync` and `surveyor serve` classify after each sync; this command does it now,
    /// so a change to `[classify]` shows at once.
    Classify(classify::ClassifyArgs),
    /// Grade the catalog against the scorecards in surveyor.toml: each entity's level, the
    /// checks it fails, the roll-up per team; `--fail-under LEVEL` exits 3 below it
    ///
    /// `surveyor sync` and `surveyor serve` grade after each sync; this command does it now.
    Score(score::ScoreArgs),
    /// Run as a service: sync each connector on its schedule and serve the HTTP API
    Serve {
        /// Address to listen on [default: [server] listen, or 127.0.0.1:7878]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Run the whole product on a simulated org: fake APIs, real connectors, the API, no tokens
    Demo(demo::DemoArgs),
    /// Show recent runs
    Runs {
        /// Only runs of this connector
        #[arg(long, value_name = "ID")]
        connector: Option<String>,
        /// At most this many runs (the most recent)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Output: a table for people, or JSON for scripts
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write the live catalog as Backstage descriptor files (DIR/<namespace>/<kind>/<name>.yaml)
    Export(export::ExportArgs),
    /// Copy the whole catalog, history included, into another database (SQLite or Postgres)
    Copy(copy::CopyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(tools::CompletionsArgs),
    /// Print the man page, or write one per subcommand into a directory
    Man(tools::ManArgs),
    /// About the configuration file
    #[command(subcommand)]
    Config(tools::ConfigCommand),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only these connectors (repeatable); default: every enabled connector
    #[arg(long = "connector", value_name = "ID")]
    pub connectors: Vec<String>,
    /// Show what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Let this run delete more than `max_delete_ratio` of a scope (once)
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Output: a table for people, or JSON for scripts
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum EntitiesCommand {
    /// List entities, in ref order
    List {
        /// Only this kind (component, group, ...)
        #[arg(long)]
        kind: Option<String>,
        /// Only this namespace
        #[arg(long)]
        namespace: Option<String>,
        /// Only entities owned by this ref (`team-a` means `group:default/team-a`)
        #[arg(long)]
        owner: Option<String>,
        /// Only entities that depend on this package (per `spec.packageDependencies`)
        ///
        /// ECOSYSTEM is one of cargo, npm, go, pypi, maven; without it, the package matches in
        /// any ecosystem. Only a known ecosystem before the first `:` is split off, so Maven
        /// coordinates keep their own colon. Package names are compared exactly. The table
        /// gains a REQUIREMENT column: each matching requirement, with its file and scope.
        ///
        /// Examples:
        ///   --depends-on npm:react
        ///   --depends-on serde                  (any ecosystem)
        ///   --depends-on maven:org.apache.logging.log4j:log4j-core
        ///   --depends-on go:github.com/spf13/cobra
        #[arg(
            long,
            value_name = "[ECOSYSTEM:]PACKAGE",
            value_parser = parse_depends_on,
            verbatim_doc_comment
        )]
        depends_on: Option<PackageFilter>,
        /// Only Components of this tier (`tier-1`), as classification gave it after the last
        /// sync (`surveyor classify` lists the tiers and why each Component has its own)
        #[arg(long, value_name = "TIER")]
        tier: Option<String>,
        /// Only Components of this stack: a language (`typescript`) or a language and
        /// framework (`java/spring-boot`)
        #[arg(long, value_name = "STACK")]
        stack: Option<String>,
        /// Only Components whose workloads run on this runtime (`node`, `jvm`, `python`)
        #[arg(long, value_name = "RUNTIME")]
        runtime: Option<String>,
        /// Include deleted entities (tombstones)
        #[arg(long)]
        include_deleted: bool,
        /// Output: a table for people, or JSON for scripts
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one entity with its relations and which source set it
    Get {
        /// Entity ref: kind:namespace/name (namespace defaults to `default`)
        entity: String,
        /// Output: YAML (as a descriptor would be written) or JSON
        #[arg(long, value_enum, default_value_t = DocFormat::Yaml)]
        format: DocFormat,
    },
}

/// The package ecosystems `spec.packageDependencies` uses, as written there.
const ECOSYSTEMS: [&str; 5] = ["cargo", "npm", "go", "pypi", "maven"];

/// `--depends-on`: `ECOSYSTEM:PACKAGE` when the text before the first `:` is a known ecosystem
/// (in any case), otherwise the whole text is a package in any ecosystem
/// (`org.apache.logging.log4j:log4j-core`).
fn parse_depends_on(s: &str) -> Result<PackageFilter, String> {
    let (ecosystem, package) = match s.split_once(':') {
        Some((prefix, rest)) if ECOSYSTEMS.iter().any(|e| e.eq_ignore_ascii_case(prefix)) => {
            (Some(prefix.to_ascii_lowercase()), rest)
        }
        _ => (None, s),
    };
    if package.trim().is_empty() {
        return Err(format!(
            "no package name in {s:?} (expected PACKAGE or ECOSYSTEM:PACKAGE, ECOSYSTEM one of {})",
            ECOSYSTEMS.join(", ")
        ));
    }
    Ok(PackageFilter {
        ecosystem,
        package: package.to_string(),
    })
}

#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Only changes at or after this time: RFC 3339 (2026-01-31T12:00:00Z) or an age (90m, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only the history of this entity (follows renames)
    #[arg(long, value_name = "REF")]
    pub entity: Option<String>,
    /// At most this many changes, the most recent
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Every change, however many (overrides --limit)
    #[arg(long)]
    pub all: bool,
    /// Output: a table for people, or JSON for scripts
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Ownership gaps: no owner, an owner that is nobody, an empty team, a departed or
    /// deactivated person, no on-call, disputed owners, an owner only a Jira lead names
    Ownership(AuditArgs),
    /// Drift: sources that disagree, declarations nothing discovers, workloads and services
    /// nothing else claims, components no repository knows
    #[command(
        mut_arg("format", |a| a.help(
            "Output: a table, JSON, CSV, or a Markdown report (drift counts per owner, then each finding)"
        )),
        mut_arg("fail_on_gaps", |a| a
            .long("fail-on-findings")
            .alias("fail-on-gaps")
            .help("Exit 3 when there is drift (for CI gates)")),
        mut_arg("history", |a| a.help(
            "The recorded drift findings instead, resolved ones too, with first seen, last \
             seen and resolved times (recorded by every `sync` and by `serve` after runs)"
        )),
    )]
    Drift(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Output: a table, JSON, CSV, or a Markdown report with a summary per owner
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Only entities of this kind
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only entities owned by this ref (`team-a` means `group:default/team-a`)
    #[arg(long, value_name = "REF")]
    pub owner: Option<String>,
    /// Exit 3 when there are ownership gaps (for CI gates)
    #[arg(long)]
    pub fail_on_gaps: bool,
    /// The recorded ownership findings instead, resolved ones too, with first seen, last seen and
    /// resolved times (recorded by every `sync` and by `serve` after runs)
    #[arg(long)]
    pub history: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    Yaml,
    Json,
}

/// A command whose reader went away (`surveyor changes | head -1`) ends as Unix tools do,
/// quietly, rather than panicking on the failed write. The servers keep Rust's default: a
/// client that hangs up is an error on its connection, never the end of the process.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread or handler exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Errors that decide the exit code: bad input is 2, anything else 1.
#[derive(Debug)]
pub enum CliError {
    /// The user's input (config, arguments, data) is wrong; the message says where.
    Input(String),
    /// Something failed at run time.
    Runtime(anyhow::Error),
    /// The command printed its own report and only needs this exit code.
    Exit(u8),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        Self::Runtime(e.into())
    }
}

fn main() -> ExitCode {
    surveyor_alloc::tune();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. } | Command::Demo(_)) {
        quiet_on_closed_pipe();
    }
    if matches!(cli.command, Command::Demo(_)) {
        // SAFETY: nothing has started a thread yet (telemetry and the runtime start below).
        unsafe { demo::export_tokens() };
    }
    // Telemetry settings live in the config; a config that does not load is reported by the
    // command itself, so here it only means "no traces".
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("surveyor.toml"));
    let telemetry_config = setup::load(&config_path).ok().map(|c| c.telemetry);
    // A service says what its runs did at the default level; one-shot commands stay quiet.
    let level = cli.log.clone().unwrap_or_else(|| {
        match cli.command {
            Command::Serve { .. } => "info",
            _ => "warn",
        }
        .to_string()
    });
    let telemetry = telemetry::init(&level, cli.log_format, telemetry_config.as_ref());
    output::set_wide(cli.wide);
    // One crypto provider for every rustls user in the process (sqlx, HTTP clients, kube).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(CliError::Exit(code)) => ExitCode::from(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> (Option<String>, String) {
        let p = parse_depends_on(s).unwrap();
        (p.ecosystem, p.package)
    }

    #[test]
    fn depends_on_splits_only_a_known_ecosystem() {
        assert_eq!(parsed("npm:react"), (Some("npm".into()), "react".into()));
        assert_eq!(parsed("react"), (None, "react".into()));
        assert_eq!(
            parsed("maven:org.apache.logging.log4j:log4j-core"),
            (
                Some("maven".into()),
                "org.apache.logging.log4j:log4j-core".into()
            )
        );
        assert_eq!(
            parsed("org.apache.logging.log4j:log4j-core"),
            (None, "org.apache.logging.log4j:log4j-core".into())
        );
        assert_eq!(
            parsed("go:github.com/spf13/cobra"),
            (Some("go".into()), "github.com/spf13/cobra".into())
        );
        assert_eq!(
            parsed("PyPI:Django"),
            (Some("pypi".into()), "Django".into())
        );
        assert_eq!(parsed("@types/node"), (None, "@types/node".into()));
        assert!(parse_depends_on("npm:").is_err());
        assert!(parse_depends_on("").is_err());
    }
}
