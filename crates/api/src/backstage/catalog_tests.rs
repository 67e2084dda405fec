//! Backstage catalog-client parity on a real catalog (SQLite) on loopback: the routes the
//! client calls beyond lists (by-refs, by-uid, ancestry, locations, refresh, validation),
//! whole lists and large pages past `max_page_size`, ordering, the derived location
//! annotations and Backstage's error shape on every refusal.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation, Secret};
use surveyor_store::Store;

use crate::test_support::{names_in, sync_and_serve, team_a};
use crate::{ApiConfig, ConnectorView, Control, TriggerRefusal};

const OPERATOR: &str = "catalog-operator";

fn component(external_id: &str, name: &str, extra: Value) -> Observation {
    let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
    if let (Value::Object(m), Value::Object(extra)) = (&mut v["metadata"], extra) {
        m.extend(extra);
    }
    Observation::discovered("org", external_id, Entity::from_value(v).expect("entity"))
}

/// Seven components (more than the page size of 3), read the ways connectors read them.
fn fixture() -> Vec<Observation> {
    let mut obs = vec![
        // The file connector: `<file>#<ref>`.
        component(
            "catalog/web.yaml#component:default/web",
            "web",
            json!({"title": "Shop"}),
        ),
        // A forge's descriptor in a repository: `<repo>#<file>#<ref>`, the tree as source.
        component(
            "acme/shop#catalog-info.yaml#component:default/shop-api",
            "shop-api",
            json!({"annotations": {"backstage.io/source-location": "url:https://github.com/acme/shop/tree/main/"}}),
        ),
        // A forge's discovered repository: its tree.
        component(
            "acme/cart",
            "cart",
            json!({"annotations": {"backstage.io/source-location": "url:https://github.com/acme/cart/tree/main/"}}),
        ),
        // A source that says where it is managed: kept as it is.
        component(
            "set",
            "billing",
            json!({"annotations": {"backstage.io/managed-by-location": "url:https://git.example/b.yaml"}}),
        ),
    ];
    for (i, name) in ["svc-a", "svc-b", "svc-c"].iter().enumerate() {
        obs.push(component(
            &format!("id-{i}"),
            name,
            json!({"description": "a worker"}),
        ));
    }
    obs.push(team_a());
    obs
}

#[derive(Default)]
struct Recorder {
    triggered: Mutex<Vec<String>>,
}

impl Control for Recorder {
    fn connectors(&self) -> Vec<ConnectorView> {
        Vec::new()
    }
    fn trigger(&self, id: &str) -> Result<(), TriggerRefusal> {
        self.triggered
            .lock()
            .map_err(|_| TriggerRefusal::Stopped)?
            .push(id.to_string());
        Ok(())
    }
}

struct Served {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn serve(control: Option<Arc<dyn Control>>) -> Served {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .expect("store");
    let config = ApiConfig {
        max_page_size: 3,
        trigger_tokens: vec![Secret::new(OPERATOR)],
        ..ApiConfig::default()
    };
    let (addr, task) = sync_and_serve(store, fixture(), config, control).await;
    Served {
        base: format!("http://{addr}/api/catalog"),
        client: reqwest::Client::new(),
        _dir: dir,
        _task: task,
    }
}

impl Served {
    async fn send(&self, r: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, b) = self
            .send(self.client.get(format!("{}{path}", self.base)))
            .await;
        (s, b)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(OPERATOR)
            .json(&body);
        let (s, _, b) = self.send(r).await;
        (s, b)
    }
}

fn names(v: &Value) -> Vec<String> {
    names_in(v.as_array())
}

/// Backstage's error envelope, with the name asked for.
#[track_caller]
fn assert_backstage_error(status: u16, body: &Value, code: u16, name: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body["error"]["name"], name, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["request"]["method"].is_string() && body["request"]["url"].is_string(),
        "{body}"
    );
    assert_eq!(body["response"]["statusCode"], code, "{body}");
}

