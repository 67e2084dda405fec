//! Classification end to end, on SQLite and Postgres: Components synced from several sources
//! get a tier, stack, lifecycle, domain and system with evidence; a declared tier wins; the
//! values are recorded by difference (a value kept keeps its `since`); and the store's
//! classification filters find the Components (`--tier`, `--stack`).

use serde_json::json;
use surveyor_model::classify::{ClassifyRules, TierRule};
use surveyor_model::{Entity, Observation};
use surveyor_store::{EntityFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, sync_once};

fn service(name: &str) -> Entity {
    let mut e = Entity::new("Component", "default", name);
    e.spec.insert("type".into(), "service".into());
    e.spec.insert("lifecycle".into(), "production".into());
    e.spec.insert("owner".into(), "group:default/team-a".into());
    e
}

/// A repository source: languages and manifests.
fn repos() -> Scripted {
    let mut checkout = service("checkout");
    checkout.metadata.tags = vec!["typescript".into()];
    checkout.spec.insert(
        "packageDependencies".into(),
        json!([{"ecosystem": "npm", "file": "package.json", "package": "react",
                "requirement": "^18.2.0", "scope": "runtime"},
               {"ecosystem": "npm", "file": "package.json", "package": "payments-lib",
                "requirement": "^1", "scope": "runtime"}]),
    );
    checkout
        .spec
        .insert("dependsOn".into(), json!(["component:default/payments"]));
    let mut payments = service("payments");
    payments.metadata.tags = vec!["rust".into()];
    payments
        .spec
        .insert("lifecycle".into(), "deprecated".into());
    let mut ledger = service("ledger");
    ledger
        .spec
        .insert("dependsOn".into(), json!(["component:default/payments"]));
    let mut workload = Entity::new("Resource", "default", "payments.shop.prod");
    workload.metadata.title = Some("Deployment shop/payments (prod)".into());
    workload
        .spec
        .insert("type".into(), "kubernetes-workload".into());
    workload.spec.insert("cluster".into(), "prod".into());
    workload.spec.insert("namespace".into(), "shop".into());
    workload.spec.insert("replicas".into(), json!(4));
    workload
        .spec
        .insert("images".into(), json!(["eclipse-temurin:21-jre"]));
    workload
        .spec
        .insert("dependencyOf".into(), json!(["component:default/payments"]));
    Scripted::new(
        "github",
        vec![
            Observation::discovered("acme", "r1", checkout),
            Observation::discovered("acme", "r2", payments),
            Observation::discovered("acme", "r3", ledger),
            Observation::discovered("acme", "w1", workload),
        ],
        complete(&["acme"]),
    )
}

/// PagerDuty's word on checkout: paged at high urgency, covered now.
fn paging(urgency: &str) -> Scripted {
    let mut checkout = service("checkout");
    checkout.spec.insert(
        "onCall".into(),
        json!({"covered": true, "urgency": urgency, "levels": 2}),
    );
    Scripted::new(
        "pagerduty",
        vec![Observation::discovered("account", "PV1", checkout)],
        complete(&["account"]),
    )
}

/// A descriptor declaring ledger's tier.
fn descriptors() -> Scripted {
    let mut ledger = service("ledger");
    ledger
        .metadata
        .annotations
        .insert("surveyor.dev/tier".into(), "Tier-0".into());
    Scripted::new(
        "files",
        vec![Observation::declared("files", "ledger.yaml", ledger)],
        complete(&["files"]),
    )
}

async fn classes(store: &Store, entity: &str) -> Vec<(String, String, bool)> {
    store
        .classifications_of(entity)
        .await
        .expect("classifications")
        .into_iter()
        .map(|c| (c.facet, c.value, c.declared))
        .collect()
}

async fn refs(store: &Store, facet: &str, value: &str) -> Vec<String> {
    store
        .list_entities(&EntityFilter {
            classified: vec![(facet.into(), value.into())],
            ..EntityFilter::default()
        })
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.entity_ref)
        .collect()
}

