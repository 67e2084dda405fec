//! `surveyor config schema`: a JSON Schema (draft 2020-12) of `surveyor.toml`, for editors
//! (Taplo, VS Code's Even Better TOML, JetBrains) to complete and check keys.
//!
//! The keys come from what the parser accepts, so the schema cannot lag behind it: the fixed
//! sections from the engine's key lists, each connector kind's keys from its config struct.
//! Descriptions and types of the sections are written here; a connector's are read from its
//! config struct's source (doc comments and field types, compiled in), with a few written here
//! for fields documented together with the one before. A test checks that every accepted key
//! has a description.

use serde_json::{Map, Value, json};
use surveyor_engine::config::{COMMON_CONNECTOR_KEYS, SECTION_KEYS};
use surveyor_engine::merge::MergeRule;

use crate::registry;

/// The source of each connector kind's config struct, by kind.
const CONNECTOR_SOURCES: &[(&str, &str)] = &[
    (
        "file",
        include_str!("../../../connectors/file/src/config.rs"),
    ),
    (
        "github",
        include_str!("../../../connectors/github/src/config.rs"),
    ),
    (
        "kubernetes",
        include_str!("../../../connectors/kubernetes/src/config.rs"),
    ),
    (
        "pagerduty",
        include_str!("../../../connectors/pagerduty/src/config.rs"),
    ),
    (
        "jira",
        include_str!("../../../connectors/jira/src/config.rs"),
    ),
    (
        "gitlab",
        include_str!("../../../connectors/gitlab/src/config.rs"),
    ),
];

/// Values of the enums connector configs use, as written in TOML.
const ENUMS: &[(&str, &[&str])] = &[
    ("Flavor", &["cloud", "datacenter", "server", "data-center"]),
    ("SystemNames", &["key", "name"]),
    ("TokenHeader", &["bearer", "private-token"]),
];

const SECRET: &str = "Secrets are written as ${ENV_VAR} references.";

