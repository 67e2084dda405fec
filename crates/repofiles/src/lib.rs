//! Parsers for files found in repositories: CODEOWNERS (GitHub and GitLab dialects), package
//! manifests (what a repo depends on and what it produces), and catalog-info.yaml descriptors.

pub mod codeowners;

pub use codeowners::{CodeOwners, Flavor, Owner};
