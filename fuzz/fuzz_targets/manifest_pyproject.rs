//! Fuzzes the `pyproject.toml` parser: [`surveyor_fuzz::check_manifest`] on `sub/pyproject.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/pyproject.toml", data);
});
