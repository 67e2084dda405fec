//! `surveyor export --format backstage DIR`: the live catalog as Backstage descriptor files,
//! one per entity at `DIR/<namespace>/<kind>/<name>.yaml`, which the `file` connector (and
//! Backstage) read back to the same entities.
//!
//! What is left out, because it would not round-trip or is the catalog's own: `metadata.uid`,
//! `metadata.etag` and `metadata.generation` (the reader assigns its own), `relations` and
//! `status` (derived from the spec when read), the
//! `backstage.io/managed-by-location` and `backstage.io/managed-by-origin-location`
//! annotations (they say where the entity was read from; whoever reads the export sets its
//! own), and `Location` entities (their targets point at files relative to where they were).
//! Tags are written sorted, as readers sort them. Every other annotation, label, link and spec
//! field is written as it is, names included: a reference that names an entity by an identity
//! alias (a name one source gives another source's entity, `user:default/ken.berners.5` for
//! `ken-berners-5`) stays as the catalog holds it, unless `--resolve-aliases` writes it as the
//! entity's own ref (a reader does not know the alias, and would relate it to that name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::Value;
use surveyor_model::entity::SPEC_RELATIONS;
use surveyor_model::{DEFAULT_NAMESPACE, EntityRef};
use surveyor_store::EntityFilter;

use crate::CliError;
use crate::setup::{load, open};

/// `surveyor export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file format
    #[arg(long, value_enum, default_value_t = ExportFormat::Backstage)]
    pub format: ExportFormat,
    /// Write into this directory even though it holds files: descriptor files (`*.yaml`)
    /// at `<namespace>/<kind>/` in it are deleted first, so entities gone from the catalog go
    /// from the export too; nothing else is touched
    #[arg(long)]
    pub force: bool,
    /// Write a reference that names an entity by an identity alias (a name one source gives
    /// another's entity) as the entity's own ref, so that readers relate it as the catalog
    /// does; the referring entity's spec then differs from the catalog's by those names
    #[arg(long)]
    pub resolve_aliases: bool,
    /// The directory to write (created if missing)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Backstage descriptor files (catalog-info.yaml format)
    Backstage,
}

/// Annotations set by whoever reads a descriptor, about where it read it.
const READER_ANNOTATIONS: [&str; 2] = [
    "backstage.io/managed-by-location",
    "backstage.io/managed-by-origin-location",
];

/// The spec fields Backstage's validators require of each kind (its JSON schemas for
/// `backstage.io/v1alpha1` and `v1beta1`); surveyor's own reader is more lenient.
const BACKSTAGE_REQUIRED: &[(&str, &[&str])] = &[
    ("component", &["type", "lifecycle", "owner"]),
    ("api", &["type", "lifecycle", "owner", "definition"]),
    ("resource", &["type", "owner"]),
    ("system", &["owner"]),
    ("domain", &["owner"]),
    ("group", &["type", "children"]),
];

/// The spec fields Backstage requires that `body` lacks (`spec.owner`, ...).
pub fn missing_for_backstage(body: &Value) -> Vec<String> {
    let kind = body["kind"].as_str().unwrap_or("").to_ascii_lowercase();
    BACKSTAGE_REQUIRED
        .iter()
        .filter(|(k, _)| *k == kind)
        .flat_map(|(_, fields)| fields.iter())
        .filter(|f| body["spec"].get(**f).is_none_or(Value::is_null))
        .map(|f| format!("spec.{f}"))
        .collect()
}

