//! Identity that survives renames: once observations of several sources are one entity, a
//! rename at one source renames that entity (same uid, one `renamed` change) or, where another
//! source names it, leaves it where it is; the other sources' observations stay joined to it,
//! whatever order the sources report in, and the old name answers as an alias. No transient
//! entity under the old name, no created/deleted pair. The same for a person whose login
//! changes at one source. SQLite always, Postgres in CI.

use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_model::Observation;
use surveyor_store::{ChangeOp, Store};
use surveyor_tests::{Scripted, TestStore, complete, component, ops_since};

fn options() -> ReconcileOptions {
    ReconcileOptions {
        source_priority: [
            ("github".to_string(), 0),
            ("jira".to_string(), 1),
            ("pagerduty".to_string(), 2),
        ]
        .into(),
        ..ReconcileOptions::default()
    }
}

async fn sync(store: &Store, source: &str, obs: Vec<Observation>) {
    let c = Scripted::new(source, obs, complete(&["s"]));
    let r = run_connector(store, &c, &options()).await.expect("run");
    assert!(r.problems.is_empty(), "{r:?}");
}

/// The uid of the live entity at `key`, if any.
async fn uid(store: &Store, key: &str) -> Option<String> {
    store
        .get_entity(key)
        .await
        .expect("get")
        .filter(|e| e.is_live())
        .map(|e| e.uid)
}

/// Sources of the entity at `key`.
async fn sources(store: &Store, key: &str) -> Vec<String> {
    let row = store.get_entity(key).await.expect("get").expect("entity");
    let claims: Vec<serde_json::Value> = serde_json::from_str(&row.sources).expect("claims");
    let mut out: Vec<String> = claims
        .iter()
        .filter_map(|c| c["source"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn with_description(mut o: Observation, text: &str) -> Observation {
    o.entity.metadata.description = Some(text.into());
    o
}

const OLD: &str = "component:default/svc";
const NEW: &str = "component:default/svc-v2";

#[tokio::test]
async fn the_naming_source_renames_and_the_others_follow() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let mut seen = 0;
        sync(store, "github", vec![component("s", "R1", "svc", "team-a")]).await;
        sync(store, "jira", vec![component("s", "J1", "svc", "team-a")]).await;
        sync(
            store,
            "pagerduty",
            vec![component("s", "P1", "svc", "team-a")],
        )
        .await;
        let _ = ops_since(store, &mut seen).await;
        let before = uid(store, OLD).await.expect("joined entity");

        sync(
            store,
            "github",
            vec![component("s", "R1", "svc-v2", "team-a")],
        )
        .await;
        assert_eq!(
            ops_since(store, &mut seen).await,
            [(ChangeOp::Renamed, NEW.to_string())],
            "{backend}: one rename, no entity under the old name"
        );
        assert_eq!(uid(store, NEW).await.as_deref(), Some(before.as_str()));
        assert_eq!(uid(store, OLD).await, None, "{backend}");
        assert_eq!(sources(store, NEW).await, ["github", "jira", "pagerduty"]);
        // The old name answers for the entity.
        let aliases = store.all_aliases().await.expect("aliases");
        assert!(
            aliases.contains(&(OLD.to_string(), NEW.to_string())),
            "{backend}: {aliases:?}"
        );

        // The others report again, changed or not, still under the old name: they stay.
        sync(
            store,
            "jira",
            vec![with_description(
                component("s", "J1", "svc", "team-a"),
                "new words",
            )],
        )
        .await;
        sync(
            store,
            "pagerduty",
            vec![component("s", "P1", "svc", "team-a")],
        )
        .await;
        let ops = ops_since(store, &mut seen).await;
        assert!(
            ops.iter()
                .all(|(op, r)| *op == ChangeOp::Updated && r == NEW),
            "{backend}: {ops:?}"
        );
        assert_eq!(uid(store, OLD).await, None, "{backend}: no split");
        assert_eq!(sources(store, NEW).await, ["github", "jira", "pagerduty"]);

        // Jira follows the rename: nothing changes but where its own name points.
        sync(
            store,
            "jira",
            vec![component("s", "J1", "svc-v2", "team-a")],
        )
        .await;
        let ops = ops_since(store, &mut seen).await;
        assert!(
            ops.iter()
                .all(|(op, r)| *op == ChangeOp::Updated && r == NEW),
            "{backend}: {ops:?}"
        );
        assert_eq!(uid(store, NEW).await.as_deref(), Some(before.as_str()));
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_rename_reported_first_by_another_source_splits_nothing() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let mut seen = 0;
        sync(store, "github", vec![component("s", "R1", "svc", "team-a")]).await;
        sync(store, "jira", vec![component("s", "J1", "svc", "team-a")]).await;
        let _ = ops_since(store, &mut seen).await;
        let before = uid(store, OLD).await.expect("joined entity");

        // Jira sees the new name first: GitHub still names the entity, so it stays; Jira's
        // new name is an alias of it.
        sync(
            store,
            "jira",
            vec![component("s", "J1", "svc-v2", "team-a")],
        )
        .await;
        let ops = ops_since(store, &mut seen).await;
        assert!(
            ops.iter()
                .all(|(op, r)| *op == ChangeOp::Updated && r == OLD),
            "{backend}: no entity under the new name yet: {ops:?}"
        );
        assert_eq!(uid(store, NEW).await, None, "{backend}");
        assert_eq!(sources(store, OLD).await, ["github", "jira"]);

        // Then GitHub: the entity is renamed once, with both.
        sync(
            store,
            "github",
            vec![component("s", "R1", "svc-v2", "team-a")],
        )
        .await;
        assert_eq!(
            ops_since(store, &mut seen).await,
            [(ChangeOp::Renamed, NEW.to_string())],
            "{backend}"
        );
        assert_eq!(uid(store, NEW).await.as_deref(), Some(before.as_str()));
        assert_eq!(sources(store, NEW).await, ["github", "jira"]);
        assert_eq!(uid(store, OLD).await, None, "{backend}");
        ts.cleanup().await;
    }
}

fn person(external_id: &str, name: &str, email: &str) -> Observation {
    let mut e = surveyor_model::Entity::new("User", "default", name);
    e.spec.insert(
        "profile".into(),
        serde_json::json!({"email": email, "displayName": "Ada Lovelace"}),
    );
    e.spec.insert("memberOf".into(), serde_json::json!([]));
    Observation::discovered("s", external_id, e)
}

#[tokio::test]
async fn a_login_changed_at_one_source_keeps_the_person() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let mut seen = 0;
        sync(
            store,
            "github",
            vec![person("U1", "ada", "ada@acme.example")],
        )
        .await;
        sync(
            store,
            "pagerduty",
            vec![person("PU1", "ada.l", "ada@acme.example")],
        )
        .await;
        let _ = ops_since(store, &mut seen).await;
        let before = uid(store, "user:default/ada").await.expect("one person");

        // PagerDuty's login changes; GitHub still names the person.
        sync(
            store,
            "pagerduty",
            vec![person("PU1", "a.lovelace", "ada@acme.example")],
        )
        .await;
        let ops = ops_since(store, &mut seen).await;
        assert!(
            !ops.iter()
                .any(|(op, _)| matches!(op, ChangeOp::Created | ChangeOp::Deleted)),
            "{backend}: {ops:?}"
        );
        assert_eq!(
            uid(store, "user:default/ada").await.as_deref(),
            Some(before.as_str())
        );
        assert_eq!(uid(store, "user:default/a.lovelace").await, None);

        // GitHub's login changes: the person is renamed, once, and stays one.
        sync(
            store,
            "github",
            vec![person("U1", "ada-lovelace", "ada@acme.example")],
        )
        .await;
        assert_eq!(
            ops_since(store, &mut seen).await,
            [(ChangeOp::Renamed, "user:default/ada-lovelace".to_string())],
            "{backend}"
        );
        assert_eq!(
            uid(store, "user:default/ada-lovelace").await.as_deref(),
            Some(before.as_str())
        );
        assert_eq!(
            sources(store, "user:default/ada-lovelace").await,
            ["github", "pagerduty"]
        );

        // The person leaves GitHub; PagerDuty still knows them: the same person lives on under
        // the name they have (not a deletion and a new person, not a rename); PagerDuty says
        // nothing else of them, so nothing but the provenance changes.
        let c = Scripted::new("github", Vec::new(), complete(&["s"]));
        let opts = ReconcileOptions {
            allow_mass_delete: true,
            ..options()
        };
        run_connector(store, &c, &opts).await.expect("run");
        let ops = ops_since(store, &mut seen).await;
        assert_eq!(ops, [], "{backend}");
        assert_eq!(
            uid(store, "user:default/ada-lovelace").await.as_deref(),
            Some(before.as_str())
        );
        assert_eq!(
            sources(store, "user:default/ada-lovelace").await,
            ["pagerduty"]
        );
        // Then PagerDuty lets them go too: the person is deleted where they were.
        let c = Scripted::new("pagerduty", Vec::new(), complete(&["s"]));
        run_connector(store, &c, &opts).await.expect("run");
        assert_eq!(
            ops_since(store, &mut seen).await,
            [(ChangeOp::Deleted, "user:default/ada-lovelace".to_string())],
            "{backend}"
        );
        ts.cleanup().await;
    }
}

