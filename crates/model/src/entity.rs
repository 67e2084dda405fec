//! The catalog entity: Backstage's envelope (`apiVersion`, `kind`, `metadata`, `spec`) with
//! field-level validation, normalisation and the relations its spec implies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::refs::{DEFAULT_NAMESPACE, EntityRef};
use crate::validate;

/// `apiVersion` given to entities that connectors discover (as Backstage's own processors do).
pub const DEFAULT_API_VERSION: &str = "backstage.io/v1alpha1";

/// The kinds Backstage's catalog model defines. Other kinds are kept as data but flagged.
pub const KNOWN_KINDS: &[&str] = &[
    "Domain",
    "System",
    "Component",
    "API",
    "Resource",
    "Group",
    "User",
    "Location",
];

/// A catalog entity in Backstage's envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub spec: Map<String, Value>,
}

/// `metadata`: the well-known fields, plus any others the descriptor carried.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One problem with one field of an entity, e.g. `metadata.name: must be 1-63 characters ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every field error found in one entity (validation does not stop at the first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EntityError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for EntityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A typed relation from one entity to another, e.g. `ownedBy group:default/team-a`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "targetRef")]
    pub target: EntityRef,
}

/// The well-known relation pairs; each type's inverse is the other half of its pair.
pub const RELATION_PAIRS: &[(&str, &str)] = &[
    ("ownedBy", "ownerOf"),
    ("dependsOn", "dependencyOf"),
    ("partOf", "hasPart"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("memberOf", "hasMember"),
    ("childOf", "parentOf"),
];

/// The inverse of a relation type; unknown types have none.
pub fn inverse_relation(kind: &str) -> Option<&'static str> {
    RELATION_PAIRS.iter().find_map(|(a, b)| {
        if *a == kind {
            Some(*b)
        } else if *b == kind {
            Some(*a)
        } else {
            None
        }
    })
}

/// How a spec field turns into relations: (kind of entity, or `*` for any; field; relation;
/// default target kind). Exporters use it to find the references in a spec.
pub const SPEC_RELATIONS: &[(&str, &str, &str, &str)] = &[
    ("*", "owner", "ownedBy", "Group"),
    ("Component", "system", "partOf", "System"),
    ("API", "system", "partOf", "System"),
    ("Resource", "system", "partOf", "System"),
    ("Component", "subcomponentOf", "partOf", "Component"),
    ("Component", "providesApis", "providesApi", "API"),
    ("Component", "consumesApis", "consumesApi", "API"),
    ("Component", "dependsOn", "dependsOn", "Component"),
    ("Resource", "dependsOn", "dependsOn", "Resource"),
    ("Component", "dependencyOf", "dependencyOf", "Component"),
    ("Resource", "dependencyOf", "dependencyOf", "Component"),
    ("System", "domain", "partOf", "Domain"),
    ("Domain", "subdomainOf", "partOf", "Domain"),
    ("Group", "parent", "childOf", "Group"),
    ("Group", "children", "parentOf", "Group"),
    ("Group", "members", "hasMember", "User"),
    ("User", "memberOf", "memberOf", "Group"),
];

