//! Fuzzes the `requirements-dev.txt` parser: any text gives a manifest or an error naming the file, never a
//! panic; what parses has no empty package names.
#![no_main]

use libfuzzer_sys::fuzz_target;

const PATH: &str = "sub/requirements-dev.txt";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match surveyor_repofiles::parse_manifest(PATH, &text) {
        Ok(m) => {
            for d in &m.dependencies {
                assert_eq!(d.file, PATH);
            }
            assert!(m.produces.iter().all(|p| !p.name.is_empty()), "{m:?}");
        }
        Err(e) => {
            assert_eq!(e.file, PATH);
            assert!(!e.message.is_empty());
        }
    }
});
