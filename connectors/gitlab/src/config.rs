//! `[[connectors]] kind = "gitlab"`: the config table, its defaults, and the checks that turn it
//! into settings the crawl can trust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use surveyor_http::HttpConfig;
use surveyor_model::kit::{
    default_component_type, default_lifecycle, default_namespace, ensure, http_url, not_blank,
    number, within, yes,
};
use surveyor_model::{ConfigError, Secret};
use surveyor_repofiles::forge::{Filters, Mapping, Segments, default_topic_types, globs};

/// `[[connectors]] kind = "gitlab"`.
///
/// ```toml
/// [[connectors]]
/// id = "gitlab"
/// kind = "gitlab"
/// groups = ["acme"]                 # top-level groups; each is one scope
/// token = "${GITLAB_TOKEN}"         # read_api scope
/// # url = "https://gitlab.example.com"   # self-managed
/// exclude = ["acme/sandbox/**"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabConfig {
    /// Group full paths to crawl (`acme`, or `acme/platform` for one subtree); each is a scope.
    pub groups: Vec<String>,
    /// A personal, group or project access token (or an OAuth token), as a `${ENV}` reference.
    pub token: Secret,
    /// How the token is sent: `Authorization: Bearer` (any token) or `PRIVATE-TOKEN`.
    #[serde(default)]
    pub token_header: TokenHeader,
    /// The instance: `https://gitlab.com`, or a self-managed host (with its relative root).
    #[serde(
        default = "default_url",
        deserialize_with = "surveyor_model::secret::expanded"
    )]
    pub url: String,
    /// Crawl subgroups (and their projects) too.
    #[serde(default = "yes")]
    pub include_subgroups: bool,
    /// Project full-path globs to keep (default: all) and to drop; `*` stays within one path
    /// segment, `**` crosses them (`acme/sandbox/**`).
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Keep only projects with at least one of these topics (default: no filter).
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub skip_archived: bool,
    #[serde(default)]
    pub skip_forks: bool,
    /// Group members include those inherited from ancestor groups (`/members/all`), not only
    /// the direct ones.
    #[serde(default)]
    pub inherited_members: bool,
    /// The namespace for every entity this connector creates.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `spec.type` for a project no topic rule matches.
    #[serde(default = "default_component_type")]
    pub component_type: String,
    /// `spec.lifecycle` for live projects; archived ones are `deprecated`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// Topic -> `spec.type`; the first project topic found here decides.
    #[serde(default = "default_topic_types")]
    pub topic_types: BTreeMap<String, String>,
    /// Items per REST page and projects per GraphQL query (GitLab allows at most 100).
    #[serde(default = "number::<_, 100>")]
    pub page_size: u32,
    /// The longest wait for a spent rate limit to reset; a later reset leaves the group partial.
    #[serde(default = "number::<_, 900>")]
    pub max_rate_limit_pause_secs: u64,
    /// GitLab.com allows 2,000 authenticated API requests a minute (33 a second).
    #[serde(default = "number::<_, 10>")]
    pub requests_per_second: u32,
    #[serde(default = "number::<_, 5>")]
    pub max_retries: usize,
    #[serde(default = "number::<_, 60>")]
    pub timeout_secs: u64,
    /// Where REST ETags and bodies are kept between runs (relative to the config file's
    /// directory); default `.surveyor-cache/<connector id>`.
    pub cache_dir: Option<PathBuf>,
    /// The secret token of the group's webhook, as a `${ENV}` reference: deliveries must carry
    /// it in `X-Gitlab-Token`. Without it this connector takes no webhooks.
    pub webhook_secret: Option<Secret>,
}

/// The header that carries the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenHeader {
    /// `Authorization: Bearer <token>`: personal, group, project and OAuth tokens alike.
    #[default]
    Bearer,
    /// `PRIVATE-TOKEN: <token>`: access tokens only.
    PrivateToken,
}

fn default_url() -> String {
    "https://gitlab.com".into()
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// As configured, without surrounding slashes; each is a scope.
    pub groups: Vec<String>,
    pub token: Secret,
    pub token_header: TokenHeader,
    /// `{url}/api/v4`.
    pub api_url: String,
    /// `{url}/api/graphql`.
    pub graphql_url: String,
    pub include_subgroups: bool,
    pub filters: Filters,
    pub inherited_members: bool,
    pub mapping: Mapping,
    pub page_size: u32,
    pub max_pause: Duration,
    pub http: HttpConfig,
    pub cache_dir: PathBuf,
    pub webhook_secret: Option<Secret>,
}