/// (section, key, JSON type, description) of the sections' keys.
const SECTION_DOCS: &[(&str, &str, &str, &str)] = &[
    (
        "",
        "catalog",
        "object",
        "Where the catalog lives and how deletions are guarded.",
    ),
    (
        "",
        "server",
        "object",
        "`surveyor serve`: the HTTP API's address, tokens and bounds.",
    ),
    ("", "telemetry", "object", "Traces sent over OTLP/HTTP."),
    (
        "",
        "identity",
        "array",
        "Rules that decide when differently named things are one entity.",
    ),
    (
        "",
        "groups",
        "array",
        "Groups known under other names in some sources.",
    ),
    (
        "",
        "merge",
        "object",
        "Per-field merge rules, keyed by JSON pointer (\"/spec/lifecycle\").",
    ),
    ("", "audit", "object", "Audit settings."),
    (
        "",
        "classify",
        "object",
        "How Components are classified: production names and tier rules.",
    ),
    (
        "",
        "scorecards",
        "array",
        "Scorecards that grade the catalog after every sync, one table each.",
    ),
    (
        "",
        "connectors",
        "array",
        "The sources to crawl, one table each.",
    ),
    (
        "catalog",
        "database",
        "string",
        "\"sqlite://path.db\" (relative to this file) or \"postgres://user@host/db\"; ${ENV_VAR} references are expanded.",
    ),
    (
        "catalog",
        "retention",
        "string",
        "How long deleted entities are kept as tombstones (s, m, h, d, w).",
    ),
    (
        "catalog",
        "max_delete_ratio",
        "number",
        "A crawl that would delete more than this share of a scope's entities of one kind deletes nothing and fails.",
    ),
    (
        "catalog",
        "mass_delete_floor",
        "integer",
        "Deleting this many or fewer of one kind in one scope never counts as a mass deletion.",
    ),
    (
        "server",
        "listen",
        "string",
        "Address to listen on, e.g. 127.0.0.1:7878.",
    ),
    (
        "server",
        "read_tokens",
        "array",
        "Bearer tokens that may read the API (none: reads are open). Secrets are written as ${ENV_VAR} references.",
    ),
    (
        "server",
        "trigger_tokens",
        "array",
        "Bearer tokens that may trigger runs. Secrets are written as ${ENV_VAR} references.",
    ),
    (
        "server",
        "cors_origins",
        "array",
        "Origins allowed to call the API from a browser.",
    ),
    (
        "server",
        "max_page_size",
        "integer",
        "The largest page a list request may ask for.",
    ),
    (
        "server",
        "shutdown_grace",
        "string",
        "How long a stopping server waits for runs and requests (a duration such as 30s).",
    ),
    (
        "server",
        "header_read_timeout",
        "string",
        "How long a client may take to send a request's headers (a duration).",
    ),
    (
        "server",
        "idle_timeout",
        "string",
        "How long a kept-alive connection may sit idle (a duration).",
    ),
    (
        "server",
        "max_connections",
        "integer",
        "Connections served at once; more wait to be accepted.",
    ),
    (
        "server",
        "max_expensive_requests",
        "integer",
        "Expensive requests (large lists, audits) served at once.",
    ),
    (
        "server",
        "console",
        "boolean",
        "Serve the console (HTML pages for people) at / (default true).",
    ),
    (
        "telemetry",
        "otlp_endpoint",
        "string",
        "OTLP/HTTP collector URL (http:// or https://).",
    ),
    (
        "telemetry",
        "service_name",
        "string",
        "service.name of the traces.",
    ),
    (
        "audit",
        "cosmetic",
        "boolean",
        "Also report disagreements in cosmetic fields (descriptions, titles).",
    ),
    (
        "classify",
        "production",
        "array",
        "Cluster or namespace names that mean production (default: prod, production, prd, live).",
    ),
    (
        "classify",
        "default_tier",
        "string",
        "The tier of a Component no rule gives one (default: tier-3).",
    ),
    (
        "classify",
        "tier",
        "array",
        "Tier rules, tried in order; the first whose conditions all hold gives the tier. Replaces the default rules.",
    ),
    (
        "classify.tier",
        "tier",
        "string",
        "The tier this rule gives (tier-1).",
    ),
    (
        "classify.tier",
        "on_call",
        "boolean",
        "Covered by on-call now (PagerDuty), or not.",
    ),
    (
        "classify.tier",
        "urgency",
        "string",
        "PagerDuty incident urgency: high, low, severity_based or support-hours.",
    ),
    (
        "classify.tier",
        "min_escalation_levels",
        "integer",
        "At least this many levels in the escalation policy.",
    ),
    (
        "classify.tier",
        "production",
        "boolean",
        "Runs in a production cluster or namespace ([classify] production), or not.",
    ),
    (
        "classify.tier",
        "min_replicas",
        "integer",
        "At least this many replicas in one production workload.",
    ),
    (
        "classify.tier",
        "min_dependents",
        "integer",
        "At least this many catalog entities depend on it.",
    ),
    (
        "scorecards",
        "name",
        "string",
        "The scorecard's name (operational-readiness).",
    ),
    (
        "scorecards",
        "title",
        "string",
        "Its title for people (default: the name).",
    ),
    (
        "scorecards",
        "levels",
        "array",
        "Its levels, lowest first (bronze, silver, gold).",
    ),
    (
        "scorecards",
        "kind",
        "string",
        "The kind of entity it grades (default: component).",
    ),
    (
        "scorecards",
        "type",
        "array",
        "Only entities of these spec.type values.",
    ),
    (
        "scorecards",
        "tier",
        "array",
        "Only Components of these tiers (classification).",
    ),
    (
        "scorecards",
        "lifecycle",
        "array",
        "Only entities of these lifecycles.",
    ),
    (
        "scorecards",
        "label",
        "string",
        "Only entities with this label (key=value).",
    ),
    (
        "scorecards",
        "checks",
        "array",
        "Its checks, one table each ([[scorecards.checks]]).",
    ),
    (
        "scorecards.checks",
        "name",
        "string",
        "The check's name (owner-resolved).",
    ),
    (
        "scorecards.checks",
        "level",
        "string",
        "The level it belongs to.",
    ),
    (
        "scorecards.checks",
        "field",
        "string",
        "Passes when this field (spec.owner or /spec/owner) is set, and equals or matches when given.",
    ),
    (
        "scorecards.checks",
        "equals",
        "string",
        "With field: the value it must have.",
    ),
    (
        "scorecards.checks",
        "matches",
        "string",
        "With field: a glob the value must match.",
    ),
    (
        "scorecards.checks",
        "relation",
        "string",
        "Passes when a relation of this type (ownedBy) leads to an entity the catalog has.",
    ),
    (
        "scorecards.checks",
        "owner_members_at_least",
        "integer",
        "Passes when the owner is a group with at least this many members.",
    ),
    (
        "scorecards.checks",
        "on_call",
        "boolean",
        "true: passes when someone is on call for it now (PagerDuty).",
    ),
    (
        "scorecards.checks",
        "no_finding",
        "string",
        "Passes when no open finding of this audit rule (conflicting-owners) names it.",
    ),
    (
        "scorecards.checks",
        "dependency",
        "string",
        "\"npm:lodash >= 4.17.21\": passes when it does not depend on the package, or allows no version below that.",
    ),
    (
        "scorecards.checks",
        "dependency_absent",
        "string",
        "\"npm:event-stream\": passes when it does not depend on the package.",
    ),
    (
        "scorecards.checks",
        "file",
        "string",
        "Passes when the file was found in its repository: CODEOWNERS, catalog-info.yaml, or a manifest.",
    ),
    (
        "scorecards.checks",
        "link",
        "string",
        "Passes when a link's title, type or URL contains this text (runbook).",
    ),
    (
        "identity",
        "kinds",
        "array",
        "Lower-cased kinds the rule applies to; empty means every kind.",
    ),
    (
        "identity",
        "separators",
        "boolean",
        "`_` and `.` count as `-` (`payments_api` is `payments-api`).",
    ),
    (
        "identity",
        "strip_suffixes",
        "array",
        "Name suffixes ignored when comparing names (\"-service\").",
    ),
    (
        "identity",
        "aliases",
        "object",
        "Canonical name = [aliases]: names that mean that entity.",
    ),
    ("merge", "rule", "string", "How the field is merged."),
    (
        "merge",
        "sources",
        "array",
        "Connector ids whose value wins the field, in order.",
    ),
];

