//! Fuzzes the `surveyor.toml` loader: any text parses or gives located errors, never a panic,
//! and every connector that parses can read its own options and locate an error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use surveyor_engine::config::{Config, KindSpec};

const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "file",
        keys: &["paths"],
    },
    KindSpec {
        name: "github",
        keys: &["orgs", "token", "include", "exclude"],
    },
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, Path::new("fuzz.toml"), KINDS) {
        Ok(config) => {
            for spec in &config.connectors {
                let _ = spec.options::<serde_json::Value>();
                let located = spec.error_at("paths", "fuzz");
                assert!(located.0.iter().all(|e| e.line >= 1), "{located}");
            }
            let _ = config.database_url();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(e.line >= 1 && e.column >= 1, "unlocated: {e}");
            }
            let _ = errors.to_string();
        }
    }
});
