//! What the fuzz targets share. Each cargo-fuzz target stays its own binary (its own corpus in
//! `seeds/`); those that check the same property call one function here.

/// A manifest parser (chosen by `path`'s file name) on any text gives a manifest or an error
/// naming the file, never a panic; what parses has no empty package names.
pub fn check_manifest(path: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match surveyor_repofiles::parse_manifest(path, &text) {
        Ok(m) => {
            for d in &m.dependencies {
                assert_eq!(d.file, path);
            }
            assert!(m.produces.iter().all(|p| !p.name.is_empty()), "{m:?}");
        }
        Err(e) => {
            assert_eq!(e.file, path);
            assert!(!e.message.is_empty());
        }
    }
}
