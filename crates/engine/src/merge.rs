//! How the observations of one entity ref become the catalog entity: field by field, each by
//! its [`MergeRule`] over the sources in order of precedence — a declared descriptor first, then
//! sources in configuration order, then the lowest (source, external id). Every source's claim
//! records the fields it supplied, the values it gave that lost (disagreements), its own values
//! of per-source fields and its cosmetic differences; the relation rows (both directions)
//! follow from the merged entity.
//!
//! The default rule of each field (overridable per field in `[merge]`):
//!
//! | field | rule |
//! | --- | --- |
//! | `/metadata/links` | union, one link per URL |
//! | `/metadata/tags` | union |
//! | `/spec/members`, `memberOf`, `children`, `dependsOn`, `dependencyOf`, `providesApis`, `consumesApis` | union (each source knows some of the relations) |
//! | an annotation a source sets about itself: `backstage.io/source-location`, `view-url`, `edit-url`, `managed-by-location`, `managed-by-origin-location`, any `<vendor>.com/*`, `surveyor.dev/*`, `*.surveyor.dev/*`, `jira/*` | per source |
//! | `/metadata/title`, `/metadata/description`, `/spec/profile/displayName` | cosmetic |
//! | `/spec/owner` | owner: a declared owner wins; among discovered ones a team outranks a person, kept as `surveyor.dev/lead` |
//!
//! A value a connector filled from its configuration rather than found (listed in its
//! `surveyor.dev/defaulted` annotation: Jira's component type and lifecycle, a forge's type when
//! no topic decides it, PagerDuty's service type) gives way to a value another source states,
//! and is never a disagreement.
//! | every other field (spec values, each label and each other annotation by key) | precedence |

use std::collections::{BTreeMap, BTreeSet};

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
    /// Those of `relations` the spec does not imply (the source's own), in the same order.
    pub beyond_spec: Vec<Relation>,
    pub declared: bool,
}

impl ObservedEntity {
    pub fn new(
        entity: &Entity,
        extra_relations: &[Relation],
        declared: bool,
    ) -> Result<Self, surveyor_model::RefError> {
        let entity_ref = entity.entity_ref()?;
        let entity_json = surveyor_model::hash::canonical_entity(entity);
        let mut relations = entity.relations();
        let mut beyond_spec: Vec<Relation> = extra_relations
            .iter()
            .filter(|r| !relations.contains(r))
            .cloned()
            .collect();
        beyond_spec.sort();
        beyond_spec.dedup();
        relations.extend(beyond_spec.iter().cloned());
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
            beyond_spec,
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
            // Read straight from the text, without a JSON tree in between.
            entity: Entity,
            relations: Vec<Relation>,
        }
        let stored: Stored = serde_json::from_str(body).map_err(|e| e.to_string())?;
        Self::new(&stored.entity, &stored.relations, stored.declared).map_err(|e| e.to_string())
    }
}

/// How one field of a merged entity is decided when several sources give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeRule {
    /// One value: the first source in precedence that has the field wins; a source that says
    /// something else disagrees.
    Precedence,
    /// A list: every source's items, once each (links once per URL), the winner's first.
    Union,
    /// A value each source has of its own (where it found the thing, its own ids): the
    /// winner's is shown, every other is kept in that source's claim, none is a disagreement.
    PerSource,
    /// Precedence, but a different value elsewhere (a title, a description) is a cosmetic
    /// difference, kept apart from disagreements.
    Cosmetic,
    /// `spec.owner`: among discovered owners a team outranks a person whatever the sources'
    /// order (then precedence); a person it outranks is kept as the `surveyor.dev/lead`
    /// annotation. A declared owner wins by precedence. Whether the person belongs to the team
    /// is the ownership audit's question.
    Owner,
}

