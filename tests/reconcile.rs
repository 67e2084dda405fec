//! The reconcile semantics of DESIGN.md, each tested on SQLite and (in CI) on Postgres.

use surveyor_engine::replay;
use surveyor_engine::{ReconcileOptions, RunStatus, run_connector};
use surveyor_model::{Observation, Outcome};
use surveyor_store::{ChangeFilter, ChangeOp, EntityFilter, EntityRow, Store};
use surveyor_tests::{Scripted, TestStore, complete, component, owners};

async fn run(
    store: &Store,
    id: &str,
    obs: Vec<Observation>,
    outcome: Outcome,
) -> surveyor_engine::RunReport {
    run_with(store, id, obs, outcome, &ReconcileOptions::default()).await
}

/// `--allow-mass-delete`.
fn allow_mass_delete() -> ReconcileOptions {
    ReconcileOptions {
        allow_mass_delete: true,
        ..ReconcileOptions::default()
    }
}

/// A complete crawl of scope `org` by source `gh`.
async fn crawl(store: &Store, obs: Vec<Observation>) -> surveyor_engine::RunReport {
    run(store, "gh", obs, complete(&["org"])).await
}

async fn run_with(
    store: &Store,
    id: &str,
    obs: Vec<Observation>,
    outcome: Outcome,
    options: &ReconcileOptions,
) -> surveyor_engine::RunReport {
    let c = Scripted::new(id, obs, outcome);
    run_connector(store, &c, options).await.expect("run")
}

fn fleet(n: usize, owner: &str) -> Vec<Observation> {
    (0..n)
        .map(|i| component("org", &format!("id-{i}"), &format!("svc-{i}"), owner))
        .collect()
}

/// The row of `key`, live or a tombstone.
async fn entity(store: &Store, key: &str) -> Option<EntityRow> {
    store.get_entity(key).await.unwrap()
}

async fn ops(store: &Store) -> Vec<(ChangeOp, String)> {
    store
        .list_changes(&ChangeFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.op, c.entity_ref))
        .collect()
}

