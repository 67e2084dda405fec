//! The connector kinds this binary ships. Adding a kind is one entry in `ALL`: its name and keys
//! come from its `ConnectorKind` impl (the keys are its config struct's fields), and it is built,
//! with errors located in the config file, the same way as every other kind.

use std::path::Path;

use surveyor_connector_file::FileConnector;
use surveyor_connector_github::GithubConnector;
use surveyor_connector_gitlab::GitlabConnector;
use surveyor_connector_jira::JiraConnector;
use surveyor_connector_kubernetes::KubernetesConnector;
use surveyor_connector_pagerduty::PagerDutyConnector;
use surveyor_engine::config::{ConfigErrors, ConnectorSpec, KindSpec};
use surveyor_model::{Connector, ConnectorKind};

/// A connector built from its table, or the located errors that keep it from being built.
type Built = Result<Box<dyn Connector>, ConfigErrors>;

/// One kind: what the loader checks its tables against, and how a table becomes a connector.
struct Kind {
    spec: fn() -> KindSpec,
    build: fn(&ConnectorSpec, &Path) -> Built,
}

impl Kind {
    const fn of<K: ConnectorKind>() -> Self {
        Self {
            spec: KindSpec::of::<K>,
            build: build_as::<K>,
        }
    }
}

const ALL: &[Kind] = &[
    Kind::of::<FileConnector>(),
    Kind::of::<GithubConnector>(),
    Kind::of::<KubernetesConnector>(),
    Kind::of::<PagerDutyConnector>(),
    Kind::of::<JiraConnector>(),
    Kind::of::<GitlabConnector>(),
];

fn build_as<K: ConnectorKind>(spec: &ConnectorSpec, base_dir: &Path) -> Built {
    Ok(Box::new(spec.build::<K>(base_dir)?))
}

/// The kinds, for the config loader.
pub fn kinds() -> Vec<KindSpec> {
    ALL.iter().map(|k| (k.spec)()).collect()
}

/// Builds the connector a spec describes; errors are input errors located in the config.
pub fn build(spec: &ConnectorSpec, base_dir: &Path) -> Result<Box<dyn Connector>, String> {
    match ALL.iter().find(|k| (k.spec)().name == spec.kind) {
        Some(kind) => (kind.build)(spec, base_dir).map_err(|e| e.to_string()),
        None => Err(format!(
            "{}: connectors[{}].kind: unknown connector kind {:?}",
            spec.file().display(),
            spec.index,
            spec.kind
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys a kind's docs page documents: the backquoted names in the first cell of each row
    /// of its `| key ...` table (the file kind's rows are `connectors[].<key> (file)` in the
    /// configuration reference).
    fn documented_keys(kind: &str) -> Vec<String> {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let read = |page: &str| {
            std::fs::read_to_string(docs.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
        };
        let first_cell = |row: &str| {
            row.trim_start_matches('|')
                .split('|')
                .next()
                .map(str::to_string)
        };
        let backquoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        if kind == surveyor_connector_file::KIND {
            return read("configuration.md")
                .lines()
                .filter(|l| l.contains("(file) |"))
                .filter_map(first_cell)
                .flat_map(|cell| backquoted(&cell))
                .filter_map(|k| k.strip_prefix("connectors[].").map(str::to_string))
                .collect();
        }
        let page = read(&format!("connectors/{kind}.md"));
        let mut keys = Vec::new();
        let mut in_table = false;
        for line in page.lines() {
            if line.starts_with("| key") {
                in_table = true;
            } else if !line.starts_with('|') {
                in_table = false;
            } else if in_table && !line.starts_with("| ---") {
                keys.extend(first_cell(line).map(|c| backquoted(&c)).unwrap_or_default());
            }
        }
        keys
    }

    #[test]
    fn the_docs_document_exactly_the_keys_each_kind_accepts() {
        // The config struct declares the keys; each kind's docs page is checked against it.
        for kind in kinds() {
            let mut documented = documented_keys(kind.name);
            documented.sort_unstable();
            let mut accepted: Vec<&str> = kind.keys.to_vec();
            accepted.sort_unstable();
            assert_eq!(
                documented, accepted,
                "docs/connectors/{}.md keys",
                kind.name
            );
        }
    }

    #[test]
    fn every_kind_has_its_own_name_and_reads_keys_from_its_config() {
        let kinds = kinds();
        let mut names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for k in &kinds {
            assert!(!k.keys.is_empty(), "{} accepts no keys", k.name);
        }
    }
}
