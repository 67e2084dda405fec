//! The `file` connector: entities declared in Backstage descriptor YAML files on disk. One
//! scope (the connector): a bad document or failed read makes it partial, an empty pattern failed.

mod api;
mod config;
mod map;
mod walk;

use std::collections::{BTreeSet, VecDeque};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use surveyor_model::{ConfigError, Crawl, Crawled, Entity, Observation, Problem};

pub use config::FileConfig;

use crate::api::{Disk, Found, Target};

/// The connector's kind name in `surveyor.toml`.
pub const KIND: &str = "file";

#[derive(Debug, Clone)]
pub struct FileConnector {
    id: String,
    disk: Disk,
}

/// What reading the files gives, in the order found.
#[derive(Debug)]
// Nearly every event is an entity; boxing it would only add an allocation to each.
#[allow(clippy::large_enum_variant)]
enum Event {
    /// A declared entity and its external id.
    Entity(String, Entity),
    /// A document that is not a valid entity.
    Invalid(Problem),
    /// Something that could not be read or was refused (a file, a directory, a Location target).
    Unread(Problem),
    /// A configured pattern that matched no file.
    Unmatched(String),
}

impl FileConnector {
    pub fn new(id: &str, config: FileConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        Ok(Self {
            id: id.to_string(),
            disk: Disk::new(id, config.patterns()?, base_dir),
        })
    }

    /// The one scope (the connector's id). The disk is read on a blocking thread that hands
    /// what it finds over a channel, so a crawl that is abandoned (timeout, shutdown) stops
    /// waiting at once and the reader stops at its next send.
    async fn crawl_files(&self, scope: &str, Crawl { sink, outcome }: Crawl<'_>) -> Crawled {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        let reading = tokio::task::spawn_blocking(move || {
            this.read_all(&mut |event| match tx.blocking_send(event) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            })
        });
        let mut unmatched = Vec::new();
        while let Some(event) = rx.recv().await {
            match event {
                Event::Entity(external_id, entity) => {
                    sink.send(Observation::declared(scope, external_id, entity))
                        .await?;
                }
                Event::Invalid(problem) | Event::Unread(problem) => outcome.problem(problem),
                Event::Unmatched(pattern) => unmatched.push(unmatched_pattern(&pattern)),
            }
        }
        if let Err(e) = reading.await {
            outcome.failed(scope, format!("reading the files stopped: {e}"));
        } else if !unmatched.is_empty() {
            outcome.failed(scope, unmatched.join("; "));
        } else {
            outcome.complete(scope);
        }
        Ok(())
    }

    /// Files from the patterns, then any that Location entities point at (each file once, so a
    /// Location that points back at its own file is harmless). Stops when `emit` says so.
    fn read_all(&self, emit: &mut dyn FnMut(Event) -> ControlFlow<()>) -> ControlFlow<()> {
        let expanded = self.disk.expand();
        for pattern in expanded.unmatched {
            emit(Event::Unmatched(pattern))?;
        }
        for problem in expanded.problems {
            emit(Event::Unread(problem))?;
        }
        let mut visited: BTreeSet<PathBuf> =
            expanded.files.iter().map(|f| f.path.clone()).collect();
        let mut queue: VecDeque<Found> = expanded.files.into();
        while let Some(Found { path, tree }) = queue.pop_front() {
            let rel = self.disk.relative(&path);
            let text = match self.disk.read(&path) {
                Ok(text) => text,
                Err(reason) => {
                    emit(Event::Unread(self.disk.problem(rel, reason)))?;
                    continue;
                }
            };
            for doc in map::documents(&self.id, &rel, &text) {
                let (external_id, entity) = match doc {
                    Ok(found) => found,
                    Err(problem) => {
                        emit(Event::Invalid(problem))?;
                        continue;
                    }
                };
                let location = entity
                    .entity_ref()
                    .map(|r| r.key())
                    .unwrap_or_else(|_| external_id.clone());
                for t in map::location_targets(&entity) {
                    let target = Target {
                        file: &path,
                        rel: &rel,
                        field: t.field,
                        target: &t.target,
                        location: &location,
                    };
                    let (files, problems) = self.disk.target(target, &tree);
                    for problem in problems {
                        emit(Event::Unread(problem))?;
                    }
                    for file in files {
                        if visited.insert(file.clone()) {
                            queue.push_back(Found {
                                path: file,
                                tree: tree.clone(),
                            });
                        }
                    }
                }
                emit(Event::Entity(external_id, entity))?;
            }
        }
        ControlFlow::Continue(())
    }

    /// What `surveyor validate` warns about: patterns that match no file and everything that
    /// cannot be read (Location targets missing or outside the tree included). Reads the files
    /// as a crawl would, on the calling thread.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let _ = self.read_all(&mut |event| {
            match event {
                Event::Unmatched(pattern) => warnings.push(unmatched_pattern(&pattern)),
                Event::Unread(problem) => warnings.push(problem.to_string()),
                Event::Entity(..) | Event::Invalid(_) => {}
            }
            ControlFlow::Continue(())
        });
        warnings
    }
}

fn unmatched_pattern(pattern: &str) -> String {
    format!("pattern {pattern:?} matched no file")
}

surveyor_model::connector!(FileConnector(FileConfig, base_dir):
    each |c| [&c.id] => crawl_files, check |c| c.warnings());

#[cfg(test)]
mod tests;
