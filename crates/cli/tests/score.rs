//! `surveyor score` and `surveyor classify` from the command line: every format, the owner
//! filter, `--fail-under` exiting 3 for CI gates, the history of turns, and `--tier` filters.

mod common;

use common::run_in as surveyor;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

const CONFIG: &str = r#"[catalog]
database = "sqlite://c.db"

[[connectors]]
id = "files"
kind = "file"
paths = ["catalog/*.yaml"]

[[scorecards]]
name = "readiness"
title = "Readiness"
levels = ["bronze", "silver"]
type = ["service"]

[[scorecards.checks]]
name = "owner"
level = "bronze"
relation = "ownedBy"

[[scorecards.checks]]
name = "runbook"
level = "silver"
link = "runbook"
"#;

const PEOPLE: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n  members: [ada]\n---\n\
     apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: ada\nspec:\n  memberOf: [team-a]\n";

/// `checkout` (tier-1, owned, with a runbook link unless `runbook` is false), `search` (owned,
/// no runbook), `orphan` (no owner) and a library the scorecard does not grade.
fn components(runbook: bool) -> String {
    let links = if runbook {
        "  links:\n    - url: https://wiki.example.com/checkout\n      title: Runbook\n"
    } else {
        ""
    };
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout\n  annotations:\n    surveyor.dev/tier: tier-1\n{links}spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: search\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: orphan\nspec:\n  type: service\n  lifecycle: production\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: lib\nspec:\n  type: library\n  lifecycle: production\n  owner: team-a\n"
    )
}

fn catalog(dir: &Path, runbook: bool) {
    std::fs::create_dir_all(dir.join("catalog")).expect("dir");
    std::fs::write(dir.join("surveyor.toml"), CONFIG).expect("config");
    std::fs::write(dir.join("catalog/people.yaml"), PEOPLE).expect("people");
    std::fs::write(dir.join("catalog/components.yaml"), components(runbook)).expect("components");
    let out = surveyor(dir, &["sync"]);
    common::assert_success(&out, "");
}

fn json(out: &Output) -> Value {
    common::assert_success(out, "");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Entity ref → level (None below every level).
fn levels(grades: &Value) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = grades
        .as_array()
        .expect("array")
        .iter()
        .map(|g| {
            (
                g["entity"].as_str().unwrap_or_default().to_string(),
                g["level"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn grades_in_every_format_an_owner_filter_and_a_ci_gate() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    catalog(d, true);

    let grades = json(&surveyor(d, &["score", "--format", "json"]));
    assert_eq!(
        levels(&grades),
        vec![
            ("component:default/checkout".into(), Some("silver".into())),
            ("component:default/orphan".into(), None),
            ("component:default/search".into(), Some("bronze".into())),
        ],
        "the library is not graded: {grades}"
    );
    let search = grades
        .as_array()
        .expect("array")
        .iter()
        .find(|g| g["entity"] == "component:default/search")
        .expect("search");
    assert!(
        search["failing"].to_string().contains("runbook"),
        "search fails the runbook check: {search}"
    );
    assert_eq!(search["owner"], "group:default/team-a");

    let csv = surveyor(d, &["score", "--format", "csv"]);
    common::assert_success(&csv, "");
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert_eq!(csv.lines().count(), 4, "a header and three grades:\n{csv}");
    assert!(csv.lines().any(|l| l.contains("orphan")), "{csv}");
    let md = surveyor(d, &["score", "--format", "markdown"]);
    common::assert_success(&md, "");
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    assert!(md.contains("Readiness") && md.contains("team-a"), "{md}");
    let table = surveyor(d, &["score"]);
    common::assert_success(&table, "");
    assert!(String::from_utf8_lossy(&table.stdout).contains("LEVEL"));
    assert!(
        String::from_utf8_lossy(&table.stderr)
            .contains("Readiness: below bronze 1, bronze 1, silver 1"),
        "the counts per level: {}",
        String::from_utf8_lossy(&table.stderr)
    );

    // The gate: the orphan is below bronze; team-a's are all bronze, not all silver.
    assert_eq!(
        surveyor(d, &["score", "--fail-under", "bronze"])
            .status
            .code(),
        Some(3)
    );
    let team = ["score", "--owner", "team-a", "--fail-under", "bronze"];
    assert_eq!(surveyor(d, &team).status.code(), Some(0));
    let team = ["score", "--owner", "team-a", "--fail-under", "silver"];
    assert_eq!(surveyor(d, &team).status.code(), Some(3));
    let owned = json(&surveyor(
        d,
        &["score", "--owner", "team-a", "--format", "json"],
    ));
    assert_eq!(owned.as_array().expect("array").len(), 2, "{owned}");

    // Mistakes are input errors, exit 2.
    let bad = surveyor(d, &["score", "--fail-under", "platinum"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("platinum"));
    let bad = surveyor(d, &["score", "--scorecard", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("readiness"));
}

#[test]
fn a_check_that_turns_is_in_the_history_with_its_run_and_tiers_filter_the_list() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    catalog(d, true);
    let none = json(&surveyor(d, &["score", "--history", "--format", "json"]));
    assert_eq!(
        none,
        serde_json::json!([]),
        "a first grading records levels, not turns"
    );

    // The runbook link goes: checkout's runbook check turns to failing, in the sync's run.
    std::fs::write(d.join("catalog/components.yaml"), components(false)).expect("write");
    let sync = surveyor(d, &["sync"]);
    common::assert_success(&sync, "");
    let turns = json(&surveyor(d, &["score", "--history", "--format", "json"]));
    let turns = turns.as_array().expect("array");
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(turns[0]["entityRef"], "component:default/checkout");
    assert_eq!(turns[0]["checkName"], "runbook");
    assert_eq!(turns[0]["passed"], false);
    let run = turns[0]["runId"].as_str().expect("the turn names a run");
    let runs = json(&surveyor(d, &["runs", "--format", "json"]));
    assert_eq!(
        runs.as_array()
            .and_then(|r| r.first())
            .map(|r| r["id"].clone()),
        Some(Value::from(run)),
        "the turn names the newest run: {runs}"
    );
    let grades = json(&surveyor(d, &["score", "--format", "json"]));
    assert!(
        levels(&grades).contains(&("component:default/checkout".into(), Some("bronze".into()))),
        "{grades}"
    );

    // The declared tier is the classification's, and the list filters by it.
    let tier1 = json(&surveyor(
        d,
        &["entities", "list", "--tier", "tier-1", "--format", "json"],
    ));
    let names: Vec<&str> = tier1
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["checkout"], "{tier1}");
    let classify = surveyor(d, &["classify", "checkout"]);
    common::assert_success(&classify, "");
    let text = String::from_utf8_lossy(&classify.stdout);
    assert!(
        text.contains("tier-1") && text.contains("surveyor.dev/tier"),
        "the tier with its evidence:\n{text}"
    );
}
