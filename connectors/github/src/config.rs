//! `[[connectors]] kind = "github"`: the config table, its defaults, and the checks that turn
//! it into settings the crawl can trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;
use surveyor_model::Secret;

/// Keys a `kind = "github"` table accepts besides the common ones.
pub const KEYS: &[&str] = &[
    "orgs",
    "token",
    "app_id",
    "private_key_file",
    "installation_id",
    "api_url",
    "graphql_url",
    "include",
    "exclude",
    "topics",
    "skip_archived",
    "skip_forks",
    "namespace",
    "component_type",
    "lifecycle",
    "topic_types",
    "page_size",
    "rate_limit_reserve",
    "max_rate_limit_pause_secs",
    "requests_per_second",
    "max_retries",
    "timeout_secs",
    "cache_dir",
];

/// `[[connectors]] kind = "github"`.
///
/// ```toml
/// [[connectors]]
/// id = "github"
/// kind = "github"
/// orgs = ["acme"]
/// token = "${GITHUB_TOKEN}"        # or app_id + private_key_file + installation_id
/// exclude = ["sandbox-*"]
/// skip_forks = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// Organisation logins to crawl; each is one scope.
    pub orgs: Vec<String>,
    /// A personal access or installation token, as a `${ENV}` reference.
    pub token: Option<Secret>,
    /// GitHub App authentication: all three together, instead of `token`.
    pub app_id: Option<u64>,
    /// The app's private key (PEM), relative to the config file's directory.
    pub private_key_file: Option<PathBuf>,
    pub installation_id: Option<u64>,
    /// REST base: `https://api.github.com`, or `https://HOST/api/v3` for Enterprise Server.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// GraphQL endpoint; derived from `api_url` when absent (`/graphql`, or `/api/graphql` on
    /// Enterprise Server).
    pub graphql_url: Option<String>,
    /// Repository name globs to keep (default: all) and to drop.
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Keep only repositories with at least one of these topics (default: no filter).
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub skip_archived: bool,
    #[serde(default)]
    pub skip_forks: bool,
    /// The namespace for every entity this connector creates.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `spec.type` for a repository no topic rule matches.
    #[serde(default = "default_type")]
    pub component_type: String,
    /// `spec.lifecycle` for live repositories; archived ones are `deprecated`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// Topic -> `spec.type` (`{ library = "library", website = "website" }`); the first
    /// repository topic found here decides.
    #[serde(default = "default_topic_types")]
    pub topic_types: BTreeMap<String, String>,
    /// Repositories and teams per GraphQL page (GitHub allows at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Pause before the GraphQL quota falls under this share of the limit, until it resets.
    #[serde(default = "default_reserve")]
    pub rate_limit_reserve: f64,
    /// The longest such pause; a later reset leaves the org partial instead.
    #[serde(default = "default_max_pause")]
    pub max_rate_limit_pause_secs: u64,
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    #[serde(default = "default_retries")]
    pub max_retries: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Where REST ETags and bodies are kept between runs (relative to the config file's
    /// directory); default `.surveyor-cache/<connector id>`.
    pub cache_dir: Option<PathBuf>,
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_type() -> String {
    "service".into()
}
fn default_lifecycle() -> String {
    "production".into()
}
fn default_topic_types() -> BTreeMap<String, String> {
    [
        ("library", "library"),
        ("lib", "library"),
        ("sdk", "library"),
        ("website", "website"),
        ("frontend", "website"),
        ("documentation", "documentation"),
        ("docs", "documentation"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
fn default_page_size() -> u32 {
    100
}
fn default_reserve() -> f64 {
    0.1
}
fn default_max_pause() -> u64 {
    3600
}
fn default_rps() -> u32 {
    10
}
fn default_retries() -> usize {
    5
}
fn default_timeout() -> u64 {
    60
}

/// Why a github connector cannot be built from its config; each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum GithubConfigError {
    #[error("orgs: list at least one organisation login")]
    NoOrgs,
    #[error("orgs: {0:?} is not a valid organisation login")]
    BadOrg(String),
    #[error(
        "token: give either `token` or all of `app_id`, `private_key_file` and `installation_id` (missing: {0})"
    )]
    NoAuth(String),
    #[error("token: `token` and the GitHub App keys are both set; keep one")]
    TwoAuths,
    #[error("private_key_file: cannot read {path}: {message}")]
    Key { path: String, message: String },
    #[error("{key}: invalid glob {pattern:?}: {message}")]
    Glob {
        key: &'static str,
        pattern: String,
        message: String,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// How the connector proves who it is.
#[derive(Clone)]
pub enum Auth {
    Token(Secret),
    App {
        app_id: u64,
        /// The PEM, read at start-up so a missing file is a config error, not a crawl failure.
        key: Secret,
        installation_id: u64,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(***)"),
            Self::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "App {{ app_id: {app_id}, installation_id: {installation_id} }}"
            ),
        }
    }
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub orgs: Vec<String>,
    pub auth: Auth,
    pub api_url: String,
    pub graphql_url: String,
    pub include: Option<GlobSet>,
    pub exclude: Option<GlobSet>,
    pub topics: Vec<String>,
    pub skip_archived: bool,
    pub skip_forks: bool,
    pub namespace: String,
    pub component_type: String,
    pub lifecycle: String,
    pub topic_types: BTreeMap<String, String>,
    pub page_size: u32,
    pub reserve: f64,
    pub max_pause: Duration,
    pub requests_per_second: u32,
    pub max_retries: usize,
    pub timeout: Duration,
    pub cache_dir: PathBuf,
}

/// The smallest GraphQL page the adaptive page size shrinks to.
pub const MIN_PAGE: u32 = 10;

impl GithubConfig {
    /// Checks the table; `base_dir` is the config file's directory, `id` the connector's.
    pub fn settings(self, id: &str, base_dir: &Path) -> Result<Settings, GithubConfigError> {
        if self.orgs.is_empty() {
            return Err(GithubConfigError::NoOrgs);
        }
        for org in &self.orgs {
            let valid = !org.is_empty()
                && org.len() <= 39
                && org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !org.starts_with('-');
            if !valid {
                return Err(GithubConfigError::BadOrg(org.clone()));
            }
        }
        let app_keys = [
            self.app_id.is_some(),
            self.private_key_file.is_some(),
            self.installation_id.is_some(),
        ];
        let auth = match (
            self.token,
            self.app_id,
            self.private_key_file,
            self.installation_id,
        ) {
            (Some(_), ..) if app_keys.iter().any(|k| *k) => {
                return Err(GithubConfigError::TwoAuths);
            }
            (Some(token), ..) => {
                if token.expose().trim().is_empty() {
                    return Err(GithubConfigError::Invalid {
                        key: "token",
                        message: "is empty".into(),
                    });
                }
                Auth::Token(token)
            }
            (None, Some(app_id), Some(key_file), Some(installation_id)) => {
                let path = base_dir.join(&key_file);
                let pem = std::fs::read_to_string(&path).map_err(|e| GithubConfigError::Key {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                if !pem.contains("PRIVATE KEY-----") {
                    return Err(GithubConfigError::Key {
                        path: path.display().to_string(),
                        message: "not a PEM private key".into(),
                    });
                }
                Auth::App {
                    app_id,
                    key: Secret::new(pem),
                    installation_id,
                }
            }
            (None, app_id, key, installation) => {
                let missing: Vec<&str> = [
                    ("token", app_keys.iter().all(|k| !*k)),
                    ("app_id", app_id.is_none()),
                    ("private_key_file", key.is_none()),
                    ("installation_id", installation.is_none()),
                ]
                .into_iter()
                .filter_map(|(k, m)| m.then_some(k))
                .collect();
                return Err(GithubConfigError::NoAuth(missing.join(", ")));
            }
        };
        let api_url = self.api_url.trim_end_matches('/').to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(GithubConfigError::Invalid {
                key: "api_url",
                message: format!("{api_url:?} is not an http(s) URL"),
            });
        }
        let graphql_url = self
            .graphql_url
            .unwrap_or_else(|| graphql_url_for(&api_url));
        if !(1..=100).contains(&self.page_size) {
            return Err(GithubConfigError::Invalid {
                key: "page_size",
                message: format!("{} is outside 1..=100", self.page_size),
            });
        }
        if !(0.0..1.0).contains(&self.rate_limit_reserve) {
            return Err(GithubConfigError::Invalid {
                key: "rate_limit_reserve",
                message: format!(
                    "{} is not a share between 0 and 1 (0.1 keeps 10% in reserve)",
                    self.rate_limit_reserve
                ),
            });
        }
        if !surveyor_model::validate::is_valid_namespace(&self.namespace) {
            return Err(GithubConfigError::Invalid {
                key: "namespace",
                message: format!(
                    "{:?} is not a valid namespace (lower-case letters, digits and '-')",
                    self.namespace
                ),
            });
        }
        Ok(Settings {
            orgs: self.orgs,
            auth,
            api_url,
            graphql_url,
            include: globs("include", &self.include)?,
            exclude: globs("exclude", &self.exclude)?,
            topics: self.topics.iter().map(|t| t.to_lowercase()).collect(),
            skip_archived: self.skip_archived,
            skip_forks: self.skip_forks,
            namespace: self.namespace,
            component_type: self.component_type,
            lifecycle: self.lifecycle,
            topic_types: self
                .topic_types
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
            page_size: self.page_size.max(MIN_PAGE.min(self.page_size)),
            reserve: self.rate_limit_reserve,
            max_pause: Duration::from_secs(self.max_rate_limit_pause_secs),
            requests_per_second: self.requests_per_second.max(1),
            max_retries: self.max_retries,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
            cache_dir: base_dir.join(
                self.cache_dir
                    .unwrap_or_else(|| PathBuf::from(".surveyor-cache").join(id)),
            ),
        })
    }
}

/// GitHub.com serves GraphQL at `/graphql`; Enterprise Server at `/api/graphql`, beside (not
/// under) the REST root `/api/v3`.
pub fn graphql_url_for(api_url: &str) -> String {
    match api_url.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{api_url}/graphql"),
    }
}

fn globs(key: &'static str, patterns: &[String]) -> Result<Option<GlobSet>, GithubConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = globset::GlobBuilder::new(p)
            .case_insensitive(true)
            .build()
            .map_err(|e| GithubConfigError::Glob {
                key,
                pattern: p.clone(),
                message: e.kind().to_string(),
            })?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| GithubConfigError::Glob {
        key,
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> GithubConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn graphql_sits_beside_the_enterprise_rest_root() {
        assert_eq!(
            graphql_url_for("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url_for("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
    }

    #[test]
    fn auth_must_be_one_of_token_or_app() {
        let dir = tempfile::tempdir().unwrap();
        let err = config("orgs = [\"acme\"]")
            .settings("gh", dir.path())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("missing: token, app_id, private_key_file, installation_id"),
            "{err}"
        );
        let err = config("orgs = [\"acme\"]\napp_id = 1")
            .settings("gh", dir.path())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("missing: private_key_file, installation_id"),
            "{err}"
        );
        let err = config("orgs = [\"acme\"]\ntoken = \"x\"\napp_id = 1")
            .settings("gh", dir.path())
            .unwrap_err();
        assert!(matches!(err, GithubConfigError::TwoAuths));
        let err = config(
            "orgs = [\"acme\"]\napp_id = 1\ninstallation_id = 2\nprivate_key_file = \"nope.pem\"",
        )
        .settings("gh", dir.path())
        .unwrap_err();
        assert!(
            err.to_string().starts_with("private_key_file: cannot read"),
            "{err}"
        );
        let s = config("orgs = [\"acme\"]\ntoken = \"t\"")
            .settings("gh", dir.path())
            .unwrap();
        assert_eq!(format!("{:?}", s.auth), "Token(***)");
        assert_eq!(s.cache_dir, dir.path().join(".surveyor-cache/gh"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        for (toml, key) in [
            ("orgs = []\ntoken = \"t\"", "orgs"),
            ("orgs = [\"a b\"]\ntoken = \"t\"", "orgs"),
            (
                "orgs = [\"a\"]\ntoken = \"t\"\npage_size = 500",
                "page_size",
            ),
            (
                "orgs = [\"a\"]\ntoken = \"t\"\nexclude = [\"[\"]",
                "exclude",
            ),
            (
                "orgs = [\"a\"]\ntoken = \"t\"\nrate_limit_reserve = 2.0",
                "rate_limit_reserve",
            ),
            (
                "orgs = [\"a\"]\ntoken = \"t\"\napi_url = \"ftp://x\"",
                "api_url",
            ),
            (
                "orgs = [\"a\"]\ntoken = \"t\"\nnamespace = \"Bad Ns\"",
                "namespace",
            ),
        ] {
            let err = config(toml).settings("gh", dir.path()).unwrap_err();
            assert!(err.to_string().starts_with(key), "{toml}: {err}");
        }
    }
}