/// Descriptions of the keys every connector takes.
const COMMON_DOCS: &[(&str, &str, &str)] = &[
    (
        "id",
        "string",
        "The connector's id: unique, it names the source of what it finds.",
    ),
    ("kind", "string", "The connector kind."),
    (
        "schedule",
        "string",
        "Cron schedule for `surveyor serve` (5 fields, or 6 with seconds first).",
    ),
    ("enabled", "boolean", "false: skipped by sync and serve."),
    (
        "timezone",
        "string",
        "IANA time zone of the schedule, or \"local\" (default UTC).",
    ),
    (
        "timeout",
        "string",
        "The longest a run may take (a duration).",
    ),
    (
        "jitter",
        "string",
        "A random delay of up to this long before each scheduled run (a duration).",
    ),
    (
        "run_on_start",
        "boolean",
        "`surveyor serve` runs the connector once when it starts.",
    ),
];

/// Descriptions of connector fields whose doc comment is on the field before (documented as a
/// pair) or that have none.
const FIELD_DOCS: &[(&str, &str)] = &[
    (
        "installation_id",
        "GitHub App installation id (with app_id and private_key_file).",
    ),
    ("exclude", "Name globs to drop."),
    ("exclude_namespaces", "Namespace globs to skip."),
    ("exclude_projects", "Project keys to skip."),
    (
        "include_system_namespaces",
        "Also crawl kube-system and other system namespaces.",
    ),
    ("skip_archived", "Skip archived repositories."),
    ("skip_forks", "Skip forks."),
    (
        "requests_per_second",
        "Requests per second to the API, at most.",
    ),
    (
        "max_retries",
        "Retries of a request that failed in a way that may pass.",
    ),
    ("timeout_secs", "Timeout of one request, in seconds."),
    (
        "namespace",
        "The catalog namespace of the entities created.",
    ),
    (
        "system_names",
        "What a project's System is named after: key or name.",
    ),
    ("flavor", "cloud or datacenter."),
];

