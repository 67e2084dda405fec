//! `[[connectors]] kind = "pagerduty"`: the account, its token, and how services are named in
//! the catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use surveyor_model::Secret;

/// Keys a `kind = "pagerduty"` table accepts besides the common ones.
pub const KEYS: &[&str] = &[
    "token",
    "subdomain",
    "api_url",
    "namespace",
    "service_names",
    "requests_per_second",
    "max_retries",
    "timeout_secs",
];

/// `[[connectors]] kind = "pagerduty"`.
///
/// ```toml
/// [[connectors]]
/// id = "pagerduty"
/// kind = "pagerduty"
/// subdomain = "acme"                  # acme.pagerduty.com; the scope
/// token = "${PAGERDUTY_TOKEN}"        # a read-only REST API key
/// # api_url = "https://api.eu.pagerduty.com"
/// service_names = { "Payments API (prod)" = "payments-api" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    pub token: Secret,
    /// The account's subdomain (`acme` for acme.pagerduty.com): the scope of everything read.
    pub subdomain: String,
    /// `https://api.pagerduty.com`, or `https://api.eu.pagerduty.com` for the EU service region.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service name -> the catalog component it belongs to, for names the default rule (lower
    /// case, non-alphanumerics as `-`) does not turn into the component's name.
    #[serde(default)]
    pub service_names: BTreeMap<String, String>,
    /// PagerDuty allows 960 requests a minute per key; stay well under.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    #[serde(default = "default_retries")]
    pub max_retries: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_api_url() -> String {
    "https://api.pagerduty.com".into()
}
fn default_namespace() -> String {
    "default".into()
}
fn default_rps() -> u32 {
    8
}
fn default_retries() -> usize {
    5
}
fn default_timeout() -> u64 {
    30
}

/// Why a pagerduty connector cannot be built; the message starts with the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct PagerDutyConfigError {
    pub key: &'static str,
    pub message: String,
}

fn invalid(key: &'static str, message: impl Into<String>) -> PagerDutyConfigError {
    PagerDutyConfigError {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub token: Secret,
    pub subdomain: String,
    pub api_url: String,
    pub namespace: String,
    pub service_names: BTreeMap<String, String>,
    pub requests_per_second: u32,
    pub max_retries: usize,
    pub timeout: Duration,
}

impl PagerDutyConfig {
    pub fn settings(self) -> Result<Settings, PagerDutyConfigError> {
        if self.token.expose().trim().is_empty() {
            return Err(invalid("token", "is empty"));
        }
        let sub = self.subdomain.trim();
        if sub.is_empty() || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                "subdomain",
                format!("{sub:?} is not a PagerDuty subdomain (the `acme` of acme.pagerduty.com)"),
            ));
        }
        let api_url = self.api_url.trim_end_matches('/').to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(invalid(
                "api_url",
                format!("{api_url:?} is not an http(s) URL"),
            ));
        }
        if !surveyor_model::validate::is_valid_namespace(&self.namespace) {
            return Err(invalid(
                "namespace",
                format!("{:?} is not a valid catalog namespace", self.namespace),
            ));
        }
        for (service, component) in &self.service_names {
            if !surveyor_model::validate::is_valid_object_name(component) {
                return Err(invalid(
                    "service_names",
                    format!("{service:?} = {component:?}: not a valid entity name"),
                ));
            }
        }
        Ok(Settings {
            token: self.token,
            subdomain: sub.to_lowercase(),
            api_url,
            namespace: self.namespace,
            service_names: self.service_names,
            requests_per_second: self.requests_per_second.max(1),
            max_retries: self.max_retries,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        })
    }
}
