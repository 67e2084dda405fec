//! `[[identity]]` rules: two sources that name one service differently meet in one entity, and
//! refs to the other name follow. Without a rule they stay apart (no guessing). Identity
//! annotations, verified emails and `[[groups]]` mappings join differently named things too.

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
                ..Identity::default()
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

fn annotated(ext: &str, name: &str, key: &str, value: &str, declared: bool) -> Observation {
    let mut o = component("s", ext, name, "team-a");
    o.entity
        .metadata
        .annotations
        .insert(key.to_string(), value.to_string());
    o.declared = declared;
    o
}

/// The annotation PagerDuty's service id is declared with.
const PD: &str = "pagerduty.com/service-id";

/// `payments` declared in `file`, naming PagerDuty's service PABC1.
fn declared_payments(file: &str) -> Observation {
    annotated(file, "payments", PD, "PABC1", true)
}

/// PagerDuty's service PABC1, `payments-prod`: on call, owned by team-b.
fn paged_payments() -> Observation {
    on_call(annotated("PABC1", "payments-prod", PD, "PABC1", false))
}

fn on_call(mut o: Observation) -> Observation {
    o.entity
        .spec
        .insert("onCall".into(), serde_json::json!({"covered": true}));
    o.entity.spec.insert("owner".into(), "team-b".into());
    o
}

async fn live(store: &Store, key: &str) -> Option<serde_json::Value> {
    store
        .get_entity(key)
        .await
        .expect("get")
        .filter(|row| row.deleted_at.is_none())
        .map(|row| serde_json::json!({"body": serde_json::from_str::<serde_json::Value>(&row.body).expect("body"), "sources": serde_json::from_str::<serde_json::Value>(&row.sources).expect("sources")}))
}