#[tokio::test]
async fn entities_carry_their_location_annotations_and_bare_relations() {
    let s = serve(None).await;
    let (code, all) = s.get("/entities").await;
    assert_eq!(code, 200, "{all}");
    let location = |name: &str| {
        let e = all
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["metadata"]["name"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        let a = &e["metadata"]["annotations"];
        assert_eq!(
            a["backstage.io/managed-by-location"], a["backstage.io/managed-by-origin-location"],
            "{name}"
        );
        a["backstage.io/managed-by-location"].clone()
    };
    assert_eq!(location("web"), "file:catalog/web.yaml");
    assert_eq!(
        location("shop-api"),
        "url:https://github.com/acme/shop/blob/main/catalog-info.yaml"
    );
    assert_eq!(
        location("cart"),
        "url:https://github.com/acme/cart/tree/main/"
    );
    assert_eq!(location("billing"), "url:https://git.example/b.yaml");
    assert_eq!(location("svc-a"), "surveyor:gh");
    assert_eq!(location("team-a"), "surveyor:gh");

    let (_, web) = s.get("/entities/by-name/component/default/web").await;
    assert_eq!(
        web["relations"],
        json!([{"type": "ownedBy", "targetRef": "group:default/team-a"}]),
        "no `target` object"
    );
    // Annotations are there even when the only ones are derived, and filters see them.
    let (_, filtered) = s
        .get("/entities?filter=metadata.annotations.backstage.io/managed-by-location=file:catalog/web.yaml&fields=metadata.name")
        .await;
    assert_eq!(names(&filtered), ["web"]);
    let (_, projected) = s.get("/entities?fields=metadata.annotations&limit=1").await;
    assert!(
        projected[0]["metadata"]["annotations"].is_object(),
        "{projected}"
    );
}

#[tokio::test]
async fn whole_lists_and_large_pages_are_served_past_the_page_size() {
    let s = serve(None).await;
    // 8 entities, a page size of 3: all of them, as Backstage answers without a limit.
    let (code, all) = s.get("/entities?fields=metadata.name").await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(names(&all).len(), 8);
    let (code, big) = s.get("/entities?limit=5000&fields=metadata.name").await;
    assert_eq!((code, names(&big).len()), (200, 8), "{big}");
    let (code, q) = s.get("/entities/by-query?fields=metadata.name").await;
    assert_eq!(code, 200, "{q}");
    assert_eq!((names(&q["items"]).len(), &q["totalItems"]), (8, &json!(8)));
    assert!(q["pageInfo"]["nextCursor"].is_null(), "{q}");
    let (_, q) = s
        .get("/entities/by-query?limit=5000&filter=kind=component")
        .await;
    assert_eq!(names(&q["items"]).len(), 7);

    // A limit pages, with a Link to the next page (`after`), as Backstage's list does.
    let (code, headers, first) = s
        .send(
            s.client
                .get(format!("{}/entities?limit=5&fields=metadata.name", s.base)),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        names(&first),
        ["billing", "cart", "shop-api", "svc-a", "svc-b"]
    );
    let link = headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a next link")
        .to_string();
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(u, _)| u.to_string())
        .expect("<url>");
    let (code, rest) = s.get(&next).await;
    assert_eq!(code, 200, "{next}: {rest}");
    assert_eq!(names(&rest), ["svc-c", "web", "team-a"]);
    let (_, headers, _) = s.send(s.client.get(format!("{}{next}", s.base))).await;
    assert!(headers.get("link").is_none(), "the last page has no next");
    let (code, body) = s.get("/entities?offset=1&after=x").await;
    assert_backstage_error(code, &body, 400, "InputError");

    // A limit given with a cursor is honoured.
    let (_, p1) = s
        .get("/entities/by-query?limit=2&fields=metadata.name")
        .await;
    let cursor = p1["pageInfo"]["nextCursor"]
        .as_str()
        .expect("next")
        .to_string();
    let (_, p2) = s
        .get(&format!("/entities/by-query?cursor={cursor}&limit=4"))
        .await;
    assert_eq!(names(&p2["items"]).len(), 4, "{p2}");
    // totalItems=exclude leaves the count out.
    let (_, p) = s.get("/entities/by-query?limit=2&totalItems=exclude").await;
    assert!(
        p.get("totalItems").is_none() && p["pageInfo"]["nextCursor"].is_string(),
        "{p}"
    );
}

