//! The fake PagerDuty's and fake Jira's webhooks against a loopback receiver: their signatures,
//! ids and event shapes, and the sender's drop and duplicate knobs.

mod common;

use common::{received, receiver};

use serde_json::json;
use surveyor_sim::webhook::{pagerduty_signature, verify_github_signature};
use surveyor_sim::{Account, Fate, JiraFake, JiraFlavor, Org, OrgSpec, PagerDutyFake, WebhookSink};

const SECRET: &str = "a subscription's secret";

#[tokio::test]
async fn pagerduty_sends_signed_v3_service_events_with_their_event_ids() {
    let account = Account::from_org(&Org::generate(&OrgSpec::small()));
    let mut ids = account.services.keys().cloned();
    let (changed, removed) = (ids.next().unwrap(), ids.next().unwrap());
    let fake = PagerDutyFake::start(account).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    fake.with_account(|a| {
        a.services.get_mut(&changed).unwrap()["description"] = json!("Now with receipts");
        a.services.remove(&removed);
        a.add_service("PNEW001".into(), "Fraud Checks", None, json!([]));
    });
    // PagerDuty sends nothing for teams.
    fake.with_account(|a| {
        let team = a.teams.values_mut().next().unwrap();
        team["name"] = json!("Renamed Team");
    });
    hooks.settled().await;

    let got = received(&inbox);
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|d| {
            let e = &d.json()["event"];
            (
                e["event_type"].as_str().unwrap().to_string(),
                e["data"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("service.created".to_string(), "PNEW001".to_string()),
            ("service.deleted".to_string(), removed.clone()),
            ("service.updated".to_string(), changed.clone()),
        ]
    );
    let planted = hooks.planted();
    for d in &got {
        let signature = d.header("x-pagerduty-signature");
        assert_eq!(signature, pagerduty_signature(SECRET, &d.body));
        assert_ne!(signature, pagerduty_signature("another", &d.body));
        let body = d.json();
        let id = body["event"]["id"].as_str().unwrap();
        assert_eq!(
            d.header("x-webhook-id"),
            id,
            "the event id, repeated in a header"
        );
        assert!(planted.deliveries.iter().any(|p| p.delivery_id == id));
        assert_eq!(body["event"]["resource_type"], "service");
        assert!(
            body["event"]["data"]["html_url"]
                .as_str()
                .unwrap()
                .starts_with("https://acme.pagerduty.com/")
        );
        assert_eq!(body["event"]["data"]["type"], "service");
    }
    assert!(planted.failed().is_empty());
}

#[tokio::test]
async fn jira_sends_signed_project_and_component_events() {
    let org = Org::generate(&OrgSpec::small());
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let (project, component) = site
        .projects
        .iter()
        .find_map(|p| site.components(p).first().map(|c| (p.clone(), c.clone())))
        .unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    assert!(fake.remove_component(&component.id));
    assert!(fake.set_project_key(&project.key, "NEWKEY"));
    hooks.settled().await;

    let got = received(&inbox);
    let events: Vec<String> = got
        .iter()
        .map(|d| d.json()["webhookEvent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["component_deleted", "project_updated"]);
    let removed = got[0].json();
    assert_eq!(removed["component"]["id"], component.id.as_str());
    assert_eq!(
        removed["component"]["projectId"],
        project.id.parse::<u64>().unwrap()
    );
    let renamed = got[1].json();
    assert_eq!(renamed["project"]["key"], "NEWKEY");
    assert_eq!(renamed["project"]["id"], project.id.parse::<u64>().unwrap());
    assert!(renamed["timestamp"].as_i64().is_some());
    let planted = hooks.planted();
    for (d, p) in got.iter().zip(&planted.deliveries) {
        assert!(verify_github_signature(
            SECRET,
            &d.body,
            d.header("x-hub-signature")
        ));
        assert!(!verify_github_signature(
            "another",
            &d.body,
            d.header("x-hub-signature")
        ));
        assert_eq!(d.header("x-atlassian-webhook-identifier"), p.delivery_id);
        assert_eq!(d.header("x-atlassian-webhook-flow"), "Primary");
    }

    // A deleted project is one event, its components going with it silently.
    inbox.lock().unwrap().clear();
    assert!(fake.remove_project("NEWKEY"));
    hooks.settled().await;
    let events: Vec<String> = received(&inbox)
        .iter()
        .map(|d| d.json()["webhookEvent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["project_deleted"]);
}

#[tokio::test]
async fn the_knobs_drop_and_duplicate_for_both_vendors() {
    let (url, inbox) = receiver().await;
    let fake = PagerDutyFake::start(Account::from_org(&Org::generate(&OrgSpec::small())))
        .await
        .unwrap();
    let sink = WebhookSink {
        duplicate: 1.0,
        ..WebhookSink::reliable(&url, SECRET)
    };
    let hooks = fake.send_webhooks(sink).await;
    fake.with_account(|a| a.add_service("PNEW002".into(), "Ledger", None, json!([])));
    hooks.settled().await;
    let got = received(&inbox);
    assert_eq!(got.len(), 2, "sent twice");
    assert_eq!(got[0].body, got[1].body, "the same event, the same id");
    assert_eq!(hooks.planted().duplicated().len(), 1);

    inbox.lock().unwrap().clear();
    let jira = JiraFake::start(&Org::generate(&OrgSpec::small()), JiraFlavor::DataCenter)
        .await
        .unwrap();
    let sink = WebhookSink {
        drop: 1.0,
        ..WebhookSink::reliable(&url, SECRET)
    };
    let hooks = jira.send_webhooks(sink).await;
    let key = jira.site().projects[0].key.clone();
    assert!(jira.set_project_key(&key, "DROPPED"));
    hooks.settled().await;
    assert!(received(&inbox).is_empty(), "nothing was sent");
    let planted = hooks.planted();
    assert_eq!(planted.dropped().len(), 1);
    assert_eq!(planted.deliveries[0].fate, Fate::Dropped);
    assert_eq!(planted.deliveries[0].event, "project_updated");
}