/// The descriptor written for an entity body: the body less what does not round-trip.
pub fn descriptor(body: &Value) -> Value {
    let mut doc = body.clone();
    if let Value::Object(m) = &mut doc {
        m.remove("relations");
        m.remove("status");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for key in ["uid", "etag", "generation"] {
                meta.remove(key);
            }
            // Descriptor readers sort tags (and drop repeats): written so, the file is what
            // they read.
            if let Some(Value::Array(tags)) = meta.get_mut("tags") {
                tags.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                tags.dedup();
            }
            if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
                for key in READER_ANNOTATIONS {
                    annotations.remove(key);
                }
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    doc
}

/// Rewrites, in `body`'s spec, each reference to an alias key in `aliases` (alias key ->
/// entity key) as that entity's display ref (`displays`: entity key -> display ref), dropping
/// a reference a list then holds twice.
pub fn resolve_aliases(
    body: &mut Value,
    aliases: &BTreeMap<String, String>,
    displays: &BTreeMap<String, String>,
) {
    let kind = body["kind"].as_str().unwrap_or("").to_string();
    let namespace = body["metadata"]["namespace"]
        .as_str()
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string();
    let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (of_kind, field, _, default_kind) in SPEC_RELATIONS {
        if *of_kind != "*" && !of_kind.eq_ignore_ascii_case(&kind) {
            continue;
        }
        let Some(value) = spec.get_mut(*field) else {
            continue;
        };
        // The key a reference names, and its rewrite when it names an alias.
        let resolve = |s: &str| -> (Option<String>, Option<String>) {
            match EntityRef::parse_with(s, Some(default_kind), &namespace) {
                Ok(r) => {
                    let key = r.key();
                    match aliases
                        .get(&key)
                        .and_then(|k| displays.get(k).map(|d| (k, d)))
                    {
                        Some((k, display)) => (Some(k.clone()), Some(display.clone())),
                        None => (Some(key), None),
                    }
                }
                Err(_) => (None, None),
            }
        };
        match value {
            Value::String(s) => {
                if let (_, Some(display)) = resolve(s) {
                    *s = display;
                }
            }
            Value::Array(items) => {
                let mut seen = std::collections::BTreeSet::new();
                items.retain_mut(|item| {
                    let Value::String(s) = item else {
                        return true;
                    };
                    let (key, display) = resolve(s);
                    if let Some(display) = display {
                        *s = display;
                    }
                    key.is_none_or(|k| seen.insert(k))
                });
            }
            _ => {}
        }
    }
}

/// A path segment for a name: Backstage names, kinds and namespaces are `[A-Za-z0-9._-]`
/// already; anything else (and a leading dot) is written as `%XX` so that no name can climb
/// out of its directory or hide as a dotfile.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && i > 0) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// The file of an entity, relative to the export directory.
pub fn relative_path(namespace: &str, kind: &str, name: &str) -> PathBuf {
    PathBuf::from(segment(namespace))
        .join(segment(&kind.to_ascii_lowercase()))
        .join(format!("{}.yaml", segment(name)))
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::Runtime(anyhow::anyhow!("{}: {e}", path.display()))
}

/// Whether `dir` holds anything.
fn has_entries(dir: &Path) -> Result<bool, CliError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(dir, e)),
    }
}

