//! `[[connectors]] kind = "pagerduty"`: the account, its token, and how services are named in
//! the catalog.

use std::collections::BTreeMap;

use serde::Deserialize;
use surveyor_http::HttpConfig;
use surveyor_model::kit::{default_namespace, ensure, http_url, not_blank, number};
use surveyor_model::{ConfigError, Secret};

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
/// # webhook_secret = "${PAGERDUTY_WEBHOOK_SECRET}"   # the v3 webhook subscription's secret
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    pub token: Secret,
    /// The account's subdomain (`acme` for acme.pagerduty.com): the scope of everything read.
    pub subdomain: String,
    /// `https://api.pagerduty.com`, or `https://api.eu.pagerduty.com` for the EU service region.
    #[serde(
        default = "default_api_url",
        deserialize_with = "surveyor_model::secret::expanded"
    )]
    pub api_url: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service name -> the catalog component it belongs to, for names the default rule (lower
    /// case, non-alphanumerics as `-`) does not turn into the component's name.
    #[serde(default)]
    pub service_names: BTreeMap<String, String>,
    /// PagerDuty allows 960 requests a minute per key; stay well under.
    #[serde(default = "number::<_, 8>")]
    pub requests_per_second: u32,
    #[serde(default = "number::<_, 5>")]
    pub max_retries: usize,
    #[serde(default = "number::<_, 30>")]
    pub timeout_secs: u64,
    /// The secret of the account's v3 webhook subscription, as a `${ENV}` reference: deliveries
    /// must carry its `X-PagerDuty-Signature`. Without it this connector takes no webhooks.
    pub webhook_secret: Option<Secret>,
}

fn default_api_url() -> String {
    "https://api.pagerduty.com".into()
}
#[derive(Debug, Clone)]
pub struct Settings {
    pub token: Secret,
    pub subdomain: String,
    pub api_url: String,
    pub namespace: String,
    pub service_names: BTreeMap<String, String>,
    /// Bursts are no larger than the rate.
    pub http: HttpConfig,
    pub webhook_secret: Option<Secret>,
}

impl PagerDutyConfig {
    pub fn settings(self) -> Result<Settings, ConfigError> {
        not_blank("token", self.token.expose())?;
        let sub = self.subdomain.trim();
        ensure(
            !sub.is_empty() && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "subdomain",
            || format!("{sub:?} is not a PagerDuty subdomain (the `acme` of acme.pagerduty.com)"),
        )?;
        let api_url = self.api_url.trim_end_matches('/').to_string();
        http_url("api_url", &api_url)?;
        ensure(
            surveyor_model::validate::is_valid_namespace(&self.namespace),
            "namespace",
            || format!("{:?} is not a valid catalog namespace", self.namespace),
        )?;
        for (service, component) in &self.service_names {
            ensure(
                surveyor_model::validate::is_valid_object_name(component),
                "service_names",
                || format!("{service:?} = {component:?}: not a valid entity name"),
            )?;
        }
        if let Some(secret) = &self.webhook_secret {
            not_blank("webhook_secret", secret.expose())?;
        }
        let http = HttpConfig::paced(
            self.requests_per_second,
            self.max_retries,
            self.timeout_secs,
        );
        Ok(Settings {
            token: self.token,
            subdomain: sub.to_lowercase(),
            api_url,
            namespace: self.namespace,
            service_names: self.service_names,
            http: HttpConfig {
                burst: http.requests_per_second,
                ..http
            },
            webhook_secret: self.webhook_secret,
        })
    }
}
