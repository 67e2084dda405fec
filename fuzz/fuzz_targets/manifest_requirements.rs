//! Fuzzes the `requirements-dev.txt` parser: [`surveyor_fuzz::check_manifest`] on `sub/requirements-dev.txt`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/requirements-dev.txt", data);
});