/// Deletes the `*.yaml` files at `<namespace>/<kind>/` under `dir` (an earlier export's).
fn remove_previous(dir: &Path) -> Result<usize, CliError> {
    let mut removed = 0;
    let subdirs = |d: &Path| -> Result<Vec<PathBuf>, CliError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(d).map_err(|e| io_error(d, e))? {
            let entry = entry.map_err(|e| io_error(d, e))?;
            if entry.file_type().map_err(|e| io_error(d, e))?.is_dir() {
                out.push(entry.path());
            }
        }
        Ok(out)
    };
    for ns in subdirs(dir)? {
        for kind in subdirs(&ns)? {
            for entry in std::fs::read_dir(&kind).map_err(|e| io_error(&kind, e))? {
                let path = entry.map_err(|e| io_error(&kind, e))?.path();
                if path.is_file() && path.extension().is_some_and(|x| x == "yaml") {
                    std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

pub async fn run(config_path: &Path, args: ExportArgs) -> Result<(), CliError> {
    let ExportFormat::Backstage = args.format;
    if has_entries(&args.dir)? && !args.force {
        return Err(CliError::Input(format!(
            "{} is not empty (use --force to replace an earlier export there)",
            args.dir.display()
        )));
    }
    let config = load(config_path)?;
    let store = open(&config).await?;
    let rows = store.list_entities(&EntityFilter::default()).await?;
    let aliases: BTreeMap<String, String> = if args.resolve_aliases {
        store.all_aliases().await?.into_iter().collect()
    } else {
        BTreeMap::new()
    };
    store.close().await;
    let displays: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r.entity_ref.clone(), r.display_ref.clone()))
        .collect();
    std::fs::create_dir_all(&args.dir).map_err(|e| io_error(&args.dir, e))?;
    if args.force {
        remove_previous(&args.dir)?;
    }
    let (mut written, mut skipped) = (0usize, 0usize);
    let mut incomplete: Vec<String> = Vec::new();
    for row in rows.iter().filter(|r| r.is_live()) {
        let mut body: Value = serde_json::from_str(&row.body).map_err(|e| {
            CliError::Runtime(anyhow::anyhow!(
                "the catalog's body of {} is not JSON: {e}",
                row.display_ref
            ))
        })?;
        if row.kind.eq_ignore_ascii_case("location") {
            skipped += 1;
            continue;
        }
        if !aliases.is_empty() {
            resolve_aliases(&mut body, &aliases, &displays);
        }
        let name = body["metadata"]["name"].as_str().unwrap_or(&row.name);
        let namespace = body["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&row.namespace);
        let kind = body["kind"].as_str().unwrap_or(&row.kind);
        let path = args.dir.join(relative_path(namespace, kind, name));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        let text = yaml_serde::to_string(&descriptor(&body))
            .map_err(|e| CliError::Runtime(anyhow::anyhow!("{}: {e}", row.display_ref)))?;
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))?;
        written += 1;
        let missing = missing_for_backstage(&body);
        if !missing.is_empty() {
            incomplete.push(format!("{} ({})", row.display_ref, missing.join(", ")));
        }
    }
    if !incomplete.is_empty() {
        // Written all the same: the file connector reads them, and `surveyor audit ownership`
        // lists the owners missing.
        eprintln!(
            "warning: {} entities lack fields Backstage requires and would be rejected there: {}{}",
            incomplete.len(),
            incomplete
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if incomplete.len() > 10 { "; ..." } else { "" }
        );
    }
    eprintln!(
        "wrote {written} descriptor files to {}{}",
        args.dir.display(),
        if skipped > 0 {
            format!(" ({skipped} Location entities left out)")
        } else {
            String::new()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn descriptors_leave_out_what_the_reader_sets() {
        let body = json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "svc", "uid": "u1", "etag": "e1",
                "annotations": {
                    "backstage.io/managed-by-location": "url:x",
                    "github.com/project-slug": "acme/svc"
                }
            },
            "spec": {"owner": "team-a"},
            "relations": [{"type": "ownedBy"}],
        });
        assert_eq!(
            descriptor(&body),
            json!({
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": "svc",
                    "annotations": {"github.com/project-slug": "acme/svc"}
                },
                "spec": {"owner": "team-a"},
            })
        );
    }

    #[test]
    fn fields_backstage_requires_are_named_when_missing() {
        let component = json!({"kind": "Component", "spec": {"type": "service", "owner": null}});
        assert_eq!(
            missing_for_backstage(&component),
            vec!["spec.lifecycle", "spec.owner"]
        );
        let user = json!({"kind": "User", "spec": {}});
        assert!(missing_for_backstage(&user).is_empty());
        let system = json!({"kind": "System", "spec": {"owner": "group:default/a"}});
        assert!(missing_for_backstage(&system).is_empty());
    }

    #[test]
    fn references_through_aliases_are_resolved() {
        let aliases = BTreeMap::from([(
            "user:default/ken.berners.5".to_string(),
            "user:default/ken-berners-5".to_string(),
        )]);
        let displays = BTreeMap::from([(
            "user:default/ken-berners-5".to_string(),
            "user:default/ken-berners-5".to_string(),
        )]);
        let mut group = json!({
            "kind": "Group",
            "metadata": {"name": "g"},
            "spec": {"type": "team", "members": ["ken-berners-5", "ann", "ken.berners.5"],
                     "parent": "acme"},
        });
        resolve_aliases(&mut group, &aliases, &displays);
        assert_eq!(group["spec"]["members"], json!(["ken-berners-5", "ann"]));
        let mut system = json!({
            "kind": "System",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"owner": "user:ken.berners.5"},
        });
        resolve_aliases(&mut system, &aliases, &displays);
        assert_eq!(system["spec"]["owner"], "user:default/ken-berners-5");
    }

    #[test]
    fn paths_stay_inside_the_export() {
        assert_eq!(
            relative_path("default", "Component", "payments-api.v2"),
            PathBuf::from("default/component/payments-api.v2.yaml")
        );
        assert_eq!(
            relative_path("..", "Group", "../x"),
            PathBuf::from("%2E./group/%2E.%2Fx.yaml")
        );
        assert_eq!(
            relative_path("", "User", "a b"),
            PathBuf::from("%00/user/a%20b.yaml")
        );
    }
}
