//! Property tests (proptest, in CI) mirroring the fuzz targets `entity_ref` and `descriptor`:
//! parsing never panics and gives a value or a typed error; refs and entities round-trip.

use proptest::prelude::*;
use serde_json::{Value, json};
use surveyor_model::descriptor::{DescriptorError, parse_descriptor_bytes, parse_descriptors};
use surveyor_model::{Entity, EntityRef, RefError};

fn kind() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,12}"
}

fn namespace() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}"
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?"
}

/// Text that looks like a ref often enough to reach every branch of the parser.
fn ref_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9:/._ -]{0,30}",
        (kind(), namespace(), name()).prop_map(|(k, n, m)| format!("{k}:{n}/{m}")),
        (kind(), name()).prop_map(|(k, m)| format!(" {k}:{m} ")),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn refs_from_valid_parts_round_trip_through_display(k in kind(), ns in namespace(), n in name()) {
        let r = EntityRef::new(&k, &ns, &n).expect("valid parts");
        let shown = r.to_string();
        prop_assert_eq!(&shown, &format!("{}:{}/{}", k.to_ascii_lowercase(), ns, n));
        let back: EntityRef = shown.parse().expect("displayed ref parses");
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.key(), shown.to_ascii_lowercase());
        // Case never changes identity.
        let upper: EntityRef = shown.to_ascii_uppercase().parse().expect("upper-case parses");
        prop_assert_eq!(upper.key(), r.key());
    }

    #[test]
    fn any_text_parses_to_a_ref_that_round_trips_or_a_typed_error(s in ref_like()) {
        for parsed in [
            s.parse::<EntityRef>(),
            EntityRef::parse_with(&s, Some("group"), "default"),
        ] {
            match parsed {
                Ok(r) => {
                    let back: EntityRef = r.to_string().parse().expect("displayed ref parses");
                    prop_assert_eq!(back.key(), r.key());
                    prop_assert_eq!(back.to_string(), r.to_string());
                }
                Err(RefError::Empty) => prop_assert!(s.trim().is_empty()),
                Err(RefError::MissingKind(_)) => prop_assert!(!s.contains(':')),
                Err(RefError::Invalid { reference, .. }) => prop_assert_eq!(reference, s.trim()),
            }
        }
    }

    #[test]
    fn refs_serialize_as_their_display(k in kind(), ns in namespace(), n in name()) {
        let r = EntityRef::new(&k, &ns, &n).expect("valid parts");
        let v = serde_json::to_value(&r).expect("serializes");
        prop_assert_eq!(&v, &Value::String(r.to_string()));
        let back: EntityRef = serde_json::from_value(v).expect("deserializes");
        prop_assert_eq!(back, r);
    }
}

/// A spec value: scalars and small nested structures, including strings YAML would read as
/// something else if they were not quoted (`yes`, `~`, `1e3`, `0x10`, `: `).
fn spec_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        prop_oneof![
            Just("yes".to_string()),
            Just("~".to_string()),
            Just("1e3".to_string()),
            Just("0x10".to_string()),
            Just("a: b".to_string()),
            Just("- x".to_string()),
            Just("".to_string()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid Component with arbitrary extra spec fields and metadata.
fn component() -> impl Strategy<Value = Entity> {
    (
        name(),
        prop::option::of(namespace()),
        prop::option::of("\\PC{0,20}"),
        prop::collection::vec("[a-z0-9]{1,8}", 0..4),
        prop::collection::btree_map("[a-z]{1,8}", "\\PC{0,16}", 0..3),
        prop::collection::btree_map("x[a-zA-Z]{1,6}", spec_value(), 0..4),
        prop::option::of(name()),
    )
        .prop_map(|(name, ns, description, tags, annotations, extra, owner)| {
            let mut spec = serde_json::Map::new();
            spec.insert("type".into(), json!("service"));
            if let Some(owner) = owner {
                spec.insert("owner".into(), json!(owner));
            }
            spec.extend(extra);
            let annotations: serde_json::Map<String, Value> = annotations
                .into_iter()
                .map(|(k, v)| (format!("example.com/{k}"), Value::String(v)))
                .collect();
            let value = json!({
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": name, "namespace": ns, "description": description,
                    "tags": tags, "annotations": annotations,
                },
                "spec": spec,
            });
            Entity::from_value(value).expect("generated entities are valid")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_serialized_entity_parses_back_to_itself(entities in prop::collection::vec(component(), 1..4)) {
        let yaml: Vec<String> = entities
            .iter()
            .map(|e| yaml_serde::to_string(e).expect("serializes"))
            .collect();
        let text = yaml.join("---\n");
        let docs = parse_descriptors(&text);
        prop_assert_eq!(docs.len(), entities.len(), "{}", text);
        for (doc, entity) in docs.iter().zip(&entities) {
            match &doc.result {
                Ok(back) => prop_assert_eq!(back, entity, "{}", text),
                Err(e) => prop_assert!(false, "{}\ndoes not parse back: {}", text, e),
            }
        }
        // And through JSON, the shape stored and served.
        for entity in &entities {
            prop_assert_eq!(&Entity::from_value(entity.to_value()).expect("re-parses"), entity);
        }
    }

    #[test]
    fn any_bytes_give_documents_or_typed_errors(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for doc in parse_descriptor_bytes(&bytes) {
            match doc.result {
                Ok(e) => prop_assert!(e.entity_ref().is_ok()),
                Err(DescriptorError::Yaml(m)) => prop_assert!(!m.is_empty()),
                Err(DescriptorError::Fields(f)) => prop_assert!(!f.is_empty()),
            }
        }
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-z]{1,4}|: |- |&a |\\*a|---\n|\n  |\n|\\[|\\]|\\{|\\}|, |!t |'|\"|#|\\|)*") {
        let docs = parse_descriptors(&text);
        // Documents come in file order and stop at the first syntax error.
        prop_assert!(docs.windows(2).all(|w| w[0].index < w[1].index));
        let yaml_errors = docs
            .iter()
            .filter(|d| matches!(d.result, Err(DescriptorError::Yaml(_))))
            .count();
        prop_assert!(yaml_errors <= 1);
        if yaml_errors == 1 {
            prop_assert!(matches!(docs.last().map(|d| &d.result), Some(Err(DescriptorError::Yaml(_)))));
        }
    }
}
