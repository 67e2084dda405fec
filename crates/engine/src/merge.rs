//! How the observations of one entity ref become the catalog entity: which observation wins,
//! which sources contributed, and the relation rows (both directions) the winner implies.
//!
//! Until cross-source merging lands, the rule is deliberately simple and deterministic: a
//! declared descriptor wins, then the source listed first in the configuration, then the
//! lowest (source, external id).

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceClaim {
    pub source: String,
    pub external_id: String,
    pub declared: bool,
    /// This observation supplied the entity's fields.
    pub winner: bool,
}

/// Picks the winning observation among `candidates` (source, external id, declared).
/// `priority` maps a source to its position in the configuration; unknown sources come last.
pub fn pick_winner<'a>(
    candidates: &'a [(String, String, bool)],
    priority: &BTreeMap<String, usize>,
) -> Option<&'a (String, String, bool)> {
    candidates.iter().min_by(|a, b| {
        let pa = priority.get(&a.0).copied().unwrap_or(usize::MAX);
        let pb = priority.get(&b.0).copied().unwrap_or(usize::MAX);
        (!a.2, pa, &a.0, &a.1).cmp(&(!b.2, pb, &b.0, &b.1))
    })
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
        sources.sort();
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

    #[test]
    fn declared_beats_priority_beats_name() {
        let prio: BTreeMap<String, usize> =
            [("github".to_string(), 0), ("files".to_string(), 1)].into();
        let c = vec![
            ("files".to_string(), "b".to_string(), false),
            ("github".to_string(), "z".to_string(), false),
            ("zzz".to_string(), "a".to_string(), true),
        ];
        assert_eq!(pick_winner(&c, &prio).unwrap().0, "zzz");
        assert_eq!(pick_winner(&c[..2], &prio).unwrap().0, "github");
        let c = vec![
            ("files".to_string(), "b".to_string(), false),
            ("files".to_string(), "a".to_string(), false),
        ];
        assert_eq!(pick_winner(&c, &prio).unwrap().1, "a");
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