#[tokio::test]
async fn components_are_classified_from_evidence_and_recorded_by_difference() {
    for t in TestStore::all().await {
        let store = &t.store;
        let backend = t.backend;
        for c in [repos(), paging("high"), descriptors()] {
            sync_once(store, &c).await;
        }
        let rules = ClassifyRules::default();
        let first = surveyor_grade::record(store, &rules, chrono::Utc::now())
            .await
            .expect("record");
        assert_eq!((first.updated, first.removed), (0, 0), "{backend}");

        let checkout = classes(store, "component:default/checkout").await;
        assert!(
            checkout.contains(&("tier".into(), "tier-1".into(), false)),
            "{backend}: on call at high urgency is tier-1: {checkout:?}"
        );
        assert!(
            checkout.contains(&("stack".into(), "typescript/react".into(), false)),
            "{backend}: {checkout:?}"
        );
        let payments = classes(store, "component:default/payments").await;
        for want in [
            ("tier", "tier-2"),
            ("lifecycle", "deprecated"),
            ("runtime", "jvm"),
            ("system", "shop"),
            ("stack", "rust"),
        ] {
            assert!(
                payments.contains(&(want.0.into(), want.1.into(), false)),
                "{backend}: payments should have {want:?}: {payments:?}"
            );
        }
        let ledger = classes(store, "component:default/ledger").await;
        assert!(
            ledger.contains(&("tier".into(), "tier-0".into(), true)),
            "{backend}: a declared tier wins: {ledger:?}"
        );
        let evidence = store
            .classifications_of("component:default/checkout")
            .await
            .expect("evidence")
            .into_iter()
            .find(|c| c.facet == "tier")
            .expect("a tier")
            .evidence;
        assert!(
            evidence.contains("incident urgency high") && evidence.contains("pagerduty"),
            "{backend}: {evidence}"
        );

        // Filters, as `--tier` and `--stack` use them: a language matches its frameworks.
        assert_eq!(
            refs(store, "tier", "tier-1").await,
            ["component:default/checkout"]
        );
        assert_eq!(
            refs(store, "stack", "TypeScript").await,
            ["component:default/checkout"]
        );
        assert!(refs(store, "stack", "typescript/vue").await.is_empty());
        assert!(
            refs(store, "stack", "types").await.is_empty(),
            "{backend}: a prefix that is no whole language matches nothing"
        );

        // Nothing changed: nothing written; `since` stays.
        let since = |rows: Vec<surveyor_store::ClassificationRow>| {
            rows.into_iter()
                .find(|c| c.facet == "tier")
                .map(|c| c.since)
        };
        let before = since(
            store
                .classifications_of("component:default/payments")
                .await
                .expect("rows"),
        );
        let again = surveyor_grade::record(store, &rules, chrono::Utc::now())
            .await
            .expect("again");
        assert_eq!(
            (again.added, again.updated, again.removed),
            (0, 0, 0),
            "{backend}"
        );
        assert_eq!(
            since(
                store
                    .classifications_of("component:default/payments")
                    .await
                    .expect("rows")
            ),
            before,
            "{backend}"
        );

        // PagerDuty lowers checkout's urgency: tier-1 goes, tier-2 comes (on call still).
        sync_once(store, &paging("low")).await;
        let moved = surveyor_grade::record(store, &rules, chrono::Utc::now())
            .await
            .expect("moved");
        assert_eq!((moved.added, moved.removed), (1, 1), "{backend}: {moved:?}");
        assert!(refs(store, "tier", "tier-1").await.is_empty(), "{backend}");

        // Configured rules replace the defaults: two dependents make payments tier-1.
        let custom = ClassifyRules {
            tiers: vec![TierRule {
                tier: "tier-1".into(),
                min_dependents: Some(2),
                ..TierRule::default()
            }],
            ..ClassifyRules::default()
        };
        surveyor_grade::record(store, &custom, chrono::Utc::now())
            .await
            .expect("custom");
        assert_eq!(
            refs(store, "tier", "tier-1").await,
            ["component:default/payments"],
            "{backend}"
        );
        assert_eq!(
            refs(store, "tier", "tier-3").await,
            ["component:default/checkout"],
            "{backend}: no rule holds: the default tier"
        );
        t.cleanup().await;
    }
}