impl MergeRule {
    /// The names `[merge]` accepts.
    pub const NAMES: &'static [&'static str] =
        &["precedence", "union", "per-source", "cosmetic", "owner"];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "precedence" => Self::Precedence,
            "union" => Self::Union,
            "per-source" => Self::PerSource,
            "cosmetic" => Self::Cosmetic,
            "owner" => Self::Owner,
            _ => return None,
        })
    }
}

/// The annotation that records the person a team owner outranked (see [`MergeRule::Owner`]).
pub const LEAD_ANNOTATION: &str = "surveyor.dev/lead";

/// Whether an owner ref names a person (`user:...`); a bare name is a group, as in Backstage.
fn names_person(owner: &Value) -> Option<bool> {
    let s = owner.as_str()?;
    Some(
        s.split_once(':')
            .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case("user")),
    )
}

/// Annotations a source sets about its own view of a thing.
const PER_SOURCE_ANNOTATIONS: &[&str] = &[
    "backstage.io/source-location",
    "backstage.io/view-url",
    "backstage.io/edit-url",
    "backstage.io/managed-by-location",
    "backstage.io/managed-by-origin-location",
];

/// The default rule of the field at `pointer` (see the module doc's table).
pub fn default_rule(pointer: &str) -> MergeRule {
    match pointer {
        "/metadata/links" | "/metadata/tags" => return MergeRule::Union,
        // Relations as lists of refs: each source knows some of them.
        "/spec/members" | "/spec/memberOf" | "/spec/children" | "/spec/dependsOn"
        | "/spec/dependencyOf" | "/spec/providesApis" | "/spec/consumesApis" => {
            return MergeRule::Union;
        }
        "/metadata/title" | "/metadata/description" | "/spec/profile/displayName" => {
            return MergeRule::Cosmetic;
        }
        "/spec/owner" => return MergeRule::Owner,
        _ => {}
    }
    let Some(key) = pointer.strip_prefix("/metadata/annotations/") else {
        return MergeRule::Precedence;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    let prefix = key.split_once('/').map_or("", |(p, _)| p);
    let own = PER_SOURCE_ANNOTATIONS.contains(&key.as_str())
        || prefix.ends_with(".com")
        || prefix == "surveyor.dev"
        || prefix.ends_with(".surveyor.dev")
        || prefix == "jira";
    if own {
        MergeRule::PerSource
    } else {
        MergeRule::Precedence
    }
}

/// A field's merge, overriding its default: its rule, and the sources it is taken from first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPolicy {
    pub rule: Option<MergeRule>,
    /// Source ids in the order they win this field (others follow by the usual precedence).
    pub sources: Vec<String>,
}

/// The merge rules of a catalog: the defaults, and the `[merge]` overrides by JSON pointer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergePolicy {
    pub fields: BTreeMap<String, FieldPolicy>,
}

