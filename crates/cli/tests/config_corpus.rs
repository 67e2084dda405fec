//! The malformed-config corpus (tests/config_corpus/*.toml) through the binary: every case
//! exits 2, never panics, names file:line:column: key, and prints exactly its snapshot.
//!
//! Each `<case>.toml` has its expected stderr in `<case>.stderr`. After an intended change to a
//! message, rewrite the snapshots with `UPDATE_SNAPSHOTS=1 cargo test -p surveyor-cli --test
//! config_corpus` and review the diff.

mod common;

use std::path::{Path, PathBuf};

/// Set for every case: configs reference it where a `${ENV}` value must resolve.
const SET_VAR: &str = "SURVEYOR_CORPUS_TOKEN";
/// Removed for every case: configs reference it to provoke "not set".
const UNSET_VAR: &str = "SURVEYOR_CORPUS_UNSET";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_corpus")
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn validate(case: &str) -> Outcome {
    let out = common::surveyor_in(&corpus_dir())
        .args(["validate", "--config", &format!("{case}.toml")])
        .env_remove(UNSET_VAR)
        .env(SET_VAR, "corpus-token-value")
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run surveyor");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Cases whose message cannot name a line yet, and why. Each must still fail the location check,
/// so the entry is removed once the message is fixed.
const KNOWN_UNLOCATED: &[(&str, &str)] = &[];

/// `<case>.toml:<line>:<column>: <key>: <message>`, with line and column from 1.
fn names_location_and_key(line: &str, case: &str) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{case}.toml:")) else {
        return false;
    };
    let positive = |n: &str| n.parse::<usize>().is_ok_and(|n| n > 0);
    let Some((line_no, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((column, rest)) = rest.split_once(": ") else {
        return false;
    };
    let Some((key, message)) = rest.split_once(": ") else {
        return false;
    };
    positive(line_no) && positive(column) && !key.trim().is_empty() && !message.trim().is_empty()
}

#[test]
fn corpus_is_large_enough() {
    let n = cases().len();
    assert!(
        n >= 30,
        "the corpus has {n} cases; the suite promises 30 or more"
    );
}

#[test]
fn every_malformed_config_exits_2_with_a_located_message_matching_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in cases() {
        let out = validate(&case);
        let snapshot_path = corpus_dir().join(format!("{case}.stderr"));
        if out.stderr.contains("panicked") || out.stderr.contains("RUST_BACKTRACE") {
            failures.push(format!("{case}: panicked:\n{}", out.stderr));
            continue;
        }
        if out.code != Some(2) {
            failures.push(format!(
                "{case}: exit code {:?}, expected 2\nstdout: {}\nstderr: {}",
                out.code, out.stdout, out.stderr
            ));
        }
        let message = out.stderr.strip_prefix("error: ").unwrap_or(&out.stderr);
        if message.trim().is_empty() {
            failures.push(format!("{case}: no message"));
        }
        let located = message
            .lines()
            .all(|line| names_location_and_key(line, &case));
        match KNOWN_UNLOCATED.iter().find(|(c, _)| *c == case) {
            None if !located => failures.push(format!(
                "{case}: not `file:line:column: key: message`:\n{message}"
            )),
            Some(_) if located => failures.push(format!(
                "{case}: is located now; remove it from KNOWN_UNLOCATED"
            )),
            Some(_) if !message.starts_with(&format!("{case}.toml: connectors[")) => failures.push(
                format!("{case}: does not even name the file and connector:\n{message}"),
            ),
            _ => {}
        }
        if update {
            std::fs::write(&snapshot_path, &out.stderr).expect("write snapshot");
            continue;
        }
        match std::fs::read_to_string(&snapshot_path) {
            Ok(expected) if expected == out.stderr => {}
            Ok(expected) => failures.push(format!(
                "{case}: stderr differs from {}\n--- expected\n{expected}--- actual\n{}",
                snapshot_path.display(),
                out.stderr
            )),
            Err(e) => failures.push(format!(
                "{case}: no snapshot {} ({e}); run with UPDATE_SNAPSHOTS=1 to write it",
                snapshot_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
}

#[test]
fn snapshots_have_no_orphans() {
    let cases = cases();
    let orphans: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".stderr").map(str::to_string))
        .filter(|stem| !cases.contains(stem))
        .collect();
    assert!(orphans.is_empty(), "snapshots without a case: {orphans:?}");
}

#[test]
fn secret_values_never_appear_in_messages() {
    for case in cases() {
        let out = validate(&case);
        assert!(
            !out.stderr.contains("corpus-token-value")
                && !out.stdout.contains("corpus-token-value"),
            "{case} printed the value of {SET_VAR}:\n{}",
            out.stderr
        );
    }
}
