//! Validators and bodies of earlier GET responses, so a re-crawl can ask "changed since?" and
//! be answered with 304s. Kept per connector: cached bodies never cross credentials.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a conditional request needs, and what a 304 gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The `Link` header of the full response: a 304 does not repeat it (GitHub's do not), and
    /// a paged list cannot go on without it.
    pub link: Option<String>,
    pub body: Bytes,
}

/// Storage for cache entries, keyed by URL.
pub trait ResponseCache: Send + Sync {
    fn get(&self, url: &str) -> Option<CacheEntry>;
    fn put(&self, url: &str, entry: CacheEntry);
}

/// An in-process cache (tests, one-off runs).
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
}

impl ResponseCache for MemoryCache {
    fn get(&self, url: &str) -> Option<CacheEntry> {
        self.entries.lock().ok()?.get(url).cloned()
    }
    fn put(&self, url: &str, entry: CacheEntry) {
        if let Ok(mut m) = self.entries.lock() {
            m.insert(url.to_string(), entry);
        }
    }
}

/// A cache in a directory (one per connector, next to the catalog), surviving restarts.
/// Each entry is two files named by the URL's hash: validators as JSON, and the body.
#[derive(Debug, Clone)]
pub struct FileCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

impl FileCache {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn paths(&self, url: &str) -> (PathBuf, PathBuf) {
        let digest = Sha256::digest(url.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        (
            self.dir.join(format!("{name}.json")),
            self.dir.join(format!("{name}.body")),
        )
    }
}

/// Writes via a temporary file and a rename, so a crash never leaves half an entry.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

impl ResponseCache for FileCache {
    fn get(&self, url: &str) -> Option<CacheEntry> {
        let (meta_path, body_path) = self.paths(url);
        let meta: Meta = serde_json::from_slice(&std::fs::read(meta_path).ok()?).ok()?;
        if meta.url != url {
            return None;
        }
        let body = std::fs::read(body_path).ok()?;
        Some(CacheEntry {
            etag: meta.etag,
            last_modified: meta.last_modified,
            link: meta.link,
            body: Bytes::from(body),
        })
    }

    fn put(&self, url: &str, entry: CacheEntry) {
        let (meta_path, body_path) = self.paths(url);
        let meta = Meta {
            url: url.to_string(),
            etag: entry.etag,
            last_modified: entry.last_modified,
            link: entry.link,
        };
        // A cache that cannot be written only costs a full response next time.
        let result = write_atomic(&body_path, &entry.body).and_then(|()| {
            let json = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
            write_atomic(&meta_path, &json)
        });
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not write the HTTP cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cache_round_trips_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            etag: Some("\"abc\"".into()),
            last_modified: None,
            link: Some("<https://api/x?page=3>; rel=\"next\"".into()),
            body: Bytes::from_static(b"{\"ok\":true}"),
        };
        FileCache::new(dir.path())
            .unwrap()
            .put("https://api/x?page=2", entry.clone());
        let again = FileCache::new(dir.path()).unwrap();
        assert_eq!(again.get("https://api/x?page=2"), Some(entry));
        assert_eq!(again.get("https://api/x?page=3"), None);
    }
}
