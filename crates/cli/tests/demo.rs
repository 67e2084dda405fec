//! `surveyor demo` as a process: it syncs a simulated org into a catalog and summarises it, a
//! second run on the same catalog changes nothing, and each change of the living org shows up
//! as the change ops of the sync after it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn demo(dir: &Path, args: &[&str]) -> Output {
    common::surveyor_in(dir)
        .arg("demo")
        .args(args)
        .output()
        .expect("run surveyor demo")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The number after `prefix` on the line that starts with it: `Merged: 70 entities` -> 70.
fn count_after(out: &str, prefix: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_end_matches(',').parse().ok())
}

/// `created 1, updated 2, ...` as a map.
fn ops(line: &str) -> BTreeMap<String, u64> {
    line.split(',')
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let op = words.next()?.to_string();
            let n = words.next()?.parse().ok()?;
            Some((op, n))
        })
        .collect()
}

/// A port whose next five are likely free too: the simulated APIs take those.
fn free_port() -> u16 {
    common::free_port().min(65_000)
}

#[test]
fn once_summarises_the_catalog_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("x.db");
    let db = db.to_str().expect("utf-8 path");
    let port = free_port().to_string();
    let args = ["--once", "--size", "small", "--db", db, "--port", &port];

    let first = demo(dir.path(), &args);
    let (out, err) = (text(&first.stdout), text(&first.stderr));
    assert_eq!(first.status.code(), Some(0), "{out}\n{err}");
    let live = count_after(&out, "Entities: ").expect("an entity count");
    assert!(live > 0, "{out}");
    let mut kinds = BTreeMap::new();
    let per_kind = out
        .lines()
        .skip_while(|l| !l.starts_with("Entities: "))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    for line in per_kind {
        let mut words = line.split_whitespace();
        let kind = words.next().expect("kind").to_string();
        let n: u64 = words.next().and_then(|n| n.parse().ok()).expect("count");
        kinds.insert(kind, n);
    }
    for kind in ["Component", "Resource", "Group", "User", "System"] {
        assert!(kinds.get(kind).is_some_and(|n| *n > 0), "{kind}: {kinds:?}");
    }
    assert_eq!(kinds.values().sum::<u64>(), live);
    let merged = count_after(&out, "Merged: ").expect("a merged count");
    assert!(merged > 0 && merged <= live, "{out}");
    assert!(count_after(&out, "Ownership gaps: ").is_some(), "{out}");
    assert!(count_after(&out, "Drift findings: ").is_some(), "{out}");
    let created = out
        .lines()
        .find_map(|l| l.strip_prefix("Changes: "))
        .map(ops)
        .expect("a changes line");
    // A fresh catalog: every live entity was created by this sync, each counted once, and
    // nothing was updated (a merge into an entity this sync created is part of creating it).
    assert_eq!(created["created"], live, "{out}");
    assert_eq!(created["updated"], 0, "{out}");
    for connector in ["github", "gitlab", "k8s", "pagerduty", "jira"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(connector) && l.contains("succeeded")),
            "{connector}: {out}"
        );
    }

    // The config holds references to the fakes' tokens, never the tokens; the catalog neither.
    let config = std::fs::read_to_string(dir.path().join("x.toml")).expect("config");
    assert!(config.contains("token = \"${SURVEYOR_DEMO_GITHUB_TOKEN}\""));
    let settings: String = config
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let catalog = std::fs::read(dir.path().join("x.db")).expect("catalog");
    for token in [
        surveyor_sim::FAKE_TOKEN,
        surveyor_sim::GITLAB_TOKEN,
        surveyor_sim::PD_TOKEN,
        surveyor_sim::jira::JIRA_API_TOKEN,
    ] {
        assert!(
            !settings.contains(token),
            "{token} in the config's settings"
        );
        assert!(
            !catalog.windows(token.len()).any(|w| w == token.as_bytes()),
            "{token} in the catalog"
        );
    }

    let second = demo(dir.path(), &args);
    let (out2, err2) = (text(&second.stdout), text(&second.stderr));
    assert_eq!(second.status.code(), Some(0), "{out2}\n{err2}");
    let changes = out2
        .lines()
        .find_map(|l| l.strip_prefix("Changes: "))
        .map(ops)
        .expect("a changes line");
    assert_eq!(changes.get("created"), Some(&0), "{out2}");
    if !err.contains("is not free") && !err2.contains("is not free") {
        // The simulated APIs had the same addresses, so not even a link moved.
        assert!(
            changes.iter().all(|(op, n)| *op == "unchanged" || *n == 0),
            "{out2}"
        );
        assert!(changes.get("unchanged") > Some(&0), "{out2}");
    }
    assert_eq!(count_after(&out2, "Entities: "), Some(live));
}

