//! Catalog queries beyond plain listing, each checked on SQLite and (in CI) on Postgres.

use serde_json::{Value, json};
use surveyor_engine::{ReconcileOptions, RunStatus, run_connector};
use surveyor_model::{Entity, Observation};
use surveyor_store::{EntityFilter, PackageFilter, Store};
use surveyor_tests::{Scripted, TestStore, complete, component};

/// `obs` with `spec.packageDependencies` set to `deps`.
fn with_deps(mut obs: Observation, deps: Value) -> Observation {
    obs.entity.spec.insert("packageDependencies".into(), deps);
    obs
}

fn dep(ecosystem: &str, package: &str, requirement: &str, file: &str) -> Value {
    json!({
        "ecosystem": ecosystem,
        "package": package,
        "requirement": requirement,
        "scope": "runtime",
        "file": file,
    })
}

/// Components (and one Resource) discovered from repositories, with their dependencies.
fn repos() -> Vec<Observation> {
    let mut db = Entity::new("Resource", "default", "react-db");
    db.spec.insert("type".into(), "database".into());
    db.spec.insert("owner".into(), "team-a".into());
    vec![
        with_deps(
            component("org", "r-web", "web", "team-a"),
            json!([
                dep("npm", "react", "^18.2.0", "package.json"),
                {"ecosystem": "npm", "package": "typescript", "requirement": "^5.4.0",
                 "scope": "dev", "file": "package.json"},
            ]),
        ),
        with_deps(
            component("org", "r-admin", "admin", "team-b"),
            json!([
                dep("npm", "react", "^17.0.2", "apps/admin/package.json"),
                dep("pypi", "protobuf", ">=4", "requirements.txt"),
            ]),
        ),
        with_deps(
            component("org", "r-engine", "engine", "team-b"),
            json!([dep("cargo", "protobuf", "3.4", "Cargo.toml")]),
        ),
        with_deps(
            component("org", "r-ledger", "ledger", "team-c"),
            json!([
                dep(
                    "maven",
                    "org.apache.logging.log4j:log4j-core",
                    "2.17.1",
                    "pom.xml"
                ),
                dep(
                    "maven",
                    "com.google.protobuf:protobuf-java",
                    "3.25.1",
                    "pom.xml"
                ),
            ]),
        ),
        // Only the case differs: names compare exactly.
        with_deps(
            component("org", "r-legacy", "legacy", "team-c"),
            json!([dep("npm", "React", "0.14.0", "package.json")]),
        ),
        // Malformed lists never match and never break the query.
        with_deps(
            component("org", "r-odd", "odd", "team-c"),
            json!(["react", 42, [{"package": "react"}]]),
        ),
        with_deps(
            component("org", "r-odd2", "odd-two", "team-c"),
            json!({"ecosystem": "npm", "package": "react"}),
        ),
        component("org", "r-plain", "plain", "team-a"),
        with_deps(
            Observation::discovered("org", "r-db", db),
            json!([dep("npm", "react", "^18.0.0", "package.json")]),
        ),
    ]
}

async fn names(store: &Store, f: EntityFilter) -> Vec<String> {
    store
        .list_entities(&f)
        .await
        .unwrap_or_else(|e| panic!("{f:?}: {e}"))
        .into_iter()
        .map(|e| e.entity_ref)
        .collect()
}

