//! `surveyor.toml`: parsed with spans so every error names file, line, column and key, unknown
//! keys get a did-you-mean hint, and each connector kind reads its own keys (Vector style).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use surveyor_model::secret::expand_env;
use surveyor_model::{ConnectorKind, Secret};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A connector kind the binary knows: its name and the keys its config accepts.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub name: &'static str,
    pub keys: &'static [&'static str],
}

impl KindSpec {
    /// A connector kind's spec: its name, and the fields of its config struct as its keys.
    pub fn of<K: ConnectorKind>() -> Self {
        Self {
            name: K::KIND,
            keys: surveyor_model::kit::keys::<K::Config>(),
        }
    }
}

/// Keys every `[[connectors]]` table accepts, whatever its kind.
pub const COMMON_CONNECTOR_KEYS: &[&str] = &[
    "id",
    "kind",
    "schedule",
    "enabled",
    "timezone",
    "timeout",
    "jitter",
    "run_on_start",
];
const TOP_KEYS: &[&str] = &[
    "catalog",
    "server",
    "telemetry",
    "identity",
    "groups",
    "merge",
    "audit",
    "classify",
    "scorecards",
    "connectors",
];
const MERGE_FIELD_KEYS: &[&str] = &["rule", "sources"];
const AUDIT_KEYS: &[&str] = &["cosmetic"];
const CLASSIFY_KEYS: &[&str] = &["production", "default_tier", "tier"];
const SCORECARD_KEYS: &[&str] = &[
    "name",
    "title",
    "levels",
    "kind",
    "type",
    "tier",
    "lifecycle",
    "label",
    "checks",
];
/// The keys a check takes: `name`, `level`, and one test (`field` with `equals` or `matches`).
const CHECK_KEYS: &[&str] = &[
    "name",
    "level",
    "equals",
    "matches",
    // The tests, from here on: see TESTS.
    "field",
    "relation",
    "owner_members_at_least",
    "on_call",
    "no_finding",
    "dependency",
    "dependency_absent",
    "file",
    "link",
];
/// The tests a check may make (one each): the check keys after its name, level and the two
/// keys that go with `field`.
const TESTS: &[&str] = CHECK_KEYS.split_at(4).1;
const TIER_KEYS: &[&str] = &[
    "tier",
    "on_call",
    "urgency",
    "min_escalation_levels",
    "production",
    "min_replicas",
    "min_dependents",
];
const IDENTITY_KEYS: &[&str] = &["kinds", "separators", "strip_suffixes", "aliases"];
const TELEMETRY_KEYS: &[&str] = &["otlp_endpoint", "service_name"];
const CATALOG_KEYS: &[&str] = &[
    "database",
    "retention",
    "max_delete_ratio",
    "mass_delete_floor",
];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "read_tokens",
    "trigger_tokens",
    "cors_origins",
    "max_page_size",
    "shutdown_grace",
    "header_read_timeout",
    "idle_timeout",
    "max_connections",
    "max_expensive_requests",
    "console",
];

/// The keys each fixed section accepts, for tools that describe the file (`surveyor config
/// schema`): the top level (`""`), `[catalog]`, `[server]`, `[telemetry]`, `[audit]`,
/// `[classify]` and each of its `[[classify.tier]]` rules, each `[[identity]]` table and each
/// `[merge]` field's table. `[[groups]]` tables take `name` and
/// connector ids; `[[connectors]]` tables take [`COMMON_CONNECTOR_KEYS`] and their kind's keys.
pub const SECTION_KEYS: &[(&str, &[&str])] = &[
    ("", TOP_KEYS),
    ("catalog", CATALOG_KEYS),
    ("server", SERVER_KEYS),
    ("telemetry", TELEMETRY_KEYS),
    ("audit", AUDIT_KEYS),
    ("classify", CLASSIFY_KEYS),
    ("classify.tier", TIER_KEYS),
    ("scorecards", SCORECARD_KEYS),
    ("scorecards.checks", CHECK_KEYS),
    ("identity", IDENTITY_KEYS),
    ("merge", MERGE_FIELD_KEYS),
];

/// One configuration error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key at fault, e.g. `connectors[0].paths`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// All the errors found in a configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// `[catalog]`.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// `sqlite://...` or `postgres://...`; may embed `${ENV}` references, so it is a secret.
    pub database: Secret,
    pub retention: Duration,
    pub max_delete_ratio: f64,
    /// Deletions of at most this many per scope and kind pass the guard whatever the ratio.
    pub mass_delete_floor: u64,
}

/// `[server]` (used by `surveyor serve`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    /// Bearer tokens that may read; none means reads need no token.
    pub read_tokens: Vec<Secret>,
    /// Bearer tokens that may also trigger syncs; none means triggering is off.
    pub trigger_tokens: Vec<Secret>,
    /// Origins browsers may call the API from (`*` for any); none sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// The largest page an `/api/v1` list may ask for (Backstage routes read in batches of it).
    pub max_page_size: u32,
    /// How long a running crawl may go on after SIGTERM before it is rolled back; the process
    /// ends within this (and a few seconds to close the database) whatever a crawl is doing.
    pub shutdown_grace: Duration,
    /// A request's header must arrive within this long (from connecting, or from the first
    /// byte of a later request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once (past it a new one is answered 503); `None`: the server
    /// derives it from the open-file limit.
    pub max_connections: Option<u32>,
    /// Expensive requests (in-memory Backstage filters, facets, graph, audits) served at once;
    /// `None`: the server derives it from the core count.
    pub max_expensive_requests: Option<u32>,
    /// Serve the console (HTML pages for people) at `/`; on by default.
    pub console: bool,
}

/// `[telemetry]`: where traces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL (`http://collector:4318`); traces are exported when set.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "surveyor".into(),
        }
    }
}

/// Which clock a schedule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScheduleZone {
    #[default]
    Utc,
    /// The machine's local time zone.
    Local,
    /// An IANA zone (`Europe/Berlin`): schedules follow its daylight-saving changes.
    Named(chrono_tz::Tz),
}

