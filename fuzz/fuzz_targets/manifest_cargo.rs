//! Fuzzes the `Cargo.toml` parser: [`surveyor_fuzz::check_manifest`] on `sub/Cargo.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    surveyor_fuzz::check_manifest("sub/Cargo.toml", data);
});
