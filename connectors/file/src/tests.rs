//! The connector against a directory of descriptor files.

use super::*;
use surveyor_model::{Collected, Outcome, ScopeStatus};

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

#[tokio::test]
async fn an_empty_match_is_a_complete_empty_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (obs, outcome) = crawl(dir.path(), &["nothing/*.yaml"]).await;
    assert!(obs.is_empty());
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
