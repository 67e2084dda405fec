//! Expanding a glob pattern on disk without trusting the disk: each directory entered once, symlinks
//! that loop or leave the tree reported and not followed, whatever cannot be read a trouble.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::{self, FileType};
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// A glob pattern split into the directory it starts from (its literal prefix) and the parts
/// matched below it, one per path component.
#[derive(Debug)]
pub struct Pattern {
    root: PathBuf,
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Literal(OsString),
    Parent,
    /// `**`: this directory and every directory below it.
    AnyDirs,
    Glob(glob::Pattern),
}

impl Part {
    /// Matches any name, so a directory it matches last was not meant to be a file.
    fn matches_anything(&self) -> bool {
        match self {
            Self::AnyDirs => true,
            Self::Glob(p) => p.as_str().chars().all(|c| c == '*'),
            Self::Literal(_) | Self::Parent => false,
        }
    }
}

/// What a pattern matched: regular files by canonical path, all inside the tree, and what could
/// not be read or was refused on the way.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: BTreeSet<PathBuf>,
    pub troubles: Vec<Trouble>,
}

/// A path that could not be read or was refused, and why (no contents, only the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub path: PathBuf,
    pub reason: String,
}

/// What a pattern refers to before anything is walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rooted {
    /// The pattern starts in this directory (canonical).
    At(PathBuf),
    /// The directory the pattern starts from does not exist: nothing can match.
    Missing,
    /// The pattern starts outside the tree.
    Outside,
    /// The start could not be read.
    Unreadable(String),
}

const OUTSIDE: &str = "outside the catalog directory; not read";

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Pattern {
    /// Splits an absolute pattern; the error says why it is not a usable glob pattern.
    pub fn parse(pattern: &Path) -> Result<Self, String> {
        let components: Vec<Component> = pattern
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let Some(Component::Normal(_) | Component::ParentDir) = components.last() else {
            return Err("names a directory, not files".into());
        };
        let literal = components
            .iter()
            .position(|c| matches!(c, Component::Normal(s) if has_glob(&s.to_string_lossy())))
            .unwrap_or(components.len())
            .min(components.len() - 1);
        let root: PathBuf = components[..literal].iter().collect();
        let mut parts = Vec::new();
        for c in &components[literal..] {
            parts.push(match c {
                Component::ParentDir => Part::Parent,
                Component::Normal(s) => {
                    let text = s.to_string_lossy();
                    if text == "**" {
                        Part::AnyDirs
                    } else if has_glob(&text) {
                        Part::Glob(
                            glob::Pattern::new(&text)
                                .map_err(|e| format!("invalid glob pattern: {}", e.msg))?,
                        )
                    } else {
                        Part::Literal(s.to_os_string())
                    }
                }
                _ => return Err("has a root or drive in the middle".into()),
            });
        }
        Ok(Self { root, parts })
    }

    /// The directory the walk starts from, checked against `tree` (canonical) when given:
    /// lexically first, so a start outside the tree is refused even when it does not exist.
    pub fn rooted(&self, tree: Option<&Path>) -> Rooted {
        if let Some(tree) = tree
            && !lexical(&self.root).starts_with(tree)
        {
            return Rooted::Outside;
        }
        match fs::canonicalize(&self.root) {
            Ok(canon) if tree.is_some_and(|t| !canon.starts_with(t)) => Rooted::Outside,
            Ok(canon) if canon.is_dir() => Rooted::At(canon),
            Ok(_) => Rooted::Missing,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Rooted::Missing
            }
            Err(e) => Rooted::Unreadable(format!("cannot read: {e}")),
        }
    }

    /// The files the pattern matches inside `tree` (canonical), starting from `start` (the
    /// canonical root `rooted` gave).
    pub fn walk(&self, start: &Path, tree: &Path) -> Walked {
        let mut walker = Walker {
            parts: &self.parts,
            tree,
            entered: HashSet::new(),
            last_listing: None,
            out: Walked::default(),
        };
        let mut stack = vec![(self.root.clone(), start.to_path_buf(), 0)];
        while let Some((shown, canon, idx)) = stack.pop() {
            walker.visit(&shown, &canon, idx, &mut stack);
        }
        let mut out = walker.out;
        out.troubles
            .sort_by(|a, b| (&a.path, &a.reason).cmp(&(&b.path, &b.reason)));
        out.troubles.dedup();
        out
    }
}

