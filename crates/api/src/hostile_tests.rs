//! Hostile input against the API on a real catalog: SQL metacharacters, NUL, huge and repeated
//! parameters, forged cursors, oversized bodies, path traversal, and tokens on every route.
//!
//! Requests go over a raw socket so paths reach the server exactly as written (no client-side
//! normalisation of `..` or re-encoding). SQLite always, Postgres when
//! `SURVEYOR_TEST_DATABASE_URL` is set.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use surveyor_model::{Entity, Observation, Secret};
use surveyor_store::{ConnectOptions, Store};

use super::*;
use crate::test_support::{names_in, sync_and_serve, team_a};

const READER: &str = "hostile-reader-token";
const OPERATOR: &str = "hostile-operator-token";
/// Smaller than the catalog, so paging and the graph's node cap are exercised.
const MAX_PAGE: u32 = 10;

/// Titles that carry the characters SQL and LIKE treat specially, so filters on them test
/// that those characters are matched literally.
const TITLES: &[&str] = &[
    "100% uptime",
    "snake_case service",
    "O'Brien's \"quoted\" service",
    "back\\slash; -- comment",
    "Ünïcödé 日本 サービス",
    "plain",
];

fn fixture() -> Vec<Observation> {
    let mut obs = Vec::new();
    for i in 0..12 {
        let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": format!("svc-{i}"), "namespace": "default",
                "title": TITLES[i % TITLES.len()],
                "labels": {"tier": if i % 2 == 0 { "gold" } else { "silver" }}},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
        // A dependency chain svc-0 -> svc-1 -> ... so deep graphs have somewhere to go.
        if i + 1 < 12 {
            v["spec"]["dependsOn"] = json!([format!("component:default/svc-{}", i + 1)]);
        }
        obs.push(Observation::discovered(
            "org",
            format!("id-{i}"),
            Entity::from_value(v).expect("entity"),
        ));
    }
    obs.push(team_a());
    obs
}

struct NoControl;

impl Control for NoControl {
    fn connectors(&self) -> Vec<ConnectorView> {
        vec![ConnectorView {
            id: "gh".into(),
            kind: "test".into(),
            ..ConnectorView::default()
        }]
    }
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        match id {
            "gh" => Ok(()),
            _ => Err(TriggerRefusal::Unknown(id.into())),
        }
    }
}

/// A catalog on one backend, served with read and trigger tokens.
struct Target {
    backend: &'static str,
    addr: SocketAddr,
    store: Store,
    schema: Option<String>,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn targets() -> Vec<Target> {
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .expect("sqlite");
    let mut out = vec![serve_on("sqlite", sqlite, None, dir).await];
    if let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") {
        // Tests of one process run at once: the counter keeps their schemas apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let schema = format!(
            "api_hostile_{}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let pg = Store::connect_with(
            &url,
            ConnectOptions {
                schema: Some(schema.clone()),
            },
        )
        .await
        .expect("SURVEYOR_TEST_DATABASE_URL is set but Postgres is unusable");
        let dir = tempfile::tempdir().expect("dir");
        out.push(serve_on("postgres", pg, Some(schema), dir).await);
    } else {
        eprintln!("Postgres half skipped: SURVEYOR_TEST_DATABASE_URL is not set");
    }
    out
}

async fn serve_on(
    backend: &'static str,
    store: Store,
    schema: Option<String>,
    dir: tempfile::TempDir,
) -> Target {
    let config = ApiConfig {
        read_tokens: vec![Secret::new(READER)],
        trigger_tokens: vec![Secret::new(OPERATOR)],
        max_page_size: MAX_PAGE,
        scorecards: vec![crate::test_support::readiness()],
        ..ApiConfig::default()
    };
    let (addr, task) =
        sync_and_serve(store.clone(), fixture(), config, Some(Arc::new(NoControl))).await;
    Target {
        backend,
        addr,
        store,
        schema,
        _dir: dir,
        _task: task,
    }
}

