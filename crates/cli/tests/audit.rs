//! `surveyor audit ownership|drift`: every format, the filters, and exit 3 for CI gates.

mod common;

use common::run_in as surveyor;

use std::path::Path;

fn catalog(dir: &Path) {
    std::fs::create_dir_all(dir.join("catalog")).expect("dir");
    std::fs::write(
        dir.join("surveyor.toml"),
        "[catalog]\ndatabase = \"sqlite://c.db\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"catalog/*.yaml\"]\n",
    )
    .expect("config");
    std::fs::write(
        dir.join("catalog/all.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n  members: [ada]\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: ada\nspec:\n  memberOf: [team-a]\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: owned\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: orphan\nspec:\n  type: service\n  lifecycle: production\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ghost-owned\nspec:\n  type: library\n  lifecycle: production\n  owner: team-gone\n",
    )
    .expect("catalog");
    let out = surveyor(dir, &["sync"]);
    common::assert_success(&out, "");
}

#[test]
fn ownership_findings_in_every_format_and_a_ci_gate() {
    let dir = tempfile::tempdir().expect("dir");
    catalog(dir.path());
    let out = surveyor(dir.path(), &["audit", "ownership", "--format", "json"]);
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["entity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(findings.contains(&("no-owner".into(), "component:default/orphan".into())));
    assert!(findings.contains(&(
        "owner-unresolved".into(),
        "component:default/ghost-owned".into()
    )));
    assert!(
        !findings.iter().any(|(_, e)| e == "component:default/owned"),
        "a component owned by a team with members is fine: {findings:?}"
    );
    assert_eq!(report["summary"]["-"]["high"], 1);

    let csv = surveyor(dir.path(), &["audit", "ownership", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert!(csv.starts_with("entity,kind,rule,severity,owner,message,evidence\n"));
    assert_eq!(csv.lines().count(), 3);
    let md = surveyor(dir.path(), &["audit", "ownership", "--format", "markdown"]);
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    assert!(md.starts_with("# Ownership audit") && md.contains("## By owner"));
    let table = surveyor(dir.path(), &["audit", "ownership"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("SEVERITY"));

    let gate = surveyor(dir.path(), &["audit", "ownership", "--fail-on-gaps"]);
    assert_eq!(gate.status.code(), Some(3));
    let narrowed = surveyor(
        dir.path(),
        &["audit", "ownership", "--owner", "team-a", "--fail-on-gaps"],
    );
    assert_eq!(narrowed.status.code(), Some(0), "team-a has no gaps");
    let bad = surveyor(dir.path(), &["audit", "ownership", "--owner", "a:b:c/d"]);
    assert_eq!(bad.status.code(), Some(2));
    let drift = surveyor(dir.path(), &["audit", "drift", "--format", "json"]);
    assert!(drift.status.success());
}

#[test]
fn an_owner_who_left_is_reported() {
    let dir = tempfile::tempdir().expect("dir");
    catalog(dir.path());
    // `bob` owns a component, then leaves: his User is deleted, the component still names him.
    std::fs::write(
        dir.path().join("catalog/bob.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: bob\nspec:\n  memberOf: []\n---\n\
         apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bobs-tool\nspec:\n  type: tool\n  lifecycle: production\n  owner: user:bob\n",
    )
    .expect("write");
    assert!(surveyor(dir.path(), &["sync"]).status.success());
    let rules = |dir: &Path| -> Vec<String> {
        let out = surveyor(dir, &["audit", "ownership", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["entity"] == "component:default/bobs-tool")
            .map(|f| f["rule"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(rules(dir.path()).is_empty(), "bob is here");
    std::fs::write(
        dir.path().join("catalog/bob.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bobs-tool\nspec:\n  type: tool\n  lifecycle: production\n  owner: user:bob\n",
    )
    .expect("write");
    assert!(surveyor(dir.path(), &["sync"]).status.success());
    assert_eq!(rules(dir.path()), ["owner-user-removed"]);
}

#[test]
fn findings_keep_a_history_across_syncs() {
    let dir = tempfile::tempdir().expect("dir");
    catalog(dir.path());
    let history = |dir: &Path| -> Vec<serde_json::Value> {
        let out = surveyor(
            dir,
            &["audit", "ownership", "--history", "--format", "json"],
        );
        common::assert_success(&out, "");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["findings"].as_array().cloned().unwrap_or_default()
    };
    let first = history(dir.path());
    let orphan = |rows: &[serde_json::Value]| {
        rows.iter()
            .find(|f| f["rule"] == "no-owner" && f["entityRef"] == "component:default/orphan")
            .cloned()
            .expect("the orphan's finding is recorded")
    };
    let opened = orphan(&first);
    assert!(opened["resolvedAt"].is_null());
    assert_eq!(opened["firstSeen"], opened["lastSeen"]);

    // Seen again: same row, later last_seen.
    assert!(surveyor(dir.path(), &["sync"]).status.success());
    let again = orphan(&history(dir.path()));
    assert_eq!(again["id"], opened["id"]);
    assert_eq!(again["firstSeen"], opened["firstSeen"]);
    assert_ne!(again["lastSeen"], opened["lastSeen"]);

    // The orphan gets an owner: the finding is resolved, not forgotten.
    let text = std::fs::read_to_string(dir.path().join("catalog/all.yaml")).expect("read");
    std::fs::write(
        dir.path().join("catalog/all.yaml"),
        text.replace(
            "name: orphan\nspec:\n  type: service\n  lifecycle: production\n",
            "name: orphan\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
        ),
    )
    .expect("write");
    assert!(surveyor(dir.path(), &["sync"]).status.success());
    let rows = history(dir.path());
    let resolved = orphan(&rows);
    assert_eq!(resolved["id"], opened["id"]);
    assert!(resolved["resolvedAt"].is_string(), "{resolved}");
    // And the gate looks at open findings only.
    let table = surveyor(dir.path(), &["audit", "ownership", "--history"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("RESOLVED"));
    let csv = surveyor(
        dir.path(),
        &["audit", "ownership", "--history", "--format", "csv"],
    );
    assert_eq!(csv.status.code(), Some(0), "history in CSV too");
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.lines()
            .any(|l| l.starts_with("no-owner,component:default/orphan,") && !l.ends_with(",open")),
        "{csv}"
    );
}
