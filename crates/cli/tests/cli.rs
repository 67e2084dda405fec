//! The `surveyor` binary end to end, in a temp dir: init, validate, sync, history, the guard,
//! restores, and exit codes for bad input.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn surveyor(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("surveyor").expect("binary");
    c.current_dir(dir)
        .env_remove("SURVEYOR_CONFIG")
        .env("NO_COLOR", "1");
    c
}

fn component(name: &str, owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn sync_json(dir: &Path, extra: &[&str], code: i32) -> Value {
    let out = surveyor(dir)
        .args(["sync", "--format", "json"])
        .args(extra)
        .assert()
        .code(code);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v[0]["counts"]["entities"].clone()
}

fn changes(dir: &Path) -> Vec<(String, String)> {
    let out = surveyor(dir)
        .args(["changes", "--format", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap().to_string(),
                c["entity_ref"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn init_validate_sync_change_delete_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    assert!(
        std::fs::read_to_string(dir.join("surveyor.toml"))
            .unwrap()
            .contains("kind = \"file\"")
    );
    surveyor(dir).arg("init").assert().code(2);
    surveyor(dir).arg("validate").assert().success();

    for i in 0..10 {
        write(
            dir,
            &format!("catalog/svc-{i}.yaml"),
            &component(&format!("svc-{i}"), "team-a"),
        );
    }
    let c = sync_json(dir, &[], 0);
    assert_eq!(c["created"], 10);

    // Add one, change one, delete one.
    write(dir, "catalog/new.yaml", &component("brand-new", "team-b"));
    write(dir, "catalog/svc-1.yaml", &component("svc-1", "team-b"));
    std::fs::remove_file(dir.join("catalog/svc-2.yaml")).unwrap();
    let c = sync_json(dir, &[], 0);
    assert_eq!(
        (
            c["created"].as_u64(),
            c["updated"].as_u64(),
            c["deleted"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let ops = changes(dir);
    assert!(ops.contains(&("created".into(), "component:default/brand-new".into())));
    assert!(ops.contains(&("updated".into(), "component:default/svc-1".into())));
    assert!(ops.contains(&("deleted".into(), "component:default/svc-2".into())));

    // The table shows them too, and --entity follows one entity.
    let out = surveyor(dir)
        .args(["changes", "--entity", "component:svc-1"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("updated") && text.contains("spec.owner"),
        "{text}"
    );

    // Deleting 90% of the files: the guard refuses, exit 1, nothing deleted.
    let files: Vec<_> = std::fs::read_dir(dir.join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let keep = files.len() / 10;
    let saved: Vec<(std::path::PathBuf, String)> = files[keep..]
        .iter()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
        .collect();
    for (p, _) in &saved {
        std::fs::remove_file(p).unwrap();
    }
    let out = surveyor(dir).args(["sync"]).assert().code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("REFUSED to delete"), "{stderr}");
    let out = surveyor(dir)
        .args(["entities", "list", "--format", "json"])
        .assert()
        .success();
    let listed: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 10, "nothing was deleted");

    // Restore the files, and bring back the one deleted earlier: `restored`.
    for (p, text) in &saved {
        std::fs::write(p, text).unwrap();
    }
    write(dir, "catalog/svc-2.yaml", &component("svc-2", "team-a"));
    let c = sync_json(dir, &[], 0);
    assert_eq!(c["restored"], 1);
    assert!(changes(dir).contains(&("restored".into(), "component:default/svc-2".into())));

    // --owner filter and entities get.
    let out = surveyor(dir)
        .args(["entities", "list", "--owner", "team-b", "--format", "json"])
        .assert()
        .success();
    let owned: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(owned.as_array().unwrap().len(), 2);
    let out = surveyor(dir)
        .args([
            "entities",
            "get",
            "component:default/svc-1",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let e: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(e["relations"][0]["type"], "ownedBy");
    assert_eq!(e["surveyor"]["sources"][0]["source"], "catalog-files");
}

#[test]
fn dry_run_plans_but_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(dir, "catalog/a.yaml", &component("a", "t"));
    let c = sync_json(dir, &["--dry-run"], 0);
    assert_eq!(c["created"], 1);
    let out = surveyor(dir)
        .args(["entities", "list", "--format", "json"])
        .assert()
        .success();
    let listed: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0);
    assert!(changes(dir).is_empty());
}

#[test]
fn a_bad_document_is_reported_and_exits_2_without_losing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(dir, "catalog/a.yaml", &component("a", "t"));
    write(dir, "catalog/b.yaml", &component("b", "t"));
    sync_json(dir, &[], 0);
    std::fs::remove_file(dir.join("catalog/b.yaml")).unwrap();
    write(dir, "catalog/c.yaml", &component("c", "t"));
    write(
        dir,
        "catalog/bad.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: -nope\n",
    );
    let out = surveyor(dir).arg("sync").assert().code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(
            "catalog/bad.yaml (document 1): metadata.name: \"-nope\" is not a valid name"
        ),
        "{stderr}"
    );
    let out = surveyor(dir)
        .args(["entities", "list", "--format", "json"])
        .assert()
        .success();
    let refs: Vec<String> = serde_json::from_slice::<Value>(&out.get_output().stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["surveyor"]["ref"].as_str().unwrap().to_string())
        .collect();
    // c synced; b is not deleted, because the scope was partial.
    assert_eq!(
        refs,
        vec![
            "component:default/a",
            "component:default/b",
            "component:default/c"
        ]
    );
}

#[test]
fn config_errors_name_file_line_and_key_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite://x.db\"\n\n[[connectors]]\nid = \"f\"\nkind = \"file\"\npath = [\"x\"]\n",
    );
    let out = surveyor(dir).arg("validate").assert().code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr.trim(),
        "error: surveyor.toml:7:1: connectors[0].path: unknown key (did you mean `paths`?)"
    );
    write(
        dir,
        "huge.toml",
        "[catalog]\nretention = \"300000000000000d\"\n",
    );
    let out = surveyor(dir)
        .args(["--config", "huge.toml", "validate"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("huge.toml:2:13: catalog.retention: invalid duration"),
        "{stderr}"
    );
    // A missing file says how to make one.
    let out = surveyor(dir)
        .args(["--config", "nope.toml", "sync"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("nope.toml") && stderr.contains("surveyor init"),
        "{stderr}"
    );
    // Unknown --connector, bad --since, bad ref.
    write(
        dir,
        "surveyor.toml",
        "[[connectors]]\nid = \"f\"\nkind = \"file\"\npaths = [\"*.yaml\"]\n",
    );
    surveyor(dir)
        .args(["sync", "--connector", "nope"])
        .assert()
        .code(2);
    surveyor(dir)
        .args(["changes", "--since", "yesterday"])
        .assert()
        .code(2);
    surveyor(dir)
        .args(["entities", "get", "nokind"])
        .assert()
        .code(2);
}

#[test]
fn validate_warns_about_files_it_cannot_read_and_still_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite://x.db\"\n\n[[connectors]]\nid = \"f\"\nkind = \"file\"\npaths = [\"catalog/*.yaml\", \"catalog/*.yml\"]\n",
    );
    write(
        dir,
        "catalog/root.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  targets:\n    - ./missing.yaml\n    - ../../elsewhere.yaml\n",
    );
    let out = surveyor(dir).arg("validate").assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stdout.contains("surveyor.toml: ok"), "{stdout}");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        warnings,
        vec![
            "warning: surveyor.toml: connector \"f\": pattern \"catalog/*.yml\" matched no file",
            "warning: surveyor.toml: connector \"f\": catalog/root.yaml: spec.targets: target \"./missing.yaml\" of location:default/root: does not exist (matches no file)",
            "warning: surveyor.toml: connector \"f\": catalog/root.yaml: spec.targets: target \"../../elsewhere.yaml\" of location:default/root: outside the catalog directory; not read",
        ],
        "{stderr}"
    );
}

