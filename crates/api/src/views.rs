//! Entity documents as served: the stored body with its relations, plus surveyor's bookkeeping
//! (`surveyor`: uid, sources, timestamps) on `/api/v1`, or Backstage's `metadata.uid`/`etag`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use surveyor_store::{EntityRow, RelationRow};

fn relations_json(relations: &[RelationRow]) -> Value {
    relations
        .iter()
        .map(|r| {
            let target = surveyor_model::EntityRef::parse_with(&r.target_display, None, "default").ok();
            json!({
                "type": r.kind,
                "targetRef": r.target_ref,
                "target": target.map(|t| json!({"kind": t.kind(), "namespace": t.namespace(), "name": t.name()})),
            })
        })
        .collect()
}

/// The `/api/v1` document as JSON text, spliced rather than parsed and re-serialised: the
/// stored body is already canonical JSON, and list pages are mostly bodies.
pub fn entity_text(e: &EntityRow, relations: &[RelationRow]) -> String {
    let body = e.body.trim_end();
    let Some(open) = body.strip_suffix('}') else {
        return entity(e, relations).to_string();
    };
    let extra = json!({
        "ref": e.display_ref,
        "uid": e.uid,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
        "deletedAt": e.deleted_at,
    });
    let mut out = String::with_capacity(body.len() + 256 + e.sources.len());
    out.push_str(open);
    if !open.trim_end().ends_with('{') {
        out.push(',');
    }
    out.push_str("\"relations\":");
    out.push_str(&relations_json(relations).to_string());
    out.push_str(",\"surveyor\":");
    // `sources` is stored JSON; splice it in beside the other bookkeeping.
    let extra = extra.to_string();
    out.push_str(&extra[..extra.len() - 1]);
    out.push_str(",\"sources\":");
    out.push_str(if e.sources.trim().is_empty() {
        "null"
    } else {
        e.sources.trim()
    });
    out.push_str("}}");
    out
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

/// Backstage's shape: body with `metadata.uid` and `metadata.etag`, and `relations`.
pub fn backstage(e: &EntityRow, relations: &[RelationRow]) -> Value {
    let mut body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!(e.uid));
        meta.insert("etag".into(), json!(e.hash));
    }
    if let Value::Object(m) = &mut body {
        m.insert("relations".into(), relations_json(relations));
    }
    body
}

/// Relations grouped by the entity they start from.
pub fn by_source(relations: Vec<RelationRow>) -> BTreeMap<String, Vec<RelationRow>> {
    let mut out: BTreeMap<String, Vec<RelationRow>> = BTreeMap::new();
    for r in relations {
        out.entry(r.source_ref.clone()).or_default().push(r);
    }
    out
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