/// `path` with `.` and `..` resolved without asking the disk.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A directory still to enter: the path as the pattern reached it, its canonical path, and the
/// part that applies inside it.
type Pending = (PathBuf, PathBuf, usize);

struct Walker<'a> {
    parts: &'a [Part],
    tree: &'a Path,
    /// (canonical directory, part index) pairs entered: each at most once, so aliases and
    /// loops cannot multiply the work.
    entered: HashSet<(PathBuf, usize)>,
    /// The directory listed last and its entries: `**` lists a directory, then matches the
    /// rest of the pattern in it, so it is read once.
    last_listing: Option<(PathBuf, Vec<Entry>)>,
    out: Walked,
}

/// A directory entry's name, and its type when the listing gave it.
type Entry = (OsString, Option<FileType>);

/// An entry, symlinks followed.
enum Kind {
    File { canon: PathBuf },
    Dir { canon: PathBuf, link: bool },
    Other,
}

impl Walker<'_> {
    fn trouble(&mut self, path: &Path, reason: impl Into<String>) {
        self.out.troubles.push(Trouble {
            path: path.to_path_buf(),
            reason: reason.into(),
        });
    }

    /// Enters directory `shown` (canonical `canon`) with part `idx` to match inside it.
    fn visit(&mut self, shown: &Path, canon: &Path, idx: usize, stack: &mut Vec<Pending>) {
        if !self.entered.insert((canon.to_path_buf(), idx)) {
            return;
        }
        let last = idx + 1 == self.parts.len();
        match &self.parts[idx] {
            Part::Literal(name) => {
                let child = shown.join(name);
                self.reached(&child, canon, None, idx, stack);
            }
            Part::Parent => {
                let up = canon.parent().unwrap_or(canon).to_path_buf();
                let child = shown.join("..");
                if !up.starts_with(self.tree) {
                    self.trouble(&child, OUTSIDE);
                } else if last {
                    self.trouble(&child, "is a directory, not a descriptor file");
                } else {
                    stack.push((child, up, idx + 1));
                }
            }
            Part::AnyDirs => {
                for (name, file_type) in self.entries(shown) {
                    let child = shown.join(&name);
                    if last {
                        self.reached(&child, canon, file_type, idx, stack);
                    } else if let Some(Kind::Dir { canon: dir, link }) =
                        self.kind(&child, canon, file_type, false)
                    {
                        self.enter(&child, canon, dir, link, idx, stack);
                    }
                }
                if !last {
                    // `**` matches no directory too: the rest of the pattern applies here, next
                    // (popped first, so this directory's listing is still at hand).
                    stack.push((shown.to_path_buf(), canon.to_path_buf(), idx + 1));
                }
            }
            Part::Glob(pattern) => {
                for (name, file_type) in self.entries(shown) {
                    if pattern.matches(&name.to_string_lossy()) {
                        let child = shown.join(&name);
                        self.reached(&child, canon, file_type, idx, stack);
                    }
                }
            }
        }
    }

    /// `child` (in directory `parent`) matched part `idx`: a file if that part is the last, a
    /// directory to enter otherwise (or, under a final `**`, either).
    fn reached(
        &mut self,
        child: &Path,
        parent: &Path,
        file_type: Option<FileType>,
        idx: usize,
        stack: &mut Vec<Pending>,
    ) {
        let part = &self.parts[idx];
        let last = idx + 1 == self.parts.len();
        let Some(kind) = self.kind(child, parent, file_type, last) else {
            return;
        };
        match kind {
            Kind::File { canon } if last => {
                if canon.starts_with(self.tree) {
                    self.out.files.insert(canon);
                } else {
                    self.trouble(child, format!("symlink leads {OUTSIDE}"));
                }
            }
            Kind::File { .. } => {}
            Kind::Dir { canon, link } => {
                if matches!(part, Part::AnyDirs) {
                    self.enter(child, parent, canon, link, idx, stack);
                } else if !last {
                    self.enter(child, parent, canon, link, idx + 1, stack);
                } else if !part.matches_anything() {
                    self.trouble(child, "is a directory, not a descriptor file");
                }
            }
            Kind::Other if last => self.trouble(child, "not a regular file"),
            Kind::Other => {}
        }
    }

    /// Queues directory `child` unless it leaves the tree or loops back above itself.
    fn enter(
        &mut self,
        child: &Path,
        parent: &Path,
        canon: PathBuf,
        link: bool,
        idx: usize,
        stack: &mut Vec<Pending>,
    ) {
        if !canon.starts_with(self.tree) {
            self.trouble(child, format!("symlink leads {OUTSIDE}"));
        } else if link && parent.starts_with(&canon) {
            let target = canon.strip_prefix(self.tree).unwrap_or(&canon);
            let target = if target.as_os_str().is_empty() {
                Path::new(".")
            } else {
                target
            };
            self.trouble(
                child,
                format!(
                    "symlink loop: leads back to {:?}, a directory above it; not followed",
                    target.to_string_lossy()
                ),
            );
        } else {
            stack.push((child.to_path_buf(), canon, idx));
        }
    }

    /// The entries of a directory, sorted by name, with their types when the listing gave them;
    /// a directory or entry that cannot be read is a trouble.
    fn entries(&mut self, dir: &Path) -> Vec<Entry> {
        if let Some((listed, entries)) = &self.last_listing
            && listed == dir
        {
            return entries.clone();
        }
        let mut out = Vec::new();
        match fs::read_dir(dir) {
            Ok(listing) => {
                for entry in listing {
                    match entry {
                        Ok(e) => out.push((e.file_name(), e.file_type().ok())),
                        Err(e) => self.trouble(dir, format!("cannot read directory: {e}")),
                    }
                }
            }
            Err(e) => self.trouble(dir, format!("cannot read directory: {e}")),
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        self.last_listing = Some((dir.to_path_buf(), out.clone()));
        out
    }

    /// What `path` (an entry of canonical directory `parent`) is, symlinks followed. `None` when
    /// it does not exist, or after reporting why it cannot be read; a broken symlink is reported
    /// only when `named` (the pattern names it as a file).
    fn kind(
        &mut self,
        path: &Path,
        parent: &Path,
        file_type: Option<FileType>,
        named: bool,
    ) -> Option<Kind> {
        let file_type = match file_type {
            Some(t) => t,
            None => match fs::symlink_metadata(path) {
                Ok(m) => m.file_type(),
                Err(e) if e.kind() == ErrorKind::NotFound => return None,
                Err(e) => {
                    self.trouble(path, format!("cannot read: {e}"));
                    return None;
                }
            },
        };
        let own = || parent.join(path.file_name().unwrap_or_default());
        if file_type.is_file() {
            return Some(Kind::File { canon: own() });
        }
        if file_type.is_dir() {
            return Some(Kind::Dir {
                canon: own(),
                link: false,
            });
        }
        if !file_type.is_symlink() {
            return Some(Kind::Other);
        }
        let canon = match fs::canonicalize(path) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if named {
                    self.trouble(path, "broken symlink: its target does not exist");
                }
                return None;
            }
            Err(e) => {
                self.trouble(path, format!("cannot follow symlink: {e}"));
                return None;
            }
        };
        match fs::metadata(&canon) {
            Ok(m) if m.is_file() => Some(Kind::File { canon }),
            Ok(m) if m.is_dir() => Some(Kind::Dir { canon, link: true }),
            Ok(_) => Some(Kind::Other),
            Err(e) => {
                self.trouble(path, format!("cannot read: {e}"));
                None
            }
        }
    }
}
