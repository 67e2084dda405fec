//! The connector kinds this binary ships, and how each is built from its config table.
//! Adding a connector kind means one entry in `KINDS` and one arm in `build`.

use std::path::Path;

use surveyor_engine::config::{ConfigErrors, ConnectorSpec, KindSpec};
use surveyor_model::Connector;

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: surveyor_connector_file::KIND,
        keys: surveyor_connector_file::KEYS,
    },
    KindSpec {
        name: surveyor_connector_github::KIND,
        keys: surveyor_connector_github::KEYS,
    },
    KindSpec {
        name: surveyor_connector_kubernetes::KIND,
        keys: surveyor_connector_kubernetes::KEYS,
    },
    KindSpec {
        name: surveyor_connector_pagerduty::KIND,
        keys: surveyor_connector_pagerduty::KEYS,
    },
    KindSpec {
        name: surveyor_connector_jira::KIND,
        keys: surveyor_connector_jira::KEYS,
    },
    KindSpec {
        name: surveyor_connector_gitlab::KIND,
        keys: surveyor_connector_gitlab::KEYS,
    },
];

/// Builds the connector a spec describes; errors are input errors located in the config.
pub fn build(spec: &ConnectorSpec, base_dir: &Path) -> Result<Box<dyn Connector>, String> {
    let located = |e: ConfigErrors| e.to_string();
    match spec.kind.as_str() {
        surveyor_connector_file::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_file::FileConnector::new(&spec.id, options, base_dir)
                // Both errors are about `paths`.
                .map_err(|e| located(spec.error_at("paths", e.to_string())))?;
            Ok(Box::new(c))
        }
        surveyor_connector_github::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_github::GithubConnector::new(&spec.id, options, base_dir)
                .map_err(|e| {
                    // Messages start with the key at fault: locate it in the file.
                    let text = e.to_string();
                    match text.split_once(": ") {
                        Some((key, message)) if surveyor_connector_github::KEYS.contains(&key) => {
                            located(spec.error_at(key, message))
                        }
                        _ => located(spec.error_at("", text)),
                    }
                })?;
            Ok(Box::new(c))
        }
        surveyor_connector_kubernetes::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_kubernetes::KubernetesConnector::new(
                &spec.id, options, base_dir,
            )
            .map_err(|e| match &e {
                surveyor_connector_kubernetes::KubernetesConfigError::Invalid { key, message } => {
                    located(spec.error_at(key, message.clone()))
                }
            })?;
            Ok(Box::new(c))
        }
        surveyor_connector_pagerduty::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_pagerduty::PagerDutyConnector::new(&spec.id, options)
                .map_err(|e| located(spec.error_at(e.key, e.message.clone())))?;
            Ok(Box::new(c))
        }
        surveyor_connector_jira::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_jira::JiraConnector::new(&spec.id, options)
                .map_err(|e| located(spec.error_at(e.key, e.message.clone())))?;
            Ok(Box::new(c))
        }
        surveyor_connector_gitlab::KIND => {
            let options = spec.options().map_err(located)?;
            let c = surveyor_connector_gitlab::GitlabConnector::new(&spec.id, options, base_dir)
                .map_err(|e| {
                    // Messages start with the key at fault; locate that key in the file.
                    let text = e.to_string();
                    let message = text
                        .strip_prefix(&format!("{}: ", e.key()))
                        .unwrap_or(&text)
                        .to_string();
                    located(spec.error_at(e.key(), message))
                })?;
            Ok(Box::new(c))
        }
        other => Err(format!(
            "{}: connectors[{}].kind: unknown connector kind {other:?}",
            spec.file().display(),
            spec.index
        )),
    }
}