#[tokio::test]
async fn create_then_no_change_writes_nothing() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let r = crawl(s, fleet(10, "team-a")).await;
        assert_eq!(
            (r.status, r.counts.entities.created),
            (RunStatus::Succeeded, 10),
            "{}",
            ts.backend
        );
        let before = s.table_counts().await.unwrap();
        assert_eq!(before.relations, 20, "ownedBy + ownerOf per entity");
        let r = crawl(s, fleet(10, "team-a")).await;
        assert_eq!(r.counts.entities.changes(), 0);
        assert_eq!(r.counts.observations.unchanged, 10);
        let after = s.table_counts().await.unwrap();
        assert_eq!(after.runs, before.runs + 1, "only the run row is written");
        assert_eq!(
            (
                after.entities,
                after.relations,
                after.observations,
                after.changes
            ),
            (
                before.entities,
                before.relations,
                before.observations,
                before.changes
            )
        );
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn updates_carry_an_rfc6902_patch() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        let mut next = fleet(10, "team-a");
        next[3] = component("org", "id-3", "svc-3", "team-b");
        let r = crawl(s, next).await;
        assert_eq!(
            (r.counts.entities.updated, r.counts.observations.unchanged),
            (1, 9),
            "{}",
            ts.backend
        );
        let changes = s.list_changes(&ChangeFilter::default()).await.unwrap();
        let last = changes.last().unwrap();
        assert_eq!(last.op, ChangeOp::Updated);
        assert_eq!(last.entity_ref, "component:default/svc-3");
        assert_eq!(
            last.patch,
            serde_json::json!([{"op": "replace", "path": "/spec/owner", "value": "team-b"}])
        );
        let owned = s
            .list_entities(&EntityFilter {
                owner: Some("group:default/team-b".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(owned.len(), 1);
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_new_name_for_the_same_external_id_is_a_rename() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        let uid = entity(s, "component:default/svc-2").await.unwrap().uid;
        let mut next = fleet(10, "team-a");
        next[2] = component("org", "id-2", "payments", "team-a");
        let r = crawl(s, next).await;
        assert_eq!(
            (
                r.counts.entities.renamed,
                r.counts.entities.created,
                r.counts.entities.deleted
            ),
            (1, 0, 0),
            "{}",
            ts.backend
        );
        let e = entity(s, "component:default/payments").await.unwrap();
        assert_eq!(e.uid, uid, "identity survives the rename");
        assert!(entity(s, "component:default/svc-2").await.is_none());
        let history = s
            .list_changes(&ChangeFilter {
                entity_uid: s.resolve_uid("component:default/svc-2").await.unwrap(),
                ..Default::default()
            })
            .await
            .unwrap();
        let h: Vec<ChangeOp> = history.iter().map(|c| c.op).collect();
        assert_eq!(h, vec![ChangeOp::Created, ChangeOp::Renamed]);
        assert_eq!(
            history[1].previous_ref.as_deref(),
            Some("component:default/svc-2")
        );
        let rels = s.relations_of("group:default/team-a").await.unwrap();
        assert!(
            rels.iter()
                .any(|r| r.target_ref == "component:default/payments")
        );
        assert!(
            !rels
                .iter()
                .any(|r| r.target_ref == "component:default/svc-2")
        );
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn partial_and_failed_scopes_delete_nothing() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        let mut partial = Outcome::default();
        partial.partial("org", "page 2 returned 502");
        let r = run(s, "gh", fleet(3, "team-a"), partial).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Partial, 0),
            "{}",
            ts.backend
        );

        let c = Scripted::failing("gh", fleet(2, "team-a"), "401 Bad credentials");
        let r = run_connector(s, &c, &ReconcileOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0)
        );
        assert!(r.error.unwrap().contains("401"));

        // A scope the connector never reported is not complete either.
        let r = run(s, "gh", fleet(1, "team-a"), Outcome::default()).await;
        assert_eq!(r.counts.entities.deleted, 0);
        assert_eq!(
            s.list_entities(&EntityFilter::default())
                .await
                .unwrap()
                .len(),
            10
        );
        let runs = s.list_runs(Some("gh"), 10).await.unwrap();
        // Its only scope failed (unreported), so the run read nothing reliable: failed.
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[1].status, "failed");
        assert_eq!(runs[2].status, "partial");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn the_guard_refuses_mass_deletion_until_overridden() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        // 2 of 10 is exactly the limit: allowed.
        let r = crawl(s, fleet(8, "team-a")).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 2),
            "{}",
            ts.backend
        );
        // 3 of 8 is over it: refused, loudly, and recorded; updates in the same run still land.
        let mut next = fleet(5, "team-a");
        next[0] = component("org", "id-0", "svc-0", "team-z");
        let r = crawl(s, next.clone()).await;
        assert_eq!(
            (
                r.status,
                r.counts.entities.deleted,
                r.counts.entities.updated
            ),
            (RunStatus::Failed, 0, 1)
        );
        assert_eq!(r.scopes[0].refused[0].would_delete, 3);
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("deletion guard refused")
        );
        assert_eq!(
            s.list_entities(&EntityFilter::default())
                .await
                .unwrap()
                .len(),
            8
        );
        let run_row = &s.list_runs(Some("gh"), 1).await.unwrap()[0];
        assert_eq!(run_row.status, "failed");
        // --allow-mass-delete, once.
        let opts = allow_mass_delete();
        let r = run_with(s, "gh", next, complete(&["org"]), &opts).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 3)
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_returning_thing_is_restored_with_its_history() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        let uid = entity(s, "component:default/svc-9").await.unwrap().uid;
        crawl(s, fleet(9, "team-a")).await;
        let tomb = entity(s, "component:default/svc-9").await.unwrap();
        assert!(!tomb.is_live(), "{}", ts.backend);
        assert!(
            s.relations_of("component:default/svc-9")
                .await
                .unwrap()
                .is_empty()
        );
        let r = crawl(s, fleet(10, "team-a")).await;
        assert_eq!(r.counts.entities.restored, 1);
        let back = entity(s, "component:default/svc-9").await.unwrap();
        assert_eq!(back.uid, uid);
        let h: Vec<ChangeOp> = s
            .list_changes(&ChangeFilter {
                entity_uid: Some(uid),
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|c| c.op)
            .collect();
        assert_eq!(
            h,
            vec![ChangeOp::Created, ChangeOp::Deleted, ChangeOp::Restored]
        );
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn declared_wins_and_the_other_source_takes_over_when_it_goes() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let mut declared = component(
            "files",
            "catalog.yaml#component:default/svc-1",
            "svc-1",
            "team-declared",
        );
        declared.declared = true;
        crawl(s, fleet(3, "team-a")).await;
        let r = run(s, "files", vec![declared], complete(&["files"])).await;
        assert_eq!(r.counts.entities.updated, 1, "{}", ts.backend);
        let e = entity(s, "component:default/svc-1").await.unwrap();
        assert!(e.body.contains("team-declared"));
        let sources: serde_json::Value = serde_json::from_str(&e.sources).unwrap();
        assert_eq!(sources.as_array().unwrap().len(), 2);
        assert!(
            sources
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["source"] == "files" && c["winner"] == true)
        );
        // The descriptor goes away: GitHub's view takes over; the entity is not deleted.
        let r = run_with(
            s,
            "files",
            vec![],
            complete(&["files"]),
            &allow_mass_delete(),
        )
        .await;
        assert_eq!(
            (r.counts.entities.updated, r.counts.entities.deleted),
            (1, 0)
        );
        let e = entity(s, "component:default/svc-1").await.unwrap();
        assert!(e.is_live() && e.body.contains("team-a"));
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        let before = s.table_counts().await.unwrap();
        let opts = ReconcileOptions {
            dry_run: true,
            ..Default::default()
        };
        let mut next = fleet(9, "team-b");
        next.push(component("org", "id-new", "brand-new", "team-b"));
        let r = run_with(s, "gh", next, complete(&["org"]), &opts).await;
        assert_eq!(
            (
                r.counts.entities.updated,
                r.counts.entities.created,
                r.counts.entities.deleted
            ),
            (9, 1, 1),
            "{}",
            ts.backend
        );
        assert_eq!(s.table_counts().await.unwrap(), before);
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn retention_purges_tombstones_but_keeps_history() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(5, "team-a")).await;
        crawl(s, fleet(4, "team-a")).await;
        let changes_before = s.table_counts().await.unwrap().changes;
        let (entities, observations) = s
            .purge_tombstones(chrono::Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!((entities, observations), (1, 1), "{}", ts.backend);
        assert!(entity(s, "component:default/svc-4").await.is_none());
        assert_eq!(s.table_counts().await.unwrap().changes, changes_before);
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn an_aborted_run_leaves_the_catalog_before_or_after_never_between() {
    // Not a timing assertion: whatever moment the run is dropped at, the state is one of two.
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(300, "team-a")).await;
        let before = owners(s).await;
        for delay_us in [0u64, 200, 1_000, 3_000, 10_000, 30_000] {
            let store = s.clone();
            let task = tokio::spawn(async move {
                let c = Scripted::new(
                    "gh",
                    fleet(300, &format!("team-{delay_us}")),
                    complete(&["org"]),
                );
                run_connector(&store, &c, &ReconcileOptions::default()).await
            });
            tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
            task.abort();
            let _ = task.await;
            let now = owners(s).await;
            let owners: std::collections::BTreeSet<String> = now.values().cloned().collect();
            assert!(
                now == before || owners.len() == 1,
                "{}: mixed state after abort at {delay_us}us",
                ts.backend
            );
            replay::verify(s).await.unwrap();
        }
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn ops_are_reported_in_order() {
    let ts = TestStore::sqlite().await;
    let s = &ts.store;
    crawl(s, fleet(2, "team-a")).await;
    let got = ops(s).await;
    assert_eq!(
        got,
        vec![
            (ChangeOp::Created, "component:default/svc-0".to_string()),
            (ChangeOp::Created, "component:default/svc-1".to_string())
        ]
    );
    ts.cleanup().await;
}

#[tokio::test]
async fn a_mass_rename_collision_is_refused_even_in_a_partial_scope() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        run(s, "k8s", fleet(10, "team-a"), complete(&["org"])).await;
        let before = owners(s).await;
        // Every workload now reports the same name: nine entities would vanish.
        let collided: Vec<Observation> = (0..10)
            .map(|i| component("org", &format!("id-{i}"), "svc", "team-a"))
            .collect();
        let mut partial = Outcome::default();
        partial.partial("org", "page 2 failed");
        let r = run(s, "k8s", collided, partial).await;
        assert_eq!(r.status, RunStatus::Failed, "{}", ts.backend);
        assert!(r.refused());
        assert_eq!(r.counts.entities.deleted, 0);
        assert_eq!(
            owners(s).await,
            before,
            "the scope's transaction was rolled back"
        );
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_scope_the_connector_stops_reporting_is_failed_loudly() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let mut both = fleet(3, "team-a");
        both.push(component("org-b", "b-1", "other", "team-b"));
        run(s, "gh", both, complete(&["org", "org-b"])).await;
        let r = crawl(s, fleet(3, "team-a")).await;
        assert_eq!(r.status, RunStatus::Partial, "{}", ts.backend);
        let b = r
            .scopes
            .iter()
            .find(|x| x.scope == "org-b")
            .expect("org-b reported");
        assert!(b.status.reason().unwrap().contains("did not report"));
        assert!(
            entity(s, "component:default/other")
                .await
                .unwrap()
                .is_live()
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn renames_follow_the_external_id() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let uid = |name: &'static str| async move {
            s.get_entity(&format!("component:default/{name}"))
                .await
                .unwrap()
                .unwrap()
                .uid
        };
        // The old name is reused by someone else in the same crawl.
        crawl(
            s,
            vec![
                component("org", "id1", "payments", "t"),
                component("org", "id2", "ledger", "t"),
            ],
        )
        .await;
        let payments_uid = uid("payments").await;
        crawl(
            s,
            vec![
                component("org", "id1", "payments-old", "t"),
                component("org", "id2", "ledger", "t"),
                component("org", "id3", "payments", "t"),
            ],
        )
        .await;
        assert_eq!(
            uid("payments-old").await,
            payments_uid,
            "{}: the uid moved with id1",
            ts.backend
        );
        assert_ne!(uid("payments").await, payments_uid);

        // A chain: ledger -> ledger-legacy while id3 takes "ledger".
        let ledger_uid = uid("ledger").await;
        let payments3_uid = uid("payments").await;
        crawl(
            s,
            vec![
                component("org", "id1", "payments-old", "t"),
                component("org", "id2", "ledger-legacy", "t"),
                component("org", "id3", "ledger", "t"),
            ],
        )
        .await;
        assert_eq!(uid("ledger-legacy").await, ledger_uid);
        assert_eq!(
            uid("ledger").await,
            payments3_uid,
            "id3 took its uid to the new name"
        );
        assert!(entity(s, "component:default/payments").await.is_none());

        // A rename onto a name whose entity was deleted earlier: the tombstone gives way.
        let allow = allow_mass_delete();
        run_with(
            s,
            "gh",
            vec![
                component("org", "id1", "payments-old", "t"),
                component("org", "id3", "ledger", "t"),
            ],
            complete(&["org"]),
            &allow,
        )
        .await;
        let tomb = entity(s, "component:default/ledger-legacy").await.unwrap();
        assert!(!tomb.is_live());
        let mover = uid("payments-old").await;
        crawl(
            s,
            vec![
                component("org", "id1", "ledger-legacy", "t"),
                component("org", "id3", "ledger", "t"),
            ],
        )
        .await;
        assert_eq!(uid("ledger-legacy").await, mover);
        replay::verify(s).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn many_renames_across_batches_are_all_renames() {
    let ts = TestStore::sqlite().await;
    let s = &ts.store;
    crawl(s, fleet(1500, "t")).await;
    let renamed: Vec<Observation> = (0..1500)
        .map(|i| component("org", &format!("id-{i}"), &format!("renamed-{i}"), "t"))
        .collect();
    let r = run_with(s, "gh", renamed, complete(&["org"]), &allow_mass_delete()).await;
    assert_eq!(
        (
            r.counts.entities.renamed,
            r.counts.entities.created,
            r.counts.entities.deleted
        ),
        (1500, 0, 0)
    );
    replay::verify(s).await.unwrap();
    ts.cleanup().await;
}

#[tokio::test]
async fn a_nul_character_is_a_problem_not_a_failed_run() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let mut obs = fleet(3, "team-a");
        obs[1].entity.metadata.description = Some("bad\u{0}value".into());
        let r = run(s, "files", obs, complete(&["org"])).await;
        assert_eq!(r.counts.entities.created, 2, "{}", ts.backend);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].message.contains("NUL"));
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_runs_of_two_sources_on_one_ref_stay_consistent() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let opts = ReconcileOptions {
            source_priority: [("files".to_string(), 0), ("gh".to_string(), 1)].into(),
            max_delete_ratio: 1.0,
            ..Default::default()
        };
        for round in 0..5 {
            let files = if round % 2 == 0 {
                let mut d = component("files", "f1", "svc-0", &format!("declared-{round}"));
                d.declared = true;
                vec![d]
            } else {
                vec![]
            };
            let (a, b) = (s.clone(), s.clone());
            let (o1, o2) = (opts.clone(), opts.clone());
            let gh = fleet(3, &format!("gh-{round}"));
            let t1 = tokio::spawn(async move {
                run_connector(
                    &a,
                    &Scripted::new("files", files, complete(&["files"])),
                    &o1,
                )
                .await
            });
            let t2 = tokio::spawn(async move {
                run_connector(&b, &Scripted::new("gh", gh, complete(&["org"])), &o2).await
            });
            t1.await.unwrap().unwrap();
            t2.await.unwrap().unwrap();
            let expected = if round % 2 == 0 {
                format!("declared-{round}")
            } else {
                format!("gh-{round}")
            };
            assert_eq!(
                owners(s).await["component:default/svc-0"],
                expected,
                "{} round {round}",
                ts.backend
            );
            replay::verify(s).await.unwrap();
        }
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn an_empty_answer_from_one_source_is_refused_even_when_another_keeps_the_entities() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        crawl(s, fleet(10, "team-a")).await;
        run(s, "k8s", fleet(10, "team-a"), complete(&["org"])).await;
        // The cluster answers "no workloads" (a broken RBAC binding, say).
        let r = run(s, "k8s", vec![], complete(&["org"])).await;
        assert!(r.refused(), "{}", ts.backend);
        let live = s
            .observation_index("k8s")
            .await
            .unwrap()
            .iter()
            .filter(|o| o.live)
            .count();
        assert_eq!(live, 10, "k8s's observations are kept");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_scope_gone_from_an_enumerated_source_deletes_under_the_guard() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        // Cluster `prod`, namespaces `a` (3 workloads) and `b` (4).
        let mut obs: Vec<Observation> = (0..3)
            .map(|i| component("prod/a", &format!("a{i}"), &format!("a-{i}"), "team-a"))
            .collect();
        obs.extend(
            (0..4).map(|i| component("prod/b", &format!("b{i}"), &format!("b-{i}"), "team-b")),
        );
        run(s, "k8s", obs.clone(), complete(&["prod/a", "prod/b"])).await;

        // Namespace `b` is deleted: the connector lists every namespace of `prod` and says so.
        let mut listed = complete(&["prod/a"]);
        listed.enumerated("prod/");
        let r = run(s, "k8s", obs[..3].to_vec(), listed.clone()).await;
        // All of `b` goes: more than the ratio of that scope, so the guard holds it back.
        assert_eq!(r.status, RunStatus::Failed, "{}: {r:?}", ts.backend);
        assert_eq!(r.counts.entities.deleted, 0, "{}", ts.backend);
        let r = run_with(s, "k8s", obs[..3].to_vec(), listed, &allow_mass_delete()).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 4),
            "{}",
            ts.backend
        );
        assert!(!entity(s, "component:default/b-0").await.unwrap().is_live());

        // One of three is a third of the scope, but no mass deletion (`mass_delete_floor`).
        let r = run(s, "k8s", obs[1..3].to_vec(), complete(&["prod/a"])).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{}",
            ts.backend
        );

        // Without the listing, an unreported scope stays failed and keeps its entities.
        run(s, "k8s", obs.clone(), complete(&["prod/a", "prod/b"])).await;
        let r = run(s, "k8s", obs[..3].to_vec(), complete(&["prod/a"])).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Partial, 0),
            "{}",
            ts.backend
        );
        ts.cleanup().await;
    }
}

