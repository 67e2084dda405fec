//! Every route against a real catalog (SQLite) on loopback: filters, paging, errors, auth, the
//! Backstage shapes, metrics and the OpenAPI document.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation, Secret};
use utoipa::OpenApi;

use super::*;
use crate::test_support::{names_in, sync_and_serve, team_a};

fn component(name: &str, owner: &str, extra: Value) -> Observation {
    let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}});
    merge(&mut v, extra);
    Observation::discovered(
        "org",
        format!("id-{name}"),
        Entity::from_value(v).expect("entity"),
    )
}

fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}

fn catalog() -> Vec<Observation> {
    let mut obs: Vec<Observation> = (0..7)
        .map(|i| {
            component(
                &format!("svc-{i}"),
                if i % 2 == 0 { "team-a" } else { "team-b" },
                json!({}),
            )
        })
        .collect();
    obs.push(component(
        "web",
        "team-a",
        json!({"metadata": {"title": "The Web Shop", "labels": {"tier": "gold"}, "tags": ["react"]},
               "spec": {"type": "website", "dependsOn": ["component:default/svc-0"],
                        "packageDependencies": [{"ecosystem": "npm", "package": "react", "requirement": "^18", "scope": "runtime", "file": "package.json"}]}}),
    ));
    obs.push(team_a());
    obs
}

struct Server {
    base: String,
    client: reqwest::Client,
    store: Store,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The status of a Backstage route's answer and the name of its error (`error.name`).
    async fn error_name(&self, path: &str) -> (u16, Option<String>) {
        let (code, body) = self.get(path).await;
        (code, body["error"]["name"].as_str().map(str::to_string))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, None).await
    }

    async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.client.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[derive(Default)]
struct FakeControl {
    triggered: Mutex<Vec<String>>,
}

impl Control for FakeControl {
    fn connectors(&self) -> Vec<ConnectorView> {
        vec![ConnectorView {
            id: "gh".into(),
            kind: "github".into(),
            schedule: Some("0 * * * *".into()),
            ..ConnectorView::default()
        }]
    }
    fn connector_metrics(&self) -> Vec<(String, Vec<surveyor_model::ConnectorMetric>)> {
        vec![(
            "gh".into(),
            vec![surveyor_model::ConnectorMetric {
                name: "http_not_modified_total",
                help: "304s",
                value: 41.0,
                counter: true,
            }],
        )]
    }

    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        match id {
            "gh" => {
                self.triggered.lock().unwrap().push(id.into());
                Ok(())
            }
            "busy" => Err(TriggerRefusal::Busy(id.into())),
            _ => Err(TriggerRefusal::Unknown(id.into())),
        }
    }
}

async fn start(config: ApiConfig, control: Option<Arc<dyn Control>>) -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .expect("store");
    let (addr, task) = sync_and_serve(store.clone(), catalog(), config, control).await;
    surveyor_audit::record(&store, &Default::default(), chrono::Utc::now())
        .await
        .expect("record findings");
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
        _dir: dir,
        _task: task,
    }
}

fn names(v: &Value) -> Vec<String> {
    names_in(v["items"].as_array())
}

