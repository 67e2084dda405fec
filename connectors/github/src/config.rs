//! `[[connectors]] kind = "github"`: the config table, its defaults, and the checks that turn
//! it into settings the crawl can trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use surveyor_http::HttpConfig;
use surveyor_model::kit::{
    default_component_type, default_lifecycle, default_namespace, ensure, http_url, not_blank,
    number, within,
};
use surveyor_model::{ConfigError, Secret};
use surveyor_repofiles::forge::{Filters, Mapping, Segments, default_topic_types, globs};

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
    #[serde(
        default = "default_api_url",
        deserialize_with = "surveyor_model::secret::expanded"
    )]
    pub api_url: String,
    /// GraphQL endpoint; derived from `api_url` when absent (`/graphql`, or `/api/graphql` on
    /// Enterprise Server).
    #[serde(default, deserialize_with = "surveyor_model::secret::expanded_opt")]
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
    #[serde(default = "default_component_type")]
    pub component_type: String,
    /// `spec.lifecycle` for live repositories; archived ones are `deprecated`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// Topic -> `spec.type` (`{ library = "library", website = "website" }`); the first
    /// repository topic found here decides.
    #[serde(default = "default_topic_types")]
    pub topic_types: BTreeMap<String, String>,
    /// Repositories and teams per GraphQL page (GitHub allows at most 100).
    #[serde(default = "number::<_, 100>")]
    pub page_size: u32,
    /// Pause before the GraphQL quota falls under this share of the limit, until it resets.
    #[serde(default = "default_reserve")]
    pub rate_limit_reserve: f64,
    /// The longest such pause; a later reset leaves the org partial instead.
    #[serde(default = "number::<_, 3600>")]
    pub max_rate_limit_pause_secs: u64,
    #[serde(default = "number::<_, 10>")]
    pub requests_per_second: u32,
    #[serde(default = "number::<_, 5>")]
    pub max_retries: usize,
    #[serde(default = "number::<_, 60>")]
    pub timeout_secs: u64,
    /// Where REST ETags and bodies are kept between runs (relative to the config file's
    /// directory); default `.surveyor-cache/<connector id>`.
    pub cache_dir: Option<PathBuf>,
    /// The secret of the organisation's webhook, as a `${ENV}` reference: deliveries must carry
    /// its `X-Hub-Signature-256`. Without it this connector takes no webhooks.
    pub webhook_secret: Option<Secret>,
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}
fn default_reserve() -> f64 {
    0.1
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

impl Auth {
    /// The key whose value the API client is built from, to blame when it cannot be.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::App { .. } => "private_key_file",
        }
    }
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
    pub filters: Filters,
    pub mapping: Mapping,
    pub page_size: u32,
    pub reserve: f64,
    pub max_pause: Duration,
    pub http: HttpConfig,
    pub cache_dir: PathBuf,
    pub webhook_secret: Option<Secret>,
}

/// The smallest GraphQL page the adaptive page size shrinks to.
pub const MIN_PAGE: u32 = 10;

impl GithubConfig {
    /// Checks the table; `base_dir` is the config file's directory, `id` the connector's.
    pub fn settings(self, id: &str, base_dir: &Path) -> Result<Settings, ConfigError> {
        ensure(!self.orgs.is_empty(), "orgs", || {
            "list at least one organisation login".into()
        })?;
        for org in &self.orgs {
            let valid = !org.is_empty()
                && org.len() <= 39
                && org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !org.starts_with('-');
            ensure(valid, "orgs", || {
                format!("{org:?} is not a valid organisation login")
            })?;
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
                return Err(ConfigError::new(
                    "token",
                    "`token` and the GitHub App keys are both set; keep one",
                ));
            }
            (Some(token), ..) => {
                not_blank("token", token.expose())?;
                Auth::Token(token)
            }
            (None, Some(app_id), Some(key_file), Some(installation_id)) => {
                let path = base_dir.join(&key_file);
                let unusable = |why: String| {
                    ConfigError::new(
                        "private_key_file",
                        format!("cannot read {}: {why}", path.display()),
                    )
                };
                let pem = std::fs::read_to_string(&path).map_err(|e| unusable(e.to_string()))?;
                if !pem.contains("PRIVATE KEY-----") {
                    return Err(unusable("not a PEM private key".into()));
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
                return Err(ConfigError::new(
                    "token",
                    format!(
                        "give either `token` or all of `app_id`, `private_key_file` and `installation_id` (missing: {})",
                        missing.join(", ")
                    ),
                ));
            }
        };
        let api_url = self.api_url.trim_end_matches('/').to_string();
        http_url("api_url", &api_url)?;
        let graphql_url = self
            .graphql_url
            .unwrap_or_else(|| graphql_url_for(&api_url));
        within("page_size", self.page_size, 1..=100)?;
        ensure(
            (0.0..1.0).contains(&self.rate_limit_reserve),
            "rate_limit_reserve",
            || {
                format!(
                    "{} is not a share between 0 and 1 (0.1 keeps 10% in reserve)",
                    self.rate_limit_reserve
                )
            },
        )?;
        let max_pause = Duration::from_secs(self.max_rate_limit_pause_secs);
        let http = HttpConfig::paced(
            self.requests_per_second,
            self.max_retries,
            self.timeout_secs,
        )
        .waiting_at_most(max_pause.max(Duration::from_secs(60)));
        let mapping = Mapping::new(
            self.namespace,
            self.component_type,
            self.lifecycle,
            self.topic_types,
        )?;
        Ok(Settings {
            orgs: self.orgs,
            auth,
            api_url,
            graphql_url,
            filters: Filters {
                include: globs("include", &self.include, Segments::Crossed)?,
                exclude: globs("exclude", &self.exclude, Segments::Crossed)?,
                topics: self.topics.iter().map(|t| t.to_lowercase()).collect(),
                skip_archived: self.skip_archived,
                skip_forks: self.skip_forks,
            },
            mapping,
            page_size: self.page_size.max(MIN_PAGE.min(self.page_size)),
            reserve: self.rate_limit_reserve,
            max_pause,
            http,
            cache_dir: surveyor_http::cache_dir(base_dir, self.cache_dir, id),
            webhook_secret: self.webhook_secret,
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
        assert_eq!(
            err,
            ConfigError::new(
                "token",
                "`token` and the GitHub App keys are both set; keep one"
            )
        );
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
            assert_eq!(err.key, key, "{toml}");
        }
    }
}