/// Twelve namespaces of one workload each: an empty crawl deletes one per scope, under every
/// scope's floor, and all of them together — the run guard refuses that.
#[tokio::test]
async fn many_small_scopes_emptied_at_once_are_a_mass_deletion() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let scopes: Vec<String> = (0..12).map(|i| format!("ns-{i}")).collect();
        let names: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let fleet: Vec<Observation> = scopes
            .iter()
            .enumerate()
            .map(|(i, ns)| component(ns, &format!("id-{i}"), &format!("svc-{i}"), "team-a"))
            .collect();
        run(s, "k8s", fleet.clone(), complete(&names)).await;
        let r = run(s, "k8s", Vec::new(), complete(&names)).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0),
            "{}",
            ts.backend
        );
        assert!(
            r.scopes
                .iter()
                .all(|sc| sc.refused.first().is_some_and(|f| f.would_delete == 12)),
            "{}: every scope names the run's refusal: {:?}",
            ts.backend,
            r.scopes
        );
        // One namespace going is no mass deletion, but a complete scope that drops to nothing
        // is refused whatever the floor; `--allow-mass-delete` lets it go.
        let r = run(s, "k8s", fleet[1..].to_vec(), complete(&names)).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0),
            "{}",
            ts.backend
        );
        let refused: Vec<&str> = r
            .scopes
            .iter()
            .filter(|sc| !sc.refused.is_empty())
            .map(|sc| sc.scope.as_str())
            .collect();
        assert_eq!(refused, ["ns-0"], "{}", ts.backend);
        let r = run_with(
            s,
            "k8s",
            fleet[1..].to_vec(),
            complete(&names),
            &ReconcileOptions {
                allow_mass_delete: true,
                ..ReconcileOptions::default()
            },
        )
        .await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{}",
            ts.backend
        );
        ts.cleanup().await;
    }
}

