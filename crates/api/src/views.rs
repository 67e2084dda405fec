//! Entity documents as served: the stored body with its relations, plus surveyor's bookkeeping
//! (`surveyor`: uid, sources, timestamps) on `/api/v1`, or Backstage's `metadata.uid`/`etag`.

use serde_json::{Value, json};
use surveyor_model::hash::write_string;
use surveyor_store::{EntityRow, RelationRow};

fn relations_json(relations: &[RelationRow]) -> Value {
    let mut text = String::new();
    push_relations(&mut text, relations);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// `relations` as `/api/v1` lists them, written as JSON text: `{target, targetRef, type}` each,
/// the keys in the order a `serde_json` map keeps them.
fn push_relations(out: &mut String, relations: &[RelationRow]) {
    out.push('[');
    for (i, r) in relations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"target\":");
        match surveyor_model::EntityRef::parse_with(&r.target_display, None, "default") {
            Ok(t) => {
                out.push_str("{\"kind\":");
                write_string(t.kind(), out);
                out.push_str(",\"name\":");
                write_string(t.name(), out);
                out.push_str(",\"namespace\":");
                write_string(t.namespace(), out);
                out.push('}');
            }
            Err(_) => out.push_str("null"),
        }
        out.push_str(",\"targetRef\":");
        write_string(&r.target_ref, out);
        out.push_str(",\"type\":");
        write_string(&r.kind, out);
        out.push('}');
    }
    out.push(']');
}

/// The `/api/v1` document as JSON text, spliced rather than parsed and re-serialised: the
/// stored body is already canonical JSON, and list pages are mostly bodies.
pub fn entity_text(e: &EntityRow, relations: &[RelationRow]) -> String {
    let body = e.body.trim_end();
    let Some(open) = body.strip_suffix('}') else {
        return entity(e, relations).to_string();
    };
    let mut out = String::with_capacity(body.len() + 256 + e.sources.len());
    out.push_str(open);
    if !open.trim_end().ends_with('{') {
        out.push(',');
    }
    out.push_str("\"relations\":");
    push_relations(&mut out, relations);
    // The bookkeeping's keys in the order a `serde_json` map keeps them, as `entity` writes them.
    out.push_str(",\"surveyor\":{\"createdAt\":");
    push_time(&mut out, Some(&e.created_at));
    out.push_str(",\"deletedAt\":");
    push_time(&mut out, e.deleted_at.as_ref());
    out.push_str(",\"ref\":");
    write_string(&e.display_ref, &mut out);
    // `sources` is stored JSON; spliced in as it is.
    out.push_str(",\"sources\":");
    out.push_str(if e.sources.trim().is_empty() {
        "null"
    } else {
        e.sources.trim()
    });
    out.push_str(",\"uid\":");
    write_string(&e.uid, &mut out);
    out.push_str(",\"updatedAt\":");
    push_time(&mut out, Some(&e.updated_at));
    out.push_str("}}");
    out
}