#[test]
fn secrets_in_the_database_url_never_reach_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite:///nonexistent-dir/${SURVEYOR_TEST_PW}/catalog.db\"\n\n[[connectors]]\nid = \"f\"\nkind = \"file\"\npaths = [\"*.yaml\"]\n",
    );
    let out = surveyor(dir)
        .env("SURVEYOR_TEST_PW", "hunter2-sentinel")
        .args(["--log", "trace", "sync"])
        .assert()
        .code(1);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.get_output().stdout),
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    assert!(!all.contains("hunter2-sentinel"), "{all}");
    assert!(all.contains("error"), "{all}");
    // The path is named as the config writes it.
    assert!(
        all.contains("/nonexistent-dir/${SURVEYOR_TEST_PW}/catalog.db"),
        "{all}"
    );
}

#[test]
fn help_is_useful() {
    let out = Command::cargo_bin("surveyor")
        .unwrap()
        .args(["sync", "--help"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("--dry-run")
            && text.contains("--allow-mass-delete")
            && text.contains("--connector")
    );
}

#[test]
fn unknown_kinds_are_kept_and_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(
        dir,
        "catalog/p.yaml",
        "apiVersion: example.com/v1\nkind: Pipeline\nmetadata:\n  name: nightly\n",
    );
    let out = surveyor(dir).arg("sync").assert().success();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("warning: pipeline:default/nightly")
            && stderr.contains("not one of Backstage's kinds"),
        "{stderr}"
    );
    let out = surveyor(dir)
        .args(["entities", "list", "--kind", "pipeline", "--format", "json"])
        .assert()
        .success();
    let listed: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn moving_descriptors_to_another_file_is_not_a_mass_deletion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(
        dir,
        "catalog/a.yaml",
        &format!("{}---\n{}", component("a", "t"), component("b", "t")),
    );
    sync_json(dir, &[], 0);
    std::fs::rename(dir.join("catalog/a.yaml"), dir.join("catalog/moved.yaml")).unwrap();
    let c = sync_json(dir, &[], 0);
    assert_eq!(
        (c["deleted"].as_u64(), c["created"].as_u64()),
        (Some(0), Some(0))
    );
    let out = surveyor(dir)
        .args(["entities", "get", "component:a", "--format", "json"])
        .assert()
        .success();
    let e: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        e["surveyor"]["sources"][0]["externalId"],
        "catalog/moved.yaml#component:default/a"
    );
    assert_eq!(
        e["surveyor"]["sources"].as_array().unwrap().len(),
        1,
        "the old file's claim is gone"
    );
}