#[tokio::test]
async fn scorecards_answer_grades_per_team_a_trend_and_turns() {
    use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};
    let card = Scorecard {
        name: "readiness".into(),
        title: "Readiness".into(),
        applies_to: AppliesTo {
            types: vec!["service".into(), "website".into()],
            ..AppliesTo::default()
        },
        levels: vec!["bronze".into(), "silver".into()],
        checks: vec![
            Check::new("owned", "bronze", Test::Relation("ownedBy".into())),
            Check {
                name: "deps".into(),
                level: "silver".into(),
                test: Test::Dependency {
                    ecosystem: Some("npm".into()),
                    package: "react".into(),
                    at_least: None,
                },
            },
        ],
    };
    let s = start(
        ApiConfig {
            scorecards: vec![card.clone()],
            ..ApiConfig::default()
        },
        None,
    )
    .await;
    surveyor_grade::score::record(&s.store, &[card], chrono::Utc::now(), Some("run-1"))
        .await
        .expect("grade");
    let (code, list) = s.get("/api/v1/scorecards").await;
    assert_eq!(code, 200, "{list}");
    let summary = &list["items"][0];
    assert_eq!(summary["name"], "readiness");
    let graded = summary["graded"].as_u64().expect("graded");
    let counted: u64 = summary["counts"]
        .as_object()
        .expect("counts")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(counted, graded, "{summary}");

    let (code, all) = s.get("/api/v1/scorecards/readiness").await;
    assert_eq!(code, 200, "{all}");
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len() as u64, graded);
    // web depends on react: it fails silver and says why.
    let web = items
        .iter()
        .find(|i| i["entity"] == "component:default/web")
        .expect("web is graded");
    assert_eq!(web["level"], "bronze", "{web}");
    assert!(
        web["failing"]["deps"]
            .as_str()
            .is_some_and(|w| w.contains("react")),
        "{web}"
    );
    let teams: u64 = all["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .flat_map(|t| t["counts"].as_object().into_iter().flat_map(|c| c.values()))
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(teams, graded, "the roll-up counts every graded entity once");

    let (_, bronze) = s.get("/api/v1/scorecards/readiness?level=bronze").await;
    assert!(
        bronze["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["level"] == "bronze"),
        "{bronze}"
    );
    let (_, mine) = s.get("/api/v1/scorecards/readiness?owner=team-b").await;
    assert!(
        mine["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["owner"] == "group:default/team-b"),
        "{mine}"
    );
    let (code, trend) = s.get("/api/v1/scorecards/readiness/trend").await;
    assert_eq!(code, 200);
    assert!(!trend["points"].as_array().expect("points").is_empty());
    let (code, turns) = s
        .get("/api/v1/scorecards/readiness/turns?entity=component:web")
        .await;
    assert_eq!((code, turns["items"].clone()), (200, json!([])));
    for (path, want) in [
        ("/api/v1/scorecards/nope", 404),
        ("/api/v1/scorecards/readiness?level=gold", 400),
        ("/api/v1/scorecards/readiness?color=red", 400),
        ("/api/v1/scorecards/readiness/turns?limit=0", 400),
    ] {
        assert_eq!(s.get(path).await.0, want, "{path}");
    }
}

#[tokio::test]
async fn components_filter_by_classification_and_show_it() {
    let s = start(ApiConfig::default(), None).await;
    let class = |entity: &str, facet: &str, value: &str| surveyor_store::Classification {
        entity_ref: format!("component:default/{entity}"),
        facet: facet.into(),
        value: value.into(),
        declared: false,
        evidence: r#"[{"source":"pd","said":"incident urgency high"}]"#.into(),
    };
    s.store
        .record_classifications(
            &[
                class("web", "tier", "tier-1"),
                class("web", "stack", "typescript/react"),
                class("svc-1", "tier", "tier-2"),
                class("svc-1", "stack", "typescript"),
            ],
            chrono::Utc::now(),
        )
        .await
        .expect("record");
    for (query, want) in [
        ("tier=tier-1", vec!["web"]),
        ("tier=TIER-2", vec!["svc-1"]),
        ("stack=typescript", vec!["svc-1", "web"]),
        ("stack=typescript/react&tier=tier-1", vec!["web"]),
        ("stack=typescript/vue", vec![]),
        ("runtime=jvm", vec![]),
    ] {
        let (code, page) = s.get(&format!("/api/v1/entities?{query}")).await;
        assert_eq!(code, 200, "{query}: {page}");
        assert_eq!(names(&page), want, "{query}");
    }
    let (_, one) = s.get("/api/v1/entities/component/default/web").await;
    let tier = &one["surveyor"]["classification"]["tier"][0];
    assert_eq!(tier["value"], "tier-1", "{one}");
    assert_eq!(tier["evidence"][0]["said"], "incident urgency high");
    let (code, counts) = s.get("/api/v1/classifications").await;
    assert_eq!(code, 200, "{counts}");
    assert_eq!(
        counts["facets"]["tier"],
        json!([{"value": "tier-1", "count": 1}, {"value": "tier-2", "count": 1}])
    );
    // A cursor is bound to the classification filter too.
    let (_, first) = s.get("/api/v1/entities?stack=typescript&limit=1").await;
    let c = first["nextCursor"].as_str().expect("a next page");
    let (code, _) = s
        .get(&format!("/api/v1/entities?stack=rust&limit=1&cursor={c}"))
        .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn entities_filter_and_page_with_cursors() {
    let s = start(ApiConfig::default(), None).await;
    let mut cursor = String::new();
    let mut all = Vec::new();
    loop {
        let (code, page) = s
            .get(&format!(
                "/api/v1/entities?kind=component&limit=3&total=true{cursor}"
            ))
            .await;
        assert_eq!(code, 200, "{page}");
        assert_eq!(page["totalItems"], 8);
        all.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "stable order");
    assert_eq!(all.len(), 8);

    for (query, want) in [
        ("owner=team-b", vec!["svc-1", "svc-3", "svc-5"]),
        ("owner=group:default/team-a&q=shop", vec!["web"]),
        ("label=tier%3Dgold", vec!["web"]),
        ("depends_on=npm:react", vec!["web"]),
        ("depends_on=cargo:react", vec![]),
        ("kind=group", vec!["team-a"]),
        ("source=gh&kind=group", vec!["team-a"]),
        ("source=pd", vec![]),
    ] {
        let (code, page) = s.get(&format!("/api/v1/entities?{query}")).await;
        assert_eq!(code, 200, "{query}: {page}");
        assert_eq!(names(&page), want, "{query}");
    }
    let (_, page) = s.get("/api/v1/entities?q=web").await;
    assert!(page.get("totalItems").is_none(), "counted only when asked");
    let web = &page["items"][0];
    let (_, one) = s.get("/api/v1/entities/component/default/web").await;
    let mut spliced = web.clone();
    spliced["surveyor"]["history"] = one["surveyor"]["history"].clone();
    // A single Component also shows its classification (none recorded here yet).
    assert_eq!(one["surveyor"]["classification"], json!({}));
    spliced["surveyor"]["classification"] = json!({});
    assert_eq!(
        spliced, one,
        "the list's spliced document is the entity's own"
    );
    assert_eq!(web["relations"][0]["type"], "dependsOn");
    assert_eq!(web["surveyor"]["sources"][0]["source"], "gh");

    for bad in [
        "limit=0",
        "limit=100000",
        "label=tier",
        "cursor=%%%",
        "nonsense=1",
        "owner=a:b:c/d",
        "depends_on=npm:",
    ] {
        let (code, body) = s.get(&format!("/api/v1/entities?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn one_entity_its_graph_history_and_runs() {
    let s = start(ApiConfig::default(), None).await;
    let (code, e) = s.get("/api/v1/entities/component/default/web").await;
    assert_eq!(code, 200);
    assert_eq!(e["spec"]["type"], "website");
    assert_eq!(
        e["surveyor"]["history"],
        "/api/v1/changes?entity=component:default/web"
    );
    let (code, e) = s.get("/api/v1/entities/Component/default/nope").await;
    assert_eq!((code, e["error"].as_str()), (404, Some("not_found")));

    let (code, g) = s
        .get("/api/v1/entities/component/default/web/graph?depth=2&relation=dependsOn,ownedBy")
        .await;
    assert_eq!(code, 200, "{g}");
    let refs: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ref"].as_str().unwrap())
        .collect();
    assert!(refs.contains(&"component:default/svc-0") && refs.contains(&"group:default/team-a"));
    assert_eq!(
        s.get("/api/v1/entities/component/default/web/graph?depth=9")
            .await
            .0,
        400
    );

    let (_, changes) = s.get("/api/v1/changes?entity=component:default/web").await;
    assert_eq!(changes["items"].as_array().unwrap().len(), 1);
    assert_eq!(changes["items"][0]["op"], "created");
    let (_, page) = s.get("/api/v1/changes?op=created&limit=4").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let next = page["nextCursor"].as_str().unwrap();
    let (_, rest) = s
        .get(&format!("/api/v1/changes?op=created&cursor={next}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
    assert_eq!(s.get("/api/v1/changes?op=exploded").await.0, 400);
    let (code, audit) = s.get("/api/v1/audit/ownership").await;
    assert_eq!(code, 200);
    // team-b owns three components but is not in the catalog.
    let unresolved = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "owner-unresolved")
        .count();
    assert_eq!(unresolved, 3, "{audit}");
    assert_eq!(s.get("/api/v1/audit/drift").await.0, 200);
    let (code, history) = s.get("/api/v1/audit/ownership/history").await;
    assert_eq!(code, 200);
    let recorded: Vec<&Value> = history["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "owner-unresolved")
        .collect();
    assert_eq!(recorded.len(), 3, "{history}");
    assert!(recorded[0]["firstSeen"].is_string() && recorded[0]["resolvedAt"].is_null());
    assert_eq!(s.get("/api/v1/audit/drift/history").await.0, 200);
    let (_, runs) = s.get("/api/v1/runs").await;
    assert_eq!(runs["items"][0]["status"], "succeeded");
}

#[tokio::test]
async fn tokens_guard_reads_and_triggers() {
    let control = Arc::new(FakeControl::default());
    let config = ApiConfig {
        read_tokens: vec![Secret::new("reader")],
        trigger_tokens: vec![Secret::new("operator")],
        ..ApiConfig::default()
    };
    let s = start(config, Some(control.clone())).await;
    assert_eq!(s.get("/api/v1/entities").await.0, 401);
    assert_eq!(s.get_with("/api/v1/entities", Some("wrong")).await.0, 401);
    assert_eq!(s.get_with("/api/v1/entities", Some("reader")).await.0, 200);
    assert_eq!(
        s.get_with("/api/v1/entities", Some("operator")).await.0,
        200
    );
    assert_eq!(s.get("/healthz").await.0, 200, "probes need no token");
    assert_eq!(s.get("/readyz").await.0, 200);
    assert_eq!(
        s.post("/api/v1/connectors/gh/sync", Some("reader")).await.0,
        403,
        "a read token is known but may not trigger"
    );
    assert_eq!(
        s.post("/api/v1/connectors/gh/sync", Some("wrong")).await.0,
        401
    );
    assert_eq!(
        s.post("/api/v1/connectors/gh/sync", Some("operator"))
            .await
            .0,
        202
    );
    assert_eq!(
        s.post("/api/v1/connectors/x/sync", Some("operator"))
            .await
            .0,
        404
    );
    assert_eq!(
        s.post("/api/v1/connectors/busy/sync", Some("operator"))
            .await
            .0,
        409
    );
    assert_eq!(*control.triggered.lock().unwrap(), ["gh"]);
    // A replica holds gh's lease: every replica shows who, and since when.
    let now = chrono::Utc::now();
    assert!(
        s.store
            .try_lease(
                "gh",
                "replica-a:7",
                now,
                now + chrono::Duration::seconds(30),
                now
            )
            .await
            .expect("lease")
    );
    let (_, metrics) = s.get_with("/metrics", Some("reader")).await;
    assert!(
        metrics.as_str().unwrap_or_default().contains(&format!(
            "surveyor_lease_held_since_seconds{{connector=\"gh\",holder=\"replica-a:7\"}} {}",
            now.timestamp()
        )),
        "{metrics}"
    );
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("surveyor_connector_http_not_modified_total{connector=\"gh\"} 41"),
        "{metrics}"
    );
    let (_, list) = s.get_with("/api/v1/connectors", Some("reader")).await;
    assert_eq!(list["items"][0]["schedule"], "0 * * * *");
    assert_eq!(list["items"][0]["lease"]["holder"], "replica-a:7");
    assert_eq!(list["items"][0]["lease"]["held"], true);
    assert!(list["items"][0]["lease"]["since"].is_string(), "{list}");

    // Without trigger tokens, triggering is off altogether.
    let open = start(ApiConfig::default(), Some(control)).await;
    assert_eq!(open.get("/api/v1/entities").await.0, 200);
    assert_eq!(open.post("/api/v1/connectors/gh/sync", None).await.0, 403);
}

#[tokio::test]
async fn backstage_routes_answer_in_backstage_shapes() {
    let s = start(ApiConfig::default(), None).await;
    let (code, list) = s
        .get("/api/catalog/entities?filter=kind=component,spec.type=service&fields=metadata.name,kind&limit=2&offset=1")
        .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(
        list,
        json!([{"kind": "Component", "metadata": {"name": "svc-1"}}, {"kind": "Component", "metadata": {"name": "svc-2"}}])
    );
    let (_, either) = s
        .get(
            "/api/catalog/entities?filter=metadata.name=web&filter=kind=group&fields=metadata.name",
        )
        .await;
    assert_eq!(either.as_array().unwrap().len(), 2, "filters OR");

    let (code, e) = s
        .get("/api/catalog/entities/by-name/component/default/web")
        .await;
    assert_eq!(code, 200);
    assert!(e["metadata"]["uid"].is_string() && e["metadata"]["etag"].is_string());
    assert_eq!(e["relations"][0]["targetRef"], "component:default/svc-0");
    assert_eq!(
        s.error_name("/api/catalog/entities/by-name/component/default/nope")
            .await,
        (404, Some("NotFoundError".into()))
    );

    let (_, page) = s
        .get("/api/catalog/entities/by-query?filter=kind=component&limit=3&orderField=metadata.name,desc&fields=metadata.name")
        .await;
    assert_eq!(page["totalItems"], 8);
    assert_eq!(names(&page), ["web", "svc-6", "svc-5"]);
    let next = page["pageInfo"]["nextCursor"].as_str().unwrap();
    let (_, page2) = s
        .get(&format!("/api/catalog/entities/by-query?cursor={next}"))
        .await;
    assert_eq!(names(&page2), ["svc-4", "svc-3", "svc-2"]);
    assert!(page2["pageInfo"]["prevCursor"].is_string());
    let (_, text) = s
        .get("/api/catalog/entities/by-query?fullTextFilterTerm=shop&fields=metadata.name")
        .await;
    assert_eq!(names(&text), ["web"]);
    assert_eq!(
        s.error_name("/api/catalog/entities/by-query?cursor=bogus")
            .await,
        (400, Some("InputError".into()))
    );

    let (_, facets) = s
        .get("/api/catalog/entity-facets?facet=kind&facet=spec.type&filter=kind=component")
        .await;
    assert_eq!(
        facets["facets"]["spec.type"],
        json!([{"value": "service", "count": 7}, {"value": "website", "count": 1}])
    );
    assert_eq!(
        facets["facets"]["kind"],
        json!([{"value": "Component", "count": 8}])
    );
}

/// Every page of a by-query, following `nextCursor`: the names in order and `totalItems`.
async fn all_pages(s: &Server, query: &str) -> (Vec<String>, Value) {
    let (code, mut page) = s
        .get(&format!("/api/catalog/entities/by-query?{query}&limit=2"))
        .await;
    assert_eq!(code, 200, "{query}: {page}");
    let total = page["totalItems"].clone();
    let mut out = names(&page);
    while let Some(next) = page["pageInfo"]["nextCursor"].as_str() {
        let (code, p) = s
            .get(&format!("/api/catalog/entities/by-query?cursor={next}"))
            .await;
        assert_eq!(code, 200, "{query}: {p}");
        assert_eq!(
            p["totalItems"], total,
            "{query}: the total holds across pages"
        );
        out.extend(names(&p));
        page = p;
    }
    (out, total)
}

#[tokio::test]
async fn by_query_paged_by_the_store_answers_as_the_matcher_does() {
    let s = start(ApiConfig::default(), None).await;
    // A filter given twice is two alternatives, which the store does not page: the in-memory
    // matcher answers it, and must agree with the store's own paging of the single filter.
    for (filter, text, expected) in [
        (
            "kind=component,relations.ownedBy=group:default/team-a",
            "",
            &["svc-0", "svc-2", "svc-4", "svc-6", "web"][..],
        ),
        (
            "KIND=Component,metadata.namespace=default",
            "",
            &[
                "svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5", "svc-6", "web",
            ],
        ),
        (
            "relations.ownedBy=Group:Default/Team-B",
            "",
            &["svc-1", "svc-3", "svc-5"],
        ),
        ("kind=component", "&fullTextFilterTerm=shop", &["web"]),
        ("kind=group", "", &["team-a"]),
        ("kind=api", "", &[]),
    ] {
        let (store, store_total) = all_pages(&s, &format!("filter={filter}{text}")).await;
        let (memory, memory_total) =
            all_pages(&s, &format!("filter={filter}&filter={filter}{text}")).await;
        assert_eq!(store, expected, "{filter}{text} paged by the store");
        assert_eq!(memory, expected, "{filter}{text} matched in memory");
        assert_eq!(store_total, json!(expected.len()), "{filter}{text}");
        assert_eq!(memory_total, store_total, "{filter}{text}");
    }
    let (everything, total) = all_pages(&s, "fields=metadata.name").await;
    assert_eq!((everything.len(), total), (9, json!(9)), "no filter: all");

    let one = "kind=component,relations.ownedBy=group:default/team-a";
    let (_, store) = s
        .get(&format!(
            "/api/catalog/entities?filter={one}&offset=1&limit=3&fields=metadata.name"
        ))
        .await;
    let (_, memory) = s
        .get(&format!(
            "/api/catalog/entities?filter={one}&filter={one}&offset=1&limit=3&fields=metadata.name"
        ))
        .await;
    assert_eq!(
        store,
        json!([{"metadata": {"name": "svc-2"}}, {"metadata": {"name": "svc-4"}}, {"metadata": {"name": "svc-6"}}])
    );
    assert_eq!(memory, store);
}

#[tokio::test]
async fn metrics_openapi_docs_and_cors() {
    let config = ApiConfig {
        cors_origins: vec!["https://portal.example".into()],
        ..ApiConfig::default()
    };
    let s = start(config, None).await;
    s.get("/api/v1/entities").await;
    let (code, text) = s.get("/metrics").await;
    assert_eq!(code, 200);
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("surveyor_entities{kind=\"Component\"} 8"),
        "{text}"
    );
    assert!(text.contains("surveyor_runs_total{connector=\"gh\",status=\"succeeded\"} 1"));
    assert!(text.contains("surveyor_changes_total{op=\"created\"} 9"));
    assert!(text.contains("surveyor_run_seconds_total{connector=\"gh\"} "));
    assert!(
        text.contains("surveyor_api_requests_total{route=\"/api/v1/entities\",status=\"200\"} 1")
    );
    let (_, doc) = s.get("/openapi.json").await;
    for path in [
        "/api/v1/entities",
        "/api/catalog/entities/by-query",
        "/api/v1/connectors/{id}/sync",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let (code, page) = s.get("/docs").await;
    assert_eq!(code, 200);
    assert!(
        page.as_str()
            .unwrap_or_default()
            .contains("/api/v1/entities")
    );
    let r = s
        .client
        .get(format!("{}/api/v1/entities", s.base))
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://portal.example")
    );
    assert_eq!(s.get("/no/such/route").await.0, 404);
}

/// Keys whose values are catalog data (Backstage's `metadata`/`spec`, a patch's values, field
/// paths and owner refs used as keys), not the API's own field names.
const DATA_KEYS: &[&str] = &[
    "metadata",
    "spec",
    "patch",
    "summary",
    "disagrees",
    "cosmetic",
    "own",
];

/// Every object key of `v` outside catalog data that is not camelCase, with its path.
fn not_camel_case(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let here = format!("{path}.{k}");
                if k.contains('_') || k.contains('-') {
                    out.push(here.clone());
                }
                if !DATA_KEYS.contains(&k.as_str()) {
                    not_camel_case(v, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                not_camel_case(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_api_v1_answer_is_camel_case() {
    let control = Arc::new(FakeControl::default());
    let config = ApiConfig {
        trigger_tokens: vec![Secret::new("t")],
        scorecards: vec![crate::test_support::readiness()],
        ..ApiConfig::default()
    };
    let s = start(config, Some(control)).await;
    surveyor_grade::score::record(
        &s.store,
        &[crate::test_support::readiness()],
        chrono::Utc::now(),
        None,
    )
    .await
    .expect("grade");
    // A tombstone too, and a rename, so their fields are in the answers.
    crate::test_support::sync(&s.store, {
        let mut c = catalog();
        c.retain(|o| o.entity.metadata.name != "svc-6");
        c
    })
    .await;
    let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
    let mut asked = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let concrete = path
            .replace("{kind}", "component")
            .replace("{namespace}", "default")
            .replace("{name}", "web")
            .replace("{scorecard}", "readiness")
            .replace("{id}", "gh");
        for method in item.as_object().expect("item").keys() {
            let (code, body) = match method.as_str() {
                "get" => s.get(&concrete).await,
                "post" => s.post(&concrete, Some("t")).await,
                other => panic!("{other} {path}"),
            };
            assert!(
                (200..300).contains(&code),
                "{method} {concrete}: {code} {body}"
            );
            asked.push((concrete.clone(), body));
        }
    }
    for extra in [
        "/api/v1/entities?includeDeleted=true&total=true",
        "/api/v1/changes?order=desc&limit=2",
        "/api/v1/entities/component/default/nope",
        "/api/v1/entities?limit=0",
    ] {
        asked.push((extra.to_string(), s.get(extra).await.1));
    }
    assert!(asked.len() >= 15, "{}", asked.len());
    let mut bad = Vec::new();
    for (path, body) in &asked {
        assert!(body.is_object(), "{path}: {body}");
        not_camel_case(body, path, &mut bad);
    }
    assert!(bad.is_empty(), "keys that are not camelCase: {bad:?}");
    // The walk saw what it should: runs, changes and connectors with their fields.
    let runs = &asked
        .iter()
        .find(|(p, _)| p == "/api/v1/runs")
        .expect("runs")
        .1;
    assert!(runs["items"][0]["startedAt"].is_string(), "{runs}");
    let changes = &asked
        .iter()
        .find(|(p, _)| p == "/api/v1/changes")
        .expect("changes")
        .1;
    assert!(changes["items"][0]["entityRef"].is_string(), "{changes}");
}

#[test]
fn the_walk_finds_snake_case_outside_data_only() {
    let mut bad = Vec::new();
    not_camel_case(
        &json!({"items": [{"entity_ref": "x", "spec": {"a_b": 1}, "metadata": {"labels": {"c_d": "e"}}}]}),
        "",
        &mut bad,
    );
    assert_eq!(bad, vec![".items[0].entity_ref"]);
}

/// Every page of `/api/v1/changes?{query}` following `which` cursor from `first`: the seqs of
/// each, and the last page.
async fn change_pages(
    s: &Server,
    query: &str,
    which: &str,
    first: Value,
) -> (Vec<Vec<i64>>, Value) {
    let seqs = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["seq"].as_i64())
            .collect()
    };
    let mut pages = vec![seqs(&first)];
    let mut page = first;
    while let Some(c) = page[which].as_str() {
        let (code, next) = s.get(&format!("/api/v1/changes?{query}&cursor={c}")).await;
        assert_eq!(code, 200, "{next}");
        pages.push(seqs(&next));
        page = next;
        assert!(pages.len() < 20, "the cursors go round: {pages:?}");
    }
    (pages, page)
}

#[tokio::test]
async fn changes_page_newest_first_and_back_with_either_cursor() {
    let s = start(ApiConfig::default(), None).await;
    let (_, all) = s.get("/api/v1/changes").await;
    let mut every: Vec<i64> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["seq"].as_i64())
        .collect();
    assert_eq!(every.len(), 9, "{all}");
    assert!(
        all["nextCursor"].is_null() && all["prevCursor"].is_null(),
        "{all}"
    );

    // Newest first, four at a time, to the end...
    let (code, first) = s.get("/api/v1/changes?order=desc&limit=4").await;
    assert_eq!(code, 200, "{first}");
    assert!(first["prevCursor"].is_null(), "the first page: {first}");
    let (down, last) = change_pages(&s, "order=desc&limit=4", "nextCursor", first).await;
    every.reverse();
    assert_eq!(
        down,
        vec![
            every[..4].to_vec(),
            every[4..8].to_vec(),
            every[8..].to_vec()
        ]
    );
    // ...and back from the last page to the first with `prevCursor`.
    let (up, top) = change_pages(&s, "order=desc&limit=4", "prevCursor", last).await;
    assert_eq!(
        up,
        vec![
            every[8..].to_vec(),
            every[4..8].to_vec(),
            every[..4].to_vec()
        ]
    );
    assert!(top["nextCursor"].is_string(), "{top}");
    // Oldest first, to the end and back, the same way.
    every.reverse();
    let (_, first) = s.get("/api/v1/changes?limit=5").await;
    let (forward, last) = change_pages(&s, "limit=5", "nextCursor", first).await;
    assert_eq!(forward, vec![every[..5].to_vec(), every[5..].to_vec()]);
    let (back, _) = change_pages(&s, "limit=5", "prevCursor", last).await;
    assert_eq!(back, vec![every[5..].to_vec(), every[..5].to_vec()]);

    // A cursor continues its own query only.
    let (_, asc) = s.get("/api/v1/changes?limit=4").await;
    let c = asc["nextCursor"].as_str().expect("next");
    let (code, body) = s
        .get(&format!("/api/v1/changes?order=desc&limit=4&cursor={c}"))
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(s.get("/api/v1/changes?order=sideways").await.0, 400);
}

#[tokio::test]
async fn connectors_show_runs_made_by_any_process() {
    // FakeControl has run nothing: the catalog was synced outside its scheduler.
    let s = start(ApiConfig::default(), Some(Arc::new(FakeControl::default()))).await;
    let (code, list) = s.get("/api/v1/connectors").await;
    assert_eq!(code, 200, "{list}");
    let gh = &list["items"][0];
    assert_eq!(gh["id"], "gh");
    assert_eq!(gh["lastStatus"], "succeeded", "{gh}");
    assert!(
        gh["lastStarted"].is_string() && gh["lastFinished"].is_string(),
        "{gh}"
    );
    assert!(gh["lastError"].is_null(), "{gh}");
}

#[test]
fn the_newer_of_the_scheduler_and_the_runs_table_wins() {
    use surveyor_store::RunRow;
    let t = chrono::Utc::now();
    let run = |started: chrono::DateTime<chrono::Utc>, status: &str| RunRow {
        id: "r".into(),
        connector: "gh".into(),
        started_at: started,
        finished_at: Some(started + chrono::TimeDelta::seconds(5)),
        status: status.into(),
        outcome: None,
        counts: None,
        error: (status == "failed").then(|| "boom".into()),
    };
    let mine = |status: &str| ConnectorView {
        id: "gh".into(),
        last_started: Some(t),
        last_status: Some(status.into()),
        ..ConnectorView::default()
    };
    // Another process ran it later: its run.
    let mut v = mine("succeeded");
    crate::v1::with_latest_run(&mut v, &run(t + chrono::TimeDelta::minutes(5), "failed"));
    assert_eq!(
        (v.last_status.as_deref(), v.last_error.as_deref()),
        (Some("failed"), Some("boom"))
    );
    // An older run in the table: the scheduler's.
    let mut v = mine("succeeded");
    crate::v1::with_latest_run(&mut v, &run(t - chrono::TimeDelta::minutes(5), "failed"));
    assert_eq!(
        (v.last_status.as_deref(), v.last_finished),
        (Some("succeeded"), None)
    );
    // The same run: the scheduler knows it abandoned it; the table adds when it ended.
    let mut v = mine("abandoned");
    let same = run(t + chrono::TimeDelta::milliseconds(3), "running");
    crate::v1::with_latest_run(&mut v, &same);
    assert_eq!(v.last_status.as_deref(), Some("abandoned"));
    assert_eq!(v.last_finished, same.finished_at);
}