/// A time as `serde_json` writes a `DateTime<Utc>` (RFC 3339, `Z`, as many fraction digits as
/// it needs), or `null`.
fn push_time(out: &mut String, t: Option<&chrono::DateTime<chrono::Utc>>) {
    match t {
        Some(t) => {
            out.push('"');
            out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// `/api/v1` shape (also what `surveyor entities` prints): body, `relations`, and `surveyor`
/// bookkeeping (ref, uid, sources with their claims, timestamps).
pub fn entity(e: &EntityRow, relations: &[RelationRow]) -> Value {
    let mut body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let sources: Value = serde_json::from_str(&e.sources).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut body {
        m.insert("relations".into(), relations_json(relations));
        m.insert(
            "surveyor".into(),
            json!({
                "ref": e.display_ref,
                "uid": e.uid,
                "sources": sources,
                "createdAt": e.created_at,
                "updatedAt": e.updated_at,
                "deletedAt": e.deleted_at,
            }),
        );
    }
    body
}

/// An entity's classification as the entity document shows it (`surveyor.classification`):
/// facet -> `[{value, declared, evidence, since}]`.
pub fn classification(rows: &[surveyor_store::ClassificationRow]) -> Value {
    let mut out = serde_json::Map::new();
    for r in rows {
        let evidence: Value = serde_json::from_str(&r.evidence).unwrap_or(Value::Null);
        let entry = out
            .entry(r.facet.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(json!({
                "value": r.value,
                "declared": r.declared,
                "evidence": evidence,
                "since": r.since,
            }));
        }
    }
    Value::Object(out)
}

/// Backstage's annotation naming the descriptor (or other location) an entity is read from.
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
/// Backstage's annotation naming the location that first led to the entity.
pub const MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
const SOURCE_LOCATION: &str = "backstage.io/source-location";

/// Backstage's shape: body with `metadata.uid`, `metadata.etag`, `metadata.annotations` (always
/// present, with the managed-by-location pair derived when no source set it) and `relations`
/// as current Backstage answers them (`{type, targetRef}`).
pub fn backstage(e: &EntityRow, relations: &[RelationRow]) -> Value {
    let mut body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let location = location_of(e, &body);
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!(e.uid));
        meta.insert("etag".into(), json!(e.hash));
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(a) = annotations {
            a.entry(MANAGED_BY_LOCATION)
                .or_insert_with(|| json!(location));
            a.entry(MANAGED_BY_ORIGIN_LOCATION)
                .or_insert_with(|| json!(location));
        }
    }
    if let Value::Object(m) = &mut body {
        let list: Vec<Value> = relations
            .iter()
            .map(|r| json!({"type": r.kind, "targetRef": r.target_ref}))
            .collect();
        m.insert("relations".into(), Value::Array(list));
    }
    body
}

/// The location (`type:target`) an entity is managed by, as Backstage's annotation writes it;
/// the one a source set wins. Else, from the claim that names the entity:
///
/// - a descriptor the file connector read (external id `<file>#<ref>`): `file:<file>`, the
///   path relative to the connector's root;
/// - a descriptor in a repository (external id `<repo>#<file>#<ref>`) whose source-location
///   is the repository's tree: `url:<tree with /blob/>/<file>`;
/// - anything else with a `url:` source-location: that location;
/// - otherwise `surveyor:<connector id>`, the connector that found it.
pub fn location_of(e: &EntityRow, body: &Value) -> String {
    let annotations = &body["metadata"]["annotations"];
    if let Some(set) = annotations[MANAGED_BY_LOCATION].as_str() {
        return set.to_string();
    }
    let claims: Value = serde_json::from_str(&e.sources).unwrap_or(Value::Null);
    let claims = claims.as_array().map(Vec::as_slice).unwrap_or_default();
    let winner = claims
        .iter()
        .find(|c| c["winner"] == json!(true))
        .or_else(|| claims.first());
    let source = winner
        .and_then(|c| c["source"].as_str())
        .unwrap_or("unknown");
    let external_id = winner
        .and_then(|c| c["externalId"].as_str())
        .unwrap_or_default();
    let source_location = annotations[SOURCE_LOCATION].as_str();
    let parts: Vec<&str> = external_id.split('#').collect();
    let is_file = |f: &str| {
        let f = f.to_ascii_lowercase();
        f.ends_with(".yaml") || f.ends_with(".yml") || f.ends_with(".json")
    };
    match parts.as_slice() {
        [file, _] if is_file(file) => return format!("file:{file}"),
        [.., file, _] if parts.len() >= 3 && is_file(file) => {
            let tree = source_location
                .and_then(|s| s.strip_prefix("url:"))
                .map(|t| t.trim_end_matches('/'));
            if let Some(base) = tree
                && let Some(at) = base.rfind("/tree/")
            {
                return format!("url:{}/blob/{}/{file}", &base[..at], &base[at + 6..]);
            }
        }
        _ => {}
    }
    match source_location {
        Some(url) if url.starts_with("url:") => url.to_string(),
        _ => format!("surveyor:{source}"),
    }
}

/// The relations that start from `source`, out of relations sorted by source (as the store's
/// `relations_of_many` returns them).
pub fn starting_at<'r>(relations: &'r [RelationRow], source: &str) -> &'r [RelationRow] {
    let from = relations.partition_point(|r| r.source_ref.as_str() < source);
    let to = from + relations[from..].partition_point(|r| r.source_ref == source);
    &relations[from..to]
}

/// [`project`] of each document; without `fields`, the documents as they are (not copied).
pub fn project_all(docs: Vec<Value>, fields: &[String]) -> Vec<Value> {
    if fields.is_empty() {
        return docs;
    }
    docs.iter().map(|d| project(d, fields)).collect()
}