/// One `[[connectors]]` table: the common keys, and access to the kind's own keys.
#[derive(Clone)]
pub struct ConnectorSpec {
    pub index: usize,
    pub id: String,
    pub kind: String,
    pub schedule: Option<String>,
    pub enabled: bool,
    pub timezone: ScheduleZone,
    /// A run that takes longer is abandoned (its open scope rolls back). Default 1 hour.
    pub timeout: Duration,
    /// Up to this much is added to each scheduled time, so replicas and connectors spread out.
    pub jitter: Duration,
    /// `serve` runs it once at start-up, then on its schedule.
    pub run_on_start: bool,
    text: Arc<str>,
    file: Arc<Path>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub catalog: CatalogConfig,
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// `[[identity]]` rules, in order.
    pub identity: crate::identity::Identity,
    /// `[merge]`: per-field overrides of the merge rules.
    pub merge: crate::merge::MergePolicy,
    pub audit: AuditConfig,
    /// `[classify]`: production names and tier rules.
    pub classify: surveyor_model::classify::ClassifyRules,
    /// `[[scorecards]]`, in order.
    pub scorecards: Vec<surveyor_model::score::Scorecard>,
    pub connectors: Vec<ConnectorSpec>,
}

/// `[audit]`: what the audits report beyond their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditConfig {
    /// Report `cosmetic-difference` (sources give another title or description): off by default.
    pub cosmetic: bool,
}

impl Config {
    /// The directory relative paths in the config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path, kinds: &[KindSpec]) -> Result<Self, ConfigErrors> {
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the configuration: {e}"),
                hint: (e.kind() == std::io::ErrorKind::NotFound)
                    .then(|| "run `surveyor init` to write one, or pass --config".to_string()),
            }])
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // Point at the first bad byte: what precedes it is valid text to locate it in.
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let loc = Locator {
                text: valid,
                file: path,
            };
            let bad = e.as_bytes().get(valid.len()).copied().unwrap_or_default();
            ConfigErrors(vec![loc.error(
                valid.len()..valid.len(),
                &locate::key_at(valid, valid.len()),
                format!("not valid UTF-8 (byte 0x{bad:02x})"),
                Some("save the file as UTF-8".into()),
            )])
        })?;
        Self::parse(&text, path, kinds)
    }

    /// Parses configuration text; `file` is only used to name it in errors.
    pub fn parse(text: &str, file: &Path, kinds: &[KindSpec]) -> Result<Self, ConfigErrors> {
        let text: Arc<str> = Arc::from(text);
        let file: Arc<Path> = Arc::from(file);
        let loc = Locator {
            text: &text,
            file: &file,
        };
        if let Some(at) = too_deep(&text) {
            return Err(ConfigErrors(vec![
                loc.error(
                    at..at,
                    &shallow_key_at(&text, at),
                    format!("nested more than {MAX_NESTING} levels deep"),
                    Some(
                        "a surveyor.toml needs a handful of levels; is the file generated wrongly?"
                            .into(),
                    ),
                ),
            ]));
        }
        let root = DeTable::parse(&text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigErrors(vec![loc.error(
                span.clone(),
                &locate::key_at(&text, span.start),
                format!("invalid TOML: {}", e.message().trim()),
                None,
            )])
        })?;
        let mut errors = Vec::new();
        let mut r = Report {
            loc: &loc,
            errors: &mut errors,
        };
        check_keys(root.get_ref(), "", TOP_KEYS, &mut r);

        let catalog_table = section(root.get_ref(), "catalog", &mut r);
        if let Some(t) = catalog_table {
            check_keys(t, "catalog", CATALOG_KEYS, &mut r);
        }
        let catalog = parse_catalog(catalog_table, &mut r);
        let server_table = section(root.get_ref(), "server", &mut r);
        if let Some(t) = server_table {
            check_keys(t, "server", SERVER_KEYS, &mut r);
        }
        let server = parse_server(server_table, &mut r);
        let telemetry = parse_telemetry(root.get_ref().get("telemetry"), &mut r);
        let identity = parse_identity(root.get_ref().get("identity"), &mut r);

        let mut connectors: Vec<ConnectorSpec> = Vec::new();
        let tables = tables_of(root.get_ref().get("connectors"), "connectors", &mut r);
        for (index, path, span, t) in tables {
            let Some(spec) = parse_connector(t, index, span.clone(), kinds, &mut r) else {
                continue;
            };
            if let Some(prev) = connectors.iter().find(|c| c.id == spec.id) {
                r.push(
                    key_span(t, "id").unwrap_or(span),
                    &format!("{path}.id"),
                    format!(
                        "duplicate connector id {:?} (also connectors[{}])",
                        spec.id, prev.index
                    ),
                    None,
                );
            }
            connectors.push(spec);
        }

        let mut identity = identity;
        identity.groups = parse_groups(root.get_ref().get("groups"), &connectors, &mut r);
        let merge = parse_merge(
            section(root.get_ref(), "merge", &mut r),
            &connectors,
            &mut r,
        );
        let audit = parse_audit(section(root.get_ref(), "audit", &mut r), &mut r);
        let classify = parse_classify(section(root.get_ref(), "classify", &mut r), &mut r);
        let scorecards = crate::config::score::parse(root.get_ref().get("scorecards"), &mut r);

        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.line, e.column));
            return Err(ConfigErrors(errors));
        }
        Ok(Self {
            file: file.to_path_buf(),
            catalog: catalog.unwrap_or_else(CatalogConfig::default_for_errors),
            server,
            telemetry,
            identity,
            merge,
            audit,
            classify,
            scorecards,
            connectors,
        })
    }

    /// Resolves `sqlite://relative.db` against the config's directory, so `surveyor` works from
    /// any working directory. Other URLs are returned as written.
    pub fn database_url(&self) -> Secret {
        let url = self.catalog.database.expose();
        if let Some(rest) = url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(':')
        {
            let (path, query) = rest
                .split_once('?')
                .map_or((rest, None), |(p, q)| (p, Some(q)));
            let full = self.base_dir().join(path);
            let mut s = format!("sqlite://{}", full.display());
            if let Some(q) = query {
                s.push('?');
                s.push_str(q);
            }
            return Secret::new(s);
        }
        self.catalog.database.clone()
    }

    /// The connector's position: earlier connectors win merges.
    pub fn source_priority(&self) -> std::collections::BTreeMap<String, usize> {
        self.connectors
            .iter()
            .map(|c| (c.id.clone(), c.index))
            .collect()
    }
}