impl GitlabConfig {
    /// Checks the table; `base_dir` is the config file's directory, `id` the connector's.
    pub fn settings(self, id: &str, base_dir: &Path) -> Result<Settings, ConfigError> {
        ensure(!self.groups.is_empty(), "groups", || {
            "list at least one group path".into()
        })?;
        let mut groups: Vec<String> = Vec::new();
        for raw in &self.groups {
            let path = raw.trim().trim_matches('/');
            ensure(is_group_path(path), "groups", || {
                format!("{raw:?} is not a valid group path")
            })?;
            ensure(
                !groups.iter().any(|g| g.eq_ignore_ascii_case(path)),
                "groups",
                || format!("{raw:?} is listed twice"),
            )?;
            groups.push(path.to_string());
        }
        not_blank("token", self.token.expose())?;
        let mut url = self.url.trim().trim_end_matches('/').to_string();
        http_url("url", &url)?;
        // People paste the API root; the instance URL is what the rest is derived from.
        if let Some(instance) = url.strip_suffix("/api/v4") {
            url = instance.to_string();
        }
        ensure(!url.contains(['?', '#']), "url", || {
            "the instance URL takes no query or fragment".into()
        })?;
        within("page_size", self.page_size, 1..=100)?;
        let max_pause = Duration::from_secs(self.max_rate_limit_pause_secs);
        // One bound for every wait, ours and GitLab's `Retry-After`.
        let http = HttpConfig::paced(
            self.requests_per_second,
            self.max_retries,
            self.timeout_secs,
        )
        .waiting_at_most(max_pause.max(Duration::from_secs(1)));
        let mapping = Mapping::new(
            self.namespace,
            self.component_type,
            self.lifecycle,
            self.topic_types,
        )?;
        Ok(Settings {
            groups,
            token: self.token,
            token_header: self.token_header,
            api_url: format!("{url}/api/v4"),
            graphql_url: format!("{url}/api/graphql"),
            include_subgroups: self.include_subgroups,
            filters: Filters {
                include: globs("include", &self.include, Segments::Kept)?,
                exclude: globs("exclude", &self.exclude, Segments::Kept)?,
                topics: self.topics.iter().map(|t| t.to_lowercase()).collect(),
                skip_archived: self.skip_archived,
                skip_forks: self.skip_forks,
            },
            inherited_members: self.inherited_members,
            mapping,
            page_size: self.page_size,
            max_pause,
            http,
            cache_dir: surveyor_http::cache_dir(base_dir, self.cache_dir, id),
            webhook_secret: self.webhook_secret,
        })
    }
}

/// GitLab namespace paths: letters, digits, `_`, `-` and `.`, not starting with a separator.
fn is_group_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment.len() <= 255
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !segment.starts_with(['-', '.'])
                && !segment.ends_with(".git")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> GitlabConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn defaults_and_derived_urls() {
        let dir = tempfile::tempdir().unwrap();
        let s = config("groups = [\"/acme/\"]\ntoken = \"t\"")
            .settings("gl", dir.path())
            .unwrap();
        assert_eq!(s.groups, ["acme"]);
        assert_eq!(s.api_url, "https://gitlab.com/api/v4");
        assert_eq!(s.graphql_url, "https://gitlab.com/api/graphql");
        assert_eq!(s.token_header, TokenHeader::Bearer);
        assert!(s.include_subgroups && !s.inherited_members && !s.filters.skip_archived);
        assert_eq!(s.cache_dir, dir.path().join(".surveyor-cache/gl"));
        assert_eq!(format!("{:?}", s.token), "Secret(***)");

        let s = config(
            "groups = [\"acme/platform\"]\ntoken = \"t\"\nurl = \"https://git.example.com/gitlab/api/v4/\"\ntoken_header = \"private-token\"",
        )
        .settings("gl", dir.path())
        .unwrap();
        assert_eq!(s.api_url, "https://git.example.com/gitlab/api/v4");
        assert_eq!(s.graphql_url, "https://git.example.com/gitlab/api/graphql");
        assert_eq!(s.token_header, TokenHeader::PrivateToken);
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        for (toml, key) in [
            ("groups = []\ntoken = \"t\"", "groups"),
            ("groups = [\"a b\"]\ntoken = \"t\"", "groups"),
            ("groups = [\"acme//x\"]\ntoken = \"t\"", "groups"),
            ("groups = [\"-acme\"]\ntoken = \"t\"", "groups"),
            ("groups = [\"acme\", \"ACME\"]\ntoken = \"t\"", "groups"),
            ("groups = [\"a\"]\ntoken = \" \"", "token"),
            (
                "groups = [\"a\"]\ntoken = \"t\"\nurl = \"gitlab.com\"",
                "url",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\nurl = \"https://x/?a=1\"",
                "url",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\npage_size = 0",
                "page_size",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\npage_size = 500",
                "page_size",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\nexclude = [\"[\"]",
                "exclude",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\ninclude = [\"{a\"]",
                "include",
            ),
            (
                "groups = [\"a\"]\ntoken = \"t\"\nnamespace = \"Bad Ns\"",
                "namespace",
            ),
        ] {
            let err = config(toml).settings("gl", dir.path()).unwrap_err();
            assert!(err.to_string().starts_with(key), "{toml}: {err}");
            assert_eq!(err.key, key, "{toml}");
        }
    }

    #[test]
    fn unknown_keys_and_values_are_refused_by_the_table() {
        let err = toml::from_str::<GitlabConfig>("groups = [\"a\"]\ntoken = \"t\"\norgs = [\"a\"]")
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `orgs`"), "{err}");
        let err = toml::from_str::<GitlabConfig>(
            "groups = [\"a\"]\ntoken = \"t\"\ntoken_header = \"basic\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bearer"), "{err}");
        let err = toml::from_str::<GitlabConfig>("groups = [\"a\"]").unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
    }

    #[test]
    fn every_field_is_a_listed_key() {
        // The loader accepts the keys `keys` reads off the struct; a field missing from them
        // could never be set.
        let table = "groups = [\"a\"]\ntoken = \"t\"\ntoken_header = \"bearer\"\nurl = \"https://x\"\ninclude_subgroups = true\ninclude = []\nexclude = []\ntopics = []\nskip_archived = true\nskip_forks = true\ninherited_members = true\nnamespace = \"default\"\ncomponent_type = \"service\"\nlifecycle = \"production\"\ntopic_types = {}\npage_size = 10\nmax_rate_limit_pause_secs = 1\nrequests_per_second = 1\nmax_retries = 1\ntimeout_secs = 1\ncache_dir = \"c\"\nwebhook_secret = \"s\"";
        let parsed: toml::Table = toml::from_str(table).unwrap();
        let mut keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut listed = surveyor_model::kit::keys::<GitlabConfig>().to_vec();
        listed.sort_unstable();
        assert_eq!(keys, listed);
        assert!(toml::from_str::<GitlabConfig>(table).is_ok());
    }
}
