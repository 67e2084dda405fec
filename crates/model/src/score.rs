//! Scorecards as `surveyor.toml` declares them (`[[scorecards]]`): which entities each grades,
//! its levels from lowest to highest, and the checks each level needs.

/// One scorecard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scorecard {
    /// Its name in commands, the API and the store (`operational-readiness`).
    pub name: String,
    /// For people (`Operational readiness`); the name when none is given.
    pub title: String,
    pub applies_to: AppliesTo,
    /// Lowest first (`bronze`, `silver`, `gold`). An entity reaches a level when every check
    /// of that level and the levels below it passes.
    pub levels: Vec<String>,
    pub checks: Vec<Check>,
}

impl Scorecard {
    /// The index of `level` among the levels.
    pub fn rank(&self, level: &str) -> Option<usize> {
        self.levels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(level))
    }
}

/// Which entities a scorecard grades: every condition set must hold; a list holds when the
/// entity's value is one of it (compared ignoring case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliesTo {
    /// Lower-case kind; `component` unless configured.
    pub kind: String,
    pub types: Vec<String>,
    /// Tiers as classification gave them.
    pub tiers: Vec<String>,
    pub lifecycles: Vec<String>,
    /// `metadata.labels[key] == value`.
    pub label: Option<(String, String)>,
}

impl Default for AppliesTo {
    fn default() -> Self {
        Self {
            kind: "component".into(),
            types: Vec::new(),
            tiers: Vec::new(),
            lifecycles: Vec::new(),
            label: None,
        }
    }
}

/// One check: its name, the level it belongs to, and what it tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub level: String,
    pub test: Test,
}

impl Check {
    /// The check `name` of `level`, testing `test`.
    pub fn new(name: &str, level: &str, test: Test) -> Self {
        Self {
            name: name.into(),
            level: level.into(),
            test,
        }
    }
}

/// What a check tests of one entity, its relations and its findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// A field (a JSON pointer, `/spec/owner`) exists, is not empty, and equals or matches
    /// (a glob, `https://runbooks.acme.com/*`) when asked.
    Field {
        pointer: String,
        equals: Option<String>,
        matches: Option<String>,
    },
    /// A relation of this type from the entity exists (`ownedBy`), to an entity the catalog has.
    Relation(String),
    /// The owner is a group with at least this many members.
    OwnerMembers(u64),
    /// Someone is on call for it now (PagerDuty's `spec.onCall.covered`).
    OnCall,
    /// No open finding of this audit rule names the entity (`conflicting-owners`).
    NoFinding(String),
    /// The entity does not depend on the package; with a version, it may, at that version or
    /// later (the lowest version its requirement allows).
    Dependency {
        ecosystem: Option<String>,
        package: String,
        at_least: Option<String>,
    },
    /// A file was found in its repository: `CODEOWNERS`, `catalog-info.yaml`, or a manifest
    /// (`package.json`, `Cargo.toml`, ...).
    File(String),
    /// A link whose title, type or URL contains this text (`runbook`), ignoring case.
    Link(String),
}

impl Test {
    /// The check as `surveyor.toml` writes it, for reports (`on_call = true`).
    pub fn describe(&self) -> String {
        match self {
            Self::Field {
                pointer,
                equals,
                matches,
            } => match (equals, matches) {
                (Some(v), _) => format!("field {pointer} = {v:?}"),
                (_, Some(g)) => format!("field {pointer} matches {g:?}"),
                _ => format!("field {pointer} is set"),
            },
            Self::Relation(r) => format!("a relation of type {r}"),
            Self::OwnerMembers(n) => format!("the owner group has at least {n} members"),
            Self::OnCall => "someone is on call".into(),
            Self::NoFinding(rule) => format!("no open {rule} finding"),
            Self::Dependency {
                ecosystem,
                package,
                at_least,
            } => {
                let p = match ecosystem {
                    Some(e) => format!("{e}:{package}"),
                    None => package.clone(),
                };
                match at_least {
                    Some(v) => format!("{p} absent or at least {v}"),
                    None => format!("no dependency on {p}"),
                }
            }
            Self::File(f) => format!("{f} in the repository"),
            Self::Link(t) => format!("a {t} link"),
        }
    }
}
