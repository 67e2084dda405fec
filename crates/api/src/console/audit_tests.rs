//! The audit pages against a real catalog (SQLite) whose findings the audits recorded: counts,
//! filters, resolved findings, paging, downloads, and escaping of what sources wrote.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use surveyor_model::{Entity, Observation};
use surveyor_store::FindingRecord;

use crate::ApiConfig;
use crate::console::test_support::{Console, rows};
use crate::test_support::{sync, team_a};

fn component(name: &str, owner: Option<&str>) -> Observation {
    let mut e = Entity::new("Component", "default", name);
    e.spec.insert("type".into(), json!("service"));
    e.spec.insert("lifecycle".into(), json!("production"));
    if let Some(o) = owner {
        e.spec.insert("owner".into(), json!(o));
    }
    Observation::discovered("org", format!("id-{name}"), e)
}

/// 55 components of team-a (a team with no members), two of team-b (not in the catalog) and
/// one with no owner: 55 `owner-group-empty`, 2 `owner-unresolved`, 1 `no-owner`.
fn catalog(lonely_owner: Option<&str>) -> Vec<Observation> {
    let mut obs: Vec<Observation> = (0..55)
        .map(|i| component(&format!("svc-{i:02}"), Some("team-a")))
        .collect();
    obs.push(component("billing", Some("team-b")));
    obs.push(component("ledger", Some("team-b")));
    obs.push(component("lonely", lonely_owner));
    obs.push(team_a());
    obs
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap()
}

/// The audit pages' own steps on the shared console.
trait Audited {
    async fn record(&self, hour: u32);
    async fn html(&self, path: &str) -> String;
}

impl Audited for Console {
    async fn record(&self, hour: u32) {
        surveyor_audit::record(&self.store, &Default::default(), at(hour))
            .await
            .expect("record");
    }

