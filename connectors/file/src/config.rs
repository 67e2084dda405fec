//! `[[connectors]] kind = "file"`: the glob patterns of the descriptor files to read.

use serde::Deserialize;
use surveyor_model::ConfigError;

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

impl FileConfig {
    /// The patterns, each a valid glob; every error is about `paths`.
    pub fn patterns(self) -> Result<Vec<String>, ConfigError> {
        if self.paths.is_empty() {
            return Err(ConfigError::new(
                "paths",
                "`paths` is empty: list at least one glob pattern",
            ));
        }
        for p in &self.paths {
            glob::Pattern::new(p).map_err(|e| {
                ConfigError::new("paths", format!("invalid glob pattern {p:?}: {}", e.msg))
            })?;
            crate::walk::Pattern::parse(std::path::Path::new(p))
                .map_err(|why| ConfigError::new("paths", format!("pattern {p:?} {why}")))?;
        }
        Ok(self.paths)
    }
}
