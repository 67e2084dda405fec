//! Property tests for the reconciler (proptest): for any sequence of complete and partial
//! snapshots of two scopes, the catalog matches the model, partial scopes never delete, the
//! change log replays to the catalog, and repeating a snapshot writes nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use surveyor_engine::{ReconcileOptions, replay, run_connector};
use surveyor_model::{Observation, Outcome};
use surveyor_tests::{Scripted, TestStore, component, owners};

const SCOPES: [&str; 2] = ["org-a", "org-b"];
const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// One crawl: for each scope, what it saw (external id -> (name, owner variant)) and whether
/// the crawl of that scope was complete.
#[derive(Debug, Clone)]
struct Snapshot {
    scopes: Vec<(ScopeItems, bool)>,
}

/// External id -> (name index, owner variant).
type ScopeItems = BTreeMap<u8, (u8, u8)>;

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let scope = (
        prop::collection::btree_map(0u8..5, (0u8..4, 0u8..3), 0..5),
        prop::bool::weighted(0.7),
    );
    prop::collection::vec(scope, 2).prop_map(|scopes| Snapshot { scopes })
}

fn ext_id(scope: usize, id: u8) -> String {
    format!("{}-{id}", SCOPES[scope])
}

fn observations(s: &Snapshot) -> (Vec<Observation>, Outcome) {
    let mut obs = Vec::new();
    let mut outcome = Outcome::default();
    for (i, (items, complete)) in s.scopes.iter().enumerate() {
        for (id, (name, owner)) in items {
            obs.push(component(
                SCOPES[i],
                &ext_id(i, *id),
                NAMES[*name as usize],
                &format!("team-{owner}"),
            ));
        }
        if *complete {
            outcome.complete(SCOPES[i]);
        } else {
            outcome.partial(SCOPES[i], "simulated failure");
        }
    }
    (obs, outcome)
}

/// The model: live observations per external id -> (name, owner).
fn apply_model(model: &mut BTreeMap<String, (u8, u8)>, s: &Snapshot) {
    for (i, (items, complete)) in s.scopes.iter().enumerate() {
        if *complete {
            model.retain(|k, _| !k.starts_with(&format!("{}-", SCOPES[i])));
        }
        for (id, v) in items {
            model.insert(ext_id(i, *id), *v);
        }
    }
}

/// The catalog the model implies: name -> owner of the winning (lowest) external id.
fn expected(model: &BTreeMap<String, (u8, u8)>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, (name, owner)) in model.iter() {
        out.entry(format!("component:default/{}", NAMES[*name as usize]))
            .or_insert_with(|| format!("team-{owner}"));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn catalog_follows_the_last_complete_snapshot(snaps in prop::collection::vec(snapshot(), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let ts = TestStore::sqlite().await;
            let s = &ts.store;
            // The guard is tested elsewhere; here every deletion the rules allow must happen.
            let opts = ReconcileOptions { max_delete_ratio: 1.0, ..Default::default() };
            let mut model = BTreeMap::new();
            for snap in &snaps {
                let before = live_ids(s).await;
                let (obs, outcome) = observations(snap);
                let c = Scripted::new("gh", obs.clone(), outcome.clone());
                run_connector(s, &c, &opts).await.unwrap();
                apply_model(&mut model, snap);
                let now = owners(s).await;
                assert_eq!(now, expected(&model), "snapshot {snap:?}");
                // A partial scope loses no observation (a thing may be renamed, never deleted).
                let after = live_ids(s).await;
                for (i, (_, complete)) in snap.scopes.iter().enumerate() {
                    if !complete {
                        for (id, scope) in &before {
                            if scope == SCOPES[i] {
                                assert!(after.contains_key(id), "a partial crawl deleted {id}");
                            }
                        }
                    }
                }
                replay::verify(s).await.unwrap();
                // The same crawl again writes nothing but a run row.
                let counts = s.table_counts().await.unwrap();
                let c = Scripted::new("gh", obs, outcome);
                let r = run_connector(s, &c, &opts).await.unwrap();
                assert_eq!(r.counts.entities.changes(), 0);
                let again = s.table_counts().await.unwrap();
                assert_eq!((again.entities, again.relations, again.observations, again.changes),
                           (counts.entities, counts.relations, counts.observations, counts.changes));
            }
            ts.cleanup().await;
        });
    }
}

async fn live_ids(s: &surveyor_store::Store) -> BTreeMap<String, String> {
    s.observation_index("gh")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.live)
        .map(|o| (o.external_id, o.scope))
        .collect()
}