/// One field of a connector's config struct, as read from its source.
struct Field {
    ty: String,
    doc: String,
    default: Option<Value>,
}

/// The fields of the first `pub struct *Config` in `source`: name -> type, doc, default.
fn struct_fields(source: &str) -> Vec<(String, Field)> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut doc: Vec<String> = Vec::new();
    let mut default = None;
    for line in source.lines() {
        let t = line.trim();
        if !inside {
            inside = t.starts_with("pub struct ") && t.contains("Config") && t.ends_with('{');
            continue;
        }
        if t == "}" {
            break;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if t.starts_with("#[serde") {
            // `number::<_, 100>`: the default a field takes.
            default = t
                .split("number::<_, ")
                .nth(1)
                .and_then(|rest| rest.split('>').next())
                .and_then(|n| n.trim().parse::<i64>().ok())
                .map(Value::from);
        } else if let Some(rest) = t.strip_prefix("pub ")
            && let Some((name, ty)) = rest.split_once(':')
        {
            out.push((
                name.trim().to_string(),
                Field {
                    ty: ty.trim().trim_end_matches(',').to_string(),
                    doc: doc.join(" "),
                    default: default.take(),
                },
            ));
            doc.clear();
        }
    }
    out
}

/// The JSON Schema of a Rust field type, as TOML writes it.
fn type_schema(ty: &str) -> Value {
    let inner = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    match inner {
        "String" | "PathBuf" | "Secret" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "u32" | "u64" | "usize" | "i64" => json!({"type": "integer", "minimum": 0}),
        "f64" => json!({"type": "number"}),
        "Vec<String>" => json!({"type": "array", "items": {"type": "string"}}),
        "BTreeMap<String, String>" => {
            json!({"type": "object", "additionalProperties": {"type": "string"}})
        }
        other => match ENUMS.iter().find(|(name, _)| *name == other) {
            Some((_, values)) => json!({"type": "string", "enum": values}),
            None => json!({}),
        },
    }
}

fn described(mut schema: Value, description: &str) -> Value {
    if let Value::Object(m) = &mut schema {
        m.insert("description".into(), json!(description));
    }
    schema
}

fn section_doc(section: &str, key: &str) -> Option<(&'static str, &'static str)> {
    SECTION_DOCS
        .iter()
        .find(|(s, k, _, _)| *s == section && *k == key)
        .map(|(_, _, ty, doc)| (*ty, *doc))
}

/// The properties of a fixed section: every key the parser accepts there.
fn section_properties(section: &str) -> Map<String, Value> {
    let keys = SECTION_KEYS
        .iter()
        .find(|(s, _)| *s == section)
        .map_or(&[][..], |(_, k)| *k);
    keys.iter()
        .map(|key| {
            let schema = match section_doc(section, key) {
                Some((ty, doc)) => {
                    let mut s = json!({"type": ty, "description": doc});
                    if ty == "array" && !section.is_empty() {
                        s["items"] = json!({"type": "string"});
                    }
                    if section == "identity" && *key == "aliases" {
                        s["additionalProperties"] =
                            json!({"type": "array", "items": {"type": "string"}});
                    }
                    if section == "merge" && *key == "rule" {
                        s["enum"] = json!(MergeRule::NAMES);
                    }
                    s
                }
                None => json!({}),
            };
            (key.to_string(), schema)
        })
        .collect()
}

