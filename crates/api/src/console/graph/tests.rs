//! The graph page against a real catalog (SQLite) on loopback: which entities each depth and
//! filter shows, cycles, escaping, errors, the read-token guard, and the picture's cap.

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation, Secret};

use crate::ApiConfig;
use crate::console::test_support::Console;
use crate::test_support::team_a;

fn entity(kind: &str, name: &str, spec: Value, metadata: Value) -> Observation {
    let mut meta = json!({"name": name, "namespace": "default"});
    if let (Some(m), Value::Object(extra)) = (meta.as_object_mut(), metadata) {
        m.extend(extra);
    }
    let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind,
        "metadata": meta, "spec": spec});
    Observation::discovered(
        "org",
        format!("id-{kind}-{name}"),
        Entity::from_value(v).expect("entity"),
    )
}

fn component(name: &str, owner: &str, depends_on: &[&str]) -> Observation {
    let deps: Vec<String> = depends_on
        .iter()
        .map(|d| format!("component:default/{d}"))
        .collect();
    entity(
        "Component",
        name,
        json!({"type": "service", "lifecycle": "production", "owner": owner, "dependsOn": deps}),
        json!({}),
    )
}

/// `web` (owned by team-a, part of `shop`, provides `web-api`) depends on `svc-a`; `svc-a` and
/// `svc-b` depend on each other; `svc-b` depends on `svc-c`, which team-b owns. `lonely` is
/// related to nothing that `web` reaches.
fn catalog() -> Vec<Observation> {
    let mut web = component("web", "team-a", &["svc-a"]);
    web.entity.metadata.title = Some("<script>alert(1)</script>".into());
    web.entity.spec.insert("system".into(), json!("shop"));
    web.entity
        .spec
        .insert("providesApis".into(), json!(["web-api"]));
    let mut team_b = Entity::new("Group", "default", "team-b");
    team_b.spec.insert("type".into(), json!("team"));
    team_b.spec.insert("children".into(), json!([]));
    vec![
        team_a(),
        Observation::discovered("org", "g-b", team_b),
        entity("System", "shop", json!({"owner": "team-a"}), json!({})),
        entity(
            "API",
            "web-api",
            json!({"type": "openapi", "lifecycle": "production", "owner": "team-a",
                   "definition": "openapi: 3.0.0"}),
            json!({}),
        ),
        web,
        component("svc-a", "team-a", &["svc-b"]),
        component("svc-b", "team-a", &["svc-a", "svc-c"]),
        component("svc-c", "team-b", &[]),
        component("lonely", "team-c", &[]),
    ]
}

/// The svg element of a page.
fn svg(html: &str) -> &str {
    let start = html.find("<svg").expect("an svg");
    let end = html[start..].find("</svg>").expect("the svg ends") + start;
    &html[start..end]
}

