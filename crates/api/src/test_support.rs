//! What the API's test modules share: a source that reports a fixed catalog, the team that
//! owns it, and the router on a loopback port over a catalog synced from that source.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use surveyor_model::testing::{Scripted, complete};
use surveyor_model::{Entity, Observation};
use surveyor_store::Store;

use crate::{ApiConfig, Control, router, serve};

/// The group `team-a`, with no children.
pub(crate) fn team_a() -> Observation {
    let mut group = Entity::new("Group", "default", "team-a");
    group.spec.insert("type".into(), json!("team"));
    group.spec.insert("children".into(), json!([]));
    Observation::discovered("org", "g-a", group)
}

/// Syncs `observations` into `store` (as source `gh`), then serves the API over it on a free
/// loopback port until the returned task is dropped with the test.
pub(crate) async fn sync_and_serve(
    store: Store,
    observations: Vec<Observation>,
    config: ApiConfig,
    control: Option<Arc<dyn Control>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    sync(&store, observations).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(store, config, control);
    let task = tokio::spawn(async move {
        let _ = serve(listener, app, std::future::pending()).await;
    });
    (addr, task)
}

/// Syncs `observations` into `store` as source `gh`, all in the complete scope `org`.
pub(crate) async fn sync(store: &Store, observations: Vec<Observation>) {
    let source = Scripted::new("gh", observations, complete(&["org"]));
    surveyor_engine::run_connector(store, &source, &Default::default())
        .await
        .expect("sync");
}

/// The `metadata.name` of each entity in a list (none when there is no list).
pub(crate) fn names_in(list: Option<&Vec<Value>>) -> Vec<String> {
    list.into_iter()
        .flatten()
        .map(|e| {
            e["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A scorecard for tests that walk every route: `readiness`, bronze needs an owner.
pub(crate) fn readiness() -> surveyor_model::score::Scorecard {
    use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};
    Scorecard {
        name: "readiness".into(),
        title: "Readiness".into(),
        applies_to: AppliesTo::default(),
        levels: vec!["bronze".into()],
        checks: vec![Check::new(
            "owned",
            "bronze",
            Test::Relation("ownedBy".into()),
        )],
    }
}
