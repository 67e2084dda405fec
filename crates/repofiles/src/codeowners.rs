//! CODEOWNERS in GitHub's and GitLab's dialects: which owners a path has, and who owns the
//! repository as a whole. Hand-written over globset; the two dialects differ in sections,
//! exclusions, where a relative pattern matches, file locations and owner syntax.

use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Which service's rules a CODEOWNERS file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    GitHub,
    GitLab,
}

impl Flavor {
    /// Where the service looks for the file, in the order it looks; the first found is used.
    pub fn locations(self) -> &'static [&'static str] {
        match self {
            Self::GitHub => &[".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"],
            Self::GitLab => &["CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"],
        }
    }
}

/// One owner as written in a CODEOWNERS file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// `@login`
    User(String),
    /// `@org/team` (GitHub) or `@group/subgroup` (GitLab): the path after the `@`.
    Team(String),
    /// `@@maintainer` (GitLab roles).
    Role(String),
    Email(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "@{u}"),
            Self::Team(t) => write!(f, "@{t}"),
            Self::Role(r) => write!(f, "@@{r}"),
            Self::Email(e) => f.write_str(e),
        }
    }
}

/// A line that was skipped, and why (the services skip invalid lines too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    /// A set rather than one matcher per glob: simple globs (`dir/**`, `*.rs`) then need no
    /// regex, which keeps a large file's memory down.
    matcher: GlobSet,
    owners: Vec<Owner>,
    /// GitLab `!pattern`: matching paths have no owners in this section, whatever other rule
    /// of the section (earlier or later) matches them.
    excluded: bool,
}

#[derive(Debug, Clone)]
struct Section {
    /// Lower-cased; GitLab section names are case-insensitive. Empty for the unnamed section.
    name: String,
    optional: bool,
    rules: Vec<Rule>,
}

/// A parsed CODEOWNERS file.
#[derive(Debug, Clone)]
pub struct CodeOwners {
    flavor: Flavor,
    sections: Vec<Section>,
    /// Lines skipped as invalid.
    pub errors: Vec<LineError>,
}

/// A file name no specific rule names: what matches it is what owns "the repository".
const ROOT_PROBE: &str = "SURVEYOR_ROOT_PROBE_7f3a";

/// Files larger than this are not parsed (GitHub ignores CODEOWNERS over 3 MB).
pub const MAX_CODEOWNERS_BYTES: usize = 3 * 1024 * 1024;

/// Files with more rules than this are not used: each rule compiles to matchers (up to some
/// 10 KB for a pattern that needs a regex), and 3 MB holds 170,000 short rules. Ignoring only
/// the rules past the limit would assign wrong owners, as the last matching rule wins.
pub const MAX_CODEOWNERS_RULES: usize = 10_000;

/// Patterns longer than this, or with `{}` alternatives nested deeper than
/// [`MAX_PATTERN_NESTING`], are skipped: the glob parser recurses once per level.
pub const MAX_PATTERN_CHARS: usize = 1024;
pub const MAX_PATTERN_NESTING: usize = 8;