impl Target {
    async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            let _ = self.store.drop_schema(schema).await;
        }
        self.store.close().await;
    }
}

/// What came back: status, and the body as JSON (or as a JSON string when it is not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    json: bool,
}

/// One HTTP/1.1 request written byte for byte; `target` goes on the request line as is.
async fn raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    }) {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        // A server that answers before reading everything may close early; its answer counts.
        let _ = s.write_all(&bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse(&out)
    })
    .await
    .expect("request thread")
}

fn parse(out: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(out);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    match serde_json::from_str::<Value>(&body) {
        Ok(v) => Answer {
            status,
            body: v,
            json: true,
        },
        Err(_) => Answer {
            status,
            body: Value::String(body),
            json: false,
        },
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {token}"))]
}

async fn get(t: &Target, target: &str) -> Answer {
    raw(t.addr, "GET", target, &bearer(READER), b"").await
}

/// A refusal: 4xx with an error body in the route's shape (Backstage's or surveyor's).
fn assert_refused(what: &str, a: &Answer) {
    assert!(
        (400..500).contains(&a.status),
        "{what}: expected a 4xx, got {} {}",
        a.status,
        a.body
    );
    let detail = a.body["detail"]
        .as_str()
        .or(a.body["error"]["message"].as_str())
        .unwrap_or_default();
    assert!(
        a.json && !detail.is_empty(),
        "{what}: a {} without a JSON error: {}",
        a.status,
        a.body
    );
}

fn percent(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A hostile value either matches nothing (a 200 answer that is `empty`) or is refused.
fn assert_empty_or_refused(what: &str, a: &Answer, empty: impl FnOnce(&Answer) -> bool) {
    if a.status == 200 {
        assert!(empty(a), "{what}: {}", a.body);
    } else {
        assert_refused(what, a);
    }
}

fn items(a: &Answer) -> Vec<String> {
    names_in(a.body["items"].as_array().or(a.body.as_array()))
}

/// Every item of a paged list, following `nextCursor`.
async fn all_pages(t: &Target, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let a = get(t, &format!("{path}{cursor}")).await;
        assert_eq!(a.status, 200, "{path}{cursor}: {}", a.body);
        out.extend(a.body["items"].as_array().cloned().unwrap_or_default());
        match a.body["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// Everything the catalog holds that a request could have changed.
async fn snapshot(t: &Target) -> Value {
    let entities = all_pages(t, "/api/v1/entities?include_deleted=true").await;
    let changes = all_pages(t, "/api/v1/changes?limit=10").await;
    let runs = get(t, "/api/v1/runs").await;
    assert_eq!(runs.status, 200);
    assert_eq!(entities.len(), 13, "the fixture is all there");
    json!([entities, changes, runs.body])
}

#[tokio::test]
async fn sql_metacharacters_are_values_not_sql() {
    for t in targets().await {
        let before = snapshot(&t).await;
        let b = t.backend;
        // Text search matches the characters literally: each finds exactly the entities whose
        // title holds it (the fixture's own data decides, not a hard-coded answer).
        for needle in ["%", "_", "'", "\"", "\\", ";", "--", "日本"] {
            let mut want: Vec<String> = (0..12)
                .filter(|i| TITLES[i % TITLES.len()].to_lowercase().contains(needle))
                .map(|i| format!("svc-{i}"))
                .collect();
            want.sort();
            let a = get(&t, &format!("/api/v1/entities?q={}", percent(needle))).await;
            assert_eq!(a.status, 200, "{b} q={needle}: {}", a.body);
            assert_eq!(items(&a), want, "{b} q={needle}");
        }
        // Injection attempts in every filter: no rows (or a 400), never more than honest input.
        for attack in [
            "' OR 1=1 --",
            "' OR '1'='1",
            "\" OR \"\"=\"",
            "x'; DROP TABLE entities; --",
            "%' OR entity_ref LIKE '%",
            "1) OR (1=1",
            "\\' OR 1=1 --",
        ] {
            let enc = percent(attack);
            for query in [
                format!("kind={enc}"),
                format!("namespace={enc}"),
                format!("q={enc}"),
                format!("source={enc}"),
                format!("label=tier%3D{enc}"),
                format!("depends_on=npm%3A{enc}"),
                format!("owner={enc}"),
            ] {
                let a = get(&t, &format!("/api/v1/entities?{query}")).await;
                assert_empty_or_refused(&format!("{b} {query}"), &a, |a| items(a).is_empty());
            }
            for target in [
                format!("/api/v1/runs?connector={enc}"),
                format!("/api/catalog/entities?filter=kind%3D{enc}"),
                format!("/api/catalog/entities?filter=metadata.name%3D{enc}"),
                format!("/api/catalog/entities/by-query?fullTextFilterTerm={enc}"),
                format!("/api/catalog/entity-facets?facet=kind&filter=kind%3D{enc}"),
            ] {
                let a = get(&t, &target).await;
                assert_empty_or_refused(&format!("{b} {target}"), &a, |a| {
                    a.body["items"]
                        .as_array()
                        .or(a.body.as_array())
                        .is_none_or(Vec::is_empty)
                        && a.body["facets"]["kind"]
                            .as_array()
                            .is_none_or(Vec::is_empty)
                });
            }
            for target in [
                format!("/api/v1/changes?entity={enc}"),
                format!("/api/v1/changes?op={enc}"),
                format!("/api/v1/entities/component/default/{enc}"),
                format!("/api/v1/entities/{enc}/default/svc-1"),
                format!("/api/catalog/entities/by-name/component/{enc}/svc-1"),
                format!("/api/v1/entities/component/default/{enc}/graph"),
            ] {
                let a = get(&t, &target).await;
                assert_refused(&format!("{b} {target}"), &a);
            }
        }
        assert_eq!(snapshot(&t).await, before, "{b}: the catalog is unchanged");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn malformed_parameters_are_4xx_with_a_json_error() {
    for t in targets().await {
        let b = t.backend;
        let long = "a".repeat(20_000);
        let page = get(&t, "/api/v1/entities?kind=component&limit=2").await;
        let entity_cursor = page.body["nextCursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let changes = get(&t, "/api/v1/changes?limit=2").await;
        let change_cursor = changes.body["nextCursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let bq = get(&t, "/api/catalog/entities/by-query?limit=2").await;
        let bq_cursor = bq.body["pageInfo"]["nextCursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let forged = |c: Value| b64(&c.to_string());
        let many_conditions = (0..2_000)
            .map(|i| format!("metadata.labels.k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let many_filters = (0..500)
            .map(|i| format!("filter=kind%3Dk{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let many_facets = (0..500)
            .map(|i| format!("facet=f{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let cases: Vec<String> = vec![
            // NUL, raw and percent-encoded, in every kind of parameter and in paths.
            "/api/v1/entities?q=a%00b".into(),
            "/api/v1/entities?kind=component%00".into(),
            "/api/v1/entities?namespace=%00".into(),
            "/api/v1/entities?label=tier%3Dgo%00ld".into(),
            "/api/v1/entities?source=gh%00".into(),
            "/api/v1/runs?connector=gh%00".into(),
            "/api/v1/entities/component/default/svc-1%00".into(),
            "/api/v1/entities/component/default/svc-1%00/graph".into(),
            "/api/catalog/entities?filter=kind%3Dcomponent%00".into(),
            "/api/catalog/entities/by-query?fullTextFilterTerm=%00".into(),
            "/api/catalog/entities/by-name/component/default/svc%00".into(),
            // Label keys that are not label keys.
            "/api/v1/entities?label=a%22b%3Dc".into(),
            "/api/v1/entities?label=%27%3Dc".into(),
            "/api/v1/entities?label=%3Dc".into(),
            // Very long values.
            format!("/api/v1/entities?q={long}"),
            format!("/api/v1/entities?kind={long}"),
            format!("/api/v1/entities?source={long}"),
            format!("/api/v1/entities/component/default/{long}"),
            format!("/api/v1/runs?connector={long}"),
            format!("/api/catalog/entities/by-query?fullTextFilterTerm={long}"),
            // Huge and nonsensical limits, offsets and depths.
            "/api/v1/entities?limit=4294967295".into(),
            "/api/v1/entities?limit=18446744073709551616".into(),
            "/api/v1/entities?limit=-1".into(),
            format!("/api/v1/entities?limit={}", MAX_PAGE + 1),
            "/api/v1/changes?limit=99999999".into(),
            "/api/v1/runs?limit=0".into(),
            "/api/catalog/entities?offset=-5".into(),
            "/api/catalog/entities?offset=99999999999999999999999".into(),
            "/api/catalog/entities/by-query?limit=0".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=0".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=6".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=4294967296".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=-1".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=deep".into(),
            // Forged, garbled and borrowed cursors.
            "/api/v1/entities?cursor=%%%".into(),
            "/api/v1/entities?cursor=!!!!".into(),
            format!(
                "/api/v1/entities?cursor={}",
                URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x9f])
            ),
            format!("/api/v1/entities?cursor={}", b64("{not json")),
            format!("/api/v1/entities?cursor={}", b64("component:default/svc-3")),
            format!("/api/v1/entities?kind=group&cursor={entity_cursor}"),
            format!("/api/v1/entities?cursor={change_cursor}"),
            format!("/api/v1/entities?cursor={bq_cursor}"),
            format!("/api/v1/changes?cursor={entity_cursor}"),
            format!("/api/v1/changes?op=deleted&cursor={change_cursor}"),
            format!("/api/v1/changes?cursor={}", b64("12abc")),
            "/api/v1/changes?cursor=AAAA".into(),
            "/api/catalog/entities/by-query?cursor=bogus".into(),
            format!("/api/catalog/entities/by-query?cursor={}", b64("{}")),
            format!("/api/catalog/entities/by-query?cursor={entity_cursor}"),
            format!(
                "/api/catalog/entities/by-query?cursor={}",
                forged(
                    json!({"filters": [many_conditions.clone()], "fields": [], "order": null, "text": null, "limit": 2, "offset": 0})
                )
            ),
            format!(
                "/api/catalog/entities/by-query?cursor={}",
                forged(
                    json!({"filters": [], "fields": [], "order": null, "text": "a\u{0}b", "limit": 2, "offset": 0})
                )
            ),
            // Filters, fields and facets by the thousand.
            format!("/api/catalog/entities?filter={}", percent(&many_conditions)),
            format!(
                "/api/catalog/entities/by-query?filter={}",
                percent(&many_conditions)
            ),
            format!("/api/catalog/entities?{many_filters}"),
            format!("/api/catalog/entity-facets?{many_facets}"),
            format!(
                "/api/catalog/entities?fields={}",
                percent(&"a,".repeat(2_000))
            ),
            "/api/catalog/entities/by-query?orderField=metadata.name,sideways".into(),
            // Repeated parameters that take one value.
            "/api/v1/entities?kind=component&kind=group".into(),
            "/api/v1/entities?limit=1&limit=2".into(),
            "/api/v1/changes?op=created&op=deleted".into(),
            "/api/v1/entities/component/default/svc-0/graph?depth=1&depth=5".into(),
            "/api/catalog/entities?limit=1&limit=2".into(),
            "/api/catalog/entities?offset=1&offset=2".into(),
            "/api/catalog/entities/by-query?limit=1&limit=2".into(),
            "/api/catalog/entities/by-query?cursor=a&cursor=b".into(),
            // Path traversal and refs that cannot name an entity.
            "/api/v1/entities/component/default/..%2F..%2Fetc%2Fpasswd".into(),
            "/api/v1/entities/..%2F..%2F/default/x".into(),
            "/api/v1/entities/component/..%5C..%5Cwindows/x".into(),
            "/api/v1/entities/component/default/%2e%2e".into(),
            "/api/v1/entities/component/default/%FF%FE".into(),
            "/api/catalog/entities/by-name/component/default/..%2F..%2Fetc%2Fpasswd".into(),
            "/api/v1/entities/../../../etc/passwd".into(),
            "/api/v1/entities/component/default/svc-1/../../../../../etc/passwd".into(),
            "/../../etc/passwd".into(),
            "/api/v1/connectors/..%2F..%2Fetc/sync".into(),
            // Other parameters of the wrong shape.
            "/api/v1/changes?since=yesterday".into(),
            "/api/v1/changes?entity=component%3A%3A%3A".into(),
            "/api/v1/entities?include_deleted=maybe".into(),
            "/api/v1/entities?unknown=1".into(),
        ];
        // Backstage serves any page size (the whole catalog at most): huge limits are answered
        // in full, read from the store a page at a time.
        for target in [
            "/api/catalog/entities?limit=1000000".to_string(),
            "/api/catalog/entities/by-query?limit=100000000".to_string(),
            format!(
                "/api/catalog/entities/by-query?cursor={}",
                forged(
                    json!({"filters": [], "fields": [], "order": null, "text": null, "limit": usize::MAX, "offset": 0})
                )
            ),
        ] {
            let a = get(&t, &target).await;
            assert_eq!(a.status, 200, "{b} {target}: {}", a.body);
            let n = a
                .body
                .as_array()
                .or(a.body["items"].as_array())
                .map(Vec::len);
            assert_eq!(n, Some(13), "{b} {target}: every entity, past MAX_PAGE");
        }
        for target in &cases {
            let a = if target.ends_with("/sync") {
                raw(t.addr, "POST", target, &bearer(OPERATOR), b"").await
            } else {
                get(&t, target).await
            };
            let shown: String = target.chars().take(120).collect();
            assert_refused(&format!("{b} GET {shown}"), &a);
        }
        // Methods the routes do not have.
        for (method, target) in [
            ("PUT", "/api/v1/entities"),
            ("DELETE", "/api/v1/entities/component/default/svc-1"),
            ("PATCH", "/api/v1/connectors/gh/sync"),
            ("GET", "/api/v1/connectors/gh/sync"),
        ] {
            let a = raw(t.addr, method, target, &bearer(OPERATOR), b"").await;
            assert_eq!(a.status, 405, "{b} {method} {target}: {}", a.body);
            assert_refused(&format!("{b} {method} {target}"), &a);
        }
        t.cleanup().await;
    }
}

#[tokio::test]
async fn bounded_answers_for_big_asks() {
    for t in targets().await {
        let b = t.backend;
        // The deepest graph allowed answers, and never holds more nodes than a page.
        let a = get(
            &t,
            "/api/v1/entities/component/default/svc-0/graph?depth=5&relation=dependsOn",
        )
        .await;
        assert_eq!(a.status, 200, "{b}: {}", a.body);
        let depths: BTreeSet<u64> = a.body["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter_map(|n| n["depth"].as_u64())
            .collect();
        assert_eq!(depths.last(), Some(&5), "{b}: five hops along the chain");
        // team-a owns more components than a page holds: the graph stops there and says so.
        let a = get(&t, "/api/v1/entities/group/default/team-a/graph?depth=5").await;
        assert_eq!(a.status, 200, "{b}: {}", a.body);
        let nodes = a.body["nodes"].as_array().expect("nodes").len();
        assert_eq!(nodes, MAX_PAGE as usize, "{b}: {}", a.body);
        assert_eq!(a.body["truncated"], true, "{b}");
        let kept: BTreeSet<&str> = a.body["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["ref"].as_str())
            .collect();
        for e in a.body["edges"].as_array().expect("edges") {
            for end in ["source", "target"] {
                assert!(
                    kept.contains(e[end].as_str().unwrap_or_default()),
                    "{b}: an edge to a node left out: {e}"
                );
            }
        }
        // A huge offset is an empty page, not an overflow, in a query or in a cursor.
        let a = get(&t, &format!("/api/catalog/entities?offset={}", usize::MAX)).await;
        assert_eq!((a.status, a.body.clone()), (200, json!([])), "{b}");
        let far = json!({"filters": [], "fields": [], "order": null, "text": null, "limit": 2, "offset": usize::MAX});
        let a = get(
            &t,
            &format!(
                "/api/catalog/entities/by-query?cursor={}",
                URL_SAFE_NO_PAD.encode(far.to_string())
            ),
        )
        .await;
        assert_eq!(a.status, 200, "{b}: {}", a.body);
        assert!(
            items(&a).is_empty() && a.body["pageInfo"]["nextCursor"].is_null(),
            "{b}: {}",
            a.body
        );
        // The largest page allowed is answered.
        let a = get(&t, &format!("/api/v1/entities?limit={MAX_PAGE}")).await;
        assert_eq!((a.status, items(&a).len()), (200, MAX_PAGE as usize), "{b}");
        // A next page with the cursor the server gave out, a different limit allowed.
        let first = get(&t, "/api/v1/entities?kind=component&limit=5").await;
        let cursor = first.body["nextCursor"].as_str().expect("next");
        let second = get(
            &t,
            &format!("/api/v1/entities?kind=component&limit=3&cursor={cursor}"),
        )
        .await;
        assert_eq!(second.status, 200, "{b}: {}", second.body);
        assert_eq!(items(&second), ["svc-3", "svc-4", "svc-5"], "{b}");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    for t in targets().await {
        let b = t.backend;
        let mut headers = bearer(OPERATOR);
        // A body announced far over the limit is refused before a byte of it is read.
        headers.push(("Content-Length", (10 * 1024 * 1024).to_string()));
        let a = raw(t.addr, "POST", "/api/v1/connectors/gh/sync", &headers, b"").await;
        assert_eq!(a.status, 413, "{b}: {}", a.body);
        assert_refused(b, &a);
        // A chunked body that grows past the limit is cut off there.
        let mut headers = bearer(OPERATOR);
        headers.push(("Transfer-Encoding", "chunked".into()));
        let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
        let body = format!("{}0\r\n\r\n", chunk.repeat(300));
        let a = raw(
            t.addr,
            "POST",
            "/api/v1/connectors/gh/sync",
            &headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(a.status, 413, "{b}: {}", a.body);
        assert_refused(b, &a);
        // A by-query whose filter is `metadata.name=x,` `times` times over (20 bytes each, encoded).
        let by_query_of = |times: usize| {
            let filter = "metadata.name%3Dx%2C".repeat(times);
            format!("/api/catalog/entities/by-query?filter={filter}")
        };
        // A 40 KB query string.
        let a = get(&t, &by_query_of(2_000)).await;
        assert_eq!(a.status, 414, "{b}: {}", a.body);
        assert_refused(&format!("{b} huge by-query"), &a);
        // Past 64 KiB hyper itself refuses the request line (a bare 414) before any of ours runs.
        let a = get(&t, &by_query_of(5_000)).await;
        assert_eq!(a.status, 414, "{b}: {}", a.body);
        // Small bodies and no bodies are fine.
        let a = raw(
            t.addr,
            "POST",
            "/api/v1/connectors/gh/sync",
            &bearer(OPERATOR),
            b"{}",
        )
        .await;
        assert_eq!(a.status, 202, "{b}: {}", a.body);
        t.cleanup().await;
    }
}

/// Every route the router registers, read from this crate's source so a new one cannot be
/// left out, with the routes the OpenAPI document lists: (method, path template).
fn routes() -> BTreeSet<(String, String)> {
    let source = include_str!("lib.rs");
    let mut out = BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let path = after[..close].to_string();
        let tail = after[close + 1..].trim_start_matches([',', ' ', '\n', '\r']);
        let method = tail
            .split('(')
            .next()
            .unwrap_or_default()
            .trim()
            .to_uppercase();
        assert!(
            method == "GET" || method == "POST",
            "route {path}: cannot tell its method from {tail:.40}"
        );
        out.insert((method, path));
    }
    out
}

/// A request to `path` that its handler answers with 200 (or 202), given the uid of an entity
/// and the id of a location.
fn concrete(path: &str, uid: &str, location: &str) -> String {
    let path = path
        .replace(
            "/api/catalog/locations/{id}",
            &format!("/api/catalog/locations/{location}"),
        )
        .replace("{uid}", uid)
        .replace("{kind}", "component")
        .replace("{namespace}", "default")
        .replace("{name}", "svc-1")
        .replace("{scorecard}", "readiness")
        .replace("{id}", "gh");
    match path.as_str() {
        "/api/catalog/entity-facets" => format!("{path}?facet=kind"),
        _ => path,
    }
}

/// The body a POST route answers 200 (or 202) to.
fn body_for(path: &str) -> &'static [u8] {
    match path {
        "/api/catalog/entities/by-refs" => br#"{"entityRefs": ["component:default/svc-1"]}"#,
        "/api/catalog/refresh" => br#"{"entityRef": "component:default/svc-1"}"#,
        "/api/catalog/validate-entity" => {
            br#"{"location": "url:https://example.com/catalog-info.yaml", "entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "x"}, "spec": {}}}"#
        }
        _ => b"",
    }
}

/// POST routes that only read, so a read token is enough.
const READING_POSTS: &[&str] = &[
    "/api/catalog/entities/by-refs",
    "/api/catalog/validate-entity",
];

/// Reachable without a token: the probes an orchestrator calls with no credentials. They say
/// only "ok"/"ready" (or that the database is unavailable), nothing about the catalog.
/// Routes that take no bearer token: the probes, and webhooks (the vendor's signature, checked
/// by the connector, stands in for it; `hooks::tests` covers its refusals).
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/hooks/{connector}"];

#[tokio::test]
async fn every_route_demands_its_token() {
    for t in targets().await {
        let b = t.backend;
        let mut all = routes();
        assert!(all.len() >= 18, "{b}: routes found in lib.rs: {all:?}");
        let doc = get(&t, "/openapi.json").await;
        assert_eq!(doc.status, 200);
        for (path, ops) in doc.body["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                let route = (method.to_uppercase(), path.clone());
                assert!(
                    all.contains(&route),
                    "{b}: {route:?} is documented but not found among the routes"
                );
            }
        }
        for (method, path) in &all {
            let documented = doc.body["paths"][path][method.to_lowercase()].is_object();
            assert!(
                documented
                    || PUBLIC.contains(&path.as_str())
                    || ["/openapi.json", "/docs"].contains(&path.as_str()),
                "{b}: {method} {path} is not in the OpenAPI document"
            );
        }
        all.retain(|(_, p)| !PUBLIC.contains(&p.as_str()));
        let one = get(&t, "/api/catalog/entities/by-name/component/default/svc-1").await;
        let uid = one.body["metadata"]["uid"]
            .as_str()
            .expect("a uid")
            .to_string();
        let locations = get(&t, "/api/catalog/locations").await;
        let location = locations.body[0]["data"]["id"]
            .as_str()
            .expect("a location")
            .to_string();
        for (method, path) in &all {
            let target = concrete(path, &uid, &location);
            let body = body_for(path);
            let what = format!("{b} {method} {target}");
            for headers in [
                vec![],
                bearer("wrong-token"),
                bearer(""),
                vec![("Authorization", format!("Basic {}", READER))],
                vec![("Authorization", READER.to_string())],
                vec![("Authorization", format!("Bearer {READER}x"))],
                vec![("Authorization", format!("Bearer {}", &READER[1..]))],
            ] {
                let a = raw(t.addr, method, &target, &headers, body).await;
                assert_eq!(a.status, 401, "{what} with {headers:?}: {}", a.body);
                assert_refused(&what, &a);
            }
            let with_reader = raw(t.addr, method, &target, &bearer(READER), body).await;
            let with_operator = raw(t.addr, method, &target, &bearer(OPERATOR), body).await;
            if method == "POST" && !READING_POSTS.contains(&path.as_str()) {
                assert_eq!(
                    with_reader.status, 403,
                    "{what}: a read token may not trigger"
                );
                assert_refused(&what, &with_reader);
                let started = if path.starts_with("/api/catalog/") {
                    200
                } else {
                    202
                };
                assert_eq!(
                    with_operator.status, started,
                    "{what}: {}",
                    with_operator.body
                );
            } else {
                assert_eq!(with_reader.status, 200, "{what}: {}", with_reader.body);
                assert_eq!(with_operator.status, 200, "{what}: {}", with_operator.body);
            }
        }
        for path in ["/healthz", "/readyz"] {
            let a = raw(t.addr, "GET", path, &[], b"").await;
            assert_eq!(a.status, 200, "{b} {path} needs no token");
        }
        // A webhook without a token reaches the scheduler, which answers for its connector
        // (here there is none: not found, rather than unauthorized).
        let a = raw(t.addr, "POST", "/hooks/github", &[], b"{}").await;
        assert_eq!(a.status, 404, "{b}: {}", a.body);
        // Unknown paths say nothing more with a token than without.
        let a = raw(t.addr, "GET", "/api/v1/secret-admin", &[], b"").await;
        assert_eq!(a.status, 404, "{b}");
        t.cleanup().await;
    }
}

/// The history newest first and back, and connectors showing runs made outside this server's
/// scheduler, on each backend (their SQL differs).
#[tokio::test]
async fn changes_both_ways_and_runs_by_any_process_on_every_backend() {
    for t in targets().await {
        let seqs = |a: &Answer| -> Vec<i64> {
            a.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["seq"].as_i64())
                .collect()
        };
        let mut newest_first: Vec<i64> = all_pages(&t, "/api/v1/changes?limit=10")
            .await
            .iter()
            .filter_map(|c| c["seq"].as_i64())
            .collect();
        newest_first.reverse();
        assert!(newest_first.len() > 6, "{}: {newest_first:?}", t.backend);
        let first = get(&t, "/api/v1/changes?order=desc&limit=3").await;
        assert_eq!(seqs(&first), newest_first[..3], "{}", t.backend);
        let c = first.body["nextCursor"].as_str().expect("next");
        let second = get(
            &t,
            &format!("/api/v1/changes?order=desc&limit=3&cursor={c}"),
        )
        .await;
        assert_eq!(seqs(&second), newest_first[3..6], "{}", t.backend);
        let c = second.body["prevCursor"].as_str().expect("prev");
        let back = get(
            &t,
            &format!("/api/v1/changes?order=desc&limit=3&cursor={c}"),
        )
        .await;
        assert_eq!(seqs(&back), newest_first[..3], "{}", t.backend);
        assert!(back.body["prevCursor"].is_null(), "{}", t.backend);

        let connectors = get(&t, "/api/v1/connectors").await;
        let gh = &connectors.body["items"][0];
        assert_eq!(
            (&gh["id"], &gh["lastStatus"]),
            (&json!("gh"), &json!("succeeded")),
            "{}: {}",
            t.backend,
            connectors.body
        );
        assert!(gh["lastFinished"].is_string(), "{}: {gh}", t.backend);
        t.cleanup().await;
    }
}
