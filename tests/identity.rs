//! `[[identity]]` rules: two sources that name one service differently meet in one entity, and
//! refs to the other name follow. Without a rule they stay apart (no guessing).

use std::sync::Arc;

use surveyor_engine::identity::{Identity, IdentityRule};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::Observation;
use surveyor_store::Store;
use surveyor_tests::{Scripted, TestStore, complete, component};

async fn sync(store: &Store, id: &str, obs: Vec<Observation>, options: &ReconcileOptions) {
    let c = Scripted::new(id, obs, complete(&["s"]));
    run_connector(store, &c, options).await.expect("run");
}

fn observations() -> (Vec<Observation>, Vec<Observation>) {
    let github = component("s", "R1", "payments-api", "team-a");
    let mut pagerduty = component("s", "P1", "Payments_Service", "team-b");
    pagerduty
        .entity
        .spec
        .insert("onCall".into(), serde_json::json!({"covered": true}));
    let mut checkout = component("s", "R2", "checkout", "team-a");
    checkout.entity.spec.insert(
        "dependsOn".into(),
        serde_json::json!(["component:payments-api"]),
    );
    (vec![github, checkout], vec![pagerduty])
}

#[tokio::test]
async fn a_rule_makes_two_names_one_entity() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = ReconcileOptions {
            source_priority: [("github".to_string(), 0), ("pagerduty".to_string(), 1)].into(),
            identity: Arc::new(Identity {
                rules: vec![IdentityRule {
                    kinds: vec!["component".into()],
                    separators: true,
                    strip_suffixes: vec!["-service".into(), "-api".into()],
                    aliases: Default::default(),
                }],
            }),
            ..ReconcileOptions::default()
        };
        let (gh, pd) = observations();
        sync(store, "github", gh, &options).await;
        sync(store, "pagerduty", pd, &options).await;
        let row = store
            .get_entity("component:default/payments")
            .await
            .expect("get")
            .expect("one entity for both names");
        let body: serde_json::Value = serde_json::from_str(&row.body).expect("body");
        assert_eq!(body["spec"]["owner"], "team-a", "{backend}: github first");
        assert_eq!(
            body["spec"]["onCall"]["covered"], true,
            "{backend}: pagerduty's field"
        );
        let claims: Vec<serde_json::Value> = serde_json::from_str(&row.sources).expect("claims");
        assert_eq!(claims.len(), 2, "{backend}");
        let rels = store
            .relations_of("component:default/checkout")
            .await
            .expect("relations");
        assert!(
            rels.iter()
                .any(|r| r.kind == "dependsOn" && r.target_ref == "component:default/payments"),
            "{backend}: the ref to the old name follows: {rels:?}"
        );
        for gone in [
            "component:default/payments-api",
            "component:default/payments_service",
        ] {
            assert!(
                store.get_entity(gone).await.expect("get").is_none(),
                "{backend}: {gone}"
            );
        }

        // Without a rule, two names are two entities.
        let plain = TestStore::all().await;
        for other in plain {
            let (gh, pd) = observations();
            sync(&other.store, "github", gh, &ReconcileOptions::default()).await;
            sync(&other.store, "pagerduty", pd, &ReconcileOptions::default()).await;
            assert!(
                other
                    .store
                    .get_entity("component:default/payments-api")
                    .await
                    .expect("get")
                    .is_some()
            );
            assert!(
                other
                    .store
                    .get_entity("component:default/payments_service")
                    .await
                    .expect("get")
                    .is_some()
            );
            other.cleanup().await;
        }
        ts.cleanup().await;
    }
}