fn closed_object(properties: Map<String, Value>) -> Value {
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// The properties of a connector of `kind`: the common keys, then the kind's own.
fn connector_properties(kind: &str, keys: &[&str]) -> Map<String, Value> {
    let source = CONNECTOR_SOURCES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, s)| *s);
    let fields = struct_fields(source);
    let mut props = Map::new();
    for key in COMMON_CONNECTOR_KEYS {
        let (ty, doc) = COMMON_DOCS
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or(("", ""), |(_, ty, doc)| (*ty, *doc));
        let mut s = if ty.is_empty() {
            json!({})
        } else {
            json!({"type": ty})
        };
        if !doc.is_empty() {
            s = described(s, doc);
        }
        props.insert(key.to_string(), s);
    }
    props.insert(
        "kind".into(),
        json!({"const": kind, "description": "The connector kind."}),
    );
    for key in keys {
        let field = fields.iter().find(|(name, _)| name == key).map(|(_, f)| f);
        let own = field.map(|f| f.doc.clone()).filter(|d| !d.is_empty());
        let doc = own.or_else(|| {
            FIELD_DOCS
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, d)| d.to_string())
        });
        let mut s = field.map_or(json!({}), |f| type_schema(&f.ty));
        if field.is_some_and(|f| f.ty.contains("Secret")) {
            s = described(s, &format!("{} {SECRET}", doc.clone().unwrap_or_default()));
        } else if let Some(doc) = doc {
            s = described(s, &doc);
        }
        if let Some(default) = field.and_then(|f| f.default.clone()) {
            s["default"] = default;
        }
        props.insert(key.to_string(), s);
    }
    props
}

