//! The `file` connector: entities declared in Backstage descriptor YAML files on disk.
//! One scope (the connector); a bad document is reported and makes the scope partial.

mod api;
mod config;
mod map;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use surveyor_model::{ConfigError, Crawl, Crawled, Observation};

pub use config::FileConfig;

use crate::api::Disk;

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "file";

#[derive(Debug, Clone)]
pub struct FileConnector {
    id: String,
    disk: Disk,
}

impl FileConnector {
    pub fn new(id: &str, config: FileConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        Ok(Self {
            id: id.to_string(),
            disk: Disk::new(id, config.patterns()?, base_dir),
        })
    }

    /// The one scope (the connector's id): files from the patterns, then any that Location
    /// entities point at (each file once, so a Location that points back at its own file is
    /// harmless).
    async fn crawl_files(&self, scope: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let mut queue: VecDeque<PathBuf> = self.disk.files(outcome).into_iter().collect();
        let mut visited: BTreeSet<PathBuf> = queue.iter().cloned().collect();
        while let Some(path) = queue.pop_front() {
            let rel = self.disk.relative(&path);
            let Some(text) = self.disk.text(&path, &rel, outcome).await else {
                continue;
            };
            for doc in map::documents(scope, &rel, &text) {
                match doc {
                    Ok((external_id, entity)) => {
                        for target in map::location_targets(&entity, &path) {
                            if visited.insert(target.clone()) {
                                queue.push_back(target);
                            }
                        }
                        sink.send(Observation::declared(scope, external_id, entity))
                            .await?;
                    }
                    Err(problem) => outcome.problem(problem),
                }
            }
        }
        outcome.complete(scope);
        Ok(())
    }
}

surveyor_model::connector!(FileConnector(FileConfig, base_dir): each |c| [&c.id] => crawl_files);

#[cfg(test)]
mod tests;
