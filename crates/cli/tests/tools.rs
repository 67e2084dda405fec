//! `surveyor export` and `surveyor copy` on a real catalog (the demo's simulated org, synced
//! from five sources with a history of changes), and the tool commands (completions, man,
//! config schema) as a user runs them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use surveyor_store::{ChangeFilter, ConnectOptions, EntityFilter, Store};

fn run(dir: &Path, args: &[&str]) -> Output {
    common::surveyor_in(dir)
        .args(args)
        .output()
        .expect("run surveyor")
}

/// A demo catalog in `dir`: `demo.db`, with its config `demo.toml`.
fn demo_catalog(dir: &Path) {
    let out = run(
        dir,
        &[
            "demo",
            "--once",
            "--port",
            "0",
            "--db",
            "demo.db",
            "--changes",
            "2",
        ],
    );
    common::assert_success(&out, "\nsurveyor demo");
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Live entities by ref: (display ref, body).
async fn live(store: &Store) -> BTreeMap<String, (String, Value)> {
    store
        .list_entities(&EntityFilter::default())
        .await
        .expect("entities")
        .into_iter()
        .map(|e| {
            let body = serde_json::from_str(&e.body).expect("a JSON body");
            (e.entity_ref, (e.display_ref, body))
        })
        .collect()
}

/// A body as an export writes it and a reader reads it back: the annotations a reader sets
/// left out, tags sorted (descriptor readers sort them).
fn as_exported(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(meta) = b.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove("backstage.io/managed-by-location");
            a.remove("backstage.io/managed-by-origin-location");
        }
        if let Some(Value::Array(tags)) = meta.get_mut("tags") {
            tags.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            tags.dedup();
        }
    }
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_reads_back_as_the_same_entities() {
    let dir = tempfile::tempdir().expect("dir");
    demo_catalog(dir.path());
    let out = run(dir.path(), &["-c", "demo.toml", "export", "out"]);
    common::assert_success(&out, "\nexport");
    assert!(
        dir.path()
            .join("out/default/component/payments-sdk-1.yaml")
            .is_file(),
        "one file per entity at <namespace>/<kind>/<name>.yaml"
    );

    // A second export into the same directory is refused, unless --force.
    let again = run(dir.path(), &["-c", "demo.toml", "export", "out"]);
    assert_eq!(again.status.code(), Some(2), "a non-empty directory");
    std::fs::write(dir.path().join("out/default/component/stale.yaml"), "x").expect("write");
    let forced = run(dir.path(), &["-c", "demo.toml", "export", "--force", "out"]);
    common::assert_success(&forced, "\nexport --force");
    assert!(
        !dir.path().join("out/default/component/stale.yaml").exists(),
        "--force removes an earlier export's files"
    );

    std::fs::write(
        dir.path().join("rt.toml"),
        "[catalog]\ndatabase = \"sqlite://rt.db\"\n\n[[connectors]]\nid = \"export\"\n\
         kind = \"file\"\npaths = [\"out/**/*.yaml\"]\n",
    )
    .expect("write");
    let sync = run(dir.path(), &["-c", "rt.toml", "sync"]);
    common::assert_success(&sync, "\nsync of the export");

    let original = Store::connect(&sqlite_url(&dir.path().join("demo.db")))
        .await
        .expect("original");
    let copy = Store::connect(&sqlite_url(&dir.path().join("rt.db")))
        .await
        .expect("read back");
    let (a, b) = (live(&original).await, live(&copy).await);
    assert!(a.len() > 100, "a catalog of some size: {}", a.len());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same entities"
    );
    for (key, (display, body)) in &a {
        let (display_back, body_back) = &b[key];
        assert_eq!(display, display_back, "{key}");
        assert_eq!(&as_exported(body), body_back, "{key}");
    }

    // Relations: the same, once a target named by an identity alias of the original (a name
    // one source gives another's entity) is resolved as the original resolves it.
    let aliases: BTreeMap<String, String> = original
        .all_aliases()
        .await
        .expect("aliases")
        .into_iter()
        .collect();
    let relations = |rows: Vec<surveyor_store::RelationRow>| -> BTreeSet<(String, String, String)> {
        rows.into_iter()
            .map(|r| {
                let resolve = |s: String| aliases.get(&s).cloned().unwrap_or(s);
                (resolve(r.source_ref), r.kind, resolve(r.target_ref))
            })
            .collect()
    };
    let ra = relations(original.all_relations().await.expect("relations"));
    let rb = relations(copy.all_relations().await.expect("relations"));
    assert!(ra.len() > 100);
    assert_eq!(ra, rb, "relations");

    // With --resolve-aliases the files name entities by their own refs: read back, the
    // relations are the original's as they are, with no alias to resolve.
    let out = run(
        dir.path(),
        &["-c", "demo.toml", "export", "--resolve-aliases", "out2"],
    );
    common::assert_success(&out, "\nexport --resolve-aliases");
    std::fs::write(
        dir.path().join("rt2.toml"),
        "[catalog]\ndatabase = \"sqlite://rt2.db\"\n\n[[connectors]]\nid = \"export\"\n\
         kind = \"file\"\npaths = [\"out2/**/*.yaml\"]\n",
    )
    .expect("write");
    let sync = run(dir.path(), &["-c", "rt2.toml", "sync"]);
    common::assert_success(&sync, "\nsync of the resolved export");
    let resolved = Store::connect(&sqlite_url(&dir.path().join("rt2.db")))
        .await
        .expect("read back");
    assert_eq!(
        live(&resolved).await.keys().collect::<Vec<_>>(),
        a.keys().collect::<Vec<_>>()
    );
    let exact = |rows: Vec<surveyor_store::RelationRow>| -> BTreeSet<(String, String, String)> {
        rows.into_iter()
            .map(|r| (r.source_ref, r.kind, r.target_ref))
            .collect()
    };
    let original_relations = exact(original.all_relations().await.expect("relations"));
    assert_ne!(
        original_relations,
        exact(copy.all_relations().await.expect("relations")),
        "the demo has relations through aliases (else this part checks nothing)"
    );
    assert_eq!(
        original_relations,
        exact(resolved.all_relations().await.expect("relations"))
    );
    resolved.close().await;
    original.close().await;
    copy.close().await;
}