#[test]
fn each_change_of_the_living_org_shows_in_the_next_sync() {
    let dir = tempfile::tempdir().expect("dir");
    let out = demo(
        dir.path(),
        &[
            "--once",
            "--size",
            "small",
            "--db",
            "x.db",
            "--port",
            "0",
            "--changes",
            "4",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Each change: its title, its sync's totals, then the findings, the connectors that changed
    // something and example changes.
    let mut rounds: Vec<(String, BTreeMap<String, u64>, Vec<String>)> = Vec::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(what) = line.strip_prefix("Change ") else {
            continue;
        };
        let totals = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("sync: "))
            .map(ops)
            .expect("the sync's totals");
        let mut detail = Vec::new();
        while let Some(l) = lines.next_if(|l| l.starts_with("  ")) {
            detail.push(l.trim().to_string());
        }
        rounds.push((what.to_string(), totals, detail));
    }
    assert_eq!(rounds.len(), 4, "{stdout}");
    for (what, _, detail) in &rounds {
        assert!(
            detail.iter().any(|l| l.starts_with("findings: ownership ")),
            "{what}: the audits' findings are recorded after each sync"
        );
    }
    let example = |round: usize, op: &str, kind: &str| {
        rounds[round]
            .2
            .iter()
            .any(|l| l.starts_with(op) && l.contains(&format!(" {kind}:")))
    };

    let (what, totals, _) = &rounds[0];
    assert!(what.starts_with("1: repository ") && what.contains(" renamed to "));
    assert!(totals["renamed"] >= 1, "{stdout}");
    assert!(example(0, "renamed", "component"), "{stdout}");

    let (what, totals, _) = &rounds[1];
    assert!(what.starts_with("2: CODEOWNERS of "), "{what}");
    assert!(totals["updated"] >= 1, "{stdout}");
    assert!(example(1, "updated", "component"), "{stdout}");

    let (what, totals, _) = &rounds[2];
    assert!(what.starts_with("3: workload of ") && what.ends_with(" removed from the cluster"));
    assert!(totals["deleted"] >= 1, "{stdout}");
    assert!(example(2, "deleted", "resource"), "{stdout}");

    let (what, totals, _) = &rounds[3];
    assert!(
        what.starts_with("4: team ") && what.ends_with(" disbanded"),
        "{what}"
    );
    assert!(totals["deleted"] >= 1, "{stdout}");
    assert!(example(3, "deleted", "group"), "{stdout}");
}

#[test]
fn a_catalog_in_a_missing_directory_is_bad_input() {
    let dir = tempfile::tempdir().expect("dir");
    let out = demo(
        dir.path(),
        &["--once", "--db", "no/such/dir/x.db", "--port", "0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--db no/such/dir/x.db: its directory does not exist"));
}

#[test]
fn the_living_org_announces_each_change_and_the_sync_after_finds_what_events_missed() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("dir");
    let mut child = common::surveyor_in(dir.path())
        .args(["demo", "--size", "small", "--db", "x.db", "--port", "0"])
        .args(["--mutate-every", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start surveyor demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Three rounds: each change's title, what its events brought in, and the sync after them.
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while out.matches("sync after the events").count() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("three rounds did not come:\n{out}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let rounds: Vec<&str> = out.split("\nChange ").skip(1).collect();
    assert!(rounds.len() >= 3, "{out}");
    let events = |round: &str| {
        round
            .lines()
            .find_map(|l| l.trim().strip_prefix("events: "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let missed = |round: &str| {
        round
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("sync after the events (what they missed): ")
            })
            .map(ops)
            .expect("the sync's totals")
    };
    // A repository renamed: GitHub's webhook brings the rename in before any sync.
    assert!(rounds[0].starts_with("1: repository "), "{out}");
    assert!(events(rounds[0]).is_some_and(|n| n >= 1), "{out}");
    assert!(
        rounds[0]
            .lines()
            .any(|l| l.trim().starts_with("renamed ") && l.ends_with("(github)")),
        "{out}"
    );
    // CODEOWNERS changed (a push) and a workload removed (the cluster's watch): the events
    // brought everything, the sync after them finds nothing more.
    for round in &rounds[1..3] {
        assert!(events(round).is_some_and(|n| n >= 1), "{out}");
        let missed = missed(round);
        for op in ["created", "updated", "renamed", "deleted", "restored"] {
            assert_eq!(missed.get(op), Some(&0), "{op} in\n{out}");
        }
    }
    assert!(rounds[2].contains("(k8s)"), "{out}");
}