/// The entity links in the picture, in order.
fn linked(svg: &str) -> Vec<String> {
    svg.split("<a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The first cell of each body row of the table with this id, tags stripped.
fn first_cells(html: &str, id: &str) -> Vec<String> {
    let Some(start) = html.find(&format!("id=\"{id}\"")) else {
        return Vec::new();
    };
    let rest = &html[start..];
    let table = &rest[..rest.find("</table>").unwrap_or(rest.len())];
    let body = table.split("<tbody>").nth(1).unwrap_or_default();
    body.split("<tr>")
        .skip(1)
        .map(|row| strip(row.split("</td>").next().unwrap_or_default()))
        .collect()
}

/// Each body row of a table, its cells' text joined by ` | `.
fn rows(html: &str, id: &str) -> Vec<String> {
    let Some(start) = html.find(&format!("id=\"{id}\"")) else {
        return Vec::new();
    };
    let rest = &html[start..];
    let table = &rest[..rest.find("</table>").unwrap_or(rest.len())];
    let body = table.split("<tbody>").nth(1).unwrap_or_default();
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("</td>")
                .map(strip)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in s.chars() {
        match c {
            '<' => tag = true,
            '>' => tag = false,
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn names(refs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = refs
        .iter()
        .map(|r| r.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_picture_links_every_entity_of_the_chosen_depth() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, one) = c.get("/entities/component/default/web/graph?depth=1").await;
    assert_eq!(status, 200, "{one}");
    let picture = svg(&one);
    assert!(
        picture.contains("role=\"img\"")
            && picture.contains("aria-labelledby=\"graph-title graph-desc\"")
    );
    let hop1 = linked(picture);
    assert_eq!(names(&hop1), ["shop", "svc-a", "team-a", "web", "web-api"]);
    assert_eq!(
        names(&first_cells(&one, "graph-nodes")),
        names(&hop1),
        "the table lists what the picture shows"
    );
    assert!(
        hop1.contains(&"/entities/component/default/svc-a".to_string()),
        "{hop1:?}"
    );
    // The root is marked, and each box is a rect with its kind and name.
    assert_eq!(picture.matches("class=\"node root\"").count(), 1);
    assert_eq!(picture.matches("<rect ").count(), 5);
    assert!(picture.contains(">component</text>") && picture.contains(">svc-a</text>"));
    // Pairs are drawn once, in one direction, labelled with the type.
    let edges = rows(&one, "graph-edges");
    assert!(
        edges
            .iter()
            .any(|e| e == "group:default/team-a | ownerOf | component:default/web"),
        "{edges:?}"
    );
    assert!(
        edges
            .iter()
            .any(|e| e == "component:default/web | dependsOn | component:default/svc-a")
    );
    assert!(
        edges
            .iter()
            .any(|e| e == "system:default/shop | hasPart | component:default/web")
    );
    assert!(
        edges
            .iter()
            .any(|e| e == "component:default/web | providesApi | api:default/web-api")
    );
    assert!(
        !edges
            .iter()
            .any(|e| e.contains("ownedBy") || e.contains("dependencyOf") || e.contains("partOf"))
    );
    assert_eq!(picture.matches("class=\"edge\"").count(), edges.len());
    assert!(picture.contains(">ownerOf</text>"));
    // Two hops reach svc-b (through svc-a or the team), not svc-c (three hops away).
    let (_, two) = c.get("/entities/component/default/web/graph").await;
    let hop2 = names(&linked(svg(&two)));
    assert!(
        hop2.contains(&"svc-b".to_string()) && !hop2.contains(&"svc-c".to_string()),
        "{hop2:?}"
    );
    assert!(!hop2.contains(&"lonely".to_string()));
    assert!(
        two.contains("<option value=\"2\" selected>"),
        "the form shows the depth"
    );
    let (_, three) = c.get("/entities/component/default/web/graph?depth=3").await;
    assert!(names(&linked(svg(&three))).contains(&"svc-c".to_string()));
    // A breadcrumb back to the entity.
    assert!(one.contains("<a href=\"/entities/component/default/web\">"));
}

#[tokio::test]
async fn a_dependency_cycle_renders_both_ways() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c
        .get("/entities/component/default/svc-a/graph?depth=4&relation=dependsOn")
        .await;
    assert_eq!(status, 200, "{html}");
    let picture = svg(&html);
    assert_eq!(names(&linked(picture)), ["svc-a", "svc-b", "svc-c", "web"]);
    let edges = rows(&html, "graph-edges");
    for e in [
        "component:default/svc-a | dependsOn | component:default/svc-b",
        "component:default/svc-b | dependsOn | component:default/svc-a",
    ] {
        assert!(edges.iter().any(|x| x == e), "{e} in {edges:?}");
    }
    // The edge and its reverse bend apart instead of drawing over each other.
    let bent: Vec<&str> = picture
        .split("<path class=\"edge\" d=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .filter(|d| d.matches('L').count() == 2)
        .collect();
    assert_eq!(bent.len(), 2, "{picture}");
    assert_ne!(bent[0], bent[1]);
}

#[tokio::test]
async fn the_relation_filter_narrows_the_walk() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c
        .get("/entities/component/default/web/graph?depth=2&relation=dependsOn")
        .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(names(&linked(svg(&html))), ["svc-a", "svc-b", "web"]);
    assert!(
        html.contains("value=\"dependsOn\" checked"),
        "the box stays ticked"
    );
    // Repeated, comma-separated and any case mean the same; the inverse comes along.
    let (_, both) = c
        .get("/entities/group/default/team-a/graph?depth=1&relation=OWNEDBY&relation=memberOf,hasPart")
        .await;
    assert_eq!(
        names(&linked(svg(&both))),
        ["shop", "svc-a", "svc-b", "team-a", "web", "web-api"]
    );
}

#[tokio::test]
async fn titles_and_names_are_escaped() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c.get("/entities/component/default/web/graph").await;
    assert_eq!(status, 200);
    assert!(!html.contains("<script"), "no raw markup from the catalog");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !html.contains(" style="),
        "no inline styles (the policy forbids them)"
    );
}

#[tokio::test]
async fn unknown_entities_and_bad_parameters_are_pages_with_their_status() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c.get("/entities/component/default/nope/graph").await;
    assert_eq!(status, 404);
    assert!(html.contains("Not found") && html.contains("component:default/nope"));
    for bad in [
        "depth=0",
        "depth=5",
        "depth=two",
        "relation=likes",
        "relation=dependsOn,likes",
    ] {
        let (status, html) = c
            .get(&format!("/entities/component/default/web/graph?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {html}");
        assert!(html.contains("That request cannot be answered"), "{bad}");
    }
    let (status, _) = c
        .get("/entities/component/default/web/graph?depth=&relation=")
        .await;
    assert_eq!(status, 200, "an empty form field means the default");
}

#[tokio::test]
async fn the_page_asks_for_a_read_token_when_tokens_are_configured() {
    let config = ApiConfig {
        read_tokens: vec![Secret::new("t0ken")],
        ..ApiConfig::default()
    };
    let c = Console::start(config, catalog()).await;
    let (status, _) = c.get("/entities/component/default/web/graph").await;
    assert_eq!(status, 303);
    let r = c
        .client
        .get(format!("{}/entities/component/default/web/graph", c.base))
        .bearer_auth("t0ken")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_large_neighbourhood_is_cut_to_the_nearest_and_says_so() {
    // A hub with 150 dependencies: the picture holds the nearest 120, the table all 151.
    let deps: Vec<String> = (0..150).map(|i| format!("leaf-{i:03}")).collect();
    let dep_refs: Vec<&str> = deps.iter().map(String::as_str).collect();
    let mut obs: Vec<Observation> = deps.iter().map(|d| component(d, "team-a", &[])).collect();
    obs.push(component("hub", "team-a", &dep_refs));
    obs.push(team_a());
    let c = Console::start(ApiConfig::default(), obs).await;
    let (status, html) = c
        .get("/entities/component/default/hub/graph?depth=1&relation=dependsOn")
        .await;
    assert_eq!(status, 200);
    assert_eq!(linked(svg(&html)).len(), super::PICTURE_CAP);
    assert!(html.contains("Showing 120 of 151 entities"), "{html}");
    assert_eq!(first_cells(&html, "graph-nodes").len(), 151);
}

#[test]
fn rendering_a_capped_neighbourhood_draws_the_nearest_entities() {
    // No store: a hub, 40 neighbours that each own 4 more (200 in all), dependencies among them.
    let key = |i: usize| format!("component:default/n-{i:03}");
    let mut found = crate::v1::Neighbourhood::default();
    found.nodes.insert(key(0), 0);
    for i in 1..=200 {
        let depth = if i <= 40 { 1 } else { 2 };
        found.nodes.insert(key(i), depth);
        found.display.insert(key(i), key(i));
        let parent = if i <= 40 { 0 } else { 1 + (i - 41) % 40 };
        found
            .edges
            .insert((key(parent), "dependsOn".into(), key(i)));
        found
            .edges
            .insert((key(i), "dependencyOf".into(), key(parent)));
        if i % 3 == 0 {
            found
                .edges
                .insert((key(i), "dependsOn".into(), key(1 + i % 40)));
        }
    }
    let params = super::Params::parse(Some("depth=2")).expect("params");
    let start = std::time::Instant::now();
    let html = super::render(&key(0), None, &params, found).into_string();
    // A figure to compare, not an assertion (debug builds are several times slower).
    println!("rendered 120 of 201 entities: {:?}", start.elapsed());
    let picture = svg(&html);
    assert_eq!(linked(picture).len(), super::PICTURE_CAP);
    assert!(linked(picture).contains(&"/entities/component/default/n-040".to_string()));
    assert!(!linked(picture).contains(&"/entities/component/default/n-200".to_string()));
    assert!(html.contains("Showing 120 of 201 entities"));
    assert_eq!(first_cells(&html, "graph-nodes").len(), 201);
}
