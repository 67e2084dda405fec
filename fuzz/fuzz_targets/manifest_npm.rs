//! Fuzzes the `package.json` parser: [`surveyor_fuzz::check_manifest`] on `sub/package.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/package.json", data);
});