impl CatalogConfig {
    fn default_for_errors() -> Self {
        Self {
            database: Secret::new("sqlite://surveyor.db"),
            retention: Duration::from_secs(30 * 86_400),
            max_delete_ratio: 0.2,
            mass_delete_floor: 2,
        }
    }
}

impl fmt::Debug for ConnectorSpec {
    // The raw file text stays out: it may hold literal credentials someone pasted in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorSpec")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("schedule", &self.schedule)
            .field("enabled", &self.enabled)
            .field("file", &self.file)
            .finish()
    }
}

impl ConnectorSpec {
    /// Deserializes this connector's kind-specific keys into `T`, with located errors.
    /// Unknown keys were already rejected when the file was parsed.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigErrors> {
        let loc = Locator {
            text: &self.text,
            file: &self.file,
        };
        let fail = |span: Range<usize>, key: String, message: String| {
            ConfigErrors(vec![loc.error(span, &key, message, None)])
        };
        let root = DeTable::parse(&self.text)
            .map_err(|e| fail(0..0, String::new(), e.message().to_string()))?;
        let item = match root.get_ref().get("connectors").map(Spanned::get_ref) {
            Some(DeValue::Array(items)) => items.get(self.index).cloned(),
            _ => None,
        }
        .ok_or_else(|| {
            fail(
                0..0,
                format!("connectors[{}]", self.index),
                "missing".into(),
            )
        })?;
        let DeValue::Table(mut table) = item.get_ref().clone() else {
            return Err(fail(
                item.span(),
                format!("connectors[{}]", self.index),
                "must be a table".into(),
            ));
        };
        let span = item.span();
        for key in COMMON_CONNECTOR_KEYS {
            table.remove(*key);
        }
        let keys: Vec<(String, Range<usize>)> = table
            .iter()
            .map(|(k, v)| (k.get_ref().to_string(), v.span()))
            .collect();
        let value = Spanned::new(span.clone(), DeValue::Table(table));
        T::deserialize(toml::de::ValueDeserializer::from(value)).map_err(|e| {
            let espan = e.span().unwrap_or(span.clone());
            // Name the key whose value holds the error, when there is one.
            let message = e.message().trim();
            // A missing required key is reported like `id` and `kind`: at the table, by name.
            if let Some(missing) = message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                return fail(
                    espan,
                    join(&format!("connectors[{}]", self.index), missing),
                    format!("missing key `{missing}`"),
                );
            }
            let key = keys
                .iter()
                .find(|(_, s)| s.start <= espan.start && espan.end <= s.end)
                .map(|(k, _)| join(&format!("connectors[{}]", self.index), k))
                .unwrap_or_else(|| format!("connectors[{}]", self.index));
            fail(espan, key, message.to_string())
        })
    }

    /// Builds this connector as kind `K`: its keys read into `K::Config`, then `K`'s constructor.
    /// Errors of either are located in the file, at the key at fault.
    pub fn build<K: ConnectorKind>(&self, base_dir: &Path) -> Result<K, ConfigErrors> {
        let config = self.options::<K::Config>()?;
        K::from_config(&self.id, config, base_dir).map_err(|e| self.error_at(e.key, e.message))
    }

    /// An error about one of this connector's keys, located at that key's value (or at the
    /// connector's table when the key is absent): `file:line:col: connectors[i].key: message`.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigErrors {
        let loc = Locator {
            text: &self.text,
            file: &self.file,
        };
        let table = DeTable::parse(&self.text).ok().and_then(|root| {
            match root.get_ref().get("connectors").map(Spanned::get_ref) {
                Some(DeValue::Array(items)) => items.get(self.index).cloned(),
                _ => None,
            }
        });
        let span = table
            .as_ref()
            .and_then(|item| match item.get_ref() {
                DeValue::Table(t) => t.get(key).map(Spanned::span),
                _ => None,
            })
            .or_else(|| table.as_ref().map(Spanned::span))
            .unwrap_or(0..0);
        let name = if key.is_empty() {
            format!("connectors[{}]", self.index)
        } else {
            format!("connectors[{}].{key}", self.index)
        };
        ConfigErrors(vec![loc.error(span, &name, message.into(), None)])
    }

    /// The config file this connector was declared in.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

struct Locator<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Locator<'_> {
    fn error(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message,
            hint,
        }
    }
}

/// The errors found so far, and where in the file they are.
struct Report<'a> {
    loc: &'a Locator<'a>,
    errors: &'a mut Vec<ConfigError>,
}

impl Report<'_> {
    fn push(&mut self, span: Range<usize>, key: &str, message: String, hint: Option<String>) {
        self.errors.push(self.loc.error(span, key, message, hint));
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn join(prefix: &str, key: &str) -> String {
    let key = locate::key_segment(key);
    if prefix.is_empty() {
        key.into_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The closest allowed key, when one is close enough to be a typo.
fn did_you_mean(key: &str, allowed: &[&str]) -> Option<String> {
    allowed
        .iter()
        .map(|a| (strsim::jaro_winkler(key, a), *a))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, a)| format!("did you mean `{a}`?"))
}

fn check_keys(table: &DeTable<'_>, prefix: &str, allowed: &[&str], r: &mut Report<'_>) {
    for key in table.keys() {
        let name: &str = key.get_ref();
        if !allowed.contains(&name) {
            let hint = did_you_mean(name, allowed)
                .or_else(|| Some(format!("expected one of: {}", allowed.join(", "))));
            r.push(key.span(), &join(prefix, name), "unknown key".into(), hint);
        }
    }
}

fn key_span(table: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    table.get(key).map(Spanned::span)
}

fn section<'a, 'i>(
    root: &'a DeTable<'i>,
    name: &str,
    r: &mut Report<'_>,
) -> Option<&'a DeTable<'i>> {
    let v = root.get(name)?;
    match v.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            r.push(v.span(), name, format!("must be a table ([{name}])"), None);
            None
        }
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn get_str(table: &DeTable<'_>, key: &str, path: &str, r: &mut Report<'_>) -> Option<String> {
    let v = table.get(key)?;
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        other => {
            r.push(
                v.span(),
                path,
                format!("expected a string, found {}", type_name(other)),
                None,
            );
            None
        }
    }
}