/// Keeps only the dotted `fields` of a document (Backstage's `fields=` parameter).
pub fn project(doc: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return doc.clone();
    }
    let mut out = Value::Object(serde_json::Map::new());
    for f in fields {
        let path: Vec<&str> = f.split('.').collect();
        let mut src = doc;
        let mut found = true;
        for p in &path {
            match src.get(p) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        for (i, p) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let Some(map) = dst.as_object_mut() else {
                break;
            };
            if last {
                map.insert((*p).to_string(), src.clone());
                break;
            }
            dst = map
                .entry((*p).to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sources: Value) -> EntityRow {
        EntityRow {
            uid: "u".into(),
            entity_ref: "component:default/a".into(),
            display_ref: "component:default/a".into(),
            kind: "Component".into(),
            namespace: "default".into(),
            name: "a".into(),
            body: "{}".into(),
            hash: "h".into(),
            sources: sources.to_string(),
            meta_hash: "m".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            deleted_at: None,
            deleted_run: None,
        }
    }

    fn relation(source: &str, kind: &str, target: &str) -> RelationRow {
        RelationRow {
            origin_ref: source.into(),
            source_ref: source.into(),
            kind: kind.into(),
            target_ref: target.to_ascii_lowercase(),
            target_display: target.into(),
        }
    }

    /// The text a list page splices is the document `entity` builds, value for value: times
    /// with and without a fraction, a tombstone's time, strings that need escaping, a target
    /// that is no ref.
    #[test]
    fn the_spliced_text_is_the_built_document() {
        let mut e = row(json!([{"source": "gh", "externalId": "a \"quoted\"\n", "winner": true}]));
        e.body = r#"{"kind":"Component","metadata":{"name":"a","title":"tab\there"}}"#.into();
        e.display_ref = "component:default/A\"b".into();
        e.created_at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        e.updated_at = chrono::DateTime::from_timestamp(1_700_000_001, 123_456_789).expect("time");
        let relations = [
            relation("component:default/a", "ownedBy", "group:default/Team-A"),
            relation("component:default/a", "dependsOn", "not a ref::"),
        ];
        for deleted in [None, Some(e.updated_at)] {
            e.deleted_at = deleted;
            for (body, rels) in [
                (e.body.clone(), &relations[..]),
                ("{}".to_string(), &[][..]),
            ] {
                let e = EntityRow { body, ..e.clone() };
                let text = entity_text(&e, rels);
                let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
                assert_eq!(parsed, entity(&e, rels), "{text}");
            }
        }
        let text = entity_text(&e, &relations);
        assert!(
            text.contains(r#""updatedAt":"2023-11-14T22:13:21.123456789Z""#),
            "{text}"
        );
        assert!(text.contains(r#""target":null"#), "{text}");
        assert!(
            text.contains(r#""target":{"kind":"group","name":"Team-A","namespace":"default"}"#),
            "{text}"
        );
    }

    /// Relations sorted by source are found by source, whatever sits before and after.
    #[test]
    fn the_relations_of_one_source_are_its_own() {
        let rels = [
            relation("a", "ownedBy", "group:default/x"),
            relation("b", "dependsOn", "component:default/c"),
            relation("b", "ownedBy", "group:default/y"),
            relation("c", "ownedBy", "group:default/z"),
        ];
        let kinds = |s: &str| -> Vec<String> {
            starting_at(&rels, s)
                .iter()
                .map(|r| format!("{}:{}", r.source_ref, r.kind))
                .collect()
        };
        assert_eq!(kinds("b"), ["b:dependsOn", "b:ownedBy"]);
        assert_eq!(kinds("a"), ["a:ownedBy"]);
        assert_eq!(kinds("c"), ["c:ownedBy"]);
        assert!(kinds("bb").is_empty());
        assert!(kinds("0").is_empty());
        assert!(kinds("d").is_empty());
    }

    #[test]
    fn locations_come_from_the_winning_claim() {
        let claims = |id: &str| {
            json!([{"source": "other", "externalId": "x.yaml#component:default/a", "winner": false},
                   {"source": "gh", "externalId": id, "winner": true}])
        };
        let body = |source_location: &str| json!({"metadata": {"annotations": {"backstage.io/source-location": source_location}}});
        let repo = "acme/a#docs/catalog-info.yml#component:default/a";
        assert_eq!(
            location_of(
                &row(claims(repo)),
                &body("url:https://gl.example/acme/a/-/tree/dev/")
            ),
            "url:https://gl.example/acme/a/-/blob/dev/docs/catalog-info.yml"
        );
        // A tree without a branch after it, or no source location: the connector.
        assert_eq!(
            location_of(&row(claims(repo)), &body("url:https://gh.example/tree/")),
            "url:https://gh.example/tree/"
        );
        assert_eq!(location_of(&row(claims(repo)), &json!({})), "surveyor:gh");
        assert_eq!(
            location_of(&row(claims("a/b.yaml#component:default/a")), &json!({})),
            "file:a/b.yaml"
        );
        assert_eq!(
            location_of(&row(json!(null)), &json!({})),
            "surveyor:unknown"
        );
    }

    #[test]
    fn projection_keeps_only_the_fields_asked_for() {
        let doc = json!({"kind": "Component", "metadata": {"name": "a", "namespace": "default", "labels": {"x": "1"}}, "spec": {"type": "service"}});
        let p = project(
            &doc,
            &["kind".into(), "metadata.name".into(), "spec.missing".into()],
        );
        assert_eq!(p, json!({"kind": "Component", "metadata": {"name": "a"}}));
    }
}
