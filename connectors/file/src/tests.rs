//! The connector against a directory of descriptor files.

use super::*;
use surveyor_model::{Collected, Connector, Outcome, ScopeStatus};

fn component(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  owner: t\n"
    )
}

fn location(name: &str, targets: &[&str]) -> String {
    let list: String = targets.iter().map(|t| format!("    - {t}\n")).collect();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  type: file\n  targets:\n{list}"
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn ids(obs: &[Observation]) -> Vec<&str> {
    let mut ids: Vec<&str> = obs.iter().map(|o| o.external_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn problems(outcome: &Outcome) -> Vec<String> {
    outcome.problems.iter().map(ToString::to_string).collect()
}

/// Whether some problem contains every one of `parts`.
fn has_problem(outcome: &Outcome, parts: &[&str]) -> bool {
    problems(outcome)
        .iter()
        .any(|p| parts.iter().all(|part| p.contains(part)))
}

fn is_partial(outcome: &Outcome) -> bool {
    matches!(outcome.status("files"), Some(ScopeStatus::Partial { .. }))
}

async fn crawl(dir: &Path, paths: &[&str]) -> (Vec<Observation>, Outcome) {
    let c = FileConnector::new(
        "files",
        FileConfig {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        },
        dir,
    )
    .unwrap();
    let got = Collected::crawl(&c).await.unwrap();
    (got.observations, got.outcome)
}

#[tokio::test]
async fn reads_good_documents_and_reports_bad_ones_with_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog/team")).unwrap();
    std::fs::write(
        dir.path().join("catalog/team/a.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\nspec:\n  owner: t\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: b_\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("catalog/broken.yaml"), "kind: [unclosed\n").unwrap();
    let (obs, outcome) = crawl(dir.path(), &["catalog/**/*.yaml"]).await;
    assert_eq!(obs.len(), 1);
    assert_eq!(
        obs[0].external_id,
        "catalog/team/a.yaml#component:default/a"
    );
    assert!(obs[0].declared);
    assert_eq!(obs[0].scope, "files");
    let problems: Vec<String> = outcome.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("catalog/broken.yaml:"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("catalog/team/a.yaml (document 2): metadata.name:"),
        "{problems:?}"
    );
    assert!(matches!(
        outcome.status("files"),
        Some(ScopeStatus::Partial { .. })
    ));
}

#[tokio::test]
async fn locations_pull_in_their_targets_once() {
    let dir = tempfile::tempdir().unwrap();
    let comp = |n: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {n}\nspec:\n  owner: t\n"
        )
    };
    std::fs::create_dir_all(dir.path().join("services/a")).unwrap();
    std::fs::write(dir.path().join("services/a/catalog-info.yaml"), comp("a")).unwrap();
    std::fs::write(dir.path().join("services/b.yaml"), comp("b")).unwrap();
    std::fs::write(
        dir.path().join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  type: file\n  targets:\n    - ./services/*/catalog-info.yaml\n    - ./services/b.yaml\n    - ./catalog-info.yaml\n    - https://example.com/remote.yaml\n",
    )
    .unwrap();
    let (obs, outcome) = crawl(dir.path(), &["catalog-info.yaml", "services/b.yaml"]).await;
    let mut ids: Vec<&str> = obs.iter().map(|o| o.external_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![
            "catalog-info.yaml#location:default/root",
            "services/a/catalog-info.yaml#component:default/a",
            "services/b.yaml#component:default/b",
        ]
    );
    assert_eq!(outcome.status("files"), Some(&ScopeStatus::Complete));
}

#[test]
fn rejects_bad_patterns() {
    let e = FileConnector::new(
        "f",
        FileConfig {
            paths: vec!["a/***".into()],
        },
        Path::new("."),
    )
    .unwrap_err();
    assert_eq!(e.key, "paths");
    assert!(
        e.message.starts_with("invalid glob pattern \"a/***\""),
        "{e}"
    );
    let e = FileConnector::new("f", FileConfig { paths: vec![] }, Path::new(".")).unwrap_err();
    assert_eq!(e.key, "paths");
}

#[tokio::test]
async fn a_pattern_that_matches_no_file_fails_the_scope_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog/a.yaml", &component("a"));
    // A typo (`.yml`) must not read as "every entity is gone".
    let (obs, outcome) = crawl(dir.path(), &["catalog/*.yaml", "catalog/*.yml"]).await;
    assert_eq!(ids(&obs), vec!["catalog/a.yaml#component:default/a"]);
    match outcome.status("files") {
        Some(ScopeStatus::Failed { reason }) => {
            assert_eq!(reason, "pattern \"catalog/*.yml\" matched no file");
        }
        other => panic!("{other:?}"),
    }
    // A missing directory and a missing plain file are the same failure.
    let (_, outcome) = crawl(dir.path(), &["nothing/**/*.yaml", "catalog-info.yaml"]).await;
    assert_eq!(
        outcome.status("files").and_then(ScopeStatus::reason),
        Some(
            "pattern \"nothing/**/*.yaml\" matched no file; \
             pattern \"catalog-info.yaml\" matched no file"
        )
    );
}

#[tokio::test]
async fn a_location_target_that_cannot_be_read_is_a_problem_naming_it_and_its_location() {
    // Backstage's FileReaderProcessor (plugins/catalog-backend/src/modules/core/
    // FileReaderProcessor.ts) globs a file Location's target and, when nothing matches,
    // emits a notFoundError "file <target> does not exist" rather than an empty result.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "services/a.yaml", &component("a"));
    write(dir.path(), "other/b.yaml", &component("b"));
    write(
        dir.path(),
        "catalog-info.yaml",
        &location(
            "root",
            &[
                "./services/a.yaml",
                "./services/missing.yaml",
                "./nowhere/*.yaml",
            ],
        ),
    );
    let (obs, outcome) = crawl(dir.path(), &["catalog-info.yaml", "other/*.yaml"]).await;
    assert_eq!(
        ids(&obs),
        vec![
            "catalog-info.yaml#location:default/root",
            "other/b.yaml#component:default/b",
            "services/a.yaml#component:default/a",
        ]
    );
    assert!(is_partial(&outcome), "{:?}", outcome.scopes);
    assert_eq!(
        problems(&outcome),
        vec![
            "catalog-info.yaml: spec.targets: target \"./services/missing.yaml\" of \
             location:default/root: does not exist (matches no file)",
            "catalog-info.yaml: spec.targets: target \"./nowhere/*.yaml\" of \
             location:default/root: does not exist (matches no file)",
        ]
    );
}

#[tokio::test]
async fn what_the_walk_cannot_read_is_a_problem_even_for_root() {
    // Root reads every directory, so these cannot be read whoever runs the test.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog/a.yaml", &component("a"));
    std::os::unix::fs::symlink("gone.yaml", dir.path().join("catalog/dangling.yaml")).unwrap();
    std::fs::create_dir_all(dir.path().join("catalog/dir.yaml")).unwrap();
    write(dir.path(), "catalog/empty.yaml", "");
    write(dir.path(), "catalog/blank.yaml", "\n  \n");
    let _socket =
        std::os::unix::net::UnixListener::bind(dir.path().join("catalog/sock.yaml")).unwrap();
    // Not matched by the pattern: not a problem.
    std::os::unix::fs::symlink("gone", dir.path().join("catalog/unrelated")).unwrap();
    let (obs, outcome) = crawl(dir.path(), &["catalog/*.yaml"]).await;
    assert_eq!(ids(&obs), vec!["catalog/a.yaml#component:default/a"]);
    assert!(is_partial(&outcome));
    assert_eq!(
        problems(&outcome),
        vec![
            "catalog/dangling.yaml: broken symlink: its target does not exist",
            "catalog/dir.yaml: is a directory, not a descriptor file",
            "catalog/sock.yaml: not a regular file",
            "catalog/blank.yaml: empty file: no descriptor in it",
            "catalog/empty.yaml: empty file: no descriptor in it",
        ]
    );
}

#[tokio::test]
async fn an_unreadable_directory_is_a_problem() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog/a.yaml", &component("a"));
    write(dir.path(), "catalog/locked/b.yaml", &component("b"));
    let locked = dir.path().join("catalog/locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        // Root ignores permissions; what_the_walk_cannot_read_is_a_problem_even_for_root
        // covers the same path.
        eprintln!("skipped: this process can read a mode-000 directory (running as root)");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let (obs, outcome) = crawl(dir.path(), &["catalog/**/*.yaml"]).await;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ids(&obs), vec!["catalog/a.yaml#component:default/a"]);
    assert!(is_partial(&outcome));
    assert!(
        has_problem(&outcome, &["catalog/locked: cannot read directory"]),
        "{:?}",
        problems(&outcome)
    );
}

#[tokio::test]
async fn symlink_loops_end_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write(
            dir.path(),
            &format!("catalog/team-{i}/svc.yaml"),
            &component(&format!("svc-{i}")),
        );
    }
    let team = dir.path().join("catalog/team-0");
    std::os::unix::fs::symlink("..", team.join("l1")).unwrap();
    std::os::unix::fs::symlink("..", team.join("l2")).unwrap();
    // Two links that point at each other, and a link to a sibling (an alias, not a loop).
    std::os::unix::fs::symlink("b", team.join("a")).unwrap();
    std::os::unix::fs::symlink("a", team.join("b")).unwrap();
    std::os::unix::fs::symlink("../team-1", team.join("alias")).unwrap();
    let crawl = crawl(dir.path(), &["catalog/**/*.yaml"]);
    // Before the walk was bounded this never ended; the guard turns a hang into a failure.
    let (obs, outcome) = tokio::time::timeout(std::time::Duration::from_secs(300), crawl)
        .await
        .expect("the walk ended");
    assert_eq!(
        ids(&obs),
        vec![
            "catalog/team-0/svc.yaml#component:default/svc-0",
            "catalog/team-1/svc.yaml#component:default/svc-1",
            "catalog/team-2/svc.yaml#component:default/svc-2",
        ]
    );
    assert!(is_partial(&outcome));
    let problems = problems(&outcome);
    for link in ["l1", "l2"] {
        assert!(
            problems.contains(&format!(
                "catalog/team-0/{link}: symlink loop: leads back to \"catalog\", \
                 a directory above it; not followed"
            )),
            "{problems:?}"
        );
    }
    for link in ["a", "b"] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("catalog/team-0/{link}: cannot follow symlink"))),
            "{problems:?}"
        );
    }
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[tokio::test]
async fn descriptors_outside_the_tree_are_refused_unread() {
    let top = tempfile::tempdir().unwrap();
    let base = top.path().join("base");
    write(top.path(), "outside/x.yaml", &component("outside-x"));
    let outside = std::fs::canonicalize(top.path().join("outside/x.yaml")).unwrap();
    write(&base, "catalog/a.yaml", &component("a"));
    std::os::unix::fs::symlink(&outside, base.join("catalog/link.yaml")).unwrap();
    std::os::unix::fs::symlink(top.path().join("outside"), base.join("catalog/ext")).unwrap();
    let absolute = outside.to_string_lossy().into_owned();
    write(
        &base,
        "catalog-info.yaml",
        &location(
            "root",
            &[
                "../outside/*.yaml",
                &absolute,
                "/proc/self/environ",
                "./catalog/link.yaml",
                "./catalog/ext/x.yaml",
            ],
        ),
    );
    let (obs, outcome) = crawl(&base, &["catalog-info.yaml", "catalog/**/*.yaml"]).await;
    assert_eq!(
        ids(&obs),
        vec![
            "catalog-info.yaml#location:default/root",
            "catalog/a.yaml#component:default/a",
        ]
    );
    assert!(is_partial(&outcome));
    let refused = |target: &str| {
        format!(
            "catalog-info.yaml: spec.targets: target {target:?} of location:default/root: \
             outside the catalog directory; not read"
        )
    };
    let problems = problems(&outcome);
    for target in ["../outside/*.yaml", &absolute, "/proc/self/environ"] {
        assert!(problems.contains(&refused(target)), "{problems:?}");
    }
    // A symlinked file or directory inside the tree that leads out of it, by pattern or target.
    assert!(
        problems.contains(
            &"catalog/link.yaml: symlink leads outside the catalog directory; not read".to_string()
        ),
        "{problems:?}"
    );
    assert!(
        problems.contains(
            &"catalog/ext: symlink leads outside the catalog directory; not read".to_string()
        ),
        "{problems:?}"
    );
    assert!(
        problems.contains(&refused("./catalog/ext/x.yaml")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn files_that_are_not_descriptors_are_reported_without_their_values() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "catalog/settings.yaml",
        "database_password: hunter2-sentinel\n---\napiVersion: \"sentinel two\"\nkind: Component\n---\n- sentinel-three\n",
    );
    let (obs, outcome) = crawl(dir.path(), &["catalog/*.yaml"]).await;
    assert!(obs.is_empty());
    let problems = problems(&outcome);
    assert_eq!(
        problems,
        vec![
            "catalog/settings.yaml (document 1): not a Backstage descriptor: apiVersion and kind are missing or invalid",
            "catalog/settings.yaml (document 2): not a Backstage descriptor: apiVersion is missing or invalid",
            "catalog/settings.yaml (document 3): not a Backstage descriptor: the document is not a mapping",
        ]
    );
    assert!(!problems.iter().any(|p| p.contains("sentinel")));
}

#[tokio::test]
async fn a_huge_file_is_refused_by_its_size_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog/a.yaml", &component("a"));
    // Sparse: 64 MiB by its metadata, nothing on disk; a read would allocate all of it.
    let big = std::fs::File::create(dir.path().join("catalog/big.yaml")).unwrap();
    big.set_len(64 << 20).unwrap();
    let (obs, outcome) = crawl(dir.path(), &["catalog/*.yaml"]).await;
    assert_eq!(ids(&obs), vec!["catalog/a.yaml#component:default/a"]);
    assert!(is_partial(&outcome));
    assert_eq!(
        problems(&outcome),
        vec![format!(
            "catalog/big.yaml: file is {} bytes; descriptors are limited to {}; not read",
            64 << 20,
            surveyor_model::descriptor::MAX_DESCRIPTOR_BYTES
        )]
    );
}

#[test]
fn check_warns_about_what_a_crawl_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "catalog/a.yaml",
        &location("a", &["./missing.yaml", "/etc/hostname"]),
    );
    let c = FileConnector::new(
        "files",
        FileConfig {
            paths: vec!["catalog/*.yaml".into(), "catalog/*.yml".into()],
        },
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        c.check(),
        vec![
            "pattern \"catalog/*.yml\" matched no file",
            "catalog/a.yaml: spec.targets: target \"./missing.yaml\" of location:default/a: \
             does not exist (matches no file)",
            "catalog/a.yaml: spec.targets: target \"/etc/hostname\" of location:default/a: \
             outside the catalog directory; not read",
        ]
    );
    write(dir.path(), "catalog/b.yml", &component("b"));
    write(dir.path(), "catalog/missing.yaml", &component("m"));
    write(
        dir.path(),
        "catalog/a.yaml",
        &location("a", &["./missing.yaml"]),
    );
    assert!(c.check().is_empty(), "{:?}", c.check());
}