/// Expands `${ENV}` references in a string value, reporting a missing variable at the key.
fn expanded(table: &DeTable<'_>, key: &str, path: &str, r: &mut Report<'_>) -> Option<String> {
    let raw = get_str(table, key, path, r)?;
    match expand_env(&raw) {
        Ok(s) => Some(s),
        Err(e) => {
            let span = key_span(table, key).unwrap_or(0..0);
            r.push(span, path, e.to_string(), None);
            None
        }
    }
}

fn string_list(t: &DeTable<'_>, key: &str, path: &str, r: &mut Report<'_>) -> Vec<String> {
    let Some(v) = t.get(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        r.push(v.span(), path, "expected an array of strings".into(), None);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => out.push(s.trim().to_ascii_lowercase()),
            _ => r.push(
                item.span(),
                &format!("{path}[{i}]"),
                "expected a non-empty string".into(),
                None,
            ),
        }
    }
    out
}

/// The tables of an array of tables `[[name]]`, each with its index, its path (`name[i]`) and
/// its span; anything else where a table belongs is an error.
fn tables_of<'a, 'i>(
    item: Option<&'a Spanned<DeValue<'i>>>,
    name: &str,
    r: &mut Report<'_>,
) -> Vec<(usize, String, Range<usize>, &'a DeTable<'i>)> {
    let Some(item) = item else {
        return Vec::new();
    };
    let DeValue::Array(items) = item.get_ref() else {
        let message = format!("must be an array of tables ([[{name}]])");
        r.push(item.span(), name, message, None);
        return Vec::new();
    };
    let mut tables = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let path = format!("{name}[{i}]");
        match t.get_ref() {
            DeValue::Table(table) => tables.push((i, path, t.span(), table)),
            _ => r.push(
                t.span(),
                &path,
                format!("must be a table ([[{name}]])"),
                None,
            ),
        }
    }
    tables
}

fn parse_identity(
    item: Option<&Spanned<DeValue<'_>>>,
    r: &mut Report<'_>,
) -> crate::identity::Identity {
    let mut out = crate::identity::Identity::default();
    for (_, path, _, table) in tables_of(item, "identity", r) {
        check_keys(table, &path, IDENTITY_KEYS, r);
        let mut rule = crate::identity::IdentityRule {
            kinds: string_list(table, "kinds", &format!("{path}.kinds"), r),
            strip_suffixes: string_list(
                table,
                "strip_suffixes",
                &format!("{path}.strip_suffixes"),
                r,
            ),
            ..Default::default()
        };
        if let Some(v) = table.get("separators") {
            match v.get_ref() {
                DeValue::Boolean(b) => rule.separators = *b,
                other => r.push(
                    v.span(),
                    &format!("{path}.separators"),
                    format!("expected a boolean, found {}", type_name(other)),
                    None,
                ),
            }
        }
        if let Some(v) = table.get("aliases") {
            match v.get_ref() {
                DeValue::Table(aliases) => {
                    for (canonical, names) in aliases.iter() {
                        let canonical_name = canonical.get_ref().to_ascii_lowercase();
                        if !surveyor_model::validate::is_valid_object_name(&canonical_name) {
                            r.push(
                                names.span(),
                                &join(&format!("{path}.aliases"), canonical.get_ref()),
                                format!("{canonical_name:?} is not a valid entity name"),
                                None,
                            );
                            continue;
                        }
                        for alias in string_list(
                            aliases,
                            canonical.get_ref(),
                            &join(&format!("{path}.aliases"), canonical.get_ref()),
                            r,
                        ) {
                            rule.aliases.insert(alias, canonical_name.clone());
                        }
                    }
                }
                other => r.push(
                    v.span(),
                    &format!("{path}.aliases"),
                    format!(
                        "expected a table of canonical name = [aliases], found {}",
                        type_name(other)
                    ),
                    None,
                ),
            }
        }
        out.rules.push(rule);
    }
    out
}

/// How deep arrays and inline tables may nest: the TOML parser recurses per level, and a
/// file nested thousands deep would overflow the stack instead of being an error.
const MAX_NESTING: usize = 64;