#[tokio::test]
async fn order_is_honoured_on_lists_and_queries() {
    let s = serve(None).await;
    // What the catalog client sends for `getEntities({order: {field, order: 'desc'}})`.
    let (code, desc) = s
        .get(
            "/entities?filter=kind=component&order=desc:metadata.name&fields=metadata.name&limit=3",
        )
        .await;
    assert_eq!(code, 200, "{desc}");
    assert_eq!(names(&desc), ["web", "svc-c", "svc-b"]);
    let (_, asc) = s
        .get("/entities?filter=kind=component&order=asc:metadata.name&fields=metadata.name&limit=2&offset=1")
        .await;
    assert_eq!(names(&asc), ["cart", "shop-api"]);
    // Two orderFields: the first sorts, the second breaks its ties.
    let (code, two) = s
        .get("/entities/by-query?filter=kind=component&orderField=metadata.description,desc&orderField=metadata.name,desc&fields=metadata.name")
        .await;
    assert_eq!(code, 200, "{two}");
    assert_eq!(
        names(&two["items"]),
        [
            "svc-c", "svc-b", "svc-a", "web", "shop-api", "cart", "billing"
        ],
        "described first (descending, then by name), the rest after"
    );
    let (code, body) = s.get("/entities?order=sideways:metadata.name").await;
    assert_backstage_error(code, &body, 400, "InputError");
    // A search confined to named fields.
    let (_, found) = s
        .get("/entities/by-query?fullTextFilterTerm=shop&fullTextFilterFields=metadata.title&fields=metadata.name")
        .await;
    assert_eq!(
        names(&found["items"]),
        ["web"],
        "shop-api's name is not searched"
    );
}

#[tokio::test]
async fn entities_by_refs_uid_and_ancestry() {
    let s = serve(None).await;
    let (code, got) = s
        .post(
            "/entities/by-refs",
            json!({"entityRefs": ["component:default/web", "component:default/nope", "group:team-a", "Component:default/WEB"], "fields": ["metadata.name", "kind"]}),
        )
        .await;
    assert_eq!(code, 200, "{got}");
    assert_eq!(
        got["items"],
        json!([{"kind": "Component", "metadata": {"name": "web"}}, null,
               {"kind": "Group", "metadata": {"name": "team-a"}},
               {"kind": "Component", "metadata": {"name": "web"}}])
    );
    let (_, filtered) = s
        .post(
            "/entities/by-refs?filter=kind=group",
            json!({"entityRefs": ["component:default/web", "group:default/team-a"]}),
        )
        .await;
    assert!(filtered["items"][0].is_null(), "{filtered}");
    assert_eq!(filtered["items"][1]["metadata"]["name"], "team-a");
    let (code, body) = s.post("/entities/by-refs", json!({"refs": []})).await;
    assert_backstage_error(code, &body, 400, "InputError");

    let (_, web) = s.get("/entities/by-name/component/default/web").await;
    let uid = web["metadata"]["uid"].as_str().expect("uid");
    let (code, by_uid) = s.get(&format!("/entities/by-uid/{uid}")).await;
    assert_eq!(code, 200, "{by_uid}");
    assert_eq!(by_uid, web);
    let (code, body) = s.get("/entities/by-uid/no-such-uid").await;
    assert_backstage_error(code, &body, 404, "NotFoundError");

    let (code, a) = s
        .get("/entities/by-name/component/default/web/ancestry")
        .await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["rootEntityRef"], "component:default/web");
    assert_eq!(a["items"], json!([{"entity": web, "parentEntityRefs": []}]));
    let (code, body) = s
        .get("/entities/by-name/component/default/nope/ancestry")
        .await;
    assert_backstage_error(code, &body, 404, "NotFoundError");
}

