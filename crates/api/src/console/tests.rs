//! The console against a real catalog (SQLite) on loopback: what each page shows, filters and
//! paging, escaping, and signing in with a read token.

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation, Secret};

use super::test_support::{Console, rows, strip};
use crate::ApiConfig;
use crate::test_support::{sync, sync_and_serve, team_a};

fn component(name: &str, extra: Value) -> Observation {
    let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
    if let (Value::Object(b), Value::Object(t)) = (&mut v, extra) {
        for (k, val) in t {
            match (b.get_mut(&k), val) {
                (Some(Value::Object(bm)), Value::Object(tm)) => bm.extend(tm),
                (_, val) => {
                    b.insert(k, val);
                }
            }
        }
    }
    Observation::discovered(
        "org",
        format!("id-{name}"),
        Entity::from_value(v).expect("entity"),
    )
}

fn catalog() -> Vec<Observation> {
    let mut obs: Vec<Observation> = (0..60)
        .map(|i| component(&format!("svc-{i:02}"), json!({})))
        .collect();
    obs.push(component(
        "web",
        json!({"metadata": {"title": "The Web Shop", "description": "sells things",
                "labels": {"tier": "gold"}, "tags": ["react"],
                "links": [{"url": "https://runbooks.example/web", "title": "Runbook"}]},
               "spec": {"type": "website", "lifecycle": "experimental",
                        "dependsOn": ["component:default/svc-00"]}}),
    ));
    obs.push(team_a());
    obs
}

fn next_link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\" href=\""))?;
    let rest = &html[at + rel.len() + 13..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_catalog_page_searches_filters_counts_and_pages() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c.get("/").await;
    assert_eq!(status, 200);
    // Counts per kind, and the whole catalog in pages of 50.
    assert!(html.contains("component 61"), "{html}");
    assert!(html.contains("group 1"), "{html}");
    assert!(html.contains("62 matching entities"), "{html}");
    assert_eq!(rows(&html, "entities").len(), 50);
    let next = next_link(&html, "next").expect("a next page");
    let (_, second) = c.get(&next).await;
    let second_rows = rows(&second, "entities");
    assert_eq!(second_rows.len(), 12, "{second_rows:?}");
    assert!(next_link(&second, "next").is_none());

    // Search reaches the title and the tags; filters narrow.
    for q in [
        "/?q=web+shop",
        "/?q=REACT",
        "/?lifecycle=experimental",
        "/?label=tier%3Dgold",
    ] {
        let (status, html) = c.get(q).await;
        assert_eq!(status, 200, "{q}");
        let found = rows(&html, "entities");
        assert_eq!(found.len(), 1, "{q}: {found:?}");
        assert!(found[0].contains("component:default/web"), "{q}: {found:?}");
    }
    let (_, groups) = c.get("/?kind=group").await;
    assert_eq!(rows(&groups, "entities").len(), 1);
    assert!(groups.contains("1 matching entity"));
    let (_, owned) = c.get("/?owner=team-a&q=svc-0").await;
    assert_eq!(rows(&owned, "entities").len(), 10);

    // Tier and stack filter on the classification.
    c.store
        .record_classifications(
            &[
                ("web", "tier", "tier-1"),
                ("web", "stack", "typescript/react"),
                ("svc-01", "stack", "typescript"),
            ]
            .map(|(name, facet, value)| surveyor_store::Classification {
                entity_ref: format!("component:default/{name}"),
                facet: facet.into(),
                value: value.into(),
                declared: false,
                evidence: "[]".into(),
            }),
            chrono::Utc::now(),
        )
        .await
        .expect("classify");
    let (_, tier) = c.get("/?tier=tier-1").await;
    assert_eq!(rows(&tier, "entities").len(), 1, "{tier}");
    assert!(rows(&tier, "entities")[0].contains("component:default/web"));
    let (_, stack) = c.get("/?stack=typescript").await;
    assert_eq!(
        rows(&stack, "entities").len(),
        2,
        "a language matches its frameworks"
    );
    let (_, none) = c.get("/?tier=tier-1&stack=typescript%2Freact&q=svc").await;
    assert!(rows(&none, "entities").is_empty());

    // A bad filter is a 400 page that says what is wrong.
    let (status, html) = c.get("/?label=tier").await;
    assert_eq!(status, 400);
    assert!(html.contains("write it as key=value"), "{html}");
}

