//! A relation two entities both imply (a Group's `spec.members` and a User's `spec.memberOf`)
//! is listed once on every route that shows relations.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation};

use crate::ApiConfig;
use crate::test_support::{sync_and_serve, team_a};

fn catalog() -> Vec<Observation> {
    let mut group = team_a();
    group
        .entity
        .spec
        .insert("members".into(), json!(["alice", "bob"]));
    let user = |name: &str| {
        let mut u = Entity::new("User", "default", name);
        u.spec.insert("memberOf".into(), json!(["team-a"]));
        Observation::discovered("org", format!("u-{name}"), u)
    };
    let mut svc = Entity::new("Component", "default", "svc");
    svc.spec.insert("type".into(), json!("service"));
    svc.spec.insert("lifecycle".into(), json!("production"));
    svc.spec.insert("owner".into(), json!("team-a"));
    vec![
        group,
        user("alice"),
        user("bob"),
        Observation::discovered("org", "c-svc", svc),
    ]
}

/// Every (type, targetRef) of an entity document's relations; fails on a duplicate.
fn relations_once(doc: &Value, route: &str) -> BTreeSet<(String, String)> {
    let list = doc["relations"]
        .as_array()
        .unwrap_or_else(|| panic!("{route}: no relations in {doc}"));
    let mut seen = BTreeSet::new();
    for r in list {
        let pair = (
            r["type"].as_str().unwrap_or_default().to_string(),
            r["targetRef"].as_str().unwrap_or_default().to_string(),
        );
        assert!(seen.insert(pair.clone()), "{route}: {pair:?} listed twice");
    }
    seen
}

#[tokio::test]
async fn a_relation_both_ends_imply_is_listed_once_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = surveyor_store::Store::connect(&url).await.expect("store");
    let (addr, _task) = sync_and_serve(store.clone(), catalog(), ApiConfig::default(), None).await;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let r = client.get(path).send().await.expect("request");
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let members: BTreeSet<(String, String)> = ["alice", "bob"]
        .iter()
        .map(|u| ("hasMember".to_string(), format!("user:default/{u}")))
        .collect();

    // The store itself.
    let rows = store
        .relations_of("group:default/team-a")
        .await
        .expect("rows");
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.kind.clone(), r.target_ref.clone()))
        .collect();
    let unique: BTreeSet<(String, String)> = pairs.iter().cloned().collect();
    assert_eq!(pairs.len(), unique.len(), "store: {pairs:?}");
    assert!(members.is_subset(&unique), "store: {pairs:?}");

    let one = get(format!("{base}/api/v1/entities/group/default/team-a")).await;
    assert!(members.is_subset(&relations_once(&one, "/api/v1 entity")));
    let by_name = get(format!(
        "{base}/api/catalog/entities/by-name/group/default/team-a"
    ))
    .await;
    assert!(members.is_subset(&relations_once(&by_name, "by-name")));

    // Lists: our own, Backstage's, and by-query.
    let lists = [
        ("/api/v1 list", format!("{base}/api/v1/entities?kind=group")),
        (
            "backstage list",
            format!("{base}/api/catalog/entities?filter=kind=group"),
        ),
        (
            "by-query",
            format!("{base}/api/catalog/entities/by-query?filter=kind=group"),
        ),
    ];
    for (route, url) in lists {
        let doc = get(url).await;
        let items = doc
            .as_array()
            .or_else(|| doc["items"].as_array())
            .unwrap_or_else(|| panic!("{route}: {doc}"));
        assert_eq!(items.len(), 1, "{route}: {doc}");
        assert!(
            members.is_subset(&relations_once(&items[0], route)),
            "{route}"
        );
    }
    // A User's side: memberOf once.
    let alice = get(format!("{base}/api/v1/entities/user/default/alice")).await;
    assert!(
        relations_once(&alice, "user")
            .contains(&("memberOf".to_string(), "group:default/team-a".to_string()))
    );
}
