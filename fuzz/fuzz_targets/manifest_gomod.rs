//! Fuzzes the `go.mod` parser: [`surveyor_fuzz::check_manifest`] on `sub/go.mod`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/go.mod", data);
});