fn on(ecosystem: Option<&str>, package: &str) -> EntityFilter {
    EntityFilter {
        depends_on: Some(PackageFilter {
            ecosystem: ecosystem.map(str::to_string),
            package: package.to_string(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn depends_on_finds_the_entities_that_use_a_package() {
    for ts in TestStore::all().await {
        let s = &ts.store;
        let b = ts.backend;
        let c = Scripted::new("repos", repos(), complete(&["org"]));
        let r = run_connector(s, &c, &ReconcileOptions::default())
            .await
            .expect("run");
        assert_eq!(
            (r.status, r.counts.entities.created),
            (RunStatus::Succeeded, 9),
            "{b}"
        );

        // Package and ecosystem; the Resource depends on react too.
        assert_eq!(
            names(s, on(Some("npm"), "react")).await,
            [
                "component:default/admin",
                "component:default/web",
                "resource:default/react-db"
            ],
            "{b}"
        );
        // With a kind filter.
        assert_eq!(
            names(
                s,
                EntityFilter {
                    kind: Some("Component".into()),
                    ..on(Some("npm"), "react")
                }
            )
            .await,
            ["component:default/admin", "component:default/web"],
            "{b}"
        );
        // And with an owner filter.
        assert_eq!(
            names(
                s,
                EntityFilter {
                    owner: Some("group:default/team-b".into()),
                    ..on(Some("npm"), "react")
                }
            )
            .await,
            ["component:default/admin"],
            "{b}"
        );
        // A dev dependency is a dependency.
        assert_eq!(
            names(s, on(Some("npm"), "typescript")).await,
            ["component:default/web"],
            "{b}"
        );
        // Another ecosystem's package of that name does not match.
        assert!(names(s, on(Some("pypi"), "react")).await.is_empty(), "{b}");
        assert_eq!(
            names(s, on(Some("cargo"), "protobuf")).await,
            ["component:default/engine"],
            "{b}"
        );
        // Without an ecosystem the package matches in every ecosystem.
        assert_eq!(
            names(s, on(None, "protobuf")).await,
            ["component:default/admin", "component:default/engine"],
            "{b}"
        );
        assert_eq!(
            names(s, on(None, "react")).await,
            [
                "component:default/admin",
                "component:default/web",
                "resource:default/react-db"
            ],
            "{b}"
        );
        // Exact names: case matters, no prefixes or substrings.
        assert_eq!(
            names(s, on(Some("npm"), "React")).await,
            ["component:default/legacy"],
            "{b}"
        );
        assert!(names(s, on(None, "reac")).await.is_empty(), "{b}");
        assert!(names(s, on(None, "log4j-core")).await.is_empty(), "{b}");
        // Maven coordinates carry a colon of their own.
        assert_eq!(
            names(s, on(Some("maven"), "org.apache.logging.log4j:log4j-core")).await,
            ["component:default/ledger"],
            "{b}"
        );
        assert_eq!(
            names(s, on(None, "org.apache.logging.log4j:log4j-core")).await,
            ["component:default/ledger"],
            "{b}"
        );
        // A package nobody uses; quotes in names are data, not SQL or JSON syntax.
        assert!(
            names(s, on(Some("npm"), "left-pad")).await.is_empty(),
            "{b}"
        );
        assert!(
            names(s, on(Some("npm"), "re\"act' OR 1=1 --"))
                .await
                .is_empty(),
            "{b}"
        );
        // Pagination still applies.
        assert_eq!(
            names(
                s,
                EntityFilter {
                    after: Some("component:default/admin".into()),
                    limit: Some(1),
                    ..on(Some("npm"), "react")
                }
            )
            .await,
            ["component:default/web"],
            "{b}"
        );
        // Entities without the field (or with a malformed one) are never listed.
        let all = names(s, on(None, "react")).await;
        for absent in [
            "component:default/plain",
            "component:default/odd",
            "component:default/odd-two",
        ] {
            assert!(!all.iter().any(|n| n == absent), "{b}: {absent}");
        }

        // A deleted dependent is a tombstone: listed only with include_deleted.
        let mut next = repos();
        next.retain(|o| o.external_id != "r-web");
        let c = Scripted::new("repos", next, complete(&["org"]));
        let r = run_connector(s, &c, &ReconcileOptions::default())
            .await
            .expect("run");
        assert_eq!(r.counts.entities.deleted, 1, "{b}");
        assert_eq!(
            names(
                s,
                EntityFilter {
                    kind: Some("component".into()),
                    ..on(Some("npm"), "react")
                }
            )
            .await,
            ["component:default/admin"],
            "{b}"
        );
        assert_eq!(
            names(
                s,
                EntityFilter {
                    kind: Some("component".into()),
                    include_deleted: true,
                    ..on(Some("npm"), "react")
                }
            )
            .await,
            ["component:default/admin", "component:default/web"],
            "{b}"
        );
        ts.cleanup().await;
    }
}

#[test]
fn package_filter_matches_like_the_query() {
    let f = PackageFilter {
        ecosystem: Some("npm".into()),
        package: "react".into(),
    };
    assert!(f.matches(&dep("npm", "react", "^18", "package.json")));
    assert!(!f.matches(&dep("pypi", "react", "1", "requirements.txt")));
    assert!(!f.matches(&dep("npm", "React", "1", "package.json")));
    assert!(!f.matches(&json!("react")));
    assert!(!f.matches(&json!({"package": "react"})));
    let any = PackageFilter {
        ecosystem: None,
        package: "react".into(),
    };
    assert!(any.matches(&json!({"package": "react"})));
    assert!(any.matches(&dep("pypi", "react", "1", "requirements.txt")));
}

/// Entities from two sources with labels, titles and descriptions to filter on.
async fn labelled(store: &Store) {
    let mut web = component("org", "l-web", "web-frontend", "team-a");
    web.entity
        .metadata
        .labels
        .insert("app.kubernetes.io/name".into(), "web".into());
    web.entity.metadata.title = Some("The Web Shop".into());
    web.entity.spec.insert("type".into(), "website".into());
    web.entity.metadata.tags = vec!["react".into(), "shop".into()];
    let mut api = component("org", "l-api", "shop-api", "team-a");
    api.entity.metadata.description = Some("Orders 100% of the shop_items".into());
    api.entity.metadata.tags = vec!["shop".into()];
    let c = Scripted::new("gh", vec![web, api], complete(&["org"]));
    run_connector(store, &c, &ReconcileOptions::default())
        .await
        .expect("run");
    let other = component("acct", "p-api", "pager-api", "team-b");
    let c = Scripted::new("pd", vec![other], complete(&["acct"]));
    run_connector(store, &c, &ReconcileOptions::default())
        .await
        .expect("run");
}

async fn short(store: &Store, f: EntityFilter) -> Vec<String> {
    let rows = store.list_entities(&f).await.expect("list");
    rows.into_iter().map(|r| r.name).collect()
}

#[tokio::test]
async fn labels_sources_text_counts_and_facets() {
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        labelled(s).await;
        assert_eq!(
            short(
                s,
                EntityFilter {
                    label: Some(("app.kubernetes.io/name".into(), "web".into())),
                    ..EntityFilter::default()
                }
            )
            .await,
            ["web-frontend"],
            "{backend}"
        );
        assert_eq!(
            short(
                s,
                EntityFilter {
                    source: Some("pd".into()),
                    ..EntityFilter::default()
                }
            )
            .await,
            ["pager-api"],
            "{backend}"
        );
        for (q, want) in [
            ("web shop", vec!["web-frontend"]),
            ("SHOP", vec!["shop-api", "web-frontend"]),
            ("100%", vec!["shop-api"]),
            ("shop_", vec!["shop-api"]),
            ("%", vec!["shop-api"]),
            ("o_d", vec![]),
        ] {
            let got = short(
                s,
                EntityFilter {
                    text: Some(q.into()),
                    ..EntityFilter::default()
                },
            )
            .await;
            assert_eq!(got, want, "{backend}: q={q}");
        }
        let all = EntityFilter {
            kind: Some("component".into()),
            limit: Some(1),
            ..EntityFilter::default()
        };
        assert_eq!(s.count_entities(&all).await.expect("count"), 3, "{backend}");
        let tags = s
            .facet_counts("metadata.tags", &EntityFilter::default())
            .await
            .expect("facets");
        assert_eq!(
            tags,
            vec![("react".to_string(), 1), ("shop".to_string(), 2)],
            "{backend}"
        );
        let types = s
            .facet_counts("spec.type", &EntityFilter::default())
            .await
            .expect("facets");
        assert_eq!(
            types,
            vec![("service".to_string(), 2), ("website".to_string(), 1)],
            "{backend}"
        );
        assert!(
            s.facet_counts("spec.type'); --", &EntityFilter::default())
                .await
                .is_err()
        );
        ts.cleanup().await;
    }
}

/// A component of `name` with the label `app` set to `value`.
fn labelled_as(id: &str, name: &str, value: &str) -> Observation {
    let mut o = component("org", id, name, "team-a");
    o.entity.metadata.labels.insert("app".into(), value.into());
    o
}

/// The label filter reads what the triggers keep beside the entities: it follows a label's
/// change, a rename, a deletion, a purge and a copy, pages from a cursor, and counts.
#[tokio::test]
async fn a_label_filter_follows_every_write() {
    for ts in TestStore::all().await {
        let (s, b) = (&ts.store, ts.backend);
        let app = |value: &str, after: Option<&str>, limit: Option<i64>| EntityFilter {
            kind: Some("component".into()),
            label: Some(("app".into(), value.into())),
            after: after.map(Into::into),
            limit,
            ..EntityFilter::default()
        };
        let sync = |observations: Vec<Observation>| async move {
            let c = Scripted::new("gh", observations, complete(&["org"]));
            run_connector(s, &c, &ReconcileOptions::default())
                .await
                .expect("run")
        };
        sync(vec![
            labelled_as("1", "alpha", "web"),
            labelled_as("2", "beta", "web"),
            labelled_as("3", "gamma", "web"),
            labelled_as("4", "delta", "api"),
        ])
        .await;
        let refs = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .map(|n| format!("component:default/{n}"))
                .collect()
        };
        assert_eq!(
            names(s, app("web", None, None)).await,
            refs(&["alpha", "beta", "gamma"]),
            "{b}"
        );
        assert_eq!(
            names(s, app("web", Some("component:default/alpha"), Some(1))).await,
            refs(&["beta"]),
            "{b}"
        );
        assert_eq!(
            s.count_entities(&app("web", None, Some(1)))
                .await
                .expect("count"),
            3,
            "{b}"
        );
        // Values compare exactly: one that differs only in case matches nothing.
        assert!(names(s, app("WEB", None, None)).await.is_empty(), "{b}");

        // beta's label changes, gamma is renamed, delta is gone.
        sync(vec![
            labelled_as("1", "alpha", "web"),
            labelled_as("2", "beta", "api"),
            labelled_as("3", "gamma-two", "web"),
        ])
        .await;
        assert_eq!(
            names(s, app("web", None, None)).await,
            refs(&["alpha", "gamma-two"]),
            "{b}"
        );
        assert_eq!(
            names(s, app("api", None, None)).await,
            refs(&["beta"]),
            "{b}"
        );
        let with_tombstones = EntityFilter {
            include_deleted: true,
            ..app("api", None, None)
        };
        assert_eq!(
            names(s, with_tombstones.clone()).await,
            refs(&["beta", "delta"]),
            "{b}"
        );

        // A copy answers the same.
        let copy = Store::connect("sqlite::memory:").await.expect("store");
        s.copy_into(&copy, false).await.expect("copy");
        assert_eq!(
            names(&copy, app("web", None, None)).await,
            refs(&["alpha", "gamma-two"]),
            "{b}"
        );

        // Purged tombstones take their labels with them.
        s.purge_tombstones(chrono::Utc::now() + chrono::Duration::days(1))
            .await
            .expect("purge");
        assert_eq!(names(s, with_tombstones).await, refs(&["beta"]), "{b}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_tick_is_taken_by_exactly_one_holder() {
    use chrono::{Duration, Utc};
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        let now = Utc::now();
        let tick = now;
        let until = now + Duration::seconds(60);
        assert!(
            s.try_lease("gh", "a", tick, until, now)
                .await
                .expect("lease"),
            "{backend}"
        );
        assert!(
            !s.try_lease("gh", "b", tick, until, now)
                .await
                .expect("lease"),
            "{backend}: same tick"
        );
        let later = tick + Duration::seconds(10);
        assert!(
            !s.try_lease("gh", "b", later, until, now)
                .await
                .expect("lease"),
            "{backend}: a's lease is unexpired"
        );
        s.release_lease("gh", "a", now).await.expect("release");
        let after = now + Duration::seconds(1);
        assert!(
            !s.try_lease("gh", "b", tick, until, after)
                .await
                .expect("lease"),
            "{backend}: that tick already ran"
        );
        assert!(
            s.try_lease("gh", "b", later, until, after)
                .await
                .expect("lease"),
            "{backend}"
        );
        assert!(
            s.renew_lease("gh", "b", until + Duration::seconds(60))
                .await
                .expect("renew")
        );
        assert!(
            !s.renew_lease("gh", "a", until).await.expect("renew"),
            "{backend}: a lost it"
        );
        // Other connectors have leases of their own.
        assert!(
            s.try_lease("k8s", "a", tick, until, now)
                .await
                .expect("lease"),
            "{backend}"
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn catalog_stats_count_runs_and_sum_their_time() {
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        labelled(s).await;
        let stats = s.catalog_stats().await.expect("stats");
        assert_eq!(
            stats.runs,
            vec![
                ("gh".to_string(), "succeeded".to_string(), 1),
                ("pd".to_string(), "succeeded".to_string(), 1)
            ],
            "{backend}"
        );
        let secs = stats.run_seconds["gh"];
        assert!((0.0..60.0).contains(&secs), "{backend}: {secs}");
        assert_eq!(stats.changes, vec![("created".to_string(), 3)], "{backend}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn findings_open_stay_and_resolve_on_both_backends() {
    use surveyor_store::FindingRecord;
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let f = |rule: &str, entity: &str| FindingRecord {
            rule: rule.into(),
            entity_ref: entity.into(),
            kind: "Component".into(),
            severity: "high".into(),
            message: format!("{rule} on {entity}"),
            owner: None,
            evidence: "[]".into(),
        };
        let t0 = chrono::Utc::now();
        let t1 = t0 + chrono::Duration::minutes(5);
        let t2 = t0 + chrono::Duration::minutes(10);
        let d = store
            .record_findings(
                "drift",
                &[f("a", "component:default/x"), f("b", "component:default/y")],
                t0,
            )
            .await
            .expect("record");
        assert_eq!((d.opened, d.still_open, d.resolved), (2, 0, 0), "{backend}");
        let d = store
            .record_findings("drift", &[f("a", "component:default/x")], t1)
            .await
            .expect("record");
        assert_eq!((d.opened, d.still_open, d.resolved), (0, 1, 1), "{backend}");
        let d = store
            .record_findings(
                "drift",
                &[f("a", "component:default/x"), f("b", "component:default/y")],
                t2,
            )
            .await
            .expect("record");
        assert_eq!(
            (d.opened, d.still_open, d.resolved),
            (1, 1, 0),
            "{backend}: it came back"
        );
        assert_eq!(
            store
                .findings_recorded_at()
                .await
                .expect("recorded at")
                .map(|t| t.timestamp()),
            Some(t2.timestamp()),
            "{backend}: the last recording, as `serve` reads it at start-up"
        );
        let all = store.findings("drift", true).await.expect("findings");
        assert_eq!(all.len(), 3, "{backend}: one row per stretch");
        let x = &all[0];
        assert_eq!(x.first_seen.timestamp(), t0.timestamp());
        assert_eq!(x.last_seen.timestamp(), t2.timestamp());
        assert!(x.resolved_at.is_none());
        assert_eq!(
            all[1].resolved_at.map(|t| t.timestamp()),
            Some(t1.timestamp())
        );
        assert!(
            store
                .findings("ownership", true)
                .await
                .expect("other")
                .is_empty()
        );
        assert_eq!(store.open_findings("drift").await.expect("open").len(), 2);
        // Two findings of one rule on one entity (a disagreement per field) are two.
        let field = |m: &str| FindingRecord {
            message: m.into(),
            ..f("disagreement", "component:default/z")
        };
        let both = [field("owner differs"), field("system differs")];
        let d = store
            .record_findings("drift2", &both, t0)
            .await
            .expect("record");
        assert_eq!(d.opened, 2, "{backend}");
        let d = store
            .record_findings("drift2", &both, t1)
            .await
            .expect("record");
        assert_eq!((d.opened, d.still_open, d.resolved), (0, 2, 0), "{backend}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn latest_run_per_connector_and_changes_newest_first() {
    use chrono::{Duration, Utc};
    use surveyor_store::ChangeFilter;
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        let t = Utc::now();
        for (id, connector, at) in [
            ("a1", "gh", t),
            ("a2", "gh", t + Duration::minutes(1)),
            ("a3", "gh", t - Duration::minutes(1)),
            ("b1", "k8s", t),
            // Same start: the greater id, as `list_runs` orders them.
            ("b2", "k8s", t),
        ] {
            s.insert_run(id, connector, at).await.expect("run");
        }
        s.finish_run(
            "a2",
            "succeeded",
            &Value::Null,
            &Value::Null,
            None,
            t + Duration::minutes(2),
        )
        .await
        .expect("finish");
        let latest = s.latest_runs().await.expect("latest");
        let ids: Vec<(&str, &str, &str)> = latest
            .iter()
            .map(|r| (r.connector.as_str(), r.id.as_str(), r.status.as_str()))
            .collect();
        assert_eq!(
            ids,
            [("gh", "a2", "succeeded"), ("k8s", "b2", "running")],
            "{backend}"
        );
        assert!(latest[0].finished_at.is_some(), "{backend}");

        let source = Scripted::new(
            "gh",
            (0..5)
                .map(|i| component("org", &format!("r{i}"), &format!("c{i}"), "team-a"))
                .collect(),
            complete(&["org"]),
        );
        run_connector(s, &source, &ReconcileOptions::default())
            .await
            .expect("sync");
        let seqs = |rows: Vec<surveyor_store::ChangeRow>| -> Vec<i64> {
            rows.into_iter().map(|c| c.seq).collect()
        };
        let oldest_first = seqs(
            s.list_changes(&ChangeFilter::default())
                .await
                .expect("changes"),
        );
        assert_eq!(oldest_first.len(), 5, "{backend}");
        let mut newest_first = oldest_first.clone();
        newest_first.reverse();
        let desc = |before_seq, limit| ChangeFilter {
            descending: true,
            before_seq,
            limit: Some(limit),
            ..ChangeFilter::default()
        };
        assert_eq!(
            seqs(s.list_changes(&desc(None, 2)).await.expect("desc")),
            newest_first[..2],
            "{backend}"
        );
        assert_eq!(
            seqs(
                s.list_changes(&desc(Some(newest_first[1]), 10))
                    .await
                    .expect("desc")
            ),
            newest_first[2..],
            "{backend}: before a seq"
        );
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn the_consoles_filters_lifecycle_tags_counts_per_kind_and_change_filters() {
    use chrono::{Duration, Utc};
    use surveyor_store::ChangeFilter;
    for ts in TestStore::all().await {
        let (s, backend) = (&ts.store, ts.backend);
        labelled(s).await;
        let mut group = Entity::new("Group", "default", "team-a");
        group.spec.insert("type".into(), "team".into());
        let mut exp = component("org2", "x-1", "lab", "team-a");
        exp.entity
            .spec
            .insert("lifecycle".into(), "Experimental".into());
        let c = Scripted::new(
            "gl",
            vec![Observation::discovered("org2", "g-1", group), exp],
            complete(&["org2"]),
        );
        run_connector(s, &c, &ReconcileOptions::default())
            .await
            .expect("run");
        let lifecycle = |l: &str| EntityFilter {
            lifecycle: Some(l.into()),
            ..EntityFilter::default()
        };
        assert_eq!(
            short(s, lifecycle("experimental")).await,
            ["lab"],
            "{backend}"
        );
        assert_eq!(
            short(s, lifecycle("EXPERIMENTAL")).await,
            ["lab"],
            "{backend}"
        );
        // Tags are searched like the title and description.
        let text = |q: &str| EntityFilter {
            text: Some(q.into()),
            ..EntityFilter::default()
        };
        assert_eq!(short(s, text("REACT")).await, ["web-frontend"], "{backend}");
        // Counts per kind ignore the filter's kind and its page, not its other conditions.
        let counts = s
            .count_by_kind(&EntityFilter {
                kind: Some("group".into()),
                limit: Some(1),
                after: Some("a".into()),
                ..EntityFilter::default()
            })
            .await
            .expect("counts");
        assert_eq!(
            counts,
            vec![("component".to_string(), 4), ("group".to_string(), 1)],
            "{backend}"
        );
        let of_gh = s
            .count_by_kind(&EntityFilter {
                source: Some("gh".into()),
                ..EntityFilter::default()
            })
            .await
            .expect("counts");
        assert_eq!(of_gh, vec![("component".to_string(), 2)], "{backend}");

        // Changes by source, by kind, and before a time.
        let refs = |f: ChangeFilter| async move {
            s.list_changes(&f)
                .await
                .expect("changes")
                .into_iter()
                .map(|c| c.entity_ref)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            refs(ChangeFilter {
                source: Some("gl".into()),
                kind: Some("Group".into()),
                ..ChangeFilter::default()
            })
            .await,
            ["group:default/team-a"],
            "{backend}"
        );
        assert_eq!(
            refs(ChangeFilter {
                source: Some("pd".into()),
                ..ChangeFilter::default()
            })
            .await,
            ["component:default/pager-api"],
            "{backend}"
        );
        assert!(
            refs(ChangeFilter {
                until: Some(Utc::now() - Duration::hours(1)),
                ..ChangeFilter::default()
            })
            .await
            .is_empty(),
            "{backend}"
        );
        assert_eq!(
            refs(ChangeFilter {
                until: Some(Utc::now() + Duration::hours(1)),
                ..ChangeFilter::default()
            })
            .await
            .len(),
            5,
            "{backend}"
        );
        ts.cleanup().await;
    }
}

/// Syncs `observations` as the `repos` connector's whole `org` scope.
async fn sync_repos(s: &Store, observations: Vec<Observation>) -> surveyor_engine::RunReport {
    let c = Scripted::new("repos", observations, complete(&["org"]));
    run_connector(s, &c, &ReconcileOptions::default())
        .await
        .expect("run")
}

/// An owner's entities, listed whole or a page at a time from a cursor, are the same live
/// entities in ref order, each once though two origins state the ownership, and the count
/// agrees: Postgres reads them in the index's order and stops at the page's end.
#[tokio::test]
async fn an_owners_entities_page_in_order_each_once() {
    for ts in TestStore::all().await {
        let (s, b) = (&ts.store, ts.backend);
        sync_repos(s, repos()).await;
        // team-c's `legacy` is gone: a tombstone.
        let r = sync_repos(
            s,
            repos()
                .into_iter()
                .filter(|o| o.external_id != "r-legacy")
                .collect(),
        )
        .await;
        assert_eq!(r.counts.entities.deleted, 1, "{b}");
        // A second origin states that team-c owns `odd`.
        let mut tx = s.begin_write().await.expect("tx");
        let twice = surveyor_store::RelationRow {
            origin_ref: "group:default/team-c".into(),
            source_ref: "component:default/odd".into(),
            kind: "ownedBy".into(),
            target_ref: "group:default/team-c".into(),
            target_display: "group:default/team-c".into(),
        };
        tx.replace_relations(&["group:default/team-c".into()], &[twice])
            .await
            .expect("relation");
        tx.commit().await.expect("commit");

        let owned = |after: Option<String>, limit: Option<i64>| EntityFilter {
            kind: Some("Component".into()),
            owner: Some("group:default/team-c".into()),
            after,
            limit,
            ..EntityFilter::default()
        };
        let whole = names(s, owned(None, None)).await;
        assert_eq!(
            whole,
            [
                "component:default/ledger",
                "component:default/odd",
                "component:default/odd-two"
            ],
            "{b}"
        );
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = names(s, owned(after.clone(), Some(1))).await;
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            paged.extend(page);
        }
        assert_eq!(paged, whole, "{b}");
        // From a cursor, with a page larger than what is left.
        assert_eq!(
            names(s, owned(Some("component:default/ledger".into()), Some(50))).await,
            ["component:default/odd", "component:default/odd-two"],
            "{b}"
        );
        assert_eq!(
            s.count_entities(&owned(None, Some(1)))
                .await
                .expect("count"),
            3,
            "{b}"
        );
        let tombstones = EntityFilter {
            include_deleted: true,
            ..owned(None, Some(2))
        };
        // A tombstone's relations went with it: the owner no longer lists it.
        assert_eq!(
            names(s, tombstones).await,
            ["component:default/ledger", "component:default/odd"],
            "{b}"
        );
        ts.cleanup().await;
    }
}

/// A page read through SQLite's C API (a filter with a limit) holds exactly what the same
/// rows read through sqlx hold (no limit), tombstones included, and so do their relations; a
/// counted page holds the same and counts the whole filter.
#[tokio::test]
async fn pages_read_the_same_rows_as_whole_lists() {
    for ts in TestStore::all().await {
        let (s, b) = (&ts.store, ts.backend);
        sync_repos(s, repos()).await;
        // One repository gone: its entity is a tombstone with a deletion time and run.
        let r = sync_repos(s, repos().into_iter().skip(1).collect()).await;
        assert_eq!(r.counts.entities.deleted, 1, "{b}");

        let everything = EntityFilter {
            include_deleted: true,
            ..EntityFilter::default()
        };
        let whole = s.list_entities(&everything).await.expect("list");
        assert!(whole.iter().any(|e| e.deleted_at.is_some()), "{b}");
        let mut paged = Vec::new();
        let mut relations = Vec::new();
        let mut after = None;
        loop {
            let (rows, rels) = s
                .entity_page(&EntityFilter {
                    after: after.clone(),
                    limit: Some(3),
                    ..everything.clone()
                })
                .await
                .expect("page");
            after = rows.last().map(|r| r.entity_ref.clone());
            relations.extend(rels);
            let end = rows.len() < 3;
            paged.extend(rows);
            if end {
                break;
            }
        }
        assert_eq!(format!("{paged:?}"), format!("{whole:?}"), "{b}");

        // A counted page (one read on SQLite) is the same page, and counts the whole filter,
        // not the page: from the second entity on, three of them.
        let second = EntityFilter {
            after: whole.first().map(|e| e.entity_ref.clone()),
            limit: Some(3),
            ..everything.clone()
        };
        let (total, rows, rels) = s.entity_page_counted(&second).await.expect("counted");
        assert_eq!(total, whole.len() as i64, "{b}");
        let (page_rows, page_rels) = s.entity_page(&second).await.expect("page");
        assert_eq!(format!("{rows:?}"), format!("{page_rows:?}"), "{b}");
        assert_eq!(rels, page_rels, "{b}");
        assert_eq!(rows.len(), 3.min(whole.len() - 1), "{b}");

        // Relations of more keys than a C-API read takes go through sqlx: the same rows.
        let mut keys: Vec<String> = whole.iter().map(|e| e.entity_ref.clone()).collect();
        keys.extend((0..6_000).map(|i| format!("component:default/nothing-{i}")));
        let through_sqlx = s.relations_of_many(&keys).await.expect("relations");
        assert!(!through_sqlx.is_empty(), "{b}");
        // Pages come in the database's order of refs, relations in byte order: the same on
        // SQLite and under Postgres's C collations, not under a language collation.
        relations.sort_by(|a, b| {
            (&a.source_ref, &a.kind, &a.target_ref).cmp(&(&b.source_ref, &b.kind, &b.target_ref))
        });
        assert_eq!(relations, through_sqlx, "{b}");
        ts.cleanup().await;
    }
}

/// `for_each_entity` hands over, one at a time, exactly the rows `list_entities` returns, and
/// a visitor's error ends the read with that error; `relations_of_types` keeps only the types
/// asked for, each relation once.
#[tokio::test]
async fn entities_stream_one_at_a_time_and_relations_come_by_type() {
    for ts in TestStore::all().await {
        let (s, b) = (&ts.store, ts.backend);
        sync_repos(s, repos()).await;
        let listed = names(s, EntityFilter::default()).await;
        let mut visited = Vec::new();
        s.for_each_entity(&EntityFilter::default(), |row| {
            visited.push(row.entity_ref);
            Ok(())
        })
        .await
        .expect("stream");
        assert_eq!(visited, listed, "{b}");

        let mut seen = 0;
        let stopped = s
            .for_each_entity(&EntityFilter::default(), |_| {
                seen += 1;
                Err(surveyor_store::StoreError::Invalid("enough".into()))
            })
            .await;
        assert!(
            matches!(stopped, Err(surveyor_store::StoreError::Invalid(ref m)) if m == "enough"),
            "{b}: {stopped:?}"
        );
        assert_eq!(seen, 1, "{b}");

        let owned = s.relations_of_types(&["ownedBy"]).await.expect("relations");
        assert!(!owned.is_empty(), "{b}");
        assert!(owned.iter().all(|(_, t, _)| t == "ownedBy"), "{b}");
        let every: Vec<_> = s
            .all_relations()
            .await
            .expect("all")
            .into_iter()
            .filter(|r| r.kind == "ownedBy")
            .map(|r| (r.source_ref, r.kind, r.target_ref))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(owned, every, "{b}");
        ts.cleanup().await;
    }
}