/// Components of source `gh` for the first-load test: each with a project slug (an identity
/// key) and an owner, over two scopes.
fn slugged(i: usize, name: &str, slug: &str) -> Observation {
    let scope = if i % 5 == 4 { "b" } else { "a" };
    let mut o = component(scope, &format!("id-{i}"), name, &format!("team-{}", i % 7));
    o.entity
        .metadata
        .annotations
        .insert("github.com/project-slug".into(), slug.into());
    o
}

/// What a load left behind, without the store's own ids and times: entities, relations, the
/// identity keys of `gh`, and the change log, each in a stable order.
async fn picture(store: &Store, leave_out: &str) -> Vec<String> {
    let mut out = Vec::new();
    let entities = store.list_entities(&EntityFilter::default()).await.unwrap();
    let ids: Vec<String> = (0..3000).map(|i| format!("id-{i}")).collect();
    for e in entities.iter().filter(|e| e.entity_ref != leave_out) {
        out.push(format!(
            "entity {} {} {} {} {} {}",
            e.entity_ref, e.kind, e.hash, e.meta_hash, e.sources, e.body
        ));
    }
    let mut relations: Vec<String> = store
        .all_relations()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.origin_ref != leave_out)
        .map(|r| format!("relation {r:?}"))
        .collect();
    relations.sort();
    out.extend(relations);
    let mut tx = store.begin().await.unwrap();
    let mut keys: Vec<String> = tx
        .identity_keys_of("gh", &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|k| format!("key {k:?}"))
        .collect();
    tx.rollback().await.unwrap();
    keys.sort();
    out.extend(keys);
    let mut changes: Vec<String> = store
        .list_changes(&ChangeFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.entity_ref != leave_out)
        .map(|c| format!("change {:?} {} {}", c.op, c.entity_ref, c.patch))
        .collect();
    changes.sort();
    out.extend(changes);
    out
}