    async fn html(&self, path: &str) -> String {
        let (status, _, body) = self.fetch(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\" href=\"")?;
    let rest = &html[at + "rel=\"next\" href=\"".len()..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

#[tokio::test]
async fn before_any_recording_the_page_says_how_findings_get_there() {
    let c = Console::start(ApiConfig::default(), catalog(None)).await;
    let html = c.html("/audit/ownership").await;
    assert!(html.contains("id=\"no-findings\""), "{html}");
    assert!(html.contains("after each sync"), "{html}");
    assert!(rows(&html, "findings").is_empty());
    // The audits never run for a page view: nothing was recorded by looking.
    assert!(!c.store.any_findings("ownership").await.expect("any"));
}

#[tokio::test]
async fn the_ownership_page_counts_filters_and_pages_the_recorded_findings() {
    let c = Console::start(ApiConfig::default(), catalog(None)).await;
    c.record(10).await;
    let html = c.html("/audit/ownership").await;
    assert!(html.contains("aria-current=\"page\""), "{html}");
    let by_rule = rows(&html, "rule-counts");
    assert!(
        by_rule.contains(&"owner-group-empty the owner is a group with no members 55".to_string()),
        "{by_rule:?}"
    );
    assert!(
        by_rule
            .iter()
            .any(|r| r.starts_with("owner-unresolved ") && r.ends_with(" 2")),
        "{by_rule:?}"
    );
    assert!(
        by_rule
            .iter()
            .any(|r| r.starts_with("no-owner ") && r.ends_with(" 1")),
        "{by_rule:?}"
    );
    // Every rule is listed, those with no findings too.
    assert_eq!(by_rule.len(), surveyor_audit::OWNERSHIP_RULES.len());
    assert!(html.contains("href=\"/audit/ownership?rule=owner-unresolved\""));
    assert_eq!(
        rows(&html, "owner-counts"),
        [
            "group:default/team-a 55",
            "group:default/team-b 2",
            "no owner 1"
        ]
    );
    assert!(html.contains("href=\"/entities/group/default/team-b\""));
    assert!(html.contains("58 open findings match"), "{html}");

    // Pages of 50, oldest first, then the rest.
    let first = rows(&html, "findings");
    assert_eq!(first.len(), 50);
    let next = next_link(&html).expect("a next page");
    let second_html = c.html(&next).await;
    let second = rows(&second_html, "findings");
    assert_eq!(second.len(), 8, "{second:?}");
    assert!(next_link(&second_html).is_none());
    assert!(first.iter().chain(&second).all(|r| r.contains("open")));
    // A cursor belongs to its filters.
    let cursor = next.split("cursor=").nth(1).expect("cursor");
    let (status, _, _) = c
        .fetch(&format!("/audit/ownership?rule=no-owner&cursor={cursor}"))
        .await;
    assert_eq!(status, 400);

    // Filters narrow: by rule, owner (as spec.owner writes it), severity, entity text.
    let found = rows(
        &c.html("/audit/ownership?rule=owner-unresolved").await,
        "findings",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "component:default/billing Component owner-unresolved high group:default/team-b"
        ),
        "{found:?}"
    );
    // The evidence is dated by the sync that read it.
    assert!(found[0].contains("gh said “owner team-b” at "), "{found:?}");
    let owned = c.html("/audit/ownership?owner=team-b").await;
    assert_eq!(rows(&owned, "findings").len(), 2);
    // The rule counts follow the other filters.
    assert!(
        rows(&owned, "rule-counts")
            .iter()
            .any(|r| r.starts_with("owner-group-empty ") && r.ends_with(" 0"))
    );
    assert_eq!(
        rows(
            &c.html("/audit/ownership?severity=medium").await,
            "findings"
        )
        .len(),
        50
    );
    let one = rows(&c.html("/audit/ownership?q=LONE").await, "findings");
    assert_eq!(one.len(), 1);
    assert!(one[0].contains("component:default/lonely") && one[0].contains("no-owner"));
    assert!(
        rows(
            &c.html("/audit/ownership?status=resolved").await,
            "findings"
        )
        .is_empty()
    );

    // Bad filters are 400 pages that say what is wrong.
    for (q, says) in [
        ("rule=made-up", "one of no-owner"),
        ("status=closed", "one of open, resolved, all"),
        ("severity=dire", "one of high, medium, low"),
        ("format=xlsx", "csv or md"),
    ] {
        let (status, _, body) = c.fetch(&format!("/audit/ownership?{q}")).await;
        assert_eq!(status, 400, "{q}");
        assert!(body.contains(says), "{q}: {body}");
    }

    // Drift found nothing and recorded nothing: the page says so.
    let drift = c.html("/audit/drift").await;
    assert!(drift.contains("id=\"no-findings\""), "{drift}");

    // The API's history carries the same details.
    let (_, _, history) = c.fetch("/api/v1/audit/ownership/history").await;
    let history: Value = serde_json::from_str(&history).expect("json");
    let lonely = history["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["entityRef"] == "component:default/billing")
        .expect("billing")
        .clone();
    assert_eq!(lonely["owner"], "group:default/team-b");
    assert_eq!(lonely["kind"], "Component");
    assert_eq!(lonely["evidence"][0]["said"], "owner team-b");
}

#[tokio::test]
async fn a_finding_a_later_sync_resolves_shows_under_resolved_with_its_time() {
    let c = Console::start(ApiConfig::default(), catalog(None)).await;
    c.record(10).await;
    // `lonely` gets an owner: its no-owner finding goes, a group-empty one opens.
    sync(&c.store, catalog(Some("team-a"))).await;
    c.record(11).await;
    let open = c.html("/audit/ownership").await;
    assert!(
        rows(&open, "rule-counts")
            .iter()
            .any(|r| r.starts_with("no-owner ") && r.ends_with(" 0"))
    );
    assert!(
        rows(&open, "owner-counts").contains(&"group:default/team-a 56".to_string()),
        "{:?}",
        rows(&open, "owner-counts")
    );
    let resolved = c.html("/audit/ownership?status=resolved").await;
    let found = rows(&resolved, "findings");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("component:default/lonely"),
        "{found:?}"
    );
    assert!(
        found[0].ends_with("2026-12-01 10:00 UTC 2026-12-01 10:00 UTC 2026-12-01 11:00 UTC"),
        "{found:?}"
    );
    assert!(resolved.contains("1 resolved finding match"), "{resolved}");
    let all = c.html("/audit/ownership?status=all&q=lonely").await;
    assert_eq!(rows(&all, "findings").len(), 2);
}

#[tokio::test]
async fn downloads_hold_every_matching_row_and_escape_what_sources_wrote() {
    let c = Console::start(ApiConfig::default(), catalog(None)).await;
    c.record(10).await;
    let (status, headers, csv) = c.fetch("/audit/ownership?format=csv").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"surveyor-ownership-gaps.csv\""
    );
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "id,entity,kind,rule,severity,owner,message,evidence,first_seen,last_seen,resolved_at"
    );
    // Every row, not a page of them.
    assert_eq!(lines.len(), 1 + 58);
    let (_, _, filtered) = c.fetch("/audit/ownership?format=csv&owner=team-b").await;
    let filtered: Vec<&str> = filtered.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(filtered.len(), 1 + 2, "{filtered:?}");
    assert!(filtered[1].contains(
        ",component:default/billing,Component,owner-unresolved,high,group:default/team-b,"
    ));
    assert!(
        filtered[1].contains(",\"gh said \"\"owner team-b\"\" at "),
        "{}",
        filtered[1]
    );
    assert!(
        filtered[1].ends_with(",2026-12-01T10:00:00Z,2026-12-01T10:00:00Z,open"),
        "{}",
        filtered[1]
    );