#[tokio::test]
async fn the_entity_page_shows_provenance_relations_links_and_a_readable_history() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    // A second crawl changes the owner and the lifecycle: one `updated` change.
    let mut obs = catalog();
    for o in &mut obs {
        if o.entity.metadata.name == "web" {
            o.entity.spec.insert("owner".into(), json!("team-b"));
            o.entity
                .spec
                .insert("lifecycle".into(), json!("production"));
        }
    }
    sync(&c.store, obs).await;
    let (status, html) = c.get("/entities/component/default/web").await;
    assert_eq!(status, 200);
    let fields = rows(&html, "fields");
    assert!(
        fields.iter().any(|r| r == "spec › owner team-b gh"),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|r| r == "metadata › labels › tier gold gh"),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|r| r == "metadata › tags react gh"),
        "{fields:?}"
    );
    // Relations are links to the entities they name.
    assert!(
        html.contains("href=\"/entities/component/default/svc-00\""),
        "{html}"
    );
    assert!(html.contains("href=\"https://runbooks.example/web\""));
    // The history: newest first, the update with what it replaced.
    let history = &html[html.find("id=\"history\"").expect("history")..];
    let updated = history.find("op-updated").expect("an update");
    let created = history.find("op-created").expect("the creation");
    assert!(updated < created, "newest first");
    let diff = strip(&history[updated..created]);
    assert!(diff.contains("spec › owner team-a team-b"), "{diff}");
    assert!(
        diff.contains("spec › lifecycle experimental production"),
        "{diff}"
    );

    let (status, html) = c.get("/entities/component/default/nope").await;
    assert_eq!(status, 404);
    assert!(html.contains("no entity component:default/nope"));
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn everything_a_source_says_is_escaped() {
    let store = surveyor_store::Store::connect("sqlite::memory:")
        .await
        .expect("store");
    let hostile = "<script>alert('x')</script>";
    let obs = vec![component(
        "evil",
        json!({"metadata": {"title": hostile, "description": format!("{hostile}\"><img src=x onerror=alert(1)>"),
                "labels": {"note": "a"}, "annotations": {"x/y": hostile},
                "tags": ["t"],
                "links": [{"url": "javascript:alert(1)", "title": hostile}]},
               "spec": {"type": hostile}}),
    )];
    let (addr, _task) = sync_and_serve(store, obs, ApiConfig::default(), None).await;
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/?q=evil",
        "/entities/component/default/evil",
        "/changes",
    ] {
        let html = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("body");
        assert!(!html.contains("<script"), "{path}: {html}");
        assert!(!html.contains("<img"), "{path}");
        assert!(!html.contains("href=\"javascript:"), "{path}");
        if path != "/changes" {
            assert!(
                html.contains("&lt;script&gt;alert("),
                "{path}: the title is shown as text"
            );
        }
    }
}

