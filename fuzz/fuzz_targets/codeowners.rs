//! Fuzzes CODEOWNERS parsing in both dialects and owner lookups on paths taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surveyor_repofiles::{CodeOwners, Flavor};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take(8)
        .chain(["README.md", "src/lib.rs", "/docs/a/b.md", ""])
        .collect();
    for flavor in [Flavor::GitHub, Flavor::GitLab] {
        let c = CodeOwners::parse(&text, flavor);
        for e in &c.errors {
            let _ = e.to_string();
        }
        let _ = c.repo_owners();
        for path in &paths {
            let owners = c.owners_of(path);
            let decided = c.deciding_line(path);
            // A path with owners was decided by some rule.
            assert!(
                owners.is_empty() || decided.is_some(),
                "{path:?}: {owners:?}"
            );
            for o in owners {
                let _ = o.to_string();
            }
        }
    }
});
