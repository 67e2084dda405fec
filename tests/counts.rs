//! Property test for a run's counts: on any sequence of crawls by two sources over two scopes
//! (complete or partial, names that collide, owners that change), every scope reports what
//! the source sent it and its observations add up (observed = new + changed + unchanged +
//! rejected); the run's counts are the sum of its scopes'; each entity a run changed is
//! counted once; the catalog's live entities move by exactly created + restored - deleted,
//! run by run and over the whole sequence taken as one sync; and a sync into an empty catalog
//! creates everything it holds and updates nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use surveyor_engine::{Counts, EntityCounts, ReconcileOptions, run_connector};
use surveyor_model::{Observation, Outcome};
use surveyor_tests::{Scripted, TestStore, component, owners};

const SCOPES: [&str; 2] = ["org-a", "org-b"];
const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
const SOURCES: [&str; 2] = ["gh", "gl"];

/// One crawl: its source, and per scope the items seen (external id -> (name, owner)) and
/// whether the scope was crawled completely.
type Crawl = (usize, Vec<(BTreeMap<u8, (u8, u8)>, bool)>);

fn crawl() -> impl Strategy<Value = Crawl> {
    let scope = (
        prop::collection::btree_map(0u8..5, (0u8..4, 0u8..3), 0..5),
        prop::bool::weighted(0.7),
    );
    (0usize..2, prop::collection::vec(scope, 2))
}

fn observations(c: &Crawl) -> (Vec<Observation>, Outcome, BTreeMap<String, u64>) {
    let mut obs = Vec::new();
    let mut outcome = Outcome::default();
    let mut sent = BTreeMap::new();
    for (i, (items, complete)) in c.1.iter().enumerate() {
        for (id, (name, owner)) in items {
            obs.push(component(
                SCOPES[i],
                &format!("{}-{id}", SCOPES[i]),
                NAMES[*name as usize],
                &format!("team-{owner}"),
            ));
        }
        sent.insert(SCOPES[i].to_string(), items.len() as u64);
        if *complete {
            outcome.complete(SCOPES[i]);
        } else {
            outcome.partial(SCOPES[i], "simulated failure");
        }
    }
    (obs, outcome, sent)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn counts_add_up(crawls in prop::collection::vec(crawl(), 1..7)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let ts = TestStore::sqlite().await;
            let s = &ts.store;
            let opts = ReconcileOptions {
                max_delete_ratio: 1.0,
                source_priority: [("gh".to_string(), 0), ("gl".to_string(), 1)].into(),
                ..Default::default()
            };
            let mut reports = Vec::new();
            for c in &crawls {
                let before = owners(s).await.len() as i64;
                let (obs, outcome, sent) = observations(c);
                let source = SOURCES[c.0];
                let r = run_connector(s, &Scripted::new(source, obs, outcome), &opts)
                    .await
                    .unwrap();
                let mut sum = Counts::default();
                for scope in &r.scopes {
                    let expected = sent.get(&scope.scope).copied().unwrap_or(0);
                    let o = &scope.counts.observations;
                    assert_eq!(o.observed, expected, "{}: {r:?}", scope.scope);
                    assert_eq!(
                        o.observed,
                        o.new + o.changed + o.unchanged + o.rejected,
                        "{}: observations add up: {r:?}", scope.scope
                    );
                    sum.add(&scope.counts);
                }
                for scope in sent.keys() {
                    assert!(r.scopes.iter().any(|s| &s.scope == scope), "{scope} reported");
                }
                assert_eq!(r.counts, sum, "the run is the sum of its scopes");
                assert_eq!(
                    r.counts.entities.touched(),
                    r.scopes.iter().map(|s| s.counts.entities.touched()).sum::<u64>(),
                    "{r:?}"
                );
                assert_eq!(r.counts.observations.observed, sent.values().sum::<u64>());
                let after = owners(s).await.len() as i64;
                let c = &r.counts.entities;
                assert_eq!(
                    after - before,
                    c.created as i64 + c.restored as i64 - c.deleted as i64,
                    "live entities move by created + restored - deleted: {r:?}"
                );
                // Each entity the run changed is counted once (its change rows, by uid).
                let uids: std::collections::BTreeSet<String> = s
                    .list_changes(&surveyor_store::ChangeFilter {
                        limit: Some(1_000_000),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|ch| ch.run_id == r.run_id)
                    .map(|ch| ch.entity_uid)
                    .collect();
                let once = EntityCounts::of_sync(std::slice::from_ref(&r));
                assert!(once.changes() <= uids.len() as u64, "{once:?} {uids:?}");
                reports.push(r);
                // The crawls so far as one sync into the empty catalog: everything it holds
                // was created by it, nothing was updated, renamed, deleted or restored.
                let sync = EntityCounts::of_sync(&reports);
                assert_eq!(
                    (sync.created as i64, sync.updated, sync.renamed, sync.deleted, sync.restored),
                    (after, 0, 0, 0, 0),
                    "a sync into an empty catalog: {sync:?}"
                );
            }
            ts.cleanup().await;
        });
    }
}