#[tokio::test]
async fn the_changes_page_filters_and_pages_newest_first() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let (status, html) = c.get("/changes").await;
    assert_eq!(status, 200);
    let first = rows(&html, "changes");
    assert_eq!(first.len(), 50);
    assert!(first.iter().all(|r| r.contains("created")));
    let older = next_link(&html, "next").expect("older");
    let (_, page2) = c.get(&older).await;
    assert_eq!(rows(&page2, "changes").len(), 12);
    // Back again: the newer page is the first one.
    let newer = next_link(&page2, "prev").expect("newer");
    let (_, back) = c.get(&newer).await;
    assert_eq!(rows(&back, "changes"), first);

    let (_, groups) = c.get("/changes?kind=group&op=created&source=gh").await;
    let g = rows(&groups, "changes");
    assert_eq!(g.len(), 1, "{g:?}");
    assert!(g[0].contains("group:default/team-a"));
    let (_, none) = c.get("/changes?source=gitlab").await;
    assert!(none.contains("No changes match"));
    let (_, future) = c.get("/changes?since=2999-01-01").await;
    assert!(future.contains("No changes match"));
    let (_, past) = c.get("/changes?until=2000-01-01T00:00").await;
    assert!(past.contains("No changes match"));
    let (status, bad) = c.get("/changes?op=exploded").await;
    assert_eq!(status, 400);
    assert!(bad.contains("one of created"));
    let (_, runs) = c.get("/runs").await;
    let r = rows(&runs, "runs");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("gh") && r[0].contains("succeeded"), "{r:?}");
}

