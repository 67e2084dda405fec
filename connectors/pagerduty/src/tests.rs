//! The connector against the fake PagerDuty: mapping, on-call gaps, the offset cap, 429s, 401.

use surveyor_model::{Collected, ScopeStatus};
use surveyor_sim::{Account, Org, OrgSpec, PD_TOKEN, PagerDutyFake};

use super::*;

fn connector(fake: &PagerDutyFake, token: &str) -> PagerDutyConnector {
    let toml = format!(
        "subdomain = \"acme\"\ntoken = \"{token}\"\napi_url = \"{}\"\nrequests_per_second = 1000\nmax_retries = 2",
        fake.url()
    );
    PagerDutyConnector::new("pd", toml::from_str(&toml).unwrap()).unwrap()
}

/// What the tests ask of a crawl of the account `acme`.
trait OfAccount {
    fn status(&self) -> &ScopeStatus;
}

impl OfAccount for Collected {
    fn status(&self) -> &ScopeStatus {
        self.outcome
            .status("acme")
            .expect("the account is reported")
    }
}

async fn crawl(c: &PagerDutyConnector) -> Collected {
    Collected::crawl(c).await.unwrap()
}

#[tokio::test]
async fn services_teams_users_and_who_is_on_call() {
    let org = Org::generate(&OrgSpec::small());
    let account = Account::from_org(&org);
    let fake = PagerDutyFake::start(account.clone()).await.unwrap();
    let got = crawl(&connector(&fake, PD_TOKEN)).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), account.services.len());
    assert_eq!(got.of_kind("Group").len(), account.teams.len());
    assert_eq!(got.of_kind("User").len(), account.users.len());

    // A service named after a repository lands on that repository's component name.
    let repo = &org.repos[1];
    let c = got
        .of_kind("Component")
        .into_iter()
        .find(|o| o.entity.metadata.name == repo.name)
        .expect("the repo's service");
    assert_eq!(
        c.entity.metadata.annotations["pagerduty.com/service-id"],
        c.external_id
    );
    // Owned by the PagerDuty team of the repository's owners (its name is the team's slug).
    // (Services without a team of their own take their escalation policy's; a team without
    // members in PagerDuty has no policy, so its services have no owner there.)
    let team = &org.teams[repo.owner_team];
    let pd_team = account
        .teams
        .iter()
        .find(|(_, t)| map::entity_name(t["name"].as_str().unwrap()).as_deref() == Some(&team.slug))
        .map(|(id, _)| id.clone())
        .unwrap();
    let expected =
        (!account.members[&pd_team].is_empty()).then(|| format!("group:default/{}", team.slug));
    assert_eq!(c.entity.spec_str("owner"), expected.as_deref());
    assert!(
        got.of_kind("Component")
            .iter()
            .any(|o| o.entity.spec.contains_key("owner")),
        "owners found"
    );
    // Coverage: some services are covered with someone on call, some are not.
    let covered: Vec<bool> = got
        .of_kind("Component")
        .iter()
        .map(|o| o.entity.spec["onCall"]["covered"].as_bool().unwrap())
        .collect();
    assert!(covered.contains(&true) && covered.contains(&false));
    let with_primary = got
        .of_kind("Component")
        .into_iter()
        .find(|o| o.entity.spec["onCall"]["covered"] == true)
        .unwrap();
    let primary = with_primary.entity.spec["onCall"]["primary"][0]
        .as_str()
        .unwrap();
    assert!(
        got.of_kind("User")
            .iter()
            .any(|u| u.entity.entity_ref().unwrap().to_string() == primary),
        "{primary} is a catalogued user"
    );
    // Teams without members are catalogued, empty: the audit will find them.
    assert!(
        got.of_kind("Group")
            .iter()
            .any(|g| g.entity.spec["members"].as_array().unwrap().is_empty())
    );
    // Users carry their email, the key for matching people across sources.
    assert!(
        got.of_kind("User")
            .iter()
            .all(|u| u.entity.spec["profile"]["email"].as_str().is_some())
    );
}