impl MergePolicy {
    /// The rule of the field at `pointer`.
    pub fn rule(&self, pointer: &str) -> MergeRule {
        self.fields
            .get(pointer)
            .and_then(|f| f.rule)
            .unwrap_or_else(|| default_rule(pointer))
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
    /// Per-source fields where this source's own value is not the one shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub own: BTreeMap<String, Value>,
    /// Cosmetic fields (title, description) where this source says something else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cosmetic: BTreeMap<String, Value>,
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

/// The fields a source filled from its configuration ([`surveyor_model::kit::DEFAULTED`]).
fn defaulted_fields(body: &Value) -> BTreeSet<String> {
    let pointer = format!(
        "/metadata/annotations/{}",
        pointer_escape(surveyor_model::kit::DEFAULTED)
    );
    body.pointer(&pointer)
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Spec fields that hold one entity ref, with the kind a bare name means.
const REF_FIELDS: &[(&str, &str)] = &[
    ("/spec/owner", "group"),
    ("/spec/system", "system"),
    ("/spec/domain", "domain"),
    ("/spec/parent", "group"),
    ("/spec/subcomponentOf", "component"),
];

/// Whether two values of a ref field name the same entity (`catalog` and
/// `system:default/catalog` do).
fn same_ref(pointer: &str, a: &Value, b: &Value, namespace: &str) -> bool {
    let Some((_, kind)) = REF_FIELDS.iter().find(|(p, _)| *p == pointer) else {
        return false;
    };
    let key = |v: &Value| {
        EntityRef::parse_with(v.as_str()?, Some(kind), namespace)
            .ok()
            .map(|r| r.key())
    };
    key(a).is_some_and(|k| Some(k) == key(b))
}

/// Whether `pointer` is one of the fields that name the entity (never merged or overridden).
pub fn is_identity_field(pointer: &str) -> bool {
    IDENTITY.contains(&pointer)
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Appends `key` to a JSON pointer, escaped.
fn push_escaped(path: &mut String, key: &str) {
    if key.contains(['~', '/']) {
        path.push_str(&pointer_escape(key));
    } else {
        path.push_str(key);
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

/// Adds to the list `into` every item of `from` it does not hold yet (links once per URL).
/// Returns whether anything was added; false when either side is not a list.
fn union_into(into: &mut Value, from: &Value) -> bool {
    let (Value::Array(have), Value::Array(more)) = (into, from) else {
        return false;
    };
    let key = |v: &Value| v.get("url").cloned().unwrap_or_else(|| v.clone());
    let mut added = false;
    for item in more {
        let k = key(item);
        if !have.iter().any(|h| key(h) == k) {
            have.push(item.clone());
            added = true;
        }
    }
    added
}

/// One part's values folded into the merged tree: both trees are walked together, the path of
/// each leaf (arrays are leaves: a list is one value) kept as a JSON pointer in one buffer.
struct Fold<'a> {
    /// The part's place in precedence (0 is the winner).
    index: usize,
    namespace: &'a str,
    /// Fields this part filled from its configuration.
    defaulted: &'a BTreeSet<String>,
    /// Fields whose value a configured (or stating) source supplied, by part.
    supplier: &'a BTreeMap<&'a str, usize>,
    policy: &'a MergePolicy,
    claim: &'a mut SourceClaim,
}

impl Fold<'_> {
    /// Folds `body` in at `path`, where `merged` holds what the merge has there so far.
    fn object(&mut self, merged: &mut Value, body: &Value, path: &mut String) {
        match body {
            Value::Object(fields) if !fields.is_empty() => {
                // A value that is not an object is in the way: nothing below it is merged.
                let Value::Object(map) = merged else {
                    return;
                };
                for (key, value) in fields {
                    let len = path.len();
                    path.push('/');
                    push_escaped(path, key);
                    match map.get_mut(key.as_str()) {
                        Some(current) => self.object(current, value, path),
                        None => self.missing(map, key, value, path),
                    }
                    path.truncate(len);
                }
            }
            leaf => self.leaf(merged, leaf, path),
        }
    }

    /// `key` is not in `map` yet: the part's value (every leaf of it) is taken.
    fn missing(
        &mut self,
        map: &mut serde_json::Map<String, Value>,
        key: &str,
        value: &Value,
        path: &mut String,
    ) {
        if IDENTITY.contains(&path.as_str()) {
            return;
        }
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                let slot = map
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                self.object(slot, value, path);
            }
            leaf => {
                map.insert(key.to_string(), leaf.clone());
                self.claim.fields.push(path.clone());
            }
        }
    }

    /// A leaf of the part where the merge already has `current`.
    fn leaf(&mut self, current: &mut Value, value: &Value, path: &str) {
        if IDENTITY.contains(&path) {
            return;
        }
        let i = self.index;
        let supplied_by = self.supplier.get(path).copied();
        if supplied_by.unwrap_or(0) == i && (i == 0 || supplied_by.is_some()) {
            // This source supplied the value (the winner, or the configured source).
            self.claim.fields.push(path.to_string());
            return;
        }
        if *current == *value
            || same_ref(path, current, value, self.namespace)
            || self.defaulted.contains(path)
        {
            // A filled-in default says nothing against what another source found.
            return;
        }
        let claim = &mut *self.claim;
        match self.policy.rule(path) {
            MergeRule::Union => {
                if union_into(current, value) {
                    claim.fields.push(path.to_string());
                } else if !current.is_array() || !value.is_array() {
                    claim.disagrees.insert(path.to_string(), value.clone());
                }
            }
            MergeRule::PerSource => {
                claim.own.insert(path.to_string(), value.clone());
            }
            MergeRule::Cosmetic => {
                claim.cosmetic.insert(path.to_string(), value.clone());
            }
            MergeRule::Precedence | MergeRule::Owner => {
                claim.disagrees.insert(path.to_string(), value.clone());
            }
        }
    }
}

/// Merges the observations of one entity field by field (see the module doc). `parts` must be
/// non-empty; it is sorted by precedence here. Returns the merged entity and every claim.
pub fn combine(
    mut parts: Vec<Contribution>,
    priority: &BTreeMap<String, usize>,
    policy: &MergePolicy,
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
            own: BTreeMap::new(),
            cosmetic: BTreeMap::new(),
        };
        return Some((only.entity, vec![claim]));
    }
    let bodies: Vec<Value> = parts
        .iter()
        .map(|p| serde_json::from_str(&p.entity.entity_json).unwrap_or(Value::Null))
        .collect();
    let mut merged: Value = bodies.first()?.clone();
    // Fields each source filled from its own configuration rather than from what it found.
    let defaulted: Vec<BTreeSet<String>> = bodies.iter().map(defaulted_fields).collect();
    // Fields whose sources are configured: the first of those sources that has the field
    // supplies it, whatever the usual precedence.
    let mut supplier: BTreeMap<&str, usize> = BTreeMap::new();
    for (pointer, field) in &policy.fields {
        let first = field.sources.iter().find_map(|source| {
            parts
                .iter()
                .zip(&bodies)
                .position(|(p, b)| p.source == *source && b.pointer(pointer).is_some())
        });
        if let Some(i) = first
            && let Some(value) = bodies[i].pointer(pointer)
            && set_at(&mut merged, pointer, value.clone())
        {
            supplier.insert(pointer.as_str(), i);
        }
    }
    // A value a source states outranks one another filled in from its configuration.
    for pointer in defaulted.first().into_iter().flatten() {
        if supplier.contains_key(pointer.as_str()) {
            continue;
        }
        let stated = bodies
            .iter()
            .zip(&defaulted)
            .position(|(b, d)| b.pointer(pointer).is_some() && !d.contains(pointer));
        if let Some(i) = stated
            && let Some(value) = bodies[i].pointer(pointer)
            && set_at(&mut merged, pointer, value.clone())
        {
            supplier.insert(pointer.as_str(), i);
        }
    }
    // A team outranks a person as owner: the first source naming a group supplies it.
    let mut outranked_person: Option<Value> = None;
    const OWNER: &str = "/spec/owner";
    if !supplier.contains_key(OWNER) && policy.rule(OWNER) == MergeRule::Owner {
        let first = |person: bool| {
            bodies
                .iter()
                .position(|b| b.pointer(OWNER).and_then(names_person) == Some(person))
        };
        // A declared owner is a decision: it wins by precedence, person or not.
        let declared_owner = parts
            .iter()
            .zip(&bodies)
            .any(|(p, b)| p.entity.declared && b.pointer(OWNER).is_some());
        if let (Some(team), Some(person)) = (first(false), first(true)) {
            if !declared_owner
                && person < team
                && set_at(&mut merged, OWNER, bodies[team]["spec"]["owner"].clone())
            {
                supplier.insert(OWNER, team);
            }
            // A team owns it: the person is kept as its lead.
            if merged.pointer(OWNER).and_then(names_person) == Some(false) {
                outranked_person = bodies[person].pointer(OWNER).cloned();
            }
        }
    }
    let mut claims = Vec::with_capacity(parts.len());
    let mut extras: Vec<Relation> = Vec::new();
    let mut path = String::with_capacity(128);
    for (i, (part, body)) in parts.iter().zip(&bodies).enumerate() {
        let mut claim = SourceClaim {
            source: part.source.clone(),
            external_id: part.external_id.clone(),
            declared: part.entity.declared,
            winner: i == 0,
            fields: Vec::new(),
            disagrees: BTreeMap::new(),
            own: BTreeMap::new(),
            cosmetic: BTreeMap::new(),
        };
        let mut fold = Fold {
            index: i,
            namespace: &part.entity.namespace,
            defaulted: &defaulted[i],
            supplier: &supplier,
            policy,
            claim: &mut claim,
        };
        path.clear();
        fold.object(&mut merged, body, &mut path);
        // Relations a source knows beyond what its own spec implies travel with the merge.
        extras.extend(part.entity.beyond_spec.iter().cloned());
        claims.push(claim);
    }
    if let Some(person) = outranked_person {
        set_at(
            &mut merged,
            &format!("/metadata/annotations/{}", pointer_escape(LEAD_ANNOTATION)),
            person,
        );
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
    use serde_json::json;

    fn part(source: &str, ext: &str, declared: bool, spec: Value, meta: Value) -> Contribution {
        let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
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

    /// A relation a source knows beyond what its spec implies (a workload's dependency, found
    /// where it runs) stays on the merged entity, whichever source wins; one its spec implies
    /// is not counted twice.
    #[test]
    fn relations_beyond_a_sources_spec_travel_with_the_merge() {
        let rel = |kind: &str, target: &str| Relation {
            kind: kind.into(),
            target: target.parse().unwrap(),
        };
        let depends = rel("dependsOn", "resource:default/db");
        let owned = rel("ownedBy", "group:default/team-a");
        let mut k8s = part("k8s", "2", false, json!({"owner": "team-a"}), json!({}));
        let spec = k8s.entity.relations.clone();
        let e: Entity = serde_json::from_str(&k8s.entity.entity_json).unwrap();
        k8s.entity = ObservedEntity::new(&e, &[depends.clone(), owned.clone()], false).unwrap();
        assert!(spec.contains(&owned));
        assert_eq!(k8s.entity.beyond_spec, vec![depends.clone()]);
        let github = part("github", "1", false, json!({"owner": "team-a"}), json!({}));
        let prio = precedence(&["github", "k8s"]);
        let (merged, _) = combine(vec![github, k8s], &prio, &MergePolicy::default()).unwrap();
        assert!(
            merged.relations.contains(&depends),
            "{:?}",
            merged.relations
        );
        assert!(merged.relations.contains(&owned));
        assert_eq!(merged.beyond_spec, vec![depends]);
    }

    /// Source precedence as the engine takes it: the first source named comes first.
    fn precedence(sources: &[&str]) -> BTreeMap<String, usize> {
        sources
            .iter()
            .enumerate()
            .map(|(rank, s)| (s.to_string(), rank))
            .collect()
    }

    #[test]
    fn fields_merge_by_precedence_and_disagreements_are_kept() {
        let prio = precedence(&["github", "pagerduty"]);
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
        let (merged, claims) = combine(parts, &prio, &MergePolicy::default()).unwrap();
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
    fn a_later_source_fills_what_the_winner_lacks_leaf_by_leaf() {
        let prio = precedence(&["github", "jira"]);
        let parts = vec![
            part(
                "github",
                "R1",
                false,
                json!({"type": "service", "profile": {"displayName": "Svc"}, "x": "scalar"}),
                json!({}),
            ),
            part(
                "jira",
                "J1",
                false,
                json!({"type": "service", "profile": {"displayName": "Svc", "email": "a@b"},
                       "x": {"y": 1}, "empty": {}}),
                json!({"labels": {"a": "1", "b/c": "2"}}),
            ),
        ];
        let (merged, claims) = combine(parts, &prio, &MergePolicy::default()).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["metadata"]["labels"], json!({"a": "1", "b/c": "2"}));
        assert_eq!(
            body["spec"]["profile"],
            json!({"displayName": "Svc", "email": "a@b"})
        );
        assert_eq!(body["spec"]["empty"], json!({}));
        // A value in the way is kept: nothing is merged below it, and it is no disagreement.
        assert_eq!(body["spec"]["x"], "scalar");
        let jira = claims.iter().find(|c| c.source == "jira").unwrap();
        assert_eq!(
            jira.fields,
            [
                "/metadata/labels/a",
                "/metadata/labels/b~1c",
                "/spec/empty",
                "/spec/profile/email"
            ]
        );
        assert!(jira.disagrees.is_empty(), "{:?}", jira.disagrees);
        let github = claims.iter().find(|c| c.source == "github").unwrap();
        assert!(github.fields.contains(&"/spec/x".to_string()));
        assert!(
            !github
                .fields
                .iter()
                .any(|f| f.starts_with("/metadata/name"))
        );
    }

    #[test]
    fn lists_are_united_and_per_source_fields_are_no_disagreement() {
        let prio = precedence(&["github", "jira"]);
        let parts = vec![
            part(
                "jira",
                "J1",
                false,
                json!({"type": "service"}),
                json!({"title": "Payments API", "tags": ["payments", "java"],
                       "links": [{"url": "https://jira/PAY", "title": "Jira project"},
                                 {"url": "https://gh/acme/svc", "title": "again"}],
                       "annotations": {"backstage.io/source-location": "url:https://jira/PAY",
                                       "jira/project-key": "PAY", "team": "b"}}),
            ),
            part(
                "github",
                "R1",
                false,
                json!({"type": "service"}),
                json!({"title": "svc", "tags": ["java"],
                       "links": [{"url": "https://gh/acme/svc", "title": "Repository"}],
                       "annotations": {"backstage.io/source-location": "url:https://gh/acme/svc",
                                       "team": "a"}}),
            ),
        ];
        let (merged, claims) = combine(parts, &prio, &MergePolicy::default()).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["metadata"]["tags"], json!(["java", "payments"]));
        let urls: Vec<&str> = body["metadata"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["url"].as_str().unwrap())
            .collect();
        assert_eq!(urls, ["https://gh/acme/svc", "https://jira/PAY"]);
        assert_eq!(
            body["metadata"]["annotations"]["backstage.io/source-location"],
            "url:https://gh/acme/svc"
        );
        assert_eq!(body["metadata"]["annotations"]["jira/project-key"], "PAY");
        let jira = claims.iter().find(|c| c.source == "jira").unwrap();
        // Only the one-valued annotation both set differently is a disagreement.
        assert_eq!(
            jira.disagrees.keys().collect::<Vec<_>>(),
            ["/metadata/annotations/team"]
        );
        assert_eq!(
            jira.own["/metadata/annotations/backstage.io~1source-location"],
            "url:https://jira/PAY"
        );
        assert_eq!(jira.cosmetic["/metadata/title"], "Payments API");
        assert!(jira.fields.contains(&"/metadata/links".to_string()));
    }

    #[test]
    fn a_field_can_be_taken_from_a_configured_source_first() {
        let prio = precedence(&["github", "jira"]);
        let parts = || {
            vec![
                part(
                    "github",
                    "R1",
                    false,
                    json!({"lifecycle": "production"}),
                    json!({}),
                ),
                part(
                    "jira",
                    "J1",
                    false,
                    json!({"lifecycle": "deprecated"}),
                    json!({}),
                ),
            ]
        };
        let (merged, _) = combine(parts(), &prio, &MergePolicy::default()).unwrap();
        assert!(merged.entity_json.contains("\"production\""));
        let policy = MergePolicy {
            fields: [(
                "/spec/lifecycle".to_string(),
                FieldPolicy {
                    rule: None,
                    sources: vec!["jira".into()],
                },
            )]
            .into(),
        };
        let (merged, claims) = combine(parts(), &prio, &policy).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["spec"]["lifecycle"], "deprecated");
        let by = |s: &str| claims.iter().find(|c| c.source == s).unwrap();
        assert!(by("jira").fields.contains(&"/spec/lifecycle".to_string()));
        assert_eq!(by("github").disagrees["/spec/lifecycle"], "production");
        assert!(by("jira").disagrees.is_empty());
    }