/// The schema of `surveyor.toml`.
pub fn config_schema() -> Value {
    let mut top = section_properties("");
    for section in ["catalog", "server", "telemetry", "audit", "classify"] {
        let described = top.get(section).cloned().unwrap_or_default();
        let mut s = closed_object(section_properties(section));
        s["description"] = described["description"].clone();
        top.insert(section.into(), s);
    }
    let mut cards = top.get("scorecards").cloned().unwrap_or_default();
    cards["items"] = closed_object(section_properties("scorecards"));
    cards["items"]["required"] = json!(["name", "levels", "checks"]);
    cards["items"]["properties"]["checks"]["items"] =
        closed_object(section_properties("scorecards.checks"));
    cards["items"]["properties"]["checks"]["items"]["required"] = json!(["name", "level"]);
    top.insert("scorecards".into(), cards);
    let tiers = &mut top["classify"]["properties"]["tier"];
    tiers["items"] = closed_object(section_properties("classify.tier"));
    tiers["items"]["required"] = json!(["tier"]);
    let mut identity = top.get("identity").cloned().unwrap_or_default();
    identity["items"] = closed_object(section_properties("identity"));
    top.insert("identity".into(), identity);
    let mut merge = top.get("merge").cloned().unwrap_or_default();
    merge["additionalProperties"] = closed_object(section_properties("merge"));
    top.insert("merge".into(), merge);
    let mut groups = top.get("groups").cloned().unwrap_or_default();
    groups["items"] = json!({
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "description": "The group's name in the catalog."}},
        "additionalProperties": {"type": "string", "description": "A connector id -> the group's name in that source."},
    });
    top.insert("groups".into(), groups);
    let kinds = registry::kinds();
    let variants: Vec<Value> = kinds
        .iter()
        .map(|k| {
            let mut s = closed_object(connector_properties(k.name, k.keys));
            s["required"] = json!(["id", "kind"]);
            json!({"if": {"properties": {"kind": {"const": k.name}}}, "then": s})
        })
        .collect();
    let mut connectors = top.get("connectors").cloned().unwrap_or_default();
    connectors["items"] = json!({
        "type": "object",
        "required": ["id", "kind"],
        "properties": {"kind": {"enum": kinds.iter().map(|k| k.name).collect::<Vec<_>>()}},
        "allOf": variants,
    });
    top.insert("connectors".into(), connectors);
    let mut schema = closed_object(top);
    let m = schema.as_object_mut().expect("an object");
    m.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    m.insert("title".into(), json!("surveyor.toml"));
    m.insert(
        "description".into(),
        json!(format!(
            "Configuration of surveyor {} (written by `surveyor config schema`).",
            env!("CARGO_PKG_VERSION")
        )),
    );
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(s: &Value) -> &str {
        s["description"].as_str().unwrap_or("")
    }

    /// Every key the parser accepts has a described property, and the schema lists no key the
    /// parser would reject: the two cannot drift apart.
    #[test]
    fn every_accepted_key_is_in_the_schema() {
        let schema = config_schema();
        let props = &schema["properties"];
        for (section, keys) in SECTION_KEYS {
            let (obj, path) = match *section {
                "" => (props, "top level".to_string()),
                "identity" => (&props["identity"]["items"]["properties"], "identity".into()),
                "scorecards" => (
                    &props["scorecards"]["items"]["properties"],
                    "scorecards".into(),
                ),
                "scorecards.checks" => (
                    &props["scorecards"]["items"]["properties"]["checks"]["items"]["properties"],
                    "scorecards.checks".into(),
                ),
                "classify.tier" => (
                    &props["classify"]["properties"]["tier"]["items"]["properties"],
                    "classify.tier".into(),
                ),
                "merge" => (
                    &props["merge"]["additionalProperties"]["properties"],
                    "merge".into(),
                ),
                s => (&props[s]["properties"], s.to_string()),
            };
            let listed: Vec<&String> = obj.as_object().expect(&path).keys().collect();
            assert_eq!(listed.len(), keys.len(), "{path}: {listed:?} vs {keys:?}");
            for key in *keys {
                assert!(
                    !description(&obj[*key]).is_empty(),
                    "{path}.{key} has no description"
                );
            }
        }
        let variants = props["connectors"]["items"]["allOf"]
            .as_array()
            .expect("variants");
        for kind in registry::kinds() {
            let v = variants
                .iter()
                .find(|v| v["if"]["properties"]["kind"]["const"] == kind.name)
                .unwrap_or_else(|| panic!("no schema for kind {}", kind.name));
            let obj = v["then"]["properties"].as_object().expect("properties");
            let mut accepted: Vec<&str> = COMMON_CONNECTOR_KEYS.to_vec();
            accepted.extend(kind.keys);
            let mut listed: Vec<&str> = obj.keys().map(String::as_str).collect();
            accepted.sort_unstable();
            listed.sort_unstable();
            assert_eq!(listed, accepted, "keys of the {} connector", kind.name);
            for key in &accepted {
                assert!(
                    !description(&obj[*key]).is_empty(),
                    "connectors.{key} ({}) has no description",
                    kind.name
                );
            }
        }
    }

    #[test]
    fn connector_fields_are_typed_from_their_source() {
        let schema = config_schema();
        let github = schema["properties"]["connectors"]["items"]["allOf"]
            .as_array()
            .expect("variants")
            .iter()
            .find(|v| v["if"]["properties"]["kind"]["const"] == "github")
            .expect("github")["then"]["properties"]
            .clone();
        assert_eq!(github["orgs"]["type"], "array");
        assert_eq!(github["skip_forks"]["type"], "boolean");
        assert_eq!(github["page_size"]["default"], 100);
        assert!(description(&github["token"]).contains("${ENV_VAR}"));
        assert_eq!(
            type_schema("Option<Flavor>")["enum"],
            json!(["cloud", "datacenter", "server", "data-center"])
        );
    }
}