    let (status, headers, md) = c.fetch("/audit/ownership?format=md&rule=no-owner").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/markdown; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"surveyor-ownership-gaps.md\""
    );
    assert!(
        md.starts_with("# Ownership gaps\n\n1 open finding (rule no-owner).\n"),
        "{md}"
    );
    // The header, its rule, and the one finding.
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        3,
        "{md}"
    );

    // Content no audit writes today, straight into the store: what a hostile source could.
    let evil = FindingRecord {
        rule: "disagreement".into(),
        entity_ref: "component:default/evil".into(),
        kind: "Component".into(),
        severity: "low".into(),
        message: "=cmd|' /C calc'!A0".into(),
        owner: Some("<script>alert(1)</script>".into()),
        evidence: json!([{"source": "gh", "said": "a|b\nc,\"d\"", "at": "2026-12-01T10:00:00Z"}])
            .to_string(),
    };
    c.store
        .record_findings("drift", &[evil], at(10))
        .await
        .expect("record");
    let (_, headers, csv) = c.fetch("/audit/drift?format=csv").await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"surveyor-drift.csv\""
    );
    let row = csv.split_once("\r\n").expect("a header").1;
    assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
    assert!(
        row.contains(",\"gh said \"\"a|b\nc,\"\"d\"\"\"\" at 2026-12-01T10:00:00Z\","),
        "{row}"
    );
    assert!(row.contains(",<script>alert(1)</script>,"), "{row}");
    let (_, headers, md) = c.fetch("/audit/drift?format=md").await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"surveyor-drift.md\""
    );
    let row = md.lines().last().expect("a row");
    assert!(row.contains("| =cmd\\|' /C calc'!A0 |"), "{row}");
    assert!(
        row.contains("| &lt;script&gt;alert(1)&lt;/script&gt; |"),
        "{row}"
    );
    assert!(row.contains("gh said \"a\\|b<br>c,\"d\"\""), "{row}");
    assert_eq!(row.matches(" | ").count(), 10, "{row}");
    let html = c.html("/audit/drift").await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(rows(&html, "findings").len(), 1);
}