    #[test]
    fn a_team_outranks_a_person_as_owner_and_the_person_is_kept_as_lead() {
        // Jira comes first, but it names a person; GitHub's CODEOWNERS names the team.
        let prio = precedence(&["jira", "github"]);
        let parts = vec![
            part(
                "jira",
                "J1",
                false,
                json!({"owner": "user:default/kim-lee", "system": "pay"}),
                json!({}),
            ),
            part(
                "github",
                "R1",
                false,
                json!({"owner": "payments", "system": "system:default/pay",
                       "dependsOn": ["component:default/a"]}),
                json!({}),
            ),
            part(
                "gitlab",
                "G1",
                false,
                json!({"dependsOn": ["component:default/b", "component:default/a"]}),
                json!({}),
            ),
        ];
        let (merged, claims) = combine(parts, &prio, &MergePolicy::default()).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["spec"]["owner"], "payments");
        assert_eq!(
            body["metadata"]["annotations"][LEAD_ANNOTATION],
            "user:default/kim-lee"
        );
        let by = |s: &str| claims.iter().find(|c| c.source == s).unwrap();
        assert!(by("github").fields.contains(&"/spec/owner".to_string()));
        // The person stays on record for the audit to place in (or outside) the team.
        assert_eq!(by("jira").disagrees["/spec/owner"], "user:default/kim-lee");
        // `pay` and `system:default/pay` are one ref: no disagreement.
        assert!(!by("github").disagrees.contains_key("/spec/system"));
        // Relation lists are united: each source knows some.
        assert_eq!(
            body["spec"]["dependsOn"],
            json!(["component:default/a", "component:default/b"])
        );
        assert!(by("gitlab").disagrees.is_empty());
        // A declared owner is a decision: a declared person stays the owner.
        let parts = vec![
            part(
                "files",
                "f#1",
                true,
                json!({"owner": "user:default/kim-lee"}),
                json!({}),
            ),
            part(
                "github",
                "R1",
                false,
                json!({"owner": "payments"}),
                json!({}),
            ),
        ];
        let (merged, _) = combine(parts, &prio, &MergePolicy::default()).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["spec"]["owner"], "user:default/kim-lee");
        // Configured to plain precedence, the person wins again and nothing is recorded.
        let policy = MergePolicy {
            fields: [(
                "/spec/owner".to_string(),
                FieldPolicy {
                    rule: Some(MergeRule::Precedence),
                    sources: Vec::new(),
                },
            )]
            .into(),
        };
        let parts = vec![
            part(
                "jira",
                "J1",
                false,
                json!({"owner": "user:default/kim-lee"}),
                json!({}),
            ),
            part(
                "github",
                "R1",
                false,
                json!({"owner": "payments"}),
                json!({}),
            ),
        ];
        let (merged, _) = combine(parts, &prio, &policy).unwrap();
        let body: Value = serde_json::from_str(&merged.entity_json).unwrap();
        assert_eq!(body["spec"]["owner"], "user:default/kim-lee");
        assert!(
            body["metadata"]["annotations"]
                .get(LEAD_ANNOTATION)
                .is_none()
        );
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
