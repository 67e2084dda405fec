//! Commands about the tool itself: shell completions, the man pages, and the JSON Schema of
//! `surveyor.toml`. None of them reads the configuration or the catalog.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Subcommand};

use crate::{Cli, CliError};

/// `surveyor completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `surveyor man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write surveyor.1 and a page per subcommand (surveyor-sync.1, ...) into this directory
    /// instead of printing surveyor.1 to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `surveyor config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a JSON Schema of surveyor.toml, for editors (Taplo, Even Better TOML)
    Schema,
}

fn write_out(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("cannot write to stdout: {e}")))
}

pub fn completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "surveyor", &mut buf);
    write_out(&buf)
}

pub fn man(args: ManArgs) -> Result<(), CliError> {
    let cmd = Cli::command();
    match args.dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .map_err(|e| CliError::Runtime(e.into()))?;
            write_out(&buf)
        }
        Some(dir) => write_pages(&dir, cmd),
    }
}

fn write_pages(dir: &Path, cmd: clap::Command) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::Runtime(anyhow::anyhow!(
            "cannot write man pages to {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    clap_mangen::generate_to(cmd, dir).map_err(fail)?;
    eprintln!("wrote man pages to {}", dir.display());
    Ok(())
}

pub fn config(cmd: ConfigCommand) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Schema => {
            let text = serde_json::to_string_pretty(&crate::schema::config_schema())
                .map_err(|e| CliError::Runtime(e.into()))?;
            write_out(format!("{text}\n").as_bytes())
        }
    }
}