/// The key of the line holding byte `at`, under the last table header above it, read as text:
/// the parser (which [`locate::key_at`] uses) cannot read a file nested too deep.
fn shallow_key_at(text: &str, at: usize) -> String {
    let head = &text[..at.min(text.len())];
    let line = head.rsplit('\n').next().unwrap_or_default();
    let key = line.split('=').next().unwrap_or_default().trim();
    let table = head
        .lines()
        .rev()
        .skip(1)
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim())
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty() || key.starts_with('[')) {
        (_, true) => table.to_string(),
        (true, false) => key.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// The byte offset where `text` first nests arrays and inline tables deeper than
/// [`MAX_NESTING`], outside strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                let triple = bytes[i..].starts_with(if quote == b'"' { b"\"\"\"" } else { b"'''" });
                let close: &[u8] = if triple {
                    if quote == b'"' { b"\"\"\"" } else { b"'''" }
                } else if quote == b'"' {
                    b"\""
                } else {
                    b"'"
                };
                i += close.len();
                while i < bytes.len() && !bytes[i..].starts_with(close) {
                    // A basic string's escape hides the next byte.
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += close.len() - 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `[merge]`: one entry per field, by JSON pointer, e.g.
/// `"/spec/lifecycle" = { sources = ["jira"] }` (Jira's value wins that field) or
/// `"/metadata/description" = { rule = "precedence" }`.
fn parse_merge(
    table: Option<&DeTable<'_>>,
    connectors: &[ConnectorSpec],
    r: &mut Report<'_>,
) -> crate::merge::MergePolicy {
    let mut policy = crate::merge::MergePolicy::default();
    let Some(table) = table else {
        return policy;
    };
    for (field, v) in table.iter() {
        let pointer = field.get_ref().to_string();
        let path = join("merge", &pointer);
        if !pointer.starts_with('/') || pointer.len() < 2 {
            r.push(
                field.span(),
                &path,
                format!(
                    "{pointer:?} is not a field: write a JSON pointer such as \"/spec/lifecycle\""
                ),
                None,
            );
            continue;
        }
        if crate::merge::is_identity_field(&pointer) {
            r.push(
                field.span(),
                &path,
                format!("{pointer} names the entity; it is never merged"),
                None,
            );
            continue;
        }
        let DeValue::Table(t) = v.get_ref() else {
            r.push(
                v.span(),
                &path,
                format!(
                    "expected a table such as {{ rule = \"union\", sources = [\"jira\"] }}, found {}",
                    type_name(v.get_ref())
                ),
                None,
            );
            continue;
        };
        check_keys(t, &path, MERGE_FIELD_KEYS, r);
        let mut field_policy = crate::merge::FieldPolicy::default();
        if let Some(rule) = get_str(t, "rule", &format!("{path}.rule"), r) {
            match crate::merge::MergeRule::parse(&rule) {
                Some(rule) => field_policy.rule = Some(rule),
                None => r.push(
                    key_span(t, "rule").unwrap_or(0..0),
                    &format!("{path}.rule"),
                    format!("unknown rule {rule:?}"),
                    Some(format!(
                        "expected one of: {}",
                        crate::merge::MergeRule::NAMES.join(", ")
                    )),
                ),
            }
        }
        let sources_path = format!("{path}.sources");
        for (i, id) in string_list(t, "sources", &sources_path, r)
            .into_iter()
            .enumerate()
        {
            if let Some(c) = connectors.iter().find(|c| c.id.eq_ignore_ascii_case(&id)) {
                field_policy.sources.push(c.id.clone());
            } else {
                let span = t
                    .get("sources")
                    .and_then(|v| match v.get_ref() {
                        DeValue::Array(items) => items.get(i).map(Spanned::span),
                        _ => None,
                    })
                    .unwrap_or(0..0);
                let ids: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
                r.push(
                    span,
                    &format!("{sources_path}[{i}]"),
                    format!("no connector has id {id:?}"),
                    Some(format!("connector ids: {}", ids.join(", "))),
                );
            }
        }
        policy.fields.insert(pointer, field_policy);
    }
    policy
}

/// `[audit]`.
fn parse_audit(table: Option<&DeTable<'_>>, r: &mut Report<'_>) -> AuditConfig {
    let mut out = AuditConfig::default();
    let Some(table) = table else {
        return out;
    };
    check_keys(table, "audit", AUDIT_KEYS, r);
    if let Some(v) = table.get("cosmetic") {
        match v.get_ref() {
            DeValue::Boolean(b) => out.cosmetic = *b,
            other => r.push(
                v.span(),
                "audit.cosmetic",
                format!("expected a boolean, found {}", type_name(other)),
                None,
            ),
        }
    }
    out
}

/// `[classify]`: `production` names, `default_tier`, and `[[classify.tier]]` rules (which
/// replace the default rules whole).
fn parse_classify(
    table: Option<&DeTable<'_>>,
    r: &mut Report<'_>,
) -> surveyor_model::classify::ClassifyRules {
    use surveyor_model::classify::TierRule;
    let mut out = surveyor_model::classify::ClassifyRules::default();
    let Some(table) = table else {
        return out;
    };
    check_keys(table, "classify", CLASSIFY_KEYS, r);
    if table.contains_key("production") {
        out.production = string_list(table, "production", "classify.production", r);
    }
    if let Some(tier) = get_str(table, "default_tier", "classify.default_tier", r) {
        match score::name(&tier, "tier") {
            Ok(t) => out.default_tier = t,
            Err(e) => r.push(
                key_span(table, "default_tier").unwrap_or(0..0),
                "classify.default_tier",
                e,
                None,
            ),
        }
    }
    let rules = tables_of(table.get("tier"), "classify.tier", r);
    if table.contains_key("tier") {
        out.tiers.clear();
    }
    for (_, path, span, t) in rules {
        check_keys(t, &path, TIER_KEYS, r);
        let key = |k: &str| format!("{path}.{k}");
        let mut rule = TierRule::default();
        match get_str(t, "tier", &key("tier"), r).map(|n| score::name(&n, "tier")) {
            Some(Ok(name)) => rule.tier = name,
            Some(Err(e)) => r.push(
                key_span(t, "tier").unwrap_or(span.clone()),
                &key("tier"),
                e,
                None,
            ),
            None => r.push(
                span.clone(),
                &key("tier"),
                "missing: the tier this rule gives (tier = \"tier-1\")".into(),
                None,
            ),
        }
        let mut boolean = |k: &str| match t.get(k).map(|v| (v.span(), v.get_ref())) {
            Some((_, DeValue::Boolean(b))) => Some(*b),
            Some((at, other)) => {
                r.push(
                    at,
                    &key(k),
                    format!("expected a boolean, found {}", type_name(other)),
                    None,
                );
                None
            }
            None => None,
        };
        rule.on_call = boolean("on_call");
        rule.production = boolean("production");
        if let Some(u) = get_str(t, "urgency", &key("urgency"), r) {
            const URGENCIES: [&str; 4] = ["high", "low", "severity_based", "support-hours"];
            let u = u.trim().to_ascii_lowercase();
            if URGENCIES.contains(&u.as_str()) {
                rule.urgency = Some(u);
            } else {
                r.push(
                    key_span(t, "urgency").unwrap_or(span.clone()),
                    &key("urgency"),
                    format!("unknown urgency {u:?}"),
                    Some(format!("expected one of: {}", URGENCIES.join(", "))),
                );
            }
        }
        let mut count = |k: &str| {
            let v = t.get(k)?;
            match whole_number(v.get_ref(), 0, 1_000_000) {
                Ok(n) => Some(n),
                Err(e) => {
                    r.push(v.span(), &key(k), e, None);
                    None
                }
            }
        };
        rule.min_escalation_levels = count("min_escalation_levels");
        rule.min_replicas = count("min_replicas");
        rule.min_dependents = count("min_dependents");
        if rule.conditions().is_empty() && !rule.tier.is_empty() {
            r.push(
                span,
                &path,
                "a tier rule with no condition always holds".into(),
                Some("use classify.default_tier for the tier of the rest".into()),
            );
        }
        out.tiers.push(rule);
    }
    out
}

/// `[[groups]]`: one team's names in each source, e.g.
/// `name = "payments"`, `github = "payments"`, `pagerduty = "Payments Team"`. Keys other than
/// `name` are connector ids; values are compared as entity names (`Payments Team` is
/// `payments-team`). Returns source id -> (source's name -> catalog name).
fn parse_groups(
    item: Option<&Spanned<DeValue<'_>>>,
    connectors: &[ConnectorSpec],
    r: &mut Report<'_>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (_, path, span, table) in tables_of(item, "groups", r) {
        let name = match table.get("name").map(|v| (v.span(), v.get_ref())) {
            Some((span, DeValue::String(n))) => match surveyor_model::names::entity_name(n) {
                Some(name) => Some(name),
                None => {
                    r.push(
                        span,
                        &format!("{path}.name"),
                        format!("{n:?} cannot be an entity name"),
                        None,
                    );
                    None
                }
            },
            Some((span, other)) => {
                r.push(
                    span,
                    &format!("{path}.name"),
                    format!("expected a string, found {}", type_name(other)),
                    None,
                );
                None
            }
            None => {
                r.push(
                    span.clone(),
                    &path,
                    "missing key `name` (the group's name in the catalog)".into(),
                    None,
                );
                None
            }
        };
        for (key, value) in table.iter() {
            let source = key.get_ref();
            if source == "name" {
                continue;
            }
            let at = format!("{path}.{source}");
            if !connectors.iter().any(|c| c.id == source.as_ref()) {
                let ids: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
                r.push(
                    key.span(),
                    &at,
                    format!("no connector has the id {source:?}"),
                    Some(format!(
                        "keys other than `name` are connector ids: {}",
                        ids.join(", ")
                    )),
                );
                continue;
            }
            let DeValue::String(theirs) = value.get_ref() else {
                r.push(
                    value.span(),
                    &at,
                    format!("expected a string, found {}", type_name(value.get_ref())),
                    None,
                );
                continue;
            };
            let Some(theirs) = surveyor_model::names::entity_name(theirs) else {
                r.push(
                    value.span(),
                    &at,
                    format!("{theirs:?} cannot be an entity name"),
                    None,
                );
                continue;
            };
            if let Some(name) = &name {
                let mapping = out.entry(source.to_string()).or_default();
                if let Some(prev) = mapping.insert(theirs.clone(), name.clone())
                    && prev != *name
                {
                    r.push(
                        value.span(),
                        &at,
                        format!("{theirs:?} is already mapped to the group {prev:?}"),
                        None,
                    );
                }
            }
        }
    }
    out
}

fn parse_telemetry(item: Option<&Spanned<DeValue<'_>>>, r: &mut Report<'_>) -> TelemetryConfig {
    let mut c = TelemetryConfig::default();
    let Some(item) = item else { return c };
    let DeValue::Table(t) = item.get_ref() else {
        r.push(
            item.span(),
            "telemetry",
            "must be a table ([telemetry])".into(),
            None,
        );
        return c;
    };
    check_keys(t, "telemetry", TELEMETRY_KEYS, r);
    if let Some(e) = expanded(t, "otlp_endpoint", "telemetry.otlp_endpoint", r) {
        if e.starts_with("http://") || e.starts_with("https://") {
            c.otlp_endpoint = Some(e.trim_end_matches('/').to_string());
        } else {
            r.push(
                key_span(t, "otlp_endpoint").unwrap_or(0..0),
                "telemetry.otlp_endpoint",
                format!("{e:?} is not an http(s) URL"),
                Some("the collector's OTLP/HTTP address, e.g. http://otel-collector:4318".into()),
            );
        }
    }
    if let Some(n) = get_str(t, "service_name", "telemetry.service_name", r) {
        c.service_name = n;
    }
    c
}

fn parse_server(table: Option<&DeTable<'_>>, r: &mut Report<'_>) -> ServerConfig {
    let mut c = ServerConfig {
        listen: "127.0.0.1:7878".into(),
        read_tokens: Vec::new(),
        trigger_tokens: Vec::new(),
        cors_origins: Vec::new(),
        max_page_size: 1000,
        shutdown_grace: Duration::from_secs(30),
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: None,
        max_expensive_requests: None,
        console: true,
    };
    let Some(t) = table else { return c };
    if let Some(v) = t.get("console") {
        match v.get_ref() {
            DeValue::Boolean(b) => c.console = *b,
            other => r.push(
                v.span(),
                "server.console",
                format!("expected a boolean, found {}", type_name(other)),
                None,
            ),
        }
    }
    if let Some(g) = get_str(t, "shutdown_grace", "server.shutdown_grace", r) {
        match parse_duration(&g) {
            Ok(d) if d <= Duration::from_secs(3600) => c.shutdown_grace = d,
            Ok(_) => r.push(
                key_span(t, "shutdown_grace").unwrap_or(0..0),
                "server.shutdown_grace",
                format!("{g:?} is more than an hour"),
                Some("orchestrators kill a process long before that; e.g. \"30s\"".into()),
            ),
            Err(m) => r.push(
                key_span(t, "shutdown_grace").unwrap_or(0..0),
                "server.shutdown_grace",
                m,
                None,
            ),
        }
    }
    if let Some(l) = get_str(t, "listen", "server.listen", r) {
        if l.parse::<std::net::SocketAddr>().is_err() {
            r.push(
                key_span(t, "listen").unwrap_or(0..0),
                "server.listen",
                format!("{l:?} is not an address and port"),
                Some("e.g. \"0.0.0.0:7878\" or \"127.0.0.1:7878\"".into()),
            );
        }
        c.listen = l;
    }
    let mut strings = |key: &str, secret: bool| -> Vec<String> {
        let path = format!("server.{key}");
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            r.push(v.span(), &path, "expected an array of strings".into(), None);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) if secret => match crate::config::expand_secret(s) {
                    Ok(v) if !v.trim().is_empty() => out.push(v),
                    Ok(_) => r.push(
                        item.span(),
                        &format!("{path}[{i}]"),
                        "is empty".into(),
                        None,
                    ),
                    Err(m) => r.push(item.span(), &format!("{path}[{i}]"), m, None),
                },
                DeValue::String(s) => out.push(s.to_string()),
                other => r.push(
                    item.span(),
                    &format!("{path}[{i}]"),
                    format!("expected a string, found {}", type_name(other)),
                    None,
                ),
            }
        }
        out
    };
    c.read_tokens = strings("read_tokens", true)
        .into_iter()
        .map(Secret::new)
        .collect();
    c.trigger_tokens = strings("trigger_tokens", true)
        .into_iter()
        .map(Secret::new)
        .collect();
    c.cors_origins = strings("cors_origins", false);
    check_origins(t, r);
    if let Some(v) = t.get("max_page_size") {
        match whole_number(v.get_ref(), 1, u64::from(u32::MAX)) {
            Ok(n) => c.max_page_size = u32::try_from(n).unwrap_or(u32::MAX),
            Err(m) => r.push(v.span(), "server.max_page_size", m, None),
        }
    }
    let mut duration = |key: &str, default: Duration| -> Duration {
        let path = format!("server.{key}");
        let Some(text) = get_str(t, key, &path, r) else {
            return default;
        };
        let span = key_span(t, key).unwrap_or(0..0);
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                r.push(span, &path, "must be longer than 0s".into(), None);
                default
            }
            Ok(d) => d,
            Err(m) => {
                r.push(span, &path, m, None);
                default
            }
        }
    };
    c.header_read_timeout = duration("header_read_timeout", c.header_read_timeout);
    c.idle_timeout = duration("idle_timeout", c.idle_timeout);
    // Beyond these no single process serves usefully; more is a typo.
    for (key, max, slot) in [
        ("max_connections", 1_000_000, &mut c.max_connections),
        (
            "max_expensive_requests",
            10_000,
            &mut c.max_expensive_requests,
        ),
    ] {
        if let Some(v) = t.get(key) {
            match whole_number(v.get_ref(), 1, max) {
                Ok(n) => *slot = u32::try_from(n).ok(),
                Err(m) => r.push(v.span(), &format!("server.{key}"), m, None),
            }
        }
    }
    c
}

