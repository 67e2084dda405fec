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

/// Whether a change to the file at `path` (in a repository) can change what a crawl reads of
/// it: CODEOWNERS, a descriptor, or a manifest, wherever it sits. A push that touches none of
/// them changes nothing in the catalog.
pub fn read_by_crawl(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "CODEOWNERS" || CATALOG_INFO_FILES.contains(&name) || is_manifest(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_crawl_reads_codeowners_descriptors_and_manifests() {
        for path in [
            "CODEOWNERS",
            ".github/CODEOWNERS",
            "catalog-info.yaml",
            "apps/web/package.json",
            "requirements-dev.txt",
            "pom.xml",
        ] {
            assert!(super::read_by_crawl(path), "{path}");
        }
        for path in [
            "README.md",
            "src/main.rs",
            "codeowners.md",
            "package.json.bak",
        ] {
            assert!(!super::read_by_crawl(path), "{path}");
        }
    }
}