impl CodeOwners {
    /// Parses `text`. Never fails: invalid lines are skipped and listed in `errors`.
    pub fn parse(text: &str, flavor: Flavor) -> Self {
        if text.len() > MAX_CODEOWNERS_BYTES {
            return Self::unusable(flavor, 0, Self::too_large());
        }
        let mut out = Self::empty(flavor);
        let mut section_defaults: Vec<Owner> = Vec::new();
        let mut rules_seen = 0usize;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if flavor == Flavor::GitLab
                && let Some(header) = parse_section_header(trimmed)
            {
                match header {
                    Ok((name, optional, defaults)) => {
                        section_defaults = defaults;
                        let key = name.to_lowercase();
                        // Sections of the same name are one section.
                        match out.sections.iter().position(|s| s.name == key) {
                            Some(pos) => {
                                let s = out.sections.remove(pos);
                                out.sections.push(s);
                            }
                            None => out.sections.push(Section {
                                name: key,
                                optional,
                                rules: Vec::new(),
                            }),
                        }
                    }
                    Err(message) => out.errors.push(LineError { line, message }),
                }
                continue;
            }
            match parse_rule(trimmed, line, flavor) {
                Ok(_) if rules_seen == MAX_CODEOWNERS_RULES => {
                    return Self::unusable(
                        flavor,
                        line,
                        format!("more than {MAX_CODEOWNERS_RULES} rules; the file is ignored"),
                    );
                }
                Ok(mut rule) => {
                    rules_seen += 1;
                    if rule.owners.is_empty() && !rule.excluded {
                        rule.owners.clone_from(&section_defaults);
                    }
                    if let Some(section) = out.sections.last_mut() {
                        section.rules.push(rule);
                    }
                }
                Err(message) => out.errors.push(LineError { line, message }),
            }
        }
        out
    }

    /// Parses a file as read from disk or a forge. The size limit is checked first; bytes that
    /// are not UTF-8 make the whole file unusable: one error naming the line, no rules.
    pub fn parse_bytes(bytes: &[u8], flavor: Flavor) -> Self {
        if bytes.len() > MAX_CODEOWNERS_BYTES {
            return Self::unusable(flavor, 0, Self::too_large());
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, flavor),
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                Self::unusable(flavor, line, crate::manifests::utf8_error(bytes, &e))
            }
        }
    }

    /// No rules (only the unnamed section) and no errors.
    fn empty(flavor: Flavor) -> Self {
        Self {
            flavor,
            sections: vec![Section {
                name: String::new(),
                optional: false,
                rules: Vec::new(),
            }],
            errors: Vec::new(),
        }
    }

    /// No rules, and one error saying why.
    fn unusable(flavor: Flavor, line: usize, message: String) -> Self {
        let mut out = Self::empty(flavor);
        out.errors.push(LineError { line, message });
        out
    }

    fn too_large() -> String {
        format!("file is larger than {MAX_CODEOWNERS_BYTES} bytes; ignored")
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The owners of `path` (relative to the repository root, `/`-separated). On GitHub the last
    /// matching rule decides (and a rule without owners leaves the path unowned); on GitLab
    /// each section's last matching rule contributes its owners, unless an exclusion of that
    /// section matches the path.
    pub fn owners_of(&self, path: &str) -> Vec<Owner> {
        let path = path.trim_start_matches('/');
        let mut owners: Vec<Owner> = Vec::new();
        for section in &self.sections {
            if let Some(rule) = section.deciding_rule(path)
                && !rule.excluded
            {
                for o in &rule.owners {
                    if !owners.contains(o) {
                        owners.push(o.clone());
                    }
                }
            }
        }
        owners
    }

    /// The owners of the repository as a whole: those of a file at the root that no specific
    /// rule names, i.e. what `*` (or `/*`, `**`, ...) assigns.
    pub fn repo_owners(&self) -> Vec<Owner> {
        self.owners_of(ROOT_PROBE)
    }

    /// The line of the rule that decides `path` in the first section that has one (for evidence):
    /// the exclusion that excludes it, else the last rule that matches it.
    pub fn deciding_line(&self, path: &str) -> Option<usize> {
        let path = path.trim_start_matches('/');
        self.sections
            .iter()
            .find_map(|s| s.deciding_rule(path).map(|r| r.line))
    }

    /// Whether an optional GitLab section decides anything (reported for completeness).
    pub fn has_optional_sections(&self) -> bool {
        self.sections.iter().any(|s| s.optional)
    }
}

impl Section {
    /// The rule that decides `path` here. GitLab evaluates exclusions in order and a path once
    /// excluded cannot be included again in the section, so the first matching exclusion
    /// decides, wherever it stands; without one, the last matching rule does.
    fn deciding_rule(&self, path: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.excluded && r.matcher.is_match(path))
            .or_else(|| self.rules.iter().rev().find(|r| r.matcher.is_match(path)))
    }
}

type SectionHeader = (String, bool, Vec<Owner>);

/// `[Name]`, `^[Name]`, `[Name][2]`, each optionally followed by default owners.
fn parse_section_header(line: &str) -> Option<Result<SectionHeader, String>> {
    let (optional, rest) = match line.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, line),
    };
    let rest = rest.strip_prefix('[')?;
    let Some(end) = rest.find(']') else {
        return Some(Err("unterminated section header".into()));
    };
    let name = rest[..end].trim().to_string();
    if name.is_empty() {
        return Some(Err("empty section name".into()));
    }
    let mut tail = rest[end + 1..].trim_start();
    if let Some(count) = tail.strip_prefix('[') {
        let Some(close) = count.find(']') else {
            return Some(Err("unterminated approval count".into()));
        };
        if count[..close].trim().parse::<u32>().is_err() {
            return Some(Err(format!(
                "approval count {:?} is not a number",
                &count[..close]
            )));
        }
        tail = count[close + 1..].trim_start();
    }
    let mut owners = Vec::new();
    for word in tail.split_whitespace() {
        if word.starts_with('#') {
            break;
        }
        match parse_owner(word, Flavor::GitLab) {
            Ok(o) => owners.push(o),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok((name, optional, owners)))
}