#[tokio::test]
async fn with_read_tokens_the_console_asks_for_one_and_keeps_it_in_a_strict_cookie() {
    let config = ApiConfig {
        read_tokens: vec![Secret::new("s3cret;=token")],
        ..ApiConfig::default()
    };
    let c = Console::start(config, catalog()).await;
    let r = c
        .client
        .get(format!("{}/changes?op=created", c.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fchanges%3Fop%3Dcreated"
    );
    let (status, form) = c.get("/login?next=%2Fchanges").await;
    assert_eq!(status, 200);
    assert!(form.contains("type=\"password\""));

    let post = |token: &str, next: &str| {
        c.client
            .post(format!("{}/login", c.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(crate::console::query(&[("token", token), ("next", next)]))
            .send()
    };
    let wrong = post("guess", "/changes").await.expect("post");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // Somewhere else than this site is never where signing in leads.
    let away = post("s3cret;=token", "//evil.example/")
        .await
        .expect("post");
    assert_eq!(away.headers()["location"], "/");
    let ok = post("s3cret;=token", "/changes").await.expect("post");
    assert_eq!(ok.status().as_u16(), 303);
    assert_eq!(ok.headers()["location"], "/changes");
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("s3cret"),
        "the cookie holds the token encoded: {cookie}"
    );
    let pair = cookie.split(';').next().expect("pair").to_string();

    let with_cookie = |path: &str| {
        c.client
            .get(format!("{}{path}", c.base))
            .header("cookie", pair.clone())
            .send()
    };
    let page = with_cookie("/changes").await.expect("get");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("body").contains("Sign out"));
    // The cookie reads the API too (the console links to /docs), but never triggers.
    assert_eq!(
        with_cookie("/api/v1/entities")
            .await
            .expect("get")
            .status()
            .as_u16(),
        200
    );
    let trigger = c
        .client
        .post(format!("{}/api/v1/connectors/gh/sync", c.base))
        .header("cookie", pair.clone())
        .send()
        .await
        .expect("post");
    assert!(matches!(trigger.status().as_u16(), 401 | 403));
    // A stale cookie goes back to the form, saying so.
    let stale = c
        .client
        .get(format!("{}/", c.base))
        .header("cookie", "surveyor_token=Z3Vlc3M")
        .send()
        .await
        .expect("get");
    assert!(
        stale.headers()["location"]
            .to_str()
            .expect("loc")
            .contains("expired=1")
    );
    let out = c
        .client
        .post(format!("{}/logout", c.base))
        .header("cookie", pair.clone())
        .send()
        .await
        .expect("post");
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .expect("c")
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn with_the_console_off_only_the_api_answers() {
    let c = Console::start(
        ApiConfig {
            console: false,
            ..ApiConfig::default()
        },
        catalog(),
    )
    .await;
    for path in ["/", "/changes", "/login", "/console.css"] {
        let (status, body) = c.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }
    assert_eq!(c.get("/api/v1/entities").await.0, 200);
}

#[tokio::test]
async fn a_field_another_source_gives_otherwise_is_shown_beside_the_kept_value() {
    let c = Console::start(ApiConfig::default(), catalog()).await;
    let mut other = component(
        "web",
        json!({"spec": {"owner": "team-c", "type": "website"}}),
    );
    other.scope = "acct".into();
    let source = surveyor_model::testing::Scripted::new(
        "pd",
        vec![other],
        surveyor_model::testing::complete(&["acct"]),
    );
    surveyor_engine::run_connector(&c.store, &source, &Default::default())
        .await
        .expect("sync pd");
    let (_, html) = c.get("/entities/component/default/web").await;
    let said = rows(&html, "disagreements");
    assert!(
        said.iter()
            .any(|r| r.starts_with("spec › owner") && r.contains("team-c")),
        "{said:?}"
    );
    let sources = strip(&html[html.find("id=\"sources\"").expect("sources")..]);
    assert!(
        sources.contains("gh") && sources.contains("pd"),
        "{sources}"
    );
}

#[tokio::test]
async fn scorecard_pages_show_levels_teams_trend_and_each_entitys_grade() {
    use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};
    let card = Scorecard {
        name: "readiness".into(),
        title: "Readiness".into(),
        applies_to: AppliesTo::default(),
        levels: vec!["bronze".into(), "silver".into()],
        checks: vec![
            Check::new("owned", "bronze", Test::Relation("ownedBy".into())),
            Check {
                name: "runbook".into(),
                level: "silver".into(),
                test: Test::Link("runbook".into()),
            },
        ],
    };
    let config = ApiConfig {
        scorecards: vec![card.clone()],
        ..ApiConfig::default()
    };
    let mut obs = catalog();
    obs.push(team_a());
    let c = Console::start(config, obs).await;
    surveyor_grade::score::record(&c.store, &[card], chrono::Utc::now(), Some("run-1"))
        .await
        .expect("grade");
    c.store
        .record_classifications(
            &[surveyor_store::Classification {
                entity_ref: "component:default/web".into(),
                facet: "tier".into(),
                value: "tier-1".into(),
                declared: true,
                evidence: r#"[{"source":"files","said":"declares surveyor.dev/tier: tier-1"}]"#
                    .into(),
            }],
            chrono::Utc::now(),
        )
        .await
        .expect("classify");

    let (code, list) = c.get("/scorecards").await;
    assert_eq!(code, 200, "{list}");
    assert!(list.contains("href=\"/scorecards/readiness\""), "{list}");

    let (code, page) = c.get("/scorecards/readiness").await;
    assert_eq!(code, 200, "{page}");
    let teams = rows(&page, "teams");
    assert_eq!(teams.len(), 1, "{teams:?}");
    // Every component is owned by team-a; only web has a runbook link.
    assert!(teams[0].contains("group:default/team-a"), "{teams:?}");
    let short = rows(&page, "short");
    assert!(
        !short.iter().any(|r| r.contains("component:default/web")),
        "{short:?}"
    );
    assert!(
        short.iter().any(|r| r.contains("runbook: no runbook link")),
        "{short:?}"
    );
    assert_eq!(rows(&page, "trend").len(), 1, "one grading, one point");
    assert_eq!(rows(&page, "checks").len(), 2);

    let (_, web) = c.get("/entities/component/default/web").await;
    let grades = rows(&web, "grades");
    assert_eq!(grades.len(), 1, "{grades:?}");
    assert!(
        grades[0].contains("silver") && grades[0].contains("nothing"),
        "{grades:?}"
    );
    let classes = rows(&web, "classification");
    assert!(
        classes[0].contains("tier-1") && classes[0].contains("declared"),
        "{classes:?}"
    );

    let (code, _) = c.get("/scorecards/nope").await;
    assert_eq!(code, 404);
    let (code, _) = c.get("/scorecards/readiness?owner=a%20b%20c").await;
    assert_eq!(code, 400);
}
