//! What a new user meets first: tables that fit a terminal, typos answered with the likely
//! intent, history that says what was found, database and config errors that say what and
//! where, `validate` that looks at the database, and `serve` that says what its runs did.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
    std::fs::write(p, text).expect("write");
}

fn component(name: &str, owner: &str, kind_type: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  \
         annotations:\n    gitlab.com/access-levels: maintainer\nspec:\n  type: {kind_type}\n  \
         lifecycle: production\n  owner: {owner}\n"
    )
}

fn config(dir: &Path, database: &str) {
    write(
        dir,
        "surveyor.toml",
        &format!(
            "[catalog]\ndatabase = \"{database}\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\n\
             paths = [\"catalog/*.yaml\"]\n"
        ),
    );
}

fn run(dir: &Path, args: &[&str]) -> Output {
    common::surveyor_in(dir)
        .args(args)
        .output()
        .expect("run surveyor")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn widest(s: &str) -> usize {
    s.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// A catalog with long names and owners written both ways, synced.
fn long_catalog(dir: &Path) {
    config(dir, "sqlite://catalog.db");
    let long = "a-service-with-a-name-long-enough-to-push-any-table-past-the-edge";
    write(
        dir,
        "catalog/one.yaml",
        &component(&long[..63], "payments", "an-unusually-long-type-name"),
    );
    write(
        dir,
        "catalog/two.yaml",
        &component(
            "billing-bot-30",
            "group:default/platform-engineering-and-developer-experience",
            "service",
        ),
    );
    let out = run(dir, &["sync"]);
    common::assert_success(&out, "sync");
    // A change to the annotation, so `changes` shows its path.
    write(
        dir,
        "catalog/two.yaml",
        &component(
            "billing-bot-30",
            "group:default/platform-engineering-and-developer-experience",
            "service",
        )
        .replace("maintainer", "developer"),
    );
    common::assert_success(&run(dir, &["sync"]), "second sync");
}

#[test]
fn tables_fit_120_columns_unless_wide_and_read_plainly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    long_catalog(dir);
    for args in [
        &["entities", "list"][..],
        &["changes"],
        &["runs"],
        &["audit", "ownership"],
        &["audit", "drift"],
        &["audit", "ownership", "--history"],
    ] {
        let out = run(dir, args);
        common::assert_success(&out, &format!("{args:?}"));
        let stdout = text(&out.stdout);
        assert!(
            widest(&stdout) <= 120,
            "{args:?} is wider than 120:\n{stdout}"
        );
        assert!(
            !stdout.contains("com~1"),
            "{args:?} shows a pointer escape:\n{stdout}"
        );
    }
    let list = text(&run(dir, &["entities", "list"]).stdout);
    assert!(list.contains('…'), "{list}");
    let wide = run(dir, &["entities", "list", "--wide"]);
    let wide = text(&wide.stdout);
    assert!(widest(&wide) > 120, "{wide}");
    // One form for owners: `payments` and `group:default/platform-…` both as `group:NAME`.
    assert!(wide.contains("group:payments"), "{wide}");
    assert!(
        wide.contains("group:platform-engineering-and-developer-experience"),
        "{wide}"
    );
    assert!(!wide.contains("group:default/"), "{wide}");

    let changes = text(&run(dir, &["changes", "--wide"]).stdout);
    assert!(changes.contains("gitlab.com/access-levels"), "{changes}");

    let runs = text(&run(dir, &["runs"]).stdout);
    assert!(!runs.contains('{'), "{runs}");
    assert!(runs.contains("+2 ~0 -0"), "{runs}");
    assert!(runs.contains("+0 ~1 -0"), "{runs}");

    // The finding's text is not said again as its evidence.
    let audit = text(&run(dir, &["audit", "ownership", "--wide"]).stdout);
    for line in audit.lines().skip(1) {
        let cells: Vec<&str> = line.split("  ").filter(|c| !c.is_empty()).collect();
        if let [.., finding, evidence] = cells[..] {
            assert_ne!(finding.trim(), evidence.trim(), "{audit}");
        }
    }
}

#[test]
fn typos_in_kinds_and_refs_get_a_suggestion_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    long_catalog(dir);
    let out = run(dir, &["entities", "list", "--kind", "compnent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown kind compnent; did you mean component?"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    common::assert_success(
        &run(dir, &["entities", "list", "--kind", "Component"]),
        "a known kind",
    );

    let out = run(dir, &["entities", "get", "billing-bot-30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean component:billing-bot-30?"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir, &["changes", "--entity", "billing-bot-30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("component:billing-bot-30"));
    let out = run(dir, &["entities", "get", "nothing-by-this-name"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("needs a kind"), "{stderr}");
    assert!(!stderr.contains("none is implied"), "{stderr}");
}

#[test]
fn changes_show_the_last_50_unless_all_and_say_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    config(dir, "sqlite://catalog.db");
    for i in 0..60 {
        write(
            dir,
            &format!("catalog/svc-{i}.yaml"),
            &component(&format!("svc-{i}"), "team-a", "service"),
        );
    }
    common::assert_success(&run(dir, &["sync"]), "sync");
    let count = |args: &[&str]| -> usize {
        let out = run(dir, args);
        common::assert_success(&out, "changes");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array().map_or(0, Vec::len)
    };
    assert_eq!(count(&["changes", "--format", "json"]), 50);
    assert_eq!(count(&["changes", "--format", "json", "--all"]), 60);
    assert_eq!(count(&["changes", "--format", "json", "--limit", "7"]), 7);
    let out = run(dir, &["changes"]);
    assert!(
        text(&out.stderr).contains("the last 50 of 60 changes"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&run(dir, &["changes", "--all"]).stderr).contains("of 60"));
}

#[test]
fn audit_history_names_the_finding_in_every_format() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    long_catalog(dir);
    let out = run(dir, &["audit", "ownership", "--history", "--format", "csv"]);
    common::assert_success(&out, "csv history");
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("rule,entity,severity,finding,first_seen,last_seen,resolved")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.contains("owner-unresolved")), "{csv}");
    let table = text(&run(dir, &["audit", "ownership", "--history", "--wide"]).stdout);
    assert!(
        table.lines().next().unwrap_or("").contains("FINDING"),
        "{table}"
    );
    let md = run(
        dir,
        &["audit", "drift", "--history", "--format", "markdown"],
    );
    common::assert_success(&md, "markdown history");
    assert!(text(&md.stdout).starts_with("# Drift findings"));
}

#[test]
fn help_texts_belong_to_their_subcommand() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let drift = text(&run(dir, &["audit", "drift", "--help"]).stdout);
    assert!(!drift.contains("summary per owner"), "{drift}");
    assert!(!drift.contains("--fail-on-gaps"), "{drift}");
    assert!(drift.contains("--fail-on-findings"), "{drift}");
    let ownership = text(&run(dir, &["audit", "ownership", "--help"]).stdout);
    assert!(ownership.contains("--fail-on-gaps"), "{ownership}");
    let top = text(&run(dir, &["--help"]).stdout);
    let global = top
        .find("Global options:")
        .expect("a Global options section");
    assert!(top[global..].contains("--config"), "{top}");
    assert!(top[global..].contains("--log"), "{top}");
    let changes = text(&run(dir, &["changes", "--help"]).stdout);
    assert!(changes.contains("--all"), "{changes}");
}

#[test]
fn an_unreachable_postgres_is_named_without_its_password_at_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // Nothing listens on a port that was free a moment ago.
    let port = common::free_port();
    config(
        dir,
        &format!("postgres://surveyor:hunter2@127.0.0.1:{port}/catalog"),
    );
    let (tx, rx) = mpsc::channel();
    let d = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(run(&d, &["entities", "list"]));
    });
    // Liveness bound: before, the pool retried for 10 s and then said only that it timed out.
    let out = rx
        .recv_timeout(Duration::from_secs(8))
        .expect("no answer within 8 s");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
}

