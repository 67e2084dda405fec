//! How the observations of one entity ref become the catalog entity: field by field, in order
//! of precedence — a declared descriptor first, then sources in configuration order, then the
//! lowest (source, external id) — each field from the first source that has it. Every source's
//! claim records the fields it supplied and the values it gave that lost (disagreements), and
//! the relation rows (both directions) follow from the merged entity.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use surveyor_model::hash::canonical_json;
use surveyor_model::{Entity, EntityRef, Relation, inverse_relation};
use surveyor_store::{EntityWrite, RelationRow};

/// An observation's content, parsed into what the merge needs.
#[derive(Debug, Clone)]
pub struct ObservedEntity {
    pub entity_ref: EntityRef,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Canonical JSON of the entity envelope.
    pub entity_json: String,
    pub entity_hash: String,
    /// Spec-implied relations and the source's own, sorted and de-duplicated.
    pub relations: Vec<Relation>,
    pub declared: bool,
}

impl ObservedEntity {
    pub fn new(
        entity: &Entity,
        extra_relations: &[Relation],
        declared: bool,
    ) -> Result<Self, surveyor_model::RefError> {
        let entity_ref = entity.entity_ref()?;
        let entity_json = canonical_json(&entity.to_value());
        let mut relations = entity.relations();
        relations.extend(extra_relations.iter().cloned());
        relations.sort();
        relations.dedup();
        Ok(Self {
            kind: entity_ref.kind().to_ascii_lowercase(),
            namespace: entity_ref.namespace().to_ascii_lowercase(),
            name: entity_ref.name().to_string(),
            entity_hash: surveyor_model::hash::sha256_hex(entity_json.as_bytes()),
            entity_ref,
            entity_json,
            relations,
            declared,
        })
    }

    /// The observation body as stored: canonical JSON `{declared, entity, relations}`.
    pub fn observation_body(&self) -> String {
        let relations = serde_json::to_value(&self.relations).unwrap_or(Value::Array(Vec::new()));
        format!(
            "{{\"declared\":{},\"entity\":{},\"relations\":{}}}",
            self.declared,
            self.entity_json,
            canonical_json(&relations)
        )
    }

    /// Parses a stored observation body back.
    pub fn from_body(body: &str) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Stored {
            declared: bool,
            entity: Value,
            relations: Vec<Relation>,
        }
        let stored: Stored = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let entity: Entity = serde_json::from_value(stored.entity).map_err(|e| e.to_string())?;
        Self::new(&entity, &stored.relations, stored.declared).map_err(|e| e.to_string())
    }
}

/// One source's claim on an entity, for provenance.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceClaim {
    pub source: String,
    pub external_id: String,
    pub declared: bool,
    /// The highest-precedence observation: its fields win, it names the entity.
    pub winner: bool,
    /// JSON pointers of the fields this source supplied (recorded when several sources merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Fields where this source said something else than the value that won.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disagrees: BTreeMap<String, Value>,
}

/// One observation of an entity, with who made it, for [`combine`].
#[derive(Debug, Clone)]
pub struct Contribution {
    pub source: String,
    pub external_id: String,
    pub entity: ObservedEntity,
}

/// Fields that identify the entity rather than describe it: never merged or disputed.
const IDENTITY: &[&str] = &[
    "/apiVersion",
    "/kind",
    "/metadata/name",
    "/metadata/namespace",
];

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every leaf of `v` with its JSON pointer; arrays are leaves (a list is one value).
fn leaves<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                leaves(child, format!("{path}/{}", pointer_escape(k)), out);
            }
        }
        other => out.push((path, other)),
    }
}