#[tokio::test]
async fn the_offset_cap_is_reported_not_hidden() {
    let org = Org::generate(&OrgSpec::small());
    let mut account = Account::from_org(&org);
    for i in 0..10_050 {
        account.add_service(
            format!("PX{i:05}"),
            &format!("Generated {i}"),
            None,
            serde_json::json!([]),
        );
    }
    let fake = PagerDutyFake::start(account).await.unwrap();
    let got = crawl(&connector(&fake, PD_TOKEN)).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("more than 10000"), "{reason}");
    assert_eq!(got.of_kind("Component").len(), OFFSET_CAP);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let fake = PagerDutyFake::start(Account::from_org(&Org::generate(&OrgSpec::small())))
        .await
        .unwrap();
    fake.throttle(2);
    let got = crawl(&connector(&fake, PD_TOKEN)).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(fake.stats().throttled, 2);
}

#[tokio::test]
async fn a_refused_token_fails_the_account() {
    let fake = PagerDutyFake::start(Account::from_org(&Org::generate(&OrgSpec::small())))
        .await
        .unwrap();
    let got = crawl(&connector(&fake, "wrong-token")).await;
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("refused (HTTP 401)"), "{reason}");
    assert!(!reason.contains("wrong-token"));
    assert!(got.observations.is_empty());
}

#[test]
fn config_errors_name_their_key() {
    for (toml, key) in [
        ("subdomain = \"acme\"\ntoken = \"\"", "token"),
        ("subdomain = \"a b\"\ntoken = \"t\"", "subdomain"),
        (
            "subdomain = \"a\"\ntoken = \"t\"\napi_url = \"x\"",
            "api_url",
        ),
        (
            "subdomain = \"a\"\ntoken = \"t\"\nservice_names = { \"X\" = \"not valid!\" }",
            "service_names",
        ),
    ] {
        let err = PagerDutyConnector::new("pd", toml::from_str(toml).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with(key), "{toml}: {err}");
    }
}

mod refresh {
    use surveyor_model::{Connector, Observation, ObservationSink, Outcome, Target};
    use surveyor_sim::Fault;
    use surveyor_sim::FaultAction;

    use super::*;

    fn service(id: &str) -> Target {
        Target {
            scope: "acme".into(),
            kind: "service".into(),
            key: id.into(),
        }
    }

    async fn refresh(c: &PagerDutyConnector, targets: &[Target]) -> (Vec<Observation>, Outcome) {
        let (sink, mut rx) = ObservationSink::channel("pd", 64);
        let kept = async {
            let mut all = Vec::new();
            while let Some(o) = rx.recv().await {
                all.push(o);
            }
            all
        };
        let (outcome, seen) = tokio::join!(Connector::refresh(c, targets, sink), kept);
        (seen, outcome.expect("a refresh"))
    }

    /// A service with an escalation policy someone is on call for, and its id.
    fn covered_service(account: &Account) -> String {
        account
            .services
            .iter()
            .find(|(_, s)| {
                s["escalation_policy"]["id"]
                    .as_str()
                    .is_some_and(|p| account.on_call_at_level_one(p))
            })
            .map(|(id, _)| id.clone())
            .expect("a covered service")
    }

    async fn setup() -> (PagerDutyFake, PagerDutyConnector, String) {
        let account = Account::from_org(&Org::generate(&OrgSpec::small()));
        let id = covered_service(&account);
        let fake = PagerDutyFake::start(account).await.unwrap();
        let c = connector(&fake, PD_TOKEN);
        (fake, c, id)
    }

    #[tokio::test]
    async fn only_services_and_only_after_a_complete_crawl() {
        let (fake, c, id) = setup().await;
        assert!(!c.refreshes(&[service(&id)]), "no context before a crawl");
        let before = fake.stats().requests;
        assert!(matches!(
            refresh_err(&c, &[service(&id)]).await,
            ConnectorError::Unsupported(_)
        ));
        assert_eq!(fake.stats().requests, before, "nothing was read");
        crawl(&c).await;
        assert!(c.refreshes(&[service(&id)]));
        let team = Target {
            kind: "team".into(),
            ..service("PT00001")
        };
        assert!(!c.refreshes(&[service(&id), team]), "a team is read whole");
        let elsewhere = Target {
            scope: "globex".into(),
            ..service(&id)
        };
        assert!(!c.refreshes(&[elsewhere]));
    }

