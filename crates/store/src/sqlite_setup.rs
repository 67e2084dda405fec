//! SQLite's process-wide settings, made once before its first connection: no memory
//! statistics, which take a global mutex on every allocation SQLite makes.
//!
//! SQLite on the process's allocator (mimalloc, through `SQLITE_CONFIG_MALLOC`) was measured
//! too: within the noise in time and 30 MB more peak RSS on a 100k initial load, so SQLite keeps
//! the C library's (docs/benchmarks.md).

use std::ffi::c_int;
use std::sync::Once;

use libsqlite3_sys as ffi;

static SETUP: Once = Once::new();

/// Applies the settings, once. SQLite takes them only before it initialises: if something else
/// opened a database first, it refuses them (`SQLITE_MISUSE`) and keeps its defaults, which
/// work the same, only slower.
pub fn setup() {
    SETUP.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this process is opened
        // (every one goes through `Store::open_sqlite`, which calls this first).
        let memstatus = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        if memstatus != ffi::SQLITE_OK {
            tracing::debug!(
                memstatus,
                "SQLite was initialised before its settings could apply; it keeps its defaults"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_opens_sqlite_with_the_settings_applied() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = crate::Store::connect(&url).await.expect("open");
        store.ping().await.expect("ping");
        // Without memory statistics SQLite counts nothing: with them, an open database with
        // its migrations run holds hundreds of kilobytes.
        // SAFETY: a plain read of a counter.
        let used = unsafe { ffi::sqlite3_memory_used() };
        assert_eq!(used, 0, "memory statistics are off");
        store.close().await;
    }
}