#[test]
fn a_sqlite_file_that_cannot_be_made_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // A path under a regular file: not creatable, even for root.
    write(dir, "not-a-dir", "x");
    config(dir, "sqlite://not-a-dir/catalog.db");
    let out = run(dir, &["entities", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not-a-dir/catalog.db"), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
}

#[test]
fn a_missing_config_file_says_how_to_get_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = run(tmp.path(), &["entities", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "no config file at surveyor.toml (run `surveyor init` to create one, or pass --config)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(":0:0"), "{stderr}");
}

#[test]
fn validate_looks_at_the_database_and_the_files_unless_offline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let port = common::free_port();
    config(
        dir,
        &format!("postgres://surveyor:hunter2@127.0.0.1:{port}/catalog"),
    );
    let offline = run(dir, &["validate", "--offline"]);
    common::assert_success(&offline, "validate --offline");
    // No catalog/*.yaml: the pattern warning is an online check.
    assert!(
        text(&offline.stderr).is_empty(),
        "{}",
        text(&offline.stderr)
    );
    let online = run(dir, &["validate"]);
    assert_eq!(online.status.code(), Some(1));
    let stderr = text(&online.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("matched no file"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    config(dir, "sqlite://catalog.db");
    let fresh = run(dir, &["validate"]);
    common::assert_success(&fresh, "validate before sync");
    assert!(
        text(&fresh.stdout).contains("not created yet"),
        "{}",
        text(&fresh.stdout)
    );
    assert!(
        !dir.join("catalog.db").exists(),
        "validate created the catalog"
    );
    write(dir, "catalog/a.yaml", &component("a", "team-a", "service"));
    common::assert_success(&run(dir, &["sync"]), "sync");
    let synced = run(dir, &["validate"]);
    common::assert_success(&synced, "validate after sync");
    assert!(
        text(&synced.stdout).contains("migrations up to date"),
        "{}",
        text(&synced.stdout)
    );
}

#[test]
fn serve_says_what_each_run_did_at_the_default_level() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let port = common::free_port();
    write(dir, "catalog/a.yaml", &component("a", "team-a", "service"));
    write(
        dir,
        "surveyor.toml",
        &format!(
            "[catalog]\ndatabase = \"sqlite://catalog.db\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[connectors]]\nid = \"files\"\nkind = \"file\"\nschedule = \"* * * * * *\"\n\
             paths = [\"catalog/*.yaml\"]\n"
        ),
    );
    let mut child = common::surveyor_in(dir)
        .arg("serve")
        .env_remove("SURVEYOR_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("run finished") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("no run line within 30 s");
    for field in ["connector", "status", "created", "duration"] {
        assert!(line.contains(field), "{line}");
    }
}
