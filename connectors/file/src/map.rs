//! From descriptor files to declared entities: each document of a file is an entity (its
//! external id is the file and its ref) or a problem located at its line; `kind: Location`
//! entities point at more files.

use std::path::{Path, PathBuf};

use surveyor_model::descriptor::parse_descriptors;
use surveyor_model::{Entity, Problem};

/// The documents of the file at `rel` (relative to the config file's directory): an entity with
/// its external id (`<rel>#<ref key>`), or why the document is not one.
pub fn documents(scope: &str, rel: &str, text: &str) -> Vec<Result<(String, Entity), Problem>> {
    parse_descriptors(text)
        .into_iter()
        .map(|doc| {
            let location = match doc.line {
                Some(line) => format!("{rel}:{line} (document {})", doc.index + 1),
                None => format!("{rel} (document {})", doc.index + 1),
            };
            let problem = |field: Option<String>, message: String| Problem {
                scope: scope.to_string(),
                location: location.clone(),
                field,
                message,
            };
            match doc.result {
                Ok(entity) => match entity.entity_ref() {
                    Ok(r) => Ok((format!("{rel}#{}", r.key()), entity)),
                    Err(e) => Err(problem(Some("metadata.name".into()), e.to_string())),
                },
                Err(e) => Err(problem(e.field().map(str::to_string), e.to_string())),
            }
        })
        .collect()
}

/// The local files a `kind: Location` entity points at: `spec.target` and `spec.targets`,
/// relative to the Location's own file, globs allowed. Remote (`https://...`) targets are
/// left to connectors that fetch URLs. Nothing for other kinds.
pub fn location_targets(entity: &Entity, file: &Path) -> Vec<PathBuf> {
    if !entity.kind.eq_ignore_ascii_case("Location") {
        return Vec::new();
    }
    let mut raw: Vec<&str> = Vec::new();
    if let Some(t) = entity.spec_str("target") {
        raw.push(t);
    }
    if let Some(items) = entity.spec.get("targets").and_then(|v| v.as_array()) {
        raw.extend(items.iter().filter_map(|v| v.as_str()));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for t in raw {
        if t.contains("://") {
            continue;
        }
        let pattern = dir.join(t);
        let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
            continue;
        };
        for p in paths.flatten() {
            if p.is_file() {
                // Normalise `./` and `..` so the same file is not read twice under two names.
                out.push(std::fs::canonicalize(&p).unwrap_or(p));
            }
        }
    }
    out
}
