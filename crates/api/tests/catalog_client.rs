//! Conformance with Backstage's own catalog client: serves a fixture catalog on a loopback port
//! and runs `tests/catalog-client/test.mjs`, which drives `@backstage/catalog-client` (the npm
//! package, pinned) through every read method and asserts on the answers.
//!
//! Needs Node and `npm ci` in `tests/catalog-client` (CI does both). Without them the test says
//! so and passes, except in CI (`CI=true`), where it fails.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use surveyor_api::{ApiConfig, ConnectorView, Control, TriggerRefusal, router, serve};
use surveyor_model::testing::{Scripted, complete};
use surveyor_model::{Entity, Observation, Secret};
use surveyor_store::Store;

const TOKEN: &str = "conformance-operator";

/// Refreshes succeed for the fixture's connector.
struct Accepting;

impl Control for Accepting {
    fn connectors(&self) -> Vec<ConnectorView> {
        Vec::new()
    }
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        match id {
            "gh" => Ok(()),
            _ => Err(TriggerRefusal::Unknown(id.to_string())),
        }
    }
}

/// Twelve components read from descriptor files (`catalog/svc-NN.yaml`), every third with an
/// annotation, owned by the group `team-a`.
fn fixture() -> Vec<Observation> {
    let mut out: Vec<Observation> = (0..12)
        .map(|i| {
            let name = format!("svc-{i:02}");
            let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
            if i % 3 == 0 {
                v["metadata"]["annotations"] = json!({"surveyor.dev/tier": "gold"});
            }
            Observation::declared(
                "org",
                format!("catalog/{name}.yaml#component:default/{name}"),
                Entity::from_value(v).expect("entity"),
            )
        })
        .collect();
    let mut group = Entity::new("Group", "default", "team-a");
    group.spec.insert("type".into(), json!("team"));
    group.spec.insert("children".into(), json!([]));
    out.push(Observation::discovered("org", "g-a", group));
    out
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/catalog-client")
}

/// Why the Node side cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !folder()
        .join("node_modules/@backstage/catalog-client")
        .is_dir()
    {
        return Some(format!(
            "{}/node_modules is missing: run `npm ci` there",
            folder().display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`node` is not installed".into()),
    }
}

#[tokio::test]
async fn backstage_catalog_client_reads_the_catalog() {
    if let Some(why) = missing() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "the catalog-client conformance test cannot run in CI: {why}"
        );
        eprintln!("skipped: the catalog-client conformance test needs Node: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .expect("store");
    let source = Scripted::new("gh", fixture(), complete(&["org"]));
    surveyor_engine::run_connector(&store, &source, &Default::default())
        .await
        .expect("sync");
    let config = ApiConfig {
        // Smaller than the catalog, so whole lists and cursors cross pages.
        max_page_size: 5,
        trigger_tokens: vec![Secret::new(TOKEN)],
        ..ApiConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(store, config, Some(Arc::new(Accepting)));
    let server = tokio::spawn(async move {
        let _ = serve(listener, app, std::future::pending()).await;
    });

    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("test.mjs")
            .arg(format!("http://{addr}"))
            .arg(TOKEN)
            .current_dir(folder())
            .output()
    });
    // A liveness bound only: the script makes a few dozen requests to a local server.
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the catalog-client script finished within 120 s")
        .expect("join")
        .expect("node runs");
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "Backstage's catalog client disagrees with the API:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
