//! Fuzzes the `pom.xml` parser: [`surveyor_fuzz::check_manifest`] on `sub/pom.xml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/pom.xml", data);
});