/// A source's first load into an empty catalog merges each batch in memory and writes without
/// reading back; the same crawl into a catalog another source already holds reads every batch
/// back. Both must leave the same catalog, also when the load meets itself partway (a ref named
/// twice, an identity key held twice) and has to read from there on.
#[tokio::test]
async fn a_first_load_merged_in_memory_writes_what_reading_back_writes() {
    let clean: Vec<Observation> = (0..2600)
        .map(|i| slugged(i, &format!("svc-{i}"), &format!("org/svc-{i}")))
        .collect();
    // Scope `a` is written in batches of 1,000 while the crawl goes on, `b` at the end in its
    // own transaction. Past the first batch: an observation holding another's identity key,
    // then one naming another's ref.
    let mut meets_itself = clean.clone();
    meets_itself.insert(1900, slugged(2700, "svc-6-mirror", "org/svc-6"));
    meets_itself.insert(2000, slugged(2701, "svc-5", "org/svc-5-copy"));
    // The first observation of `a`'s second batch names a ref its first batch wrote (svc-1248,
    // the 1,000th of `a`): the reading path holds a batch's writes back while the next one
    // reads, but not from a read of their refs.
    let mut meets_last_batch = clean.clone();
    meets_last_batch.insert(1249, slugged(2702, "svc-1248", "org/svc-1248-copy"));
    let unrelated = "component:default/unrelated";
    for (obs, created) in [
        (clean, 2600),
        (meets_itself, 2600),
        (meets_last_batch, 2600),
    ] {
        let readers = TestStore::all().await;
        for (ts, reading) in TestStore::all().await.into_iter().zip(readers) {
            let fresh = &ts.store;
            let first = run(fresh, "gh", obs.clone(), complete(&["a", "b"])).await;
            // Another source's component first: the same load into this catalog reads back.
            let r = &reading.store;
            let x = vec![component("x", "u1", "unrelated", "team-z")];
            run(r, "other", x, complete(&["x"])).await;
            let second = run(r, "gh", obs.clone(), complete(&["a", "b"])).await;
            assert_eq!(first.status, RunStatus::Succeeded, "{}", ts.backend);
            assert_eq!(first.counts.entities.created, created, "{}", ts.backend);
            assert_eq!(
                serde_json::to_value(&first.counts).unwrap(),
                serde_json::to_value(&second.counts).unwrap(),
                "{}",
                ts.backend
            );
            let (a, b) = (picture(fresh, unrelated).await, picture(r, unrelated).await);
            assert_eq!(a.len(), b.len(), "{}", ts.backend);
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x, y, "{}", ts.backend);
            }
            reading.cleanup().await;
            ts.cleanup().await;
        }
    }
}