/// Sets `value` at `pointer`, creating objects on the way; false if a non-object is in the way.
fn set_at(root: &mut Value, pointer: &str, value: Value) -> bool {
    let parts: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = node else {
            return false;
        };
        if i + 1 == parts.len() {
            map.insert(part.clone(), value);
            return true;
        }
        node = map
            .entry(part.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    false
}

/// Merges the observations of one entity field by field (see the module doc). `parts` must be
/// non-empty; it is sorted by precedence here. Returns the merged entity and every claim.
pub fn combine(
    mut parts: Vec<Contribution>,
    priority: &BTreeMap<String, usize>,
) -> Option<(ObservedEntity, Vec<SourceClaim>)> {
    parts.sort_by(|a, b| {
        let pa = priority.get(&a.source).copied().unwrap_or(usize::MAX);
        let pb = priority.get(&b.source).copied().unwrap_or(usize::MAX);
        (!a.entity.declared, pa, &a.source, &a.external_id).cmp(&(
            !b.entity.declared,
            pb,
            &b.source,
            &b.external_id,
        ))
    });
    if parts.len() == 1 {
        // Most entities have one source: no copy, no JSON round trip.
        let only = parts.pop()?;
        let claim = SourceClaim {
            source: only.source,
            external_id: only.external_id,
            declared: only.entity.declared,
            winner: true,
            fields: Vec::new(),
            disagrees: BTreeMap::new(),
        };
        return Some((only.entity, vec![claim]));
    }
    let first = parts.first()?;
    let mut merged: Value = serde_json::from_str(&first.entity.entity_json).ok()?;
    let mut claims = Vec::with_capacity(parts.len());
    let mut extras: Vec<Relation> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let body: Value = serde_json::from_str(&part.entity.entity_json).unwrap_or(Value::Null);
        let mut fields = Vec::new();
        let mut disagrees = BTreeMap::new();
        let mut found = Vec::new();
        leaves(&body, String::new(), &mut found);
        for (pointer, value) in found {
            if IDENTITY.contains(&pointer.as_str()) {
                continue;
            }
            if i == 0 {
                fields.push(pointer);
                continue;
            }
            match merged.pointer(&pointer) {
                None => {
                    if set_at(&mut merged, &pointer, value.clone()) {
                        fields.push(pointer);
                    }
                }
                Some(current) if current != value => {
                    disagrees.insert(pointer, value.clone());
                }
                Some(_) => {}
            }
        }
        // Relations a source knows beyond what its own spec implies travel with the merge.
        if let Ok(own) = serde_json::from_value::<Entity>(body) {
            let implied = own.relations();
            extras.extend(
                part.entity
                    .relations
                    .iter()
                    .filter(|r| !implied.contains(r))
                    .cloned(),
            );
        }
        claims.push(SourceClaim {
            source: part.source.clone(),
            external_id: part.external_id.clone(),
            declared: part.entity.declared,
            winner: i == 0,
            fields,
            disagrees,
        });
    }
    let entity: Entity = serde_json::from_value(merged).ok()?;
    let declared = parts.iter().any(|p| p.entity.declared);
    let observed = ObservedEntity::new(&entity, &extras, declared).ok()?;
    Some((observed, claims))
}

/// The catalog's view of one entity, computed from its observations.
#[derive(Debug, Clone)]
pub struct MergedEntity {
    pub winner: ObservedEntity,
    pub sources: Vec<SourceClaim>,
    pub relation_rows: Vec<RelationRow>,
    /// Canonical JSON of the provenance list.
    pub sources_json: String,
    /// Hash over provenance and relations: when it changes the row is rewritten, silently.
    pub meta_hash: String,
}

impl MergedEntity {
    pub fn new(winner: ObservedEntity, mut sources: Vec<SourceClaim>) -> Self {
        sources.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
        let key = winner.entity_ref.key();
        let display = winner.entity_ref.to_string();
        let mut relation_rows = Vec::with_capacity(winner.relations.len() * 2);
        for rel in &winner.relations {
            relation_rows.push(RelationRow {
                origin_ref: key.clone(),
                source_ref: key.clone(),
                kind: rel.kind.clone(),
                target_ref: rel.target.key(),
                target_display: rel.target.to_string(),
            });
            if let Some(inverse) = inverse_relation(&rel.kind) {
                relation_rows.push(RelationRow {
                    origin_ref: key.clone(),
                    source_ref: rel.target.key(),
                    kind: inverse.to_string(),
                    target_ref: key.clone(),
                    target_display: display.clone(),
                });
            }
        }
        relation_rows.sort();
        relation_rows.dedup();
        let sources_json = canonical_json(&serde_json::to_value(&sources).unwrap_or(Value::Null));
        // Cheap to compute on every ref of every run: no JSON round trip.
        let mut meta = String::with_capacity(sources_json.len() + relation_rows.len() * 96);
        meta.push_str(&sources_json);
        for r in &relation_rows {
            meta.push('\n');
            for part in [
                &r.origin_ref,
                &r.source_ref,
                &r.kind,
                &r.target_ref,
                &r.target_display,
            ] {
                meta.push_str(part);
                meta.push('\t');
            }
        }
        let meta_hash = surveyor_model::hash::sha256_hex(meta.as_bytes());
        Self {
            winner,
            sources,
            relation_rows,
            sources_json,
            meta_hash,
        }
    }
}

