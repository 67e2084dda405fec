//! Fuzzes catalog-info.yaml parsing; every entity that parses survives a round trip through
//! YAML and through its JSON value unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surveyor_model::Entity;
use surveyor_model::descriptor::parse_descriptors;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for doc in parse_descriptors(&text) {
        let Ok(entity) = doc.result else { continue };
        let again = Entity::from_value(entity.to_value())
            .unwrap_or_else(|e| panic!("{entity:?} does not re-parse from its value: {e}"));
        assert_eq!(again, entity);
        let yaml = yaml_serde::to_string(&entity).expect("an entity serializes");
        let docs = parse_descriptors(&yaml);
        assert_eq!(docs.len(), 1, "{yaml}");
        match &docs[0].result {
            Ok(back) => assert_eq!(back, &entity, "{yaml}"),
            Err(e) => panic!("{yaml}\ndoes not re-parse: {e}"),
        }
        let _ = entity.relations();
        assert!(entity.entity_ref().is_ok(), "{entity:?}");
    }
});
