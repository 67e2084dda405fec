//! SQLite/Postgres parity: one scenario through every op gives the same catalog and history on
//! both backends. Skips (saying so) when SURVEYOR_TEST_DATABASE_URL is unset; CI always sets it.

use serde_json::Value;
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::Observation;
use surveyor_store::{ChangeFilter, EntityFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, component};

async fn step(store: &Store, id: &str, obs: Vec<Observation>, scopes: &[&str]) {
    let c = Scripted::new(id, obs, complete(scopes));
    let opts = ReconcileOptions {
        source_priority: [("gh".to_string(), 0), ("files".to_string(), 1)].into(),
        ..Default::default()
    };
    run_connector(store, &c, &opts).await.expect("run");
}

async fn scenario(store: &Store) {
    let fleet = |n: usize, owner: &str| -> Vec<Observation> {
        (0..n)
            .map(|i| component("org", &format!("id-{i}"), &format!("svc-{i}"), owner))
            .collect()
    };
    step(store, "gh", fleet(20, "team-a"), &["org"]).await;
    let mut declared = component("files", "f#1", "svc-1", "team-declared");
    declared.declared = true;
    step(store, "files", vec![declared], &["files"]).await;
    let mut next = fleet(19, "team-a");
    next[3] = component("org", "id-3", "svc-3", "team-b");
    next[4] = component("org", "id-4", "renamed-4", "team-a");
    step(store, "gh", next.clone(), &["org"]).await;
    step(store, "gh", fleet(20, "team-a"), &["org"]).await;
}

/// Everything observable about a catalog, with generated ids and times left out.
async fn dump(store: &Store) -> Value {
    let entities: Vec<Value> = store
        .list_entities(&EntityFilter {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "ref": e.display_ref,
                "body": serde_json::from_str::<Value>(&e.body).unwrap(),
                "sources": serde_json::from_str::<Value>(&e.sources).unwrap(),
                "hash": e.hash,
                "live": e.is_live(),
            })
        })
        .collect();
    let relations = serde_json::to_value(store.all_relations().await.unwrap()).unwrap();
    let changes: Vec<Value> = store
        .list_changes(&ChangeFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| serde_json::json!({"op": c.op, "ref": c.entity_ref, "previous": c.previous_ref, "patch": c.patch, "source": c.source}))
        .collect();
    serde_json::json!({"entities": entities, "relations": relations, "changes": changes})
}

#[tokio::test]
async fn the_same_scenario_gives_the_same_catalog_on_both_backends() {
    let sqlite = TestStore::sqlite().await;
    let Some(pg) = TestStore::postgres().await else {
        return;
    };
    scenario(&sqlite.store).await;
    scenario(&pg.store).await;
    let a = dump(&sqlite.store).await;
    let b = dump(&pg.store).await;
    assert_eq!(
        a["changes"].as_array().unwrap().len(),
        b["changes"].as_array().unwrap().len()
    );
    assert!(
        a["changes"].as_array().unwrap().len() >= 25,
        "the scenario exercised the ops"
    );
    assert_eq!(a, b);
    sqlite.cleanup().await;
    pg.cleanup().await;
}
