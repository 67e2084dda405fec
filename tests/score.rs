//! Scorecards end to end, on SQLite and Postgres: entities graded after a sync reach the
//! levels their checks allow; a check that turns is an event naming the run that caused it; the
//! roll-up per owner gets a trend point only when it changes; a scorecard no longer configured
//! loses its grades but keeps its history.

use serde_json::json;
use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};
use surveyor_model::{Entity, Observation};
use surveyor_tests::{Scripted, TestStore, complete, sync_once};

fn component(name: &str, owner: &str, covered: bool) -> Entity {
    let mut e = Entity::new("Component", "default", name);
    e.spec.insert("type".into(), "service".into());
    e.spec.insert("lifecycle".into(), "production".into());
    e.spec.insert("owner".into(), owner.into());
    e.spec.insert("onCall".into(), json!({"covered": covered}));
    e
}

fn crawl(covered: bool) -> Scripted {
    let mut team = Entity::new("Group", "default", "team-a");
    team.spec.insert("type".into(), "team".into());
    team.spec.insert("children".into(), json!([]));
    team.spec.insert("members".into(), json!(["ann", "bob"]));
    let mut obs = vec![Observation::discovered("org", "g1", team)];
    for person in ["ann", "bob"] {
        let mut u = Entity::new("User", "default", person);
        u.spec.insert("memberOf".into(), json!(["team-a"]));
        obs.push(Observation::discovered("org", format!("u-{person}"), u));
    }
    obs.push(Observation::discovered(
        "org",
        "c1",
        component("checkout", "group:default/team-a", covered),
    ));
    obs.push(Observation::discovered(
        "org",
        "c2",
        component("orphan", "group:default/nobody", true),
    ));
    Scripted::new("source", obs, complete(&["org"]))
}

fn readiness() -> Scorecard {
    let check = Check::new;
    Scorecard {
        name: "readiness".into(),
        title: "Readiness".into(),
        applies_to: AppliesTo::default(),
        levels: vec!["bronze".into(), "silver".into()],
        checks: vec![
            check("owned", "bronze", Test::Relation("ownedBy".into())),
            check("team", "bronze", Test::OwnerMembers(2)),
            check("on-call", "silver", Test::OnCall),
        ],
    }
}

#[tokio::test]
async fn grades_are_recorded_with_events_naming_the_run_and_a_trend() {
    for t in TestStore::all().await {
        let (store, backend) = (&t.store, t.backend);
        sync_once(store, &crawl(true)).await;
        let cards = [readiness()];
        let first = surveyor_grade::score::record(store, &cards, chrono::Utc::now(), Some("run-1"))
            .await
            .expect("grade");
        assert_eq!(first["readiness"].graded, 2, "{backend}");
        let scores = store.scores("readiness", None).await.expect("scores");
        let level = |entity: &str| {
            scores
                .iter()
                .find(|s| s.entity_ref == entity)
                .map(|s| s.level.clone())
        };
        assert_eq!(
            level("component:default/checkout"),
            Some(Some("silver".into())),
            "{backend}"
        );
        assert_eq!(
            level("component:default/orphan"),
            Some(None),
            "{backend}: an owner the catalog does not have is below bronze"
        );
        let orphan = scores
            .iter()
            .find(|s| s.entity_ref == "component:default/orphan")
            .expect("orphan");
        assert!(
            orphan.failing.contains("which the catalog does not have"),
            "{backend}: {}",
            orphan.failing
        );
        assert_eq!(
            store
                .scores("readiness", Some("group:default/team-a"))
                .await
                .expect("by owner")
                .len(),
            1,
            "{backend}"
        );
        assert!(
            store
                .score_events(None, None, 10)
                .await
                .expect("events")
                .is_empty()
        );
        let points = store.score_trend("readiness").await.expect("trend").len();
        assert!(points > 0, "{backend}");

        // Nothing changed: no event, no new trend point.
        surveyor_grade::score::record(store, &cards, chrono::Utc::now(), Some("run-2"))
            .await
            .expect("again");
        assert_eq!(
            store.score_trend("readiness").await.expect("trend").len(),
            points
        );

        // Nobody is on call any more: checkout falls to bronze; the event names the run.
        sync_once(store, &crawl(false)).await;
        let moved = surveyor_grade::score::record(store, &cards, chrono::Utc::now(), Some("run-3"))
            .await
            .expect("moved");
        assert_eq!(
            (
                moved["readiness"].turned_failing,
                moved["readiness"].levels_changed
            ),
            (1, 1),
            "{backend}"
        );
        let events = store
            .score_events(Some("readiness"), Some("component:default/checkout"), 10)
            .await
            .expect("events");
        assert_eq!(events.len(), 1, "{backend}: {events:?}");
        assert_eq!(
            (
                events[0].check_name.as_str(),
                events[0].passed,
                events[0].run_id.as_deref()
            ),
            ("on-call", false, Some("run-3")),
            "{backend}"
        );
        assert!(
            store.score_trend("readiness").await.expect("trend").len() > points,
            "{backend}: the roll-up changed: a new trend point"
        );

        // The scorecard is no longer configured: its grades go, its history stays.
        surveyor_grade::score::record(store, &[], chrono::Utc::now(), None)
            .await
            .expect("none");
        assert!(
            store
                .scores("readiness", None)
                .await
                .expect("scores")
                .is_empty(),
            "{backend}"
        );
        assert_eq!(
            store
                .score_events(Some("readiness"), None, 10)
                .await
                .expect("events")
                .len(),
            1,
            "{backend}"
        );
        t.cleanup().await;
    }
}