impl MergedEntity {
    /// The entity row for this merge, under `uid`.
    pub fn to_write(&self, uid: &str) -> EntityWrite {
        let w = &self.winner;
        EntityWrite {
            uid: uid.to_string(),
            entity_ref: w.entity_ref.key(),
            display_ref: w.entity_ref.to_string(),
            kind: w.kind.clone(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            body: w.entity_json.clone(),
            hash: w.entity_hash.clone(),
            sources: self.sources_json.clone(),
            meta_hash: self.meta_hash.clone(),
        }
    }

    /// The RFC 6902 patch of a `created` change: the whole entity added at the root.
    pub fn created_patch(&self) -> String {
        format!(
            "[{{\"op\":\"add\",\"path\":\"\",\"value\":{}}}]",
            self.winner.entity_json
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(source: &str, ext: &str, declared: bool, spec: Value, meta: Value) -> Contribution {
        let mut v = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "svc", "namespace": "default"}, "spec": spec});
        if let (Some(m), Value::Object(extra)) = (v["metadata"].as_object_mut(), meta) {
            m.extend(extra);
        }
        let e: Entity = serde_json::from_value(v).unwrap();
        Contribution {
            source: source.into(),
            external_id: ext.into(),
            entity: ObservedEntity::new(&e, &[], declared).unwrap(),
        }
    }

    #[test]
    fn fields_merge_by_precedence_and_disagreements_are_kept() {
        use serde_json::json;
        let prio: BTreeMap<String, usize> =
            [("github".to_string(), 0), ("pagerduty".to_string(), 1)].into();
        let parts = vec![
            part(
                "pagerduty",
                "P1",
                false,
                json!({"type": "service", "owner": "group:default/b", "onCall": {"covered": true}}),
                json!({"annotations": {"pagerduty.com/service-id": "P1"}}),
            ),
            part(
                "github",
                "R1",
                false,
                json!({"type": "service", "owner": "group:default/a", "lifecycle": "production"}),
                json!({"annotations": {"github.com/project-slug": "acme/svc"}}),
            ),
            part(
                "files",
                "f#1",
                true,
                json!({"type": "service", "lifecycle": "experimental"}),
                json!({"description": "declared"}),
            ),
        ];
        let (merged, claims) = combine(parts, &prio).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        // Declared wins lifecycle; GitHub (configured first) wins the owner; PagerDuty adds
        // what nobody else has; annotations from everyone are kept.
        assert_eq!(body["spec"]["lifecycle"], "experimental");
        assert_eq!(body["spec"]["owner"], "group:default/a");
        assert_eq!(body["spec"]["onCall"]["covered"], true);
        assert_eq!(
            body["metadata"]["annotations"].as_object().unwrap().len(),
            2
        );
        assert!(merged.declared);
        let by = |s: &str| claims.iter().find(|c| c.source == s).unwrap();
        assert!(by("files").winner && !by("github").winner);
        assert!(by("github").fields.contains(&"/spec/owner".to_string()));
        assert_eq!(by("github").disagrees["/spec/lifecycle"], "production");
        assert_eq!(by("pagerduty").disagrees["/spec/owner"], "group:default/b");
        assert!(
            by("pagerduty")
                .fields
                .contains(&"/spec/onCall/covered".to_string())
        );
        // The owner relation follows the merged owner only.
        let owners: Vec<String> = merged
            .relations
            .iter()
            .filter(|r| r.kind == "ownedBy")
            .map(|r| r.target.key())
            .collect();
        assert_eq!(owners, ["group:default/a"]);
    }

    #[test]
    fn body_round_trips_and_relations_get_inverses() {
        let mut e = Entity::new("Component", "default", "svc");
        e.spec
            .insert("owner".into(), Value::String("team-a".into()));
        let o = ObservedEntity::new(&e, &[], true).unwrap();
        let back = ObservedEntity::from_body(&o.observation_body()).unwrap();
        assert_eq!(back.entity_hash, o.entity_hash);
        assert!(back.declared);
        let m = MergedEntity::new(back, vec![]);
        let rows: Vec<(String, String, String)> = m
            .relation_rows
            .iter()
            .map(|r| (r.source_ref.clone(), r.kind.clone(), r.target_ref.clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "component:default/svc".into(),
                    "ownedBy".into(),
                    "group:default/team-a".into()
                ),
                (
                    "group:default/team-a".into(),
                    "ownerOf".into(),
                    "component:default/svc".into()
                ),
            ]
        );
    }
}
