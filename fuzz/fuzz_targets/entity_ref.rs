//! Fuzzes entity references: parsing never panics, and a parsed ref displays as text that
//! parses back to an equal ref with the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surveyor_model::EntityRef;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = [
        text.parse::<EntityRef>(),
        EntityRef::parse_with(&text, Some("group"), "default"),
        EntityRef::parse_with(&text, Some("Component"), "Payments"),
    ];
    for r in parsed {
        match r {
            Ok(r) => {
                let shown = r.to_string();
                let back: EntityRef = shown
                    .parse()
                    .unwrap_or_else(|e| panic!("{text:?} -> {shown:?} does not parse: {e}"));
                assert_eq!(back, r);
                assert_eq!(back.key(), r.key());
                assert_eq!(back.to_string(), shown);
                assert_eq!(
                    EntityRef::new(r.kind(), r.namespace(), r.name()).map(|n| n.key()),
                    Ok(r.key())
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
