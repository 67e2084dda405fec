//! Canonical JSON and content hashes: the same content always gives the same bytes and the same
//! hash, whatever the key order or the serde_json features enabled elsewhere in the build.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Entity;

/// Compact JSON with object keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// The canonical JSON of an entity, written from its fields: the same bytes as
/// `canonical_json(&entity.to_value())` (a property test holds the two together), without
/// building the JSON tree first. Its hash is the observation's, so the bytes must not drift.
pub fn canonical_entity(entity: &Entity) -> String {
    /// A field of `metadata`, borrowed from where the entity keeps it.
    enum Field<'e> {
        Text(&'e str),
        Texts(&'e [String]),
        TextMap(&'e BTreeMap<String, String>),
        Values(&'e [Value]),
        Value(&'e Value),
    }
    let m = &entity.metadata;
    let extra = &m.extra;
    // As in `to_value`, a key of the flattened `extra` replaces a named field of that name.
    let named = [
        ("name", Some(Field::Text(&m.name))),
        ("namespace", m.namespace.as_deref().map(Field::Text)),
        ("title", m.title.as_deref().map(Field::Text)),
        ("description", m.description.as_deref().map(Field::Text)),
        (
            "labels",
            (!m.labels.is_empty()).then_some(Field::TextMap(&m.labels)),
        ),
        (
            "annotations",
            (!m.annotations.is_empty()).then_some(Field::TextMap(&m.annotations)),
        ),
        (
            "tags",
            (!m.tags.is_empty()).then_some(Field::Texts(&m.tags)),
        ),
        (
            "links",
            (!m.links.is_empty()).then_some(Field::Values(&m.links)),
        ),
    ];
    let mut fields: Vec<(&str, Field<'_>)> = named
        .into_iter()
        .filter(|(k, _)| !extra.contains_key(*k))
        .filter_map(|(k, f)| Some((k, f?)))
        .chain(extra.iter().map(|(k, v)| (k.as_str(), Field::Value(v))))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));

    let mut out = String::with_capacity(512);
    out.push_str("{\"apiVersion\":");
    write_string(&entity.api_version, &mut out);
    out.push_str(",\"kind\":");
    write_string(&entity.kind, &mut out);
    out.push_str(",\"metadata\":{");
    for (i, (key, field)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, &mut out);
        out.push(':');
        match field {
            Field::Text(s) => write_string(s, &mut out),
            Field::Texts(items) => write_array(items, &mut out, |t, out| write_string(t, out)),
            Field::TextMap(map) => {
                out.push('{');
                for (j, (k, v)) in map.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_string(k, &mut out);
                    out.push(':');
                    write_string(v, &mut out);
                }
                out.push('}');
            }
            Field::Values(items) => write_array(items, &mut out, write_canonical),
            Field::Value(v) => write_canonical(v, &mut out),
        }
    }
    out.push('}');
    if !entity.spec.is_empty() {
        out.push_str(",\"spec\":");
        write_object(&entity.spec, &mut out);
    }
    out.push('}');
    out
}

/// An array, each item written by `item`.
fn write_array<T>(items: &[T], out: &mut String, item: impl Fn(&T, &mut String)) {
    out.push('[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item(t, out);
    }
    out.push(']');
}

/// An object with its keys sorted, each value canonical.
fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_canonical(&map[key], out);
    }
    out.push('}');
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => write_array(items, out, write_canonical),
        Value::String(s) => write_string(s, out),
        // Numbers, booleans and null as serde_json writes them, without a String between.
        other => {
            use std::fmt::Write as _;
            let _ = write!(out, "{other}");
        }
    }
}

/// A JSON string literal, escaped exactly as serde_json escapes it (`"`, `\`, and control
/// characters: the short forms where JSON has one, else `\u00xx`), so that stored hashes stay
/// what they were; written straight into `out`.
pub fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// The content hash of a JSON value: SHA-256 of its canonical form.
pub fn content_hash(value: &Value) -> String {
    sha256_hex(canonical_json(value).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"b": 2, "a": {"x": "s", "y": [1, 2]}}))
        );
        assert_eq!(content_hash(&a).len(), 64);
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(canonical_json(&json!({"k\"": "a\nb"})), r#"{"k\"":"a\nb"}"#);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z\"\\\\ ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_entity() -> impl Strategy<Value = Entity> {
        let text = "[a-zA-Z0-9 _\"\\\\\n/.:-]{0,8}";
        let keys = "(name|namespace|title|tags|labels|links|[a-z]{1,5})";
        let object = |keys: &'static str| {
            prop::collection::btree_map(keys, arb_json(), 0..4)
                .prop_map(|m| m.into_iter().collect::<Map<String, Value>>())
        };
        (
            (text, text, text),
            (
                prop::option::of(text),
                prop::option::of(text),
                prop::option::of(text),
            ),
            (
                prop::collection::btree_map(text, text, 0..3),
                prop::collection::btree_map(text, text, 0..3),
                prop::collection::vec(text, 0..3),
                prop::collection::vec(arb_json(), 0..3),
            ),
            object(keys),
            object("[a-zA-Z]{1,6}"),
        )
            .prop_map(
                |(
                    (api, kind, name),
                    (namespace, title, description),
                    (labels, annotations, tags, links),
                    extra,
                    spec,
                )| {
                    Entity {
                        api_version: api.to_string(),
                        kind: kind.to_string(),
                        metadata: crate::Metadata {
                            name: name.to_string(),
                            namespace,
                            title,
                            description,
                            labels,
                            annotations,
                            tags,
                            links,
                            extra,
                        },
                        spec,
                    }
                },
            )
    }

    proptest! {
        /// Stored hashes were made with serde_json's escaping: the hand-written one must give
        /// the same bytes for every string.
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in any::<String>(), c in "[\\x00-\\x20\"\\\\\\x7f]{0,8}") {
            for text in [s.as_str(), c.as_str(), &format!("{s}{c}{s}")] {
                let mut ours = String::new();
                write_string(text, &mut ours);
                prop_assert_eq!(ours, serde_json::to_string(text).unwrap());
            }
        }

        /// The typed writer gives exactly the bytes of the tree's: stored observation hashes
        /// stay what they were.
        #[test]
        fn an_entity_is_written_as_its_json_tree_is(e in arb_entity()) {
            prop_assert_eq!(canonical_entity(&e), canonical_json(&e.to_value()));
        }

        #[test]
        fn canonical_json_round_trips(v in arb_json()) {
            let text = canonical_json(&v);
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(canonical_json(&back), text);
        }
    }
}
