//! From descriptor files to declared entities: each document of a file is an entity (its
//! external id is the file and its ref) or a problem located at its line; `kind: Location`
//! entities point at more files.

use surveyor_model::descriptor::{DescriptorError, parse_descriptors};
use surveyor_model::{Entity, Problem};

/// The documents of the file at `rel` (relative to the config file's directory): an entity with
/// its external id (`<rel>#<ref key>`), or why the document is not one. A document that is not a
/// Backstage descriptor at all (no mapping with a valid apiVersion and kind: some other YAML
/// file the pattern matched) is reported without its values, which may be anything.
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
                Err(e) => match not_a_descriptor(&e) {
                    Some(why) => Err(problem(None, why)),
                    None => Err(problem(e.field().map(str::to_string), e.to_string())),
                },
            }
        })
        .collect()
}

/// Why a document is not a Backstage descriptor, naming fields but no values; `None` when it
/// is one (its errors are about the user's own descriptor and are shown in full).
fn not_a_descriptor(error: &DescriptorError) -> Option<String> {
    let DescriptorError::Fields(errors) = error else {
        return None;
    };
    if errors.iter().any(|e| e.field.is_empty()) {
        return Some("not a Backstage descriptor: the document is not a mapping".into());
    }
    let missing: Vec<&str> = ["apiVersion", "kind"]
        .into_iter()
        .filter(|f| errors.iter().any(|e| e.field == *f))
        .collect();
    match missing.as_slice() {
        [] => None,
        [one] => Some(format!(
            "not a Backstage descriptor: {one} is missing or invalid"
        )),
        _ => Some(format!(
            "not a Backstage descriptor: {} are missing or invalid",
            missing.join(" and ")
        )),
    }
}

/// A local target of a `kind: Location` entity: the field it was written in and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationTarget {
    /// `spec.target` or `spec.targets`.
    pub field: &'static str,
    pub target: String,
}

/// The local files a `kind: Location` entity points at: `spec.target` and `spec.targets`,
/// relative to the Location's own file, globs allowed. Remote (`https://...`) targets are
/// left to connectors that fetch URLs. Nothing for other kinds.
pub fn location_targets(entity: &Entity) -> Vec<LocationTarget> {
    if !entity.kind.eq_ignore_ascii_case("Location") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(t) = entity.spec_str("target") {
        out.push(("spec.target", t));
    }
    if let Some(items) = entity.spec.get("targets").and_then(|v| v.as_array()) {
        out.extend(
            items
                .iter()
                .filter_map(|v| v.as_str())
                .map(|t| ("spec.targets", t)),
        );
    }
    out.into_iter()
        .filter(|(_, t)| !t.contains("://"))
        .map(|(field, target)| LocationTarget {
            field,
            target: target.to_string(),
        })
        .collect()
}
