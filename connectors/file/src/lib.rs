//! The `file` connector: entities declared in Backstage descriptor YAML files on disk.
//! One scope (the connector); a bad document is reported and makes the scope partial.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use surveyor_model::descriptor::parse_descriptors;
use surveyor_model::{Connector, ConnectorError, Observation, ObservationSink, Outcome, Problem};

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "file";

/// Keys a `kind = "file"` table accepts besides the common ones.
pub const KEYS: &[&str] = &["paths"];

/// `[[connectors]] kind = "file"`.
///
/// ```toml
/// [[connectors]]
/// id = "catalog-files"
/// kind = "file"
/// paths = ["catalog/**/*.yaml", "services/*/catalog-info.yaml"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Glob patterns, relative to the directory of `surveyor.toml` (`**` crosses directories).
    pub paths: Vec<String>,
}

/// Why a file connector cannot be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum FileConfigError {
    #[error("`paths` is empty: list at least one glob pattern")]
    NoPaths,
    #[error("invalid glob pattern {pattern:?}: {message}")]
    BadPattern { pattern: String, message: String },
}

#[derive(Debug, Clone)]
pub struct FileConnector {
    id: String,
    base_dir: PathBuf,
    patterns: Vec<String>,
}

impl FileConnector {
    pub fn new(id: &str, config: FileConfig, base_dir: &Path) -> Result<Self, FileConfigError> {
        if config.paths.is_empty() {
            return Err(FileConfigError::NoPaths);
        }
        for p in &config.paths {
            glob::Pattern::new(p).map_err(|e| FileConfigError::BadPattern {
                pattern: p.clone(),
                message: e.msg.to_string(),
            })?;
        }
        Ok(Self {
            id: id.to_string(),
            // Canonical once, so every file path (canonicalised too) strips to a relative one.
            base_dir: std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf()),
            patterns: config.paths,
        })
    }

    fn files(&self, outcome: &mut Outcome) -> BTreeSet<PathBuf> {
        let mut files = BTreeSet::new();
        for pattern in &self.patterns {
            let full = if Path::new(pattern).is_absolute() {
                pattern.clone()
            } else {
                self.base_dir.join(pattern).to_string_lossy().into_owned()
            };
            match glob::glob(&full) {
                Ok(paths) => {
                    for entry in paths {
                        match entry {
                            Ok(p) if p.is_file() => {
                                files.insert(std::fs::canonicalize(&p).unwrap_or(p));
                            }
                            Ok(_) => {}
                            Err(e) => outcome.problem(Problem {
                                scope: self.id.clone(),
                                location: self.relative(e.path()),
                                field: None,
                                message: format!("cannot read: {}", e.error()),
                            }),
                        }
                    }
                }
                Err(e) => outcome.problem(Problem {
                    scope: self.id.clone(),
                    location: pattern.clone(),
                    field: None,
                    message: format!("invalid glob pattern: {}", e.msg),
                }),
            }
        }
        files
    }

    fn relative(&self, path: &Path) -> String {
        let base = std::fs::canonicalize(&self.base_dir).unwrap_or_else(|_| self.base_dir.clone());
        let rel = path
            .strip_prefix(&base)
            .or_else(|_| path.strip_prefix(&self.base_dir))
            .unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[async_trait::async_trait]
impl Connector for FileConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let mut outcome = Outcome::default();
        let scope = self.id.clone();
        // Files from the patterns, then any that Location entities point at (each file once,
        // so a Location that points back at its own file is harmless).
        let mut queue: std::collections::VecDeque<PathBuf> =
            self.files(&mut outcome).into_iter().collect();
        let mut visited: BTreeSet<PathBuf> = queue.iter().cloned().collect();
        while let Some(path) = queue.pop_front() {
            let rel = self.relative(&path);
            let text = match tokio::fs::read(&path).await {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(_) => {
                        outcome.problem(Problem {
                            scope: scope.clone(),
                            location: rel,
                            field: None,
                            message: "not valid UTF-8".into(),
                        });
                        continue;
                    }
                },
                Err(e) => {
                    outcome.problem(Problem {
                        scope: scope.clone(),
                        location: rel,
                        field: None,
                        message: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            for doc in parse_descriptors(&text) {
                let location = match doc.line {
                    Some(line) => format!("{rel}:{line} (document {})", doc.index + 1),
                    None => format!("{rel} (document {})", doc.index + 1),
                };
                match doc.result {
                    Ok(entity) => {
                        let key = match entity.entity_ref() {
                            Ok(r) => r.key(),
                            Err(e) => {
                                outcome.problem(Problem {
                                    scope: scope.clone(),
                                    location,
                                    field: Some("metadata.name".into()),
                                    message: e.to_string(),
                                });
                                continue;
                            }
                        };
                        if entity.kind.eq_ignore_ascii_case("Location") {
                            for target in location_targets(&entity, &path) {
                                if visited.insert(target.clone()) {
                                    queue.push_back(target);
                                }
                            }
                        }
                        let external_id = format!("{rel}#{key}");
                        sink.send(Observation::declared(scope.clone(), external_id, entity))
                            .await?;
                    }
                    Err(e) => outcome.problem(Problem {
                        scope: scope.clone(),
                        location,
                        field: e.field().map(str::to_string),
                        message: e.to_string(),
                    }),
                }
            }
        }
        outcome.complete(scope);
        Ok(outcome)
    }
}

/// The local files a `kind: Location` entity points at: `spec.target` and `spec.targets`,
/// relative to the Location's own file, globs allowed. Remote (`https://...`) targets are
/// left to connectors that fetch URLs.
fn location_targets(entity: &surveyor_model::Entity, file: &Path) -> Vec<PathBuf> {
    let mut raw: Vec<&str> = Vec::new();
    if let Some(t) = entity.spec_str("target") {
        raw.push(t);
    }
    if let Some(items) = entity.spec.get("targets").and_then(|v| v.as_array()) {
        raw.extend(items.iter().filter_map(|v| v.as_str()));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for t in raw {
        if t.contains("://") {
            continue;
        }
        let pattern = dir.join(t);
        let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
            continue;
        };
        for p in paths.flatten() {
            if p.is_file() {
                // Normalise `./` and `..` so the same file is not read twice under two names.
                out.push(std::fs::canonicalize(&p).unwrap_or(p));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use surveyor_model::ScopeStatus;

    async fn crawl(dir: &Path, paths: &[&str]) -> (Vec<Observation>, Outcome) {
        let c = FileConnector::new(
            "files",
            FileConfig {
                paths: paths.iter().map(|s| s.to_string()).collect(),
            },
            dir,
        )
        .unwrap();
        let (sink, mut rx) = ObservationSink::channel("files", 64);
        let outcome = c.crawl(sink).await.unwrap();
        let mut got = Vec::new();
        while let Ok(o) = rx.try_recv() {
            got.push(o);
        }
        (got, outcome)
    }

    #[tokio::test]
    async fn reads_good_documents_and_reports_bad_ones_with_location() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("catalog/team")).unwrap();
        std::fs::write(
            dir.path().join("catalog/team/a.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\nspec:\n  owner: t\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: b_\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("catalog/broken.yaml"), "kind: [unclosed\n").unwrap();
        let (obs, outcome) = crawl(dir.path(), &["catalog/**/*.yaml"]).await;
        assert_eq!(obs.len(), 1);
        assert_eq!(
            obs[0].external_id,
            "catalog/team/a.yaml#component:default/a"
        );
        assert!(obs[0].declared);
        assert_eq!(obs[0].scope, "files");
        let problems: Vec<String> = outcome.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("catalog/broken.yaml:"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("catalog/team/a.yaml (document 2): metadata.name:"),
            "{problems:?}"
        );
        assert!(matches!(
            outcome.status("files"),
            Some(ScopeStatus::Partial { .. })
        ));
    }

    #[tokio::test]
    async fn locations_pull_in_their_targets_once() {
        let dir = tempfile::tempdir().unwrap();
        let comp = |n: &str| {
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {n}\nspec:\n  owner: t\n"
            )
        };
        std::fs::create_dir_all(dir.path().join("services/a")).unwrap();
        std::fs::write(dir.path().join("services/a/catalog-info.yaml"), comp("a")).unwrap();
        std::fs::write(dir.path().join("services/b.yaml"), comp("b")).unwrap();
        std::fs::write(
            dir.path().join("catalog-info.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  type: file\n  targets:\n    - ./services/*/catalog-info.yaml\n    - ./services/b.yaml\n    - ./catalog-info.yaml\n    - https://example.com/remote.yaml\n",
        )
        .unwrap();
        let (obs, outcome) = crawl(dir.path(), &["catalog-info.yaml", "services/b.yaml"]).await;
        let mut ids: Vec<&str> = obs.iter().map(|o| o.external_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            vec![
                "catalog-info.yaml#location:default/root",
                "services/a/catalog-info.yaml#component:default/a",
                "services/b.yaml#component:default/b",
            ]
        );
        assert_eq!(outcome.status("files"), Some(&ScopeStatus::Complete));
    }

    #[tokio::test]
    async fn an_empty_match_is_a_complete_empty_scope() {
        let dir = tempfile::tempdir().unwrap();
        let (obs, outcome) = crawl(dir.path(), &["nothing/*.yaml"]).await;
        assert!(obs.is_empty());
        assert_eq!(outcome.status("files"), Some(&ScopeStatus::Complete));
    }

    #[test]
    fn rejects_bad_patterns() {
        let e = FileConnector::new(
            "f",
            FileConfig {
                paths: vec!["a/***".into()],
            },
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("invalid glob pattern \"a/***\""),
            "{e}"
        );
        assert!(FileConnector::new("f", FileConfig { paths: vec![] }, Path::new(".")).is_err());
    }
}
