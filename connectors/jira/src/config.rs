//! `[[connectors]] kind = "jira"`: the site, its flavor and credentials, which projects, and how
//! projects, categories, components and leads are named in the catalog.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use surveyor_http::HttpConfig;
use surveyor_model::kit::{
    default_component_type, default_lifecycle, default_namespace, ensure, not_blank, number,
    within, yes,
};
use surveyor_model::{ConfigError, EntityRef, Secret};

/// Which Jira answers at `url`: the two speak different REST versions, page differently and
/// identify people differently (account ids on Cloud, user keys and names on Data Center).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Jira Cloud (`*.atlassian.net`): REST v3, `email` + `api_token`.
    Cloud,
    /// Jira Data Center or Server: REST v2, a personal access token in `token`.
    #[serde(alias = "server", alias = "data-center")]
    Datacenter,
}

/// What a project's System is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemNames {
    /// The project key, lower-cased (`PAY` -> `pay`): a key change is a rename.
    Key,
    /// The project name (`Payments Platform` -> `payments-platform`).
    Name,
}

/// `[[connectors]] kind = "jira"`.
///
/// ```toml
/// [[connectors]]
/// id = "jira"
/// kind = "jira"
/// url = "https://acme.atlassian.net"     # the site; its host is the scope
/// flavor = "cloud"                        # or "datacenter" (with token = "${JIRA_PAT}")
/// email = "surveyor@acme.example"
/// api_token = "${JIRA_API_TOKEN}"
/// lead_owner_mapping = { "ada@acme.example" = "group:default/payments" }
/// # webhook_secret = "${JIRA_WEBHOOK_SECRET}"   # the admin webhook's secret
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The site: `https://acme.atlassian.net`, or a Data Center base URL (context path allowed).
    #[serde(deserialize_with = "surveyor_model::secret::expanded")]
    pub url: String,
    #[serde(default = "default_flavor")]
    pub flavor: Flavor,
    /// Cloud: the account the API token belongs to.
    pub email: Option<Secret>,
    /// Cloud: an API token of `email`'s account.
    pub api_token: Option<Secret>,
    /// Data Center: a personal access token (sent as a bearer token).
    pub token: Option<Secret>,
    /// Project keys to crawl (default: every project the credentials can see) and to skip.
    #[serde(default)]
    pub projects: Vec<String>,
    #[serde(default)]
    pub exclude_projects: Vec<String>,
    /// The catalog namespace of every entity this connector creates.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_system_names")]
    pub system_names: SystemNames,
    /// Project categories become Domains their projects' Systems are part of.
    #[serde(default = "yes")]
    pub categories_as_domains: bool,
    /// `spec.type` of the Components made from Jira components.
    #[serde(default = "default_component_type")]
    pub component_type: String,
    /// `spec.lifecycle` of live components; archived ones are `deprecated`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// Name Components `<project key>-<component>` instead of after the component alone (for
    /// sites where projects reuse component names; it stops the match with repositories).
    #[serde(default)]
    pub prefix_component_names: bool,
    /// A component without a lead is owned by its project's lead.
    #[serde(default = "yes")]
    pub inherit_project_lead: bool,
    /// Jira account id, user key, username or email -> the entity ref that owns what that
    /// person leads (`group:default/payments`; a bare name is a group).
    #[serde(default)]
    pub lead_owner_mapping: BTreeMap<String, String>,
    /// Items per page on Cloud (Jira caps it by itself, usually at 50).
    #[serde(default = "number::<_, 50>")]
    pub page_size: u32,
    /// Projects whose components are read at the same time.
    #[serde(default = "number::<_, 4>")]
    pub concurrency: usize,
    #[serde(default = "number::<_, 10>")]
    pub requests_per_second: u32,
    #[serde(default = "number::<_, 5>")]
    pub max_retries: usize,
    /// All waits of one request together (Jira's `Retry-After` included) stay under this.
    #[serde(default = "number::<_, 900>")]
    pub max_retry_wait_secs: u64,
    #[serde(default = "number::<_, 60>")]
    pub timeout_secs: u64,
    /// The secret of the site's admin webhook, as a `${ENV}` reference: deliveries must carry
    /// its `X-Hub-Signature`. Without it this connector takes no webhooks.
    pub webhook_secret: Option<Secret>,
}

fn default_flavor() -> Flavor {
    Flavor::Cloud
}
fn default_system_names() -> SystemNames {
    SystemNames::Key
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(key, message)
}