impl Entity {
    /// A discovered entity with the default `apiVersion` and an empty spec.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.to_string(),
            kind: kind.to_string(),
            metadata: Metadata {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                ..Metadata::default()
            },
            spec: Map::new(),
        }
    }

    /// Builds an entity from parsed JSON/YAML, checking every field with Backstage's rules and
    /// reporting all problems at once. The result is normalised (see [`Entity::normalize`]).
    pub fn from_value(value: Value) -> Result<Self, EntityError> {
        let mut errors = Vec::new();
        let Value::Object(mut root) = value else {
            return Err(EntityError {
                errors: vec![field_err("", "an entity must be a mapping")],
            });
        };
        let api_version = take_string(&mut root, "apiVersion", &mut errors);
        let kind = take_string(&mut root, "kind", &mut errors);
        if let Some(v) = &api_version
            && !validate::is_valid_api_version(v)
        {
            errors.push(field_err(
                "apiVersion",
                format!("{v:?} is not a valid apiVersion"),
            ));
        }
        if let Some(k) = &kind
            && !validate::is_valid_kind(k)
        {
            errors.push(field_err(
                "kind",
                format!("{k:?} is not a valid kind (a letter, then letters and digits)"),
            ));
        }
        let spec = match root.remove("spec") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                errors.push(field_err("spec", "must be a mapping"));
                Map::new()
            }
        };
        let metadata = match root.remove("metadata") {
            Some(Value::Object(m)) => Some(m),
            None | Some(Value::Null) => {
                errors.push(field_err("metadata", "is required"));
                None
            }
            Some(_) => {
                errors.push(field_err("metadata", "must be a mapping"));
                None
            }
        };
        // Backstage computes `relations` and `status`; a descriptor's own copy is ignored.
        root.remove("relations");
        root.remove("status");
        for key in root.keys() {
            errors.push(field_err(key.clone(), "unknown top-level field"));
        }
        let metadata =
            metadata.and_then(
                |m| match serde_json::from_value::<Metadata>(Value::Object(m)) {
                    Ok(md) => Some(md),
                    Err(e) => {
                        errors.push(field_err("metadata", e.to_string()));
                        None
                    }
                },
            );
        if let Some(md) = &metadata {
            validate_metadata(md, &mut errors);
        }
        match (api_version, kind, metadata) {
            (Some(api_version), Some(kind), Some(metadata)) if errors.is_empty() => {
                let mut entity = Self {
                    api_version,
                    kind,
                    metadata,
                    spec,
                };
                entity.normalize();
                let mut rel_errors = Vec::new();
                entity.spec_relations(&mut rel_errors);
                if rel_errors.is_empty() {
                    Ok(entity)
                } else {
                    Err(EntityError { errors: rel_errors })
                }
            }
            _ => Err(EntityError { errors }),
        }
    }

    /// Puts the entity in canonical shape: namespace filled in, nulls inside spec and extra
    /// metadata dropped, tags de-duplicated and sorted. Two descriptors that mean the same
    /// thing normalise to the same value and so hash the same.
    pub fn normalize(&mut self) {
        if self.metadata.namespace.as_deref().is_none_or(str::is_empty) {
            self.metadata.namespace = Some(DEFAULT_NAMESPACE.to_string());
        }
        drop_nulls_in(&mut self.spec);
        drop_nulls_in(&mut self.metadata.extra);
        // Server-generated fields from an exported Backstage entity must not look like changes.
        self.metadata.extra.remove("uid");
        self.metadata.extra.remove("etag");
        self.metadata.extra.remove("generation");
        self.metadata.tags.sort();
        self.metadata.tags.dedup();
    }

    pub fn namespace(&self) -> &str {
        self.metadata
            .namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    /// This entity's own reference. Valid for any entity built by [`Entity::from_value`].
    pub fn entity_ref(&self) -> Result<EntityRef, crate::refs::RefError> {
        EntityRef::new(&self.kind, self.namespace(), &self.metadata.name)
    }

    pub fn is_known_kind(&self) -> bool {
        KNOWN_KINDS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&self.kind))
    }

    /// `spec.type`, when it is a string.
    pub fn spec_str(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(Value::as_str)
    }

    /// Relations the spec implies (`spec.owner` -> `ownedBy`, ...), sorted and de-duplicated.
    /// References that do not parse are skipped here; [`Entity::from_value`] reports them.
    pub fn relations(&self) -> Vec<Relation> {
        self.spec_relations(&mut Vec::new())
    }

    fn spec_relations(&self, errors: &mut Vec<FieldError>) -> Vec<Relation> {
        let mut out = Vec::new();
        for (kind, field, relation, default_kind) in SPEC_RELATIONS {
            if *kind != "*" && !kind.eq_ignore_ascii_case(&self.kind) {
                continue;
            }
            let Some(value) = self.spec.get(*field) else {
                continue;
            };
            let targets: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for target in targets {
                let parsed = target
                    .as_str()
                    .ok_or_else(|| "must be an entity reference string".to_string())
                    .and_then(|s| {
                        EntityRef::parse_with(s, Some(default_kind), self.namespace())
                            .map_err(|e| e.to_string())
                    });
                match parsed {
                    Ok(target) => out.push(Relation {
                        kind: relation.to_string(),
                        target,
                    }),
                    Err(message) => errors.push(field_err(format!("spec.{field}"), message)),
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The entity as a JSON value (the shape stored and served).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn take_string(
    root: &mut Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match root.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        None | Some(Value::Null) => {
            errors.push(field_err(key, "is required"));
            None
        }
        Some(_) => {
            errors.push(field_err(key, "must be a non-empty string"));
            None
        }
    }
}

fn validate_metadata(md: &Metadata, errors: &mut Vec<FieldError>) {
    if !validate::is_valid_object_name(&md.name) {
        errors.push(field_err(
            "metadata.name",
            format!(
                "{:?} is not a valid name: 1-63 characters of [a-zA-Z0-9] separated by [-_.]",
                md.name
            ),
        ));
    }
    if let Some(ns) = &md.namespace
        && !ns.is_empty()
        && !validate::is_valid_namespace(ns)
    {
        errors.push(field_err(
            "metadata.namespace",
            format!("{ns:?} is not a valid namespace: 1-63 lower-case letters and digits separated by '-'"),
        ));
    }
    for (k, v) in &md.labels {
        if !validate::is_valid_label_key(k) {
            errors.push(field_err(
                format!("metadata.labels.{k}"),
                "invalid label key",
            ));
        }
        if !validate::is_valid_label_value(v) {
            errors.push(field_err(
                format!("metadata.labels.{k}"),
                format!("{v:?} is not a valid label value"),
            ));
        }
    }
    for k in md.annotations.keys() {
        if !validate::is_valid_annotation_key(k) {
            errors.push(field_err(
                format!("metadata.annotations.{k}"),
                "invalid annotation key",
            ));
        }
    }
    for (i, tag) in md.tags.iter().enumerate() {
        if !validate::is_valid_tag(tag) {
            errors.push(field_err(
                format!("metadata.tags[{i}]"),
                format!("{tag:?} is not a valid tag: lower-case [a-z0-9:+#] separated by '-'"),
            ));
        }
    }
    for (i, link) in md.links.iter().enumerate() {
        let url = link.get("url").and_then(Value::as_str);
        if url.is_none_or(str::is_empty) {
            errors.push(field_err(format!("metadata.links[{i}].url"), "is required"));
        }
    }
}

fn drop_nulls_in(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        drop_nulls(v);
    }
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => drop_nulls_in(m),
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component() -> Value {
        json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "payments-api", "tags": ["java", "payments"]},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                     "system": "payments", "dependsOn": ["resource:payments-db"],
                     "providesApis": ["payments"]}
        })
    }

    #[test]
    fn builds_and_derives_relations() {
        let e = Entity::from_value(component()).unwrap();
        assert_eq!(e.namespace(), "default");
        assert_eq!(
            e.entity_ref().unwrap().to_string(),
            "component:default/payments-api"
        );
        let rels: Vec<String> = e
            .relations()
            .iter()
            .map(|r| format!("{} {}", r.kind, r.target))
            .collect();
        assert_eq!(
            rels,
            vec![
                "dependsOn resource:default/payments-db",
                "ownedBy group:default/team-a",
                "partOf system:default/payments",
                "providesApi api:default/payments",
            ]
        );
    }

    #[test]
    fn reports_every_field_error() {
        let err = Entity::from_value(json!({
            "kind": "Component",
            "metadata": {"name": "bad name", "namespace": "Team_A", "tags": ["OK"], "labels": {"a/b/c": "x"}},
            "spec": {"owner": 5}
        }))
        .unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "apiVersion",
                "metadata.name",
                "metadata.namespace",
                "metadata.labels.a/b/c",
                "metadata.tags[0]"
            ]
        );
    }

    #[test]
    fn bad_owner_reference_names_the_field() {
        let mut v = component();
        v["spec"]["owner"] = json!("group:default/-x");
        let err = Entity::from_value(v).unwrap_err();
        assert_eq!(err.errors[0].field, "spec.owner");
    }

    #[test]
    fn unknown_kinds_are_kept_but_flagged() {
        let e = Entity::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Pipeline", "metadata": {"name": "p"}
        }))
        .unwrap();
        assert!(!e.is_known_kind());
        assert!(Entity::from_value(component()).unwrap().is_known_kind());
    }

    #[test]
    fn insignificant_differences_do_not_change_the_hash() {
        let a = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "x", "tags": ["b", "a"]},
            "spec": {"owner": "t", "type": "service", "system": null}
        }))
        .unwrap();
        let b = Entity::from_value(json!({
            "spec": {"type": "service", "owner": "t"},
            "metadata": {"name": "x", "namespace": "default", "tags": ["a", "b", "a"], "labels": {}, "uid": "1234"},
            "kind": "Component", "apiVersion": "backstage.io/v1alpha1"
        }))
        .unwrap();
        let hash = |e: &Entity| crate::hash::content_hash(&e.to_value());
        assert_eq!(hash(&a), hash(&b));
        let mut c = b.clone();
        c.spec.insert("owner".into(), json!("u"));
        assert_ne!(hash(&a), hash(&c));
    }

    #[test]
    fn inverse_pairs() {
        assert_eq!(inverse_relation("ownedBy"), Some("ownerOf"));
        assert_eq!(inverse_relation("hasMember"), Some("memberOf"));
        assert_eq!(inverse_relation("likes"), None);
    }
}
