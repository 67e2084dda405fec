//! Reading the disk (blocking): the files patterns and Location targets match inside their tree,
//! their text read with a bound, and paths relative to the config file's directory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use surveyor_model::Problem;
use surveyor_model::descriptor::MAX_DESCRIPTOR_BYTES;

use crate::walk::{Pattern, Rooted, Walked};

#[derive(Debug, Clone)]
pub struct Disk {
    /// The scope problems are reported in: the connector's id.
    scope: String,
    /// The config file's directory, canonical.
    base_dir: PathBuf,
    patterns: Vec<String>,
}

/// A file to read, by canonical path, and the tree (a canonical directory) that the files its
/// Locations point at must stay in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub tree: PathBuf,
}

/// What the configured patterns matched.
#[derive(Debug, Default)]
pub struct Expanded {
    pub files: Vec<Found>,
    /// What could not be read or was refused on the way.
    pub problems: Vec<Problem>,
    /// The patterns that matched nothing at all (as configured).
    pub unmatched: Vec<String>,
}

/// A Location's local target: where it was written, its text, and the Location's ref.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The Location's file (canonical) and that file relative to the config file's directory.
    pub file: &'a Path,
    pub rel: &'a str,
    /// `spec.target` or `spec.targets`.
    pub field: &'static str,
    pub target: &'a str,
    /// The Location's entity ref.
    pub location: &'a str,
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

    /// Every file the patterns match. A pattern's tree is the config file's directory, or the
    /// directory the pattern starts from when that lies outside it (the config chose it).
    pub fn expand(&self) -> Expanded {
        let mut out = Expanded::default();
        for pattern in &self.patterns {
            let parsed = match Pattern::parse(&self.base_dir.join(pattern)) {
                Ok(p) => p,
                Err(reason) => {
                    out.problems.push(self.problem(pattern.clone(), reason));
                    continue;
                }
            };
            let start = match parsed.rooted(None) {
                Rooted::At(start) => start,
                Rooted::Missing => {
                    out.unmatched.push(pattern.clone());
                    continue;
                }
                Rooted::Outside => {
                    let reason = "outside the catalog directory; not read".to_string();
                    out.problems.push(self.problem(pattern.clone(), reason));
                    continue;
                }
                Rooted::Unreadable(reason) => {
                    out.problems.push(self.problem(pattern.clone(), reason));
                    continue;
                }
            };
            let tree = if start.starts_with(&self.base_dir) {
                self.base_dir.clone()
            } else {
                start.clone()
            };
            let walked = parsed.walk(&start, &tree);
            if walked.files.is_empty() && walked.troubles.is_empty() {
                out.unmatched.push(pattern.clone());
            }
            out.problems.extend(self.troubles(&walked, ""));
            out.files.extend(walked.files.into_iter().map(|path| Found {
                path,
                tree: tree.clone(),
            }));
        }
        out
    }

    /// The files a Location's target matches, relative to the Location's file, inside `tree`.
    /// A target outside the tree is refused unread; one that matches nothing is a problem (it
    /// is a failed read of what the Location declares).
    pub fn target(&self, t: Target<'_>, tree: &Path) -> (Vec<PathBuf>, Vec<Problem>) {
        let at_location = |message: String| Problem {
            scope: self.scope.clone(),
            location: t.rel.to_string(),
            field: Some(t.field.to_string()),
            message: format!("target {:?} of {}: {message}", t.target, t.location),
        };
        let dir = t.file.parent().unwrap_or(Path::new("/"));
        let parsed = match Pattern::parse(&dir.join(t.target)) {
            Ok(p) => p,
            Err(reason) => return (Vec::new(), vec![at_location(reason)]),
        };
        let start = match parsed.rooted(Some(tree)) {
            Rooted::At(start) => start,
            Rooted::Missing => return (Vec::new(), vec![at_location(no_match())]),
            Rooted::Outside => {
                let reason = "outside the catalog directory; not read".to_string();
                return (Vec::new(), vec![at_location(reason)]);
            }
            Rooted::Unreadable(reason) => return (Vec::new(), vec![at_location(reason)]),
        };
        let walked = parsed.walk(&start, tree);
        let context = format!(" (target {:?} of {} in {})", t.target, t.location, t.rel);
        let mut problems = self.troubles(&walked, &context);
        if walked.files.is_empty() && problems.is_empty() {
            problems.push(at_location(no_match()));
        }
        (walked.files.into_iter().collect(), problems)
    }

    /// A file's text: read only if it is a regular file within the size limit (checked before
    /// reading, and the read bounded in case it grows), not empty, and UTF-8.
    pub fn read(&self, path: &Path) -> Result<String, String> {
        let cannot = |e: std::io::Error| format!("cannot read: {e}");
        let file = File::open(path).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let limit = MAX_DESCRIPTOR_BYTES as u64;
        if meta.len() > limit {
            return Err(too_large(&meta.len().to_string()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(too_large(&format!("more than {limit}")));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("empty file: no descriptor in it".into());
        }
        String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            format!("not valid UTF-8 (line {line})")
        })
    }

    /// `path` below the config file's directory, with `/` between its parts.
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.base_dir).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    pub fn problem(&self, location: String, message: String) -> Problem {
        Problem {
            scope: self.scope.clone(),
            location,
            field: None,
            message,
        }
    }

    fn troubles(&self, walked: &Walked, context: &str) -> Vec<Problem> {
        walked
            .troubles
            .iter()
            .map(|t| self.problem(self.relative(&t.path), format!("{}{context}", t.reason)))
            .collect()
    }
}

fn no_match() -> String {
    "does not exist (matches no file)".into()
}

fn too_large(len: &str) -> String {
    format!("file is {len} bytes; descriptors are limited to {MAX_DESCRIPTOR_BYTES}; not read")
}
