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
