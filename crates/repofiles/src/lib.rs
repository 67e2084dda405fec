//! Parsers for files found in repositories: CODEOWNERS (GitHub and GitLab dialects), package
//! manifests (what a repo depends on and what it produces), and catalog-info.yaml descriptors.
//! Every parser returns errors, never panics, on any input.

pub mod catalog;
pub mod codeowners;
pub mod forge;
pub mod manifests;

pub use codeowners::{CodeOwners, Flavor, Owner};
pub use manifests::{
    Dependency, Ecosystem, Manifest, ManifestError, Package, Scope, is_manifest, parse_manifest,
    parse_manifest_bytes,
};
/// `catalog-info.yaml`: multi-document Backstage descriptors, parsed by the model.
pub use surveyor_model::descriptor::{Document, parse_descriptors as parse_catalog_info};

/// Where descriptors are looked for in a repository, first found wins.
pub const CATALOG_INFO_FILES: &[&str] = &["catalog-info.yaml", "catalog-info.yml"];