    async fn refresh_err(c: &PagerDutyConnector, targets: &[Target]) -> ConnectorError {
        let (sink, _rx) = ObservationSink::channel("pd", 4);
        Connector::refresh(c, targets, sink)
            .await
            .expect_err("refused")
    }

    #[tokio::test]
    async fn a_changed_service_is_read_alone_and_mapped_as_a_crawl_maps_it() {
        let (fake, c, id) = setup().await;
        crawl(&c).await;
        fake.with_account(|a| {
            let s = a.services.get_mut(&id).unwrap();
            s["description"] = serde_json::json!("Takes the money, now with receipts");
            s["status"] = serde_json::json!("disabled");
        });
        fake.reset_stats();
        let (seen, outcome) = refresh(&c, &[service(&id)]).await;
        let requests = fake.stats().requests;
        assert!(requests <= 3, "{requests} requests for one service");
        assert_eq!(outcome.status("acme"), Some(&ScopeStatus::Refreshed));
        assert!(outcome.gone.is_empty());
        let [one] = seen.as_slice() else {
            panic!("{seen:?}")
        };
        assert_eq!(one.external_id, id);
        assert_eq!(
            one.entity.metadata.description.as_deref(),
            Some("Takes the money, now with receipts")
        );
        assert_eq!(one.entity.spec_str("lifecycle"), Some("deprecated"));
        // The same entity a whole crawl makes of it now: owner, on-call and all.
        let whole = crawl(&c).await;
        let crawled = whole
            .observations
            .iter()
            .find(|o| o.external_id == id)
            .expect("crawled");
        assert_eq!(crawled.entity, one.entity);
        assert_eq!(one.entity.spec["onCall"]["covered"], true);
    }

    #[tokio::test]
    async fn a_deleted_service_is_confirmed_gone_and_a_failed_read_deletes_nothing() {
        let (fake, c, id) = setup().await;
        crawl(&c).await;
        fake.with_account(|a| a.services.remove(&id));
        let (seen, outcome) = refresh(&c, &[service(&id)]).await;
        assert!(seen.is_empty());
        assert_eq!(outcome.status("acme"), Some(&ScopeStatus::Refreshed));
        assert!(outcome.gone["acme"].contains(&id));

        let other = fake.with_account(|a| a.services.keys().next().cloned().unwrap());
        fake.add_fault(Fault::new(
            &format!("/services/{other}"),
            FaultAction::Status(500),
        ));
        let (seen, outcome) = refresh(&c, &[service(&other)]).await;
        assert!(seen.is_empty());
        assert!(
            matches!(outcome.status("acme"), Some(ScopeStatus::Failed { .. })),
            "{outcome:?}"
        );
        assert!(outcome.gone.is_empty(), "a failure confirms nothing gone");
        fake.clear_faults();
        let (_, outcome) = refresh(&c, &[service("not/an id")]).await;
        assert!(matches!(
            outcome.status("acme"),
            Some(ScopeStatus::Failed { .. })
        ));
    }

    #[tokio::test]
    async fn listens_only_with_a_secret() {
        let (fake, c, _) = setup().await;
        assert!(!c.listens());
        let toml = format!(
            "subdomain = \"acme\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\nwebhook_secret = \"s\"",
            fake.url()
        );
        let with = PagerDutyConnector::new("pd", toml::from_str(&toml).unwrap()).unwrap();
        assert!(with.listens());
    }
}

#[test]
fn every_field_is_a_listed_key() {
    // The loader accepts the keys `keys` reads off the struct; a field missing from them could
    // never be set.
    let table = "token = \"t\"\nsubdomain = \"a\"\napi_url = \"https://x\"\nnamespace = \"default\"\nservice_names = {}\nrequests_per_second = 1\nmax_retries = 1\ntimeout_secs = 1\nwebhook_secret = \"s\"";
    let parsed: toml::Table = toml::from_str(table).unwrap();
    let mut keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut listed = surveyor_model::kit::keys::<PagerDutyConfig>().to_vec();
    listed.sort_unstable();
    assert_eq!(keys, listed);
    assert!(PagerDutyConnector::new("pd", toml::from_str(table).unwrap()).is_ok());
    let blank = table.replace("webhook_secret = \"s\"", "webhook_secret = \" \"");
    let err = PagerDutyConnector::new("pd", toml::from_str(&blank).unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("webhook_secret"), "{err}");
}