/// Splits a rule line into the pattern (honouring `\ ` and `\#` escapes) and the rest.
fn split_pattern(line: &str) -> (String, &str) {
    let mut pattern = String::new();
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&(_, next)) if next == ' ' || next == '#' || next == '\\' => {
                    pattern.push(next);
                    chars.next();
                }
                _ => pattern.push('\\'),
            },
            c if c.is_whitespace() => return (pattern, &line[i..]),
            c => pattern.push(c),
        }
    }
    (pattern, "")
}

fn parse_rule(line: &str, line_no: usize, flavor: Flavor) -> Result<Rule, String> {
    let (mut pattern, rest) = split_pattern(line);
    let mut excluded = false;
    if let Some(p) = pattern.strip_prefix('!') {
        if flavor == Flavor::GitHub {
            return Err("negation (!) is not supported in GitHub CODEOWNERS".into());
        }
        excluded = true;
        pattern = p.to_string();
    }
    if flavor == Flavor::GitHub && (pattern.contains('[') || pattern.contains(']')) {
        return Err("character ranges ([ ]) are not supported in GitHub CODEOWNERS".into());
    }
    let mut owners = Vec::new();
    for word in rest.split_whitespace() {
        if word.starts_with('#') {
            break;
        }
        owners.push(parse_owner(word, flavor)?);
    }
    Ok(Rule {
        line: line_no,
        matcher: compile(&pattern, flavor)?,
        owners,
        excluded,
    })
}

fn parse_owner(word: &str, flavor: Flavor) -> Result<Owner, String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
            && !s.starts_with('/')
            && !s.ends_with('/')
    };
    if let Some(role) = word.strip_prefix("@@") {
        if flavor == Flavor::GitLab && name_ok(role) {
            return Ok(Owner::Role(role.to_lowercase()));
        }
        return Err(format!("invalid owner {word:?}"));
    }
    if let Some(name) = word.strip_prefix('@') {
        if !name_ok(name) {
            return Err(format!("invalid owner {word:?}"));
        }
        let slashes = name.matches('/').count();
        return match (flavor, slashes) {
            (_, 0) => Ok(Owner::User(name.to_string())),
            (Flavor::GitHub, 1) | (Flavor::GitLab, _) => Ok(Owner::Team(name.to_string())),
            _ => Err(format!(
                "invalid owner {word:?}: a GitHub team is @org/team"
            )),
        };
    }
    match word.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') =>
        {
            Ok(Owner::Email(word.to_string()))
        }
        _ => Err(format!(
            "invalid owner {word:?}: expected @user, @org/team or an email address"
        )),
    }
}

/// Compiles a gitignore-style pattern into the globs that match the files it owns.
///
/// - A pattern that starts with `/` is anchored at the root. Otherwise GitHub (which follows
///   gitignore) anchors a pattern with a `/` in its middle too (`docs/*`), and matches the rest
///   at any depth (`*.js`, `apps/`); GitLab matches every pattern without a leading `/` at any
///   depth, as if it started with `**/` (`internal/README.md` is `/**/internal/README.md`).
/// - A trailing `/` matches directories only: every file below them.
/// - A pattern that names a directory owns everything below it, except that `dir/*` owns only
///   the files directly in `dir` (both services document this exception).
fn compile(pattern: &str, flavor: Flavor) -> Result<GlobSet, String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "pattern longer than {MAX_PATTERN_CHARS} characters"
        ));
    }
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_PATTERN_NESTING {
            return Err(format!(
                "{{ }} alternatives nested more than {MAX_PATTERN_NESTING} deep"
            ));
        }
    }
    let dir_only = pattern.ends_with('/');
    let core = pattern.trim_start_matches('/').trim_end_matches('/');
    let anchored = pattern.starts_with('/') || (flavor == Flavor::GitHub && core.contains('/'));
    if core.is_empty() {
        // `/` alone: the whole repository.
        return set(&["**".to_string()]);
    }
    let base = if anchored || core.starts_with("**") {
        core.to_string()
    } else {
        format!("**/{core}")
    };
    let mut globs = Vec::new();
    if !dir_only {
        globs.push(base.clone());
    }
    let direct_children_only = core == "*" && !dir_only || core.ends_with("/*");
    if !direct_children_only {
        globs.push(format!("{base}/**"));
    }
    set(&globs)
}

fn set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| format!("invalid pattern {:?}: {e}", patterns.join(" ")))
}

#[cfg(test)]
mod tests;