/// Each `server.cors_origins` entry must be `*` or an origin exactly as browsers send it in
/// the `Origin` header; anything else would never match and be dropped without a word.
fn check_origins(t: &DeTable<'_>, r: &mut Report<'_>) {
    let Some(v) = t.get("cors_origins") else {
        return;
    };
    let DeValue::Array(items) = v.get_ref() else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        if let DeValue::String(o) = item.get_ref()
            && let Some((problem, hint)) = origin_problem(o)
        {
            r.push(
                item.span(),
                &format!("server.cors_origins[{i}]"),
                format!("{o:?} {problem}"),
                Some(hint),
            );
        }
    }
}

/// Why `o` is not an origin (`scheme://host[:port]`, lowercase, nothing after), if it is not.
fn origin_problem(o: &str) -> Option<(String, String)> {
    const HINT: &str = "an origin is scheme://host[:port], e.g. \"https://portal.example.com\" or \"http://localhost:3000\"; \"*\" allows any";
    if o == "*" {
        return None;
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return Some(("is not an origin".into(), HINT.into()));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
    if !scheme_ok {
        return Some(("has no valid scheme".into(), HINT.into()));
    }
    if let Some(cut) = rest.find(['/', '?', '#']) {
        let bare = format!("{scheme}://{}", &rest[..cut]);
        return Some((
            "has a path, query or fragment, which an origin never has".into(),
            format!("write {bare:?}"),
        ));
    }
    if rest.contains('@') {
        return Some((
            "has credentials, which an origin never has".into(),
            HINT.into(),
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (rest, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Some((format!("has an invalid port {p:?}"), HINT.into()));
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    let host_ok = ipv6
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    if !host_ok {
        return Some(("has no valid host".into(), HINT.into()));
    }
    if o.chars().any(|c| c.is_ascii_uppercase()) {
        return Some((
            "has capital letters; browsers send origins in lowercase, so it would never match"
                .into(),
            format!("write {:?}", o.to_ascii_lowercase()),
        ));
    }
    None
}

/// What is missing from a database URL that has a valid scheme, if anything. Says nothing of
/// the URL's text: it may carry a password.
fn database_url_problem(db: &str) -> Option<&'static str> {
    if let Some(rest) = db.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        return path
            .trim()
            .is_empty()
            .then_some("names no database file (sqlite://path.db, or sqlite::memory: for a catalog that lasts one run)");
    }
    let rest = db
        .strip_prefix("postgresql://")
        .or_else(|| db.strip_prefix("postgres://"))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next().unwrap_or_default();
    let host_in_query = query.split('&').any(|kv| kv.starts_with("host="));
    (host.is_empty() && !host_in_query)
        .then_some("names no host (postgres://user@host:5432/database)")
}

/// An integer in `min..=max`, with a message saying which bound a value misses.
fn whole_number(v: &DeValue<'_>, min: u64, max: u64) -> Result<u64, String> {
    let DeValue::Integer(i) = v else {
        return Err(format!("expected a whole number, found {}", type_name(v)));
    };
    let raw = i.as_str().replace('_', "");
    match raw.parse::<i128>() {
        Ok(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
            u64::try_from(n).map_err(|_| format!("{raw} is outside {min}..={max}"))
        }
        _ => Err(format!("{raw} is outside {min}..={max}")),
    }
}

/// `${ENV}` expansion for a string found inside an array.
fn expand_secret(s: &str) -> Result<String, String> {
    surveyor_model::secret::expand_env(s).map_err(|e| e.to_string())
}

fn parse_catalog(table: Option<&DeTable<'_>>, r: &mut Report<'_>) -> Option<CatalogConfig> {
    let mut c = CatalogConfig::default_for_errors();
    let Some(t) = table else { return Some(c) };
    let before = r.errors.len();
    if let Some(db) = expanded(t, "database", "catalog.database", r) {
        if db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
        {
            if let Some(problem) = database_url_problem(&db) {
                r.push(
                    key_span(t, "database").unwrap_or(0..0),
                    "catalog.database",
                    format!("the database URL {problem}"),
                    None,
                );
            }
            c.database = Secret::new(db);
        } else {
            let span = key_span(t, "database").unwrap_or(0..0);
            r.push(
                span,
                "catalog.database",
                "unsupported database URL".into(),
                Some("use sqlite://path.db or postgres://user@host/db".into()),
            );
        }
    }
    if let Some(retention) = get_str(t, "retention", "catalog.retention", r) {
        match parse_duration(&retention) {
            Ok(d) => c.retention = d,
            Err(m) => r.push(
                key_span(t, "retention").unwrap_or(0..0),
                "catalog.retention",
                m,
                None,
            ),
        }
    }
    if let Some(v) = t.get("max_delete_ratio") {
        let ratio = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
            _ => None,
        };
        match ratio {
            Some(ratio) if (0.0..=1.0).contains(&ratio) => c.max_delete_ratio = ratio,
            _ => r.push(
                v.span(),
                "catalog.max_delete_ratio",
                "expected a number from 0.0 to 1.0".into(),
                None,
            ),
        }
    }
    if let Some(v) = t.get("mass_delete_floor") {
        match whole_number(v.get_ref(), 0, i64::MAX as u64) {
            Ok(n) => c.mass_delete_floor = n,
            Err(m) => r.push(v.span(), "catalog.mass_delete_floor", m, None),
        }
    }
    (r.errors.len() == before).then_some(c)
}

fn parse_connector(
    t: &DeTable<'_>,
    index: usize,
    span: Range<usize>,
    kinds: &[KindSpec],
    r: &mut Report<'_>,
) -> Option<ConnectorSpec> {
    let path = format!("connectors[{index}]");
    let before = r.errors.len();
    let id = get_str(t, "id", &format!("{path}.id"), r);
    let kind = get_str(t, "kind", &format!("{path}.kind"), r);
    match &id {
        None if r.errors.len() == before => r.push(
            span.clone(),
            &format!("{path}.id"),
            "missing key `id`".into(),
            None,
        ),
        Some(id) if !surveyor_model::validate::is_valid_object_name(id) => r.push(
            key_span(t, "id").unwrap_or(span.clone()),
            &format!("{path}.id"),
            format!("{id:?} is not a valid id: 1-63 characters of [a-zA-Z0-9] separated by [-_.]"),
            None,
        ),
        _ => {}
    }
    let spec = match &kind {
        None => {
            if t.get("kind").is_none() {
                r.push(
                    span.clone(),
                    &format!("{path}.kind"),
                    "missing key `kind`".into(),
                    Some(format!(
                        "one of: {}",
                        kinds.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    )),
                );
            }
            None
        }
        Some(k) => match kinds.iter().find(|s| s.name == k) {
            Some(s) => Some(s),
            None => {
                let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
                r.push(
                    key_span(t, "kind").unwrap_or(span.clone()),
                    &format!("{path}.kind"),
                    format!("unknown connector kind {k:?}"),
                    did_you_mean(k, &names)
                        .or_else(|| Some(format!("known kinds: {}", names.join(", ")))),
                );
                None
            }
        },
    };
    if let Some(spec) = spec {
        let mut allowed: Vec<&str> = COMMON_CONNECTOR_KEYS.to_vec();
        allowed.extend(spec.keys);
        check_keys(t, &path, &allowed, r);
    }
    let schedule = get_str(t, "schedule", &format!("{path}.schedule"), r);
    if let Some(s) = &schedule {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        match parser.parse(s) {
            Err(e) => r.push(
                key_span(t, "schedule").unwrap_or(span.clone()),
                &format!("{path}.schedule"),
                format!("invalid cron expression {s:?}: {e}"),
                Some("5 fields (minute hour day month weekday) or 6 with seconds first".into()),
            ),
            // `0 0 31 2 *` parses but names a day that never comes: the connector would never run.
            Ok(cron)
                if cron
                    .find_next_occurrence(&chrono::Utc::now(), false)
                    .is_err() =>
            {
                r.push(
                    key_span(t, "schedule").unwrap_or(span.clone()),
                    &format!("{path}.schedule"),
                    format!("the schedule {s:?} never fires: no date matches it"),
                    Some("check the day and month fields: February has no 30th or 31st".into()),
                )
            }
            Ok(_) => {}
        }
    }
    let enabled = match t.get("enabled") {
        None => true,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            other => {
                r.push(
                    v.span(),
                    &format!("{path}.enabled"),
                    format!("expected a boolean, found {}", type_name(other)),
                    None,
                );
                true
            }
        },
    };
    let timezone = match get_str(t, "timezone", &format!("{path}.timezone"), r).as_deref() {
        None | Some("UTC" | "utc" | "Etc/UTC") => ScheduleZone::Utc,
        Some("local") => ScheduleZone::Local,
        Some(other) => match other.parse::<chrono_tz::Tz>() {
            Ok(tz) => ScheduleZone::Named(tz),
            Err(_) => {
                r.push(
                    key_span(t, "timezone").unwrap_or(span.clone()),
                    &format!("{path}.timezone"),
                    format!("unknown time zone {other:?}"),
                    Some(
                        "\"UTC\" (the default), \"local\", or an IANA name like \"Europe/Berlin\""
                            .into(),
                    ),
                );
                ScheduleZone::Utc
            }
        },
    };
    let mut duration = |key: &str, default: Duration| -> Duration {
        match get_str(t, key, &format!("{path}.{key}"), r) {
            None => default,
            Some(text) => match parse_duration(&text) {
                Ok(d) => d,
                Err(m) => {
                    r.push(
                        key_span(t, key).unwrap_or(span.clone()),
                        &format!("{path}.{key}"),
                        m,
                        None,
                    );
                    default
                }
            },
        }
    };
    let timeout = duration("timeout", Duration::from_secs(3600));
    let jitter = duration("jitter", Duration::ZERO);
    if timeout.is_zero() {
        r.push(
            key_span(t, "timeout").unwrap_or(span.clone()),
            &format!("{path}.timeout"),
            "must be longer than 0s".into(),
            None,
        );
    }
    let run_on_start = match t.get("run_on_start") {
        None => false,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            other => {
                r.push(
                    v.span(),
                    &format!("{path}.run_on_start"),
                    format!("expected a boolean, found {}", type_name(other)),
                    None,
                );
                false
            }
        },
    };
    if r.errors.len() != before {
        return None;
    }
    Some(ConnectorSpec {
        index,
        id: id?,
        kind: kind?,
        schedule,
        enabled,
        timezone,
        timeout,
        jitter,
        run_on_start,
        text: Arc::from(r.loc.text),
        file: Arc::from(r.loc.file),
    })
}

/// Parses `30d`, `12h`, `90m`, `45s` (one number and one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number and a unit, e.g. 30d, 12h, 90m")
    })?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unit must be one of s, m, h, d, w"
            ));
        }
    };
    // A hundred years is longer than any retention or age anyone means; more is a typo.
    const MAX_SECS: u64 = 100 * 366 * 86_400;
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(format!("invalid duration {s:?}: longer than 100 years")),
    }
}

mod locate;
mod score;
#[cfg(test)]
mod tests;