/// A sync writes its changes in chunks of 1,000 observations. An entity two chunks touch is
/// created once and then updated, never created twice, and an entity only the second chunk
/// touches is read as it is. (A reconcile that let the next chunk read before the previous
/// chunk's writes would create the first twice.)
#[tokio::test]
async fn an_entity_two_chunks_touch_is_created_once() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        // Another source first: a first load into an empty catalog merges in memory, reading
        // nothing back; this sync must read back.
        run(
            s,
            "other",
            vec![component("elsewhere", "x", "unrelated", "team-z")],
            complete(&["elsewhere"]),
        )
        .await;
        // Chunk 1: 999 others and `shared` from id-a; chunk 2: `shared` again, from id-b, and
        // the other source's entity, which chunk 1 did not touch.
        let mut obs = fleet(999, "team-a");
        obs.push(component("org", "id-a", "shared", "team-a"));
        let mut second = component("org", "id-b", "shared", "team-a");
        second
            .entity
            .spec
            .insert("system".into(), serde_json::json!("payments"));
        obs.push(second);
        obs.push(component("org", "id-c", "unrelated", "team-z"));
        let r = crawl(s, obs).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{}", ts.backend);
        let shared = entity(s, "component:default/shared")
            .await
            .expect("one entity");
        let sources: serde_json::Value = serde_json::from_str(&shared.sources).unwrap();
        assert_eq!(
            sources.as_array().map(Vec::len),
            Some(2),
            "{}: both observations: {sources}",
            ts.backend
        );
        let unrelated = entity(s, "component:default/unrelated").await.unwrap();
        assert!(
            unrelated.sources.contains("\"gh\""),
            "{}: {}",
            ts.backend,
            unrelated.sources
        );
        let shared_ops: Vec<ChangeOp> = ops(s)
            .await
            .into_iter()
            .filter(|(_, r)| r == "component:default/shared")
            .map(|(op, _)| op)
            .collect();
        assert_eq!(
            shared_ops
                .iter()
                .filter(|op| **op == ChangeOp::Created)
                .count(),
            1,
            "{}: {shared_ops:?}",
            ts.backend
        );
        let history = s
            .list_changes(&ChangeFilter {
                entity_uid: Some(shared.uid.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|c| c.op).collect::<Vec<_>>(),
            shared_ops,
            "{}: every change of the ref is the one entity's",
            ts.backend
        );
        ts.cleanup().await;
    }
}