#[tokio::test]
async fn locations_are_the_entities_origins() {
    let s = serve(None).await;
    let (code, list) = s.get("/locations").await;
    assert_eq!(code, 200, "{list}");
    let targets: Vec<(String, String)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["data"]["type"].as_str().unwrap_or_default().to_string(),
                l["data"]["target"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let t = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        targets,
        [
            t("file", "catalog/web.yaml"),
            t("surveyor", "gh"),
            t("url", "https://git.example/b.yaml"),
            t("url", "https://github.com/acme/cart/tree/main/"),
            t(
                "url",
                "https://github.com/acme/shop/blob/main/catalog-info.yaml"
            ),
        ]
    );
    let (code, by_entity) = s.get("/locations/by-entity/component/default/web").await;
    assert_eq!(code, 200, "{by_entity}");
    assert_eq!(by_entity, list[0]["data"]);
    let id = by_entity["id"].as_str().expect("id");
    let (code, by_id) = s.get(&format!("/locations/{id}")).await;
    assert_eq!((code, &by_id), (200, &by_entity));
    let (code, body) = s
        .get("/locations/00000000-0000-0000-0000-000000000000")
        .await;
    assert_backstage_error(code, &body, 404, "NotFoundError");
    let (code, body) = s.get("/locations/by-entity/component/default/nope").await;
    assert_backstage_error(code, &body, 404, "NotFoundError");
}

#[tokio::test]
async fn refresh_queues_a_sync_of_the_entitys_connector() {
    let recorder = Arc::new(Recorder::default());
    let s = serve(Some(recorder.clone())).await;
    let (code, body) = s
        .post("/refresh", json!({"entityRef": "component:default/web"}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        recorder
            .triggered
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default(),
        ["gh"]
    );
    let (code, body) = s
        .post("/refresh", json!({"entityRef": "component:default/nope"}))
        .await;
    assert_backstage_error(code, &body, 404, "NotFoundError");
    // Without a token that may trigger, Backstage's shape still.
    let (code, _, body) = s
        .send(
            s.client
                .post(format!("{}/refresh", s.base))
                .json(&json!({"entityRef": "component:default/web"})),
        )
        .await;
    assert_backstage_error(code, &body, 401, "AuthenticationError");

    let read_only = serve(None).await;
    let (code, body) = read_only
        .post("/refresh", json!({"entityRef": "component:default/web"}))
        .await;
    assert_backstage_error(code, &body, 403, "NotAllowedError");
}

#[tokio::test]
async fn validate_entity_answers_as_backstage() {
    let s = serve(None).await;
    let entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "fine"}, "spec": {"type": "service"}});
    let location = "url:https://github.com/acme/x/blob/main/catalog-info.yaml";
    let (code, body) = s
        .post(
            "/validate-entity",
            json!({"entity": entity, "location": location}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let bad = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "not a valid name!", "tags": ["Bad Tag"]}});
    let (code, body) = s
        .post(
            "/validate-entity",
            json!({"entity": bad, "location": location}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert!(errors.len() >= 2, "every problem listed: {body}");
    assert!(
        errors
            .iter()
            .all(|e| e["name"].is_string() && e["message"].is_string())
    );
    let (code, body) = s
        .post(
            "/validate-entity",
            json!({"entity": entity, "location": "file:x.yaml"}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["errors"][0]["name"], "TypeError");
}

#[tokio::test]
async fn refusals_are_in_backstages_shape() {
    let s = serve(None).await;
    let (code, body) = s.get("/no-such-route").await;
    assert_backstage_error(code, &body, 404, "NotFoundError");
    assert_eq!(
        body["request"],
        json!({"method": "GET", "url": "/no-such-route"})
    );
    for path in [
        "/entities?colour=blue",
        "/entities/by-query?sort=name",
        "/entities/by-query?cursor=x&filter=kind=api",
        "/entity-facets?facet=kind&limit=3",
        "/entities/by-name/component/default/web?fields=kind",
        "/locations?x=1",
    ] {
        let (code, body) = s.get(path).await;
        assert_backstage_error(code, &body, 400, "InputError");
    }
    let write = [
        ("POST", "/locations"),
        ("DELETE", "/locations/00000000-0000-0000-0000-000000000000"),
        ("DELETE", "/entities/by-uid/some-uid"),
    ];
    for (method, path) in write {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = s
            .client
            .request(m, format!("{}{path}", s.base))
            .bearer_auth(OPERATOR)
            .json(&json!({"type": "url", "target": "https://x/y.yaml"}));
        let (code, _, body) = s.send(r).await;
        assert_backstage_error(code, &body, 403, "NotAllowedError");
    }
    // A method no route has is refused in the same shape.
    let (code, _, body) = s.send(s.client.put(format!("{}/entities", s.base))).await;
    assert_backstage_error(code, &body, 405, "NotAllowedError");
}
