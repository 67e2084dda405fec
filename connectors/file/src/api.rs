//! Reading the disk: the files the patterns match (each once, by its canonical path), their
//! text, and paths relative to the config file's directory for locations and external ids.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use surveyor_model::{Outcome, Problem};

#[derive(Debug, Clone)]
pub struct Disk {
    /// The scope problems are reported in: the connector's id.
    scope: String,
    base_dir: PathBuf,
    patterns: Vec<String>,
}

impl Disk {
    pub fn new(scope: &str, patterns: Vec<String>, base_dir: &Path) -> Self {
        Self {
            scope: scope.to_string(),
            // Canonical once, so every file path (canonicalised too) strips to a relative one.
            base_dir: std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf()),
            patterns,
        }
    }

    /// Every file the patterns match; what cannot be read is a problem of the scope.
    pub fn files(&self, outcome: &mut Outcome) -> BTreeSet<PathBuf> {
        let mut files = BTreeSet::new();
        for pattern in &self.patterns {
            let full = if Path::new(pattern).is_absolute() {
                pattern.clone()
            } else {
                self.base_dir.join(pattern).to_string_lossy().into_owned()
            };
            match glob::glob(&full) {
                Ok(paths) => {
                    for entry in paths {
                        match entry {
                            Ok(p) if p.is_file() => {
                                files.insert(std::fs::canonicalize(&p).unwrap_or(p));
                            }
                            Ok(_) => {}
                            Err(e) => self.problem(
                                outcome,
                                self.relative(e.path()),
                                format!("cannot read: {}", e.error()),
                            ),
                        }
                    }
                }
                Err(e) => self.problem(
                    outcome,
                    pattern.clone(),
                    format!("invalid glob pattern: {}", e.msg),
                ),
            }
        }
        files
    }

    /// A file's text; a file that cannot be read, or is not UTF-8, is a problem at `rel`.
    pub async fn text(&self, path: &Path, rel: &str, outcome: &mut Outcome) -> Option<String> {
        match tokio::fs::read(path).await {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.problem(outcome, rel.to_string(), "not valid UTF-8".into());
                    None
                }
            },
            Err(e) => {
                self.problem(outcome, rel.to_string(), format!("cannot read: {e}"));
                None
            }
        }
    }

    /// `path` below the config file's directory, with `/` between its parts.
    pub fn relative(&self, path: &Path) -> String {
        let base = std::fs::canonicalize(&self.base_dir).unwrap_or_else(|_| self.base_dir.clone());
        let rel = path
            .strip_prefix(&base)
            .or_else(|_| path.strip_prefix(&self.base_dir))
            .unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn problem(&self, outcome: &mut Outcome, location: String, message: String) {
        outcome.problem(Problem {
            scope: self.scope.clone(),
            location,
            field: None,
            message,
        });
    }
}