/// The copy holds the same rows as `original`, and its history replays to its live entities,
/// which are the original's.
async fn assert_same_catalog(original: &Store, copy: &Store) {
    let (a, b) = (
        original.dump().await.expect("dump"),
        copy.dump().await.expect("dump"),
    );
    assert_eq!(a.len(), b.len());
    for (ta, tb) in a.iter().zip(&b) {
        assert_eq!(ta.table, tb.table);
        assert_eq!(ta.rows.len(), tb.rows.len(), "rows of {}", ta.table);
        for (i, (ra, rb)) in ta.rows.iter().zip(&tb.rows).enumerate() {
            assert_eq!(ra, rb, "{} row {i}", ta.table);
        }
    }
    let history = |s: &Store| {
        let s = s.clone();
        async move {
            let changes = s
                .list_changes(&ChangeFilter::default())
                .await
                .expect("changes");
            surveyor_engine::replay::replay(&changes).expect("replay")
        }
    };
    assert_eq!(history(original).await, history(copy).await);
    surveyor_engine::replay::verify(copy)
        .await
        .expect("the copy's history rebuilds its live entities");
}

fn non_empty(table: &str, dump: &[surveyor_store::TableDump]) -> bool {
    dump.iter().any(|t| t.table == table && !t.rows.is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_is_the_same_catalog_either_way() {
    let dir = tempfile::tempdir().expect("dir");
    demo_catalog(dir.path());
    let original = Store::connect(&sqlite_url(&dir.path().join("demo.db")))
        .await
        .expect("original");
    let dump = original.dump().await.expect("dump");
    for table in [
        "runs",
        "observations",
        "entities",
        "relations",
        "changes",
        "identity_keys",
        "identity_aliases",
        "findings",
    ] {
        assert!(non_empty(table, &dump), "the demo fills {table}");
    }

    // Through Postgres when there is one (SQLite -> Postgres -> SQLite), else SQLite to SQLite.
    let pg = std::env::var("SURVEYOR_TEST_DATABASE_URL").ok();
    let schema = format!("t_copy_{}", uuid_like());
    let mut hops: Vec<String> = Vec::new();
    let mut pg_store = None;
    if let Some(url) = &pg {
        // The schema is made (and dropped) here; the CLI names it in the URL.
        let store = Store::connect_with(
            url,
            ConnectOptions {
                schema: Some(schema.clone()),
            },
        )
        .await
        .expect("postgres");
        let sep = if url.contains('?') { '&' } else { '?' };
        hops.push(format!("{url}{sep}options=-csearch_path%3D{schema}"));
        pg_store = Some(store);
    } else {
        eprintln!("SURVEYOR_TEST_DATABASE_URL is not set: copying SQLite to SQLite only");
    }
    hops.push(sqlite_url(&dir.path().join("copy.db")));

    let mut from = sqlite_url(&dir.path().join("demo.db"));
    for to in &hops {
        let out = run(dir.path(), &["copy", "--from", &from, "--to", to]);
        common::assert_success(
            &out,
            &format!("\ncopy to {}", to.split('?').next().unwrap_or("")),
        );
        let copy = Store::connect(to).await.expect("the copy");
        assert_same_catalog(&original, &copy).await;
        copy.close().await;
        from = to.clone();
    }
    if let Some(store) = &pg_store {
        // The CLI wrote into the test's schema, not wherever the URL's default would go.
        assert_same_catalog(&original, store).await;
    }

    // A destination that is not a database URL is bad input.
    let bad = run(
        dir.path(),
        &["copy", "--from", &from, "--to", "mysql://x/y"],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Into a catalog that holds something: refused (exit 2, nothing written) unless --force.
    let last = hops.last().expect("a hop").clone();
    let first = sqlite_url(&dir.path().join("demo.db"));
    let refused = run(dir.path(), &["copy", "--from", &first, "--to", &last]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let forced = run(
        dir.path(),
        &["copy", "--from", &first, "--to", &last, "--force"],
    );
    common::assert_success(&forced, "\ncopy --force");
    let copy = Store::connect(&last).await.expect("the copy");
    assert_same_catalog(&original, &copy).await;

    // The copy goes on as a catalog: new changes continue its sequence.
    let before = copy
        .list_changes(&ChangeFilter::default())
        .await
        .expect("changes");
    let max_seq = before.last().map_or(0, |c| c.seq);
    let mut tx = copy.begin_write().await.expect("tx");
    tx.insert_changes(
        &[surveyor_store::ChangeWrite {
            run_id: "r".into(),
            source: "s".into(),
            entity_uid: "u".into(),
            entity_ref: "component:default/x".into(),
            previous_ref: None,
            op: surveyor_store::ChangeOp::Deleted,
            patch: "[]".into(),
        }],
        chrono::Utc::now(),
    )
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    let after = copy
        .list_changes(&ChangeFilter::default())
        .await
        .expect("changes");
    assert_eq!(after.last().map(|c| c.seq), Some(max_seq + 1));
    copy.close().await;

    if let Some(store) = pg_store {
        store.drop_schema(&schema).await.expect("drop schema");
        store.close().await;
    }
    original.close().await;
}

/// A name unique to this test run.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{nanos}", std::process::id())
}

#[test]
fn completions_man_and_the_config_schema_print() {
    let dir = tempfile::tempdir().expect("dir");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(dir.path(), &["completions", shell]);
        common::assert_success(&out, shell);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("export") && text.contains("copy"), "{shell}");
    }
    let man = run(dir.path(), &["man"]);
    common::assert_success(&man, "man");
    assert!(String::from_utf8_lossy(&man.stdout).starts_with(".ie"));
    let pages = run(dir.path(), &["man", "--dir", "man"]);
    common::assert_success(&pages, "man --dir");
    for page in ["surveyor.1", "surveyor-sync.1", "surveyor-config-schema.1"] {
        assert!(dir.path().join("man").join(page).is_file(), "{page}");
    }
    let schema = run(dir.path(), &["config", "schema"]);
    common::assert_success(&schema, "config schema");
    let schema: Value = serde_json::from_slice(&schema.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["catalog"]["properties"]["database"]["type"],
        "string"
    );
}