fn team(external_id: &str, name: &str) -> Observation {
    let mut e = surveyor_model::Entity::new("Group", "default", name);
    e.spec.insert("type".into(), "team".into());
    e.spec.insert("children".into(), serde_json::json!([]));
    e.spec.insert("members".into(), serde_json::json!(["ada"]));
    Observation::discovered("s", external_id, e)
}

#[tokio::test]
async fn an_owner_named_by_an_old_name_resolves_to_the_renamed_team() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let ada = person("U1", "ada", "ada@acme.example");
        sync(store, "github", vec![team("T1", "team-a"), ada.clone()]).await;
        sync(
            store,
            "jira",
            vec![component("s", "J1", "svc", "group:default/team-a")],
        )
        .await;
        let sources = surveyor_audit::Sources::default();
        let unresolved = |findings: &[surveyor_audit::Finding]| {
            findings
                .iter()
                .any(|f| f.rule == "owner-unresolved" && f.entity == OLD)
        };
        let before = surveyor_audit::ownership(store, &sources)
            .await
            .expect("audit");
        assert!(!unresolved(&before), "{backend}: {before:?}");
        // The team is renamed at GitHub; Jira still names it by its old name.
        sync(store, "github", vec![team("T1", "team-x"), ada]).await;
        assert!(uid(store, "group:default/team-x").await.is_some());
        let after = surveyor_audit::ownership(store, &sources)
            .await
            .expect("audit");
        assert!(
            !unresolved(&after),
            "{backend}: the old name answers: {after:?}"
        );
        ts.cleanup().await;
    }
}