#[tokio::test]
async fn an_identity_annotation_joins_a_differently_named_service_in_either_order() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = ReconcileOptions {
            source_priority: [("catalog".to_string(), 0), ("pagerduty".to_string(), 1)].into(),
            ..ReconcileOptions::default()
        };
        let declared = || vec![declared_payments("catalog-info.yaml")];
        let paged = || {
            vec![
                paged_payments(),
                on_call(annotated("PXYZ9", "status-page", PD, "PXYZ9", false)),
            ]
        };

        // PagerDuty first: its service is an entity of its own until the declaration arrives.
        sync(store, "pagerduty", paged(), &options).await;
        assert!(
            live(store, "component:default/payments-prod")
                .await
                .is_some()
        );
        sync(store, "catalog", declared(), &options).await;
        let merged = live(store, "component:default/payments")
            .await
            .expect("one entity");
        assert_eq!(
            merged["sources"].as_array().map(Vec::len),
            Some(2),
            "{backend}: {merged}"
        );
        assert_eq!(
            merged["body"]["spec"]["owner"], "team-a",
            "{backend}: declared wins"
        );
        assert_eq!(
            merged["body"]["spec"]["onCall"]["covered"], true,
            "{backend}"
        );
        assert!(
            live(store, "component:default/payments-prod")
                .await
                .is_none(),
            "{backend}: the PagerDuty name is gone"
        );
        assert!(
            live(store, "component:default/status-page").await.is_some(),
            "{backend}: a service nothing declares stays itself"
        );
        // A resync of either side changes nothing.
        sync(store, "pagerduty", paged(), &options).await;
        sync(store, "catalog", declared(), &options).await;
        assert!(
            live(store, "component:default/payments-prod")
                .await
                .is_none()
        );
        assert_eq!(
            live(store, "component:default/payments")
                .await
                .expect("kept")["sources"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );

        // The declaration goes: PagerDuty's service is itself again.
        // (A complete scope that drops to nothing is refused unless the run allows it.)
        let removal = ReconcileOptions {
            allow_mass_delete: true,
            ..options.clone()
        };
        sync(store, "catalog", Vec::new(), &removal).await;
        assert!(
            live(store, "component:default/payments").await.is_none(),
            "{backend}"
        );
        let back = live(store, "component:default/payments-prod")
            .await
            .expect("restored under its own name");
        assert_eq!(back["body"]["spec"]["owner"], "team-b", "{backend}");
        ts.cleanup().await;
    }

    // Declaration first: PagerDuty's service never appears under its own name.
    for ts in TestStore::all().await {
        let store = &ts.store;
        let options = ReconcileOptions::default();
        let declared = vec![declared_payments("catalog-info.yaml")];
        sync(store, "catalog", declared, &options).await;
        sync(store, "pagerduty", vec![paged_payments()], &options).await;
        assert!(
            live(store, "component:default/payments-prod")
                .await
                .is_none()
        );
        let changes = store
            .list_changes(&surveyor_store::ChangeFilter::default())
            .await
            .expect("changes");
        assert!(
            !changes
                .iter()
                .any(|c| c.entity_ref.contains("payments-prod")),
            "{}: no trace of the other name: {changes:?}",
            ts.backend
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_key_two_declarations_claim_joins_neither() {
    for ts in TestStore::all().await {
        let store = &ts.store;
        let options = ReconcileOptions::default();
        let declared = vec![
            declared_payments("a.yaml"),
            annotated("b.yaml", "billing", PD, "PABC1", true),
        ];
        sync(store, "catalog", declared, &options).await;
        sync(store, "pagerduty", vec![paged_payments()], &options).await;
        for key in [
            "component:default/payments",
            "component:default/billing",
            "component:default/payments-prod",
        ] {
            assert!(live(store, key).await.is_some(), "{}: {key}", ts.backend);
        }
        ts.cleanup().await;
    }
}

fn person(ext: &str, name: &str, email: &str) -> Observation {
    let mut e = surveyor_model::Entity::new("User", "default", name);
    e.spec
        .insert("profile".into(), serde_json::json!({"email": email}));
    e.spec.insert("memberOf".into(), serde_json::json!([]));
    Observation::discovered("s", ext, e)
}

/// GitHub's names win over PagerDuty's.
fn github_first() -> ReconcileOptions {
    ReconcileOptions {
        source_priority: [("github".to_string(), 0), ("pagerduty".to_string(), 1)].into(),
        ..ReconcileOptions::default()
    }
}

/// Component `payments`, which depends on PagerDuty's name for Ada.
fn on_ada_lovelace(ext: &str) -> Observation {
    let mut svc = component("s", ext, "payments", "team-a");
    svc.entity
        .spec
        .insert("dependsOn".into(), serde_json::json!(["user:ada.lovelace"]));
    svc
}

/// PagerDuty's name for Ada names no entity of its own, and `payments` depends on the person
/// under GitHub's name.
async fn joined_ada(store: &Store, backend: &str) {
    assert!(
        live(store, "user:default/ada.lovelace").await.is_none(),
        "{backend}"
    );
    let rels = store
        .relations_of("component:default/payments")
        .await
        .expect("relations");
    assert!(
        rels.iter()
            .any(|r| r.kind == "dependsOn" && r.target_ref == "user:default/ada"),
        "{backend}: the ref to PagerDuty's name follows the person: {rels:?}"
    );
}

#[tokio::test]
async fn people_meet_by_verified_email_and_refs_to_either_name_follow() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = github_first();
        // PagerDuty names people by their address; its service says who is on call.
        let svc = on_ada_lovelace("PABC1");
        sync(
            store,
            "pagerduty",
            vec![person("PU1", "ada.lovelace", "Ada@Acme.example"), svc],
            &options,
        )
        .await;
        sync(
            store,
            "github",
            vec![
                person("MDQ6VXNlcjE=", "ada", "ada@acme.example"),
                person("MDQ6VXNlcjI=", "grace", "grace@acme.example"),
            ],
            &options,
        )
        .await;
        let ada = live(store, "user:default/ada").await.expect("one person");
        assert_eq!(
            ada["sources"].as_array().map(Vec::len),
            Some(2),
            "{backend}: {ada}"
        );
        joined_ada(store, backend).await;
        ts.cleanup().await;
    }
}

/// A sync writes its changes in chunks of 1,000 observations. A relation one chunk wrote is
/// found when the next chunk's identity resolution moves the name it points at, and follows.
/// (A reconcile that let the next chunk read before the previous chunk's writes would miss it.)
#[tokio::test]
async fn a_ref_written_one_chunk_before_its_target_joins_another_name_follows() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = github_first();
        sync(
            store,
            "pagerduty",
            vec![person("PU1", "ada.lovelace", "Ada@Acme.example")],
            &options,
        )
        .await;
        // Chunk 1: 999 components, then one that depends on PagerDuty's name for Ada; chunk 2:
        // GitHub's Ada, who has the same address and so takes PagerDuty's person in.
        let mut obs: Vec<Observation> = (0..999)
            .map(|i| component("s", &format!("R{i}"), &format!("svc-{i}"), "team-a"))
            .collect();
        obs.push(on_ada_lovelace("RX"));
        obs.push(person("MDQ6VXNlcjE=", "ada", "ada@acme.example"));
        sync(store, "github", obs, &options).await;
        joined_ada(store, backend).await;
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn group_mappings_make_one_team_of_each_sources_name() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = ReconcileOptions {
            identity: Arc::new(Identity {
                groups: [(
                    "pagerduty".to_string(),
                    [("payments-team".to_string(), "payments".to_string())].into(),
                )]
                .into(),
                ..Identity::default()
            }),
            ..ReconcileOptions::default()
        };
        let team = |ext: &str, name: &str| {
            let mut e = surveyor_model::Entity::new("Group", "default", name);
            e.spec.insert("type".into(), "team".into());
            e.spec.insert("children".into(), serde_json::json!([]));
            Observation::discovered("s", ext, e)
        };
        sync(store, "github", vec![team("T1", "payments")], &options).await;
        sync(
            store,
            "pagerduty",
            vec![
                team("PT1", "payments-team"),
                component("s", "PABC1", "ledger", "group:payments-team"),
            ],
            &options,
        )
        .await;
        let group = live(store, "group:default/payments").await.expect("group");
        assert_eq!(
            group["sources"].as_array().map(Vec::len),
            Some(2),
            "{backend}"
        );
        assert!(live(store, "group:default/payments-team").await.is_none());
        let ledger = live(store, "component:default/ledger")
            .await
            .expect("ledger");
        assert_eq!(
            ledger["body"]["spec"]["owner"], "group:default/payments",
            "{backend}"
        );
        ts.cleanup().await;
    }
}

