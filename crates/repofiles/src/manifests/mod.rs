//! Package manifests: what a repository depends on (ecosystem, package, requirement, scope,
//! file) and what package it produces, so a dependency on a package another catalogued repo
//! produces can become a `dependsOn` between the two.

mod cargo;
mod gomod;
mod maven;
mod npm;
mod python;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A package ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Cargo,
    Npm,
    Go,
    Pypi,
    Maven,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cargo => "cargo",
            Self::Npm => "npm",
            Self::Go => "go",
            Self::Pypi => "pypi",
            Self::Maven => "maven",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Cargo, Self::Npm, Self::Go, Self::Pypi, Self::Maven]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a dependency is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Runtime,
    Dev,
    Build,
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dependency {
    pub ecosystem: Ecosystem,
    /// The package's name in its registry (a renamed Cargo dependency's real crate name).
    pub package: String,
    /// The requirement as written (`^1.2`, `>=2,<3`, `v1.4.0`, `git+https://...`); empty if none.
    pub requirement: String,
    pub scope: Scope,
    /// The manifest's path in the repository.
    pub file: String,
}

/// A package a manifest produces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
}

/// What one manifest says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Packages this manifest builds (one, or none for a workspace root or a private app).
    pub produces: Vec<Package>,
    pub dependencies: Vec<Dependency>,
}

/// Why a manifest could not be read. Never a panic, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub message: String,
}

/// Manifests larger than this are refused (no real manifest comes close).
pub const MAX_MANIFEST_BYTES: usize = 2 * 1024 * 1024;

/// The manifest kinds recognised, by file name.
pub const MANIFEST_FILES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "go.mod",
    "requirements.txt",
    "pyproject.toml",
    "pom.xml",
];

/// Whether `path` names a manifest this crate parses (`requirements-dev.txt` included).
pub fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    MANIFEST_FILES.contains(&name) || is_requirements_file(name)
}

fn is_requirements_file(name: &str) -> bool {
    name.starts_with("requirements") && name.ends_with(".txt")
}

/// Parses a manifest as read from disk or a forge: the size limit is checked first, then the
/// bytes must be UTF-8 (the error names the line of the first bad byte).
pub fn parse_manifest_bytes(path: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let fail = |message: String| ManifestError {
        file: path.to_string(),
        message,
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(fail(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| fail(utf8_error(bytes, &e)))?;
    parse_manifest(path, text)
}

/// `not valid UTF-8: byte 0xe9 on line 3`, for any of this crate's byte entry points.
pub(crate) fn utf8_error(bytes: &[u8], e: &std::str::Utf8Error) -> String {
    let valid = &bytes[..e.valid_up_to()];
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    let bad = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
    format!("not valid UTF-8: byte 0x{bad:02x} on line {line}")
}

/// Parses the manifest at `path` (its file name decides the format) with content `text`.
pub fn parse_manifest(path: &str, text: &str) -> Result<Manifest, ManifestError> {
    let fail = |message: String| ManifestError {
        file: path.to_string(),
        message,
    };
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(fail(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut manifest = match name {
        "Cargo.toml" => cargo::parse(path, text),
        "package.json" => npm::parse(path, text),
        "go.mod" => gomod::parse(path, text),
        "pyproject.toml" => python::parse_pyproject(path, text),
        "pom.xml" => maven::parse(path, text),
        n if is_requirements_file(n) => python::parse_requirements(path, text),
        _ => Err(format!(
            "not a recognised manifest (expected one of {})",
            MANIFEST_FILES.join(", ")
        )),
    }
    .map_err(fail)?;
    manifest.dependencies.sort();
    manifest.dependencies.dedup();
    Ok(manifest)
}

#[cfg(test)]
mod tests;
