//! PagerDuty's and Jira's webhooks end to end: a change at the fake vendor is posted, signed, to
//! a served router in front of the scheduler, which reads just what the event named (no crawl)
//! and brings the change into the catalog.

use std::sync::Arc;
use std::time::Duration;

use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_tests::{Served, TestStore};

async fn until(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting");
}

async fn post(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new().post(url).body("{}");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("post").status().as_u16()
}

#[tokio::test]
async fn a_signed_pagerduty_webhook_brings_a_service_change_in_by_reading_that_service() {
    use surveyor_connector_pagerduty::{PagerDutyConfig, PagerDutyConnector};
    use surveyor_sim::{Account, Org, OrgSpec, PD_TOKEN, PagerDutyFake, WebhookSink};

    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = PagerDutyFake::start(Account::from_org(&Org::generate(&OrgSpec::small())))
        .await
        .expect("fake");
    let toml = format!(
        "subdomain = \"acme\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = 1000\nwebhook_secret = \"pd-secret\"",
        fake.url()
    );
    let config: PagerDutyConfig = toml::from_str(&toml).expect("config");
    let pd = Arc::new(PagerDutyConnector::new("pagerduty", config).expect("connector"));
    run_connector(&store, pd.as_ref(), &ReconcileOptions::default())
        .await
        .expect("first crawl");
    let served = Served::start(&store, pd).await;
    let url = format!("http://{}/hooks/pagerduty", served.addr);

    // Unsigned and wrongly signed deliveries change nothing.
    assert_eq!(post(&url, &[]).await, 401);
    assert_eq!(post(&url, &[("X-PagerDuty-Signature", "v1=00")]).await, 401);

    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, "pd-secret"))
        .await;
    let (renamed, removed) = fake.with_account(|a| {
        let mut ids = a.services.keys().cloned();
        let (renamed, removed) = (ids.next().expect("a service"), ids.next().expect("another"));
        a.services.get_mut(&renamed).expect("service")["name"] =
            serde_json::json!("Renamed By An Event");
        let gone = a.services.remove(&removed).expect("service");
        (renamed, gone["name"].as_str().expect("name").to_string())
    });
    let before = fake.stats();
    hooks.settled().await;
    let planted = hooks.planted();
    assert_eq!(planted.sent().len(), 2, "{planted:?}");
    assert!(planted.failed().is_empty(), "{planted:?}");

    let new_ref = "component:default/renamed-by-an-event".to_string();
    let old_ref = format!(
        "component:default/{}",
        surveyor_model::names::entity_name(&removed).expect("a name")
    );
    until(async || {
        let now = surveyor_tests::owners(&store).await;
        now.contains_key(&new_ref) && !now.contains_key(&old_ref)
    })
    .await;
    // Read alone: the two services (and on-calls), never the account's lists.
    let after = fake.stats();
    assert_eq!(
        after.by_path.get("/users"),
        before.by_path.get("/users"),
        "no crawl"
    );
    assert!(after.requests - before.requests <= 6, "{after:?}");
    assert!(after.by_path.contains_key(&format!("/services/{renamed}")));
    served.stop().await;
    ts.cleanup().await;
}

#[tokio::test]
async fn a_signed_jira_webhook_brings_a_project_change_in_by_reading_that_project() {
    use surveyor_connector_jira::{JiraConfig, JiraConnector};
    use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL};
    use surveyor_sim::{JiraFake, JiraFlavor, Org, OrgSpec, WebhookSink};

    let ts = TestStore::sqlite().await;
    let store = ts.store.clone();
    let fake = JiraFake::start(&Org::generate(&OrgSpec::small()), JiraFlavor::Cloud)
        .await
        .expect("fake");
    let toml = format!(
        "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API_TOKEN}\"\nrequests_per_second = 1000\nwebhook_secret = \"jira-secret\"",
        fake.url()
    );
    let config: JiraConfig = toml::from_str(&toml).expect("config");
    let jira = Arc::new(JiraConnector::new("jira", config).expect("connector"));
    run_connector(&store, jira.as_ref(), &ReconcileOptions::default())
        .await
        .expect("first crawl");
    let served = Served::start(&store, jira).await;
    let url = format!("http://{}/hooks/jira", served.addr);
    assert_eq!(post(&url, &[]).await, 401);
    assert_eq!(post(&url, &[("X-Hub-Signature", "sha256=00")]).await, 401);

    let site = fake.site();
    let (key, component) = site
        .projects
        .iter()
        .find_map(|p| {
            site.components(p)
                .first()
                .map(|c| (p.key.clone(), c.name.clone()))
        })
        .expect("a project with a component");
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, "jira-secret"))
        .await;
    fake.with_site(|s| {
        let id = s
            .projects
            .iter()
            .find(|p| p.key == key)
            .map(|p| s.components(p)[0].id.clone())
            .expect("component");
        assert!(s.remove_component(&id));
        assert!(s.set_project_key(&key, "EVENTS"));
    });
    let before = fake.stats();
    hooks.settled().await;
    let planted = hooks.planted();
    assert_eq!(planted.sent().len(), 2, "{planted:?}");
    assert!(planted.failed().is_empty(), "{planted:?}");

    let system = "system:default/events".to_string();
    let old_system = format!("system:default/{}", key.to_lowercase());
    let gone = format!("component:default/{component}");
    until(async || {
        let now = surveyor_tests::owners(&store).await;
        now.contains_key(&system) && !now.contains_key(&old_system) && !now.contains_key(&gone)
    })
    .await;
    let after = fake.stats();
    assert_eq!(
        after.by_path.get("/rest/api/3/project/search"),
        before.by_path.get("/rest/api/3/project/search"),
        "no crawl"
    );
    served.stop().await;
    ts.cleanup().await;
}