/// How the connector proves who it is; the header value is built once and marked sensitive.
#[derive(Clone)]
pub enum Auth {
    /// Cloud: `Basic base64(email:api_token)`.
    Basic { email: Secret, api_token: Secret },
    /// Data Center: `Bearer <personal access token>`.
    Bearer(Secret),
}

impl Auth {
    /// The `Authorization` header value. It holds the secret: never log it.
    pub fn header_value(&self) -> String {
        match self {
            Self::Basic { email, api_token } => {
                let pair = format!("{}:{}", email.expose(), api_token.expose());
                format!("Basic {}", STANDARD.encode(pair.as_bytes()))
            }
            Self::Bearer(token) => format!("Bearer {}", token.expose()),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { .. } => f.write_str("Basic(***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub flavor: Flavor,
    /// The site URL without a trailing slash (`https://acme.atlassian.net`, `https://x/jira`).
    pub base_url: String,
    /// The scope of everything read: the site's host, lower-cased.
    pub site: String,
    pub auth: Auth,
    /// Upper-cased project keys; empty means every project.
    pub projects: BTreeSet<String>,
    pub exclude_projects: BTreeSet<String>,
    pub namespace: String,
    pub system_names: SystemNames,
    pub categories_as_domains: bool,
    pub component_type: String,
    pub lifecycle: String,
    pub prefix_component_names: bool,
    pub inherit_project_lead: bool,
    /// Lower-cased account id / key / username / email -> a full entity ref.
    pub lead_owner_mapping: BTreeMap<String, String>,
    pub page_size: u32,
    pub concurrency: usize,
    pub http: HttpConfig,
    pub webhook_secret: Option<Secret>,
}

impl Settings {
    /// Whether the project with this key is crawled.
    pub fn keeps_project(&self, key: &str) -> bool {
        let key = key.to_uppercase();
        (self.projects.is_empty() || self.projects.contains(&key))
            && !self.exclude_projects.contains(&key)
    }
}

impl JiraConfig {
    pub fn settings(self) -> Result<Settings, ConfigError> {
        let base_url = self.url.trim().trim_end_matches('/').to_string();
        let site = site_of(&base_url).map_err(|m| invalid("url", m))?;
        let auth = match self.flavor {
            Flavor::Cloud => {
                if self.token.is_some() {
                    return Err(invalid(
                        "token",
                        "is the Data Center personal access token; Jira Cloud authenticates with `email` and `api_token` (or set flavor = \"datacenter\")",
                    ));
                }
                let email = self.email.ok_or_else(|| {
                    invalid(
                        "email",
                        "Jira Cloud needs `email` and `api_token` (an API token of that account)",
                    )
                })?;
                let api_token = self.api_token.ok_or_else(|| {
                    invalid(
                        "api_token",
                        "Jira Cloud needs `api_token` (an API token of the `email` account)",
                    )
                })?;
                if email.expose().trim().is_empty() || !email.expose().contains('@') {
                    return Err(invalid("email", "is not an email address"));
                }
                not_blank("api_token", api_token.expose())?;
                Auth::Basic { email, api_token }
            }
            Flavor::Datacenter => {
                for (key, set) in [
                    ("email", self.email.is_some()),
                    ("api_token", self.api_token.is_some()),
                ] {
                    if set {
                        return Err(invalid(
                            key,
                            "is for Jira Cloud; Data Center authenticates with a personal access token in `token` (or set flavor = \"cloud\")",
                        ));
                    }
                }
                let token = self.token.ok_or_else(|| {
                    invalid(
                        "token",
                        "Jira Data Center needs a personal access token in `token`",
                    )
                })?;
                not_blank("token", token.expose())?;
                Auth::Bearer(token)
            }
        };
        // A header value cannot carry control characters; say so here, not on the first request.
        if auth.header_value().chars().any(|c| c.is_control()) {
            let key = match self.flavor {
                Flavor::Cloud => "api_token",
                Flavor::Datacenter => "token",
            };
            return Err(invalid(key, "has characters a header cannot carry"));
        }
        let projects = project_keys("projects", &self.projects)?;
        let exclude_projects = project_keys("exclude_projects", &self.exclude_projects)?;
        ensure(
            surveyor_model::validate::is_valid_namespace(&self.namespace),
            "namespace",
            || {
                format!(
                    "{:?} is not a valid catalog namespace (lower-case letters, digits and '-')",
                    self.namespace
                )
            },
        )?;
        not_blank("component_type", &self.component_type)?;
        not_blank("lifecycle", &self.lifecycle)?;
        let mut mapping = BTreeMap::new();
        for (who, target) in self.lead_owner_mapping {
            let who = who.trim().to_lowercase();
            if who.is_empty() {
                return Err(invalid(
                    "lead_owner_mapping",
                    "an entry has an empty account id, user key or email",
                ));
            }
            let target = EntityRef::parse_with(&target, Some("Group"), &self.namespace)
                .map_err(|e| invalid("lead_owner_mapping", format!("{who:?}: {e}")))?;
            mapping.insert(who, target.to_string());
        }
        within("page_size", self.page_size, 1..=100)?;
        within("concurrency", self.concurrency, 1..=16)?;
        if let Some(secret) = &self.webhook_secret {
            not_blank("webhook_secret", secret.expose())?;
        }
        Ok(Settings {
            webhook_secret: self.webhook_secret,
            flavor: self.flavor,
            base_url,
            site,
            auth,
            projects,
            exclude_projects,
            namespace: self.namespace,
            system_names: self.system_names,
            categories_as_domains: self.categories_as_domains,
            component_type: self.component_type,
            lifecycle: self.lifecycle,
            prefix_component_names: self.prefix_component_names,
            inherit_project_lead: self.inherit_project_lead,
            lead_owner_mapping: mapping,
            page_size: self.page_size,
            concurrency: self.concurrency,
            http: HttpConfig::paced(
                self.requests_per_second,
                self.max_retries,
                self.timeout_secs,
            )
            .waiting_at_most(Duration::from_secs(self.max_retry_wait_secs)),
        })
    }
}

fn project_keys(key: &'static str, keys: &[String]) -> Result<BTreeSet<String>, ConfigError> {
    keys.iter()
        .map(|k| {
            let k = k.trim();
            // Jira keys are a letter then letters, digits and underscores.
            let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(k.to_uppercase())
            } else {
                Err(invalid(key, format!("{k:?} is not a Jira project key")))
            }
        })
        .collect()
}

/// The scope for a site URL: its host, lower-cased, without port. The URL must be plain
/// http(s) with no credentials, query or fragment (those belong in other keys, or nowhere).
pub fn site_of(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        // Not echoed: the URL may come from a `${ENV}` reference that holds a secret.
        .ok_or_else(|| {
            "is not an http(s) URL: it must start with https:// or http://".to_string()
        })?;
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment: give the site's base URL".into());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // Never echo the URL here: the part before `@` may be a password.
        return Err(
            "must not carry credentials; use `email` + `api_token` (Cloud) or `token` (Data Center)"
                .into(),
        );
    }
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(host.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<Settings, ConfigError> {
        let config: JiraConfig = toml::from_str(toml).expect("the test's TOML parses");
        config.settings()
    }

    const CLOUD: &str =
        "url = \"https://Acme.atlassian.net/\"\nemail = \"me@acme.example\"\napi_token = \"t0k\"";

    #[test]
    fn cloud_is_the_default_and_takes_email_and_api_token() {
        let s = settings(CLOUD).unwrap();
        assert_eq!(s.flavor, Flavor::Cloud);
        assert_eq!(s.site, "acme.atlassian.net");
        assert_eq!(s.base_url, "https://Acme.atlassian.net");
        // base64("me@acme.example:t0k")
        assert_eq!(s.auth.header_value(), "Basic bWVAYWNtZS5leGFtcGxlOnQwaw==");
        assert_eq!(format!("{:?}", s.auth), "Basic(***)");
        assert_eq!(s.system_names, SystemNames::Key);
        assert!(s.categories_as_domains && s.inherit_project_lead);
    }

    #[test]
    fn data_center_takes_a_personal_access_token() {
        let s = settings(
            "url = \"https://jira.corp.example:8443/jira\"\nflavor = \"datacenter\"\ntoken = \"pat\"",
        )
        .unwrap();
        assert_eq!(s.flavor, Flavor::Datacenter);
        assert_eq!(s.site, "jira.corp.example");
        assert_eq!(s.base_url, "https://jira.corp.example:8443/jira");
        assert_eq!(s.auth.header_value(), "Bearer pat");
        let s =
            settings("url = \"http://[::1]:8080\"\nflavor = \"server\"\ntoken = \"pat\"").unwrap();
        assert_eq!(s.site, "::1");
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        for (toml, key) in [
            (
                "url = \"acme.atlassian.net\"\nemail = \"a@b\"\napi_token = \"t\"",
                "url",
            ),
            (
                "url = \"https://u:pw@acme.atlassian.net\"\nemail = \"a@b\"\napi_token = \"t\"",
                "url",
            ),
            (
                "url = \"https://acme.atlassian.net?x=1\"\nemail = \"a@b\"\napi_token = \"t\"",
                "url",
            ),
            (
                "url = \"https://acme.atlassian.net\"\napi_token = \"t\"",
                "email",
            ),
            (
                "url = \"https://acme.atlassian.net\"\nemail = \"a@b\"",
                "api_token",
            ),
            (
                "url = \"https://acme.atlassian.net\"\nemail = \"nobody\"\napi_token = \"t\"",
                "email",
            ),
            (
                "url = \"https://a.atlassian.net\"\nemail = \"a@b\"\napi_token = \"t\"\ntoken = \"p\"",
                "token",
            ),
            (
                "url = \"https://jira.corp\"\nflavor = \"datacenter\"",
                "token",
            ),
            (
                "url = \"https://jira.corp\"\nflavor = \"datacenter\"\ntoken = \" \"",
                "token",
            ),
            (
                "url = \"https://jira.corp\"\nflavor = \"datacenter\"\ntoken = \"p\"\nemail = \"a@b\"",
                "email",
            ),
            (
                "url = \"https://jira.corp\"\nflavor = \"datacenter\"\ntoken = \"a\\nb\"",
                "token",
            ),
            (&format!("{CLOUD}\nprojects = [\"P-1\"]"), "projects"),
            (
                &format!("{CLOUD}\nexclude_projects = [\"\"]"),
                "exclude_projects",
            ),
            (&format!("{CLOUD}\nnamespace = \"Team_A\""), "namespace"),
            (&format!("{CLOUD}\ncomponent_type = \"\""), "component_type"),
            (&format!("{CLOUD}\npage_size = 0"), "page_size"),
            (&format!("{CLOUD}\nconcurrency = 99"), "concurrency"),
            (
                &format!("{CLOUD}\nlead_owner_mapping = {{ \"acc-1\" = \"group:default/-bad\" }}"),
                "lead_owner_mapping",
            ),
            (
                &format!("{CLOUD}\nlead_owner_mapping = {{ \" \" = \"team-a\" }}"),
                "lead_owner_mapping",
            ),
        ] {
            let err = settings(toml).expect_err(toml).to_string();
            assert!(err.starts_with(&format!("{key}: ")), "{toml}: {err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_errors() {
        let err = settings(
            "url = \"https://svc:hunter2@acme.atlassian.net\"\nemail = \"a@b\"\napi_token = \"t\"",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn unknown_keys_and_flavors_are_rejected() {
        let bad: Result<JiraConfig, _> = toml::from_str(&format!("{CLOUD}\nprojcts = [\"A\"]"));
        assert!(bad.unwrap_err().to_string().contains("projcts"));
        let bad: Result<JiraConfig, _> = toml::from_str(&format!("{CLOUD}\nflavor = \"onprem\""));
        assert!(bad.is_err());
    }

    #[test]
    fn mapping_targets_become_full_refs_and_keys_match_in_any_case() {
        let s = settings(&format!(
            "{CLOUD}\nnamespace = \"eng\"\nlead_owner_mapping = {{ \"Ada@Acme.example\" = \"payments\", \"712020:abc\" = \"user:default/ada\" }}"
        ))
        .unwrap();
        assert_eq!(
            s.lead_owner_mapping["ada@acme.example"],
            "group:eng/payments"
        );
        assert_eq!(s.lead_owner_mapping["712020:abc"], "user:default/ada");
    }

    #[test]
    fn project_filters_ignore_case() {
        let s = settings(&format!(
            "{CLOUD}\nprojects = [\"pay\", \"BIL\"]\nexclude_projects = [\"bil\"]"
        ))
        .unwrap();
        assert!(s.keeps_project("PAY") && s.keeps_project("pay"));
        assert!(!s.keeps_project("BIL") && !s.keeps_project("OPS"));
        assert!(settings(CLOUD).unwrap().keeps_project("ANY"));
    }
}