#[test]
fn groups_in_the_config_map_each_sources_name_and_name_mistakes() {
    use surveyor_engine::config::{Config, KindSpec};
    const KINDS: &[KindSpec] = &[
        KindSpec {
            name: "github",
            keys: &["orgs"],
        },
        KindSpec {
            name: "pagerduty",
            keys: &["subdomain"],
        },
    ];
    let text = r#"
[[connectors]]
id = "gh"
kind = "github"
orgs = ["acme"]

[[connectors]]
id = "pd"
kind = "pagerduty"
subdomain = "acme"

[[groups]]
name = "payments"
gh = "payments"
pd = "Payments Team"
"#;
    let config = Config::parse(text, std::path::Path::new("s.toml"), KINDS).expect("valid");
    assert_eq!(
        config.identity.groups["pd"]["payments-team"], "payments",
        "the source's name is compared as an entity name"
    );
    let bad = text.replace("pd = \"Payments Team\"", "jira = \"PAY\"");
    let errors = Config::parse(&bad, std::path::Path::new("s.toml"), KINDS)
        .expect_err("jira is no connector here")
        .to_string();
    assert!(
        errors.contains("s.toml:15:1") && errors.contains("groups[0].jira"),
        "{errors}"
    );
    let nameless = text.replace("name = \"payments\"\n", "");
    let errors = Config::parse(&nameless, std::path::Path::new("s.toml"), KINDS)
        .expect_err("a group needs its catalog name")
        .to_string();
    assert!(errors.contains("missing key `name`"), "{errors}");
}

#[tokio::test]
async fn workloads_find_the_component_that_declares_their_kubernetes_id() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let options = ReconcileOptions::default();
        let workload = || {
            let mut e = surveyor_model::Entity::new("Resource", "default", "payments-api.pay.prod");
            e.spec.insert("type".into(), "kubernetes-workload".into());
            e.spec.insert("owner".into(), "team-a".into());
            e.spec.insert(
                "dependencyOf".into(),
                serde_json::json!(["component:default/payments-api"]),
            );
            e.metadata
                .annotations
                .insert("backstage.io/kubernetes-id".into(), "payments-api".into());
            vec![Observation::discovered("s", "uid-1", e)]
        };
        let points_at = |rels: &[surveyor_store::RelationRow], target: &str| {
            rels.iter()
                .any(|r| r.kind == "dependencyOf" && r.target_ref == target)
        };
        // Workloads first, then the declaration that claims their id.
        sync(store, "k8s", workload(), &options).await;
        let declared = annotated(
            "catalog-info.yaml",
            "payments",
            "backstage.io/kubernetes-id",
            "payments-api",
            true,
        );
        sync(store, "catalog", vec![declared], &options).await;
        let rels = store
            .relations_of("resource:default/payments-api.pay.prod")
            .await
            .expect("relations");
        assert!(
            points_at(&rels, "component:default/payments"),
            "{backend}: {rels:?}"
        );
        // Not an identity: the workload stays its own entity.
        assert!(
            live(store, "resource:default/payments-api.pay.prod")
                .await
                .is_some()
        );
        // The declaration goes: the workload points at the name it gave again.
        // (A complete scope that drops to nothing is refused unless the run allows it.)
        let removal = ReconcileOptions {
            allow_mass_delete: true,
            ..options.clone()
        };
        sync(store, "catalog", Vec::new(), &removal).await;
        let rels = store
            .relations_of("resource:default/payments-api.pay.prod")
            .await
            .expect("relations");
        assert!(
            points_at(&rels, "component:default/payments-api"),
            "{backend}: {rels:?}"
        );
        ts.cleanup().await;
    }
}