/// A Component descriptor whose `spec.packageDependencies` lists `deps` as (ecosystem, package,
/// requirement, file).
fn component_with_deps(name: &str, deps: &[(&str, &str, &str, &str)]) -> String {
    let mut text = format!("{}  packageDependencies:\n", component(name, "team-a"));
    for (ecosystem, package, requirement, file) in deps {
        text.push_str(&format!(
            "    - ecosystem: {ecosystem}\n      package: \"{package}\"\n      requirement: \"{requirement}\"\n      scope: runtime\n      file: {file}\n"
        ));
    }
    text
}

fn listed_refs(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = surveyor(dir)
        .args(["entities", "list", "--format", "json"])
        .args(args)
        .assert()
        .success();
    serde_json::from_slice::<Value>(&out.get_output().stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["surveyor"]["ref"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn entities_list_depends_on_finds_who_uses_a_package() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(
        dir,
        "catalog/web.yaml",
        &component_with_deps(
            "web",
            &[
                ("npm", "react", "^18.2.0", "package.json"),
                ("npm", "react", "^18.3.1", "e2e/package.json"),
            ],
        ),
    );
    write(
        dir,
        "catalog/admin.yaml",
        &component_with_deps("admin", &[("npm", "vue", "^3.4.0", "package.json")]),
    );
    write(
        dir,
        "catalog/ledger.yaml",
        &component_with_deps(
            "ledger",
            &[(
                "maven",
                "org.apache.logging.log4j:log4j-core",
                "2.17.1",
                "pom.xml",
            )],
        ),
    );
    write(
        dir,
        "catalog/pyweb.yaml",
        &component_with_deps("pyweb", &[("pypi", "react", "0.1", "requirements.txt")]),
    );
    write(dir, "catalog/plain.yaml", &component("plain", "team-a"));
    let c = sync_json(dir, &[], 0);
    assert_eq!(c["created"], 5);

    // ECOSYSTEM:PACKAGE, and PACKAGE alone (any ecosystem).
    assert_eq!(
        listed_refs(dir, &["--depends-on", "npm:react"]),
        ["component:default/web"]
    );
    assert_eq!(
        listed_refs(dir, &["--depends-on", "react"]),
        ["component:default/pyweb", "component:default/web"]
    );
    assert!(listed_refs(dir, &["--depends-on", "cargo:react"]).is_empty());
    // Maven coordinates: only a known ecosystem before the first colon is split off.
    let ledger = ["component:default/ledger"];
    assert_eq!(
        listed_refs(
            dir,
            &["--depends-on", "maven:org.apache.logging.log4j:log4j-core"]
        ),
        ledger
    );
    assert_eq!(
        listed_refs(
            dir,
            &["--depends-on", "org.apache.logging.log4j:log4j-core"]
        ),
        ledger
    );
    assert!(
        listed_refs(
            dir,
            &["--depends-on", "npm:org.apache.logging.log4j:log4j-core"]
        )
        .is_empty()
    );
    // Combined with other filters.
    assert_eq!(
        listed_refs(dir, &["--depends-on", "npm:react", "--kind", "component"]),
        ["component:default/web"]
    );
    assert!(listed_refs(dir, &["--depends-on", "npm:react", "--kind", "group"]).is_empty());

    // The table shows which requirements matched (whole with --wide).
    let out = surveyor(dir)
        .args(["entities", "list", "--wide", "--depends-on", "npm:react"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("REQUIREMENT"), "{text}");
    assert!(
        lines[1].starts_with("component:web")
            && lines[1]
                .ends_with("^18.2.0 (package.json, runtime); ^18.3.1 (e2e/package.json, runtime)"),
        "{text}"
    );
    // Without an ecosystem, each requirement says which ecosystem it is in.
    let out = surveyor(dir)
        .args(["entities", "list", "--depends-on", "react"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("pypi 0.1 (requirements.txt, runtime)")
            && text.contains("npm ^18.2.0 (package.json, runtime)"),
        "{text}"
    );
    // Without --depends-on the table is as before.
    let out = surveyor(dir).args(["entities", "list"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("REQUIREMENT"), "{text}");

    // No package is bad input; --help explains the syntax.
    surveyor(dir)
        .args(["entities", "list", "--depends-on", "npm:"])
        .assert()
        .code(2);
    let out = surveyor(dir)
        .args(["entities", "list", "--help"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("--depends-on <[ECOSYSTEM:]PACKAGE>")
            && text.contains("maven:org.apache.logging.log4j:log4j-core"),
        "{text}"
    );
}

#[test]
fn a_pattern_that_matches_nothing_deletes_nothing_and_relations_are_listed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite://cat.db\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"catalog/*.yaml\"]\n",
    );
    write(dir, "catalog/a.yaml", &component("alpha", "team-a"));
    // Both ends of one membership: the Group lists the User, the User names the Group.
    write(
        dir,
        "catalog/b.yaml",
        &format!(
            "{}---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n  members: [ada]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: ada\nspec:\n  memberOf: [team-a]\n",
            component("beta", "team-a")
        ),
    );
    let c = sync_json(dir, &[], 0);
    assert_eq!(c["created"], 4);
    let out = surveyor(dir)
        .args(["entities", "get", "group:team-a", "--format", "json"])
        .assert()
        .success();
    let group: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let members: Vec<&Value> = group["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .filter(|r| r["type"] == "hasMember")
        .collect();
    assert_eq!(members.len(), 1, "one hasMember, from either end: {group}");

    // A typo in the pattern: the scope fails and says which pattern, nothing is deleted.
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite://cat.db\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"catalog/*.yml\"]\n",
    );
    let out = surveyor(dir).args(["validate"]).assert().success();
    let warned = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(warned.contains("catalog/*.yml"), "{warned}");
    let out = surveyor(dir).args(["sync"]).assert().code(1);
    let said = String::from_utf8_lossy(&out.get_output().stderr).to_string()
        + &String::from_utf8_lossy(&out.get_output().stdout);
    assert!(
        said.contains("catalog/*.yml") && said.contains("matched no file"),
        "{said}"
    );
    assert_eq!(
        listed_refs(dir, &["--kind", "component"]),
        ["component:default/alpha", "component:default/beta"]
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "surveyor.toml",
        "[catalog]\ndatabase = \"sqlite://cat.db\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"catalog/*.yaml\"]\n",
    );
    write(dir, "catalog/a.yaml", &component("alpha", "team-a"));
    sync_json(dir, &[], 0);
    // `surveyor entities list | head -0`: the reader is gone before anything is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("surveyor"))
        .current_dir(dir)
        .env_remove("SURVEYOR_CONFIG")
        .args(["entities", "list"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // Ended by SIGPIPE, as `cat` or `grep` would be.
    assert_eq!(out.status.signal(), Some(13), "{:?} {err}", out.status);
}

/// `sync` runs a connector under its lease, like `serve`: while another process holds it, the
/// sync refuses (exit 1), says who holds it, and neither runs nor marks that run abandoned.
#[test]
fn sync_refuses_a_connector_another_process_is_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    surveyor(dir).arg("init").assert().success();
    write(dir, "catalog/a.yaml", &component("svc-a", "team-a"));
    sync_json(dir, &[], 0);

    let url = format!("sqlite://{}", dir.join("surveyor.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(surveyor_store::Store::connect(&url)).unwrap();
    let now = chrono::Utc::now();
    let taken = rt
        .block_on(store.try_lease(
            "catalog-files",
            "serve-host:4242",
            now,
            now + chrono::Duration::seconds(60),
            now,
        ))
        .unwrap();
    assert!(taken);
    rt.block_on(store.insert_run("live-run", "catalog-files", now))
        .unwrap();

    write(dir, "catalog/b.yaml", &component("svc-b", "team-a"));
    let out = surveyor(dir).arg("sync").assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("not run: serve-host:4242 has been running it since"),
        "{stderr}"
    );
    let runs = rt
        .block_on(store.list_runs(Some("catalog-files"), 10))
        .unwrap();
    assert_eq!(runs.len(), 2, "no run was started");
    assert_eq!(runs[0].id, "live-run");
    assert_eq!(runs[0].status, "running", "the live run was left alone");
    assert!(
        rt.block_on(store.get_entity("component:default/svc-b"))
            .unwrap()
            .is_none()
    );

    // Once the holder gives the lease up, sync runs again.
    rt.block_on(store.release_lease("catalog-files", "serve-host:4242", chrono::Utc::now()))
        .unwrap();
    sync_json(dir, &[], 0);

    // A sync killed on this host leaves its lease held for minutes; the next sync sees that
    // its process is gone and takes over at once, marking the dead run abandoned.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let dead = format!("{host}:{pid}");
    let now = chrono::Utc::now();
    assert!(
        rt.block_on(store.try_lease(
            "catalog-files",
            &dead,
            now,
            now + chrono::Duration::seconds(300),
            now
        ))
        .unwrap()
    );
    rt.block_on(store.insert_run("killed-run", "catalog-files", now))
        .unwrap();
    write(dir, "catalog/c.yaml", &component("svc-c", "team-a"));
    assert_eq!(sync_json(dir, &[], 0)["created"], 1);
    let runs = rt
        .block_on(store.list_runs(Some("catalog-files"), 10))
        .unwrap();
    let killed = runs.iter().find(|r| r.id == "killed-run").unwrap();
    assert_eq!(killed.status, "abandoned");
    rt.block_on(store.close());
}
